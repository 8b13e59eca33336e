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

``reconstruct_layer`` (1-based; 0 = off) adds a regression head on that layer that predicts the
input itself: the utterance's 39-d MFCC frames at the layer's rate (``features/mfcc.py``, the
probes' input target), normalised per utterance; at the masked frames (``reconstruct_frames:
masked``, a denoising autoencoder that must infer them from context, as TERA/Mockingjay) or at
every frame (``all``: a literal autoencoder, which at an unmasked frame copies what it sees). A
model whose top layer does this, with the cluster targets moved to a middle layer
(``layer_targets``), is input-like at the top by construction: the positive control that the probes
must see as an autoencoder turn. Its loss (mean squared error per frame, averaged over the 39
dimensions, summed over the scored frames like the prediction losses) is logged as ``loss_recon``.
Checkpoints export to stock names with ``ae-hubert export-stock`` (extra heads dropped).
"""

from dataclasses import dataclass, field
from typing import List, Tuple

import torch
from fairseq.dataclass import ChoiceEnum
from fairseq.models import register_model
from fairseq.models.hubert import HubertConfig, HubertModel

from ..common.errors import AeHubertError
from ..features.mfcc import DIM as MFCC_DIM, at_layer_frames, mfcc

RECONSTRUCT_FRAMES = ChoiceEnum(["masked", "all"])


@dataclass
class HubertLayerTargetsConfig(HubertConfig):
    layer_targets: str = field(
        default="", metadata={"help": "prediction heads LAYER:SET:WEIGHT,...; empty = stock HuBERT (top layer "
                                      "predicts every label set)"})
    reconstruct_layer: int = field(
        default=0, metadata={"help": "1-based layer that also regresses the input's MFCC frames (an autoencoder "
                                     "by construction; reconstruct_frames says which); 0 = off"})
    reconstruct_weight: float = field(default=1.0, metadata={"help": "weight of the reconstruction loss"})
    reconstruct_frames: RECONSTRUCT_FRAMES = field(
        default="masked", metadata={"help": "frames the reconstruction is scored on: the masked ones (inferred from "
                                            "context) or all (a literal autoencoder)"})


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
        self.reconstruct_layer = int(cfg.reconstruct_layer)
        self.reconstruct_weight = float(cfg.reconstruct_weight)
        self.reconstruct_all = str(getattr(cfg, "reconstruct_frames", "masked")) == "all"
        if not 0 <= self.reconstruct_layer <= self.top:
            raise AeHubertError(f"model.reconstruct_layer: {self.reconstruct_layer} not in 0..{self.top} (0 = off)")
        if self.reconstruct_layer and not self.heads:  # the stock heads, made explicit for the custom path
            self.heads = [(self.top, s, 1.0) for s in range(len(dictionaries))]
        self.reconstruct_head = (torch.nn.Linear(cfg.encoder_embed_dim, MFCC_DIM) if self.reconstruct_layer
                                 else None)
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
        wanted = lower | ({self.reconstruct_layer} if self.reconstruct_layer else set())
        states, hooks = self._states_after(wanted) if wanted else ({}, [])
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
        if self.reconstruct_layer:
            x = states[self.reconstruct_layer].transpose(0, 1)[:, : pad.shape[1]]
            target = self._input_frames(source, padding_mask, pad).to(x.dtype)
            scored = ~pad if self.reconstruct_all else masked
            err = (self.reconstruct_head(x[scored]).float() - target[scored].float()) ** 2
            result.update(reconstruct_loss=err.mean(1).sum(), reconstruct_frames=int(scored.sum()),
                          reconstruct_weight=self.reconstruct_weight)
        self._mask_indices = self._targets = None
        return result

    @staticmethod
    def _input_frames(source, sample_pad, frame_pad) -> torch.Tensor:
        """B x T x 39: each utterance's MFCC frames at the layer's rate (its real samples only),
        normalised per utterance and dimension; zeros at padded frames (never scored)."""
        out = torch.zeros(*frame_pad.shape, MFCC_DIM, device=source.device)
        wavs = source.detach().float().cpu().numpy()
        for b in range(len(wavs)):
            n = wavs.shape[1] - (int(sample_pad[b].sum()) if sample_pad is not None else 0)
            frames = int((~frame_pad[b]).sum())
            feats = at_layer_frames(mfcc(wavs[b, :n]), frames)
            if len(feats) < frames:  # the last layer frame can lack its MFCC frame: repeat the last one
                feats = feats[list(range(len(feats))) + [len(feats) - 1] * (frames - len(feats))]
            feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-5)
            out[b, :frames] = torch.from_numpy(feats).to(source.device)
        return out

    def remove_pretraining_modules(self):
        super().remove_pretraining_modules()
        self.layer_heads = None
        self.reconstruct_head = None


@register_model("ae_hubert", dataclass=HubertLayerTargetsConfig)
class AeHubertModel(HubertLayerTargetsModel):
    """The model's name before it said what the model is: configs and checkpoints that name it still load."""
