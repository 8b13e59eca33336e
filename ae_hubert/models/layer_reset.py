"""Re-initialising or dropping the top transformer layers of a HuBERT encoder.

A re-initialised layer is exactly a fresh one: fairseq builds encoders with ``init_bert_params``
(normal(0, 0.02) linear and attention projections, zero biases), which leaves LayerNorms alone, so
their weights/biases go back to ones/zeros here too. Dropping removes the layers (the final
LayerNorm of ``layer_norm_first`` models stays on top of what remains).
"""
from __future__ import annotations

import torch

RESET_MODES = ("reinit", "drop")


def reinit_layer(layer: torch.nn.Module) -> None:
    from fairseq.modules.transformer_sentence_encoder import init_bert_params

    layer.apply(init_bert_params)
    for m in layer.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.reset_parameters()


def reset_top_layers(hubert: torch.nn.Module, k: int, mode: str = "reinit") -> list[int]:
    """Re-initialise (``reinit``) or remove (``drop``) the top ``k`` blocks of ``hubert.encoder``;
    returns the 0-based indices of the re-initialised blocks (empty for ``drop``)."""
    layers = hubert.encoder.layers
    depth = len(layers)
    if mode not in RESET_MODES:
        raise ValueError(f"reset_mode must be one of {RESET_MODES}, got {mode!r}")
    if not 0 <= k <= depth or (mode == "drop" and k == depth):
        raise ValueError(f"cannot {mode} {k} of the {depth} transformer layers")
    if k == 0:
        return []
    if mode == "drop":
        hubert.encoder.layers = torch.nn.ModuleList(list(layers)[: depth - k])
        return []
    for i in range(depth - k, depth):
        reinit_layer(layers[i])
    return list(range(depth - k, depth))
