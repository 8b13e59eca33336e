"""One sentence spoken by one synthetic voice: 16 kHz audio, phone segments and word spans.

Both corpora (the toy demo corpus and the study corpus) speak through here; they differ in
what they say, who says it and what happens to the audio afterwards. The synthesisers report
what they actually said (flite: phone end times; espeak-ng: phone and word events), so labels
follow the audio even when a word is said unusually.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from . import flite, phones

SAMPLE_RATE = 16000


@dataclass
class Spoken:
    audio: np.ndarray  # float32 at SAMPLE_RATE, in [-1, 1]
    segments: list[tuple[float, float, str]]  # (start s, end s, CMU phone), sorted
    word_spans: list[tuple[str, float, float]]  # (word, start s, end s)


def spans_from_counts(words, prons, segs):
    """Give each word its phones by count (flite reports no word events)."""
    speech = [s for s in segs if s[2] != phones.SILENCE]
    need = sum(len(prons[w]) for w in words)
    if need != len(speech):
        raise RuntimeError(f"flite phones ({len(speech)}) do not match the lexicon ({need}) for {' '.join(words)!r}")
    spans, k = [], 0
    for w in words:
        n = len(prons[w])
        spans.append((w, speech[k][0], speech[k + n - 1][1]))
        k += n
    return spans


def espeak_word_spans(text, events, segs, dur):
    """Word spans from espeak-ng's word events.

    espeak-ng sometimes speaks an unstressed word with its neighbour as one event ("in the"):
    such a group's speech is shared among its words in proportion to their letters.
    """
    words = text.split()
    offsets, pos = [], 0
    for w in words:
        pos = text.index(w, pos)
        offsets.append(pos + 1)  # espeak counts characters from 1
        pos += len(w)
    start_at = {tp: t for t, tp, length in events if length > 0}
    if offsets[0] not in start_at:
        raise RuntimeError(f"espeak-ng reported no event for the first word of {text!r}")
    groups = []  # [start_s, [word indices]]
    for k, off in enumerate(offsets):
        if off in start_at:
            groups.append([start_at[off], [k]])
        else:
            groups[-1][1].append(k)
    spans = [None] * len(words)
    for g, (lo, idx) in enumerate(groups):
        hi = groups[g + 1][0] if g + 1 < len(groups) else dur
        inside = [s for s in segs if lo <= s[0] < hi and s[2] != phones.SILENCE]
        a, b = (inside[0][0], inside[-1][1]) if inside else (lo, hi)
        total = sum(len(words[k]) for k in idx)
        t = a
        for k in idx:
            step = (b - a) * len(words[k]) / total
            spans[k] = (words[k], t, t + step)
            t += step
    return spans


def speak_flite(text: str, name: str, prons: dict[str, list[str]], stretch: float = 1.0,
                f0_mean: float | None = None) -> Spoken:
    """``prons``: the voice's phones per word (``flite.word_prons``), to place word boundaries."""
    samples, sr, ph = flite.synth(text, name, stretch=stretch, f0_mean=f0_mean)
    if sr != SAMPLE_RATE:
        raise RuntimeError(f"flite voice {name!r} is {sr} Hz; use a 16 kHz voice (kal16, awb, ...)")
    dur = len(samples) / sr
    segs, start = [], 0.0
    for end, p in ph:
        end = min(end, dur)
        if end > start:
            segs.append((start, end, phones.flite_phone(p)))
        start = max(start, end)
    spans = spans_from_counts(text.split(), prons, segs)
    return Spoken(samples.astype(np.float32) / 32768.0, segs, spans)


_ESPEAK = None


def speak_espeak(text: str, voice: str, rate: int, pitch: int) -> Spoken:
    """espeak-ng ``voice`` (``en-us+m3``) at ``rate`` words/min and ``pitch`` (0-99), resampled to 16 kHz.
    One library instance per process: it keeps state, so callers run fixed chunks in fresh processes."""
    global _ESPEAK
    if _ESPEAK is None:
        from .espeak import Espeak
        _ESPEAK = Espeak()
    u = _ESPEAK.synth(text, voice, rate=rate, pitch=pitch)
    g = math.gcd(SAMPLE_RATE, u.sample_rate)
    audio = resample_poly(u.samples.astype(np.float32) / 32768.0, SAMPLE_RATE // g, u.sample_rate // g)
    audio = audio[: int(len(u.samples) * SAMPLE_RATE / u.sample_rate)]
    dur = len(audio) / SAMPLE_RATE
    events = [(t, q) for t, q in ((t, phones.espeak_phone(p)) for t, p in u.phones) if q is not None]
    segs = []
    for i, (start, p) in enumerate(events):
        end = min(events[i + 1][0] if i + 1 < len(events) else dur, dur)
        if end > start:
            segs.append((start, end, p))
    return Spoken(audio, segs, espeak_word_spans(text, u.words, segs, dur))


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
