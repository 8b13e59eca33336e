"""Helpers shared by every stage: errors, atomic writes, manifests, audio, checkpoints."""
