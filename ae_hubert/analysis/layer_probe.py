"""``ae-hubert probe``: per checkpoint and per layer, what the layer knows.

Fit on the first ``max_utterances`` of ``train``, evaluate on ``valid`` (split by utterance). Each
group of metrics runs when its labels are in the data directory:
- ``{split}.phn`` (frame phones at 50 Hz): ``pnmi`` / ``phone_purity`` / ``cluster_purity`` of a
  k-means (K) of the layer (the protocol of clustering/layer_choice.py), and ``phone_acc`` of a closed-form linear (ridge) frame classifier;
- always: ``input_r2``, ridge reconstruction of the input MFCC frame at the same time (the
  autoencoder side), and with ``cca`` the mean canonical correlation with it (``input_cca``);
- ``{split}.ltr``: ``letter_cer`` / ``letter_wer`` of a linear CTC letter probe (word content);
- ``{split}.wrdspan``: ``word_acc`` and ``word_pair_auc`` of word-span-pooled frames;
- ``{split}.spk``: ``voice_acc``, ridge voice classifier on mean-pooled utterances (within valid
  when its voices are new: ``voice_accuracy``).
Layer 0 is the projected CNN output (the transformer's input). Frame i of a layer (50 Hz) is
matched with MFCC frame 2i (100 Hz): both are centred on sample 320 i + 200.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from ..clustering.layer_choice import LAYER_RATE, score_clusters
from ..common.atomic import atomic_path, write_text_atomic
from ..features.mfcc import at_layer_frames, mfcc
from .ctc_probe import ctc_letter_probe
from .linear_probes import mean_cca, ridge_classifier_accuracy, ridge_r2
from ..corpus.corpus_files import parse_spans
from .word_probe import pool_spans, word_probes
from ..common.errors import located
from ..common.manifest import read_manifest
from ..common.text import read_lines

log = logging.getLogger(__name__)

METRICS = ("pnmi", "phone_purity", "cluster_purity", "phone_acc", "input_r2", "input_cca",
           "letter_cer", "letter_wer", "word_acc", "word_pair_auc", "voice_acc")


def _lines(path: str, n: int) -> list[str] | None:
    """The first ``n`` lines of a side file of the manifest (None when there is none); fewer is refused."""
    if not os.path.isfile(path):
        return None
    lines = read_lines(path, n)
    if len(lines) < n:
        raise located(path, f"{len(lines)} lines but the probe reads {n} utterances of the manifest (one line each)")
    return lines


@dataclass
class SplitData:
    feats: dict[int, list[np.ndarray]]
    inputs: list[np.ndarray]
    phones: list[list[str]] | None = None
    letters: list[list[str]] | None = None
    spans: list[list[tuple[str, float, float]]] | None = None
    voices: list[str] | None = None
    labels_found: list[str] = field(default_factory=list)


def _split_data(extractor, data: str, split: str, layers: list[int], max_utts: int,
                mfcc_cache: dict | None = None) -> SplitData:
    """``mfcc_cache``: the input MFCC of each split, kept across the checkpoints of one probe run."""
    from ..features.hubert_layers import split_hidden_states

    feats = {layer: [] for layer in layers}
    inputs = []
    cache = {} if mfcc_cache is None else mfcc_cache
    cache = cache.setdefault(split, [])
    total = len(read_manifest(os.path.join(data, f"{split}.tsv")))
    n = min(max_utts, total) if max_utts else total
    # the side files read (and their lengths checked) before the encoder pass, not after it
    side = {ext: _lines(os.path.join(data, f"{split}.{ext}"), n) for ext in ("phn", "ltr", "wrdspan", "spk")}
    for i, (w, out) in enumerate(split_hidden_states(extractor, data, split, layers, max_utts)):
        if i == len(cache):
            cache.append(mfcc(w))
        inputs.append(at_layer_frames(cache[i], len(out[layers[0]])))
        for layer in layers:
            feats[layer].append(out[layer])
    d = SplitData(feats, inputs)
    if side["phn"] is not None:
        d.phones = [p.split() for p in side["phn"]]
    if side["ltr"] is not None:
        d.letters = [t.split() for t in side["ltr"]]
    if side["wrdspan"] is not None:
        spans_path = os.path.join(data, f"{split}.wrdspan")
        d.spans = [parse_spans(s, spans_path, i + 1) for i, s in enumerate(side["wrdspan"])]
    d.voices = side["spk"]
    return d


def probe_layers(ckpt: str, data: str, k: int = 50, max_utterances: int = 200, seed: int = 1,
                 device: str | None = None, cca: bool = False, ctc_steps: int = 150,
                 state: dict | None = None, mfcc_cache: dict | None = None) -> dict:
    from ..common.checkpoint import load_hubert
    from ..features.hubert_layers import HubertLayerExtractor

    loaded = load_hubert(ckpt, state=state)
    ex = HubertLayerExtractor(loaded.model, loaded.normalize, device)
    layers = list(range(loaded.num_layers + 1))
    mfcc_cache = {} if mfcc_cache is None else mfcc_cache
    tr = _split_data(ex, data, "train", layers, max_utterances, mfcc_cache)
    ev = _split_data(ex, data, "valid", layers, max_utterances, mfcc_cache)
    for name, have in (("phones (.phn)", tr.phones and ev.phones), ("letters (.ltr)", tr.letters and ev.letters),
                       ("word spans (.wrdspan)", tr.spans and ev.spans), ("voices (.spk)", tr.voices and ev.voices)):
        if not have:
            log.warning("%s: no train/valid %s: those probes are skipped", data, name)
    in_tr, in_ev = np.concatenate(tr.inputs), np.concatenate(ev.inputs)
    if tr.phones and ev.phones:
        ph_tr = np.concatenate([np.array(p) for p in tr.phones])
        ph_ev = np.concatenate([np.array(p) for p in ev.phones])
    out = {}
    for layer in layers:
        x_tr, x_ev = np.concatenate(tr.feats[layer]), np.concatenate(ev.feats[layer])
        m = {"input_r2": ridge_r2(x_tr, in_tr, x_ev, in_ev)}
        if cca:
            m["input_cca"] = mean_cca(x_tr, in_tr, x_ev, in_ev)
        if tr.phones and ev.phones:
            # the project's one per-layer clustering protocol (fit on train, report valid), at the probe's K
            q = score_clusters(tr.feats[layer], ev.feats[layer], {"valid": ev.phones}, k, seed, LAYER_RATE,
                               criterion=False)
            m.update({"pnmi": q["pnmi"], "phone_purity": q["phone_purity"],
                      "cluster_purity": q["cluster_purity"],
                      "phone_acc": ridge_classifier_accuracy(x_tr, ph_tr, x_ev, ph_ev)})
        if tr.letters and ev.letters:
            c = ctc_letter_probe(tr.feats[layer], tr.letters, ev.feats[layer], ev.letters, steps=ctc_steps,
                                 seed=seed)
            m.update({"letter_cer": c["cer"], "letter_wer": c["wer"]})
        if tr.spans and ev.spans:
            pooled = []
            for d in (tr, ev):
                words, vecs = [], []
                for f, s in zip(d.feats[layer], d.spans):
                    w, v = pool_spans(f, s)
                    words += w
                    vecs += v
                pooled.append((np.stack(vecs), words))
            m.update(word_probes(pooled[0][0], pooled[0][1], pooled[1][0], pooled[1][1]))
        if tr.voices and ev.voices:
            acc = voice_accuracy(np.stack([u.mean(0) for u in tr.feats[layer]]), tr.voices,
                                 np.stack([u.mean(0) for u in ev.feats[layer]]), ev.voices)
            if not np.isnan(acc):  # NaN: no valid voice spoke twice, nothing to score
                m["voice_acc"] = acc
        out[layer] = {name: float(m[name]) for name in METRICS if name in m}
    return {"checkpoint": ckpt, "updates": loaded.num_updates, "layers": out,
            "autoencoder_index": autoencoder_index(out)}


def voice_accuracy(pool_tr: np.ndarray, voices_tr: list[str], pool_ev: np.ndarray, voices_ev: list[str]) -> float:
    """Ridge voice classifier on mean-pooled utterances. When valid's voices all speak in train, fit
    on train and score valid; when they are new voices (voice-disjoint splits, as ``study-corpus``
    makes), a train-fit classifier cannot name them, so fit on every other utterance of each valid
    voice and score the rest."""
    if set(voices_ev) <= set(voices_tr):
        return ridge_classifier_accuracy(pool_tr, np.array(voices_tr), pool_ev, np.array(voices_ev))
    count: dict[str, int] = {}
    fit = []
    for v in voices_ev:
        count[v] = count.get(v, 0) + 1
        fit.append(count[v] % 2 == 1)
    fit = np.array(fit)
    if fit.all():
        return float("nan")  # one utterance per voice: nothing to score
    labels = np.array(voices_ev)
    return ridge_classifier_accuracy(pool_ev[fit], labels[fit], pool_ev[~fit], labels[~fit])


def probe_checkpoints(paths: list[str], data: str, **kwargs) -> list[dict]:
    """Probe files and checkpoint directories. Within a run (a directory, or files of one directory)
    checkpoints are ordered by updates, one per update count (``checkpoint_last`` repeats an interval
    checkpoint); each result carries ``run``, ``updates`` and ``step`` (updates counted from the
    first run's start, runs end to end in the order given)."""
    from ..common.checkpoint import checkpoint_runs, load_state, run_label, state_updates

    results, offset, mfcc_cache = [], 0, {}
    for run, files in checkpoint_runs(paths):
        seen: set[int] = set()
        run_results = []
        for f in files:
            state = load_state(f)
            if state_updates(state) in seen:
                continue
            seen.add(state_updates(state))
            r = probe_layers(f, data, state=state, mfcc_cache=mfcc_cache, **kwargs)
            del state
            r["run"] = run_label(run)
            run_results.append(r)
        run_results.sort(key=lambda r: r["updates"])
        for r in run_results:
            r["step"] = offset + r["updates"]
        offset += max(r["updates"] for r in run_results)
        results += run_results
    return results


def autoencoder_index(per_layer: dict) -> float:
    """How far the top layer falls back toward the input: (best phone accuracy over layers - top
    layer's) + (top layer's input R^2 - lowest input R^2 over transformer layers). 0 when the top
    layer is the most phonetic and the least input-like; larger = more autoencoder-like. Without
    phone labels, the letter CER stands in for phone accuracy (as 1 - CER)."""
    layers = sorted(per_layer)
    top = layers[-1]

    def content(layer):
        m = per_layer[layer]
        return m["phone_acc"] if "phone_acc" in m else 1 - m.get("letter_cer", 1.0)

    best = max(content(layer) for layer in layers)
    min_r2 = min(per_layer[layer]["input_r2"] for layer in layers if layer > 0) if top > 0 else 0.0
    return float((best - content(top)) + (per_layer[top]["input_r2"] - min_r2))


def present_metrics(results: list[dict]) -> tuple[str, ...]:
    have = {name for r in results for m in r["layers"].values() for name in m}
    return tuple(name for name in METRICS if name in have)


def write_probe_results(results: list[dict], out_dir: str) -> tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    js = os.path.join(out_dir, "probe.json")
    write_text_atomic(js, json.dumps(results, indent=1) + "\n")
    csv_path = os.path.join(out_dir, "probe.csv")
    metrics = present_metrics(results)
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["checkpoint", "run", "updates", "step", "layer", *metrics])
        for r in results:
            for layer, m in sorted(r["layers"].items(), key=lambda kv: int(kv[0])):
                w.writerow([r["checkpoint"], r.get("run", ""), r.get("updates", ""), r.get("step", ""), layer,
                            *[f"{m[k]:.6f}" if k in m else "" for k in metrics]])
    return js, csv_path
