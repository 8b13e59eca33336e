"""ae_hubert model + criterion: exactly stock with options off; per-layer heads, weights, logging; export."""
import os
import shutil

import pytest
import torch
from omegaconf import OmegaConf

from conftest import CONFIG_DIR, hydra_train


def _setup(corpus, label_dir, model_name, labels=("km",), **model):
    import ae_hubert  # noqa: F401
    from fairseq import tasks

    cfg = OmegaConf.load(os.path.join(CONFIG_DIR, "toy_cpu.yaml"))
    cfg.task.update(data=corpus, label_dir=label_dir, label_rate=100, labels=list(labels))
    cfg.model._name = model_name
    OmegaConf.set_struct(cfg, False)
    for k, v in model.items():
        cfg.model[k] = v
    task = tasks.setup_task(cfg.task)
    task.load_dataset("valid")
    torch.manual_seed(0)
    m = task.build_model(cfg.model)
    ds = task.dataset("valid")
    sample = ds.collater([ds[i] for i in range(4)])
    return task, m, sample, cfg


def _loss(task, model, sample, criterion_name, seed=5):
    from fairseq import criterions

    crit = criterions.build_criterion(OmegaConf.create({"_name": criterion_name, "pred_masked_weight": 1.0,
                                                        "pred_nomask_weight": 0.5, "loss_weights": [10.0]}), task)
    model.train()
    torch.manual_seed(seed)
    return crit(model, sample)


def test_options_off_is_exactly_stock(corpus, mfcc_labels):
    task, stock, sample, _ = _setup(corpus, mfcc_labels["lab"], "hubert")
    _, ours, _, _ = _setup(corpus, mfcc_labels["lab"], "hubert_layer_targets")
    assert type(stock).__name__ == "HubertModel" and type(ours).__name__ == "HubertLayerTargetsModel"
    s_sd, o_sd = stock.state_dict(), ours.state_dict()
    assert s_sd.keys() == o_sd.keys() and all(torch.equal(s_sd[k], o_sd[k]) for k in s_sd)
    l_stock, n_stock, log_stock = _loss(task, stock, sample, "hubert")
    l_ours, n_ours, log_ours = _loss(task, ours, sample, "hubert_layer_targets")
    assert torch.equal(l_stock, l_ours) and n_stock == n_ours and log_stock == log_ours
    # the top layer predicting the only label set, weight 1, is the same model too
    _, top, _, _ = _setup(corpus, mfcc_labels["lab"], "hubert_layer_targets", layer_targets="6:0:1.0")
    l_top, _, log_top = _loss(task, top, sample, "hubert_layer_targets")
    assert torch.equal(l_stock, l_top)
    assert log_top["loss_m_L6s0"] == log_stock["loss_m_0"] and "loss_m_0" not in log_top


def test_lower_layer_head_adds_its_weighted_loss(corpus, mfcc_labels):
    task, model, sample, _ = _setup(corpus, mfcc_labels["lab"], "hubert_layer_targets", layer_targets="6:0:1,3:0:0.25")
    assert list(model.layer_heads) == ["L3s0"]
    loss, n, log = _loss(task, model, sample, "hubert_layer_targets")
    expected = (log["loss_m_L6s0"] + 0.25 * log["loss_m_L3s0"]) + 0.5 * (log["loss_u_L6s0"] + 0.25 * log["loss_u_L3s0"]) \
        + log["loss_features_pen"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert log["count_m_L3s0"] == log["count_m_L6s0"] > 0
    loss.backward()
    assert model.layer_heads["L3s0"].weight.grad.abs().sum() > 0


def test_head_reads_the_state_after_its_layer(corpus, mfcc_labels):
    _, model, sample, _ = _setup(corpus, mfcc_labels["lab"], "hubert_layer_targets", layer_targets="6:0,2:0")
    model.eval()
    src, pad = sample["net_input"]["source"], sample["net_input"]["padding_mask"]
    states, hooks = model._states_after({2, 6})
    with torch.no_grad():
        model.extract_features(src, pad, mask=False)
        for h in hooks:
            h.remove()
        ref2, _ = model.extract_features(src, pad, mask=False, output_layer=2)
        top, _ = model.extract_features(src, pad, mask=False)
    n = ref2.shape[1]
    assert torch.allclose(states[2].transpose(0, 1)[:, :n], ref2, atol=1e-5)
    assert torch.allclose(states[6].transpose(0, 1)[:, :n], top, atol=1e-5)  # after the last layer: its output


def test_bad_layer_targets_are_named(corpus, mfcc_labels):
    from ae_hubert.common.errors import AeHubertError

    for spec, msg in (("7:0:1", "layer 7 not in 1..6"), ("3:1:1", "label set 1 not in 0..0"),
                      ("3-0", "bad head '3-0'"), ("3:0,3:0:2", "given twice")):
        with pytest.raises(AeHubertError, match=msg):
            _setup(corpus, mfcc_labels["lab"], "hubert_layer_targets", layer_targets=spec)


def test_per_layer_targets_train_under_stock_fairseq_and_export(corpus, mfcc_labels, tmp_path):
    from fairseq import checkpoint_utils

    from ae_hubert.cli import main

    labels = tmp_path / "labels"
    shutil.copytree(mfcc_labels["lab"], labels)
    for split in ("train", "valid"):  # a second label set: here a copy, in practice other clusters
        shutil.copy(labels / f"{split}.km", labels / f"{split}.km2")
    shutil.copy(labels / "dict.km.txt", labels / "dict.km2.txt")
    r = hydra_train(str(tmp_path), f"task.data={corpus}", f"task.label_dir={labels}", "task.label_rate=100",
                    "task.labels=[km,km2]", "model._name=hubert_layer_targets", "criterion._name=hubert_layer_targets",
                    "+model.layer_targets='6:1:1.0,3:0:0.5'", "optimization.max_update=3",
                    "dataset.validate_interval_updates=3", "common.log_interval=1", f"checkpoint.save_dir={tmp_path}/ckpt")
    out = r.stdout + r.stderr
    for key in ("loss_m_L3s0", "loss_m_L6s1", "correct_m_L3s0", "correct_m_L6s1"):
        assert key in out, key
    ckpt, stock = str(tmp_path / "ckpt" / "checkpoint_last.pt"), str(tmp_path / "stock.pt")
    assert main(["export-stock", "--ckpt", ckpt, "--out", stock]) == 0
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([stock], strict=True)
    assert type(models[0]).__name__ == "HubertModel" and cfg.model._name == "hubert"
    assert cfg.task._name == "hubert_pretraining" and "layer_targets" not in cfg.model


def test_reconstruction_head_regresses_the_input_frames(corpus, mfcc_labels):
    """The autoencoder control: the cluster targets at layer 3, the top layer regressing the input's
    MFCC frames at the masked positions; its loss is added and logged, its target is the probes'."""
    import numpy as np

    from ae_hubert.common.errors import AeHubertError
    from ae_hubert.features.mfcc import at_layer_frames, mfcc

    task, model, sample, _ = _setup(corpus, mfcc_labels["lab"], "hubert_layer_targets", layer_targets="3:0:1",
                                    reconstruct_layer=6, reconstruct_weight=2.0)
    loss, n, log = _loss(task, model, sample, "hubert_layer_targets")
    expected = log["loss_m_L3s0"] + 0.5 * log["loss_u_L3s0"] + log["loss_features_pen"] + 2.0 * log["loss_recon"]
    assert loss.item() == pytest.approx(expected, rel=1e-5) and log["loss_recon"] > 0
    assert "loss_m_L6s0" not in log  # the top layer is not asked for the clusters
    loss.backward()
    assert model.reconstruct_head.weight.grad.abs().sum() > 0
    assert model.encoder.layers[5].fc2.weight.grad.abs().sum() > 0
    src, pad = sample["net_input"]["source"], sample["net_input"]["padding_mask"]
    _, frame_pad = model.extract_features(src, pad, mask=False)
    frame_pad = frame_pad if frame_pad is not None else torch.zeros(src.shape[0], _.shape[1], dtype=torch.bool)
    target = model._input_frames(src, pad, frame_pad)
    wav = src[1].numpy()[: src.shape[1] - int(pad[1].sum()) if pad is not None else None]
    frames = int((~frame_pad[1]).sum())
    ref = at_layer_frames(mfcc(wav), frames)
    ref = (ref - ref.mean(0)) / (ref.std(0) + 1e-5)
    assert np.allclose(target[1, :len(ref)].numpy(), ref, atol=1e-4)
    with pytest.raises(AeHubertError, match="reconstruct_layer: 7 not in 0..6"):
        _setup(corpus, mfcc_labels["lab"], "hubert_layer_targets", reconstruct_layer=7)
    # with only the reconstruction asked for, the top layer keeps stock's cluster head too
    _, both, _, _ = _setup(corpus, mfcc_labels["lab"], "hubert_layer_targets", reconstruct_layer=6)
    _, _, log = _loss(task, both, sample, "hubert_layer_targets")
    assert "loss_m_L6s0" in log and "loss_recon" in log
    # the literal autoencoder scores every real frame (padding never), the denoising one the masked frames only
    ds = task.dataset("valid")
    ds.pad_audio = True  # a padded batch: the utterances kept whole, the shorter ones padded
    padded = ds.collater([ds[i] for i in range(4)])
    counts = {}
    for frames in ("masked", "all"):
        _, m, _, _ = _setup(corpus, mfcc_labels["lab"], "hubert_layer_targets", layer_targets="3:0:1",
                            reconstruct_layer=6, reconstruct_frames=frames)
        m.train()
        np.random.seed(5)  # fairseq draws the masks with numpy
        out = m(target_list=padded["target_list"], **padded["net_input"])
        counts[frames] = out["reconstruct_frames"]
        real, total = int((~out["padding_mask"]).sum()), out["padding_mask"].numel()
    assert 0 < counts["masked"] < counts["all"] == real < total
