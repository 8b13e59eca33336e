"""A miniature study end to end: corpus, two seeds of a two-iteration schedule, H1 and H2 measured and
summarised over seeds; then H3-H5 on seed 1 of the same runs (fine-tunings with the top layers
reset, an H4 arm started from H1's iteration-1 model, an H5 arm at half the updates); a rerun redoes
nothing; a lost measurement is redone alone; bad configs fail in one line before any work."""
import json
import os
import shutil

import pytest
import torch

from ae_hubert.cli import main
from ae_hubert.common.errors import AeHubertError
from ae_hubert.study import h1 as hyp1, h2 as hyp2, h3 as hyp3
from ae_hubert.study.config import check_schedules, load_study
from ae_hubert.study.hypotheses import names
from ae_hubert.study.records import StudyError
from ae_hubert.study.run import run_study
from ae_hubert.study.pack import SMALL, TEXT, _moved, pack_plan, pack_study, unpack_study

SCHEDULE = """
name: mini_h1
train_config: pretrain/toy_cpu
overrides: [dataset.validate_interval_updates=2, checkpoint.save_interval_updates=2, common.log_interval=1]
kmeans: {percent: -1, max_iter: 20}
iterations:
  - name: iter1
    targets: [{source: mfcc, k: 8}]
    max_update: 4
  - name: iter2
    targets: [{source: layer, layer: auto, k: 8}]
    max_update: 4
"""

H4_TOP = """
name: mini_h4_top
train_config: pretrain/toy_cpu
overrides: [dataset.validate_interval_updates=2, checkpoint.save_interval_updates=2, common.log_interval=1]
kmeans: {percent: -1, max_iter: 20}
iterations:
  - name: iter2
    targets: [{source: layer, layer: 6, k: 8}]
    max_update: 4
"""

H5_HALF = """
name: mini_h5_half
train_config: pretrain/toy_cpu
kmeans: {percent: -1, max_iter: 20}
iterations:
  - name: iter1
    targets: [{source: mfcc, k: 8}]
    max_update: 4
"""

H0_AUTOENCODER = """
name: mini_h0_autoencoder
train_config: pretrain/toy_cpu
overrides: [dataset.validate_interval_updates=2, checkpoint.save_interval_updates=2, common.log_interval=1,
            model._name=hubert_layer_targets, criterion._name=hubert_layer_targets, "+model.layer_targets='3:0:1'",
            +model.reconstruct_layer=6]
kmeans: {percent: -1, max_iter: 20}
iterations:
  - name: iter1
    targets: [{source: mfcc, k: 8}]
    max_update: 4
"""

H0_PHONES = """
name: mini_h0_phones
train_config: pretrain/toy_cpu
overrides: [dataset.validate_interval_updates=2, checkpoint.save_interval_updates=2, common.log_interval=1]
iterations:
  - name: iter1
    targets: [{source: phones}]
    max_update: 4
"""

H6_MIDDLE = """
name: mini_h6_mfcc_middle
train_config: pretrain/toy_cpu
overrides: [dataset.validate_interval_updates=2, checkpoint.save_interval_updates=2, common.log_interval=1,
            model._name=hubert_layer_targets, criterion._name=hubert_layer_targets, "+model.layer_targets='6:0:1,3:1:1'"]
kmeans: {percent: -1, max_iter: 20}
iterations:
  - name: iter2
    targets: [{source: layer, layer: auto, k: 8}, {source: mfcc, k: 8, rate: 50}]
    max_update: 4
"""

SCHEDULES = {"mini_h1": SCHEDULE, "mini_h4_top": H4_TOP, "mini_h5_half": H5_HALF,
             "mini_h0_autoencoder": H0_AUTOENCODER, "mini_h0_phones": H0_PHONES, "mini_h6_mfcc_middle": H6_MIDDLE}

STUDY = """
name: mini
corpus: {utterances: 36, seed: 1, vocabulary: 120}
seeds: 2
k: 8
measure: {train_utterances: 10, valid_utterances: 6, probe_utterances: 8, ctc_steps: 5, phone_train_utterances: 8,
          phone_utterances: 6, phone_steps: 5}
finetune: {config: finetune/toy_cpu, ks: [0, 1], judge: cer, overrides: [optimization.max_update=2,
           dataset.validate_interval_updates=2]}
downstream: [letter_ctc, phone_recognition]
schedules: {H1: mini_h1.yaml, H4: {top: mini_h4_top.yaml}, H5: {half: mini_h5_half.yaml},
            H0: {autoencoder: mini_h0_autoencoder.yaml, phones: mini_h0_phones.yaml},
            H6: {mfcc_middle: mini_h6_mfcc_middle.yaml}}
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("study")
    for name, text in SCHEDULES.items():
        (d / f"{name}.yaml").write_text(text)
    cfg = d / "mini.yaml"
    cfg.write_text(STUDY)
    work = str(d / "work")
    assert main(["study", "--work-dir", work, "--config", str(cfg), "--only", "H1,H2"]) == 0
    return str(cfg), work, json.load(open(os.path.join(work, "study.json")))  # later runs rewrite study.json


@pytest.fixture(scope="module")
def carried(study, tmp_path_factory):
    """The H1/H2 work dir carried to 'another machine': packed, unpacked under another path."""
    cfg, work, _ = study
    d = tmp_path_factory.mktemp("carried")
    assert main(["study-pack", work, str(d / "pack")]) == 0
    assert main(["study-unpack", str(d / "pack"), str(d / "work")]) == 0
    return cfg, str(d / "pack"), str(d / "work")


ARMED = os.path.join("partial", "H3+H4+H5.s1")  # where the armed call's summary goes


@pytest.fixture(scope="module")
def armed(carried):
    """H3-H5 on seed 1 of the carried work dir: H1's runs are reused, the arms trained."""
    cfg, _, work = carried
    assert main(["study", "--work-dir", work, "--config", cfg, "--only", "H3,H4,H5", "--seeds", "1"]) == 0
    # W/study.json (H1, H2 over 2 seeds) covers what this narrower call does not: it is kept
    assert json.load(open(os.path.join(work, "study.json")))["hypotheses"] == ["H1", "H2"]
    return cfg, work, json.load(open(os.path.join(work, ARMED, "study.json")))


def test_a_carried_study_keeps_its_results_and_final_models_only(study, carried):
    _, work, before = study
    cfg, pack, moved = carried
    info = json.load(open(os.path.join(pack, "pack.json")))
    assert sorted(info["models"]) == [os.path.join("runs", "mini_h1", f"s{s}", it, "checkpoints", "checkpoint_last.pt")
                                      for s in (1, 2) for it in ("iter1", "iter2")]
    assert not [f for f in info["files"] if f.endswith((".npy", ".km", ".pt")) or f.startswith("corpus" + os.sep)]
    # nor the finished runs' logs and tensorboard events (there were some to leave out)
    assert [f for r, _, fs in os.walk(work) for f in fs if f.endswith(".log")] and \
        [r for r, ds, _ in os.walk(work) if "tblog" in ds]
    assert not [f for f in info["files"] if f.endswith(".log") or os.sep + "tblog" + os.sep in f]
    assert [f for r, _, fs in os.walk(work) for f in fs if f.endswith(".len") and "feat" in r]  # feature shards
    assert not [f for f in info["files"] if f.endswith(".len")]  # ... of which no half travels
    assert "corpus.expected.json" in info["files"]  # the fingerprint of the corpus left out
    model = torch.load(os.path.join(moved, info["models"][0]), weights_only=True)
    original = torch.load(os.path.join(work, info["models"][0]), weights_only=True)
    assert model["last_optimizer_state"] is None and original["last_optimizer_state"] is not None
    assert all(torch.equal(model["model"][k], v) for k, v in original["model"].items())
    # every interval checkpoint is gone, its probe's result kept: H1/H2 redo nothing, summary unchanged
    lines = []
    again = run_study(cfg, moved, only=["H1", "H2"], echo=lines.append)
    assert [line for line in lines if line.startswith("[run ]")] == ["[run ] corpus"], lines  # rebuilt from its seed
    assert again["H1"] == before["H1"] and again["H2"] == before["H2"]
    assert again["corpus_check"]["same"] and not [line for line in lines if "WARNING" in line]
    # a corpus rebuilt differently (other library versions) is refused: the runs would go on on other audio
    expected = os.path.join(moved, "corpus.expected.json")
    good = open(expected).read()
    open(expected, "w").write(json.dumps({**json.loads(good), "audio": "0" * 64}))
    try:
        with pytest.raises(StudyError, match=r"the corpus rebuilt here differs .* \(audio differ"):
            run_study(cfg, moved, only=["H1", "H2"])
    finally:
        open(expected, "w").write(good)
    with pytest.raises(AeHubertError, match="not empty"):
        unpack_study(pack, moved)
    for bad in (os.path.join(work, "p"), os.path.dirname(work), work + "/."):  # would take W along
        with pytest.raises(AeHubertError, match="overlaps the work dir"):
            pack_study(work, bad)
    # a probe not done yet (a session ended among them): its interval checkpoint travels too
    marker = os.path.join(work, ".stages", "s1.mini_h1.iter1.probe.2.json")
    os.rename(marker, marker + ".away")
    try:
        kept = [m for m in pack_plan(work)[1] if "s1/iter1" in m]
    finally:
        os.rename(marker + ".away", marker)
    assert len(kept) == 2 and any(os.path.basename(m).startswith("checkpoint_") and m.endswith("_2.pt") for m in kept)


def test_a_pack_records_no_absolute_path_and_results_only_is_a_readers_copy(study, carried, tmp_path):
    """Packs name the work dir and the package by placeholders; ``--results-only`` (default
    ``W.results`` beside the work dir) keeps summaries, plots and records, no run artefact, and is
    refused by ``study-unpack``."""
    import ae_hubert

    _, work, _ = study
    _, pack, _ = carried
    package = os.path.dirname(os.path.abspath(ae_hubert.__file__))
    for root, _, files in os.walk(pack):
        for f in files:
            if f.endswith(TEXT):
                text = open(os.path.join(root, f), encoding="utf-8").read()
                assert work not in text and package not in text, os.path.join(root, f)
    copy = str(tmp_path / "w")
    shutil.copytree(work, copy, ignore=shutil.ignore_patterns("corpus", "*.pt", "*.npy"))
    assert main(["study-pack", copy, "--results-only"]) == 0
    res = copy + ".results"
    files = [os.path.relpath(os.path.join(r, f), res) for r, _, fs in os.walk(res) for f in fs]
    assert {"study.md", "study.json", "pack.json"} <= set(files)
    assert [f for f in files if f.endswith("records.json")] and [f for f in files if f.endswith(".png")]
    assert not [f for f in files if f.endswith((".pt", ".log", ".km", ".npy", ".len", ".bin", ".yaml"))
                or "/.hydra/" in f or "tblog" in f or os.sep + ".stages" + os.sep in f]
    assert not [f for f in files if copy in open(os.path.join(res, f), encoding="utf-8", errors="replace").read()]
    with pytest.raises(AeHubertError, match="not a pack to resume"):
        unpack_study(res, str(tmp_path / "w2"))


def test_a_half_trained_iteration_travels_and_resumes_exactly(study, tmp_path):
    """A session that ends while an iteration trains: the pack carries its last checkpoint with the
    optimizer state, its labels and k-means model; on the other machine the next call resumes that
    training (no sidecar redone) and ends on the same weights as the run that never stopped."""
    cfg, work, _ = study
    half = str(tmp_path / "half")  # the finished work dir, wound back to seed 2's iteration 2 at update 2
    shutil.copytree(work, half)
    for root, _, files in os.walk(half):
        for f in files:
            if f.endswith(TEXT):
                path = os.path.join(root, f)
                text = open(path, encoding="utf-8").read()
                open(path, "w", encoding="utf-8").write(_moved(text, [(work, half)]))
    run = os.path.join(half, "runs", "mini_h1", "s2")
    ckpts = os.path.join(run, "iter2", "checkpoints")
    os.remove(os.path.join(run, ".stages", "iter2.train.json"))
    shutil.copy(os.path.join(ckpts, "checkpoint_1_2.pt"), os.path.join(ckpts, "checkpoint_last.pt"))
    for f in os.listdir(ckpts):
        if f not in ("checkpoint_1_2.pt", "checkpoint_last.pt"):
            os.remove(os.path.join(ckpts, f))
    assert pack_plan(half, keep_unfinished=False)[2] == []  # --drop-unfinished: left out whole, as before
    assert not [f for f in pack_plan(half, keep_unfinished=False)[0] if "s2/iter2" in f]
    info = pack_study(half, str(tmp_path / "pack"))
    assert info["half_trained"] == [os.path.join("runs", "mini_h1", "s2", "iter2")]
    rel = os.path.relpath(ckpts, half)
    assert os.path.join(rel, "checkpoint_last.pt") in info["files"]  # as fairseq wrote it
    assert os.path.join(os.path.dirname(rel), "train.log") in info["files"]  # its final losses are read from it
    assert not [m for m in info["models"] if "s2/iter2" in m]  # its interval checkpoint's probe is done
    assert [f for f in info["files"] if "s2/iter2/labels/" in f and f.endswith(".km")]
    assert not [f for f in info["files"] if f.endswith(".npy")]
    carried = torch.load(os.path.join(tmp_path, "pack", rel, "checkpoint_last.pt"), weights_only=False)
    assert carried["last_optimizer_state"] is not None and carried["optimizer_history"][-1]["num_updates"] == 2
    # a fine-tuning still training has no marker yet: its checkpoint makes it a piece; a truncated
    # last checkpoint (a kill mid-copy) is not carried (it would resume from a slimmed interval one)
    whole = open(os.path.join(ckpts, "checkpoint_last.pt"), "rb").read()
    for k, data in (("k1", whole), ("k2", whole[: len(whole) // 2])):
        os.makedirs(os.path.join(half, "finetune", "ft", "s1", "iter1", k, "checkpoints"))
        open(os.path.join(half, "finetune", "ft", "s1", "iter1", k, "checkpoints", "checkpoint_last.pt"), "wb").write(data)
        open(os.path.join(half, "finetune", "ft", "s1", "iter1", k, "train.log"), "w").write("training\n")
    os.makedirs(os.path.join(half, "finetune", "ft", "s1", "iter1", ".stages"))
    files, _, pieces = pack_plan(half)
    assert pieces == [os.path.join("finetune", "ft", "s1", "iter1", "k1"), info["half_trained"][0]]
    assert os.path.join("finetune", "ft", "s1", "iter1", "k1", "checkpoints", "checkpoint_last.pt") in files
    assert not [f for f in files if "/k2/" in f]
    shutil.rmtree(os.path.join(half, "finetune"))
    again = str(tmp_path / "again")
    unpack_study(str(tmp_path / "pack"), again)
    lines = []
    run_study(cfg, again, only=["H1"], only_seeds=[2], echo=lines.append)
    assert [line for line in lines if line.startswith("[run ]")] == ["[run ] corpus", "[run ] iter2.train"], lines
    resumed = torch.load(os.path.join(again, rel, "checkpoint_last.pt"), weights_only=False)
    original = torch.load(os.path.join(work, rel, "checkpoint_last.pt"), weights_only=False)
    assert resumed["optimizer_history"][-1]["num_updates"] == 4
    assert all(torch.equal(resumed["model"][k], v) for k, v in original["model"].items())


def test_a_study_killed_before_any_finished_step_packs_and_unpacks(tmp_path):
    """Killed in its first training run (seen on a GPU lease): the unfinished run is left out, the
    pack holds pack.json alone, and unpacking it gives a work dir the study starts afresh in."""
    work = tmp_path / "w"
    (work / ".stages").mkdir(parents=True)
    run = work / "runs" / "study_h1" / "s1"
    (run / ".stages").mkdir(parents=True)
    (run / ".stages" / "iter1.km.dump.train.json").write_text("{}")  # its iteration has no .train marker
    (run / "iter1").mkdir()
    (run / "iter1" / "train.log").write_text("killed at update 1350\n")
    info = pack_study(str(work), str(tmp_path / "pack"))
    assert info["files"] == [] and info["models"] == []
    assert sorted(os.listdir(tmp_path / "pack")) == ["pack.json"]
    unpack_study(str(tmp_path / "pack"), str(tmp_path / "w2"))
    assert os.path.isdir(tmp_path / "w2") and not os.path.exists(tmp_path / "w2" / "runs")


def test_the_summary_travels_at_any_size_other_large_files_do_not(tmp_path):
    """Three seeds of every hypothesis make a study.json over the size cap (285 KB measured): the
    summaries are the study's results and travel; a large log beside a run does not."""
    work = tmp_path / "w"
    (work / ".stages").mkdir(parents=True)
    big = "x" * (SMALL + 1)
    for d in (work, work / "partial" / "H4.s1..3"):
        d.mkdir(parents=True, exist_ok=True)
        (d / "study.json").write_text(big)
        (d / "study.md").write_text("# Study\n")
    (work / "runs" / "r" / "s1").mkdir(parents=True)
    (work / "runs" / "r" / "s1" / "train.log").write_text(big)
    (work / "runs" / "r" / "s1" / "record.json").write_text("{}")
    files = pack_plan(str(work))[0]
    assert sorted(files) == sorted([os.path.join("partial", "H4.s1..3", "study.json"),
                                    os.path.join("partial", "H4.s1..3", "study.md"),
                                    os.path.join("runs", "r", "s1", "record.json"), "study.json", "study.md"])


def test_unpack_rewrites_whole_paths_only():
    text = '"/a/w/x" /a/w /a/w2 /a/w_x $W/a/w\n/a/w /m/a/w/x dir-/a/w__k-1 (/a/w) /a/w.'
    assert _moved(text, [("/a/w", "/b")]) == '"/b/x" /b /a/w2 /a/w_x $W/a/w\n/b /m/a/w/x dir-/b__k-1 (/b) /b.'


def test_h1_and_h2_are_measured_per_seed_and_summarised(study):
    _, work, s = study
    assert s["seeds"] == [1, 2] and s["hypotheses"] == ["H1", "H2"]
    h1 = s["H1"]
    d = h1["best_minus_mfcc_pnmi"]
    assert len(d["values"]) == 2 and d["std"] >= 0
    for seed, c in zip((1, 2), (p["cluster_quality"] for p in s["per_seed"])):
        chosen = max(c["layers"].values(), key=lambda q: q["train_pnmi"])  # picked on train, reported on valid
        assert c["best_minus_mfcc_pnmi"] == pytest.approx(chosen["pnmi"] - c["mfcc"]["pnmi"])
        assert c["seed"] == seed
    assert d["values"] == [p["cluster_quality"]["best_minus_mfcc_pnmi"] for p in s["per_seed"]]
    assert h1["held"]["all"] == (h1["held"]["pnmi"] and h1["held"]["phone_acc"])
    assert h1["held"]["pnmi"] == (d["mean"] >= 0.03 and min(d["values"]) > 0)
    assert set(h1["phone_acc"]) == {"iter1", "iter2"} and len(h1["phone_acc"]["iter1"]) == 7  # layers 0..6
    assert h1["updates"] == {"iter1": [4, 4], "iter2": [4, 4]}
    # two seeds really are two trainings: their iteration-1 checkpoints differ
    a, b = (os.path.join(work, "runs", "mini_h1", f"s{i}", "iter1", "checkpoints", "checkpoint_last.pt")
            for i in (1, 2))
    assert open(a, "rb").read() != open(b, "rb").read()
    h2 = s["H2"]["iterations"]
    assert list(h2) == ["iter1", "iter2"] and h2["iter1"]["updates"] == [2, 4]
    assert h2["iter2"]["curves"]["2"]["step"] == 6  # iteration 2 laid after iteration 1's 4 updates
    curve = h2["iter1"]["curves"]["4"]["layers"]["6"]["input_r2"]
    assert len(curve["values"]) == 2
    md = open(os.path.join(work, "study.md")).read()
    assert "## H1" in md and "## H2" in md and f"{d['mean']:.4f}" in md
    for f in ("h1_by_layer.png", "h2_over_updates.png"):
        assert open(os.path.join(work, f), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_rerun_redoes_nothing_and_a_lost_measurement_alone(study, capsys):
    cfg, work, before = study
    marker = os.path.join(work, ".stages", "s2.mini_h1.iter2.probe.2.json")
    assert os.path.isfile(marker)
    os.remove(marker)  # as if killed while probing that checkpoint
    lines = []
    after = run_study(cfg, work, only=["H1", "H2"], echo=lines.append)
    ran = [line for line in lines if line.startswith("[run ]")]
    assert ran == ["[run ] s2.mini_h1.iter2.probe.2"], ran
    assert after["H1"] == before["H1"]
    assert after["H2"]["iterations"]["iter2"]["curves"]["2"] == before["H2"]["iterations"]["iter2"]["curves"]["2"]
    # one seed of the same study on its own (a study spread over sessions): nothing redone, that seed summarised
    lines.clear()
    alone = run_study(cfg, work, only=["H1"], echo=lines.append, only_seeds=[2])
    assert not [line for line in lines if line.startswith("[run ]")]
    assert alone["seeds"] == [2] and alone["H1"]["best_minus_mfcc_pnmi"]["values"] == \
        before["H1"]["best_minus_mfcc_pnmi"]["values"][1:]
    # ...written beside the whole study's summary, which it does not replace
    assert after["summary_dir"] == work  # the same coverage: replaces W/study.json
    assert alone["summary_dir"] == os.path.join(work, "partial", "H1.s2")
    assert json.load(open(os.path.join(alone["summary_dir"], "study.json")))["seeds"] == [2]
    kept = json.load(open(os.path.join(work, "study.json")))
    assert kept["seeds"] == [1, 2] and kept["hypotheses"] == ["H1", "H2"] and kept["H1"] == before["H1"]


@pytest.mark.parametrize("text, message", [
    (STUDY.replace("seeds: 2", "seedz: 2"), "seedz: unknown key (did you mean seeds?)"),
    (STUDY.replace("k: 8", "k: eight"), "k: expected an integer"),
    (STUDY + "overrides: [common.seed=3]\n", "the seed is the study's"),
    (STUDY.replace("schedules: {H1: mini_h1.yaml,", "schedules: {H7: x,"), "schedules.H7: unknown key"),
    (STUDY.replace("H1: mini_h1.yaml, ", ""), "schedules.H1: required"),
    (STUDY.replace("H4: {top: mini_h4_top.yaml}", "H4: mini_h4_top.yaml"), "schedules.H4: give at least one arm"),
    (STUDY.replace("ks: [0, 1]", "ks: [1, 2]"), "finetune.ks: distinct k >= 0 including 0"),
    (STUDY.replace("judge: cer", "judge: per"), "finetune.judge: 'per' is not one of wer, cer"),
    (STUDY.replace("overrides: [optimization", "overrides: [model.reset_top_layers=1, optimization"),
     "finetune.overrides[0]: model.reset_top_layers is set by the study"),
    (STUDY + "overrides: ['~common.seed']\n", "the seed is the study's"),
    ("name: [", "not a readable YAML study"),
    (STUDY.replace("ks: [0, 1]", "ks: [0, null]"), "finetune.ks[1]: expected an integer, got null"),
    (STUDY.replace("H5: {half: mini_h5_half.yaml}", "H5: {1: mini_h5_half.yaml}"),
     "schedules.H5: arm name 1 is not text as written: quote it"),  # YAML read the name as a number
    (STUDY.replace("H5: {half: mini_h5_half.yaml}", "H5: {no: mini_h5_half.yaml}"), "arm name False is not text"),
    (STUDY.replace("H5: {half: mini_h5_half.yaml}", "H2: mini_h5_half.yaml"), "schedules.H2: unknown key"),
    (STUDY + "data: ''\n", "data: empty"),
    (STUDY + "seeds: 3\n", f"bad.yaml:{STUDY.count(chr(10)) + 1}: not a readable YAML study (found duplicate key seeds)"),
    (STUDY.replace("overrides: [optimization", "overrides: ['task.labels=[x]', optimization"),
     "finetune.overrides[0]: task.labels is set by the schedule"),
    (STUDY + "overrides: ['optimization={max_update: 9}']\n", "overrides[0]: optimization: a whole group sets"),
    (STUDY.replace("downstream: [letter_ctc, ", "downstream: [letters, "),
     "downstream[0]: 'letters' is not one of letter_ctc, phone_ctc, phone_recognition"),
    (STUDY.replace("downstream: [letter_ctc, phone_recognition]", "downstream: []"), "downstream: empty"),
    (STUDY.replace("downstream: [letter_ctc, ", "downstream: [phone_recognition, "), "downstream: each measure once"),
])
def test_bad_configs_fail_in_one_line(tmp_path, text, message):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(StudyError) as e:
        load_study(str(p))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unknown_hypothesis_and_missing_config_are_refused(tmp_path, capsys):
    assert main(["study", "--work-dir", str(tmp_path / "w"), "--only", "H9"]) == 2
    assert "--only H9: unknown hypothesis" in capsys.readouterr().err
    assert main(["study", "--work-dir", str(tmp_path / "w"), "--config", "nope"]) == 2
    assert "nope: study not found" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "w")


def test_h3_h4_h5_on_the_same_runs(armed):
    cfg, work, s = armed
    out = os.path.join(work, ARMED)
    assert s["hypotheses"] == ["H3", "H4", "H5"] and s["seeds"] == [1]
    seed = s["per_seed"][0]
    runs = os.path.join(work, "runs")
    # H3: both H1 models fine-tuned with k = 0 and 1 reset; the study reads what reset-sweep wrote
    h3 = s["H3"]["iterations"]
    assert list(h3) == ["iter1", "iter2"] and h3["iter1"]["ks"] == [0, 1]
    sweep = json.load(open(os.path.join(work, "finetune", "mini_h1", "s1", "iter2", "sweep.json")))
    assert [r["k"] for r in sweep] == [0, 1]
    assert h3["iter2"]["rows"]["1"]["wer"]["values"] == [sweep[1]["test"]["wer"]]
    assert s["H3"]["judge"] == "cer" and h3["iter2"]["rows"]["1"]["minus_k0"]["values"] == [
        pytest.approx(sweep[1]["test"]["cer"] - sweep[0]["test"]["cer"])]  # the study's finetune.judge
    # H4: the arm starts from H1's iteration-1 model of the same seed, with H1's iteration-2 budget
    top = json.load(open(os.path.join(runs, "mini_h4_top", "s1", "records.json")))[0]
    assert top["previous_checkpoint"] == os.path.join(runs, "mini_h1", "s1", "iter1", "checkpoints",
                                                      "checkpoint_last.pt")
    h4 = s["H4"]
    assert list(h4["arms"]) == ["auto", "top"] and h4["reference"] == "auto"
    assert h4["arms"]["top"]["target_layer"] == [6] and h4["arms"]["top"]["updates"] == [4]
    assert h4["arms"]["auto"]["wer"]["values"] == [sweep[0]["test"]["wer"]]  # H3's k = 0 run, not a second one
    assert h4["judge"] == "cer" and h4["arms"]["top"]["error_minus_reference"]["values"] == [
        pytest.approx(h4["arms"]["top"]["cer"]["values"][0] - sweep[0]["test"]["cer"])]
    assert h4["arms"]["top"]["best_phone_acc"]["values"][0] == max(
        lay["phone_acc"] for lay in seed["H4"]["top"]["probe"]["layers"].values())
    # H5: the standard recipe (H1: 4 + 4 updates) against half the updates; final models clustered
    h5 = s["H5"]
    assert h5["arms"]["standard"]["updates"] == [8] and h5["arms"]["half"]["updates"] == [4]
    cq = seed["H5"]["half"]["cluster_quality"]
    assert h5["arms"]["half"]["best_layer_pnmi"]["values"] == [cq["layers"][str(cq["best_layer"])]["pnmi"]]
    assert sorted(os.listdir(os.path.join(work, "finetune"))) == ["mini_h1", "mini_h4_top", "mini_h5_half"]
    assert set(seed["other_runs"]) == {"mini_h4_top", "mini_h5_half"}
    trained = [r["train_seconds"] for run in (seed["records"], *seed["other_runs"].values()) for r in run]
    assert min(trained) > 0 and s["compute"]["train_hours"] == round(sum(trained) / 3600, 2)
    # fine-tuning time: every fine-tuning once (6: H3's 2 x 2, H4's top, H5's half; the reference arms reuse H3's)
    tuned = [r["train"]["train_seconds"] for d, _, files in os.walk(os.path.join(work, "finetune"))
             if "sweep.json" in files for r in json.load(open(os.path.join(d, "sweep.json")))]
    assert len(tuned) == 6 and min(tuned) > 0 and seed["finetune_seconds"] == pytest.approx(sum(tuned))
    md = open(os.path.join(out, "study.md")).read()
    assert "## H3" in md and "## H4" in md and "## H5" in md
    assert "| k reset | WER | CER | CER - (k = 0) |" in md
    for f in ("h3_cer_vs_k.png", "h4_arms.png", "h5_arms.png"):
        assert open(os.path.join(out, f), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        assert not os.path.exists(os.path.join(work, f))


def _refused(armed, tmp_path, only=None, study=STUDY, **changed) -> str:
    """Run a changed copy of the mini study (``mini_h4_top=TEXT``: a schedule changed) on the armed
    corpus; its one-line refusal, with no work dir."""
    _, work, _ = armed
    for name, text in {"mini": study, **SCHEDULES, **changed}.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    with pytest.raises(StudyError) as e:
        run_study(str(tmp_path / "mini.yaml"), str(tmp_path / "w"), data=os.path.join(work, "corpus"), only=only)
    assert "\n" not in str(e.value) and not os.path.exists(tmp_path / "w")
    return str(e.value)


@pytest.mark.parametrize("old, new, message", [
    ("max_update: 4\n", "max_update: 3\n", "H4 compares at H1's iteration-2 budget (4)"),
    ("layer: 6, k: 8", "layer: 6, k: 9", "targets with K other than the study's k=8"),
    ("layer: 6,", "layer: 7,", "layer: 7 > depth 6 of the previous model"),
    ("max_update: 4\n", "init: continue\n    max_update: 4\n", "init 'continue' differs from H1's 'scratch'"),
    ("common.log_interval=1]", "common.log_interval=1, model.dropout=0.0]", "overrides"),
])
def test_unfair_or_broken_h4_arms_are_refused_before_any_work(armed, tmp_path, old, new, message):
    assert message in _refused(armed, tmp_path, ["H4"], mini_h4_top=H4_TOP.replace(old, new))


def test_h5_arms_must_have_the_standard_budget_or_half(armed, tmp_path):
    message = _refused(armed, tmp_path, ["H5"], mini_h5_half=H5_HALF.replace("max_update: 4\n", "max_update: 3\n"))
    assert "3 updates in all; H5 compares at H1's total (8) or half of it" in message


@pytest.mark.parametrize("old, new, message", [
    ("H4: {top: mini_h4_top.yaml}", "H4: {auto: mini_h4_top.yaml}", "schedules.H4.auto: that name is the reference"),
    ("H5: {half: mini_h5_half.yaml}", "H5: {standard: mini_h5_half.yaml}", "schedules.H5.standard: that name is"),
    ("ks: [0, 1]", "ks: [0, 7]", "finetune: --ks 0,7: the model has 6 transformer layers"),
    ("overrides: [optimization", "overrides: [optimisation.lr=1, optimization", "finetune: "),
    ("H5: {half: mini_h5_half.yaml}", "H5: {half: mini_h4_top.yaml}", "schedule name 'mini_h4_top' is also"),
])
def test_arm_names_and_fine_tuning_are_checked_before_any_work(armed, tmp_path, old, new, message):
    assert message in _refused(armed, tmp_path, study=STUDY.replace(old, new))


def test_the_pack_carries_interval_checkpoints_of_the_h1_run_only(armed):
    """H2 probes the H1 run over updates; an H4/H5 arm only at its last checkpoint: the arms'
    interval checkpoints are dead weight in a pack. A work dir from before the record (or one
    without it) carries them all, as before."""
    _, work, _ = armed
    record = os.path.join(work, "probed_runs.json")
    assert os.path.join("runs", "mini_h1") in json.load(open(record))["runs"]
    assert os.path.join("runs", "mini_h4_top") not in json.load(open(record))["runs"]
    ckpts = os.path.join(work, "runs", "mini_h4_top", "s1", "iter2", "checkpoints")
    intervals = [f for f in os.listdir(ckpts) if f.startswith("checkpoint_1_")]
    assert intervals  # on disk, never probed
    arm = [m for m in pack_plan(work)[1] if "mini_h4_top" in m]
    assert arm == [os.path.relpath(os.path.join(ckpts, "checkpoint_last.pt"), work)]
    good = open(record).read()
    os.remove(record)
    try:
        before_last = [f for f in intervals if f != "checkpoint_1_4.pt"]  # update 4's is probed (the last)
        assert [m for m in pack_plan(work)[1] if "mini_h4_top" in m] == sorted(
            os.path.relpath(os.path.join(ckpts, f), work) for f in [*before_last, "checkpoint_last.pt"])
        open(record, "w").write('{"runs": "runs/mini_h1"}')
        with pytest.raises(StudyError, match="probed_runs.json: unreadable"):
            pack_plan(work)
    finally:
        open(record, "w").write(good)


def test_h3_to_h5_rerun_redoes_nothing(armed, capsys):
    cfg, work, before = armed
    capsys.readouterr()
    lines = []
    after = run_study(cfg, work, seeds=1, only=["H3", "H4", "H5"], echo=lines.append)
    assert not [line for line in lines if line.startswith("[run ]")]
    assert "[run ]" not in capsys.readouterr().out  # reset-sweep's own stages too
    assert {h: after[h] for h in ("H3", "H4", "H5")} == {h: before[h] for h in ("H3", "H4", "H5")}


def test_a_narrower_call_keeps_the_wider_summary(tmp_path):
    from ae_hubert.study.summary import summary_dir

    w, said = str(tmp_path), []
    call = lambda hs, seeds, study="s": summary_dir({"study": study, "hypotheses": hs, "seeds": seeds}, w, said.append)
    assert call(["H1"], [1]) == w  # nothing there yet
    (tmp_path / "study.json").write_text(json.dumps({"study": "s", "hypotheses": ["H1", "H2"], "seeds": [1, 2, 3]}))
    assert call(["H1", "H2"], [3, 2, 1]) == w and call(["H1", "H2", "H3"], [1, 2, 3, 4]) == w and not said
    assert call(["H3"], [3, 1]) == os.path.join(w, "partial", "H3.s1+3") and os.path.isdir(os.path.join(w, "partial"))
    assert "leaves out H1, H2, seed 2 of" in said[-1]
    assert call(["H1", "H2"], [2, 3, 4, 5, 7]) == os.path.join(w, "partial", "H1+H2.s2..5+7")
    assert call(["H1"], [1], study="other") == w and "summarised study 's', not 'other'" in said[-1]
    (tmp_path / "study.json").write_text("{")  # not one a whole call wrote: nothing to keep
    assert call(["H1"], [1]) == w


def test_verdicts_over_seeds():
    """H1 needs the margin on average and a gain in every seed; H2 drift is a fall after the first
    checkpoint, then a climb back, each beyond the probe noise (DRIFT_MARGIN)."""
    def seed(diff, acc1, acc2, r2):
        layers = {"1": {"pnmi": 0.3, "train_pnmi": 0.3}, "2": {"pnmi": 0.2, "train_pnmi": 0.2}}
        probe = lambda acc, r: {"autoencoder_index": 0.1, "layers": {  # noqa: E731
            "0": {"phone_acc": 0.1, "input_r2": 0.9}, "2": {"phone_acc": acc, "input_r2": r}}}
        return {"cluster_quality": {"k": 8, "mfcc": {"pnmi": 0.3 - diff}, "layers": layers, "best_layer": 1,
                                    "best_minus_mfcc_pnmi": diff},
                "probes": {"iter1": {str(u): probe(acc1, x) for u, x in zip((10, 20, 30), r2)},
                           "iter2": {"30": probe(acc2, 0.5)}}}

    h = hyp1.summarise([seed(0.10, 0.4, 0.5, (0.5, 0.4, 0.6)), seed(-0.01, 0.4, 0.45, (0.5, 0.4, 0.3))])
    assert h["best_minus_mfcc_pnmi"]["mean"] == pytest.approx(0.045)
    assert not h["held"]["pnmi"] and h["held"]["phone_acc"] and not h["held"]["all"]  # one seed below MFCC
    h = hyp1.summarise([seed(0.04, 0.4, 0.5, (0.5, 0.4, 0.6)), seed(0.03, 0.4, 0.39, (0.5, 0.4, 0.3))])
    assert h["held"]["pnmi"] and not h["held"]["phone_acc"]  # iteration 2 worse in one seed
    h2 = hyp2.summarise([seed(0, 0, 0, (0.5, 0.4, 0.6)), seed(0, 0, 0, (0.5, 0.4, 0.45))])["iterations"]["iter1"]
    assert h2["top_input_r2_rise"]["values"] == pytest.approx([0.2, 0.05]) and h2["drifts"]
    assert h2["top_input_r2_dip"]["values"] == pytest.approx([0.1, 0.1]) and h2["top_input_r2_min_at"] == [20, 20]
    h2 = hyp2.summarise([seed(0, 0, 0, (0.5, 0.4, 0.6)), seed(0, 0, 0, (0.5, 0.4, 0.3))])["iterations"]["iter1"]
    assert not h2["drifts"] and h2["top_input_r2_min_at"] == [20, 30]  # lowest at the end: no drift
    h2 = hyp2.summarise([seed(0, 0, 0, (0.3, 0.4, 0.5))] * 2)["iterations"]["iter1"]
    assert not h2["drifts"] and h2["top_input_r2_rise"]["mean"] == pytest.approx(0.2)  # a rise alone is no turn back
    h2 = hyp2.summarise([seed(0, 0, 0, (0.5, 0.495, 0.6))] * 2)["iterations"]["iter1"]
    assert not h2["drifts"]  # the dip is within the probe's noise


def test_h2_turn_back_over_depth_needs_a_dip_through_the_middle():
    """At the end of an iteration: input R^2 falls from layer 1 into the middle and climbs again at
    the top (the autoencoder shape) -- not a profile that only rises with depth (seen in seed 2)."""
    def seed(*r2):  # input R^2 of layers 1..len(r2) at the one checkpoint
        layers = {str(i + 1): {"phone_acc": 0.3, "input_r2": r} for i, r in enumerate(r2)}
        return {"probes": {"iter1": {"500": {"autoencoder_index": 0.0, "layers": {"0": {"phone_acc": 0.2, "input_r2": 0.4}, **layers}}}}}

    h = hyp2.summarise([seed(0.5, 0.3, 0.45), seed(0.5, 0.35, 0.4)])["iterations"]["iter1"]
    assert h["top_turns_back"] and h["depth_input_r2_min_layer"] == [2, 2]
    assert h["depth_input_r2_rise"]["values"] == pytest.approx([0.15, 0.05])
    h = hyp2.summarise([seed(0.49, 0.5, 0.52)])["iterations"]["iter1"]  # seed 2's shape: only rises
    assert not h["top_turns_back"] and h["depth_input_r2_min_layer"] == [1]
    h = hyp2.summarise([seed(0.5, 0.3, 0.45), seed(0.5, 0.3, 0.305)])["iterations"]["iter1"]
    assert not h["top_turns_back"]  # the second seed's climb is within the noise
    h = hyp2.summarise([seed(0.5)])["iterations"]["iter1"]  # one transformer layer: no middle to dip through
    assert h["depth_input_r2_dip"] is None and not h["top_turns_back"]


def test_reset_helps_only_when_lower_in_every_seed():
    def seed(*wers):
        return {"finetune": {"iter1": {str(k): {"wer": w, "cer": w / 2} for k, w in enumerate(wers)}}}

    h = hyp3.summarise([seed(0.5, 0.4, 0.45), seed(0.5, 0.45, 0.3)])["iterations"]["iter1"]
    assert h["best_reset_k"] == 2 and h["reset_helps"]  # lowest mean (0.375), below k = 0 in both seeds
    assert h["rows"]["2"]["minus_k0"]["values"] == pytest.approx([-0.05, -0.2])
    h = hyp3.summarise([seed(0.5, 0.4, 0.6), seed(0.5, 0.45, 0.2)])["iterations"]["iter1"]
    assert h["best_reset_k"] == 2 and not h["reset_helps"]  # lowest mean, but worse than k = 0 in seed 1

    def cer_differs(wers, cers):
        return {"finetune": {"iter1": {str(k): {"wer": w, "cer": c} for k, (w, c) in enumerate(zip(wers, cers))}}}

    # WER saturated at 1 (no k below k = 0) while CER falls with k = 1 in both seeds: the judge decides
    seeds = [cer_differs((1.0, 1.0), (0.6, 0.5)), cer_differs((1.0, 1.01), (0.62, 0.55))]
    assert not hyp3.summarise(seeds)["iterations"]["iter1"]["reset_helps"]
    h = hyp3.summarise(seeds, judge="cer")
    assert h["judge"] == "cer" and h["iterations"]["iter1"]["reset_helps"]
    assert h["iterations"]["iter1"]["rows"]["1"]["minus_k0"]["values"] == pytest.approx([-0.1, -0.07])


def test_fine_tuning_time_counts_each_fine_tuning_once(monkeypatch, tmp_path):
    """A seed's fine-tuning time counts each fine-tuning once: the reference arms of H4 and H5
    fine-tune H1's iteration 2 with k = 0, which H3 fine-tunes too (one sweep, one time)."""
    import ae_hubert.finetune.reset_sweep as sweep
    from ae_hubert.study.config import Plan
    from ae_hubert.study.seed import SeedRuns, finetune_seconds

    # a marker from before train_seconds was recorded: the last process's fairseq wall time
    assert finetune_seconds({"train": {"wall": 42.0}}) == 42.0
    assert finetune_seconds({"train_seconds": 7.0, "train": {"wall": 3.0}}) == 7.0
    seconds = {("study_h1", "iter1"): 5.0, ("study_h1", "iter2"): 10.0, ("h4_top", "iter2"): 20.0,
               ("h5_half", "iter1"): None}  # a fine-tuning without a recorded time counts 0

    def fake_sweep(ckpt, data, ks, work_dir, **kw):
        run, _, it = work_dir.split(os.sep)[-3:]
        return [{"k": k, "test": {"wer": 1.0, "cer": 0.5}, "train": {"train_seconds": seconds[(run, it)]}}
                for k in ks]

    monkeypatch.setattr(sweep, "reset_sweep", fake_sweep)
    seed = SeedRuns(Plan(load_study("study_cpu"), None), [], str(tmp_path), 1, None, print)
    for run, it, ks in (("study_h1", "iter2", [0]), ("h4_top", "iter2", [0]), ("study_h1", "iter2", [0]),
                        ("h5_half", "iter1", [0]), ("study_h1", "iter1", [0, 1]), ("study_h1", "iter2", [0, 1])):
        assert seed.finetune(run, it, "ckpt", ks)["0"]["train_seconds"] == seconds[(run, it)]
    assert sum(v for v in seed.finetuned.values() if v) == 10.0 * 2 + 20.0 + 5.0 * 2


def test_a_seed_trains_only_the_h1_iterations_its_hypotheses_need(monkeypatch, tmp_path):
    """``--only H0`` measures on H1's iteration 1: the seed trains that iteration alone and its
    record holds it alone; a hypothesis that needs iteration 2 (H6) trains it when it is wanted."""
    import types

    import ae_hubert.pipeline.iterate as iterate_module
    import ae_hubert.study.seed as seed_module
    from ae_hubert.study.config import Plan

    asked = []

    def fake_iterate(spec, run_dir, iterations=None, **kw):
        asked.append((os.path.basename(os.path.dirname(run_dir)), iterations))
        return [{"iteration": f"iter{i}", "updates": 10, "targets": [], "train_seconds": 1.0, "sidecar_seconds": 0.0}
                for i in range(1, (iterations or 2) + 1)]

    monkeypatch.setattr(iterate_module, "iterate", fake_iterate)
    monkeypatch.setattr(seed_module, "hypotheses", lambda: {
        "FIRST": types.SimpleNamespace(measure=lambda s: {"first": s.h1_first()["iteration"]}),
        "BOTH": types.SimpleNamespace(measure=lambda s: {"both": len(s.h1())})})
    plan = Plan(load_study("study_cpu"), None)
    out = seed_module.SeedRuns(plan, ["FIRST"], str(tmp_path), 1, None, print).measure()
    assert out["first"] == "iter1" and [r["iteration"] for r in out["records"]] == ["iter1"]
    assert asked == [("study_h1", 1)]
    asked.clear()
    out = seed_module.SeedRuns(plan, ["FIRST", "BOTH"], str(tmp_path), 1, None, print).measure()
    assert out["both"] == 2 and [r["iteration"] for r in out["records"]] == ["iter1", "iter2"]
    assert asked == [("study_h1", 1), ("study_h1", None)]


def test_the_shipped_study_parses():
    s = load_study("study_cpu")
    assert s.seeds == 3 and s.k == 100 and s.schedules == {
        "H0": {"autoencoder": "study_h0_autoencoder", "phones": "study_h0_phones"}, "H1": "study_h1",
        "H4": {"middle": "study_h4_middle", "top": "study_h4_top"},
        "H5": {"progressive": "study_h5_progressive", "progressive_half": "study_h5_progressive_half"},
        "H6": {"mfcc_middle": "study_h6_mfcc_middle", "mfcc_top": "study_h6_mfcc_top"}}
    assert s.finetune.ks == [0, 1, 2, 3] and s.finetune.split == "test" and s.finetune.judge == "cer"
    assert "optimization.max_update=1500" in s.finetune.overrides


def test_the_shipped_schedules_are_fair_arms(armed):
    """The shipped study's schedules compose on a study corpus, with equal budgets where compared."""

    _, work, _ = armed
    s = load_study("study_cpu")
    s.data = os.path.join(work, "corpus")
    assert check_schedules(s, list(names())) == {
        "updates": {"H1": 4000, "H0.autoencoder": 2000, "H0.phones": 2000, "H4.middle": 2000, "H4.top": 2000,
                    "H5.progressive": 4000, "H5.progressive_half": 2000, "H6.mfcc_middle": 2000, "H6.mfcc_top": 2000},
        "references": {"H0": "mfcc", "H4": "auto", "H5": "standard", "H6": "standard"}}


def test_the_gpu_study_scales_h1_and_h5_only(armed):
    """study_gpu (item 6: 10x audio, Base-size model, one GPU) composes on a study corpus: its
    schedules use pretrain/study_gpu, its H5 arms have H1's budget and half of it, and its
    fine-tuning (the Base 10 h recipe, shortened) composes against a 12-layer model."""
    from ae_hubert.pipeline.schedule import load_schedule

    _, work, _ = armed
    s = load_study("study_gpu")
    assert s.corpus.utterances == 10 * load_study("study_cpu").corpus.utterances
    assert set(s.schedules) == {"H1", "H5"} and s.finetune.config == "finetune/base_10h"
    s.data = os.path.join(work, "corpus")
    checked = check_schedules(s, [h for h in names() if h not in ("H0", "H4", "H6")])
    assert checked["updates"] == {"H1": 40000, "H5.progressive": 40000, "H5.progressive_half": 20000}
    assert checked["references"] == {"H5": "standard"}  # no H0 or H4 here, so no reference arm for them
    assert load_schedule("study_gpu_h1", s.data, []).train_config_name == "study_gpu"


def test_packing_touches_nothing_but_its_output(tmp_path):
    """Neighbours named like the pack's old temporary names survive; a directory whose pack.json is
    not one this tool wrote is not replaced; a failed pack or unpack leaves nothing behind; a
    hand-edited pack.json is refused in one line."""
    work = tmp_path / "w"
    (work / ".stages").mkdir(parents=True)
    (work / "runs" / "r").mkdir(parents=True)
    (work / "runs" / "r" / "record.json").write_text(json.dumps({"ckpt": str(work / "runs" / "r" / "c.pt")}))
    for name in ("keep.old", "keep.partial", "u.partial"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "precious.txt").write_text("mine")
    pack_study(str(work), str(tmp_path / "keep"))
    unpack_study(str(tmp_path / "keep"), str(tmp_path / "u"))
    assert all((tmp_path / n / "precious.txt").read_text() == "mine" for n in ("keep.old", "keep.partial", "u.partial"))
    assert json.load(open(tmp_path / "u" / "runs" / "r" / "record.json"))["ckpt"] == str(tmp_path / "u" / "runs" / "r" / "c.pt")
    (tmp_path / "pj").mkdir()
    (tmp_path / "pj" / "pack.json").write_text("{}")
    (tmp_path / "pj" / "precious.txt").write_text("mine")
    with pytest.raises(AeHubertError, match="is not a pack"):
        pack_study(str(work), str(tmp_path / "pj"))
    (work / "runs" / "r" / ".hydra").mkdir()
    (work / "runs" / "r" / ".hydra" / "config.yaml").write_bytes(b"\xff\xfe bad")  # a text file packed, paths rewritten
    with pytest.raises(AeHubertError, match=r"config\.yaml: not UTF-8"):
        pack_study(str(work), str(tmp_path / "bad"))
    assert sorted(os.listdir(tmp_path)) == ["keep", "keep.old", "keep.partial", "pj", "u", "u.partial", "w"]
    info = json.load(open(tmp_path / "keep" / "pack.json"))
    for edit in ({"work_dir": ""}, {"models": [1]}, {"package": ["x"]}):
        (tmp_path / "keep" / "pack.json").write_text(json.dumps({**info, **edit}))
        with pytest.raises(AeHubertError, match="pack.json: (unreadable pack description|lists 1)"):
            unpack_study(str(tmp_path / "keep"), str(tmp_path / "u2"))
    assert not os.path.exists(tmp_path / "u2")


def test_every_hypothesis_is_one_module_and_a_new_one_needs_nothing_else(tmp_path, monkeypatch):
    """The registry finds study/hN.py by name; each defines the interface; a module added to it
    (here a fake H9 with arms) is read from the YAML, summarised, written and reported with no
    other change."""
    import types

    from ae_hubert.study import hypotheses as registry
    from ae_hubert.study.config import load_study
    from ae_hubert.study.summary import summarise, verdict_lines, write_study

    here = os.path.dirname(registry.__file__)
    assert list(names()) == sorted((f[:-3].upper() for f in os.listdir(here) if f[0] == "h" and f[1:-3].isdigit()
                                    and f.endswith(".py")), key=lambda h: int(h[1:]))
    for h, module in registry.hypotheses().items():
        assert all(hasattr(module, a) for a in registry.ATTRIBUTES), h
    h9 = types.SimpleNamespace(
        TITLE="a ninth question", ARMS=True, check=lambda plan: None, measure=lambda seed: {"H9": seed.seed},
        summarise=lambda per_seed, study: {"values": [s["H9"] for s in per_seed]},
        markdown=lambda h, seeds: [f"nine: {h['values']}"], plots=lambda h, out: [],
        verdict=lambda h: [f"H9 values {h['values']}"])
    monkeypatch.setitem(registry.hypotheses(), "H9", h9)
    cfg = tmp_path / "s.yaml"
    cfg.write_text("schedules: {H1: study_h1, H9: {wide: study_h4_top}}\n")
    study = load_study(str(cfg))
    assert study.schedules["H9"] == {"wide": "study_h4_top"}
    per_seed = [{"seed": s, "records": [], "H9": s} for s in (1, 2)]
    summary = summarise(study, ["H9"], per_seed)
    assert summary["H9"] == {"values": [1, 2]}
    write_study(summary, str(tmp_path))
    assert "## H9: a ninth question\n\nnine: [1, 2]" in (tmp_path / "study.md").read_text()
    assert verdict_lines(summary)[0] == "H9 values [1, 2]"


@pytest.fixture(scope="module")
def controls(armed):
    """H0 and H6 on seed 1 of the armed work dir: the two controls trained (H1's iteration 1 the
    reference), an H6 arm started from H1's iteration-1 model (H1's iteration 2 the reference)."""
    cfg, work, _ = armed
    assert main(["study", "--work-dir", work, "--config", cfg, "--only", "H0,H6", "--seeds", "1"]) == 0
    return cfg, work, json.load(open(os.path.join(work, "partial", "H0+H6.s1", "study.json")))


def test_h0_controls_are_probed_over_updates_and_fine_tuned(controls):
    cfg, work, s = controls
    h0, seed = s["H0"], s["per_seed"][0]["H0"]
    assert list(h0["arms"]) == ["mfcc", "autoencoder", "phones"] and h0["reference"] == "mfcc"
    for arm in ("mfcc", "autoencoder", "phones"):
        assert sorted(seed[arm]["probes"], key=int) == ["2", "4"], arm  # every checkpoint (saved every 2)
    assert seed["mfcc"]["run"] == "mini_h1" and h0["arms"]["autoencoder"]["run"] == "mini_h0_autoencoder"
    # the reference's fine-tuning is H3's k = 0 (the same reset-sweep work dir), not a new one; only
    # the autoencoder's top layers are reset for H0
    sweep = json.load(open(os.path.join(work, "finetune", "mini_h1", "s1", "iter1", "sweep.json")))
    assert sorted(seed["mfcc"]["finetune"]) == ["0"] and seed["mfcc"]["finetune"]["0"]["cer"] == sweep[0]["test"]["cer"]
    assert sorted(seed["autoencoder"]["finetune"]) == ["0", "1"] and sorted(seed["phones"]["finetune"]) == ["0"]
    # the downstream measures: phone CTC fine-tunings (PER = their WER over phone tokens), the frozen recogniser
    for arm in ("mfcc", "autoencoder", "phones"):
        tuned = json.load(open(os.path.join(work, "finetune_phones", seed[arm]["run"], "s1", "iter1", "sweep.json")))
        phones = sum(len(line.split()) for line in open(os.path.join(work, "corpus", "test.phnseq")))
        assert seed[arm]["phone_ctc"]["wer"] == tuned[0]["test"]["wer"] and tuned[0]["test"]["words"] == phones
        pr = seed[arm]["phone_recognition"]
        assert 0 <= pr["per"] and len(pr["layer_weights"]) == 7 and sum(pr["layer_weights"]) == pytest.approx(1)
        tests = sum(1 for _ in open(os.path.join(work, "corpus", "test.tsv"))) - 1
        assert pr["train_utterances"] == 8 and pr["utterances"] == min(6, tests) and pr["split"] == "test"
    assert set(h0["downstream"]["measures"]) == {"letter_ctc", "phone_ctc", "phone_recognition"}
    phnseq = open(os.path.join(work, "corpus", "test.phnseq")).read().split("\n")[0].split()
    assert phnseq and "sil" not in phnseq
    ae = h0["arms"]["autoencoder"]
    assert ae["best_reset_k"] == 1 and ae["reset_minus_k0"]["values"] == [
        pytest.approx(seed["autoencoder"]["finetune"]["1"]["cer"] - seed["autoencoder"]["finetune"]["0"]["cer"])]
    last = seed["autoencoder"]["probes"]["4"]["layers"]
    assert ae["top_layer"] == 6 and ae["top_input_r2"]["values"] == [last["6"]["input_r2"]]
    assert set(h0["checks"]) == {"input_r2_autoencoder_mfcc_phones", "phone_acc_phones_mfcc_autoencoder",
                                 "index_autoencoder_mfcc_phones", "shape_fires_on_autoencoder",
                                 "shape_silent_on_phones", "reset_helps_autoencoder"}
    assert h0["passes"] == all(h0["checks"].values())
    # the controls' interval checkpoints travel in a pack (their probes over updates)
    runs = json.load(open(os.path.join(work, "probed_runs.json")))["runs"]
    assert {os.path.join("runs", r) for r in ("mini_h1", "mini_h0_autoencoder", "mini_h0_phones")} <= set(runs)
    out = os.path.join(work, "partial", "H0+H6.s1")
    md = open(os.path.join(out, "study.md")).read()
    assert "## H0: positive controls" in md and "| autoencoder |" in md and "The instrument" in md
    assert open(os.path.join(out, "h0_controls.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_control_rerun_from_scratch_reproduces_its_records_and_probes(controls, tmp_path, capsys):
    """``study-rerun``: seed 1 of the phones control trained again in a new work dir by the study's
    own steps gives its records and probes number for number; a results copy with one figure
    changed is caught (exit 1, naming the record and the figure), and a run the study did not probe
    over updates is refused before any work."""
    cfg, work, _ = controls
    again = str(tmp_path / "again")
    args = ["--seed", "1", "--work-dir", again, "--config", cfg, "--data", os.path.join(work, "corpus")]
    assert main(["study-rerun", work, "--run", "mini_h4_top", *args]) == 2
    assert "not a run the study probed over updates; it has: mini_h0_autoencoder, mini_h0_phones, mini_h1" \
        in capsys.readouterr().err
    assert not os.path.exists(again)
    assert main(["study-rerun", work, "--run", "mini_h0_phones", *args]) == 0
    out = capsys.readouterr().out
    assert "runs/mini_h0_phones/s1/iter1/record.json: identical" in out
    for updates in (2, 4):
        assert f"s1.mini_h0_phones.iter1.probe.{updates}.json: identical" in out
    assert "all 3 records as in" in out
    copy = str(tmp_path / "copy")
    assert main(["study-pack", work, copy, "--results-only"]) == 0
    probe = os.path.join(copy, ".stages", "s1.mini_h0_phones.iter1.probe.4.json")
    record = json.load(open(probe))
    record["result"]["layers"]["2"]["input_r2"] *= 1 + 1e-6
    json.dump(record, open(probe, "w"))
    capsys.readouterr()
    assert main(["study-rerun", copy, "--run", "mini_h0_phones", *args]) == 1  # nothing retrained: compared only
    out, err = capsys.readouterr()
    assert "s1.mini_h0_phones.iter1.probe.4.json: 1 differ" in out and "layers.2.input_r2" in out
    assert "1 of 3 records of mini_h0_phones seed 1 differ" in err and "[run ]" not in out
    assert main(["study-rerun", copy, "--run", "mini_h0_phones", *args, "--tolerance", "1e-5"]) == 0


def test_h6_arm_has_two_heads_and_is_measured_like_the_standard_iteration(controls):
    """The arm predicts the layer's clusters at the top and MFCC clusters (at 50 Hz) at layer 3, from
    H1's iteration-1 model; every figure is paired with H1's iteration 2 of the same seed."""
    cfg, work, s = controls
    h6, seed = s["H6"], s["per_seed"][0]["H6"]
    assert list(h6["arms"]) == ["standard", "mfcc_middle"] and seed["standard"]["run"] == "mini_h1"
    record = json.load(open(os.path.join(work, "runs", "mini_h6_mfcc_middle", "s1", "records.json")))[0]
    assert [(t["source"], t["rate"]) for t in record["targets"]] == [("layer", 50.0), ("mfcc", 50.0)]
    assert record["previous_checkpoint"] == os.path.join(work, "runs", "mini_h1", "s1", "iter1", "checkpoints",
                                                         "checkpoint_last.pt")
    mid = h6["arms"]["mfcc_middle"]
    top = max(seed["mfcc_middle"]["probe"]["layers"], key=int)
    assert mid["top_input_r2"]["values"] == [seed["mfcc_middle"]["probe"]["layers"][top]["input_r2"]]
    assert mid["minus_reference"]["best_layer_pnmi"]["values"] == [pytest.approx(
        mid["best_layer_pnmi"]["values"][0] - h6["arms"]["standard"]["best_layer_pnmi"]["values"][0])]
    # the standard arm's letter fine-tuning is H3's k = 0 (the same reset-sweep work dir)
    sweep = json.load(open(os.path.join(work, "finetune", "mini_h1", "s1", "iter2", "sweep.json")))
    assert h6["downstream"]["letter_ctc"]["arms"]["standard"]["values"] == [sweep[0]["test"]["cer"]]
    # H6 takes the study's downstream: measures only (H0 took all three): no phone CTC for its arms
    assert set(h6["downstream"]) == {"letter_ctc", "phone_recognition"}
    assert "phone_ctc" not in seed["mfcc_middle"] and "phone_recognition" in seed["mfcc_middle"]
    assert not os.path.exists(os.path.join(work, "finetune_phones", "mini_h6_mfcc_middle"))
    md = open(os.path.join(work, "partial", "H0+H6.s1", "study.md")).read()
    assert "## H6: modified losses on the top layers" in md and "| top_input_r2 |" in md


@pytest.mark.parametrize("schedule, old, new, message", [
    ("mini_h0_autoencoder", "+model.reconstruct_layer=6", "+model.reconstruct_layer=5",
     "the autoencoder control's top layer (6) reconstructs the input"),
    ("mini_h0_autoencoder", "max_update: 4", "max_update: 3", "the controls compare at H1's iteration-1 budget (4)"),
    ("mini_h0_phones", "{source: phones}", "{source: mfcc, k: 8}", "the phones control trains on the corpus's phones"),
    ("mini_h0_phones", "common.log_interval=1]", "common.log_interval=1, model.dropout=0.0]", "overrides"),
    ("mini_h0_phones", "    max_update: 4\n", "    max_update: 4\n  - targets: [{source: phones}]\n    max_update: 4\n",
     "a control is one iteration"),
])
def test_unfair_controls_are_refused_before_any_work(armed, tmp_path, schedule, old, new, message):
    text = SCHEDULES[schedule]
    assert old in text
    assert message in _refused(armed, tmp_path, ["H0"], **{schedule: text.replace(old, new)})


@pytest.mark.parametrize("old, new, message", [
    ("max_update: 4", "max_update: 3", "H6 compares at H1's iteration-2 budget (4)"),
    ("{source: mfcc, k: 8, rate: 50}", "{source: phones}", "an H6 arm predicts the layer's clusters and MFCC clusters"),
    ("{source: layer, layer: auto, k: 8}", "{source: layer, layer: 2, k: 8}", "layer_target"),
])
def test_unfair_h6_arms_are_refused_before_any_work(armed, tmp_path, old, new, message):
    assert old in H6_MIDDLE
    assert message in _refused(armed, tmp_path, ["H6"], mini_h6_mfcc_middle=H6_MIDDLE.replace(old, new))


def test_the_controls_are_named_by_their_roles(armed, tmp_path):
    message = _refused(armed, tmp_path, ["H0"], study=STUDY.replace("phones: mini_h0_phones", "oracle: mini_h0_phones"))
    assert "schedules.H0: the controls are exactly autoencoder" in message


def test_h0_verdicts():
    """The controls pass when the rankings hold in every seed, the shape fires on the autoencoder
    alone and a reset helps it; one seed out of order fails the ranking."""
    from types import SimpleNamespace

    from ae_hubert.analysis.layer_probe import autoencoder_index
    from ae_hubert.study import h0 as hyp0

    def probe(r2, acc):  # layers 1..3 at the one checkpoint; the top is the last
        layers = {i + 1: {"input_r2": r, "phone_acc": a} for i, (r, a) in enumerate(zip(r2, acc))}
        return {"autoencoder_index": autoencoder_index(layers), "layers": {str(i): m for i, m in layers.items()}}

    def seed(ae_top=0.9, ref_top=0.5, ph_top=0.3, reset=-0.02, ref_per=0.5):
        def arm(r2, acc, ft, per):
            return {"run": "r", "updates": 4, "probes": {"4": probe(r2, acc)}, "finetune": ft,
                    "phone_ctc": {"wer": per, "cer": 0.0}, "phone_recognition": {"per": per + 0.1}}
        return {"H0": {"mfcc": arm((0.5, 0.5, ref_top), (0.3, 0.35, 0.3), {"0": {"wer": 1, "cer": 0.5}}, ref_per),
                       "autoencoder": arm((0.5, 0.3, ae_top), (0.3, 0.3, 0.2),
                                          {"0": {"wer": 1, "cer": 0.5}, "1": {"wer": 1, "cer": 0.5 + reset}}, 0.6),
                       "phones": arm((0.5, 0.4, ph_top), (0.4, 0.4, 0.5), {"0": {"wer": 1, "cer": 0.4}}, 0.4)}}

    study = SimpleNamespace(finetune=SimpleNamespace(judge="cer", split="test"))
    h = hyp0.summarise([seed(), seed(ae_top=0.85, reset=-0.03)], study)
    assert h["passes"] and h["arms"]["autoencoder"]["turn_back_over_depth"]["fires"]
    assert not h["arms"]["phones"]["turns_back"]  # its input R^2 falls with depth, no climb back
    assert h["arms"]["autoencoder"]["reset_minus_k0"]["values"] == pytest.approx([-0.02, -0.03])
    assert h["arms"]["autoencoder"]["autoencoder_index"]["values"] == pytest.approx([0.7, 0.65])
    h = hyp0.summarise([seed(), seed(ref_top=0.2)], study)  # seed 2: the reference below the phones model
    assert not h["checks"]["input_r2_autoencoder_mfcc_phones"] and not h["passes"]
    h = hyp0.summarise([seed(), seed(ph_top=0.48)], study)  # seed 2: the phones model's index above the reference's
    assert not h["checks"]["index_autoencoder_mfcc_phones"] and h["checks"]["input_r2_autoencoder_mfcc_phones"]
    assert not h["passes"]
    h = hyp0.summarise([seed(), seed(reset=0.01)], study)  # the reset hurts in seed 2
    assert not h["checks"]["reset_helps_autoencoder"] and h["checks"]["shape_fires_on_autoencoder"]
    # downstream power: the reference's PER spread 0.02 (0.5, 0.52), the autoencoder's paired effect
    # +0.09 = 4.5 spreads; letter CTC has no spread (0.5 in both seeds): no ratio, not chosen
    d = hyp0.summarise([seed(), seed(ref_per=0.52)], study)["downstream"]
    ctc = d["measures"]["phone_ctc"]
    assert ctc["spread"] == pytest.approx(0.0141421, rel=1e-4) and ctc["effects"]["autoencoder"]["mean"] == pytest.approx(0.09)
    assert ctc["effects"]["autoencoder"]["in_spreads"] == pytest.approx(0.09 / 0.0141421, rel=1e-4)
    assert d["measures"]["letter_ctc"]["effects"]["autoencoder"]["in_spreads"] is None
    assert d["chosen"] in ("phone_ctc", "phone_recognition") and d["meets_goal"]


def test_the_turn_back_margin_is_the_seeds_spread():
    """A dip and a climb count when each exceeds the seeds' spread (median over the curve's points of
    their std over seeds), or the floor when the seeds agree more closely than that."""
    from ae_hubert.study.summary import DRIFT_FLOOR, turn_back

    agree = turn_back([[0.5, 0.4, 0.45]] * 3)
    assert agree["fires"] and agree["spread"] == 0.0 and agree["margin"] == DRIFT_FLOOR
    noisy = turn_back([[0.5, 0.4, 0.45], [0.6, 0.45, 0.5], [0.4, 0.35, 0.42]])  # stds 0.1, 0.05, 0.04
    assert noisy["margin"] == pytest.approx(0.05) and not noisy["fires"]  # climbs of 0.05, 0.05, 0.07
    assert noisy["lowest_at"] == [1, 1, 1] and noisy["rise"]["values"] == pytest.approx([0.05, 0.05, 0.07])
    assert not turn_back([[0.3, 0.4, 0.5]])["fires"]  # lowest first: only rises
