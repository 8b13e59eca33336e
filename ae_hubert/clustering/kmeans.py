"""``ae-hubert kmeans``: fit k-means on a sample of dumped features -> a joblib sklearn model.

Stock ``learn_kmeans.py`` runs MiniBatchKMeans with ``n_init=20`` k-means++ restarts; most of
its time goes into those restarts. We seed once with k-means++ on a random subset of the frames
(max(30 K, 10000), like MiniBatchKMeans's ``init_size``; measured: k-means++ on all frames was 3/4
of the fit time) and run full-batch Lloyd on all sampled frames until it stalls (``lloyd.py``:
``STEP`` iterations gaining less than ``min_gain``), which on HuBERT features reaches a lower
inertia in a fraction of the time. Chosen by measurement: on the CPU, sklearn's Lloyd (fused
distance/argmin/update kernels) ran 1.6-1.8x faster than the same iterations in torch, so the
in-memory CPU fit is sklearn's; on CUDA, and for samples streamed from disk, it is ``lloyd.py``'s
torch loop. The file is a plain ``joblib.dump`` of a fitted sklearn ``KMeans``: stock
``dump_km_label.py`` (which reads ``cluster_centers_``) loads it unchanged.
"""
from __future__ import annotations

import logging
import os

import joblib
import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus

from ..common.atomic import atomic_path, check_writable_dir
from ..common.errors import located
from .lloyd import MIN_GAIN, STEP, fit_lloyd, stalled
from .sample import check_k, init_frame_indices, sample_features, sampled_utterances

logger = logging.getLogger(__name__)


def fit_kmeans(feats: np.ndarray, k: int, seed: int = 0, max_iter: int = 100, tol: float = 1e-4,
               min_gain: float = MIN_GAIN, device: str | None = None) -> KMeans:
    """k-means of an in-memory sample: sklearn's Lloyd on the CPU, ``lloyd.py`` on CUDA."""
    import torch

    if (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda"):
        return fit_lloyd([feats], k, seed, max_iter, tol, device=device, min_gain=min_gain)
    check_k(k, len(feats))
    centers, _ = kmeans_plusplus(feats[init_frame_indices(len(feats), k, seed)], k, random_state=seed)
    done, looked, iters = 0, None, 0
    while True:  # STEP iterations at a time (Lloyd depends only on the centres: the same as one run)
        step = min(STEP, max_iter - done)
        km = KMeans(n_clusters=k, init=centers, n_init=1, max_iter=step, tol=tol, random_state=seed,
                    algorithm="lloyd").fit(feats)
        done += step
        iters += km.n_iter_
        centers = km.cluster_centers_
        if km.n_iter_ < step or done >= max_iter or stalled(looked, km.inertia_, min_gain):
            break
        looked = km.inertia_
    km.n_iter_ = iters
    return km


def distinct_frames(parts: list[np.ndarray], stop: int) -> int:
    """Distinct frames of the sample, counted in chunks (it may be memory-mapped and larger than
    RAM) up to ``stop``."""
    seen: set[bytes] = set()
    for p in parts:
        for i in range(0, len(p), 65536):
            block = np.ascontiguousarray(p[i:i + 65536], dtype=np.float32)
            seen.update(row.tobytes() for row in block)
            if len(seen) >= stop:
                return len(seen)
    return len(seen)


def check_distinct(parts: list[np.ndarray], k: int, feat_dir: str) -> None:
    """K clusters need K distinct frames: refused before the fit, naming the largest K the sample allows."""
    check_k(k, sum(len(p) for p in parts))  # fewer frames than K at all: said as such
    frames = distinct_frames(parts, k)
    if frames < k:
        raise located(feat_dir, f"the k-means sample has {frames} distinct frames, fewer than k={k}: k <= {frames} "
                                "(a smaller --k, or more audio)")


def check_fit(km: KMeans, k: int, feat_dir: str) -> None:
    """A fit that is no clustering is refused, not saved: distances that overflowed (features too
    large for float32) or fewer distinct centres than K (the sample has K distinct frames,
    :func:`check_distinct`, but too few of them apart)."""
    centers = np.asarray(km.cluster_centers_)
    if not np.isfinite(km.inertia_) or not np.isfinite(centers).all():
        raise located(feat_dir, f"k-means overflowed (inertia {km.inertia_}): feature values too large for "
                                "float32 distances; scale the features")
    distinct = len(np.unique(centers, axis=0))
    if distinct < k:
        raise located(feat_dir, f"only {distinct} distinct centres for k={k}: the sample has at least {k} distinct "
                                "frames, but too few apart for k clusters (a smaller --k, or more audio)")


def learn_kmeans(feat_dir: str, split: str, nshard: int, k: int, out: str, percent: float = -1,
                 seed: int = 0, max_iter: int = 100, streamed: bool = False,
                 chunk_frames: int = 200_000, min_gain: float = MIN_GAIN, device: str | None = None) -> KMeans:
    """``streamed``: the sample stays memory-mapped and Lloyd passes over it in chunks
    (``lloyd.py``), for samples larger than RAM; otherwise it is loaded and fit in memory."""
    if os.path.isdir(out):
        raise located(out, "--out is a directory; give the k-means file name")
    check_writable_dir(os.path.dirname(os.path.abspath(out)))  # before the fit, not after
    if streamed:
        names: list[str] = []
        parts = sampled_utterances(feat_dir, split, nshard, percent, seed, names)
        check_distinct(parts, k, feat_dir)
        km = fit_lloyd(parts, k, seed, max_iter, chunk_frames=chunk_frames, device=device, in_memory=False,
                       min_gain=min_gain, names=names)
        n_frames = sum(len(p) for p in parts)
    else:
        feats = sample_features(feat_dir, split, nshard, percent, seed)
        logger.info("k-means: %d frames x %d dims, k=%d", *feats.shape, k)
        check_distinct([feats], k, feat_dir)
        km = fit_kmeans(feats, k, seed, max_iter, min_gain=min_gain, device=device)
        n_frames = len(feats)
    logger.info("k-means: inertia %.6g (%.6g per frame), %d iterations", km.inertia_,
                km.inertia_ / n_frames, km.n_iter_)
    check_fit(km, k, feat_dir)
    with atomic_path(out) as tmp:
        joblib.dump(km, tmp)
    return km
