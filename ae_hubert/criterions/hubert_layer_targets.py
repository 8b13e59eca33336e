"""``hubert_layer_targets`` criterion: stock HuBERT loss, weighted per prediction head, logged per layer.

For a model without extra heads (stock ``hubert``, or ``hubert_layer_targets`` with empty ``layer_targets``)
it is exactly the stock ``hubert`` criterion. With heads (``model.layer_targets``) the stock code
computes the per-head losses, each head's loss is scaled by its weight, and the logged keys are
renamed from list positions (``loss_m_0``) to heads (``loss_m_L6s0``, ``correct_m_L6s0``, ...), so
fairseq's log and tensorboard show every layer's prediction loss and accuracy. The reconstruction
head's loss (``model.reconstruct_layer``) is added at its weight and logged as ``loss_recon`` (reduced
like fairseq's other ``loss_*`` keys: divided by fairseq's sample size, the masked-frame count when
``pred_nomask_weight`` is 0, and by ln 2; with ``model.reconstruct_frames: all`` its sum runs over
every frame, so it weighs about real/masked frames more than with ``masked``).
"""

import torch.nn.functional as F
from fairseq.criterions import register_criterion
from fairseq.criterions.hubert_criterion import HubertCriterion, HubertCriterionConfig

from ..common.wrapped import unwrap

PER_LIST_KEYS = ("loss_m_", "loss_u_", "correct_m_", "count_m_", "correct_u_", "count_u_")


class _Computed:
    """Hands an already computed net output to the stock criterion code (the model runs once)."""

    def __init__(self, model, net_output):
        self._model, self._out = model, net_output

    def __call__(self, **kwargs):
        return self._out

    def __getattr__(self, name):
        return getattr(self._model, name)


@register_criterion("hubert_layer_targets", dataclass=HubertCriterionConfig)
class HubertLayerTargetsCriterion(HubertCriterion):
    def forward(self, model, sample, reduce=True, log_pred=False):
        if not getattr(unwrap(model), "heads", None):
            return super().forward(model, sample, reduce, log_pred)
        net_output = model(target_list=sample["target_list"], **sample["net_input"])
        loss, sample_size, log = super().forward(_Computed(model, net_output), sample, reduce, log_pred)
        reduction = "sum" if reduce else "none"
        for masked, part_weight in ((True, self.pred_masked_weight), (False, self.pred_nomask_weight)):
            if part_weight <= 0:
                continue
            logits = model.get_logits(net_output, masked)
            targets = model.get_targets(net_output, masked)
            for w, lp, t in zip(net_output["head_weights"], logits, targets):
                if w != 1.0:  # the stock sum counted every head once
                    loss = loss + part_weight * (w - 1.0) * F.cross_entropy(lp, t, reduction=reduction)
        for i, name in enumerate(net_output["head_names"]):
            for prefix in PER_LIST_KEYS:
                if f"{prefix}{i}" in log:
                    log[f"{prefix}{name}"] = log.pop(f"{prefix}{i}")
        if "reconstruct_loss" in net_output:  # the autoencoder head (model.reconstruct_layer)
            recon = net_output["reconstruct_loss"]
            loss = loss + net_output["reconstruct_weight"] * recon
            log["loss_recon"] = recon.item()  # reduced like the other losses (by the sample size)
        log["loss"] = loss.item() if reduce else loss
        return loss, sample_size, log


@register_criterion("ae_hubert", dataclass=HubertCriterionConfig)
class AeHubertCriterion(HubertLayerTargetsCriterion):
    """The criterion's name before it said what it is: configs that name it still train."""
