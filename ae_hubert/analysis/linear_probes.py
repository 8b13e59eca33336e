"""Closed-form linear probes on frozen layer features, cheap enough to run at every validation.

- ``ridge_r2``: how well a layer linearly reconstructs target frames (e.g. the input MFCC/log-mel):
  the "autoencoder" side. R^2 = 1 - SSE/SST on held-out frames, averaged over target dimensions
  with variance weighting (sklearn's ``variance_weighted``).
- ``ridge_classifier_accuracy``: one-hot ridge regression, argmax on held-out frames; a linear
  phone (or voice) probe without iterative optimisation.
Features are standardised with the train statistics; ``lam`` is relative to the mean eigenvalue of
the train Gram matrix, so one value suits layers of any scale.
"""
from __future__ import annotations

import numpy as np


def _standardise(train: np.ndarray, *others: np.ndarray):
    mu = train.mean(0, keepdims=True)
    sd = train.std(0, keepdims=True) + 1e-6
    return [(a - mu) / sd for a in (train, *others)]


def ridge_fit(x: np.ndarray, y: np.ndarray, lam: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Weights W and bias b minimising ||xW + b - y||^2 + lam * mean_eig * ||W||^2."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    gram = xc.T @ xc
    reg = lam * max(np.trace(gram) / gram.shape[0], 1e-12)
    w = np.linalg.solve(gram + reg * np.eye(gram.shape[0]), xc.T @ yc)
    return w, ym - xm @ w


def ridge_r2(x_train, y_train, x_eval, y_eval, lam: float = 1e-3) -> float:
    x_train, x_eval = _standardise(x_train, x_eval)
    w, b = ridge_fit(x_train, y_train, lam)
    pred = x_eval @ w + b
    sse = ((y_eval - pred) ** 2).sum()
    sst = ((y_eval - y_eval.mean(0)) ** 2).sum()
    return float(1 - sse / sst) if sst > 0 else 0.0


def ridge_classifier_accuracy(x_train, y_train, x_eval, y_eval, lam: float = 1e-3) -> float:
    classes = np.unique(y_train)
    index = {c: i for i, c in enumerate(classes)}
    onehot = np.zeros((len(y_train), len(classes)))
    onehot[np.arange(len(y_train)), [index[c] for c in y_train]] = 1
    x_train, x_eval = _standardise(x_train, x_eval)
    w, b = ridge_fit(x_train, onehot, lam)
    pred = classes[np.argmax(x_eval @ w + b, axis=1)]
    return float((pred == np.asarray(y_eval)).mean())


def _inv_sqrt(c: np.ndarray, eps: float) -> np.ndarray:
    vals, vecs = np.linalg.eigh(c + eps * max(np.trace(c) / len(c), 1e-12) * np.eye(len(c)))
    return (vecs / np.sqrt(np.maximum(vals, 1e-12))) @ vecs.T


def mean_cca(x_train, y_train, x_eval, y_eval, eps: float = 1e-3) -> float:
    """Mean canonical correlation between a layer and target frames: directions fit on train (regularised
    CCA, whitening by ``C^-1/2``), correlations measured on held-out frames, averaged over the
    ``min(dim x, dim y)`` canonical pairs. 1 = the layer holds a linear copy of the target's space."""
    x_train, x_eval = _standardise(x_train.astype(np.float64), x_eval.astype(np.float64))
    y_train, y_eval = _standardise(y_train.astype(np.float64), y_eval.astype(np.float64))
    n = len(x_train)
    wx, wy = _inv_sqrt(x_train.T @ x_train / n, eps), _inv_sqrt(y_train.T @ y_train / n, eps)
    u, _, vt = np.linalg.svd(wx @ (x_train.T @ y_train / n) @ wy)
    d = min(x_train.shape[1], y_train.shape[1])
    a, b = x_eval @ (wx @ u[:, :d]), y_eval @ (wy @ vt.T[:, :d])
    a, b = a - a.mean(0), b - b.mean(0)
    corr = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0) + 1e-12)
    return float(np.abs(corr).mean())
