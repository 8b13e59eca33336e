"""``ae-hubert dump mfcc|hubert``: features of a manifest shard, as fairseq's stock dump scripts write them."""
from __future__ import annotations

from ..common.arguments import SEED, mfcc_rate_option, model_options, path, plain_name, sample_fraction, shard_options
from ..common.command import Command, UsageError, echo
from ..common.outputs import Files


def model_kind(a) -> dict:
    """``shard_features``'s arguments for what ``model_options`` name: MFCC (no ``--ckpt``), or a
    layer of a checkpoint."""
    if getattr(a, "ckpt", None) is None:
        return {"mfcc_rate": a.mfcc_rate} if getattr(a, "mfcc_rate", 100) != 100 else {}
    from .dump import layer_from

    layer = a.layer if a.layer is not None else layer_from(a.layer_from, a.ckpt)
    return {"ckpt": a.ckpt, "layer": layer, "max_samples": a.max_samples, "max_chunk": a.max_chunk,
            "user_dir": a.user_dir, "dtype": a.dtype}


def _dump(a):
    from .dump import dump_features

    kind = model_kind(a)
    if "ckpt" in kind:
        kind["device"] = a.device
    if a.seed is not None and a.sample is None:  # a seed of nothing: the whole shard is dumped
        raise UsageError("--seed: only with --sample (the sampling seed); without it every utterance is dumped")
    paths = dump_features(a.tsv_dir, a.split, a.out_dir, a.nshard, a.rank, sample=a.sample, seed=a.seed or 0,
                          **kind)
    echo(" ".join(paths))
    return {"files": list(paths)}


def _dump_args(with_model: bool):
    def arguments(k):
        k.add_argument("--tsv-dir", required=True, help="directory with {split}.tsv")
        k.add_argument("--split", type=plain_name, required=True, help="manifest name, e.g. train")
        k.add_argument("--out-dir", type=path, required=True, help="writes {split}_{rank}_{nshard}.npy and .len here")
        shard_options(k)
        k.add_argument("--sample", type=sample_fraction, default=None,
                       help="dump only the utterances `kmeans --percent` would sample (a fraction of each "
                            "shard), under {split}_sample_{rank}_{nshard}; fit with --percent -1")
        k.add_argument("--seed", type=SEED, default=None,
                       help="(with --sample) the sampling seed, as kmeans --seed (default 0)")
        if with_model:
            model_options(k, required=True)
        else:
            mfcc_rate_option(k)
    return arguments


def _dump_files(a) -> Files:
    """The shards' directory (a rerun rewrites its own shards, so they are not named one by one)."""
    return Files({a.out_dir: "--out-dir"}, {a.ckpt: "--ckpt"} if getattr(a, "ckpt", None) else {},
                 {a.tsv_dir: "--tsv-dir"})


COMMANDS = [
    Command("dump", "dump MFCC or HuBERT-layer features of a manifest shard", kinds=(
        Command("mfcc", "39-d MFCC + deltas at 100 Hz (stock dump_mfcc_feature.py), or 50 Hz", _dump,
                _dump_args(False), files=_dump_files),
        Command("hubert", "one transformer layer of a HuBERT checkpoint at 50 Hz (stock dump_hubert_feature.py)",
                _dump, _dump_args(True), files=_dump_files),
    )),
]
