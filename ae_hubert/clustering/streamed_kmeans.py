"""k-means in bounded memory: the sampled features stay memory-mapped on disk.

For LibriSpeech-size samples (10% of 960 h of 768-d layer features is ~17 M frames, ~53 GB in
float32) the in-memory fit does not fit in RAM. Here every pass reads the sample in chunks of
``chunk_frames`` frames: memory is one chunk plus K x D sums, whatever the sample size.
It is the same algorithm as the in-memory path: k-means++ on the same random frame subset (read
in one pass), then Lloyd iterations (nearest centre, centre = mean of its frames, an empty
cluster keeps its centre) until the squared centre shift falls below ``tol`` x the mean feature
variance (sklearn's rule). The result is a fitted sklearn ``KMeans``, saved the same way.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from sklearn.cluster import KMeans, kmeans_plusplus

from ..common.errors import AeHubertError
from .sample import check_k, init_frame_indices

logger = logging.getLogger(__name__)


def chunks(parts: list[np.ndarray], chunk_frames: int):
    """Consecutive float32 blocks of at most ``chunk_frames`` frames of the sampled utterances."""
    buf, n = [], 0
    for p in parts:
        for start in range(0, len(p), chunk_frames):
            piece = np.asarray(p[start:start + chunk_frames], dtype=np.float32)
            buf.append(piece)
            n += len(piece)
            if n >= chunk_frames:
                yield np.concatenate(buf)
                buf, n = [], 0
    if buf:
        yield np.concatenate(buf)


def _assign(x: torch.Tensor, centers: torch.Tensor, c_sq: torch.Tensor):
    d = (x * x).sum(1, keepdim=True) - 2 * x @ centers.T + c_sq
    dist, labels = d.min(1)
    return labels, dist.clamp_min_(0)


def fit_kmeans_streamed(parts: list[np.ndarray], k: int, seed: int = 0, max_iter: int = 100, tol: float = 1e-4,
                        chunk_frames: int = 200_000) -> KMeans:
    n = sum(len(p) for p in parts)
    check_k(k, n)
    dim = parts[0].shape[1]
    want = init_frame_indices(n, k, seed)
    subset, mean, sq, offset = [], np.zeros(dim), np.zeros(dim), 0
    for c in chunks(parts, chunk_frames):  # pass 0: the k-means++ frames and the feature variance
        if not np.isfinite(c).all():
            raise AeHubertError(f"features contain NaN or inf (sampled frames {offset}..{offset + len(c)})")
        lo, hi = np.searchsorted(want, [offset, offset + len(c)])
        subset.append(c[want[lo:hi] - offset])
        mean += c.sum(0, dtype=np.float64)
        sq += (c.astype(np.float64) ** 2).sum(0)
        offset += len(c)
    var = sq / n - (mean / n) ** 2
    tol_abs = tol * float(var.mean())
    init, _ = kmeans_plusplus(np.concatenate(subset), k, random_state=seed)
    centers = torch.from_numpy(init.astype(np.float32))
    it = 0
    for it in range(1, max_iter + 1):
        sums = torch.zeros(k, dim, dtype=torch.float64)
        counts = torch.zeros(k, dtype=torch.float64)
        c_sq = (centers * centers).sum(1)[None]
        for c in chunks(parts, chunk_frames):
            x = torch.from_numpy(c)
            labels, _ = _assign(x, centers, c_sq)
            sums.index_add_(0, labels, x.double())
            counts += torch.bincount(labels, minlength=k).double()
        new = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centers.double()).float()
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if shift <= tol_abs:
            break
    inertia, c_sq = 0.0, (centers * centers).sum(1)[None]
    for c in chunks(parts, chunk_frames):
        inertia += float(_assign(torch.from_numpy(c), centers, c_sq)[1].double().sum())
    logger.info("streamed k-means: %d frames x %d dims, k=%d, %d iterations", n, dim, k, it)
    km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=max_iter, tol=tol, random_state=seed)
    km.cluster_centers_ = centers.numpy().astype(np.float32)
    km.n_features_in_ = dim
    km._n_threads = torch.get_num_threads()
    km.inertia_ = inertia
    km.n_iter_ = it
    km.labels_ = None
    return km
