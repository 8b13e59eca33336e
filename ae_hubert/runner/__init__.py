"""Running stages, below both ``pipeline/`` and ``finetune/``: completion markers, the owned
``fairseq-hydra-train`` subprocess and the training-config resolution (the work-dir lock is ``common/lock``)."""
