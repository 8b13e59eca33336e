"""One per-layer clustering protocol: choose-layer, cluster-quality, layer: auto and the probes agree,
and a layer is never chosen on the split it is reported on."""
import json
import os
import random
import shutil

import pytest
import torch

from ae_hubert.cli import main
from ae_hubert.clustering.layer_choice import PROTOCOL, choose_layer, cluster_quality

SIZES = {"train_utterances": 12, "valid_utterances": 6, "seed": 2}


def test_choose_layer_by_train_pnmi_records_why(corpus, stock_checkpoint):
    r = choose_layer(stock_checkpoint, corpus, [1, 3, 6], k=8, **SIZES)
    assert r["criterion"] == "pnmi" and r["chosen"] in (1, 3, 6) and r["protocol"] == PROTOCOL
    assert set(r["scores"]) == {"1", "3", "6"} and set(r["valid"]) == {"1", "3", "6"}
    assert r["scores"][str(r["chosen"])] == max(r["scores"].values())
    assert f"layer {r['chosen']} has the highest pnmi on train" in r["why"]


def test_choose_layer_and_cluster_quality_give_the_same_layer(corpus, stock_checkpoint, tmp_path):
    """``layer: auto`` (choose-layer --json) and cluster-quality on the same inputs: one choice, and
    the valid figures choose-layer reports are cluster-quality's."""
    out = str(tmp_path / "c.json")
    assert main(["choose-layer", "--ckpt", stock_checkpoint, "--data", corpus, "--k", "8", "--candidates", "2,4,6",
                 "--train-utterances", "12", "--valid-utterances", "6", "--seed", "2", "--json", out]) == 0
    chosen = json.load(open(out))
    assert chosen["ckpt"] == os.path.abspath(stock_checkpoint) and len(chosen["ckpt_weights"]) == 40
    # the choice holds for the same weights saved again without the optimizer state, not for others
    from ae_hubert.common.errors import AeHubertError
    from ae_hubert.features.dump import layer_from

    state = torch.load(stock_checkpoint, map_location="cpu", weights_only=True)
    state["last_optimizer_state"] = None
    torch.save(state, tmp_path / "slim.pt")
    assert layer_from(out, str(tmp_path / "slim.pt")) == chosen["chosen"]
    state["model"] = {k: v + 1e-3 if v.is_floating_point() else v for k, v in state["model"].items()}  # trained on
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(AeHubertError, match=r"c.json: layer \d was chosen for another checkpoint"):
        layer_from(out, str(tmp_path / "other.pt"))
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({**chosen, "chosen": 99}))
    with pytest.raises(AeHubertError, match=r"edited.json: 'chosen' is 99, not one of the layers it scored \(2, 4, 6\)"):
        layer_from(str(edited), stock_checkpoint)
    q = cluster_quality(corpus, 8, stock_checkpoint, [2, 4, 6], **SIZES)
    assert chosen["chosen"] == q["best_layer"]
    for layer, s in q["layers"].items():
        assert chosen["scores"][layer] == s["train_pnmi"] and chosen["valid"][layer]["pnmi"] == s["pnmi"]


def test_the_choice_does_not_depend_on_the_reported_split(corpus, stock_checkpoint, tmp_path):
    """Valid's phone labels shuffled across frames: the valid figures change, the choice does not."""
    data = tmp_path / "d"
    shutil.copytree(corpus, data, ignore=shutil.ignore_patterns("wav"))
    for name in ("train.tsv", "valid.tsv"):  # the manifests' root: keep reading the corpus's audio
        lines = open(os.path.join(corpus, name)).read().splitlines()
        (data / name).write_text("\n".join([lines[0] if os.path.isabs(lines[0]) else os.path.join(corpus, lines[0]),
                                            *lines[1:]]) + "\n")
    rng = random.Random(0)
    lines = []
    for line in open(os.path.join(corpus, "valid.phn")).read().splitlines():
        phones = line.split()
        rng.shuffle(phones)
        lines.append(" ".join(phones))
    (data / "valid.phn").write_text("\n".join(lines) + "\n")
    a = choose_layer(stock_checkpoint, corpus, [1, 3, 5], k=8, **SIZES)
    b = choose_layer(stock_checkpoint, str(data), [1, 3, 5], k=8, **SIZES)
    assert a["chosen"] == b["chosen"] and a["scores"] == b["scores"]
    assert a["valid"] != b["valid"]


def test_choose_layer_without_phones_uses_the_train_silhouette(corpus, stock_checkpoint, tmp_path):
    for f in ("train.tsv", "valid.tsv"):
        shutil.copy(os.path.join(corpus, f), tmp_path / f)
    r = choose_layer(stock_checkpoint, str(tmp_path), [2, 4], k=6, train_utterances=10, valid_utterances=4)
    assert r["criterion"] == "silhouette" and r["valid"] == {} and r["valid_utterances"] == 0
    assert all(-1 <= v <= 1 for v in r["scores"].values())


def test_a_step_finished_by_the_earlier_protocol_is_kept_other_settings_are_refused(tmp_path):
    """Work dirs whose ``layer: auto`` step chose on valid (before the one protocol) still resume;
    a step done with other settings is still refused."""
    import pytest

    from ae_hubert.common.errors import AeHubertError
    from ae_hubert.runner.stages import Stages

    stages = Stages(str(tmp_path), echo=lambda _: None)
    old = "ae-hubert choose-layer --ckpt c --data d --split valid --k 8 --json j"
    stages.run("it.km.choose_layer", lambda: {"chosen": 2}, command=old)
    ran = []
    new = old.replace(" --split valid", "")
    assert stages.run("it.km.choose_layer", lambda: ran.append(1), command=new, done_as=(old,)) == {"chosen": 2}
    assert not ran
    with pytest.raises(AeHubertError, match="other settings"):
        stages.run("it.km.choose_layer", lambda: None, command=new.replace("8", "9"),
                   done_as=(old.replace("8", "9"),))


def test_the_silhouette_needs_no_labels_from_the_fit(monkeypatch):
    """A CUDA fit (torch Lloyd) keeps no ``labels_``: the train silhouette assigns the frames itself."""
    import numpy as np

    from ae_hubert.clustering import layer_choice

    fit = layer_choice.fit_kmeans

    def cuda_like(x, k, seed):
        km = fit(x, k, seed)
        km.labels_ = None
        return km

    monkeypatch.setattr(layer_choice, "fit_kmeans", cuda_like)
    rng = np.random.default_rng(0)
    train = [rng.normal(size=(40, 8)).astype(np.float32) + c for c in (0, 5, 10)]
    s = layer_choice.score_clusters(train, [], {}, 3, 1, layer_choice.LAYER_RATE)
    assert -1 <= s["train_silhouette"] <= 1 and "pnmi" not in s


def test_json_never_overwrites_an_input(corpus, stock_checkpoint, tmp_path, capsys):
    import hashlib

    data = tmp_path / "d"
    shutil.copytree(corpus, data, ignore=shutil.ignore_patterns("wav"))
    for name in ("train.tsv", "valid.tsv"):  # keep reading the corpus's audio
        lines = open(os.path.join(corpus, name)).read().splitlines()
        (data / name).write_text("\n".join([lines[0], *lines[1:]]) + "\n")
    ckpt = str(tmp_path / "c.pt")
    shutil.copy(stock_checkpoint, ckpt)

    def digest(p):
        return hashlib.sha1(open(p, "rb").read()).hexdigest()

    before = {p: digest(p) for p in (ckpt, str(data / "valid.phn"))}
    assert main(["choose-layer", "--ckpt", ckpt, "--data", str(data), "--k", "4", "--json", ckpt]) == 2
    assert main(["cluster-quality", "--data", str(data), "--k", "4", "--json", str(data / "valid.phn")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--json would overwrite an input of this command (--ckpt" in err[0], err
    assert "--json would replace a file of the data directory" in err[1], err
    assert {p: digest(p) for p in before} == before
