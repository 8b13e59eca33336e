"""Running stages, below both ``pipeline/`` and ``finetune/``: completion markers, the owned
``fairseq-hydra-train`` subprocess, the work-dir lock and the training-config resolution."""
