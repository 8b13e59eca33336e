import pytest

from conftest import silent_manifests

from ae_hubert.pipeline.schedule import ScheduleError, load_schedule

SHIPPED = ["standard", "progressive", "top", "standard_toy", "progressive_toy", "top_toy", "adaptive_toy", "demo_toy",
           "study_h1", "study_h0_autoencoder", "study_h0_phones"]


def write(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.fixture(scope="module")
def big_manifests(tmp_path_factory):
    """200 one-minute utterances, enough frames for the LibriSpeech schedules' K=500 on a 10% sample."""
    return silent_manifests(tmp_path_factory.mktemp("big"), 200, 60)


def data_for(name, corpus, big):
    return corpus if name.endswith("_toy") or "phones" in name else big  # phone targets need the corpus's .phn


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_schedules_validate(corpus, big_manifests, name):
    s = load_schedule(name, data=data_for(name, corpus, big_manifests))
    assert s.iterations and all(it.max_update > 0 for it in s.iterations)
    assert s.iterations[0].label_rate == (50 if s.iterations[0].targets[0].source == "phones" else 100)
    assert all(it.label_rate == 50 for it in s.iterations[1:])


def test_progressive_is_about_half_of_standard(corpus, big_manifests):
    for a, b in (("standard", "progressive"), ("standard_toy", "progressive_toy")):
        d = data_for(a, corpus, big_manifests)
        ratio = load_schedule(b, data=d).total_updates / load_schedule(a, data=d).total_updates
        assert 0.4 <= ratio <= 0.6, (a, b, ratio)


BASE = """
train_config: pretrain/toy_cpu
iterations:
  - targets: [{source: mfcc, k: 100}]
    max_update: 10
  - targets: [{source: layer, layer: %s, k: %s}]
    init: %s
    max_update: 10
"""


@pytest.mark.parametrize("layer,k,init,field", [
    ("7", "100", "scratch", "iterations[1].targets[0].layer"),
    ("3", "1", "scratch", "iterations[1].targets[0].k"),
    ("3", "100", "warm", "iterations[1].init"),
])
def test_errors_name_the_field(corpus, tmp_path, layer, k, init, field):
    with pytest.raises(ScheduleError) as e:
        load_schedule(write(tmp_path, BASE % (layer, k, init)), data=corpus)
    assert field in str(e.value)


def test_unknown_source_and_missing_previous_checkpoint(corpus, tmp_path):
    bad = "iterations:\n  - targets: [{source: wav2vec, k: 10}]\n    max_update: 5\n"
    with pytest.raises(ScheduleError, match=r"iterations\[0\].targets\[0\].source: 'wav2vec' is not one of mfcc, "
                       r"layer, phones$"):
        load_schedule(write(tmp_path, bad), data=corpus)
    with pytest.raises(ScheduleError, match=r"source: 'mfc' is not one of mfcc, layer, phones \(did you mean mfcc\?\)$"):
        load_schedule(write(tmp_path, bad.replace("wav2vec", "mfc")), data=corpus)
    first_layer = "iterations:\n  - targets: [{source: layer, layer: 3, k: 10}]\n    max_update: 5\n"
    with pytest.raises(ScheduleError, match=r"iterations\[0\].targets\[0\].source: 'layer' needs a previous"):
        load_schedule(write(tmp_path, first_layer), data=corpus)
    cont = "iterations:\n  - targets: [{source: mfcc, k: 10}]\n    init: continue\n    max_update: 5\n"
    with pytest.raises(ScheduleError, match=r"iterations\[0\].init: 'continue' needs a previous"):
        load_schedule(write(tmp_path, cont), data=corpus)
    gone = "start_from: /nonexistent/ckpt.pt\n" + first_layer
    with pytest.raises(ScheduleError, match="start_from: checkpoint /nonexistent/ckpt.pt not found"):
        load_schedule(write(tmp_path, gone), data=corpus)
    with pytest.raises(ScheduleError, match="^--start-from: checkpoint /nonexistent/b.pt not found"):
        load_schedule(write(tmp_path, first_layer), data=corpus, start_from="/nonexistent/b.pt")


def test_depth_follows_overrides_and_start_from(corpus, tmp_path, stock_checkpoint):
    s = load_schedule(write(tmp_path, BASE % ("7", "10", "scratch")), data=corpus,
                      extra_overrides=["model.encoder_layers=8"])
    assert s.iterations[1].depth == 8
    ok = f"start_from: {stock_checkpoint}\niterations:\n  - targets: [{{source: layer, layer: 6, k: 10}}]\n" \
         "    max_update: 5\n"
    assert load_schedule(write(tmp_path, ok), data=corpus).start_depth == 6
    with pytest.raises(ScheduleError, match="layer: 7 > depth 6"):
        load_schedule(write(tmp_path, ok.replace("layer: 6", "layer: 7")), data=corpus)
    # the command line's start_from replaces the schedule's; a depth alone validates (the study's check)
    first = "iterations:\n  - targets: [{source: layer, layer: 6, k: 10}]\n    max_update: 5\n"
    s = load_schedule(write(tmp_path, first), data=corpus, start_from=stock_checkpoint)
    assert s.start_from == stock_checkpoint and s.start_depth == 6
    assert load_schedule(write(tmp_path, first), data=corpus, start_depth=6).start_from is None
    with pytest.raises(ScheduleError, match="layer: 6 > depth 4"):
        load_schedule(write(tmp_path, first), data=corpus, start_depth=4)


def test_mixed_rates_rejected(corpus, tmp_path, stock_checkpoint):
    mixed = f"start_from: {stock_checkpoint}\niterations:\n  - targets: [{{source: mfcc, k: 10}}, " \
            "{source: layer, layer: 2, k: 10}]\n    max_update: 5\n"
    with pytest.raises(ScheduleError, match="one label_rate"):
        load_schedule(write(tmp_path, mixed), data=corpus)


def test_missing_data(tmp_path):
    with pytest.raises(ScheduleError, match="data"):
        load_schedule(write(tmp_path, BASE % ("3", "10", "scratch")))
    with pytest.raises(ScheduleError, match="has no train.tsv"):
        load_schedule(write(tmp_path, BASE % ("3", "10", "scratch")), data=str(tmp_path))
