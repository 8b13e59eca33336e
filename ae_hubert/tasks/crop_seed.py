"""Random crops that a resumed run reproduces.

fairseq's ``HubertDataset`` crops long utterances at a start drawn from numpy's global generator,
which fairseq seeds once per process (``common.seed``) and never again; a run resumed from a
checkpoint therefore crops differently from the uninterrupted run from its first batch on. Here
each batch's crops come from a generator seeded by (seed, epoch, the batch's utterance ids): the
same batch is cropped the same way whenever and in whichever process it is collated.
"""
from __future__ import annotations

import threading

import numpy as np
from fairseq.data.audio.hubert_dataset import HubertDataset


class ReproducibleCropDataset(HubertDataset):
    crop_seed: int = 0
    epoch: int = 1

    def set_epoch(self, epoch):
        self.epoch = int(epoch)
        super().set_epoch(epoch)

    def collater(self, samples):
        ids = [int(s["id"]) for s in samples if s["source"] is not None]
        self._local.rng = np.random.default_rng([self.crop_seed & 0xFFFFFFFF, self.epoch, *ids])
        try:
            return super().collater(samples)
        finally:
            self._local.rng = None

    def crop_to_max_size(self, wav, target_size):
        diff = len(wav) - target_size
        if diff <= 0 or not self.random_crop:
            return super().crop_to_max_size(wav, target_size)
        start = int(self._local.rng.integers(0, diff + 1))
        return wav[start:start + target_size], start


def reproducible_crops(dataset: HubertDataset, seed: int) -> HubertDataset:
    """Make a built ``HubertDataset`` crop reproducibly (in place: it keeps everything it loaded)."""
    if type(dataset) is HubertDataset:
        dataset.__class__ = ReproducibleCropDataset
    dataset.crop_seed = int(seed)
    dataset._local = threading.local()  # collaters in a prefetch thread get their own generator
    return dataset
