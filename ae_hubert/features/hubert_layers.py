"""Hidden states of a HuBERT model, batched, identical to one-utterance-at-a-time extraction.

Batching raw audio with zero padding changes the features of Base-style models: their first
conv layer normalises with GroupNorm over time, so padding shifts the statistics. Here that one
layer runs per utterance on its true length; everything after it is padding-safe (conv layers
without padding only see valid samples in valid frames, the transformer masks padded frames
with the exact 50 Hz lengths). All requested layers come from one encoder pass.

Layer numbering follows fairseq's 1-based ``output_layer``: layer ``l`` is the output of
transformer block ``l``, before the final LayerNorm of ``layer_norm_first`` models, exactly what
``extract_features(output_layer=l)`` returns. Layer 0 is the input of the first block's
positional stage: the projected CNN features.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def n_frames(nsamples: int, conv_layers: Sequence[tuple[int, int, int]]) -> int:
    """Output length of fairseq's conv feature extractor for ``nsamples`` input samples."""
    n = nsamples
    for _, k, s in conv_layers:
        n = (n - k) // s + 1
    return max(n, 0)


class HubertLayerExtractor:
    def __init__(self, model: torch.nn.Module, normalize: bool = False, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.normalize = normalize
        fe = self.model.feature_extractor
        self.conv_spec = [(layer[0].out_channels, layer[0].kernel_size[0], layer[0].stride[0])
                          for layer in fe.conv_layers]
        # GroupNorm over time in the first layer (extractor_mode "default") needs true lengths.
        self.per_utterance_first_conv = any(isinstance(m, torch.nn.GroupNorm) for m in fe.conv_layers[0].modules())
        self.num_layers = len(self.model.encoder.layers)
        self.dtype = next(self.model.parameters()).dtype  # fp16/bf16 models get waveforms of their dtype

    def frames(self, nsamples: int) -> int:
        return n_frames(nsamples, self.conv_spec)

    def _check_layers(self, layers: Sequence[int]) -> None:
        for layer in layers:
            if not 0 <= layer <= self.num_layers:
                raise ValueError(f"layer {layer} out of range: this model has layers 0..{self.num_layers}")

    @torch.inference_mode()
    def __call__(self, wavs: Sequence[np.ndarray], layers: Sequence[int]) -> list[dict[int, np.ndarray]]:
        """For each waveform, ``{layer: (frames, dim) float32}``."""
        self._check_layers(layers)
        model = self.model
        fe = model.feature_extractor
        dev = self.device
        lengths = [len(w) for w in wavs]
        tensors = []
        for w in wavs:
            x = torch.as_tensor(np.asarray(w, dtype=np.float32), device=dev)
            if self.normalize:
                x = F.layer_norm(x, x.shape)
            tensors.append(x.to(self.dtype))
        if self.per_utterance_first_conv:
            firsts = [fe.conv_layers[0](x.view(1, 1, -1))[0] for x in tensors]
            t_max = max(f.shape[-1] for f in firsts)
            x = torch.stack([F.pad(f, (0, t_max - f.shape[-1])) for f in firsts])
            rest = fe.conv_layers[1:]
        else:
            x = torch.stack([F.pad(t, (0, max(lengths) - len(t))) for t in tensors]).unsqueeze(1)
            rest = fe.conv_layers
        for conv in rest:
            x = conv(x)
        x = x.transpose(1, 2)  # B x T x C
        x = model.layer_norm(x)
        if model.post_extract_proj is not None:
            x = model.post_extract_proj(x)
        nfr = [self.frames(n) for n in lengths]
        t = x.shape[1]
        padding_mask = torch.arange(t, device=dev)[None, :] >= torch.tensor(nfr, device=dev)[:, None]
        if not padding_mask.any():
            padding_mask = None  # same result, and the attention takes its faster unmasked path
        wanted = sorted(set(layers))
        hidden = {}
        if 0 in wanted:
            hidden[0] = x
        top = max(wanted)
        if top > 0:
            _, layer_results = model.encoder.extract_features(x, padding_mask=padding_mask, tgt_layer=top - 1)
            for layer in wanted:
                if layer > 0:
                    hidden[layer] = layer_results[layer - 1][0].transpose(0, 1)
        out = []
        for b, n in enumerate(nfr):
            out.append({layer: hidden[layer][b, :n].float().cpu().numpy() for layer in layers})
        return out


def split_hidden_states(extractor: HubertLayerExtractor, tsv_dir: str, split: str, layers: Sequence[int],
                        max_utterances: int, batch: int = 8):
    """Yield ``(waveform, {layer: feats})`` for the first ``max_utterances`` of ``{split}.tsv``."""
    import os

    from ..common.audio import check_headers, read_entry
    from ..common.errors import AeHubertError
    from ..common.manifest import read_manifest

    entries = read_manifest(os.path.join(tsv_dir, f"{split}.tsv")).entries[:max_utterances]
    check_headers(entries)
    for i in range(0, len(entries), batch):
        wavs = [read_entry(e) for e in entries[i:i + batch]]
        outs = extractor(wavs, layers)
        for e, out in zip(entries[i:i + batch], outs):
            bad = [layer for layer, x in out.items() if not np.isfinite(x).all()]
            if bad:
                raise AeHubertError(f"{e.where}: {e.relpath}: layers {bad} of the model give NaN or inf "
                                    "(are the checkpoint's weights finite?)")
        yield from zip(wavs, outs)
