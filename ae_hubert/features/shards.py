"""Reading dumped feature shards (``{split}_{rank}_{nshard}.npy`` + ``.len``), memory-mapped."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..common.errors import located, missing
from ..common.text import read_lines


def feature_paths(feat_dir: str, split: str, rank: int, nshard: int) -> tuple[str, str]:
    base = os.path.join(feat_dir, f"{split}_{rank}_{nshard}")
    return base + ".npy", base + ".len"


@dataclass
class FeatureShard:
    feats: np.ndarray  # (total_frames, dim), memory-mapped
    lengths: np.ndarray  # frames per utterance
    offsets: np.ndarray  # first frame of each utterance

    def __len__(self) -> int:
        return len(self.lengths)

    def utterance(self, i: int) -> np.ndarray:
        return self.feats[self.offsets[i]: self.offsets[i] + self.lengths[i]]


def read_shard(feat_dir: str, split: str, rank: int, nshard: int) -> FeatureShard:
    npy, len_path = feature_paths(feat_dir, split, rank, nshard)
    for p in (npy, len_path):
        if not os.path.isfile(p):
            raise missing(p, "feature shard", " (run `ae-hubert dump` first)")
    lengths = []
    for i, line in enumerate(read_lines(len_path), start=1):
        try:
            n = int(line)
        except ValueError:
            raise located(len_path, f"expected a frame count, got {line.strip()[:40]!r}", i) from None
        if n < 1:
            raise located(len_path, f"frame count must be >= 1, got {n}", i)
        lengths.append(n)
    if not lengths:
        raise located(len_path, "no utterances (empty .len)")
    try:
        feats = np.load(npy, mmap_mode="r")
    except (ValueError, EOFError, OSError) as e:
        raise located(npy, f"not a readable .npy array ({e or 'empty file'})") from None
    if feats.ndim != 2 or feats.shape[1] < 1:
        raise located(npy, f"expected a 2-D (frames x dim) array, got shape {feats.shape}")
    if not np.issubdtype(feats.dtype, np.floating):
        raise located(npy, f"expected float features, got {feats.dtype}")
    lengths = np.asarray(lengths, dtype=np.int64)
    if int(lengths.sum()) != feats.shape[0]:
        raise located(len_path, f"frame counts sum to {int(lengths.sum())} but {npy} has {feats.shape[0]} frames")
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return FeatureShard(feats, lengths, offsets)


def read_shards(feat_dir: str, split: str, nshard: int) -> list[FeatureShard]:
    """Every shard of a split; they must agree on the feature dimension."""
    shards = [read_shard(feat_dir, split, r, nshard) for r in range(nshard)]
    dims = {s.feats.shape[1] for s in shards}
    if len(dims) > 1:
        raise located(feature_paths(feat_dir, split, 0, nshard)[0],
                      f"shards of '{split}' disagree on the feature dimension: {sorted(dims)}")
    return shards
