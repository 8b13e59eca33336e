"""Reading audio the way fairseq's HubertDataset does (soundfile, 16 kHz, stereo averaged)."""
from __future__ import annotations

import logging
import os
from typing import Iterator

import numpy as np
import soundfile as sf

from .errors import AeHubertError

logger = logging.getLogger(__name__)
SAMPLE_RATE = 16000
# HuBERT's 50 Hz frames: frame i of a layer (and of a corpus's .phn) is centred on sample 320 i + 200
FRAME_HOP_S, FRAME_CENTRE_S = 320 / SAMPLE_RATE, 200 / SAMPLE_RATE
_warned_stereo = False


MIN_SAMPLES = 400  # one MFCC window / HuBERT's CNN receptive field: a shorter clip has no frame
BLOCK = 16000 * 10  # samples read at a time: memory per utterance stays bounded however long it is


def _open(path: str, prefix: str, sample_rate: int) -> sf.SoundFile:
    """The file opened for reading (its header parsed), or one error naming it."""
    if not os.path.isfile(path):
        raise AeHubertError(f"{prefix}: " + ("a directory, where an audio file belongs" if os.path.isdir(path)
                                             else "not a regular file (a pipe or device?), where an audio file "
                                             "belongs" if os.path.exists(path) else "audio file not found"))
    if os.path.getsize(path) == 0:
        raise AeHubertError(f"{prefix}: audio file is empty")
    try:
        f = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AeHubertError(f"{prefix}: not readable as audio ({e})") from None
    if f.samplerate != sample_rate:
        f.close()
        raise AeHubertError(f"{prefix}: sample rate {f.samplerate} Hz, expected {sample_rate} Hz (resample first)")
    return f


def audio_blocks(path: str, expected_nsamples: int | None = None, where: str | None = None,
                 sample_rate: int = SAMPLE_RATE, block: int = BLOCK) -> Iterator[np.ndarray]:
    """Yield float32 mono samples in [-1, 1], ``block`` at a time (the last block shorter).

    ``where`` (e.g. ``train.tsv:12``) is put first in error messages so the user can find the
    manifest line; the audio path follows. Multi-channel audio is averaged to mono, as stock
    ``HubertDataset.postprocess`` does (a warning says so once). The sample count is checked
    against ``expected_nsamples`` when the file ends.
    """
    global _warned_stereo
    prefix = f"{where}: {path}" if where else path
    total = 0
    with _open(path, prefix, sample_rate) as f:
        if f.channels > 1 and not _warned_stereo:
            logger.warning("%s: %d channels, averaging to mono (as fairseq does)", prefix, f.channels)
            _warned_stereo = True
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError) as e:
                raise AeHubertError(f"{prefix}: not readable as audio ({e})") from None
            if len(data) == 0:
                break
            wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            if not np.isfinite(wav).all():
                raise AeHubertError(f"{prefix}: audio contains NaN or inf")
            total += len(wav)
            yield np.ascontiguousarray(wav, dtype=np.float32)
    if total == 0:
        raise AeHubertError(f"{prefix}: audio has no samples")
    if expected_nsamples is not None and total != expected_nsamples:
        raise AeHubertError(f"{prefix}: has {total} samples but the manifest says {expected_nsamples} "
                            "(truncated file or stale manifest)")


def read_audio(path: str, expected_nsamples: int | None = None, where: str | None = None,
               sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole file as one float32 mono array (``audio_blocks``'s checks)."""
    blocks = list(audio_blocks(path, expected_nsamples, where, sample_rate))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def check_headers(entries, sample_rate: int = SAMPLE_RATE) -> None:
    """Check every entry's audio header (exists, readable, rate, sample count as in the manifest)
    before any work starts, so a bad file late in a split fails in seconds, not after hours of
    features. Reads headers only; a file whose samples are corrupt is still caught when read."""
    for e in entries:
        prefix = f"{e.where}: {e.path}"
        with _open(e.path, prefix, sample_rate) as f:
            frames = f.frames
        if frames != e.nsamples:
            raise AeHubertError(f"{prefix}: has {frames} samples but the manifest says {e.nsamples} "
                                "(truncated file or stale manifest)")


def read_entry(entry, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read one :class:`~ae_hubert.common.manifest.ManifestEntry`, checking its sample count."""
    return read_audio(entry.path, entry.nsamples, where=entry.where, sample_rate=sample_rate)


def entry_blocks(entry, block: int = BLOCK, sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """``audio_blocks`` of one manifest entry."""
    return audio_blocks(entry.path, entry.nsamples, where=entry.where, sample_rate=sample_rate, block=block)
