"""Known-answer checks of the CTC letter probe, the word-span probes and CCA."""
import numpy as np
import pytest

from ae_hubert.analysis.ctc_probe import error_rates, greedy_decode
from ae_hubert.common.letters import letters_to_words
from ae_hubert.analysis.linear_probes import mean_cca
from ae_hubert.analysis.word_probe import pool_spans, word_pair_auc, word_probes
from ae_hubert.corpus.corpus_files import parse_spans
from ae_hubert.common.errors import AeHubertError

WORDS = ["CAT", "DOG", "TREE", "BIRD", "RED", "SEES"]


def _utterances(n, seed, informative=True):
    """Frames that spell the transcript: each letter one-hot for 3 frames, a gap frame between letters."""
    rng = np.random.default_rng(seed)
    alphabet = sorted(set("".join(WORDS)) | {"|"})
    feats, letters = [], []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=3))
        ltr = [c for w in words for c in (*w, "|")]
        rows = []
        for c in ltr:
            rows += [np.eye(len(alphabet) + 1)[alphabet.index(c)]] * 3 + [np.eye(len(alphabet) + 1)[-1]]
        x = np.array(rows) + 0.05 * rng.standard_normal((len(rows), len(alphabet) + 1))
        feats.append(x if informative else rng.standard_normal(x.shape))
        letters.append(ltr)
    return feats, letters


@pytest.mark.slow  # trains a CTC head (~10 s): not for the edit loop
def test_ctc_probe_reads_letters_from_a_layer_that_spells_them():
    from ae_hubert.analysis.ctc_probe import ctc_letter_probe

    tr, tr_l = _utterances(60, 0)
    ev, ev_l = _utterances(20, 1)
    good = ctc_letter_probe(tr, tr_l, ev, ev_l)
    assert good["cer"] < 0.05 and good["wer"] < 0.15
    noise_tr, _ = _utterances(60, 0, informative=False)
    noise_ev, _ = _utterances(20, 1, informative=False)
    bad = ctc_letter_probe(noise_tr, tr_l, noise_ev, ev_l)
    assert bad["cer"] > 0.5


def test_greedy_decode_and_error_rates():
    units = ["<b>", "A", "B", "|"]
    lp = np.log(np.eye(4)[[1, 1, 0, 1, 2, 3, 3, 0, 2]] + 1e-6)
    hyp = greedy_decode(lp, units)
    assert hyp == ["A", "A", "B", "|", "B"]
    assert letters_to_words(hyp) == ["AAB", "B"]
    cer, wer = error_rates([hyp], [["A", "A", "B", "|", "B", "|"]])
    assert cer == 0 and wer == 0
    cer, wer = error_rates([["A", "|"]], [["A", "A", "B", "|", "B", "|"]])
    assert wer == pytest.approx(1.0) and cer == pytest.approx(4 / 5)


def test_word_probes_known_answers():
    rng = np.random.default_rng(0)
    def spans(n):
        words = list(rng.choice(WORDS, size=n))
        return np.array([np.eye(len(WORDS))[WORDS.index(w)] for w in words]) + 0.1 * rng.standard_normal(
            (n, len(WORDS))), words
    x_tr, w_tr = spans(120)
    x_ev, w_ev = spans(60)
    m = word_probes(x_tr, w_tr, x_ev, w_ev)
    assert m["word_acc"] > 0.95 and m["word_pair_auc"] > 0.95
    noise = rng.standard_normal(x_ev.shape)
    assert abs(word_pair_auc(noise, w_ev) - 0.5) < 0.1


def test_pool_spans_uses_frame_centres():
    feats = np.arange(10, dtype=float)[:, None]  # frame i centred at 0.02 i + 0.0125 s
    words, pooled = pool_spans(feats, [("A", 0.0, 0.05), ("B", 0.05, 0.1), ("C", 0.5, 0.6)])
    assert words == ["A", "B"]  # C lies past the last frame
    assert pooled[0][0] == pytest.approx(0.5)  # frames 0, 1 (centres 0.0125, 0.0325)
    assert pooled[1][0] == pytest.approx(3.0)  # frames 2, 3, 4


def test_bad_word_span_names_file_and_line():
    with pytest.raises(AeHubertError, match=r"x\.wrdspan:3: bad word span 'CAT:0.1'"):
        parse_spans("CAT:0.1", "x.wrdspan", 3)


def test_cca_known_answers():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((2000, 5))
    mix = rng.standard_normal((5, 12))
    x = y @ mix + 0.01 * rng.standard_normal((2000, 12))  # a linear copy of y in a bigger space
    assert mean_cca(x[:1500], y[:1500], x[1500:], y[1500:]) > 0.98
    z = rng.standard_normal((2000, 12))
    assert mean_cca(z[:1500], y[:1500], z[1500:], y[1500:]) < 0.15
