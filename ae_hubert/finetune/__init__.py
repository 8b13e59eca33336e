"""Fine-tuning side: decoding, subword units, reset sweeps (the model itself is models/hubert_ctc_reset.py)."""
