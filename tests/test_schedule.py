import re

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
    with pytest.raises(ScheduleError, match=r"targets at 100 and 50 Hz .* one label_rate \(MFCC targets can be at "
                                            r"rate: 50\)"):
        load_schedule(write(tmp_path, mixed), data=corpus)
    # MFCC clusters at 50 Hz share the iteration (a head each: model.layer_targets), labelled at 50 Hz
    s = load_schedule(write(tmp_path, mixed.replace("k: 10}, ", "k: 10, rate: 50}, ")), data=corpus)
    assert [t.rate for t in s.iterations[0].targets] == [50.0, 50.0] and s.iterations[0].label_rate == 50
    for text, message in ((mixed.replace("k: 10}, ", "k: 10, rate: 25}, "),
                           "targets[0].rate: 25 Hz; mfcc targets are at 100 or 50 Hz"),
                          (mixed.replace("layer: 2, k: 10}", "layer: 2, k: 10, rate: 100}"),
                           "targets[1].rate: 100 Hz; layer targets are at 50 Hz")):  # a layer's own rate only
        with pytest.raises(ScheduleError, match=re.escape(message)):
            load_schedule(write(tmp_path, text), data=corpus)


def test_missing_data(tmp_path):
    with pytest.raises(ScheduleError, match="data"):
        load_schedule(write(tmp_path, BASE % ("3", "10", "scratch")))
    with pytest.raises(ScheduleError, match="has no train.tsv"):
        load_schedule(write(tmp_path, BASE % ("3", "10", "scratch")), data=str(tmp_path))


def test_mask_spans_must_fit_the_shortest_kept_utterance():
    """fairseq's masking raises "the entire sequence is masked" once a span reaches the shortest
    sequence's length less 2 frames: refused before any work, at the length the batch really has
    (utterances below min_sample_size dropped, the rest cropped to max_sample_size)."""
    from omegaconf import OmegaConf

    from ae_hubert.common.errors import AeHubertError
    from ae_hubert.runner.configs import check_mask_fits, conv_frames

    assert conv_frames(16000, None) == 49 and conv_frames(400, None) == 1
    assert conv_frames(64000, "[(64,10,5)] + [(64,3,2)] * 4 + [(64,2,2)] * 2") == 199

    def cfg(length, **task):
        return OmegaConf.create({"model": {"mask_prob": 0.65, "mask_length": length},
                                 "task": {"min_sample_size": 8000, "max_sample_size": 64000, **task}})

    check_mask_fits(cfg(46), {"train": [16000, 32000]}, "w")  # 49 frames: spans up to 46
    with pytest.raises(AeHubertError, match=r"w: model.mask_length=47 frames is too long for the shortest valid "
                                            r"utterance the trainer keeps \(16000 samples, 49 frames\)"):
        check_mask_fits(cfg(47), {"train": [32000], "valid": [16000, 4000]}, "w")  # 4000 < min_sample_size: dropped
    check_mask_fits(cfg(196), {"train": [10 ** 6]}, "w")  # cropped to 64000 samples: 199 frames
    with pytest.raises(AeHubertError, match="199 frames"):
        check_mask_fits(cfg(197), {"train": [10 ** 6]}, "w")
    check_mask_fits(OmegaConf.create({"model": {"mask_prob": 0.0, "mask_length": 500}, "task": {}}), {"train": [400]}, "w")
