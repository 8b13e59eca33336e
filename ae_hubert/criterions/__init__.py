"""fairseq criteria of the plugin (imported by ``ae_hubert``: fairseq does not auto-import criteria)."""
from . import hubert_layer_targets  # noqa: F401
