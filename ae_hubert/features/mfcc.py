"""39-d MFCC at 100 Hz, the features of HuBERT's first iteration, without torchaudio.

Matches stock ``simple_kmeans/dump_mfcc_feature.py``: Kaldi MFCC with torchaudio's
``compliance.kaldi.mfcc`` defaults (no dither, 23 mel bins, 13 cepstra, ``use_energy=False``) on
the float waveform in [-1, 1], then deltas and delta-deltas (torchaudio ``compute_deltas``:
window 5, edges replicated).
"""
from __future__ import annotations

from typing import Iterable

import kaldi_native_fbank as knf
import numpy as np

FRAME_RATE = 100
DIM = 39


def _options(sample_rate: int) -> knf.MfccOptions:
    o = knf.MfccOptions()
    o.frame_opts.samp_freq = sample_rate
    o.frame_opts.dither = 0.0
    o.frame_opts.snip_edges = True
    o.mel_opts.num_bins = 23
    o.num_ceps = 13
    o.use_energy = False
    o.energy_floor = 1.0
    return o


def deltas(x: np.ndarray, win_length: int = 5) -> np.ndarray:
    """Regression deltas over time (axis 0), edges replicated, as torchaudio's compute_deltas."""
    n = (win_length - 1) // 2
    denom = n * (n + 1) * (2 * n + 1) / 3
    padded = np.pad(x, ((n, n), (0, 0)), mode="edge")
    t = x.shape[0]
    out = np.zeros_like(x)
    for k in range(1, n + 1):
        out += k * (padded[n + k: n + k + t] - padded[n - k: n - k + t])
    return out / denom


def mfcc_stream(blocks: Iterable[np.ndarray], sample_rate: int = 16000) -> np.ndarray:
    """(frames, 39) float32 of consecutive waveform blocks, fed to Kaldi's online MFCC one block at
    a time: the same frames as one call on the whole waveform (tested), with memory for one block
    plus the 13-d frames (not the whole waveform as Python floats)."""
    comp = knf.OnlineMfcc(_options(sample_rate))
    parts: list[np.ndarray] = []
    done = 0

    def drain() -> None:
        nonlocal done
        n = comp.num_frames_ready
        if n > done:  # copies (pop frees Kaldi's buffers), one array per block
            parts.append(np.stack([np.array(comp.get_frame(i), dtype=np.float32) for i in range(done, n)]))
            comp.pop(n - done)
            done = n

    for block in blocks:
        comp.accept_waveform(sample_rate, np.ascontiguousarray(block, dtype=np.float32))
        drain()
    comp.input_finished()
    drain()
    if not parts:
        return np.zeros((0, DIM), dtype=np.float32)
    feats = np.concatenate(parts)
    del parts
    out = np.empty((len(feats), DIM), dtype=np.float32)
    out[:, :13] = feats
    out[:, 13:26] = deltas(feats)
    out[:, 26:] = deltas(out[:, 13:26])
    return out


def mfcc(wav: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """(frames, 39) float32: 13 MFCC + deltas + delta-deltas of a whole waveform."""
    return mfcc_stream([wav], sample_rate)


def at_layer_frames(feats: np.ndarray, n_frames: int) -> np.ndarray:
    """The MFCC frames that line up with a HuBERT layer's ``n_frames`` (50 Hz): frame i of the layer
    and MFCC frame 2i are both centred on sample 320 i + 200. The input side of the probes."""
    return feats[0: 2 * n_frames: 2]
