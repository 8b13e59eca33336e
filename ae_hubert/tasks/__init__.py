"""fairseq tasks of the plugin (fairseq imports every module here; so does ``ae_hubert``)."""
from . import hubert_pretraining_checked  # noqa: F401
