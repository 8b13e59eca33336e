"""``init: continue``: the next iteration starts from the previous iteration's weights.

The previous model is rebuilt with the new iteration's label dictionaries (fresh, seeded init),
then every parameter is copied from the previous checkpoint except:
- the pretraining heads (``final_proj``, ``label_embs_concat``): the targets are new clusters, so
  their embeddings are re-learnt (and their shapes change with K or the number of label sets);
- the top ``reset_top_layers`` transformer blocks, which keep the fresh model's values: exactly a
  new block (BERT init of linear layers and attention, LayerNorms at ones/zeros).
The result is a checkpoint for fairseq's ``checkpoint.finetune_from_model`` (weights only:
optimizer, LR schedule, meters and data iterator start afresh).
"""
from __future__ import annotations

import os

import torch

from ..common.checkpoint import PRETRAINING_ONLY, load_state
from ..common.errors import located
from ..common.fresh_checkpoint import save_checkpoint


def model_overrides(overrides: list[str]) -> dict:
    """The ``model.KEY=VALUE`` (or ``+model.KEY=VALUE``) hydra overrides, values parsed as hydra does."""
    import yaml

    out = {}
    for o in overrides:
        key, sep, value = o.lstrip("+").partition("=")
        if sep and key.startswith("model.") and "." not in key[len("model."):]:
            parsed = yaml.safe_load(value) if value else ""
            if ":" in value and not isinstance(parsed, str):  # YAML 1.1 reads 6:0:1 as a base-60 number
                parsed = value
            out[key[len("model."):]] = parsed
    return out


def prepare_continue_init(prev_ckpt: str, label_dir: str, labels: list[str], reset_top_layers: int,
                          out: str, seed: int = 1, model: dict | None = None) -> dict:
    """``model``: model config values of the new iteration (e.g. ``_name: ae_hubert`` with
    ``layer_targets``), so the initial weights fit the model it trains (extra heads start fresh)."""
    import ae_hubert  # noqa: F401
    from fairseq import models, tasks
    from fairseq.data import Dictionary
    from omegaconf import OmegaConf

    from omegaconf import open_dict

    state = load_state(prev_ckpt)
    cfg = state["cfg"]
    if cfg.model.get("w2v_args") is not None:
        raise located(prev_ckpt, "init: continue needs a pretraining checkpoint, this one is fine-tuned")
    with open_dict(cfg):
        for key, value in (model or {}).items():
            cfg.model[key] = value
    dicts = [Dictionary.load(os.path.join(label_dir, f"dict.{name}.txt")) for name in labels]
    task = tasks.setup_task(cfg.task)
    task.load_state_dict({"dictionaries": dicts})
    torch.manual_seed(seed)
    model = models.build_model(cfg.model, task)
    fresh = model.state_dict()
    depth = len(model.encoder.layers)
    if reset_top_layers > depth:
        raise located(prev_ckpt, f"cannot reset {reset_top_layers} layers of a {depth}-layer model")
    reset = tuple(f"encoder.layers.{i}." for i in range(depth - reset_top_layers, depth))
    new, kept, fresh_keys = {}, [], []
    for key, value in fresh.items():
        old = state["model"].get(key)
        if key.startswith(PRETRAINING_ONLY) or (reset and key.startswith(reset)) or old is None \
                or old.shape != value.shape:
            new[key] = value
            fresh_keys.append(key)
        else:
            new[key] = old
            kept.append(key)
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if OmegaConf.is_config(cfg) else cfg
    save_checkpoint(out, container, new, dicts)
    return {"from": prev_ckpt, "kept_tensors": len(kept), "fresh_tensors": sorted(fresh_keys),
            "reset_top_layers": reset_top_layers}
