import os
import shutil

from ae_hubert.clustering.layer_choice import choose_layer


def test_choose_layer_by_pnmi_records_why(corpus, stock_checkpoint):
    r = choose_layer(stock_checkpoint, corpus, "valid", [1, 3, 6], k=8, max_utterances=12)
    assert r["criterion"] == "pnmi" and r["chosen"] in (1, 3, 6)
    assert set(r["scores"]) == {"1", "3", "6"}
    assert r["scores"][str(r["chosen"])] == max(r["scores"].values())
    assert f"layer {r['chosen']} has the highest pnmi" in r["why"]


def test_choose_layer_without_phones_uses_silhouette(corpus, stock_checkpoint, tmp_path):
    for f in ("valid.tsv",):
        shutil.copy(os.path.join(corpus, f), tmp_path / f)
    r = choose_layer(stock_checkpoint, str(tmp_path), "valid", [2, 4], k=6, max_utterances=10)
    assert r["criterion"] == "silhouette"
    assert all(-1 <= v <= 1 for v in r["scores"].values())
