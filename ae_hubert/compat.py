"""Make fairseq-fixed work on the modern stack, without touching fairseq's files.

1. Checkpoint loading under torch's weights-only unpickler (below).
2. Reproducible HuBERT masking: this fairseq draws every mask from ``np.random.default_rng(None)``
   (fresh OS entropy) unless a seed is passed, and HuBERT passes none, so two runs with the same
   ``common.seed`` train different models. We pass a seed drawn from torch's generator, which
   fairseq's trainer re-seeds with ``common.seed + num_updates`` before every update: masks stay
   random, runs become repeatable, and a resumed run draws the masks an uninterrupted one would
   (the span count's rounding, drawn from numpy's global generator, is seeded the same way).
   (With ``dataset.num_workers: 0`` also set ``dataset.data_buffer_size: 0``: fairseq's prefetch
   thread would otherwise draw random crops from numpy's global generator concurrently.)

torch >= 2.6 loads checkpoints with ``weights_only=True``; fairseq checkpoints pickle a few
non-tensor classes (the label ``Dictionary`` in ``task_state``, ``argparse.Namespace`` in old
``args``, omegaconf containers in some released files, numpy scalars in ``extra_state``).
We allow-list exactly those classes for the safe unpickler instead of disabling it.
"""
from __future__ import annotations

import importlib

# (module, attribute) of every class a fairseq HuBERT checkpoint was seen to contain.
SAFE_GLOBALS = [
    ("argparse", "Namespace"),
    ("fairseq.data.dictionary", "Dictionary"),
    ("omegaconf.dictconfig", "DictConfig"),
    ("omegaconf.listconfig", "ListConfig"),
    ("omegaconf.base", "ContainerMetadata"),
    ("omegaconf.base", "Metadata"),
    ("omegaconf.nodes", "AnyNode"),
    ("omegaconf.nodes", "StringNode"),
    ("omegaconf.nodes", "IntegerNode"),
    ("omegaconf.nodes", "FloatNode"),
    ("omegaconf.nodes", "BooleanNode"),
    ("typing", "Any"),
    ("collections", "defaultdict"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.dtypes", "Float64DType"),
    ("numpy.dtypes", "Float32DType"),
    ("numpy.dtypes", "Int64DType"),
]

_installed = False


def _resolve(module: str, attr: str):
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def seeded_mask_indices(original):
    """Wrap fairseq's ``compute_mask_indices`` so unseeded calls draw their seed from torch, and the
    one draw it makes from numpy's global generator (the probabilistic rounding of the number of
    spans) comes from that seed too."""
    import torch
    from fairseq.data.data_utils import numpy_seed

    def compute_mask_indices(shape, *args, seed=None, epoch=None, indices=None, **kwargs):
        if seed is None:
            seed = int(torch.randint(1, 2 ** 31 - 1, (1,)).item())
            epoch = 0
            indices = torch.arange(shape[0])
        with numpy_seed(seed, epoch or 0):
            return original(shape, *args, seed=seed, epoch=epoch, indices=indices, **kwargs)

    compute_mask_indices.__wrapped__ = original
    return compute_mask_indices


def install() -> None:
    """Register :data:`SAFE_GLOBALS` and seed HuBERT's masking (idempotent)."""
    global _installed
    if _installed:
        return
    import torch

    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:  # torch < 2.4 has no safe unpickler default; nothing to do
        objs = [o for o in (_resolve(m, a) for m, a in SAFE_GLOBALS) if o is not None]
        add(objs)
    from fairseq.models.hubert import hubert

    if not hasattr(hubert.compute_mask_indices, "__wrapped__"):
        hubert.compute_mask_indices = seeded_mask_indices(hubert.compute_mask_indices)
    _installed = True
