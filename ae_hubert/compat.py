"""What the plugin changes in fairseq, all of it here, none of it in fairseq's files.

On import of ``ae_hubert`` (:func:`install`): checkpoint loading under torch's weights-only
unpickler (below); nothing else, so a stock ``hubert`` / ``hubert_pretraining`` run with the user
dir loaded trains exactly as without it.

When the plugin's own task or models are built (:func:`exact_training`), for the rest of that
process, logged once:

1. Reproducible HuBERT masking: this fairseq draws every mask from ``np.random.default_rng(None)``
   (fresh OS entropy) unless a seed is passed, and HuBERT passes none, so two runs with the same
   ``common.seed`` train different models. We pass a seed drawn from torch's generator, which
   fairseq's trainer re-seeds with ``common.seed + num_updates`` before every update: masks stay
   random, runs become repeatable, and a resumed run draws the masks an uninterrupted one would
   (the span count's rounding, drawn from numpy's global generator, is seeded the same way).
   (With ``dataset.num_workers: 0`` also set ``dataset.data_buffer_size: 0``: fairseq's prefetch
   thread would otherwise draw random crops from numpy's global generator concurrently.)
2. Interval checkpoints at epoch ends: fairseq writes ``checkpoint_E_U.pt`` every
   ``save_interval_updates`` only when the update is *not* the last of an epoch, so whenever the
   epoch length divides the interval (100 updates per epoch and checkpoints every 500, as the study's
   1.28 M-sample batches give) no interval checkpoint is kept at all and probes over updates have
   nothing to read. At such an update fairseq is told the epoch has not ended, so it writes (and
   prunes) the interval checkpoint as it does mid-epoch; nothing else changes.

torch >= 2.6 loads checkpoints with ``weights_only=True``; fairseq checkpoints pickle a few
non-tensor classes (the label ``Dictionary`` in ``task_state``, ``argparse.Namespace`` in old
``args``, omegaconf containers in some released files, numpy scalars in ``extra_state``).
We allow-list exactly those classes for the safe unpickler instead of disabling it.
"""
from __future__ import annotations

import importlib
import logging

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
_exact = False
log = logging.getLogger(__name__)


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


class _MidEpoch:
    """An epoch iterator that says the epoch has not ended (everything else its own)."""

    def __init__(self, epoch_itr):
        self._itr = epoch_itr

    def end_of_epoch(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._itr, name)


def interval_checkpoints_at_epoch_ends(original):
    """Wrap fairseq's ``checkpoint_utils.save_checkpoint`` so an update that is a multiple of
    ``save_interval_updates`` and also ends an epoch gets its ``checkpoint_E_U.pt`` too.

    Without epoch checkpoints (``no_epoch_checkpoints``, as every shipped config) fairseq is told the
    epoch has not ended: it then writes the interval file first and prunes by
    ``keep_interval_updates`` as mid-epoch (the iterator's saved state is the real one, so a resume
    starts the next epoch). With epoch checkpoints, ``checkpoint_last.pt`` is copied to the interval
    name after fairseq's own save."""
    import os
    import shutil

    def save_checkpoint(cfg, trainer, epoch_itr, val_loss):
        updates = trainer.get_num_updates()
        at_interval = (cfg.save_interval_updates > 0 and updates > 0 and updates % cfg.save_interval_updates == 0
                       and epoch_itr.end_of_epoch())
        if not at_interval:
            return original(cfg, trainer, epoch_itr, val_loss)
        if cfg.no_epoch_checkpoints:
            return original(cfg, trainer, _MidEpoch(epoch_itr), val_loss)
        result = original(cfg, trainer, epoch_itr, val_loss)
        suffix = trainer.checkpoint_suffix
        last = os.path.join(cfg.save_dir, f"checkpoint_last{suffix}.pt")
        interval = os.path.join(cfg.save_dir, f"checkpoint_{epoch_itr.epoch}_{updates}{suffix}.pt")
        if (not cfg.no_save and trainer.should_save_checkpoint_on_current_rank and os.path.isfile(last)
                and not os.path.exists(interval)):
            from .common.atomic import atomic_path

            with atomic_path(interval) as tmp:  # complete or absent
                shutil.copyfile(last, tmp)
        return result

    save_checkpoint.__wrapped__ = original
    return save_checkpoint


def install() -> None:
    """Register :data:`SAFE_GLOBALS` for torch's weights-only unpickler (idempotent). Touches
    nothing else of fairseq."""
    global _installed
    if _installed:
        return
    import torch

    root = logging.getLogger()
    level, configured = root.level, bool(root.handlers)

    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:  # torch < 2.4 has no safe unpickler default; nothing to do
        objs = [o for o in (_resolve(m, a) for m, a in SAFE_GLOBALS) if o is not None]
        add(objs)
    import fairseq  # noqa: F401  (its import configures logging; undone below)

    if not configured and root.level == logging.DEBUG:
        # importing fairseq runs logging.basicConfig(level=DEBUG) (models/wav2vec/wav2vec2_classification.py):
        # in a process that had not configured logging, every library's debug lines would reach stderr
        root.setLevel(level)
    _installed = True


def exact_training(by: str) -> None:
    """Seed HuBERT's masking and keep interval checkpoints at epoch ends (module docstring), for the
    rest of this process; called when the plugin's task or models are built (``by`` names which),
    and logged once. Idempotent."""
    global _exact
    if _exact:
        return
    from fairseq import checkpoint_utils
    from fairseq.models.hubert import hubert

    if not hasattr(hubert.compute_mask_indices, "__wrapped__"):
        hubert.compute_mask_indices = seeded_mask_indices(hubert.compute_mask_indices)
    if not hasattr(checkpoint_utils.save_checkpoint, "__wrapped__"):
        checkpoint_utils.save_checkpoint = interval_checkpoints_at_epoch_ends(checkpoint_utils.save_checkpoint)
    _exact = True
    log.info("ae_hubert: exact training (%s): HuBERT masks seeded from torch's generator "
             "(fairseq.models.hubert.hubert.compute_mask_indices wrapped) and interval checkpoints kept at epoch "
             "ends (fairseq.checkpoint_utils.save_checkpoint wrapped), see ae_hubert/compat.py", by)
