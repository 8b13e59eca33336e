"""cluster-quality: MFCC and every layer scored by one protocol (fit on train, PNMI on valid)."""
import json
import os

import numpy as np
import pytest

from ae_hubert.clustering.layer_choice import cluster_quality
from ae_hubert.cli import main
from ae_hubert.clustering.kmeans import fit_kmeans
from ae_hubert.clustering.quality import label_quality
from ae_hubert.features.dump import dump_mfcc
from ae_hubert.features.shards import read_shard


def test_mfcc_score_equals_the_dump_kmeans_label_quality_path(corpus, tmp_path):
    """The in-memory protocol gives what the stock-format tools give on the same utterances."""
    r = cluster_quality(corpus, k=12, seed=4)
    feat = str(tmp_path / "feat")
    for split in ("train", "valid"):
        dump_mfcc(corpus, split, feat)
    train = np.asarray(read_shard(feat, "train", 0, 1).feats, dtype=np.float32)
    km = fit_kmeans(train, 12, 4)
    valid = read_shard(feat, "valid", 0, 1)
    labels = km.predict(np.asarray(valid.feats, dtype=np.float32))
    lines = [" ".join(map(str, labels[o:o + n])) for o, n in zip(valid.offsets, valid.lengths)]
    (tmp_path / "valid.km").write_text("\n".join(lines) + "\n")
    expected = label_quality(str(tmp_path / "valid.km"), os.path.join(corpus, "valid.phn"), km_rate=100)
    assert r["mfcc"]["pnmi"] == pytest.approx(expected["pnmi"], abs=1e-6)
    assert r["train_utterances"] == len(read_shard(feat, "train", 0, 1).lengths)
    assert "layers" not in r


def test_every_layer_scored_and_the_best_reported(corpus, stock_checkpoint, tmp_path, capsys):
    out = str(tmp_path / "q.json")
    main(["cluster-quality", "--data", corpus, "--k", "8", "--ckpt", stock_checkpoint, "--layers", "1,3",
          "--train-utterances", "12", "--valid-utterances", "4", "--json", out])
    r = json.load(open(out))
    assert set(r["layers"]) == {"1", "3"} and r["valid_utterances"] == 4
    chosen = r["layers"][str(r["best_layer"])]
    assert chosen["train_pnmi"] == max(q["train_pnmi"] for q in r["layers"].values())  # picked on train
    assert r["best_minus_mfcc_pnmi"] == pytest.approx(chosen["pnmi"] - r["mfcc"]["pnmi"])  # reported on valid
    assert all(0 <= q["pnmi"] <= 1 for q in [r["mfcc"], *r["layers"].values()])
    printed = capsys.readouterr().out
    assert "MFCC" in printed and "layer 3" in printed and "best: layer" in printed


def test_refuses_data_without_phones(corpus, tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    for name in ("train.tsv", "valid.tsv"):
        (data / name).write_text(open(os.path.join(corpus, name)).read())
    assert main(["cluster-quality", "--data", str(data), "--k", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "valid.phn: frame phone labels not found" in err[0]


def test_phone_lines_of_other_utterances_and_bad_layers_are_refused(corpus, stock_checkpoint, tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    for name in ("train.tsv", "valid.tsv", "train.phn", "valid.phn"):
        (data / name).write_text(open(os.path.join(corpus, name)).read())
    lines = (data / "valid.phn").read_text().splitlines()
    far = max(range(len(lines)), key=lambda i: abs(len(lines[i].split()) - len(lines[0].split())))
    assert abs(len(lines[far].split()) - len(lines[0].split())) > 10
    lines[0], lines[far] = lines[far], lines[0]  # phone lines of other utterances
    (data / "valid.phn").write_text("\n".join(lines) + "\n")
    assert main(["cluster-quality", "--data", str(data), "--k", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "valid.phn has" in err[0] and "line 1 of" in err[0]
    assert "valid.tsv:2:" in err[0] and "not of the same utterances" in err[0]  # utterance 1 is tsv line 2
    assert "--km-rate" not in err[0]  # cluster-quality has no such option
    assert main(["cluster-quality", "--data", corpus, "--k", "4", "--ckpt", stock_checkpoint, "--layers", "9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of range" in err[0]
