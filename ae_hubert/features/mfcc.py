"""39-d MFCC at 100 Hz, the features of HuBERT's first iteration, without torchaudio.

Matches stock ``simple_kmeans/dump_mfcc_feature.py``: Kaldi MFCC with torchaudio's
``compliance.kaldi.mfcc`` defaults (no dither, 23 mel bins, 13 cepstra, ``use_energy=False``) on
the float waveform in [-1, 1], then deltas and delta-deltas (torchaudio ``compute_deltas``:
window 5, edges replicated).
"""
from __future__ import annotations

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


def mfcc(wav: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """(frames, 39) float32: 13 MFCC + deltas + delta-deltas."""
    comp = knf.OnlineMfcc(_options(sample_rate))
    comp.accept_waveform(sample_rate, wav.astype(np.float32, copy=False).tolist())
    comp.input_finished()
    n = comp.num_frames_ready
    if n == 0:
        return np.zeros((0, DIM), dtype=np.float32)
    feats = np.stack([comp.get_frame(i) for i in range(n)]).astype(np.float32)
    d = deltas(feats)
    dd = deltas(d)
    return np.concatenate([feats, d, dd], axis=1).astype(np.float32)


def at_layer_frames(feats: np.ndarray, n_frames: int) -> np.ndarray:
    """The MFCC frames that line up with a HuBERT layer's ``n_frames`` (50 Hz): frame i of the layer
    and MFCC frame 2i are both centred on sample 320 i + 200. The input side of the probes."""
    return feats[0: 2 * n_frames: 2]
