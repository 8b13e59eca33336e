"""Which representation makes the most phonetic targets: MFCC and every layer, one protocol.

HuBERT's founding result is that k-means clusters of a middle layer of the iteration-1 model are
more phonetic than MFCC clusters, which is why iteration 2 trains on them. Measured like for like
here: for each representation (39-d MFCC at 100 Hz, each transformer layer at 50 Hz) k-means with
the same K is fit on the features of the first ``train_utterances`` of train, the first
``valid_utterances`` of valid are labelled with it, and PNMI, phone purity and cluster purity are
scored against valid's frame phones (stock ``measure_teacher_quality.py`` definitions, labels at
different rates aligned in time). Valid should hold voices train lacks (``study-corpus`` does).
The best layer is chosen by its PNMI on the train utterances (against train's phones), so that
the valid figure reported for it is not also the one it was picked by.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..clustering.apply import NearestCentroid
from ..clustering.kmeans import fit_kmeans
from ..clustering.layer_choice import extract_layers, open_layers
from ..clustering.quality import check_lengths, joint_counts, scores
from ..common.atomic import check_writable_dir, write_text_atomic
from ..common.audio import check_headers, entry_blocks
from ..common.errors import located
from ..common.manifest import read_manifest

PHONE_RATE = 50.0


def _mfcc(tsv_dir: str, split: str, n: int) -> list[np.ndarray]:
    from ..features.mfcc import mfcc_stream

    entries = read_manifest(os.path.join(tsv_dir, f"{split}.tsv")).entries[:n]
    check_headers(entries)
    return [mfcc_stream(entry_blocks(e)) for e in entries]


def _phones(tsv_dir: str, split: str, n: int) -> list[list[str]]:
    path = os.path.join(tsv_dir, f"{split}.phn")
    try:
        with open(path) as f:
            lines = [line.split() for _, line in zip(range(n), f)]
    except FileNotFoundError:
        raise located(path, "frame phone labels not found (PNMI needs them)") from None
    if len(lines) < n:
        raise located(path, f"{len(lines)} lines but {n} {split} utterances are scored")
    return lines


def _labels(km, feats: list[np.ndarray]) -> list[list[str]]:
    assign = NearestCentroid(km.cluster_centers_.astype(np.float32), "cpu")
    return [list(map(str, assign(np.asarray(u, dtype=np.float32)).tolist())) for u in feats]


def _score(train: list[np.ndarray], valid: list[np.ndarray], phones: dict, k: int, seed: int, rate: float,
           tsv_dir: str, train_score: bool = False) -> dict:
    """Fit on ``train``, score ``valid`` (and with ``train_score`` the train frames too, as
    ``train_pnmi``); every utterance's length is checked against its phone line first."""
    for split, feats in (("train", train), ("valid", valid)):
        if split in phones:
            check_lengths(feats, phones[split], rate, PHONE_RATE, os.path.join(tsv_dir, f"{split}.tsv"),
                          os.path.join(tsv_dir, f"{split}.phn"), hyp_first_line=2,
                          hint="the audio and the phone lines are not of the same utterances")
    km = fit_kmeans(np.concatenate(train).astype(np.float32), k, seed)
    out = scores(joint_counts(phones["valid"], _labels(km, valid), PHONE_RATE, rate)[0])
    if train_score:
        out["train_pnmi"] = scores(joint_counts(phones["train"], _labels(km, train), PHONE_RATE, rate)[0])["pnmi"]
    return out


def cluster_quality(tsv_dir: str, k: int, ckpt: str | None = None, layers: list[int] | None = None,
                    train_utterances: int = 300, valid_utterances: int = 300, seed: int = 1,
                    device: str | None = None, json_out: str | None = None) -> dict:
    """``{"mfcc": scores, "layers": {layer: scores}, "best_layer": l, ...}`` (layers only with ``ckpt``)."""
    if json_out:
        if os.path.isdir(json_out):
            raise located(json_out, "--json is a directory")
        check_writable_dir(os.path.dirname(os.path.abspath(json_out)))
    n_valid = min(valid_utterances, len(read_manifest(os.path.join(tsv_dir, "valid.tsv"))))
    n_train = min(train_utterances, len(read_manifest(os.path.join(tsv_dir, "train.tsv"))))
    phones = {"valid": _phones(tsv_dir, "valid", n_valid)}
    opened = None
    if ckpt is not None:  # the checkpoint and its layers are checked before any work
        phones["train"] = _phones(tsv_dir, "train", n_train)
        opened = open_layers(ckpt, layers, device)
    result = {"k": k, "train_utterances": n_train, "valid_utterances": n_valid, "seed": seed,
              "mfcc": _score(_mfcc(tsv_dir, "train", n_train), _mfcc(tsv_dir, "valid", n_valid), phones, k, seed,
                             100, tsv_dir)}
    if opened is not None:
        ex, layers = opened
        train, _ = extract_layers(ex, layers, tsv_dir, "train", n_train)
        valid, _ = extract_layers(ex, layers, tsv_dir, "valid", n_valid)
        result["ckpt"] = os.path.abspath(ckpt)
        result["layers"] = {str(layer): _score(train[layer], valid[layer], phones, k, seed, PHONE_RATE, tsv_dir,
                                               train_score=True) for layer in train}
        best = max(result["layers"], key=lambda layer: result["layers"][layer]["train_pnmi"])
        result["best_layer"] = int(best)
        result["best_minus_mfcc_pnmi"] = result["layers"][best]["pnmi"] - result["mfcc"]["pnmi"]
    if json_out:
        write_text_atomic(json_out, json.dumps(result, indent=1) + "\n")
    return result
