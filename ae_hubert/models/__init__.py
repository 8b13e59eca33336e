"""fairseq models of the plugin (fairseq imports every module here; so does ``ae_hubert``)."""
from . import ae_hubert_ctc, ae_hubert_model  # noqa: F401
