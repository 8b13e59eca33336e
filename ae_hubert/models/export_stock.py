"""``ae-hubert export-stock``: a ``hubert_layer_targets`` checkpoint under stock names, for stock tools.

The model becomes ``hubert`` (the extra per-layer heads and the plugin-only config keys go), the
task ``hubert_pretraining``, the criterion ``hubert``; the optimizer state is dropped (it holds the
extra heads). Stock ``dump_hubert_feature.py``, ``hubert_ctc`` and fairseq's loaders read the result
without the plugin.
"""
from __future__ import annotations

import os

import dataclasses

from ..common.checkpoint import PLUGIN_HEADS, load_state
from ..common.errors import located


def _stock_keys(section: dict, dataclass_type) -> dict:
    names = {f.name for f in dataclasses.fields(dataclass_type)} | {"_name"}
    return {k: v for k, v in section.items() if k in names}


def export_stock(ckpt: str, out: str) -> dict:
    import torch
    from fairseq.criterions.hubert_criterion import HubertCriterionConfig
    from fairseq.models.hubert import HubertConfig
    from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig
    from omegaconf import OmegaConf

    from ..common.atomic import atomic_path, check_writable_dir
    from ..common.checkpoint import load_hubert

    check_writable_dir(os.path.dirname(os.path.abspath(out)))
    state = load_state(ckpt)
    loaded = load_hubert(ckpt, state=state)  # a HuBERT checkpoint whose weights fit its config, or one line
    if loaded.fine_tuned:
        raise located(ckpt, "a fine-tuned checkpoint: export-stock takes pretraining checkpoints")
    if not all(torch.isfinite(v).all() for v in state["model"].values() if torch.is_floating_point(v)):
        raise located(ckpt, "weights contain NaN or inf")
    cfg = OmegaConf.to_container(state["cfg"], resolve=True, enum_to_str=True)
    cfg["model"] = {**_stock_keys(cfg["model"], HubertConfig), "_name": "hubert"}
    cfg["task"] = {**_stock_keys(cfg["task"], HubertPretrainingConfig), "_name": "hubert_pretraining"}
    if cfg.get("criterion"):
        cfg["criterion"] = {**_stock_keys(cfg["criterion"], HubertCriterionConfig), "_name": "hubert"}
    dropped = sorted(k for k in state["model"] if k.startswith(PLUGIN_HEADS))
    state["model"] = {k: v for k, v in state["model"].items() if not k.startswith(PLUGIN_HEADS)}
    state["cfg"] = cfg
    state["last_optimizer_state"] = None
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    return {"from": ckpt, "to": out, "dropped_tensors": dropped}
