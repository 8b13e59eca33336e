"""What k-means fits on, shared by the in-memory and the streamed fit: the sampled utterances of
dumped features (a fraction of each shard, as stock ``learn_kmeans.py``) and the random frame
subset that k-means++ seeds from."""
from __future__ import annotations

import numpy as np

from ..common.errors import AeHubertError
from ..common.sampling import check_fraction, sampled_indices
from ..features.shards import read_shards


def sampled_utterances(feat_dir: str, split: str, nshard: int, percent: float, seed: int) -> list[np.ndarray]:
    """Whole utterances, ``percent`` (a fraction in (0, 1], or -1 for all) of each shard, as stock
    does (``common/sampling.py``); memory-mapped views, nothing read yet."""
    check_fraction(percent)
    shards = read_shards(feat_dir, split, nshard)
    keep = sampled_indices([len(s) for s in shards], percent, seed)
    return [shard.utterance(i) for shard, idx in zip(shards, keep) for i in idx]


def sample_features(feat_dir: str, split: str, nshard: int, percent: float, seed: int) -> np.ndarray:
    """The sampled utterances' frames, in memory (float32)."""
    parts = sampled_utterances(feat_dir, split, nshard, percent, seed)
    feats = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=0)
    if not np.isfinite(feats).all():
        bad = np.argwhere(~np.isfinite(feats))[0][0]
        raise AeHubertError(f"{feat_dir}: {split} features contain NaN or inf (sampled frame {bad})")
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
