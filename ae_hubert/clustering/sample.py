"""What k-means fits on, shared by the in-memory and the streamed fit: the sampled utterances of
dumped features (a fraction of each shard, as stock ``learn_kmeans.py``) and the random frame
subset that k-means++ seeds from."""
from __future__ import annotations

import numpy as np

from ..common.errors import AeHubertError
from ..common.sampling import check_fraction, sampled_indices
from ..features.shards import feature_paths, read_shards


def sampled_utterances(feat_dir: str, split: str, nshard: int, percent: float, seed: int,
                       names: list[str] | None = None) -> list[np.ndarray]:
    """Whole utterances, ``percent`` (a fraction in (0, 1], or -1 for all) of each shard, as stock
    does (``common/sampling.py``); memory-mapped views, nothing read yet. ``names`` (a list) gets
    where each came from, ``SHARD.npy: utterance N`` (N: its line in the ``.len``), for errors."""
    check_fraction(percent)
    shards = read_shards(feat_dir, split, nshard)
    keep = sampled_indices([len(s) for s in shards], percent, seed)
    if names is not None:
        names.extend(f"{feature_paths(feat_dir, split, rank, nshard)[0]}: utterance {i + 1}"
                     for rank, idx in enumerate(keep) for i in idx)
    return [shard.utterance(i) for shard, idx in zip(shards, keep) for i in idx]


def non_finite_at(frame: int, parts: list[np.ndarray], names: list[str]) -> AeHubertError:
    """The error for a NaN/inf at sampled ``frame``, naming the shard and utterance it lies in."""
    ends = np.cumsum([len(p) for p in parts])
    u = int(np.searchsorted(ends, frame, side="right"))
    return AeHubertError(f"{names[u]}: features contain NaN or inf (frame {frame - (ends[u] - len(parts[u])) + 1} "
                         "of the utterance)")


def sample_features(feat_dir: str, split: str, nshard: int, percent: float, seed: int) -> np.ndarray:
    """The sampled utterances' frames, in memory (float32)."""
    names: list[str] = []
    parts = sampled_utterances(feat_dir, split, nshard, percent, seed, names)
    feats = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=0)
    if not np.isfinite(feats).all():
        raise non_finite_at(int(np.argwhere(~np.isfinite(feats))[0][0]), parts, names)
    return feats


def check_k(k: int, n_frames: int) -> None:
    if k < 2:
        raise AeHubertError(f"--k must be at least 2, got {k}")
    if k > n_frames:
        raise AeHubertError(f"--k {k} is larger than the number of sampled frames ({n_frames})")


def init_frame_indices(n_frames: int, k: int, seed: int) -> np.ndarray:
    """Sorted indices of the frames k-means++ seeds from: max(30 K, 10000) of them at random."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_frames, min(n_frames, max(30 * k, 10000)), replace=False))
