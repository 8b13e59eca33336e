"""SUPERB-style phone recognition: what a frozen model offers a downstream phone recogniser.

Every layer of the frozen model (0, the CNN's projected output, to the top) is standardised with
train statistics and mixed by learned softmax weights (SUPERB's weighted sum of layers); one
linear map to the phones + blank is trained with CTC on the train utterances' phone sequences
(``{split}.phnseq``, ``corpus/phone_sequences.py``), Adam, fixed steps, batch and seed; the phone
error rate (PER) of greedy decoding is scored on held-out utterances. The model is not changed:
unlike fine-tuning, a top layer the weights can leave aside costs little, so the measure asks what
the best mix of the layers knows, and the learned weights say which layers it took.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from ..common.error_rates import error_rates
from ..common.errors import located
from ..common.manifest import read_manifest
from ..common.text import read_lines
from ..corpus.phone_sequences import LABEL
from .ctc_probe import BLANK, greedy_decode


def _sequences(data: str, split: str, n: int) -> list[list[str]]:
    path = os.path.join(data, f"{split}.{LABEL}")
    if not os.path.isfile(path):
        raise located(path, "phone sequences not found (corpus/phone_sequences.py writes them from .phn and "
                            ".wrdspan)")
    lines = read_lines(path, n)
    if len(lines) < n:
        raise located(path, f"{len(lines)} lines but {n} utterances of the manifest are read")
    return [line.split() for line in lines]


def layer_stacks(extractor, data: str, split: str, layers: list[int], n: int) -> list[np.ndarray]:
    """Per utterance, its layers as one ``(layers, frames, dim)`` float32 array."""
    from ..features.hubert_layers import split_hidden_states

    return [np.stack([out[layer] for layer in layers]).astype(np.float32)
            for _, out in split_hidden_states(extractor, data, split, layers, n)]


def weighted_sum_ctc(train: list[np.ndarray], train_phones: list[list[str]], held_out: list[np.ndarray],
                     held_out_phones: list[list[str]], steps: int = 1000, lr: float = 5e-3, batch: int = 16,
                     seed: int = 1) -> dict:
    """Train the weighted sum and the linear CTC head; ``{"per", "layer_weights", "hyps"}``."""
    units = [BLANK] + sorted({p for s in train_phones + held_out_phones for p in s})
    index = {u: i for i, u in enumerate(units)}
    # per-layer mean and std over every train frame, accumulated (no float64 copy of all the features)
    n = sum(x.shape[1] for x in train)
    total = sum(x.sum(1, keepdims=True, dtype=np.float64) for x in train)
    squares = sum(np.square(x, dtype=np.float64).sum(1, keepdims=True) for x in train)
    mu = total / n
    mu, sd = mu.astype(np.float32), (np.sqrt(np.maximum(squares / n - mu ** 2, 0)) + 1e-5).astype(np.float32)
    norm = [torch.from_numpy((x - mu) / sd) for x in train]
    lengths = torch.tensor([x.shape[1] for x in train])
    targets = [torch.tensor([index[p] for p in s]) for s in train_phones]
    t_len = torch.tensor([len(s) for s in train_phones])
    n_layers, dim = train[0].shape[0], train[0].shape[2]
    gen = torch.Generator().manual_seed(seed)
    mix = torch.nn.Parameter(torch.zeros(n_layers))
    head = torch.nn.Linear(dim, len(units))
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.01)
        head.bias.zero_()
    opt = torch.optim.Adam([mix, *head.parameters()], lr=lr)

    def forward(x: torch.Tensor) -> torch.Tensor:  # (B, layers, T, dim) -> (B, T, units) log-probs
        return F.log_softmax(head(torch.einsum("l,bltd->btd", torch.softmax(mix, 0), x)), -1)

    with torch.enable_grad():
        for _ in range(steps):
            b = torch.randperm(len(norm), generator=gen)[:batch]
            t = int(lengths[b].max())
            x = torch.zeros(len(b), n_layers, t, dim)
            for j, i in enumerate(b.tolist()):
                x[j, :, : lengths[i]] = norm[i]
            loss = F.ctc_loss(forward(x).transpose(0, 1), torch.cat([targets[i] for i in b]), lengths[b], t_len[b],
                              blank=0, reduction="mean", zero_infinity=True)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        hyps = [greedy_decode(forward(torch.from_numpy((x - mu) / sd)[None])[0].numpy(), units) for x in held_out]
    per = error_rates([" ".join(h) for h in hyps], [" ".join(s) for s in held_out_phones])["wer"]
    return {"per": float(per), "layer_weights": [float(w) for w in torch.softmax(mix.detach(), 0)], "hyps": hyps}


def phone_recognition(ckpt: str, data: str, train_utterances: int = 1000, split: str = "test",
                      utterances: int = 300, steps: int = 1000, seed: int = 1, device: str | None = None) -> dict:
    """The frozen checkpoint's weighted-sum phone recogniser: trained on the first
    ``train_utterances`` of train, PER on the first ``utterances`` of ``split``."""
    from ..common.checkpoint import load_hubert
    from ..features.hubert_layers import HubertLayerExtractor

    sizes = {s: len(read_manifest(os.path.join(data, f"{s}.tsv"))) for s in ("train", split)}
    n_train, n_eval = min(train_utterances, sizes["train"]), min(utterances, sizes[split])
    train_phones, eval_phones = _sequences(data, "train", n_train), _sequences(data, split, n_eval)
    loaded = load_hubert(ckpt)
    ex = HubertLayerExtractor(loaded.model, loaded.normalize, device)
    layers = list(range(loaded.num_layers + 1))
    r = weighted_sum_ctc(layer_stacks(ex, data, "train", layers, n_train), train_phones,
                         layer_stacks(ex, data, split, layers, n_eval), eval_phones, steps=steps, seed=seed)
    return {"checkpoint": ckpt, "updates": loaded.num_updates, "per": r["per"], "layer_weights": r["layer_weights"],
            "train_utterances": n_train, "split": split, "utterances": n_eval, "steps": steps}
