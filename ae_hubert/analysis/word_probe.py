"""Word-level probes: is a layer's content organised by words (the "semantic" side)?

Each word's frames (from the corpus's ``{split}.wrdspan``, ``WORD:start:end`` in seconds; frame i
of a 50 Hz layer is centred at (320 i + 200) / 16000 s) are mean-pooled into one vector.
- ``word_acc``: closed-vocabulary linear (ridge) classifier of word identity, fit on train spans,
  accuracy on held-out spans;
- ``word_pair_auc``: on held-out spans, the probability that two spans of the same word are more
  cosine-similar than two spans of different words (ROC AUC over all pairs; 0.5 = no word
  structure, 1 = every same-word pair closer than every different-word pair).
"""
from __future__ import annotations

import numpy as np

from ..common.audio import FRAME_CENTRE_S, FRAME_HOP_S
from .linear_probes import ridge_classifier_accuracy

def pool_spans(feats: np.ndarray, spans: list[tuple[str, float, float]]) -> tuple[list[str], list[np.ndarray]]:
    """Mean of the frames whose centres fall in each span; spans with no frame are skipped."""
    centres = np.arange(len(feats)) * FRAME_HOP_S + FRAME_CENTRE_S
    words, pooled = [], []
    for word, start, end in spans:
        sel = (centres >= start) & (centres < end)
        if sel.any():
            words.append(word)
            pooled.append(feats[sel].mean(0))
    return words, pooled


def word_pair_auc(vectors: np.ndarray, words: list[str], max_spans: int = 2000, seed: int = 0) -> float:
    from sklearn.metrics import roc_auc_score

    words = np.asarray(words)
    if len(words) > max_spans:
        keep = np.random.default_rng(seed).choice(len(words), max_spans, replace=False)
        vectors, words = vectors[keep], words[keep]
    v = vectors - vectors.mean(0)
    v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-9)
    sim = v @ v.T
    iu = np.triu_indices(len(words), 1)
    same = (words[:, None] == words[None, :])[iu]
    if same.all() or not same.any():
        return float("nan")
    return float(roc_auc_score(same, sim[iu]))


def word_probes(train_pooled: np.ndarray, train_words: list[str], eval_pooled: np.ndarray,
                eval_words: list[str]) -> dict:
    return {"word_acc": ridge_classifier_accuracy(train_pooled, np.array(train_words), eval_pooled,
                                                  np.array(eval_words)),
            "word_pair_auc": word_pair_auc(eval_pooled, eval_words)}
