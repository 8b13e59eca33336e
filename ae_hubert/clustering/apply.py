"""Nearest-centroid assignment with torch matmuls (CUDA when available), memory-bounded."""
from __future__ import annotations

import os

import joblib
import numpy as np
import torch

from ..common.errors import located, missing


# What a joblib k-means file (ours, stock learn_kmeans.py's, the released bins, older scikit-learn's)
# names; any other global is refused before it is called: unpickling runs what the file names.
KMEANS_GLOBALS = {("numpy", "dtype"), ("numpy", "ndarray"), ("joblib.numpy_pickle", "NumpyArrayWrapper"),
                  ("_codecs", "encode"), ("copyreg", "_reconstructor"), ("builtins", "object"),
                  *((m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("scalar", "_reconstruct")),
                  *(("numpy.random._pickle", n) for n in ("__randomstate_ctor", "__bit_generator_ctor")),
                  ("numpy.random.mtrand", "RandomState"), ("numpy.random._mt19937", "MT19937")}
KMEANS_CLASSES = ("KMeans", "MiniBatchKMeans")


def _load_kmeans(km_path: str):
    """``joblib.load`` with the globals the file may name allow-listed (joblib itself allows all)."""
    import pickle

    import joblib.numpy_pickle as numpy_pickle

    general = numpy_pickle.NumpyUnpickler

    class Checked(general):
        def find_class(self, module, name):
            if (module, name) in KMEANS_GLOBALS or (module.startswith("sklearn.cluster") and name in KMEANS_CLASSES):
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"it names {module}.{name}, outside the allow-list of what a k-means file "
                                         "holds; not loaded, since unpickling it could run code")

    numpy_pickle.NumpyUnpickler = Checked  # joblib's loader builds its unpickler from this module name
    try:
        return joblib.load(km_path)
    finally:
        numpy_pickle.NumpyUnpickler = general


def load_centroids(km_path: str) -> np.ndarray:
    """``cluster_centers_`` of a joblib k-means file (ours, stock learn_kmeans, the released bins)."""
    if not os.path.isfile(km_path):
        raise missing(km_path, "k-means file")
    try:
        km = _load_kmeans(km_path)
    except Exception as e:  # joblib/pickle raise many types for a non-joblib file
        why = str(e) if str(e).startswith("it names ") else f"{type(e).__name__}: {e}"
        raise located(km_path, f"not a joblib k-means file ({why})") from None
    centers = getattr(km, "cluster_centers_", None)
    if centers is None:
        raise located(km_path, f"{type(km).__name__} has no cluster_centers_")
    if np.asarray(centers).dtype.kind not in "fiu":  # complex or object centres would be cast silently
        raise located(km_path, f"cluster_centers_ must be real numbers, got dtype {np.asarray(centers).dtype}")
    try:
        centers = np.asarray(centers, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise located(km_path, f"cluster_centers_ is not a numeric array ({e})") from None
    if centers.ndim != 2 or centers.shape[0] < 2 or centers.shape[1] < 1:
        raise located(km_path, f"cluster_centers_ must be (K >= 2) x dim, got shape {centers.shape}")
    if not np.isfinite(centers).all():
        raise located(km_path, "cluster_centers_ contain NaN or inf")
    return centers


class NonFiniteFeatures(ValueError):
    """A frame (its index in the block given) is NaN or inf: it has no nearest centroid."""

    def __init__(self, frame: int):
        super().__init__(f"frame {frame} is NaN or inf")
        self.frame = frame


class NearestCentroid:
    """argmin_k ||x - c_k||^2, computed as stock ApplyKmeans does (||x||^2 - 2xC + ||C||^2)."""

    def __init__(self, centers: np.ndarray, device: str | None = None, chunk: int | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.C = torch.as_tensor(centers, dtype=torch.float32, device=self.device)
        self.Cnorm = (self.C ** 2).sum(1)
        # rows per matmul: measured on 2 CPU cores with 768-d frames and K=500, 2048 rows ran 3.8x
        # faster than 65536 (cache-sized blocks; 1.3-1.5x stock ApplyKmeans); a GPU wants big blocks
        self.chunk = chunk or (65536 if self.device.type == "cuda" else 2048)

    @torch.no_grad()
    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1] != self.C.shape[1]:
            raise ValueError(f"features have {x.shape[1]} dims but the k-means centroids have {self.C.shape[1]}")
        out = np.empty(len(x), dtype=np.int64)
        for s in range(0, len(x), self.chunk):
            block = np.array(x[s:s + self.chunk], dtype=np.float32)
            if not np.isfinite(block).all():
                raise NonFiniteFeatures(s + int(np.argwhere(~np.isfinite(block))[0][0]))
            xs = torch.from_numpy(block).to(self.device)
            d = (xs ** 2).sum(1, keepdim=True) - 2 * xs @ self.C.T + self.Cnorm
            out[s:s + len(xs)] = d.argmin(1).cpu().numpy()
        return out
