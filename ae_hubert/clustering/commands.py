"""``ae-hubert kmeans``, ``label``, ``merge-labels``, ``quality``, ``choose-layer``, ``cluster-quality``:
from features to targets, in the files fairseq's ``simple_kmeans`` scripts read and write."""
from __future__ import annotations

import os

from ..common.arguments import (SEED, device_option, frame_rate, gain_fraction, int_list, integer, mfcc_rate_option,
                                model_options, name_list, output_file, path, plain_name, sample_fraction)
from ..common.command import Command, UsageError, echo
from ..common.outputs import Files


def _kmeans(a):
    from .kmeans import learn_kmeans

    km = learn_kmeans(a.feat_dir, a.split, a.nshard, a.k, a.out, a.percent, a.seed, a.max_iter, a.streamed,
                      a.chunk_frames, a.min_gain, a.device)
    echo(f"{a.out}: k={a.k} inertia={km.inertia_:.6g}")
    return {"inertia": float(km.inertia_), "iterations": int(km.n_iter_)}


def _kmeans_args(s):
    s.add_argument("--feat-dir", required=True, help="directory of `dump` shards")
    s.add_argument("--split", type=plain_name, required=True, help="which split's shards to fit on")
    s.add_argument("--nshard", type=integer(1), default=1, help="number of shards the split was dumped in")
    s.add_argument("--k", type=integer(2), required=True, help="number of clusters")
    s.add_argument("--out", type=output_file, required=True, help="k-means file to write (joblib, loadable by stock tools)")
    s.add_argument("--percent", type=sample_fraction, default=-1,
                   help="fraction of each shard's utterances to fit on, in (0, 1]; -1: all")
    s.add_argument("--seed", type=SEED, default=0, help="sampling and k-means++ seed")
    s.add_argument("--max-iter", type=integer(1), default=100, help="Lloyd iterations at most")
    s.add_argument("--streamed", action="store_true",
                   help="bounded memory: features stay memory-mapped, Lloyd passes read them in chunks")
    s.add_argument("--chunk-frames", type=integer(1), default=200_000, help="(with --streamed) frames per chunk")
    s.add_argument("--min-gain", type=gain_fraction, default=1e-3,
                   help="stop when 5 Lloyd iterations lower the inertia by less than this fraction of it "
                        "(0: off, run to --max-iter or sklearn's convergence rule)")
    device_option(s)


def _shards(feat_dir: str, split: str, nshard: int) -> dict[str, str]:
    """A split's feature shards (``dump``'s .npy/.len pairs), as inputs."""
    return {os.path.join(feat_dir, f"{split}_{r}_{nshard}.{ext}"): "--feat-dir" for r in range(nshard)
            for ext in ("npy", "len")}


def _kmeans_files(a) -> Files:
    return Files({a.out: "--out"}, _shards(a.feat_dir, a.split, a.nshard), {a.feat_dir: "--feat-dir"})


def _label_files(a) -> Files:
    source = a.feat_dir or a.tsv_dir
    sharded = a.feat_dir is None and a.nshard > 1
    labels = f"{a.split}_{a.rank or 0}_{a.nshard}.{a.name}" if sharded else f"{a.split}.{a.name}"
    inputs = {a.km: "--km", **({a.ckpt: "--ckpt"} if a.ckpt else {}),
              **(_shards(a.feat_dir, a.split, a.nshard) if a.feat_dir else
                 {os.path.join(a.tsv_dir, f"{a.split}.tsv"): "--tsv-dir"})}
    return Files({os.path.join(a.out_dir, labels): "--out-dir/--name",
                  os.path.join(a.out_dir, f"dict.{a.name}.txt"): "--out-dir/--name"}, inputs,
                 {source: "--feat-dir" if a.feat_dir else "--tsv-dir"}, writes_labels=True)


def _merge_labels_files(a) -> Files:
    shards = {os.path.join(a.label_dir, f"{a.split}_{r}_{a.nshard}.{a.name}"): "--label-dir" for r in range(a.nshard)}
    return Files({os.path.join(a.label_dir, f"{a.split}.{a.name}"): "--label-dir/--name"},
                 {**shards, **({os.path.join(a.tsv_dir, f"{a.split}.tsv"): "--tsv-dir"} if a.tsv_dir else {})},
                 {a.label_dir: "--label-dir", **({a.tsv_dir: "--tsv-dir"} if a.tsv_dir else {})}, writes_labels=True)


def _quality_files(a) -> Files:
    return Files({a.json: "--json"} if a.json else {}, {a.km: "--km", a.phn: "--phn"},
                 {os.path.dirname(os.path.abspath(a.phn)): "--phn"})


def _label(a):
    from ..features.commands import model_kind
    from .label import dump_labels, label_audio

    if a.feat_dir is not None:
        given = [o for o, v in (("--ckpt", a.ckpt), ("--layer", a.layer), ("--layer-from", a.layer_from),
                                ("--rank", a.rank), ("--mfcc-rate", None if a.mfcc_rate == 100 else a.mfcc_rate))
                 if v is not None]
        if given:
            raise UsageError(f"{' and '.join(given)}: only with --tsv-dir (--feat-dir labels dumped features)")
        out = dump_labels(a.feat_dir, a.split, a.nshard, a.km, a.out_dir, a.name, a.device)
    else:
        if a.ckpt is None and (a.layer is not None or a.layer_from is not None):
            raise UsageError("--layer/--layer-from: give the checkpoint too (--ckpt); without it labels are of MFCC")
        if a.ckpt is not None and a.layer is None and a.layer_from is None:
            raise UsageError("--ckpt: give the layer too (--layer or --layer-from)")
        if a.ckpt is not None and a.mfcc_rate != 100:
            raise UsageError("--mfcc-rate: only for MFCC labels (without --ckpt)")
        rank = a.rank or 0
        if not rank < a.nshard:
            raise UsageError(f"--rank {rank} / --nshard {a.nshard}: need 0 <= rank < nshard")
        out = label_audio(a.tsv_dir, a.split, a.km, a.out_dir, a.name, a.nshard, rank, a.device, **model_kind(a))
    echo(out)
    return {"labels": out}


def _label_args(s):
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--feat-dir", help="directory of `dump` shards")
    src.add_argument("--tsv-dir", help="directory with {split}.tsv: features computed from the audio, not stored")
    s.add_argument("--split", type=plain_name, required=True, help="which split to label")
    s.add_argument("--nshard", type=integer(1), default=1,
                   help="shards the split was dumped in (--feat-dir) or is labelled in (--tsv-dir)")
    s.add_argument("--rank", type=integer(0), default=None,
                   help="(--tsv-dir) which shard this run labels -> {split}_{rank}_{nshard}.NAME (default 0)")
    s.add_argument("--km", required=True, help="k-means file (ours, stock learn_kmeans.py's, or a released one)")
    s.add_argument("--out-dir", type=path, required=True, help="label directory")
    s.add_argument("--name", type=plain_name, default="km", help="label name: writes {split}.NAME and dict.NAME.txt")
    model_options(s, required=False)
    mfcc_rate_option(s)


def _merge_labels(a):
    from .label import merge_labels

    out = merge_labels(a.label_dir, a.split, a.nshard, a.name, a.tsv_dir)
    echo(out)
    return {"labels": out}


def _merge_labels_args(s):
    s.add_argument("--label-dir", required=True, help="where the {split}_{rank}_{nshard}.NAME files are")
    s.add_argument("--split", type=plain_name, required=True, help="which split")
    s.add_argument("--nshard", type=integer(1), required=True, help="number of shards")
    s.add_argument("--name", type=plain_name, default="km", help="label name")
    s.add_argument("--tsv-dir", default=None, help="check the line count against {split}.tsv here")


def _quality(a):
    from .quality import label_quality

    q = label_quality(a.km, a.phn, a.km_rate, a.phn_rate, a.json)
    echo(f"PNMI {q['pnmi']:.4f}  phone purity {q['phone_purity']:.4f}  cluster purity "
         f"{q['cluster_purity']:.4f}  ({q['frames']} frames, {q['n_labels_used']} labels used, "
         f"labels at {q['km_rate']:g} Hz)")
    return {k: q[k] for k in ("pnmi", "phone_purity", "cluster_purity", "frames", "km_rate")}


def _quality_args(s):
    s.add_argument("--km", required=True, help="frame labels, one utterance per line")
    s.add_argument("--phn", required=True, help="frame phone labels, same utterances in the same order")
    s.add_argument("--km-rate", type=frame_rate, default=None,
                   help="label frame rate in Hz (default: inferred from the line lengths, 50 or 100)")
    s.add_argument("--phn-rate", type=frame_rate, default=50, help="phone label frame rate in Hz")
    s.add_argument("--json", type=output_file, default=None, help="also write the scores here")


def _choose_layer(a):
    from .layer_choice import choose_layer

    r = choose_layer(a.ckpt, a.data, a.candidates, a.k, a.seed, a.train_utterances, a.valid_utterances,
                     json_out=a.json)
    echo(r["why"])
    return r


def _protocol_args(s):
    """The sizes of the per-layer clustering protocol (layer_choice.py), shared by choose-layer and
    cluster-quality."""
    s.add_argument("--train-utterances", type=integer(1), default=300,
                   help="train utterances k-means is fit on and the layer is chosen on")
    s.add_argument("--valid-utterances", type=integer(1), default=300, help="valid utterances the clusters are "
                   "reported on")
    s.add_argument("--seed", type=SEED, default=1, help="k-means seed")


def _choose_layer_args(s):
    s.add_argument("--ckpt", required=True, help="HuBERT checkpoint")
    s.add_argument("--data", required=True, help="directory with train/valid .tsv (and .phn: PNMI; without: "
                   "silhouette)")
    s.add_argument("--k", type=integer(2), required=True, help="clusters per layer (the target's K)")
    s.add_argument("--candidates", type=int_list(1), default=None, help="comma-separated 1-based layers "
                   "(default: all)")
    _protocol_args(s)
    s.add_argument("--json", type=output_file, default=None, help="write the choice and every layer's score here")


def _cluster_quality(a):
    from .layer_choice import cluster_quality

    if a.layers is not None and a.ckpt is None:
        raise UsageError("--layers: a checkpoint's layers; give --ckpt too (without it, MFCC only)")
    r = cluster_quality(a.data, a.k, a.ckpt, a.layers, a.train_utterances, a.valid_utterances, a.seed,
                        json_out=a.json)
    rows = [("MFCC", r["mfcc"])] + [(f"layer {layer}", q) for layer, q in r.get("layers", {}).items()]
    echo(f"{'features':10s} {'PNMI':>7s} {'phone pur':>9s} {'clus pur':>8s}   (K={r['k']}: fit on "
         f"{r['train_utterances']} train, scored on {r['valid_utterances']} valid utterances)",
         *(f"{name:10s} {q['pnmi']:7.4f} {q['phone_purity']:9.4f} {q['cluster_purity']:8.4f}" for name, q in rows))
    if "best_layer" in r:
        echo(f"best: layer {r['best_layer']}, PNMI {r['best_minus_mfcc_pnmi']:+.4f} vs MFCC")
    return r


def _cluster_quality_args(s):
    s.add_argument("--data", required=True, help="directory with train/valid .tsv and valid .phn (train .phn too "
                   "with --ckpt: the best layer is chosen on it)")
    s.add_argument("--k", type=integer(2), required=True, help="clusters (the same K for every representation)")
    s.add_argument("--ckpt", default=None, help="HuBERT checkpoint (default: MFCC only)")
    s.add_argument("--layers", type=int_list(1), default=None, help="comma-separated 1-based layers (default: all)")
    _protocol_args(s)
    s.add_argument("--json", type=output_file, default=None, help="also write every score here")


def _phone_labels(a):
    from .label import check_label_name, phone_label_lines, write_phone_labels

    check_label_name(a.name)
    made = {split: phone_label_lines(a.data, split) for split in a.splits}  # every split checked before any is written
    for split, (lines, k) in made.items():
        echo(f"{write_phone_labels(a.out_dir, split, a.name, lines, k)}: {k} phones")


def _phone_labels_args(s):
    s.add_argument("--data", required=True, help="corpus directory: {split}.tsv, {split}.phn, dict.phn.txt")
    s.add_argument("--splits", type=name_list, default=["train", "valid"], help="comma-separated splits")
    s.add_argument("--out-dir", type=path, required=True, help="label directory")
    s.add_argument("--name", type=plain_name, default="phones",
                   help="label name: writes {split}.NAME and dict.NAME.txt")


def _phone_labels_files(a) -> Files:
    outs = {os.path.join(a.out_dir, f"{split}.{a.name}"): "--out-dir/--name" for split in a.splits}
    outs[os.path.join(a.out_dir, f"dict.{a.name}.txt")] = "--out-dir/--name"
    ins = {os.path.join(a.data, f"{split}.{ext}"): "--data" for split in a.splits for ext in ("phn", "tsv")}
    return Files(outs, {**ins, os.path.join(a.data, "dict.phn.txt"): "--data"}, {a.data: "--data"}, writes_labels=True)


COMMANDS = [
    Command("kmeans", "fit k-means on dumped features -> joblib sklearn KMeans", _kmeans, _kmeans_args,
            files=_kmeans_files),
    Command("label", "assign frame labels with a k-means model -> {split}.NAME, dict.NAME.txt", _label, _label_args,
            description="Label dumped features (--feat-dir, as stock dump_km_label.py), or compute each utterance's "
                        "features from the audio and label them in one pass without writing them (--tsv-dir: "
                        "MFCC, or a layer of --ckpt).", files=_label_files),
    Command("merge-labels", "join sharded `label --tsv-dir` outputs into {split}.NAME", _merge_labels,
            _merge_labels_args, files=_merge_labels_files),
    Command("phone-labels", "the corpus's frame phones as a label set (indices of dict.phn.txt) -> {split}.NAME, "
            "dict.NAME.txt", _phone_labels, _phone_labels_args, files=_phone_labels_files),
    Command("quality", "PNMI and purities of frame labels against frame phone labels", _quality, _quality_args,
            files=_quality_files),
    Command("choose-layer", "the layer to cluster next: every layer's clusters fit and chosen on train, reported "
            "on valid", _choose_layer, _choose_layer_args),
    Command("cluster-quality", "PNMI of MFCC clusters and of every layer's clusters by the same protocol "
            "(choose-layer's)", _cluster_quality, _cluster_quality_args),
]
