"""Linear CTC letter probe: how much word content a frozen layer carries, as CER and WER.

One linear map (layer dim -> letters + blank) is trained with CTC on the train utterances' frames
(standardised with train statistics, Adam on random utterance batches, fixed steps and seed: the
cost does not grow with the probe set), then decoded greedily
on held-out utterances: argmax per frame, repeats merged, blanks removed. Letters follow fairseq's
``.ltr`` format (letters separated by spaces, ``|`` between words); CER counts characters of the
transcript written with spaces between words, WER counts words (both with editdistance).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..common.letters import letters_to_words

BLANK = "<b>"


def letter_units(transcripts: list[list[str]]) -> list[str]:
    """Sorted unit inventory of ``.ltr`` transcripts (lists of letters and ``|``), blank first."""
    return [BLANK] + sorted({u for t in transcripts for u in t})


def greedy_decode(log_probs: np.ndarray, units: list[str]) -> list[str]:
    best = np.argmax(log_probs, axis=-1)
    out, prev = [], -1
    for i in best:
        if i != prev and i != 0:
            out.append(units[i])
        prev = i
    return out


def error_rates(hyps: list[list[str]], refs: list[list[str]]) -> tuple[float, float]:
    """(CER, WER) of letter sequences in ``.ltr`` units."""
    from ..common.error_rates import error_rates as sentence_error_rates

    r = sentence_error_rates([" ".join(letters_to_words(h)) for h in hyps],
                             [" ".join(letters_to_words(t)) for t in refs])
    return r["cer"], r["wer"]


def _pad(feats: list[np.ndarray], mu, sd) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in feats])
    x = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for i, f in enumerate(feats):
        x[i, : len(f)] = torch.from_numpy((f - mu) / sd)
    return x, lengths


def ctc_letter_probe(train_feats: list[np.ndarray], train_letters: list[list[str]],
                     eval_feats: list[np.ndarray], eval_letters: list[list[str]],
                     steps: int = 150, lr: float = 0.05, weight_decay: float = 1e-4,
                     batch: int = 32, seed: int = 1) -> dict:
    """Train the linear CTC probe and return ``{"cer", "wer", "hyps"}`` on the eval utterances."""
    units = letter_units(train_letters + eval_letters)
    index = {u: i for i, u in enumerate(units)}
    cat = np.concatenate(train_feats).astype(np.float64)
    mu, sd = cat.mean(0), cat.std(0) + 1e-6
    x, x_len = _pad([f.astype(np.float64) for f in train_feats], mu, sd)
    x = x.float()
    targets = [torch.tensor([index[u] for u in t]) for t in train_letters]
    t_len = torch.tensor([len(t) for t in train_letters])
    gen = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(x.shape[-1], len(units))
    with torch.no_grad():
        lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen) * 0.01)
        lin.bias.zero_()
    opt = torch.optim.Adam(lin.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            b = torch.randperm(len(x), generator=gen)[:batch]
            lp = F.log_softmax(lin(x[b, : int(x_len[b].max())]), dim=-1).transpose(0, 1)  # T x B x V
            loss = F.ctc_loss(lp, torch.cat([targets[i] for i in b]), x_len[b], t_len[b], blank=0,
                              reduction="mean", zero_infinity=True)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        hyps = []
        for f in eval_feats:
            z = torch.from_numpy(((f - mu) / sd).astype(np.float32))
            hyps.append(greedy_decode(F.log_softmax(lin(z), -1).numpy(), units))
    cer, wer = error_rates(hyps, eval_letters)
    return {"cer": cer, "wer": wer, "hyps": hyps}
