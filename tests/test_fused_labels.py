"""Labels straight from the audio (``label --tsv-dir``) and the sample-only dump (``dump --sample``):
the same labels and k-means centres as dump -> k-means -> label, with a fraction of the disk."""
import os

import numpy as np
import pytest

from ae_hubert.cli import main
from ae_hubert.pipeline.iterate import execute
from ae_hubert.pipeline.plan import plan
from ae_hubert.pipeline.schedule import load_schedule


def _read(path):
    with open(path) as f:
        return f.read()


def _run(argv):
    assert main(argv) == 0, argv


@pytest.mark.parametrize("kind", ["mfcc", "layer"])
def test_labels_from_audio_equal_dump_then_label_sharded_too(kind, corpus, stock_checkpoint, tmp_path):
    model = [] if kind == "mfcc" else ["--ckpt", stock_checkpoint, "--layer", "2"]
    dump = ["dump", "mfcc"] if kind == "mfcc" else ["dump", "hubert", *model]
    feat, km = str(tmp_path / "feat"), str(tmp_path / "km.bin")
    _run([*dump, "--tsv-dir", corpus, "--split", "valid", "--out-dir", feat])
    _run(["kmeans", "--feat-dir", feat, "--split", "valid", "--k", "12", "--out", km])
    _run(["label", "--feat-dir", feat, "--split", "valid", "--km", km, "--out-dir", str(tmp_path / "a")])
    _run(["label", "--tsv-dir", corpus, "--split", "valid", *model, "--km", km, "--out-dir", str(tmp_path / "b")])
    for r in range(3):
        _run(["label", "--tsv-dir", corpus, "--split", "valid", *model, "--km", km, "--out-dir", str(tmp_path / "c"),
              "--nshard", "3", "--rank", str(r)])
    with pytest.raises(Exception):  # nothing joined yet
        _read(tmp_path / "c" / "valid.km")
    _run(["merge-labels", "--label-dir", str(tmp_path / "c"), "--split", "valid", "--nshard", "3", "--tsv-dir", corpus])
    reference = _read(tmp_path / "a" / "valid.km")
    assert len(reference.splitlines()) == len(_read(os.path.join(corpus, "valid.tsv")).splitlines()) - 1
    assert _read(tmp_path / "b" / "valid.km") == reference
    assert _read(tmp_path / "c" / "valid.km") == reference
    assert _read(tmp_path / "b" / "dict.km.txt") == _read(tmp_path / "a" / "dict.km.txt")
    if kind == "mfcc":  # a line moved from one shard to the next keeps the total: refused by its shard
        import shutil

        shutil.copytree(tmp_path / "c", tmp_path / "d")
        os.remove(tmp_path / "d" / "valid.km")
        one, two = (tmp_path / "d" / f"valid_{r}_3.km" for r in (1, 2))
        moved = one.read_text().splitlines(keepends=True)
        one.write_text("".join(moved[:1] + moved[2:]))
        two.write_text(two.read_text() + moved[1])
        assert main(["merge-labels", "--label-dir", str(tmp_path / "d"), "--split", "valid", "--nshard", "3",
                     "--tsv-dir", corpus]) == 2
        assert not (tmp_path / "d" / "valid.km").exists()


def test_sample_dump_fits_the_same_kmeans_as_sampling_the_full_dump(corpus, tmp_path):
    import joblib

    feat = str(tmp_path / "feat")
    for r in range(2):
        _run(["dump", "mfcc", "--tsv-dir", corpus, "--split", "train", "--out-dir", feat, "--nshard", "2",
              "--rank", str(r)])
        _run(["dump", "mfcc", "--tsv-dir", corpus, "--split", "train", "--out-dir", feat, "--nshard", "2",
              "--rank", str(r), "--sample", "0.4", "--seed", "5"])
    full = [np.load(os.path.join(feat, f"train_{r}_2.npy")) for r in range(2)]
    sample = [np.load(os.path.join(feat, f"train_sample_{r}_2.npy")) for r in range(2)]
    assert 0 < sum(map(len, sample)) < 0.7 * sum(map(len, full))
    _run(["kmeans", "--feat-dir", feat, "--split", "train", "--nshard", "2", "--k", "10", "--percent", "0.4",
          "--seed", "5", "--out", str(tmp_path / "full.bin")])
    _run(["kmeans", "--feat-dir", feat, "--split", "train_sample", "--nshard", "2", "--k", "10", "--seed", "5",
          "--out", str(tmp_path / "sample.bin")])
    np.testing.assert_array_equal(joblib.load(tmp_path / "full.bin").cluster_centers_,
                                  joblib.load(tmp_path / "sample.bin").cluster_centers_)


def _sidecars(schedule_text, corpus, work):
    """Run every step of the schedule's first iteration but training; the steps that ran."""
    path = os.path.join(os.path.dirname(work), os.path.basename(work) + ".yaml")
    with open(path, "w") as f:
        f.write(schedule_text)
    steps = [st for st in plan(load_schedule(path, corpus), work) if st.tool != "fairseq-hydra-train"]
    for st in steps:
        execute(st)
    return steps


def _disk(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


def test_the_driver_labels_from_audio_by_default_with_the_same_labels(corpus, stock_checkpoint, tmp_path):
    text = (f"start_from: {stock_checkpoint}\nnshard: 2\nFUSED\niterations:\n"
            "  - targets: [{source: layer, layer: 2, k: 12, percent: 0.5}]\n    max_update: 2\n")
    fused = _sidecars(text.replace("FUSED", ""), corpus, str(tmp_path / "fused"))
    dumped = _sidecars(text.replace("FUSED", "label_from_audio: false"), corpus, str(tmp_path / "dumped"))
    assert any(st.args[:2] == ("label", "--tsv-dir") for st in fused)
    assert any(st.args[0] == "merge-labels" for st in fused)
    assert not any(st.args[:2] == ("label", "--tsv-dir") for st in dumped)
    it = "iter1"
    for split in ("train", "valid"):
        a = _read(tmp_path / "fused" / it / "labels" / f"{split}.km")
        assert a == _read(tmp_path / "dumped" / it / "labels" / f"{split}.km")
    feats = sorted(os.listdir(tmp_path / "fused" / it / "feat_km"))
    assert feats == ["train_sample_0_2.len", "train_sample_0_2.npy", "train_sample_1_2.len", "train_sample_1_2.npy"]
    assert _disk(tmp_path / "fused" / it / "feat_km") < 0.5 * _disk(tmp_path / "dumped" / it / "feat_km")


def test_label_from_audio_refusals(corpus, mfcc_labels, stock_checkpoint, tmp_path, capsys):
    lab = str(tmp_path / "lab")
    cases = [
        (["label", "--tsv-dir", corpus, "--split", "valid", "--km", mfcc_labels["km"], "--out-dir", lab,
          "--ckpt", stock_checkpoint, "--layer", "2"], "dims"),
        (["label", "--tsv-dir", corpus, "--split", "valid", "--km", mfcc_labels["km"], "--out-dir", lab,
          "--layer", "2"], "--ckpt"),
        (["label", "--feat-dir", mfcc_labels["feat"], "--split", "valid", "--km", mfcc_labels["km"],
          "--out-dir", lab, "--rank", "1"], "only with --tsv-dir"),
        (["label", "--tsv-dir", corpus, "--split", "valid", "--km", mfcc_labels["km"], "--out-dir", lab,
          "--nshard", "2", "--rank", "2"], "--rank 2"),
        (["merge-labels", "--label-dir", lab, "--split", "valid", "--nshard", "2"], "valid_0_2.km"),
    ]
    for argv, expect in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expect in err[0], (argv, err)
    assert not os.path.exists(lab)
