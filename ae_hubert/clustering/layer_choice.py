"""Adaptive clustering height: pick the layer whose clusters make the next targets, by measurement.

All candidate layers come from one encoder pass over held-out utterances; each is clustered with
the target's K and scored:
- ``pnmi`` against frame phone labels when the data has them (``{split}.phn``): the layer whose
  clusters carry the most phonetic information (the HuBERT paper's label-quality measure);
- otherwise ``silhouette`` (scikit-learn, on a fixed subsample, cosine distance): how well
  separated the layer's clusters are, an unsupervised proxy. This is a hypothesis, not a result:
  separable clusters are not necessarily phonetic ones.
The choice and every layer's score are recorded.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..common.atomic import check_writable_dir, write_text_atomic
from ..common.errors import located
from ..common.manifest import read_manifest

from .kmeans import fit_kmeans
from .quality import joint_counts, scores


def open_layers(ckpt: str, layers: list[int] | None, device: str | None = None):
    """``(extractor, layers)`` for a checkpoint, the layers checked against its depth (None: every
    transformer layer): load once, extract from several splits."""
    from ..common.checkpoint import load_hubert
    from ..features.hubert_layers import HubertLayerExtractor

    loaded = load_hubert(ckpt)
    ex = HubertLayerExtractor(loaded.model, loaded.normalize, device)
    if layers is None:
        layers = list(range(1, ex.num_layers + 1))
    bad = [layer for layer in layers if not 1 <= layer <= ex.num_layers]
    if bad:
        raise located(ckpt, f"candidate layers {bad} out of range: the model has layers 1..{ex.num_layers}")
    return ex, layers


def extract_layers(ex, layers: list[int], tsv_dir: str, split: str, max_utterances: int
                   ) -> tuple[dict[int, list[np.ndarray]], int]:
    """Hidden states of ``layers`` for the first ``max_utterances`` of a split, and their count."""
    from ..features.hubert_layers import split_hidden_states

    per_layer: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
    n = 0
    for _, out in split_hidden_states(ex, tsv_dir, split, layers, max_utterances):
        n += 1
        for layer in layers:
            per_layer[layer].append(out[layer])
    return per_layer, n


def layer_features(ckpt: str, tsv_dir: str, split: str, layers: list[int] | None, max_utterances: int = 200,
                   device: str | None = None) -> tuple[dict[int, list[np.ndarray]], int]:
    """Hidden states of ``layers`` (None: every transformer layer) for the first utterances of a split."""
    ex, layers = open_layers(ckpt, layers, device)
    return extract_layers(ex, layers, tsv_dir, split, max_utterances)


def choose_layer(ckpt: str, tsv_dir: str, split: str, candidates: list[int] | None, k: int, seed: int = 1,
                 max_utterances: int = 200, device: str | None = None, json_out: str | None = None) -> dict:
    """``json_out``: where the result goes (``dump hubert --layer-from`` reads it)."""
    from sklearn.metrics import silhouette_score

    if json_out:
        if os.path.isdir(json_out):
            raise located(json_out, "--json is a directory")
        check_writable_dir(os.path.dirname(os.path.abspath(json_out)))
    read_manifest(os.path.join(tsv_dir, f"{split}.tsv"))
    per_layer, n_utt = layer_features(ckpt, tsv_dir, split, candidates, max_utterances, device)
    candidates = list(per_layer)
    phn_path = os.path.join(tsv_dir, f"{split}.phn")
    phones = None
    if os.path.isfile(phn_path):
        with open(phn_path) as f:
            phones = [line.split() for _, line in zip(range(n_utt), f)]
        if len(phones) < n_utt:
            raise located(phn_path, f"{len(phones)} lines but the manifest's first {n_utt} utterances were scored")
    criterion = "pnmi" if phones is not None else "silhouette"
    results = {}
    n_frames = sum(len(u) for u in per_layer[candidates[0]])
    k_used = min(k, max(2, n_frames // 20))  # at least ~20 frames a cluster on a small held-out set
    for layer in candidates:
        feats = np.concatenate(per_layer[layer]).astype(np.float32)
        km = fit_kmeans(feats, k_used, seed)
        labels = km.labels_
        if phones is not None:
            offs = np.cumsum([0] + [len(u) for u in per_layer[layer]])
            hyps = [list(map(str, labels[offs[i]:offs[i + 1]])) for i in range(len(offs) - 1)]
            results[layer] = scores(joint_counts(phones, hyps)[0])["pnmi"]
        else:
            results[layer] = float(silhouette_score(feats, labels, metric="cosine",
                                                    sample_size=min(5000, len(feats)), random_state=seed))
    best = max(results, key=lambda layer: (results[layer], -layer))
    ranked = sorted(results.items(), key=lambda kv: -kv[1])
    why = (f"layer {best} has the highest {criterion} ({results[best]:.4f}) of layers "
           + ", ".join(f"{layer}: {s:.4f}" for layer, s in ranked)
           + f" (k-means K={k_used}" + (f", not {k}: only {n_frames} held-out frames" if k_used != k else "")
           + f", on {n_utt} held-out '{split}' utterances)")
    result = {"chosen": best, "criterion": criterion, "scores": {str(k_): v for k_, v in results.items()},
              "why": why, "utterances": n_utt}
    if json_out:
        write_text_atomic(json_out, json.dumps(result, indent=1) + "\n")
    return result
