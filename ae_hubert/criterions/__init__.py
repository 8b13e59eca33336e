"""fairseq criteria of the plugin (imported by ``ae_hubert``: fairseq does not auto-import criteria)."""
from . import ae_hubert_criterion  # noqa: F401
