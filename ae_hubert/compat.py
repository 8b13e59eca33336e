"""Make fairseq-fixed work on the modern stack, without touching fairseq's files.

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


def install() -> None:
    """Register :data:`SAFE_GLOBALS` with torch's weights-only unpickler (idempotent)."""
    global _installed
    if _installed:
        return
    import torch

    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:  # torch < 2.4 has no safe unpickler default; nothing to do
        objs = [o for o in (_resolve(m, a) for m, a in SAFE_GLOBALS) if o is not None]
        add(objs)
    _installed = True
