"""fairseq models of the plugin (fairseq imports every module here; so does ``ae_hubert``)."""
from . import hubert_ctc_reset, hubert_layer_targets  # noqa: F401
