"""The one per-layer clustering protocol: which representation makes the most phonetic targets.

HuBERT's founding result is that k-means clusters of a middle layer of the iteration-1 model are
more phonetic than MFCC clusters, which is why iteration 2 trains on them. Every per-layer cluster
measurement of the project uses this module, so they agree on the same inputs:
``cluster-quality`` (MFCC and every layer), ``choose-layer`` and a schedule's ``layer: auto`` (the
layer to cluster next), and ``probe``'s ``pnmi`` / purities (:func:`score_clusters`).

For each representation (39-d MFCC at 100 Hz, each transformer layer at 50 Hz) k-means with the
same K is fit on the features of the first ``train_utterances`` of train, and both the train
frames and the first ``valid_utterances`` of valid are labelled with it. The layer is **chosen on
train** (PNMI against train's frame phones; without phone labels, the silhouette of the train
clusters, an unsupervised proxy and itself a hypothesis: separable clusters need not be phonetic)
and **reported on valid** (PNMI, phone purity, cluster purity; stock ``measure_teacher_quality.py``
definitions, labels at different rates aligned in time). Nothing is chosen on the split it is
reported on; valid should hold voices train lacks (``study-corpus`` does). K is never reduced:
a K the train frames cannot fill is refused.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..common.atomic import check_writable_dir, write_text_atomic
from ..common.audio import check_headers, entry_blocks
from ..common.checkpoint import weights_digest
from ..common.errors import located
from ..common.manifest import read_manifest
from ..common.outputs import Files, check_files
from ..common.text import read_lines
from .apply import NearestCentroid
from .kmeans import fit_kmeans
from .quality import check_lengths, joint_counts, scores

PHONE_RATE = 50.0  # frame phone labels (.phn)
LAYER_RATE = 50.0
MFCC_RATE = 100.0
PROTOCOL = "k-means fit on train; chosen on train; reported on valid"


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


def mfcc_features(tsv_dir: str, split: str, n: int) -> list[np.ndarray]:
    from ..features.mfcc import mfcc_stream

    entries = read_manifest(os.path.join(tsv_dir, f"{split}.tsv")).entries[:n]
    check_headers(entries)
    return [mfcc_stream(entry_blocks(e)) for e in entries]


def phone_lines(tsv_dir: str, split: str, n: int, required: bool = True) -> list[list[str]] | None:
    """The first ``n`` lines of ``{split}.phn``; None when the file is absent and not ``required``."""
    path = os.path.join(tsv_dir, f"{split}.phn")
    if not os.path.isfile(path):
        if not required:
            return None
        raise located(path, "frame phone labels not found (PNMI needs them)")
    lines = [line.split() for line in read_lines(path, n)]
    if len(lines) < n:
        raise located(path, f"{len(lines)} lines but {n} {split} utterances are scored")
    return lines


def _labels(km, feats: list[np.ndarray]) -> list[list[str]]:
    assign = NearestCentroid(km.cluster_centers_.astype(np.float32), "cpu")
    return [list(map(str, assign(np.asarray(u, dtype=np.float32)).tolist())) for u in feats]


def score_clusters(train: list[np.ndarray], valid: list[np.ndarray], phones: dict, k: int, seed: int,
                   rate: float, where: str | None = None, criterion: bool = True) -> dict:
    """The protocol for one representation: k-means fit on ``train`` (per-utterance frames), valid
    labelled and scored against ``phones["valid"]`` (PNMI, purities), and the choice criterion
    computed on train (with ``criterion``): ``train_pnmi`` against ``phones["train"]`` when given,
    else ``train_silhouette``. ``where``: the data directory, whose ``{split}.tsv``/``.phn`` the length
    checks name."""
    for split, feats in (("train", train), ("valid", valid)):
        if phones.get(split) is not None and where is not None:
            check_lengths(feats, phones[split], rate, PHONE_RATE, os.path.join(where, f"{split}.tsv"),
                          os.path.join(where, f"{split}.phn"), hyp_first_line=2,
                          hint="the audio and the phone lines are not of the same utterances")
    x = np.concatenate(train).astype(np.float32)
    km = fit_kmeans(x, k, seed)
    out = {}
    if phones.get("valid") is not None:
        out.update(scores(joint_counts(phones["valid"], _labels(km, valid), PHONE_RATE, rate)[0]))
    if not criterion:
        return out
    if phones.get("train") is not None:
        out["train_pnmi"] = scores(joint_counts(phones["train"], _labels(km, train), PHONE_RATE, rate)[0])["pnmi"]
    else:
        from sklearn.metrics import silhouette_score

        labels = np.concatenate([np.asarray(u, dtype=np.int64) for u in _labels(km, train)])  # a CUDA fit has no labels_
        out["train_silhouette"] = float(silhouette_score(x, labels, metric="cosine",
                                                         sample_size=min(5000, len(x)), random_state=seed))
    return out


def _check_json_out(json_out: str | None, ckpt: str | None, tsv_dir: str) -> None:
    """``--json`` must be a file that can be written and none of the inputs (``common/outputs.py``;
    checked here, not in the command table, so library callers get it too)."""
    if json_out:
        if os.path.isdir(json_out):
            raise located(json_out, "--json is a directory")
        check_files(Files({json_out: "--json"}, {ckpt: "--ckpt"} if ckpt else {}, {tsv_dir: "--data"}))
        check_writable_dir(os.path.dirname(os.path.abspath(json_out)))


def _sizes(tsv_dir: str, train_utterances: int, valid_utterances: int) -> tuple[int, int]:
    return (min(train_utterances, len(read_manifest(os.path.join(tsv_dir, "train.tsv")))),
            min(valid_utterances, len(read_manifest(os.path.join(tsv_dir, "valid.tsv")))))


def _layer_scores(ex, layers: list[int], tsv_dir: str, n_train: int, n_valid: int, phones: dict, k: int,
                  seed: int) -> dict[str, dict]:
    train, _ = extract_layers(ex, layers, tsv_dir, "train", n_train)
    valid, _ = extract_layers(ex, layers, tsv_dir, "valid", n_valid) if phones.get("valid") is not None else ({}, 0)
    return {str(layer): score_clusters(train[layer], valid.get(layer, []), phones, k, seed, LAYER_RATE, tsv_dir)
            for layer in layers}


def _best(layer_scores: dict[str, dict]) -> tuple[int, str]:
    """The chosen layer and the train criterion it was chosen by (ties: the lower layer)."""
    criterion = "train_pnmi" if "train_pnmi" in next(iter(layer_scores.values())) else "train_silhouette"
    best = max(layer_scores, key=lambda layer: (layer_scores[layer][criterion], -int(layer)))
    return int(best), criterion


def cluster_quality(tsv_dir: str, k: int, ckpt: str | None = None, layers: list[int] | None = None,
                    train_utterances: int = 300, valid_utterances: int = 300, seed: int = 1,
                    device: str | None = None, json_out: str | None = None) -> dict:
    """``{"mfcc": scores, "layers": {layer: scores}, "best_layer": l, ...}`` (layers only with
    ``ckpt``): MFCC and every layer by the protocol; needs train and valid phone labels."""
    _check_json_out(json_out, ckpt, tsv_dir)
    n_train, n_valid = _sizes(tsv_dir, train_utterances, valid_utterances)
    phones = {"valid": phone_lines(tsv_dir, "valid", n_valid),
              "train": phone_lines(tsv_dir, "train", n_train, required=ckpt is not None)}  # layers are chosen on it
    opened = open_layers(ckpt, layers, device) if ckpt is not None else None  # checked before any work
    result = {"k": k, "train_utterances": n_train, "valid_utterances": n_valid, "seed": seed, "protocol": PROTOCOL,
              "mfcc": score_clusters(mfcc_features(tsv_dir, "train", n_train), mfcc_features(tsv_dir, "valid", n_valid),
                                     phones, k, seed, MFCC_RATE, tsv_dir, criterion=phones["train"] is not None)}
    if opened is not None:
        ex, layers = opened
        result["ckpt"] = os.path.abspath(ckpt)
        result["layers"] = _layer_scores(ex, layers, tsv_dir, n_train, n_valid, phones, k, seed)
        best, _ = _best(result["layers"])
        result["best_layer"] = best
        result["best_minus_mfcc_pnmi"] = result["layers"][str(best)]["pnmi"] - result["mfcc"]["pnmi"]
    if json_out:
        write_text_atomic(json_out, json.dumps(result, indent=1) + "\n")
    return result


def choose_layer(ckpt: str, tsv_dir: str, candidates: list[int] | None, k: int, seed: int = 1,
                 train_utterances: int = 300, valid_utterances: int = 300, device: str | None = None,
                 json_out: str | None = None) -> dict:
    """The layer to cluster next, by the protocol (:func:`cluster_quality`'s best layer on the same
    inputs); without train phone labels, by the train clusters' silhouette. ``json_out``: where the
    result goes (``dump hubert --layer-from`` reads its ``chosen``)."""
    _check_json_out(json_out, ckpt, tsv_dir)
    n_train, n_valid = _sizes(tsv_dir, train_utterances, valid_utterances)
    train_phones = phone_lines(tsv_dir, "train", n_train, required=False)
    phones = {"train": train_phones,
              "valid": phone_lines(tsv_dir, "valid", n_valid, required=False) if train_phones is not None else None}
    ex, candidates = open_layers(ckpt, candidates, device)
    layer_scores = _layer_scores(ex, candidates, tsv_dir, n_train, n_valid, phones, k, seed)
    best, by = _best(layer_scores)
    criterion = "pnmi" if by == "train_pnmi" else "silhouette"
    ranked = sorted(layer_scores.items(), key=lambda kv: -kv[1][by])
    reported = layer_scores[str(best)].get("pnmi")
    why = (f"layer {best} has the highest {criterion} on train ({layer_scores[str(best)][by]:.4f}) of layers "
           + ", ".join(f"{layer}: {s[by]:.4f}" for layer, s in ranked)
           + f" (k-means K={k} fit on {n_train} train utterances"
           + (f"; its valid PNMI {reported:.4f} on {n_valid} utterances" if reported is not None else "") + ")")
    result = {"chosen": best, "criterion": criterion, "protocol": PROTOCOL,
              "scores": {layer: s[by] for layer, s in layer_scores.items()},
              "valid": {layer: {m: s[m] for m in ("pnmi", "phone_purity", "cluster_purity") if m in s}
                        for layer, s in layer_scores.items()} if reported is not None else {},
              "why": why, "k": k, "seed": seed, "train_utterances": n_train,
              "valid_utterances": n_valid if reported is not None else 0,
              "ckpt": os.path.abspath(ckpt), "ckpt_weights": weights_digest(ckpt)}
    if json_out:
        write_text_atomic(json_out, json.dumps(result, indent=1) + "\n")
    return result
