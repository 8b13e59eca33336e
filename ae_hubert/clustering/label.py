"""``ae-hubert label``: ``{split}.km`` (one line per manifest line) and ``dict.km.txt``.

Two sources of features: dumped shards (``--feat-dir``, stock ``dump_km_label.py``), or the audio
itself (``--tsv-dir``): each utterance's MFCC or layer features are computed and labelled in the
same pass and never written, so a run needs a feature dump only for the k-means sample. A
sharded audio run writes ``{split}_{rank}_{nshard}.km`` (stock's shard names); ``merge-labels``
joins them into ``{split}.km``.
"""
from __future__ import annotations

import os

import numpy as np
from tqdm import tqdm

from ..common.arguments import FILE_NAME
from ..common.atomic import atomic_path, ensure_writable_dir, output_dir, write_lines_atomic
from ..common.errors import AeHubertError, located, missing
from ..common.manifest import read_manifest, shard_range
from ..features.shards import feature_paths, read_shards
from .apply import NearestCentroid, NonFiniteFeatures, load_centroids
from ..common.text import read_lines


def check_label_name(name: str) -> None:
    """A label name becomes file names ({split}.NAME, dict.NAME.txt): a plain word, no paths."""
    if not FILE_NAME.fullmatch(name or ""):
        raise AeHubertError(f"label name {name!r}: use letters, digits, '_' or '-' (it names files)")


def write_dict(out_dir: str, k: int, name: str = "km") -> str:
    """All ``k`` ids, so no label can become ``<unk>`` (stock README's loop produced an empty dict)."""
    path = os.path.join(out_dir, f"dict.{name}.txt")
    write_lines_atomic(path, [f"{i} 1" for i in range(k)])
    return path


def dump_labels(feat_dir: str, split: str, nshard: int, km_path: str, out_dir: str, name: str = "km",
                device: str | None = None) -> str:
    check_label_name(name)
    centers = load_centroids(km_path)
    shards = read_shards(feat_dir, split, nshard)
    dim = shards[0].feats.shape[1]
    if dim != centers.shape[1]:
        raise located(feature_paths(feat_dir, split, 0, nshard)[0],
                      f"features have {dim} dims but the k-means model {km_path} has {centers.shape[1]}")
    assign = NearestCentroid(centers, device)
    with output_dir(out_dir):
        out = os.path.join(out_dir, f"{split}.{name}")
        with atomic_path(out) as tmp, open(tmp, "w") as f:
            for r, shard in enumerate(shards):
                # assign a whole block of frames at once, then cut it back into utterances
                block = 1 << 18
                i = 0
                bar = tqdm(total=len(shard), desc=f"label {split}", unit="utt",
                           disable=os.environ.get("AE_HUBERT_QUIET") == "1")
                while i < len(shard):
                    j = i
                    while j < len(shard) and shard.offsets[j] + shard.lengths[j] - shard.offsets[i] <= block:
                        j += 1
                    j = max(j, i + 1)
                    lo, hi = shard.offsets[i], shard.offsets[j - 1] + shard.lengths[j - 1]
                    try:
                        labs = assign(shard.feats[lo:hi])
                    except NonFiniteFeatures as e:
                        u = int(np.searchsorted(shard.offsets, lo + e.frame, side="right")) - 1
                        raise located(feature_paths(feat_dir, split, r, nshard)[0], f"utterance {u + 1}: features "
                                      f"contain NaN or inf (frame {lo + e.frame - shard.offsets[u] + 1} of the "
                                      "utterance): no label") from None
                    for u in range(i, j):
                        a = shard.offsets[u] - lo
                        f.write(" ".join(map(str, labs[a:a + shard.lengths[u]].tolist())) + "\n")
                    bar.update(j - i)
                    i = j
                bar.close()
        write_dict(out_dir, len(centers), name)
    return out


def shard_label_path(out_dir: str, split: str, name: str, nshard: int, rank: int) -> str:
    """Where a labelling run over manifest shard ``rank`` writes: the whole split's file when
    there is one shard, else stock's ``{split}_{rank}_{nshard}.{name}``."""
    return os.path.join(out_dir, f"{split}.{name}" if nshard == 1 else f"{split}_{rank}_{nshard}.{name}")


def label_audio(tsv_dir: str, split: str, km_path: str, out_dir: str, name: str = "km", nshard: int = 1,
                rank: int = 0, device: str | None = None, **kind) -> str:
    """Labels of one manifest shard straight from the audio: features as ``dump`` computes them
    (``features.dump.shard_features``; ``kind``: ``ckpt``, ``layer`` and model options; MFCC
    without ``ckpt``), assigned as they come. The same labels as dump -> label."""
    import itertools

    from ..features.dump import shard_features

    check_label_name(name)
    centers = load_centroids(km_path)
    entries, feats, _ = shard_features(tsv_dir, split, nshard, rank, device=device, **kind)
    first = next(iter(feats), None)
    if first is None:
        raise AeHubertError(f"{tsv_dir}/{split}.tsv: shard {rank}/{nshard} is empty")
    if first[1].shape[1] != centers.shape[1]:
        raise located(km_path, f"the k-means model has {centers.shape[1]} dims but these features have "
                               f"{first[1].shape[1]} (another layer or model?)")
    assign = NearestCentroid(centers, device)
    out = shard_label_path(out_dir, split, name, nshard, rank)
    with atomic_path(out) as tmp, open(tmp, "w") as f:  # shards of one split may share a new --out-dir
        for entry, feat in tqdm(itertools.chain([first], feats), total=len(entries), desc=f"label {split}",
                                unit="utt", disable=os.environ.get("AE_HUBERT_QUIET") == "1"):
            try:
                labs = assign(feat)
            except NonFiniteFeatures as e:
                raise located(entry.tsv, f"{entry.relpath}: features contain NaN or inf (frame {e.frame + 1} of the "
                                         "utterance): no label", entry.line) from None
            f.write(" ".join(map(str, labs.tolist())) + "\n")
    write_dict(out_dir, len(centers), name)
    return out


def _dict_size(path: str) -> int | None:
    """How many ids ``label`` wrote into a label dictionary (None when there is none)."""
    return len([line for line in read_lines(path) if line.strip()]) if os.path.isfile(path) else None


def merge_labels(label_dir: str, split: str, nshard: int, name: str = "km", tsv_dir: str | None = None) -> str:
    """Join the shard label files of ``label_audio`` into ``{split}.{name}`` (what fairseq reads);
    with ``tsv_dir``, the lines must match the manifest one to one."""
    check_label_name(name)
    parts = [shard_label_path(label_dir, split, name, nshard, r) for r in range(nshard)]
    for p in parts:
        if not os.path.isfile(p):
            raise missing(p, "shard labels", " (run `ae-hubert label --tsv-dir ... --rank` for every shard)")
    k = _dict_size(os.path.join(label_dir, f"dict.{name}.txt"))
    manifest = read_manifest(os.path.join(tsv_dir, f"{split}.tsv")) if tsv_dir is not None else None
    lines = []
    for r, p in enumerate(parts):
        shard = read_lines(p)
        if manifest is not None:  # each shard against its own utterances: a line moved between shards is no total
            start, end = shard_range(len(manifest), nshard, r)
            if len(shard) != end - start:
                raise located(p, f"{len(shard)} lines but shard {r}/{nshard} of {manifest.tsv} has {end - start} "
                                 "utterances")
        for i, line in enumerate(shard, start=1):
            bad = next((t for t in line.split() if not t.isdigit() or (k is not None and int(t) >= k)), None)
            if not line.split() or bad is not None:
                raise located(p, "an empty line (every utterance has at least one frame)" if not line.split() else
                              f"label {bad!r} is not a cluster id" + (f" in 0..{k - 1} (dict.{name}.txt)" if k
                                                                       else ""), i)
            lines.append(line)
    if manifest is not None:
        if len(manifest) != len(lines):
            raise located(manifest.tsv, f"{len(manifest)} utterances but the {nshard} shard label files have "
                                        f"{len(lines)} lines together")
    out = os.path.join(label_dir, f"{split}.{name}")
    write_lines_atomic(out, lines)
    return out


def phone_labels(data: str, split: str, out_dir: str, name: str = "phones") -> tuple[str, int]:
    """The corpus's own frame phones (``{data}/{split}.phn``, 50 Hz, symbols of ``dict.phn.txt``) as a
    label set like k-means's: each phone's index in the dictionary, ``{split}.NAME`` and ``dict.NAME.txt``.
    Oracle linguistic targets (the positive control whose top layer must look least input-like).
    Returns (the label file, K)."""
    check_label_name(name)
    lines, k = phone_label_lines(data, split)
    return write_phone_labels(out_dir, split, name, lines, k), k


def write_phone_labels(out_dir: str, split: str, name: str, lines: list[str], k: int) -> str:
    ensure_writable_dir(out_dir)
    path = os.path.join(out_dir, f"{split}.{name}")
    write_lines_atomic(path, lines)
    write_dict(out_dir, k, name)
    return path


def phone_label_lines(data: str, split: str) -> tuple[list[str], int]:
    """A split's frame phones as dictionary indices, every line checked; and K (the phones)."""
    dict_path = os.path.join(data, "dict.phn.txt")
    if not os.path.isfile(dict_path):
        raise missing(dict_path, "phone dictionary", " (phone targets need the corpus's dict.phn.txt)")
    symbols = [line.split()[0] for line in read_lines(dict_path) if line.strip()]
    if len(set(symbols)) < len(symbols):
        dup = next(s for s in symbols if symbols.count(s) > 1)
        raise located(dict_path, f"phone {dup!r} listed twice")
    index = {s: i for i, s in enumerate(symbols)}
    phn = os.path.join(data, f"{split}.phn")
    n = len(read_manifest(os.path.join(data, f"{split}.tsv")))
    lines = read_lines(phn) if os.path.isfile(phn) else None
    if lines is None:
        raise missing(phn, "frame phone labels")
    if len(lines) != n:
        raise located(phn, f"{len(lines)} lines but the manifest has {n} utterances")
    out = []
    for i, line in enumerate(lines, start=1):
        try:
            out.append(" ".join(str(index[p]) for p in line.split()))
        except KeyError as e:
            raise located(phn, f"phone {e.args[0]!r} is not in {dict_path}", i) from None
        if not line.split():
            raise located(phn, "an utterance without phones", i)
    return out, len(symbols)
