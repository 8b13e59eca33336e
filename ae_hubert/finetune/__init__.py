"""Fine-tuning side: decoding, subword units, reset sweeps (the model itself is models/ae_hubert_ctc.py)."""
