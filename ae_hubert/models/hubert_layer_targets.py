"""``hubert_layer_targets``: HuBERT pretraining with masked prediction from several layers and per-layer targets.

``layer_targets`` lists prediction heads as ``LAYER:SET:WEIGHT`` items (1-based transformer layer,
0-based index into ``task.labels``, loss weight), e.g. ``12:1:1.0,6:0:0.5``: the top layer predicts
label set 1 (say, layer-9 clusters) and layer 6 predicts set 0 (say, MFCC clusters) at half weight,
so the low-level targets are pulled down to a middle layer and the top layers are not asked to
rebuild input-like targets. Heads on the top layer are stock HuBERT's (``final_proj``, its chunk
for that set); every other head gets its own projection to ``final_dim``, scored against the same
label embeddings. Empty ``layer_targets`` (the default) is exactly stock ``hubert``.

Per-head losses are logged by the ``hubert_layer_targets`` criterion as ``loss_m_L{layer}s{set}``. A
dropped layer (LayerDrop) hands on its input unchanged, so a head on it reads that state.
Checkpoints export to stock names with ``ae-hubert export-stock`` (extra heads dropped).
"""

from dataclasses import dataclass, field
from typing import List, Tuple

import torch
from fairseq.models import register_model
from fairseq.models.hubert import HubertConfig, HubertModel

from ..common.errors import AeHubertError


@dataclass
class HubertLayerTargetsConfig(HubertConfig):
    layer_targets: str = field(
        default="", metadata={"help": "prediction heads LAYER:SET:WEIGHT,...; empty = stock HuBERT (top layer "
                                      "predicts every label set)"})


def parse_layer_targets(spec: str, n_layers: int, n_sets: int) -> List[Tuple[int, int, float]]:
    heads = []
    for item in [s for s in spec.replace(" ", "").split(",") if s]:
        parts = item.split(":")
        try:
            layer, label_set, weight = int(parts[0]), int(parts[1]), float(parts[2]) if len(parts) > 2 else 1.0
            if len(parts) not in (2, 3):
                raise ValueError
        except (ValueError, IndexError):
            raise AeHubertError(f"model.layer_targets: bad head {item!r} (want LAYER:SET[:WEIGHT])") from None
        if not 1 <= layer <= n_layers:
            raise AeHubertError(f"model.layer_targets: layer {layer} not in 1..{n_layers}")
        if not 0 <= label_set < n_sets:
            raise AeHubertError(f"model.layer_targets: label set {label_set} not in 0..{n_sets - 1} "
                                f"(task.labels has {n_sets})")
        if (layer, label_set) in [(h[0], h[1]) for h in heads]:
            raise AeHubertError(f"model.layer_targets: head {layer}:{label_set} given twice")
        heads.append((layer, label_set, weight))
    return heads


def head_name(layer: int, label_set: int) -> str:
    return f"L{layer}s{label_set}"


@register_model("hubert_layer_targets", dataclass=HubertLayerTargetsConfig)
class HubertLayerTargetsModel(HubertModel):
    def __init__(self, cfg: HubertLayerTargetsConfig, task_cfg, dictionaries) -> None:
        super().__init__(cfg, task_cfg, dictionaries)
        self.heads = parse_layer_targets(cfg.layer_targets, cfg.encoder_layers, len(dictionaries))
        self.top = cfg.encoder_layers
        final_dim = cfg.final_dim if cfg.final_dim > 0 else cfg.encoder_embed_dim
        self.layer_heads = torch.nn.ModuleDict({
            head_name(layer, s): torch.nn.Linear(cfg.encoder_embed_dim, final_dim)
            for layer, s, _ in self.heads if layer != self.top})
        self._mask_indices = None
        self._targets = None

    @classmethod
    def build_model(cls, cfg: HubertLayerTargetsConfig, task):
        from .. import compat

        compat.exact_training(f"model {getattr(cfg, '_name', None) or cls.__name__}")
        return cls(cfg, task.cfg, task.dictionaries)

    # the stock forward computes these internally; keep them for the extra heads
    def apply_mask(self, x, padding_mask, target_list):
        x, mask_indices = super().apply_mask(x, padding_mask, target_list)
        self._mask_indices = mask_indices
        return x, mask_indices

    def forward_targets(self, features, target_list):
        features, target_list = super().forward_targets(features, target_list)
        self._targets = target_list
        return features, target_list

    def _states_after(self, layers: set) -> Tuple[dict, list]:
        """Hooks that record the hidden state after each wanted layer: the input of the next layer
        that runs (a LayerDrop-skipped layer passes its input on)."""
        states, hooks = {}, []
        for i in range(min(layers), self.top):  # 0-based block i receives the state after layer i
            def pre(module, args, i=i):
                for layer in layers:
                    if layer not in states and layer <= i:
                        states[layer] = args[0]
            hooks.append(self.encoder.layers[i].register_forward_pre_hook(pre))

        def after_all(module, args, out):  # no block at or above a wanted layer ran: the encoder output
            for layer in layers:
                states.setdefault(layer, out[0].transpose(0, 1))
        hooks.append(self.encoder.register_forward_hook(after_all))
        return states, hooks

    def _pred(self, proj_x, target, label_embs):
        y = torch.index_select(label_embs, 0, target.long())
        negs = label_embs.unsqueeze(1).expand(-1, proj_x.size(0), -1)
        if self.target_glu:
            y, negs = self.target_glu(y), self.target_glu(negs)
        return self.compute_nce(proj_x, y, negs)

    def forward(self, source, target_list=None, padding_mask=None, mask=True, features_only=False,
                output_layer=None):
        if not self.heads or features_only or target_list is None:
            return super().forward(source, target_list, padding_mask, mask, features_only, output_layer)
        lower = {layer for layer, _, _ in self.heads if layer != self.top}
        states, hooks = self._states_after(lower) if lower else ({}, [])
        try:
            result = super().forward(source, target_list, padding_mask, mask, features_only, output_layer)
        finally:
            for h in hooks:
                h.remove()
        pad = result["padding_mask"]
        masked = torch.logical_and(~pad, self._mask_indices)
        unmasked = torch.logical_and(~pad, ~self._mask_indices)
        label_embs = self.label_embs_concat.split(self.num_classes, 0)
        logit_m, logit_u = [], []
        for layer, s, _ in self.heads:
            if layer == self.top:
                logit_m.append(result["logit_m_list"][s])
                logit_u.append(result["logit_u_list"][s])
                continue
            x = states[layer].transpose(0, 1)[:, : pad.shape[1]]  # T x B x C (padded to a multiple) -> B x T x C
            proj = self.layer_heads[head_name(layer, s)]
            t = self._targets[s]
            logit_m.append(None if self.skip_masked else self._pred(proj(x[masked]), t[masked], label_embs[s]))
            logit_u.append(None if self.skip_nomask else self._pred(proj(x[unmasked]), t[unmasked], label_embs[s]))
        result.update(logit_m_list=logit_m, logit_u_list=logit_u,
                      head_names=[head_name(layer, s) for layer, s, _ in self.heads],
                      head_weights=[w for _, _, w in self.heads])
        self._mask_indices = self._targets = None
        return result

    def remove_pretraining_modules(self):
        super().remove_pretraining_modules()
        self.layer_heads = None


@register_model("ae_hubert", dataclass=HubertLayerTargetsConfig)
class AeHubertModel(HubertLayerTargetsModel):
    """The model's name before it said what the model is: configs and checkpoints that name it still load."""
