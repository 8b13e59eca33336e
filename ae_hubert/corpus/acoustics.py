"""What happens to speech between the mouth and the file: rooms, noise and level.

Real recordings differ in room, background and level far more than in anything phonetic, and
that variability is what HuBERT's learned targets abstract away (MFCC clusters do not). Here:
- rooms: shoebox impulse responses from pyroomacoustics' image method (random size, RT60,
  source and microphone), aligned so that the direct path is sample 0: phone and word times
  stay exact;
- noise: Gaussian noise with a random spectral slope (1/f^beta above 100 Hz, beta in [0, 2]: white
  to brown), at a random signal-to-noise ratio;
- level: a random peak level.
All draws come from the caller's generator, so an utterance's audio is fixed by its seed.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve


def room_impulse_responses(n: int, seed: int, sample_rate: int = 16000, rt60=(0.15, 0.7),
                           max_seconds: float = 0.5) -> list[np.ndarray]:
    """``n`` impulse responses of random shoebox rooms, direct path first, unit energy."""
    import pyroomacoustics as pra

    pra.constants.set("num_threads", 1)  # its threads sum float32 buffers in any order: same bytes on any machine
    rng = np.random.default_rng([seed, 7])
    out = []
    while len(out) < n:
        dims = rng.uniform([3.0, 2.5, 2.4], [9.0, 7.0, 3.5])
        t60 = float(rng.uniform(*rt60))
        try:
            absorption, order = pra.inverse_sabine(t60, dims)
        except ValueError:  # this room cannot reach that RT60: draw another
            continue
        room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption), max_order=min(order, 30))
        margin = 0.4
        src = rng.uniform(margin, dims - margin)
        mic = rng.uniform(margin, dims - margin)
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        h = np.asarray(room.rir[0][0], dtype=np.float64)
        # direct path at sample 0: cut where geometry puts it (pyroomacoustics centres each arrival's
        # fractional-delay filter frac_delay_length // 2 samples late); the largest sample is not it:
        # in a quarter of these rooms coinciding reflections outweigh the direct sound
        direct = np.linalg.norm(src - mic) / pra.constants.get("c") * sample_rate
        h = h[int(round(direct)) + pra.constants.get("frac_delay_length") // 2:][: int(max_seconds * sample_rate)]
        out.append((h / np.sqrt((h ** 2).sum())).astype(np.float32))
    return out


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve, keep the original length (the tail past the end is cut), keep the RMS."""
    wet = fftconvolve(audio, rir)[: len(audio)]
    rms_in, rms_out = np.sqrt(np.mean(audio ** 2)), np.sqrt(np.mean(wet ** 2))
    return (wet * (rms_in / rms_out if rms_out > 0 else 1.0)).astype(np.float32)


def coloured_noise(n: int, beta: float, rng: np.random.Generator, sample_rate: int = 16000,
                   floor_hz: float = 100.0) -> np.ndarray:
    """Unit-RMS Gaussian noise with power spectrum ~ 1/f^beta above ``floor_hz`` (flat below it, no
    DC): shaped by frequency in Hz, so its power lies in the speech band whatever the length."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1.0 / sample_rate), floor_hz)
    spec *= f ** (-beta / 2)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return (x / (np.sqrt(np.mean(x ** 2)) or 1.0)).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Add noise at ``snr_db`` relative to the speech's active level (its loudest half of 20 ms blocks,
    so long pauses do not lower the reference)."""
    block = 320
    nb = max(1, len(audio) // block)
    energies = np.sort((audio[: nb * block].reshape(nb, -1) ** 2).mean(1))[nb // 2:] if len(audio) >= block else \
        np.array([np.mean(audio ** 2)])
    level = float(np.sqrt(energies.mean())) or 1e-4
    return audio + coloured_noise(len(audio), beta, rng) * level * 10 ** (-snr_db / 20)


def set_peak(audio: np.ndarray, peak_db: float) -> np.ndarray:
    peak = float(np.abs(audio).max()) or 1.0
    return audio * (10 ** (peak_db / 20) / peak)
