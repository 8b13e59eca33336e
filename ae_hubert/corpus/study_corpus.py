"""``ae-hubert study-corpus``: a harder synthetic corpus, with new voices in valid and test.

The toy corpus (six voices, 40 words, clean audio) makes MFCC clusters near-phonetic by
construction, so learned targets have nothing to win there. This corpus adds what real speech
has and MFCC clusters do not abstract away:
- voices: 8 espeak-ng English accents x 17 voice variants, plus flite's four 16 kHz voices
  (kal16, slt, awb, rms). Splits are voice-disjoint: valid and test variants and flite voices
  never speak in train, so probes measure generalisation to new speakers;
- words: ~3000 frequent English words (``lexicon.py``) in sentences of 5-14 words;
- speaking rate and pitch drawn per utterance, room reverberation, coloured noise at random
  SNR and a random level (``acoustics.py``).
Outputs are the toy corpus's (``corpus_files.py``), deterministic for a seed and any --workers.
"""
from __future__ import annotations

import os

import numpy as np

from ..common.errors import AeHubertError
from . import acoustics, flite, lexicon, phones, speech
from .corpus_files import Utterance, assign_splits, check_corpus_dir, start_corpus, synthesise, write_corpus, write_wav

ACCENTS = ["en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc"]
# voice-disjoint splits: (espeak-ng variants, flite voices with their nominal mean F0 in Hz)
VOICES = {
    "train": (["m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "klatt", "klatt2", "klatt3"],
              {"kal16": 105.0, "slt": 170.0}),
    "valid": (["m6", "f4", "klatt4"], {"awb": 110.0}),
    "test": (["m7", "f5", "klatt5"], {"rms": 100.0}),
}
FLITE_SHARE = 1 / 3  # of each split's utterances; the rest are espeak-ng
REVERB_SHARE, NOISE_SHARE = 0.5, 0.8
SNR_DB = (5.0, 30.0)
ROOMS = 64
ATTEMPTS = 10  # sentences tried per utterance before giving up (a synthesiser may disagree with the lexicon)

_SHARED: dict = {}  # set in the parent before the workers fork: words, weights, prons, rooms


def _speak(idx: int, split: str, seed: int) -> tuple[speech.Spoken, str, str, np.random.Generator]:
    """The utterance's voice, rate and pitch are drawn once; only the sentence is redrawn when a
    synthesiser fails on it, so voices that fail more often are not under-represented."""
    variants, flites = VOICES[split]
    rng = np.random.default_rng([seed, idx])
    if rng.random() < FLITE_SHARE:
        name = sorted(flites)[int(rng.integers(len(flites)))]
        f0, stretch = flites[name] * float(rng.uniform(0.8, 1.25)), float(rng.uniform(0.8, 1.3))
        voice = f"flite:{name}"

        def say(text):
            return speech.speak_flite(text, name, _SHARED["prons"][name], stretch=stretch, f0_mean=f0)
    else:
        name = f"{ACCENTS[int(rng.integers(len(ACCENTS)))]}+{variants[int(rng.integers(len(variants)))]}"
        rate, pitch = int(rng.integers(120, 221)), int(rng.integers(20, 81))
        voice = f"espeak:{name}"

        def say(text):
            return speech.speak_espeak(text, name, rate=rate, pitch=pitch)
    last = None
    for attempt in range(ATTEMPTS):
        text = lexicon.sentence(np.random.default_rng([seed, idx, attempt]), _SHARED["words"], _SHARED["weights"])
        try:
            return say(text), text, voice, rng
        except (RuntimeError, ValueError) as e:
            last = e
    raise AeHubertError(f"utterance {idx} ({voice}): no sentence could be synthesised in {ATTEMPTS} attempts "
                        f"({last})")


def _synth_one(job) -> tuple[Utterance, dict]:
    idx, split, seed, wav_path = job
    spoken, text, voice, rng = _speak(idx, split, seed)
    audio, cond = spoken.audio, {}
    if rng.random() < REVERB_SHARE:
        room = int(rng.integers(len(_SHARED["rooms"])))
        audio = acoustics.reverberate(audio, _SHARED["rooms"][room])
        cond["room"] = room
    if rng.random() < NOISE_SHARE:
        snr, beta = float(rng.uniform(*SNR_DB)), float(rng.uniform(0.0, 2.0))
        cond["snr_db"] = snr
    else:  # a floor, so that silence is not digital zero
        snr, beta = float(rng.uniform(40.0, 50.0)), 0.0
    audio = acoustics.add_noise(audio, snr, beta, rng)
    audio = acoustics.set_peak(audio, float(rng.uniform(-25.0, -1.0)))
    pcm = speech.to_pcm16(audio)
    write_wav(wav_path, pcm)
    uid = os.path.splitext(os.path.basename(wav_path))[0]
    return Utterance(uid, text, voice, len(pcm), phones.frame_labels(spoken.segments, len(pcm)),
                     spoken.word_spans), cond


def _synth_chunk(jobs):
    return [_synth_one(job) for job in jobs]


def build(out_dir: str, utterances: int = 3000, seed: int = 0, vocabulary: int = 3000,
          workers: int | None = None) -> dict:
    """Synthesise the study corpus into ``out_dir``; return its summary (also in corpus.json)."""
    if utterances < 30:
        raise AeHubertError("--utterances must be at least 30 (voice-disjoint train/valid/test splits)")
    if vocabulary < 50:
        raise AeHubertError("--vocabulary must be at least 50 words")
    settings = {"corpus": "study", "seed": seed, "utterances": utterances, "vocabulary": vocabulary}
    check_corpus_dir(out_dir, settings)
    try:  # every check before anything is written: a missing part is one line, not a traceback
        words, weights = lexicon.study_vocabulary(vocabulary, ACCENTS)
        flite_voices = sorted({v for _, f in VOICES.values() for v in f})
        prons = {v: flite.word_prons(words, v) for v in flite_voices}
        rooms = acoustics.room_impulse_responses(ROOMS, seed)
    except ImportError as e:
        raise AeHubertError(f"the study corpus needs {e.name or e}: pip install 'ae_hubert[study]'") from None
    except RuntimeError as e:
        raise AeHubertError(str(e)) from None
    if len(words) < vocabulary:
        raise AeHubertError(f"--vocabulary {vocabulary}: only {len(words)} words pass the pronunciation checks")
    out_dir = start_corpus(out_dir, settings)
    _SHARED.update(words=words, weights=weights, rooms=rooms, prons=prons)
    split_of = assign_splits(utterances, np.random.default_rng([seed, 3]))
    jobs = [(i, split_of[i], seed, os.path.join(out_dir, "wav", f"utt{i:05d}.wav")) for i in range(utterances)]
    try:
        done = synthesise(_synth_chunk, jobs, workers)
    finally:
        _SHARED.clear()
    utts = [u for u, _ in done]
    conds = [c for _, c in done]
    snrs = [c["snr_db"] for c in conds if "snr_db" in c]
    summary = {"kind": "study", "seed": seed, "utterances": utterances, "vocabulary_size": len(words),
               "accents": ACCENTS, "voices": {s: {"espeak_variants": v, "flite": sorted(f)} for s, (v, f) in VOICES.items()},
               "reverberant_share": float(np.mean(["room" in c for c in conds])),
               "noisy_share": len(snrs) / len(conds), "snr_db_median": float(np.median(snrs)) if snrs else None,
               "vocabulary": words}
    return write_corpus(out_dir, utts, split_of, summary, settings)
