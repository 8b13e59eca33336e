"""hubert_ctc_reset: top-layer reset (reinit/drop), freeze policy, strict loading, self-contained decoding."""
import json
import os
import shutil

import pytest
import torch

from conftest import BIN, USER_DIR, run_cmd

FT_CONFIG_DIR = os.path.join(USER_DIR, "config", "finetune")


def build_ctc(corpus, w2v_path, **model):
    """hubert_ctc_reset built the way fairseq's trainer does (task.build_model on the toy fine-tune config)."""
    import ae_hubert  # noqa: F401
    from fairseq import tasks
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(os.path.join(FT_CONFIG_DIR, "toy_cpu.yaml"))
    cfg.task.data = corpus
    cfg.model.w2v_path = w2v_path
    for k, v in model.items():
        cfg.model[k] = v
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(0)
    return task.build_model(cfg.model), task


def pretrained(stock_checkpoint):
    from ae_hubert.common.checkpoint import load_hubert

    return load_hubert(stock_checkpoint).model.state_dict()


def test_reinit_resets_exactly_the_top_layers(corpus, stock_checkpoint):
    model, _ = build_ctc(corpus, stock_checkpoint, reset_top_layers=2)
    w2v = model.w2v_encoder.w2v_model
    old = pretrained(stock_checkpoint)
    new = w2v.state_dict()
    assert "label_embs_concat" not in new  # pretraining-only, dropped
    for key, value in new.items():
        top = key.startswith(("encoder.layers.4.", "encoder.layers.5."))
        same = torch.equal(value, old[key])
        assert same != top, key  # top 2 layers changed, everything else identical
    for i in (4, 5):
        layer = w2v.encoder.layers[i]
        for name, p in layer.named_parameters():
            if "layer_norm" in name:
                assert torch.all(p == (1 if name.endswith("weight") else 0)), name
            elif name.endswith("bias"):
                assert torch.all(p == 0), name
            else:  # BERT init: normal(0, 0.02)
                assert abs(p.std().item() - 0.02) < 0.002 and abs(p.mean().item()) < 0.002, name


def test_drop_shrinks_the_encoder_and_records_it(corpus, stock_checkpoint):
    model, _ = build_ctc(corpus, stock_checkpoint, reset_top_layers=2, reset_mode="drop")
    assert len(model.w2v_encoder.w2v_model.encoder.layers) == 4
    assert model.cfg.w2v_args.model.encoder_layers == 4
    old = pretrained(stock_checkpoint)
    for key, value in model.w2v_encoder.w2v_model.state_dict().items():
        assert torch.equal(value, old[key]), key


def _grads(model, task, corpus):
    """One CTC loss backward on two utterances; names of the parameters that got a gradient."""
    from ae_hubert.common.audio import read_entry
    from ae_hubert.common.manifest import read_manifest

    model.train()
    model.zero_grad()
    entries = read_manifest(os.path.join(corpus, "train.tsv")).entries[:2]
    wavs = [torch.from_numpy(read_entry(e)) for e in entries]
    n = min(len(w) for w in wavs)
    src = torch.stack([w[:n] for w in wavs]).float()
    out = model(source=src, padding_mask=torch.zeros(src.shape, dtype=torch.bool))
    lp = model.get_normalized_probs(out, log_probs=True)
    tgt = torch.tensor([[5, 6, 7], [6, 7, 8]])
    loss = torch.nn.functional.ctc_loss(lp, tgt, torch.full((2,), lp.shape[0]), torch.full((2,), 3), blank=0)
    loss.backward()
    return {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


def test_freeze_policy_trains_reset_layers_and_head_only(corpus, stock_checkpoint):
    model, task = build_ctc(corpus, stock_checkpoint, reset_top_layers=2, freeze_finetune_updates=10,
                            apply_mask=False, feature_grad_mult=0.0)
    enc = "w2v_encoder.w2v_model."
    got = _grads(model, task, corpus)
    assert got, "no gradients at all"
    for name, _ in model.named_parameters():
        trainable = name.startswith(("w2v_encoder.proj.", enc + "encoder.layers.4.", enc + "encoder.layers.5."))
        if trainable and "bias" not in name:
            assert name in got, f"{name} should train while the kept layers are frozen"
        if not trainable:
            assert name not in got, f"{name} is a kept pretrained parameter: frozen for 10 updates"
    model.set_num_updates(10)  # freeze over: kept transformer layers train too
    got = _grads(model, task, corpus)
    assert enc + "encoder.layers.0.fc1.weight" in got and enc + "encoder.layers.5.fc1.weight" in got


def test_freeze_without_reset_is_stock_behaviour(corpus, stock_checkpoint):
    model, task = build_ctc(corpus, stock_checkpoint, freeze_finetune_updates=10, apply_mask=False)
    got = _grads(model, task, corpus)
    assert got == {"w2v_encoder.proj.weight", "w2v_encoder.proj.bias"}


def test_mismatched_pretrained_keys_are_an_error(corpus, stock_checkpoint, tmp_path):
    from ae_hubert.common.checkpoint import load_state
    from ae_hubert.common.errors import AeHubertError

    state = load_state(stock_checkpoint)
    del state["model"]["encoder.layers.0.fc1.bias"]
    state["model"]["encoder.extra.weight"] = torch.zeros(3)
    bad = str(tmp_path / "bad.pt")
    from ae_hubert.common.fresh_checkpoint import save_checkpoint
    from omegaconf import OmegaConf

    save_checkpoint(bad, OmegaConf.to_container(state["cfg"], resolve=True, enum_to_str=True), state["model"],
                    state["task_state"]["dictionaries"])
    with pytest.raises(AeHubertError, match=r"bad\.pt: pretrained weights do not match the model: missing "
                                            r"\['encoder\.layers\.0\.fc1\.bias'\], unexpected \['encoder\.extra\.weight'\]"):
        build_ctc(corpus, bad)
    with pytest.raises(AeHubertError, match="cannot drop 6 of the 6"):
        build_ctc(corpus, stock_checkpoint, reset_top_layers=6, reset_mode="drop")


def fine_tune(cwd, corpus, w2v_path, *overrides):
    cmd = [os.path.join(BIN, "fairseq-hydra-train"), "--config-dir", FT_CONFIG_DIR, "--config-name", "toy_cpu",
           f"task.data={corpus}", f"model.w2v_path={w2v_path}", f"checkpoint.save_dir={cwd}/ckpt",
           "optimization.max_update=3", "dataset.validate_interval_updates=3", *overrides,
           f"common.user_dir={USER_DIR}"]
    return run_cmd(cmd, cwd)


def test_stock_trainer_fine_tunes_and_the_checkpoint_decodes_on_its_own(corpus, stock_checkpoint, tmp_path):
    from ae_hubert.cli import main
    from ae_hubert.finetune.decode import decode

    w2v = str(tmp_path / "pretrained.pt")
    shutil.copy(stock_checkpoint, w2v)
    r = fine_tune(str(tmp_path), corpus, w2v, "model.reset_top_layers=2", "model.reset_mode=drop")
    assert "valid on 'valid' subset" in r and " wer " in r  # the stock ctc criterion's validation WER
    os.remove(w2v)  # the fine-tuned checkpoint must not need it
    ckpt = str(tmp_path / "ckpt" / "checkpoint_last.pt")
    out = str(tmp_path / "dec")
    res = decode(ckpt, corpus, "valid", out)
    assert res["utterances"] == len(open(os.path.join(corpus, "valid.tsv")).read().splitlines()) - 1
    assert 0 <= res["cer"] and res["wer"] >= 0 and res["words"] > 0
    hyp = open(os.path.join(out, "valid.hyp.wrd")).read().splitlines()
    ref = open(os.path.join(out, "valid.ref.wrd")).read().splitlines()
    assert len(hyp) == len(ref) == res["utterances"]
    assert ref[0] == open(os.path.join(corpus, "valid.wrd")).readline().strip()
    assert main(["decode", "--ckpt", ckpt, "--data", corpus, "--split", "valid", "--max-utterances", "3"]) == 0
    # the fine-tuned encoder is also readable by the layer tools
    from ae_hubert.common.checkpoint import load_hubert

    loaded = load_hubert(ckpt)
    assert loaded.fine_tuned and loaded.num_layers == 4
    # ...but it is no model to continue pretraining from: refused before any work, not by the trainer
    from ae_hubert.pipeline.schedule import ScheduleError, load_schedule

    sched = tmp_path / "s.yaml"
    sched.write_text("iterations:\n  - targets: [{source: layer, layer: 2, k: 10}]\n    max_update: 5\n")
    with pytest.raises(ScheduleError, match=r"^--start-from: .* is a fine-tuned checkpoint; start from a pretraining"):
        load_schedule(str(sched), corpus, start_from=ckpt)


def _text_copy(corpus, dst):
    """The corpus's manifests and transcripts (audio stays where the manifests point)."""
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(corpus):
        if name.endswith((".tsv", ".wrd", ".ltr")) or name.startswith("dict."):
            shutil.copy(os.path.join(corpus, name), dst)
    return str(dst)


def test_sentencepiece_units_round_trip_and_fine_tune(corpus, stock_checkpoint, tmp_path):
    from fairseq.data import Dictionary
    from fairseq.data.data_utils import post_process

    from ae_hubert.finetune.decode import decode
    from ae_hubert.finetune.spm_units import build_spm

    data = _text_copy(corpus, tmp_path / "data")
    r = build_spm(data, 40)
    assert r["name"] == "spm40" and set(r["labels"]) == {"train", "valid", "test"}
    d = Dictionary.load(r["dict"])
    for split in ("train", "valid"):
        words = open(os.path.join(data, f"{split}.wrd")).read().splitlines()
        pieces = open(os.path.join(data, f"{split}.spm40")).read().splitlines()
        assert len(words) == len(pieces)
        for w, p in zip(words, pieces):
            assert post_process(p, "sentencepiece") == " ".join(w.split())
            assert all(d.index(u) != d.unk() for u in p.split())
    fine_tune(str(tmp_path), data, stock_checkpoint, "task.labels=[spm40]", "criterion.post_process=sentencepiece")
    res = decode(str(tmp_path / "ckpt" / "checkpoint_last.pt"), data, "valid")
    assert res["post_process"] == "sentencepiece" and res["words"] > 0 and "wer" in res


def test_spm_names_what_no_unit_can_spell(tmp_path):
    """Words or characters of valid/test that train lacks would become <unk>: refused, saying why
    (a larger vocabulary cannot help there), while train's own coverage asks for a larger one."""
    from ae_hubert.common.errors import AeHubertError
    from ae_hubert.finetune.spm_units import build_spm

    words = ["THE CAT SAT", "A DOG RAN", "THE DOG SAT", "A CAT RAN"] * 5
    for split, lines in (("train", words), ("valid", ["THE CAT RAN", "A TOAD SAT"]), ("test", ["THE DOG RAN"])):
        (tmp_path / f"{split}.wrd").write_text("\n".join(lines) + "\n")
    with pytest.raises(AeHubertError, match=r"--model-type word: units that cannot spell \u2581TOAD of the valid"):
        build_spm(str(tmp_path), 7, model_type="word")
    (tmp_path / "valid.wrd").write_text("THE CAT RAN\nA COW SAT\n")
    with pytest.raises(AeHubertError, match=r"valid.wrd: characters the train transcripts lack \(W\)"):
        build_spm(str(tmp_path), 13, model_type="char")
    (tmp_path / "valid.wrd").write_text("THE CAT RAN\nA DOG SAT\n")
    r = build_spm(str(tmp_path), 7, model_type="word")
    from ae_hubert.cli import main

    assert main(["spm", "--data", str(tmp_path), "--vocab-size", "7", "--model-type", "word", "--name", "spm7"]) == 0
    (tmp_path / "dict.km.txt").write_text("0 1\n1 1\n")  # a k-means label set of the name asked
    assert main(["spm", "--data", str(tmp_path), "--vocab-size", "7", "--model-type", "word", "--name", "km"]) == 2
    assert (tmp_path / "dict.km.txt").read_text() == "0 1\n1 1\n"
    assert open(r["labels"]["valid"]).read().split() == ["\u2581THE", "\u2581CAT", "\u2581RAN", "\u2581A",
                                                         "\u2581DOG", "\u2581SAT"]
    assert not list(tmp_path.glob("*.spm13"))


def test_reset_sweep_runs_once_per_k_and_resumes(corpus, stock_checkpoint, tmp_path, capsys):
    from ae_hubert.finetune.reset_sweep import reset_sweep, sweep_table

    work = str(tmp_path / "sweep")
    overrides = ["optimization.max_update=2", "dataset.validate_interval_updates=2"]
    rows = reset_sweep(stock_checkpoint, corpus, [0, 2], work, overrides=overrides)
    assert [r["k"] for r in rows] == [0, 2]
    assert all(0 <= r["valid"]["cer"] and r["valid"]["words"] > 0 for r in rows)
    for name in ("sweep.json", "sweep.csv", "wer_vs_k.png"):
        assert os.path.getsize(os.path.join(work, name)) > 0
    log = open(os.path.join(work, "k2", "train.log")).read()
    assert "model.reset_top_layers=2" in log and "reinit the top 2" in log
    before = os.path.getmtime(os.path.join(work, "k2", "checkpoints", "checkpoint_last.pt"))
    again = reset_sweep(stock_checkpoint, corpus, [0, 2], work, overrides=overrides)  # all stages done
    assert again == rows
    assert os.path.getmtime(os.path.join(work, "k2", "checkpoints", "checkpoint_last.pt")) == before
    assert "k reset" in sweep_table(rows, ("valid",))
    rows = reset_sweep(stock_checkpoint, corpus, [0, 2], work, overrides=overrides, splits=("valid", "test"))
    assert all(r["test"]["words"] > 0 for r in rows)
    reset_sweep(stock_checkpoint, corpus, [0, 2], work, overrides=overrides)  # no --splits test: its columns stay
    assert "test_wer" in open(os.path.join(work, "sweep.csv")).readline()
    assert json.load(open(os.path.join(work, "sweep.json"))) == rows
    assert reset_sweep(stock_checkpoint, corpus, [0], work, overrides=overrides) == rows[:1]  # a narrower rerun...
    assert json.load(open(os.path.join(work, "sweep.json"))) == rows  # ...keeps the finished k=2 in sweep.json
    # k=2 as if killed while training, rerun with another learning rate: refused, not continued
    from ae_hubert.common.errors import AeHubertError

    os.remove(os.path.join(work, ".stages", "k2.train.json"))
    ckpt = os.path.join(work, "k2", "checkpoints", "checkpoint_last.pt")
    with pytest.raises(AeHubertError, match=r"k0.train.json: this step was done with other settings "
                                            r"\(now also 'optimization.lr=\[1e-05\]'\).*--restart K"):
        reset_sweep(stock_checkpoint, corpus, [0, 2], work, overrides=overrides + ["optimization.lr=[1e-05]"])
    with pytest.raises(AeHubertError, match=r"k2.train.json: this step was started with other settings "
                                            r"\(now also 'optimization.lr=\[1e-05\]'\).*--restart K"):
        reset_sweep(stock_checkpoint, corpus, [2], work, overrides=overrides + ["optimization.lr=[1e-05]"])
    assert os.path.getmtime(ckpt) == before
    with pytest.raises(AeHubertError, match="--restart 5: not one of --ks 0,2"):
        reset_sweep(stock_checkpoint, corpus, [0, 2], work, overrides=overrides, restart=5)
    notes = os.path.join(work, "k2", "checkpoints", "notes.txt")  # a user's file beside the checkpoints
    open(notes, "w").write("mine\n")
    redone = reset_sweep(stock_checkpoint, corpus, [2], work, overrides=overrides + ["optimization.lr=[1e-05]"],
                         restart=2)
    assert [r["k"] for r in redone] == [2] and os.path.getmtime(ckpt) != before
    assert "[redo] k2.train" in capsys.readouterr().out  # said, like iterate's --restart
    assert open(notes).read() == "mine\n"  # the restart removed fairseq's checkpoints only
    assert "optimization.lr=[1e-05]" in open(os.path.join(work, ".stages", "k2.train.json")).read()
    assert [r["k"] for r in json.load(open(os.path.join(work, "sweep.json")))] == [2]  # k=0: other lr, left out
    assert "test" not in json.load(open(os.path.join(work, "sweep.json")))[0]  # its old test decode went with it
    # an edited fine-tuning YAML is other settings, refused for every k before any k trains
    import shutil

    cfg = tmp_path / "ft.yaml"
    shutil.copy(os.path.join(os.path.dirname(os.path.dirname(__file__)), "ae_hubert", "config", "finetune",
                             "toy_cpu.yaml"), cfg)
    w2 = str(tmp_path / "sweep2")
    reset_sweep(stock_checkpoint, corpus, [0], w2, config=str(cfg), overrides=overrides)
    cfg.write_text(cfg.read_text().replace("seed:", "seed: 7 #", 1))
    with pytest.raises(AeHubertError, match="k0.train.json: this step was done with other settings.*config-sha1"):
        reset_sweep(stock_checkpoint, corpus, [2, 0], w2, config=str(cfg), overrides=overrides)
    assert not os.path.exists(os.path.join(w2, "k2"))  # refused before k=2 trained
    # another pretrained checkpoint at the same path: refused
    other = tmp_path / "other.pt"
    shutil.copy(stock_checkpoint, other)
    w3 = str(tmp_path / "sweep3")
    reset_sweep(str(other), corpus, [0], w3, overrides=overrides)
    import torch

    state = torch.load(str(other), map_location="cpu", weights_only=False)
    state["extra_state"] = {**(state.get("extra_state") or {}), "touched": 1}
    torch.save(state, str(other))
    with pytest.raises(AeHubertError, match="other.pt: differs from the ckpt this work dir was started on"):
        reset_sweep(str(other), corpus, [0], w3, overrides=overrides)


def test_stock_base_checkpoint_loads_for_reset_fine_tuning(corpus, stock_base_checkpoint):
    from ae_hubert.common.checkpoint import load_state

    state = load_state(stock_base_checkpoint)
    assert state["cfg"]["model"]["_name"] == "hubert" and state["cfg"]["task"]["_name"] == "hubert_pretraining"
    assert state["cfg"]["model"]["encoder_layers"] == 12 and state["cfg"]["model"]["encoder_embed_dim"] == 768
    model, _ = build_ctc(corpus, stock_base_checkpoint, reset_top_layers=3, apply_mask=False)
    layers = model.w2v_encoder.w2v_model.encoder.layers
    assert len(layers) == 12
    assert torch.equal(layers[8].fc1.weight, state["model"]["encoder.layers.8.fc1.weight"])
    assert not torch.equal(layers[9].fc1.weight, state["model"]["encoder.layers.9.fc1.weight"])
    model.eval()
    with torch.no_grad():
        out = model(source=torch.randn(1, 16000), padding_mask=None)
    assert out["encoder_out"].shape == (49, 1, len(model.w2v_encoder.proj.weight))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["toy_cpu", "base_10h", "base_100h", "large_10h"])
def test_finetune_configs_compose_and_pad_instead_of_crop(name, tmp_path):
    import subprocess

    from omegaconf import OmegaConf

    r = subprocess.run([os.path.join(BIN, "fairseq-hydra-train"), "--config-dir", FT_CONFIG_DIR, "--config-name",
                        name, "task.data=/data", "model.w2v_path=/w.pt", f"common.user_dir={USER_DIR}", "--cfg", "job"],
                       cwd=str(tmp_path), capture_output=True, text=True, check=True)
    cfg = OmegaConf.create(r.stdout)
    assert cfg.task._name == "hubert_pretraining_checked" and cfg.task.fine_tuning
    assert cfg.task.pad_audio is True and cfg.task.random_crop is False
    assert cfg.model._name == "hubert_ctc_reset" and cfg.criterion._name == "ctc"
    assert cfg.checkpoint.best_checkpoint_metric == "wer"


@pytest.mark.parametrize("ours,stock", [("base_librispeech", "hubert_base_librispeech"),
                                        ("large_librivox", "hubert_large_librivox")])
def test_pretrain_configs_mirror_fairseq(ours, stock):
    from omegaconf import OmegaConf

    from conftest import STOCK_HUBERT_CONFIG

    a = OmegaConf.load(os.path.join(USER_DIR, "config", "pretrain", ours + ".yaml"))
    b = OmegaConf.load(os.path.join(STOCK_HUBERT_CONFIG, "pretrain", stock + ".yaml"))
    for section in ("model", "optimization", "optimizer", "lr_scheduler", "criterion", "dataset", "common"):
        for key in b[section]:
            if key != "label_rate":  # ours takes it from the schedule through the task
                assert a[section][key] == b[section][key], f"{section}.{key}"
    for key in ("normalize", "max_sample_size", "min_sample_size", "pad_audio", "random_crop"):
        assert a.task[key] == b.task[key], key
    assert a.task._name == "hubert_pretraining_checked"


def test_layer_probes_during_fine_tuning(corpus, stock_checkpoint, tmp_path):
    out = fine_tune(str(tmp_path), corpus, stock_checkpoint, "model.reset_top_layers=2", "+task.probe_utterances=6")
    valid = [line for line in out.splitlines() if "valid on 'valid' subset" in line]
    assert valid and "probe_input_r2_L6" in valid[-1] and "probe_phone_acc_L3" in valid[-1]


def test_a_letter_missing_from_the_dictionary_is_refused_before_fine_tuning(corpus, stock_checkpoint, tmp_path,
                                                                             capsys):
    """Stock fairseq would fine-tune CTC on <unk> for a letter dict.ltr.txt lacks: the sweep refuses,
    naming the file and line, before any run."""
    import shutil

    from ae_hubert.cli import main

    data = tmp_path / "d"
    shutil.copytree(corpus, data, ignore=shutil.ignore_patterns("wav"))
    ltr = (data / "train.ltr").read_text().splitlines()
    ltr[2] = ltr[2] + " Q Ø |"
    (data / "train.ltr").write_text("\n".join(ltr) + "\n")
    assert main(["reset-sweep", "--ckpt", stock_checkpoint, "--data", str(data), "--ks", "0", "--work-dir",
                 str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{data / 'train.ltr'}:3: label 'Ø' is not in the dictionary" in err[0], err
    assert not (tmp_path / "s").exists()


def test_a_split_decoded_for_some_ks_only_is_said_not_dropped(tmp_path):
    """A rerun that names fewer splits keeps the columns every k has; one only some ks have is named."""
    from ae_hubert.finetune.reset_sweep import _kept_splits
    from ae_hubert.runner.stages import Stages

    said = []
    stages = Stages(str(tmp_path), echo=said.append)
    for k in (0, 2):
        stages.run(f"k{k}.decode.test", lambda k=k: {"wer": 0.5 + k, "cer": 0.1})
    rows = [{"k": 0, "valid": {}}, {"k": 2, "valid": {}}]
    said.clear()
    assert _kept_splits(stages, rows, ("valid",)) == ("test",) and rows[1]["test"]["wer"] == 2.5 and not said
    rows.append({"k": 3, "valid": {}})  # a k added without --splits test
    assert _kept_splits(stages, rows, ("valid",)) == ()
    assert said == ["[note] test: decoded for k 0,2 only, so not in sweep.csv; add it to --splits to decode it "
                    "for every k"]
