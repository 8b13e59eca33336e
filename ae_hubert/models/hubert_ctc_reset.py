"""``hubert_ctc_reset``: HuBERT CTC fine-tuning with the top layers reset, loading checked key by key.

What it changes against stock ``hubert_ctc`` (which keeps its name and behaviour):
- ``autoregressive`` exists (false): stock ``HubertEncoder`` reads it but ``HubertCtcConfig`` lacks it,
  so stock CTC fine-tuning fails on this fairseq;
- ``reset_top_layers: k`` with ``reset_mode``: ``reinit`` gives the top k blocks a fresh init
  (layer_reset.py), ``drop`` removes them (the stored ``w2v_args`` then describe the smaller model);
- the pretrained weights load strictly: a missing or unexpected key is an error naming the file and
  the keys (stock loads with ``strict=False`` and ignores them);
- ``freeze_finetune_updates``: for that many updates the *kept pretrained* parameters get no
  update, while re-initialised layers and the CTC head train from the start (stock freezes
  everything, which would leave re-initialised layers at random values). With nothing
  re-initialised it is stock's behaviour (no_grad for the whole encoder);
- the pretraining label embeddings are dropped, so the fine-tuned checkpoint depends neither on the
  pretraining dictionaries nor on the ``w2v_path`` file (its config carries ``w2v_args``).
"""

import contextlib
import logging
from dataclasses import dataclass, field

import torch
from fairseq import tasks
from fairseq.data import Dictionary
from fairseq.dataclass import ChoiceEnum
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.models import FairseqEncoder, register_model
from fairseq.models.hubert.hubert_asr import HubertCtc, HubertCtcConfig, HubertEncoder, Linear

from ..common.errors import AeHubertError, located
from .layer_reset import reset_top_layers

log = logging.getLogger(__name__)


@dataclass
class HubertCtcResetConfig(HubertCtcConfig):
    autoregressive: bool = field(default=False, metadata={"help": "always false for CTC (read by stock code)"})
    reset_top_layers: int = field(
        default=0, metadata={"help": "re-initialise (or drop) the top k transformer layers before fine-tuning"})
    reset_mode: ChoiceEnum(["reinit", "drop"]) = field(
        default="reinit", metadata={"help": "reinit: fresh init of the top k layers; drop: remove them"})


def _overrides(cfg) -> dict:
    """The fine-tuning values that replace the pretraining config's (as stock ``HubertEncoder``)."""
    return {"dropout": cfg.dropout, "activation_dropout": cfg.activation_dropout,
            "dropout_input": cfg.dropout_input, "attention_dropout": cfg.attention_dropout,
            "mask_length": cfg.mask_length, "mask_prob": cfg.mask_prob, "mask_selection": cfg.mask_selection,
            "mask_other": cfg.mask_other, "no_mask_overlap": cfg.no_mask_overlap,
            "mask_channel_length": cfg.mask_channel_length, "mask_channel_prob": cfg.mask_channel_prob,
            "mask_channel_selection": cfg.mask_channel_selection, "mask_channel_other": cfg.mask_channel_other,
            "no_mask_channel_overlap": cfg.no_mask_channel_overlap, "encoder_layerdrop": cfg.layerdrop,
            "feature_grad_mult": cfg.feature_grad_mult}


class HubertResetEncoder(HubertEncoder):
    def __init__(self, cfg: HubertCtcResetConfig, task):  # noqa: super().__init__ is FairseqEncoder's on purpose
        from ..common.checkpoint import load_state

        self.apply_mask = cfg.apply_mask
        state = None
        if cfg.w2v_args is None:  # first build: from the pretrained checkpoint
            state = load_state(cfg.w2v_path, _overrides(cfg))
            cfg.w2v_args = state["cfg"] if state.get("cfg") is not None else \
                convert_namespace_to_omegaconf(state["args"])
        elif not hasattr(cfg.w2v_args, "task"):
            cfg.w2v_args = convert_namespace_to_omegaconf(cfg.w2v_args)
        w2v_args = cfg.w2v_args
        if cfg.normalize != w2v_args.task.normalize:
            raise AeHubertError(f"task.normalize={cfg.normalize} but the pretrained model was trained with "
                                f"normalize={w2v_args.task.normalize} ({cfg.w2v_path}); set them equal")
        w2v_args.task.data = cfg.data
        pretrain_task = tasks.setup_task(w2v_args.task)
        if state is not None and "task_state" in state:
            pretrain_task.load_state_dict(state["task_state"])
        else:  # rebuilt from a fine-tuned checkpoint: the pretraining heads go, any dictionary builds it
            n_sets = max(1, len(w2v_args.task.get("labels") or []))
            pretrain_task.load_state_dict({"dictionaries": [Dictionary() for _ in range(n_sets)]})
        model = pretrain_task.build_model(w2v_args.model, from_checkpoint=True)
        if state is not None and not cfg.no_pretrained_weights:
            missing, unexpected = model.load_state_dict(state["model"], strict=False)
            if missing or unexpected:
                raise located(cfg.w2v_path, "pretrained weights do not match the model: missing "
                                            f"{sorted(missing)[:8]}, unexpected {sorted(unexpected)[:8]}")
            log.info("loaded all %d pretrained tensors from %s", len(state["model"]), cfg.w2v_path)
        model.remove_pretraining_modules()
        model.label_embs_concat = None  # pretraining-only; its shape depends on the pretraining K
        self.reset_layers: list[int] = []
        if state is not None and cfg.reset_top_layers:
            try:
                self.reset_layers = reset_top_layers(model, cfg.reset_top_layers, cfg.reset_mode)
            except ValueError as e:
                raise located(cfg.w2v_path, str(e)) from None
            if cfg.reset_mode == "drop":
                w2v_args.model.encoder_layers = len(model.encoder.layers)
            log.info("%s the top %d of the pretrained transformer layers", cfg.reset_mode, cfg.reset_top_layers)
        elif cfg.reset_mode == "reinit" and cfg.reset_top_layers:  # rebuilt from a fine-tuned checkpoint
            depth = len(model.encoder.layers)
            self.reset_layers = list(range(depth - cfg.reset_top_layers, depth))
        del state

        FairseqEncoder.__init__(self, pretrain_task.source_dictionary)
        self.w2v_model = model
        self.final_dropout = torch.nn.Dropout(cfg.final_dropout)
        self.freeze_finetune_updates = cfg.freeze_finetune_updates
        self.num_updates = 0
        self.proj = Linear(w2v_args.model.encoder_embed_dim, len(task.target_dictionary))
        if self.reset_layers and self.freeze_finetune_updates > 0:
            trainable = self.trainable_while_frozen()
            for name, p in self.w2v_model.named_parameters():
                if name not in trainable:
                    p.register_post_accumulate_grad_hook(self._drop_grad_while_frozen)

    def trainable_while_frozen(self) -> set[str]:
        """``w2v_model`` parameters that train during ``freeze_finetune_updates``: the re-initialised
        blocks, and the final LayerNorm of ``layer_norm_first`` models, which sits above them."""
        prefixes = tuple(f"encoder.layers.{i}." for i in self.reset_layers)
        names = {n for n, _ in self.w2v_model.named_parameters() if n.startswith(prefixes)}
        if self.w2v_model.encoder.layer_norm_first:
            names |= {n for n, _ in self.w2v_model.named_parameters() if n.startswith("encoder.layer_norm.")}
        return names

    def frozen(self) -> bool:
        return self.num_updates < self.freeze_finetune_updates

    def _drop_grad_while_frozen(self, p: torch.Tensor) -> None:
        if self.frozen():
            p.grad = None

    def forward(self, source, padding_mask, tbc=True, **kwargs):
        # stock runs the whole encoder without gradients while frozen; with re-initialised layers the
        # gradients flow and the hooks above drop them for the kept parameters
        no_grad = self.frozen() and not self.reset_layers
        with torch.no_grad() if no_grad else contextlib.ExitStack():
            x, padding_mask = self.w2v_model.extract_features(
                source=source, padding_mask=padding_mask, mask=self.apply_mask and self.training)
        if tbc:
            x = x.transpose(0, 1)
        x = self.proj(self.final_dropout(x))
        return {"encoder_out": x, "encoder_padding_mask": padding_mask, "padding_mask": padding_mask}


@register_model("hubert_ctc_reset", dataclass=HubertCtcResetConfig)
class HubertCtcReset(HubertCtc):
    @classmethod
    def build_model(cls, cfg: HubertCtcResetConfig, task):
        from .. import compat

        compat.exact_training(f"model {getattr(cfg, '_name', None) or cls.__name__}")
        return cls(cfg, HubertResetEncoder(cfg, task))


@register_model("ae_hubert_ctc", dataclass=HubertCtcResetConfig)
class AeHubertCtc(HubertCtcReset):
    """The model's name before it said what the model is: configs and checkpoints that name it still load."""
