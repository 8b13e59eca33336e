"""``ae-hubert decode``: greedy CTC decoding of a fine-tuned checkpoint on its own, WER and CER.

The checkpoint is all that is needed besides the audio: the model rebuilds from the ``w2v_args``
it carries (no ``w2v_path`` file) and the output dictionary comes from its ``task_state``.
Utterances are decoded one at a time (exact for GroupNorm models, which padding would change).
Units become words with fairseq's ``post_process`` (``letter`` for ``.ltr``, ``sentencepiece`` for
subwords), as the ``ctc`` criterion's validation WER does; references are ``{split}.{label}`` beside
the manifest (else ``{split}.wrd``).
"""
from __future__ import annotations

import json
import os

import torch
import torch.nn.functional as F

from ..common.atomic import check_writable_dir, write_lines_atomic, write_text_atomic
from ..common.audio import check_headers, read_entry
from ..common.errors import located
from ..common.error_rates import error_rates
from ..common.manifest import read_manifest
from ..common.text import read_lines


def load_finetuned(ckpt: str, data: str | None = None, device: str | None = None):
    """``(model, task, cfg)`` of a fine-tuned CTC checkpoint, eval mode; ``data`` replaces ``task.data``."""
    from .. import register

    register()
    from fairseq import tasks
    from omegaconf import open_dict

    from ..common.checkpoint import load_state

    state = load_state(ckpt)
    cfg = state["cfg"]
    if cfg.model.get("w2v_args") is None:
        raise located(ckpt, "not a self-contained fine-tuned CTC checkpoint (its config has no w2v_args)")
    with open_dict(cfg):
        if data:
            cfg.task.data = data
            if cfg.task.get("label_dir") is not None:
                cfg.task.label_dir = data
    task = tasks.setup_task(cfg.task)
    if "task_state" in state:
        task.load_state_dict(state["task_state"])
    model = task.build_model(cfg.model, from_checkpoint=True)
    model.load_state_dict(state["model"], strict=True, model_cfg=cfg.model)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return model.to(dev).eval(), task, cfg


def greedy_units(model, task, wav, normalize: bool) -> torch.Tensor:
    dev = next(model.parameters()).device
    x = torch.as_tensor(wav, dtype=torch.float32, device=dev)
    if normalize:
        x = F.layer_norm(x, x.shape)
    net = model(source=x.view(1, -1), padding_mask=None)
    lp = model.get_normalized_probs(net, log_probs=True)[:, 0]  # T x V
    toks = torch.unique_consecutive(lp.argmax(-1))
    blank = task.target_dictionary.index(task.blank_symbol)
    return toks[toks != blank].cpu()


@torch.inference_mode()
def decode(ckpt: str, data: str, split: str, out_dir: str | None = None, device: str | None = None,
           max_utterances: int | None = None) -> dict:
    from fairseq.data.data_utils import post_process

    model, task, cfg = load_finetuned(ckpt, data, device)
    if out_dir:
        check_writable_dir(out_dir)  # before the decoding, not after
    mode = cfg.criterion.get("post_process", "letter") if cfg.get("criterion") else "letter"
    d = task.target_dictionary
    entries = read_manifest(os.path.join(data, f"{split}.tsv")).entries[:max_utterances]
    check_headers(entries)
    units, hyps = [], []
    for e in entries:
        s = d.string(greedy_units(model, task, read_entry(e), bool(cfg.task.normalize)))
        units.append(s)
        hyps.append(post_process(s, mode))
    label = cfg.task.labels[0]
    refs = None
    for name, process in ((f"{split}.{label}", True), (f"{split}.wrd", False)):
        path = os.path.join(data, name)
        if os.path.isfile(path):
            lines = read_lines(path, len(entries))
            if len(lines) < len(entries):
                raise located(path, f"{len(lines)} lines but the manifest has {len(entries)} utterances")
            refs = [post_process(line, mode) if process else " ".join(line.split()) for line in lines]
            break
    result = {"checkpoint": ckpt, "split": split, "utterances": len(entries), "post_process": mode}
    if refs is not None:
        result.update(error_rates(hyps, refs))
    if out_dir:
        write_lines_atomic(os.path.join(out_dir, f"{split}.hyp.units"), units)
        write_lines_atomic(os.path.join(out_dir, f"{split}.hyp.wrd"), hyps)
        if refs is not None:
            write_lines_atomic(os.path.join(out_dir, f"{split}.ref.wrd"), refs)
        write_text_atomic(os.path.join(out_dir, f"{split}.scores.json"), json.dumps(result, indent=1) + "\n")
    result["hyps"] = hyps
    return result
