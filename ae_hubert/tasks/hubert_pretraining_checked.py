"""``hubert_pretraining_checked``: stock ``hubert_pretraining`` that refuses bad labels up front.

Stock silently maps a label missing from ``dict.{label}.txt`` to ``<unk>`` (fairseq's own README
typo produced an empty ``dict.km.txt`` and a loss near zero), and crashes on an empty manifest
with an unbound variable. This task checks the manifest and every label file before building
the stock dataset, and names the file and line at fault.

numpy's global generator is re-seeded before every update, as fairseq re-seeds torch's, the batches
of a resumed run are built as the uninterrupted run built them, and random crops are drawn from a generator seeded by (``common.seed``, epoch, the batch's utterance ids)
instead of numpy's global one, which fairseq never re-seeds: a run resumed from a checkpoint then
crops exactly as the uninterrupted run did (crop_seed.py).

With ``probe_utterances > 0`` it also probes every layer at each validation (validation_probe.py)
and logs the per-layer metrics with the validation stats (fairseq's log and tensorboard).
"""

import os
from dataclasses import dataclass, field

import numpy as np
from fairseq import metrics
from omegaconf import II
from fairseq.tasks import register_task
from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig, HubertPretrainingTask

from ..common.labels import validate_label_file
from ..common.manifest import read_manifest


@dataclass
class HubertPretrainingCheckedConfig(HubertPretrainingConfig):
    validate_labels: bool = field(
        default=True, metadata={"help": "check label files against the manifest and dictionaries"})
    probe_utterances: int = field(
        default=0, metadata={"help": "per-layer probes at each validation on this many utterances "
                                     "(0: off); half fit the closed-form probes, half evaluate them"})
    probe_split: str = field(default="valid", metadata={"help": "manifest {data}/{split}.tsv of the probe set"})
    probe_phone_labels: str = field(
        default="phn", metadata={"help": "extension of 50 Hz frame phone labels beside the probe manifest"})
    seed: int = II("common.seed")


@register_task("hubert_pretraining_checked", dataclass=HubertPretrainingCheckedConfig)
class HubertPretrainingCheckedTask(HubertPretrainingTask):
    cfg: HubertPretrainingCheckedConfig

    def __init__(self, cfg: HubertPretrainingCheckedConfig) -> None:
        super().__init__(cfg)
        from .. import compat

        compat.exact_training(f"task {getattr(cfg, '_name', None) or 'hubert_pretraining_checked'}")
        self._probe = None
        self._probe_due = True  # once per validation: set by training, used by the first valid batch

    def _validation_probe(self):
        if self._probe is None:
            from .validation_probe import ValidationProbe

            self._probe = ValidationProbe(self.cfg.data, self.cfg.probe_split, self.cfg.probe_utterances,
                                          self.cfg.probe_phone_labels, self.cfg.normalize)
        return self._probe

    def build_model(self, cfg, from_checkpoint=False):
        """Fine-tuning models record the pretrained model's config (``w2v_args``) on the copy of the
        config that fairseq hands them; put it in the trainer's config too, so that the fine-tuned
        checkpoint rebuilds without the ``w2v_path`` file (stock relies on this and loses it)."""
        model = super().build_model(cfg, from_checkpoint)
        built = getattr(getattr(model, "cfg", None), "w2v_args", None)
        if built is not None and "w2v_args" in cfg and cfg.w2v_args is None:
            from omegaconf import open_dict

            with open_dict(cfg):
                cfg.w2v_args = built
        return model

    def get_batch_iterator(self, dataset, *args, epoch=1, **kwargs):
        """fairseq builds the batches once, from the epoch the iterator is created in (epoch 1 for a
        fresh run), and reuses them for every later epoch; a run resumed in epoch E would build them
        from E and train on other batches. Build them as a fresh run does: the epoch itself comes from
        the checkpoint's iterator state (and with ``rebuild_batches`` the batches follow it)."""
        return super().get_batch_iterator(dataset, *args, epoch=1, **kwargs)

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        self._probe_due = True
        # numpy's global generator (LayerDrop's draws, anything else a model takes from it) is seeded
        # per update like fairseq seeds torch's, so a resumed run continues the same random stream.
        np.random.seed((int(self.cfg.seed) + int(update_num)) % 2 ** 32)
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        if getattr(self.cfg, "probe_utterances", 0) > 0 and self._probe_due:
            self._probe_due = False
            logging_output.update(self._validation_probe()(model))
            logging_output["probe_n"] = 1
        return loss, sample_size, logging_output

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        n = sum(log.get("probe_n", 0) for log in logging_outputs)
        if n:
            keys = sorted({k for log in logging_outputs for k in log if k.startswith("probe_") and k != "probe_n"})
            for key in keys:
                metrics.log_scalar(key, sum(log.get(key, 0.0) for log in logging_outputs) / n, n, round=3)

    def load_dataset(self, split: str, **kwargs) -> None:
        if getattr(self.cfg, "validate_labels", True):
            manifest = read_manifest(os.path.join(self.cfg.data, f"{split}.tsv"))
            dicts = [self.target_dictionary] if self.cfg.fine_tuning else self.dictionaries
            label_dir = self.get_label_dir()
            for label, d in zip(self.cfg.labels, dicts):
                symbols = None if self.cfg.fine_tuning else set(d.symbols[d.nspecial:])
                validate_label_file(os.path.join(label_dir, f"{split}.{label}"), len(manifest), symbols,
                                    [e.nsamples for e in manifest.entries],
                                    None if self.cfg.fine_tuning else float(self.cfg.label_rate))
        super().load_dataset(split, **kwargs)
        from .crop_seed import reproducible_crops

        reproducible_crops(self.datasets[split], self.cfg.seed)


@register_task("ae_hubert_pretraining", dataclass=HubertPretrainingCheckedConfig)
class AeHubertPretrainingTask(HubertPretrainingCheckedTask):
    """The task's name before it said what the task is: configs and checkpoints that name it still load."""
