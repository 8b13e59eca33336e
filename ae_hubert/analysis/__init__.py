"""Stage 5: what each layer knows (probes and their plots)."""
