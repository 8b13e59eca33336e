"""``ae-hubert init-continue``, ``export-stock``: checkpoints made for the next run or for stock tools."""
from __future__ import annotations

import os

from ..common.arguments import SEED, integer, name_list, output_file
from ..common.command import Command, UsageError, echo
from ..common.outputs import Files


def _init_continue(a):
    from .continue_init import model_overrides, prepare_continue_init

    for item in a.model:
        key, sep, _ = item.lstrip("+").partition("=")
        if not sep or not key.startswith("model.") or "." in key[len("model."):] or not key[len("model."):]:
            raise UsageError(f"{item!r}: expected model.KEY=VALUE (see ae-hubert init-continue --help)")
    r = prepare_continue_init(a.prev, a.label_dir, a.labels, a.reset_top_layers, a.out, a.seed,
                              model_overrides(a.model))
    echo(f"{a.out}: {r['kept_tensors']} tensors from {a.prev}, {len(r['fresh_tensors'])} fresh")
    return r


def _init_continue_args(s):
    s.add_argument("--prev", required=True, help="previous iteration's pretraining checkpoint")
    s.add_argument("--label-dir", required=True, help="the next iteration's label dir (dict.NAME.txt)")
    s.add_argument("--labels", type=name_list, default=["km"], help="comma-separated label names")
    s.add_argument("--reset-top-layers", type=integer(0), default=0, help="re-initialise this many top blocks")
    s.add_argument("--out", type=output_file, required=True, help="checkpoint to write (for checkpoint.finetune_from_model)")
    s.add_argument("--seed", type=SEED, default=1, help="seed of the fresh heads and reset layers")
    s.add_argument("model", nargs="*", help="model.KEY=VALUE of the next iteration's model (e.g. "
                   "model._name=hubert_layer_targets)")


def _init_continue_files(a) -> Files:
    return Files({a.out: "--out"}, {a.prev: "--prev", **{os.path.join(a.label_dir, f"dict.{n}.txt"): "--label-dir"
                                                          for n in a.labels}})


def _export_stock(a):
    from .export_stock import export_stock

    r = export_stock(a.ckpt, a.out)
    echo(f"{r['to']}: stock hubert / hubert_pretraining names; dropped {len(r['dropped_tensors'])} extra-head tensors")


def _export_stock_args(s):
    s.add_argument("--ckpt", required=True, help="hubert_layer_targets pretraining checkpoint")
    s.add_argument("--out", type=output_file, required=True, help="checkpoint to write")


COMMANDS = [
    Command("init-continue", "next iteration's initial weights from the previous checkpoint", _init_continue,
            _init_continue_args, files=_init_continue_files),
    Command("export-stock", "a hubert_layer_targets pretraining checkpoint under stock names (hubert)", _export_stock,
            _export_stock_args, files=lambda a: Files({a.out: "--out"}, {a.ckpt: "--ckpt"})),
]
