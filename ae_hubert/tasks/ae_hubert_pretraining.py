"""``ae_hubert_pretraining``: stock ``hubert_pretraining`` that refuses bad labels up front.

Stock silently maps a label missing from ``dict.{label}.txt`` to ``<unk>`` (fairseq's own README
typo produced an empty ``dict.km.txt`` and a loss near zero), and crashes on an empty manifest
with an unbound variable. This task checks the manifest and every label file before building
the stock dataset, and names the file and line at fault.
"""

import os
from dataclasses import dataclass, field
from typing import Optional, Set

from fairseq.tasks import register_task
from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig, HubertPretrainingTask

from ..common.errors import located
from ..common.manifest import read_manifest


@dataclass
class AeHubertPretrainingConfig(HubertPretrainingConfig):
    validate_labels: bool = field(
        default=True, metadata={"help": "check label files against the manifest and dictionaries"})


def validate_label_file(path: str, n_lines: int, symbols: Optional[Set[str]]) -> None:
    """One line per manifest line; with ``symbols``, every token must be in the dictionary."""
    if not os.path.isfile(path):
        raise located(path, "label file not found")
    count = 0
    with open(path, encoding="utf-8") as f:
        for count, line in enumerate(f, start=1):
            if symbols is not None:
                for tok in line.split():
                    if tok not in symbols:
                        raise located(path, f"label {tok!r} is not in the dictionary (it would silently "
                                            "become <unk>)", count)
    if count != n_lines:
        raise located(path, f"{count} lines but the manifest has {n_lines} utterances")


@register_task("ae_hubert_pretraining", dataclass=AeHubertPretrainingConfig)
class AeHubertPretrainingTask(HubertPretrainingTask):
    cfg: AeHubertPretrainingConfig

    def load_dataset(self, split: str, **kwargs) -> None:
        if getattr(self.cfg, "validate_labels", True):
            manifest = read_manifest(os.path.join(self.cfg.data, f"{split}.tsv"))
            dicts = [self.target_dictionary] if self.cfg.fine_tuning else self.dictionaries
            label_dir = self.get_label_dir()
            for label, d in zip(self.cfg.labels, dicts):
                symbols = None if self.cfg.fine_tuning else set(d.symbols[d.nspecial:])
                validate_label_file(os.path.join(label_dir, f"{split}.{label}"), len(manifest), symbols)
        super().load_dataset(split, **kwargs)
