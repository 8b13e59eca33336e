"""``ae-hubert probe``: per checkpoint and per layer, what the layer knows (first metrics).

Fit on the first ``max_utterances`` of ``train``, evaluate on ``valid`` (split by utterance):
- ``pnmi`` / ``phone_purity`` / ``cluster_purity``: k-means (K) of the layer vs frame phones;
- ``phone_acc``: closed-form linear (ridge) frame phone classifier;
- ``input_r2``: ridge reconstruction of the input MFCC frame at the same time (the autoencoder side);
- ``voice_acc``: ridge voice classifier on mean-pooled utterances.
Layer 0 is the projected CNN output (the transformer's input). Frame i of a layer (50 Hz) is
matched with MFCC frame 2i (100 Hz): both are centred on sample 320 i + 200.
"""
from __future__ import annotations

import csv
import json
import os

import numpy as np

from ..clustering.kmeans import fit_kmeans
from ..clustering.quality import joint_counts, scores
from ..common.atomic import atomic_path, write_text_atomic
from ..common.errors import located
from ..features.mfcc import mfcc
from .linear_probes import ridge_classifier_accuracy, ridge_r2

METRICS = ("pnmi", "phone_purity", "cluster_purity", "phone_acc", "input_r2", "voice_acc")


def _lines(path: str, n: int) -> list[str]:
    if not os.path.isfile(path):
        raise located(path, "label file needed for probing not found")
    with open(path) as f:
        return [line.rstrip("\n") for _, line in zip(range(n), f)]


def _split_data(extractor, data: str, split: str, layers: list[int], max_utts: int):
    from ..features.hubert_layers import split_hidden_states

    feats = {layer: [] for layer in layers}
    inputs = []
    for w, out in split_hidden_states(extractor, data, split, layers, max_utts):
        inputs.append(mfcc(w)[0: 2 * len(out[layers[0]]): 2])
        for layer in layers:
            feats[layer].append(out[layer])
    phones = [p.split() for p in _lines(os.path.join(data, f"{split}.phn"), len(inputs))]
    voices = _lines(os.path.join(data, f"{split}.spk"), len(inputs))
    return feats, inputs, phones, voices


def probe_layers(ckpt: str, data: str, k: int = 50, max_utterances: int = 200, seed: int = 1,
                 device: str | None = None) -> dict:
    from ..common.checkpoint import load_hubert
    from ..features.hubert_layers import HubertLayerExtractor

    loaded = load_hubert(ckpt)
    ex = HubertLayerExtractor(loaded.model, loaded.normalize, device)
    layers = list(range(loaded.num_layers + 1))
    tr = _split_data(ex, data, "train", layers, max_utterances)
    ev = _split_data(ex, data, "valid", layers, max_utterances)
    ph_tr = np.concatenate([np.array(p) for p in tr[2]])
    ph_ev = np.concatenate([np.array(p) for p in ev[2]])
    in_tr, in_ev = np.concatenate(tr[1]), np.concatenate(ev[1])
    out = {}
    for layer in layers:
        x_tr, x_ev = np.concatenate(tr[0][layer]), np.concatenate(ev[0][layer])
        km = fit_kmeans(x_tr.astype(np.float32), k, seed)
        lab = km.predict(x_ev.astype(np.float32))
        q = scores(joint_counts([list(ph_ev)], [list(map(str, lab))])[0])
        pool_tr = np.stack([u.mean(0) for u in tr[0][layer]])
        pool_ev = np.stack([u.mean(0) for u in ev[0][layer]])
        out[layer] = {
            "pnmi": q["pnmi"], "phone_purity": q["phone_purity"], "cluster_purity": q["cluster_purity"],
            "phone_acc": ridge_classifier_accuracy(x_tr, ph_tr, x_ev, ph_ev),
            "input_r2": ridge_r2(x_tr, in_tr, x_ev, in_ev),
            "voice_acc": ridge_classifier_accuracy(pool_tr, np.array(tr[3]), pool_ev, np.array(ev[3])),
        }
    return {"checkpoint": ckpt, "layers": out, "autoencoder_index": autoencoder_index(out)}


def probe_checkpoints(paths: list[str], data: str, **kwargs) -> list[dict]:
    """Probe files and checkpoint directories (ordered by updates); each result carries ``updates``."""
    from .checkpoints import expand_checkpoints

    results = []
    for ckpt, updates in expand_checkpoints(paths):
        r = probe_layers(ckpt, data, **kwargs)
        r["updates"] = updates
        results.append(r)
    return results


def autoencoder_index(per_layer: dict) -> float:
    """How far the top layer falls back toward the input: (best phone accuracy over layers - top
    layer's) + (top layer's input R^2 - lowest input R^2 over transformer layers). 0 when the top
    layer is the most phonetic and the least input-like; larger = more autoencoder-like."""
    layers = sorted(per_layer)
    top = layers[-1]
    best_acc = max(per_layer[layer]["phone_acc"] for layer in layers)
    min_r2 = min(per_layer[layer]["input_r2"] for layer in layers if layer > 0) if top > 0 else 0.0
    return float((best_acc - per_layer[top]["phone_acc"]) + (per_layer[top]["input_r2"] - min_r2))


def write_probe_results(results: list[dict], out_dir: str) -> tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    js = os.path.join(out_dir, "probe.json")
    write_text_atomic(js, json.dumps(results, indent=1) + "\n")
    csv_path = os.path.join(out_dir, "probe.csv")
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["checkpoint", "updates", "layer", *METRICS])
        for r in results:
            for layer, m in sorted(r["layers"].items(), key=lambda kv: int(kv[0])):
                w.writerow([r["checkpoint"], r.get("updates", ""), layer, *[f"{m[k]:.6f}" for k in METRICS]])
    return js, csv_path
