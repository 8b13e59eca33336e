"""Per-layer probes at every validation, on a fixed small probe set (off unless asked for).

At each validation the model's hidden states of every layer (one encoder pass, eval mode) on the
first ``n`` utterances of a split are probed with closed-form ridge solutions: utterances 0, 2, 4,
... fit, 1, 3, 5, ... evaluate. Logged per layer ``l``:
- ``probe_input_r2_L{l}``: reconstruction of the input MFCC frames (the autoencoder side);
- ``probe_phone_acc_L{l}``: frame phone accuracy (needs ``{split}.{phone_labels}``, 50 Hz);
- ``probe_seconds``: what the probe cost at this validation.
The cost is bounded by ``n``: one forward pass over ``n`` utterances plus one ridge solve per layer.
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np

from ..analysis.linear_probes import ridge_classifier_accuracy, ridge_r2
from ..common.audio import read_entry
from ..common.errors import located
from ..common.manifest import read_manifest
from ..common.wrapped import unwrap
from ..features.mfcc import at_layer_frames, mfcc

log = logging.getLogger(__name__)


class ValidationProbe:
    def __init__(self, data: str, split: str, n: int, phone_labels: str, normalize: bool):
        manifest = os.path.join(data, f"{split}.tsv")
        entries = read_manifest(manifest).entries[:n]
        if len(entries) < 4:
            raise located(manifest, f"the validation probe needs at least 4 utterances, found {len(entries)}")
        self.wavs = [read_entry(e) for e in entries]
        self.inputs = [mfcc(w) for w in self.wavs]
        self.normalize = normalize
        self.phones = None
        path = os.path.join(data, f"{split}.{phone_labels}")
        if os.path.isfile(path):
            with open(path) as f:
                self.phones = [line.split() for _, line in zip(range(len(entries)), f)]
            if len(self.phones) < len(entries):
                raise located(path, f"{len(self.phones)} lines, fewer than the {len(entries)} probe utterances")
        else:
            log.warning("%s not found: the validation probe logs input R^2 only", path)

    def __call__(self, model, batch: int = 8) -> dict[str, float]:
        from ..features.hubert_layers import HubertLayerExtractor

        t0 = time.perf_counter()
        model = unwrap(model)
        model = getattr(getattr(model, "w2v_encoder", None), "w2v_model", model)  # fine-tuning: its encoder
        was_training = model.training
        ex = HubertLayerExtractor(model, self.normalize, str(next(model.parameters()).device))
        layers = list(range(ex.num_layers + 1))
        states = []
        for i in range(0, len(self.wavs), batch):
            states += ex(self.wavs[i:i + batch], layers)
        model.train(was_training)
        out = {}
        for layer in layers:
            xs, ins, phs = [[], []], [[], []], [[], []]
            for u, st in enumerate(states):
                n = len(st[layer])
                mf = at_layer_frames(self.inputs[u], n)
                n = min(n, len(mf), len(self.phones[u]) if self.phones else n)
                xs[u % 2].append(st[layer][:n])
                ins[u % 2].append(mf[:n])
                if self.phones:
                    phs[u % 2].append(np.array(self.phones[u][:n]))
            x_fit, x_ev = np.concatenate(xs[0]), np.concatenate(xs[1])
            out[f"probe_input_r2_L{layer}"] = ridge_r2(x_fit, np.concatenate(ins[0]), x_ev, np.concatenate(ins[1]))
            if self.phones:
                out[f"probe_phone_acc_L{layer}"] = ridge_classifier_accuracy(
                    x_fit, np.concatenate(phs[0]), x_ev, np.concatenate(phs[1]))
        out["probe_seconds"] = time.perf_counter() - t0
        return out
