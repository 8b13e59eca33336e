"""ae_hubert: a fairseq plugin (``common.user_dir``) for HuBERT iterations and layer analysis.

:func:`register` makes fairseq checkpoints load under torch's weights-only unpickler and registers
every task, model and criterion (fairseq only auto-imports ``tasks/`` and ``models/`` of a user dir,
and skips even those when the package was imported first). It runs on import when fairseq is
already loaded, as it is when fairseq imports the user dir; the sidecar tools call it when they
need fairseq, so a tool that does not (k-means, labels from dumped features, label quality) starts
without importing fairseq at all. A script that imports ``ae_hubert`` before fairseq and then uses
fairseq's registries calls ``ae_hubert.register()`` itself.
"""
import sys

_registered = False


def register() -> None:
    """Allow-list fairseq's checkpoint classes and register the plugin's names (idempotent)."""
    global _registered
    if _registered:
        return
    from . import compat

    compat.install()
    from .criterions import hubert_layer_targets  # noqa: F401  (registration)
    from .models import hubert_ctc_reset, hubert_layer_targets as _model  # noqa: F401
    from .tasks import hubert_pretraining_checked  # noqa: F401

    _registered = True


if "fairseq" in sys.modules:  # imported by fairseq as a user dir, or after fairseq
    register()
