"""A small closed vocabulary and a sentence generator, so that a tiny model learns in minutes."""
from __future__ import annotations

import numpy as np

DETERMINERS = ["the", "a", "one", "this", "my", "your"]
ADJECTIVES = ["red", "green", "blue", "big", "small", "old", "happy", "quiet"]
NOUNS = ["cat", "dog", "bird", "fish", "horse", "mouse", "car", "boat", "house", "tree"]
VERBS = ["sees", "likes", "finds", "chases", "wants", "paints", "brings", "follows"]
ENDINGS = ["today", "again", "at night", "near the river", "in the garden", "very slowly"]

VOCABULARY = sorted({w for group in (DETERMINERS, ADJECTIVES, NOUNS, VERBS) for w in group}
                    | {w for e in ENDINGS for w in e.split()})


def _noun_phrase(rng: np.random.Generator) -> list[str]:
    words = [DETERMINERS[rng.integers(len(DETERMINERS))]]
    if rng.random() < 0.7:
        words.append(ADJECTIVES[rng.integers(len(ADJECTIVES))])
    words.append(NOUNS[rng.integers(len(NOUNS))])
    return words


def sentence(rng: np.random.Generator) -> str:
    """``NP VERB NP [ENDING]``, e.g. ``the red cat chases a small bird today``."""
    words = _noun_phrase(rng) + [VERBS[rng.integers(len(VERBS))]] + _noun_phrase(rng)
    if rng.random() < 0.5:
        words += ENDINGS[rng.integers(len(ENDINGS))].split()
    return " ".join(words)


def sentences(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [sentence(rng) for _ in range(n)]
