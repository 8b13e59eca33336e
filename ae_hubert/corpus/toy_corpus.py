"""``ae-hubert toy-corpus``: a synthetic, fully labelled speech corpus in fairseq's formats.

No speech corpus can be downloaded here, so utterances from a closed-vocabulary sentence
generator are spoken by flite and espeak-ng voices. Every utterance gets 16 kHz mono audio,
its words and letters, 50 Hz frame phone labels (CMU set + ``sil``), word time spans and the
voice that spoke it. Output is deterministic for a seed.
"""
from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ..common.atomic import atomic_path, ensure_writable_dir, write_lines_atomic, write_text_atomic
from ..common.errors import AeHubertError
from ..common.manifest import write_manifest
from ..common.letters import words_to_letters
from . import flite, phones, vocabulary

logger = logging.getLogger(__name__)

DEFAULT_VOICES = ["flite:kal16", "flite:awb", "espeak:en-us+m3", "espeak:en-us+f2",
                  "espeak:en-gb-scotland", "espeak:en-029+f4"]
SPLITS = (("train", 0.8), ("valid", 0.1), ("test", 0.1))
SAMPLE_RATE = 16000
CHUNK = 16  # utterances synthesised per fresh worker process


@dataclass
class Utterance:
    uid: str
    text: str
    voice: str
    nsamples: int
    frame_phones: list[str]
    word_spans: list[tuple[str, float, float]]


def check_voice(voice: str) -> None:
    """Refuse a voice before any synthesis: a malformed name, an unknown or non-16 kHz voice."""
    kind, _, name = voice.partition(":")
    try:
        if kind == "flite" and name:
            _, sr, _ = flite.synth("yes", name)
            if sr != SAMPLE_RATE:
                raise RuntimeError(f"flite voice {name!r} is {sr} Hz; use a 16 kHz voice (kal16, awb, ...)")
        elif kind == "espeak" and name:  # the CLI, in its own process: the library's state must stay fresh
            import subprocess

            r = subprocess.run(["espeak-ng", "-q", "-v", name, "yes"], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"unknown espeak-ng voice ({r.stderr.strip() or r.returncode})")
        else:
            raise RuntimeError("expected 'flite:NAME' or 'espeak:NAME'")
    except (RuntimeError, ValueError, OSError) as e:
        raise AeHubertError(f"--voices: {voice!r}: {e}") from None


def _spans_from_counts(words, prons, segs):
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


def _espeak_word_spans(text, events, segs, dur):
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


_ESPEAK = None
_PRONS: dict[str, dict[str, list[str]]] = {}


def _synth_one(job) -> Utterance:
    idx, uid, text, voice, seed, wav_path = job
    rng = np.random.default_rng([seed, idx])
    kind, _, name = voice.partition(":")
    words = text.split()
    if kind == "flite":
        stretch = float(rng.uniform(0.9, 1.15))
        samples, sr, ph = flite.synth(text, name, stretch=stretch)
        if sr != SAMPLE_RATE:
            raise RuntimeError(f"flite voice {name!r} is {sr} Hz; use a 16 kHz voice (kal16, awb, ...)")
        dur = len(samples) / sr
        segs, start = [], 0.0
        for end, p in ph:
            end = min(end, dur)
            if end > start:
                segs.append((start, end, phones.flite_phone(p)))
            start = max(start, end)
        if name not in _PRONS:
            _PRONS[name] = flite.word_prons(vocabulary.VOCABULARY, name)
        spans = _spans_from_counts(words, _PRONS[name], segs)
        audio = samples.astype(np.float32) / 32768.0
    elif kind == "espeak":
        global _ESPEAK
        if _ESPEAK is None:
            from .espeak import Espeak
            _ESPEAK = Espeak()
        u = _ESPEAK.synth(text, name, rate=int(rng.integers(140, 186)), pitch=int(rng.integers(35, 66)))
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
        spans = _espeak_word_spans(text, u.words, segs, dur)
    else:
        raise ValueError(f"voice {voice!r}: expected 'flite:NAME' or 'espeak:NAME'")
    # a little noise, so that silence is not digital zero (deterministic per utterance)
    rms = float(np.sqrt(np.mean(audio ** 2))) or 1e-3
    audio = audio + rng.normal(0.0, rms * 10 ** (-rng.uniform(25, 40) / 20), size=audio.shape)
    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
    with atomic_path(wav_path) as tmp:
        sf.write(tmp, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return Utterance(uid, text, voice, len(pcm), phones.frame_labels(segs, len(pcm)), spans)


def _synth_chunk(jobs) -> list[Utterance]:
    return [_synth_one(job) for job in jobs]


def _split_of(n: int, seed: int) -> list[str]:
    order = np.random.default_rng(seed).permutation(n)
    names = [""] * n
    n_train = int(round(n * SPLITS[0][1]))
    n_valid = int(round(n * SPLITS[1][1]))
    for rank, i in enumerate(order):
        names[i] = "train" if rank < n_train else "valid" if rank < n_train + n_valid else "test"
    return names


def build(out_dir: str, utterances: int = 400, seed: int = 0, voices: list[str] | None = None,
          workers: int | None = None) -> dict:
    """Synthesise the corpus into ``out_dir``; return its summary (also written to corpus.json)."""
    voices = list(voices or DEFAULT_VOICES)
    if utterances < 10:
        raise AeHubertError("--utterances must be at least 10 (train/valid/test splits)")
    for v in voices:
        check_voice(v)
    out_dir = os.path.abspath(out_dir)
    ensure_writable_dir(os.path.join(out_dir, "wav"))
    texts = vocabulary.sentences(utterances, seed)
    vrng = np.random.default_rng([seed, 1])
    voice_of = [voices[i % len(voices)] for i in vrng.permutation(utterances)]
    jobs = [(i, f"utt{i:05d}", texts[i], voice_of[i], seed, os.path.join(out_dir, "wav", f"utt{i:05d}.wav"))
            for i in range(utterances)]
    # libespeak-ng keeps state between utterances (its output depends on what it spoke before),
    # so fixed chunks of utterances each run in a fresh process: the same bytes for any --workers.
    chunks = [jobs[i:i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    workers = workers or min(4, os.cpu_count() or 1)
    ctx = mp.get_context("fork")
    with ctx.Pool(workers, maxtasksperchild=1) as pool:
        utts = [u for chunk in pool.map(_synth_chunk, chunks, chunksize=1) for u in chunk]
    split_of = _split_of(utterances, seed)
    summary = {"seed": seed, "voices": voices, "utterances": utterances, "sample_rate": SAMPLE_RATE,
               "splits": {}, "phones": phones.PHONE_SET, "vocabulary": vocabulary.VOCABULARY}
    letter_counts: Counter = Counter()
    for split, _ in SPLITS:
        us = [u for u, s in zip(utts, split_of) if s == split]
        write_manifest(os.path.join(out_dir, f"{split}.tsv"), out_dir,
                       [(f"wav/{u.uid}.wav", u.nsamples) for u in us])
        write_lines_atomic(os.path.join(out_dir, f"{split}.wrd"), [u.text.upper() for u in us])
        write_lines_atomic(os.path.join(out_dir, f"{split}.ltr"), [words_to_letters(u.text) for u in us])
        write_lines_atomic(os.path.join(out_dir, f"{split}.phn"), [" ".join(u.frame_phones) for u in us])
        write_lines_atomic(os.path.join(out_dir, f"{split}.spk"), [u.voice for u in us])
        write_lines_atomic(os.path.join(out_dir, f"{split}.wrdspan"),
                           [" ".join(f"{w.upper()}:{a:.3f}:{b:.3f}" for w, a, b in u.word_spans) for u in us])
        if split == "train":
            for u in us:
                letter_counts.update(words_to_letters(u.text).split())
        summary["splits"][split] = {"utterances": len(us),
                                    "hours": sum(u.nsamples for u in us) / SAMPLE_RATE / 3600}
    for u in utts:  # every letter must be in the dictionary even if train lacks it
        for c in words_to_letters(u.text).split():
            letter_counts.setdefault(c, 0)
    write_lines_atomic(os.path.join(out_dir, "dict.ltr.txt"),
                       [f"{c} {n}" for c, n in sorted(letter_counts.items(), key=lambda x: (-x[1], x[0]))])
    phone_counts = Counter(p for u in utts for p in u.frame_phones)
    write_lines_atomic(os.path.join(out_dir, "dict.phn.txt"),
                       [f"{p} {phone_counts.get(p, 0)}" for p in phones.PHONE_SET])
    write_text_atomic(os.path.join(out_dir, "corpus.json"), json.dumps(summary, indent=1) + "\n")
    return summary
