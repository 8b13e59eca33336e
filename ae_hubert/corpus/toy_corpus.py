"""``ae-hubert toy-corpus``: a synthetic, fully labelled speech corpus in fairseq's formats.

No speech corpus can be downloaded here, so utterances from a closed-vocabulary sentence
generator are spoken by flite and espeak-ng voices. Every utterance gets 16 kHz mono audio,
its words and letters, 50 Hz frame phone labels (CMU set + ``sil``), word time spans and the
voice that spoke it. Output is deterministic for a seed. (The harder, voice-disjoint corpus of
the study is ``study_corpus.py``.)
"""
from __future__ import annotations

import logging
import os

import numpy as np

from ..common.errors import AeHubertError
from . import flite, phones, speech, vocabulary
from .corpus_files import Utterance, assign_splits, check_corpus_dir, start_corpus, synthesise, write_corpus, write_wav
from .speech import SAMPLE_RATE

logger = logging.getLogger(__name__)

DEFAULT_VOICES = ["flite:kal16", "flite:awb", "espeak:en-us+m3", "espeak:en-us+f2",
                  "espeak:en-gb-scotland", "espeak:en-029+f4"]


def check_voice(voice: str) -> None:
    """Refuse a voice before any synthesis: a malformed name, an unknown or non-16 kHz voice."""
    kind, _, name = voice.partition(":")
    try:
        if kind == "flite" and name:
            if name not in flite.voices() and not os.path.isfile(name) and "://" not in name:  # flite would say it in its default voice
                raise RuntimeError(f"unknown flite voice (this flite has {', '.join(flite.voices())}, or give a "
                                   ".flitevox file or URL)")
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


_PRONS: dict[str, dict[str, list[str]]] = {}


def _synth_one(job) -> Utterance:
    idx, uid, text, voice, seed, wav_path = job
    rng = np.random.default_rng([seed, idx])
    kind, _, name = voice.partition(":")
    if kind == "flite":
        stretch = float(rng.uniform(0.9, 1.15))
        if name not in _PRONS:
            _PRONS[name] = flite.word_prons(vocabulary.VOCABULARY, name)
        spoken = speech.speak_flite(text, name, _PRONS[name], stretch=stretch)
    elif kind == "espeak":
        spoken = speech.speak_espeak(text, name, rate=int(rng.integers(140, 186)), pitch=int(rng.integers(35, 66)))
    else:
        raise ValueError(f"voice {voice!r}: expected 'flite:NAME' or 'espeak:NAME'")
    audio = spoken.audio
    # a little noise, so that silence is not digital zero (deterministic per utterance)
    rms = float(np.sqrt(np.mean(audio ** 2))) or 1e-3
    audio = audio + rng.normal(0.0, rms * 10 ** (-rng.uniform(25, 40) / 20), size=audio.shape)
    pcm = speech.to_pcm16(audio)
    write_wav(wav_path, pcm)
    return Utterance(uid, text, voice, len(pcm), phones.frame_labels(spoken.segments, len(pcm)), spoken.word_spans)


def _synth_chunk(jobs) -> list[Utterance]:
    return [_synth_one(job) for job in jobs]


def build(out_dir: str, utterances: int = 400, seed: int = 0, voices: list[str] | None = None,
          workers: int | None = None) -> dict:
    """Synthesise the corpus into ``out_dir``; return its summary (also written to corpus.json)."""
    voices = list(voices or DEFAULT_VOICES)
    if utterances < 10:
        raise AeHubertError("--utterances must be at least 10 (train/valid/test splits)")
    for v in voices:
        check_voice(v)
    settings = {"corpus": "toy", "seed": seed, "utterances": utterances, "voices": voices}
    check_corpus_dir(out_dir, settings)
    out_dir = start_corpus(out_dir, settings)
    texts = vocabulary.sentences(utterances, seed)
    vrng = np.random.default_rng([seed, 1])
    voice_of = [voices[i % len(voices)] for i in vrng.permutation(utterances)]
    jobs = [(i, f"utt{i:05d}", texts[i], voice_of[i], seed, os.path.join(out_dir, "wav", f"utt{i:05d}.wav"))
            for i in range(utterances)]
    utts = synthesise(_synth_chunk, jobs, workers)
    summary = {"seed": seed, "voices": voices, "utterances": utterances, "vocabulary": vocabulary.VOCABULARY}
    return write_corpus(out_dir, utts, assign_splits(utterances, np.random.default_rng(seed)), summary, settings)
