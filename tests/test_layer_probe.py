import csv
import os

import pytest

import numpy as np

from ae_hubert.analysis.layer_probe import (METRICS, autoencoder_index, probe_layers, voice_accuracy,
                                          write_probe_results)


def test_probe_every_layer_of_a_checkpoint(corpus, stock_checkpoint, tmp_path):
    r = probe_layers(stock_checkpoint, corpus, k=8, max_utterances=20, cca=True, ctc_steps=20)
    assert sorted(r["layers"]) == list(range(7)) and r["updates"] == 4
    for m in r["layers"].values():
        assert set(m) == set(METRICS)
        assert 0 <= m["pnmi"] <= 1 and 0 <= m["phone_acc"] <= 1 and m["input_r2"] <= 1
        assert 0 <= m["input_cca"] <= 1 and m["letter_cer"] >= 0 and 0 <= m["word_pair_auc"] <= 1
    assert r["autoencoder_index"] == pytest.approx(autoencoder_index(r["layers"]))
    js, c = write_probe_results([r], str(tmp_path))
    rows = list(csv.DictReader(open(c)))
    assert len(rows) == 7 and set(METRICS) <= set(rows[0])
    assert os.path.isfile(js)
    from ae_hubert.analysis.plots import plot_probe_results

    pngs = plot_probe_results([r, r], METRICS, str(tmp_path))
    assert len(pngs) == len(METRICS) + 1  # one run, one update count: no over-updates plot
    assert all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_voice_probe_scores_new_voices_within_valid():
    """Voice-disjoint splits: a classifier fit on train voices cannot name valid's new voices, so the
    probe fits on every other utterance of each valid voice and scores the rest."""
    rng = np.random.default_rng(0)
    centre = {v: rng.normal(size=8) * 5 for v in "abcdwxyz"}

    def pool(voices):
        return np.stack([centre[v] + rng.normal(size=8) * 0.1 for v in voices])

    tr, ev = list("abcdabcdabcd"), list("wxyzwxyzwxyz")
    assert voice_accuracy(pool(tr), tr, pool(ev), ev) == 1.0  # 4 fitted, 8 scored, all right
    assert voice_accuracy(pool(tr), tr, pool(tr), tr) == 1.0  # shared voices: fit on train
    shuffled = list("wxyzxyzwyzwx")
    assert voice_accuracy(pool(tr), tr, pool(ev), shuffled) < 0.5  # labels that do not follow the voices
    assert np.isnan(voice_accuracy(pool(tr), tr, pool(list("wxyz")), list("wxyz")))  # one utterance per voice


def test_autoencoder_index_definition():
    flat = {layer: {"phone_acc": 0.5, "input_r2": 0.3} for layer in range(4)}
    assert autoencoder_index(flat) == pytest.approx(0.0)
    ae = {0: {"phone_acc": 0.2, "input_r2": 0.9}, 1: {"phone_acc": 0.6, "input_r2": 0.4},
          2: {"phone_acc": 0.5, "input_r2": 0.5}, 3: {"phone_acc": 0.4, "input_r2": 0.7}}
    assert autoencoder_index(ae) == pytest.approx((0.6 - 0.4) + (0.7 - 0.4))


def test_probe_a_directory_of_checkpoints_over_updates(corpus, stock_checkpoint, tmp_path):
    import shutil

    from ae_hubert.analysis.layer_probe import probe_checkpoints
    from ae_hubert.analysis.plots import plot_probe_results
    from ae_hubert.common.fresh_checkpoint import save_fresh_hubert

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(stock_checkpoint, run / "checkpoint_1_4.pt")
    shutil.copy(stock_checkpoint, run / "checkpoint_last.pt")  # same updates: probed once
    save_fresh_hubert(str(run / "checkpoint_0_0.pt"), "toy", n_classes=20, label_rate=100)
    run2 = tmp_path / "iter2" / "checkpoints"
    run2.mkdir(parents=True)
    shutil.copy(stock_checkpoint, run2 / "checkpoint_1_4.pt")
    results = probe_checkpoints([str(run), str(run2)], corpus, k=6, max_utterances=10, ctc_steps=5)
    assert [r["updates"] for r in results] == [0, 4, 4]
    assert [r["run"] for r in results] == ["run", "run", "iter2"]
    assert [r["step"] for r in results] == [0, 4, 8]  # the second run starts where the first ended
    pngs = plot_probe_results(results, METRICS, str(tmp_path / "plots"))
    assert any(p.endswith("over_updates.png") for p in pngs)


def test_probe_skips_metrics_whose_labels_are_absent(corpus, stock_checkpoint, tmp_path, caplog):
    import shutil

    from ae_hubert.analysis.layer_probe import present_metrics

    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid"):
        shutil.copy(os.path.join(corpus, f"{split}.ltr"), data)
        with open(os.path.join(corpus, f"{split}.tsv")) as f, open(data / f"{split}.tsv", "w") as g:
            lines = f.read().splitlines()
            g.write("\n".join([os.path.join(corpus, lines[0]) if not lines[0].startswith("/") else lines[0],
                               *lines[1:]]) + "\n")
    r = probe_layers(stock_checkpoint, str(data), k=4, max_utterances=8, ctc_steps=5)
    assert present_metrics([r]) == ("input_r2", "letter_cer", "letter_wer")
    assert "no train/valid phones (.phn)" in caplog.text
