"""``init: continue``: the next iteration starts from the previous iteration's weights.

The previous model is rebuilt with the new iteration's label dictionaries (fresh, seeded init),
then every parameter is copied from the previous checkpoint except:
- the pretraining heads (``final_proj``, ``label_embs_concat``, ``hubert_layer_targets``' ``layer_heads``): the
  targets are new clusters, so they are re-learnt (their shapes change with K or the label sets);
- the top ``reset_top_layers`` transformer blocks, re-initialised by ``models/layer_reset.py``
  exactly as fine-tuning's reset does (BERT init of linear layers and attention, LayerNorms at 1/0).
The result is a checkpoint for fairseq's ``checkpoint.finetune_from_model`` (weights only:
optimizer, LR schedule, meters and data iterator start afresh).
"""
from __future__ import annotations

import difflib
import os

import torch

from ..clustering.label import check_label_name
from ..common.atomic import check_writable_dir
from ..common.checkpoint import PRETRAINING_ONLY, load_state
from ..common.errors import AeHubertError, located, missing
from ..common.fresh_checkpoint import save_checkpoint


def model_override_strings(overrides: list[str]) -> list[str]:
    """The ``model.KEY=VALUE`` (or ``+model.KEY=VALUE``) hydra overrides, as ``model.KEY=VALUE``."""
    out = []
    for o in overrides:
        key, sep, _ = o.lstrip("+").partition("=")
        if sep and key.startswith("model.") and "." not in key[len("model."):]:
            out.append(o.lstrip("+"))
    return out


def model_overrides(overrides: list[str]) -> dict:
    """The model overrides' values by key (the last one wins), parsed as hydra does."""
    import yaml

    out = {}
    for o in model_override_strings(overrides):
        key, _, value = o.partition("=")
        parsed = yaml.safe_load(value) if value else ""
        if ":" in value and not isinstance(parsed, str):  # YAML 1.1 reads 6:0:1 as a base-60 number
            parsed = value
        out[key[len("model."):]] = parsed
    return out


def check_model_keys(model: dict, default_name: str, where: str) -> None:
    """Every ``model.KEY`` must be a field of the model's registered config (fairseq would fail later,
    or silently ignore it)."""
    import dataclasses

    from .. import register

    register()  # our models
    from fairseq.models import MODEL_DATACLASS_REGISTRY

    name = str(model.get("_name", default_name))
    dc = MODEL_DATACLASS_REGISTRY.get(name)
    if dc is None:
        raise AeHubertError(f"{where}: model._name {name!r} is not a registered model "
                            f"(known: {', '.join(sorted(MODEL_DATACLASS_REGISTRY))})")
    fields = {f.name for f in dataclasses.fields(dc)}
    rate = model.get("label_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0):
        raise AeHubertError(f"{where}: model.label_rate must be a positive number of labels per second, got {rate!r}")
    for key in model:
        if key != "_name" and key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            raise AeHubertError(f"{where}: model.{key} is not an option of model {name!r}"
                                + (f" (did you mean model.{close[0]}?)" if close else ""))


def prepare_continue_init(prev_ckpt: str, label_dir: str, labels: list[str], reset_top_layers: int,
                          out: str, seed: int = 1, model: dict | None = None) -> dict:
    """``model``: model config values of the new iteration (e.g. ``_name: hubert_layer_targets`` with
    ``layer_targets``), so the initial weights fit the model it trains (extra heads start fresh)."""
    from .. import register

    register()
    from fairseq import models, tasks
    from fairseq.data import Dictionary
    from omegaconf import OmegaConf, open_dict

    from ..models.layer_reset import reset_top_layers as reinit_top_layers

    for name in labels:
        check_label_name(name)
        path = os.path.join(label_dir, f"dict.{name}.txt")
        if not os.path.isfile(path):
            raise missing(path, "label dictionary", " (run `ae-hubert label` first)")
    if reset_top_layers < 0:
        raise AeHubertError(f"--reset-top-layers must be >= 0, got {reset_top_layers}")
    if os.path.isdir(out):
        raise located(out, "--out is a directory; give the checkpoint's file name")
    check_writable_dir(os.path.dirname(os.path.abspath(out)))
    state = load_state(prev_ckpt)
    cfg = state["cfg"]
    if cfg.model.get("w2v_args") is not None:
        raise located(prev_ckpt, "init: continue needs a pretraining checkpoint, this one is fine-tuned")
    check_model_keys(model or {}, cfg.model.get("_name", "hubert"), "init-continue")
    with open_dict(cfg):
        for key, value in (model or {}).items():
            cfg.model[key] = value
    dicts = []
    for name in labels:
        path = os.path.join(label_dir, f"dict.{name}.txt")
        try:
            d = Dictionary.load(path)
        except Exception as e:  # fairseq raises bare Exception/ValueError/RuntimeError for bad dictionaries
            raise located(path, f"not a fairseq dictionary ({(str(e).strip().splitlines() or [''])[0][:200]})") from None
        if len(d) - d.nspecial < 2:
            raise located(path, f"{len(d) - d.nspecial} label(s): a target needs K >= 2 clusters to predict")
        negative = next((i for i in range(d.nspecial, len(d)) if d.count[i] < 0), None)
        if negative is not None:
            raise located(path, f"count {d.count[negative]} of {d[negative]!r} is negative", negative - d.nspecial + 1)
        dicts.append(d)
    try:
        task = tasks.setup_task(cfg.task)
        task.load_state_dict({"dictionaries": dicts})
        torch.manual_seed(seed)
        net = models.build_model(cfg.model, task)
    except Exception as e:  # a model override that does not build (a wrong type, an impossible size)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise located(prev_ckpt, f"the next iteration's model does not build ({first[:300]})") from None
    fresh_keys = []
    weights = {}
    new_shapes = {k: v.shape for k, v in net.state_dict().items()}
    if not model:  # the same architecture: every previous weight (heads aside) must fit exactly
        misfit = sorted(k for k, v in state["model"].items() if not k.startswith(PRETRAINING_ONLY)
                        and (k not in new_shapes or tuple(v.shape) != tuple(new_shapes[k])))
        absent = sorted(k for k in new_shapes if not k.startswith(PRETRAINING_ONLY) and k not in state["model"])
        if misfit or absent:
            raise located(prev_ckpt, "weights do not fit the model its config describes: "
                                     + ", ".join((misfit + absent)[:5]))
    else:  # extra heads may start fresh; every previous weight must still fit (a continuation, not a new model)
        changed = sorted(k for k, v in state["model"].items() if not k.startswith(PRETRAINING_ONLY)
                         and (k not in new_shapes or tuple(v.shape) != tuple(new_shapes[k])))
        if changed:
            given = ", ".join(f"model.{k}={v}" for k, v in model.items())
            raise located(prev_ckpt, f"the model overrides ({given}) change or drop {len(changed)} of its "
                                     f"weights ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}): a "
                                     "continued iteration keeps the architecture (train it from scratch instead)")
    for key, value in net.state_dict().items():
        old = state["model"].get(key)
        if key.startswith(PRETRAINING_ONLY) or old is None or old.shape != value.shape:
            weights[key] = value
            fresh_keys.append(key)
        else:
            weights[key] = old
    net.load_state_dict(weights)
    try:
        reset = reinit_top_layers(net, reset_top_layers, "reinit")  # the same fresh init as fine-tuning's reset
    except ValueError as e:
        raise located(prev_ckpt, str(e)) from None
    prefixes = tuple(f"encoder.layers.{i}." for i in reset)
    new = net.state_dict()
    fresh_keys = sorted(set(fresh_keys) | {k for k in new if prefixes and k.startswith(prefixes)})
    kept = len(new) - len(fresh_keys)
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if OmegaConf.is_config(cfg) else cfg
    save_checkpoint(out, container, new, dicts)
    return {"from": prev_ckpt, "kept_tensors": kept, "fresh_tensors": fresh_keys,
            "reset_top_layers": reset_top_layers}
