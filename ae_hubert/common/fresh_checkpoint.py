"""Write a freshly initialised HuBERT checkpoint in stock fairseq format (``hubert`` model,
``hubert_pretraining`` task, full config, label dictionaries in ``task_state``).

Nothing can be downloaded here, so benchmarks and tests that need the exact Base/Large
architecture of the released checkpoints build one locally with this.
"""
from __future__ import annotations

import torch

ARCHS = {
    # fairseq examples/hubert/config/pretrain/hubert_base_librispeech.yaml
    "base": dict(encoder_layers=12, encoder_embed_dim=768, encoder_ffn_embed_dim=3072,
                 encoder_attention_heads=12, final_dim=256, untie_final_proj=True, extractor_mode="default",
                 layer_norm_first=False, conv_feature_layers="[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"),
    # hubert_large_librivox.yaml (normalize: true in its task)
    "large": dict(encoder_layers=24, encoder_embed_dim=1024, encoder_ffn_embed_dim=4096,
                  encoder_attention_heads=16, final_dim=768, untie_final_proj=True, extractor_mode="layer_norm",
                  layer_norm_first=True, conv_feature_layers="[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"),
    # ae_hubert/config/pretrain/toy_cpu.yaml
    "toy": dict(encoder_layers=6, encoder_embed_dim=128, encoder_ffn_embed_dim=256, encoder_attention_heads=4,
                final_dim=64, untie_final_proj=True, extractor_mode="default", layer_norm_first=False,
                conv_pos=32, conv_pos_groups=8,
                conv_feature_layers="[(64,10,5)] + [(64,3,2)] * 4 + [(64,2,2)] * 2"),
}


def save_fresh_hubert(path: str, arch: str = "base", n_classes: int = 500, label_rate: float = 50,
                      seed: int = 0) -> str:
    from fairseq.data import Dictionary
    from fairseq.dataclass.configs import FairseqConfig
    from fairseq.models.hubert import HubertConfig, HubertModel
    from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig
    from omegaconf import OmegaConf

    spec = dict(ARCHS[arch])
    normalize = arch == "large"
    task_cfg = HubertPretrainingConfig(data="/nonexistent", labels=["km"], label_rate=label_rate,
                                       normalize=normalize)
    task_cfg._name = "hubert_pretraining"
    model_cfg = HubertConfig(label_rate=label_rate, **spec)
    model_cfg._name = "hubert"
    d = Dictionary()
    for i in range(n_classes):
        d.add_symbol(str(i))
    torch.manual_seed(seed)
    model = HubertModel(model_cfg, task_cfg, [d])
    cfg = OmegaConf.structured(FairseqConfig())
    cfg.task = OmegaConf.structured(task_cfg)
    cfg.model = OmegaConf.structured(model_cfg)
    save_checkpoint(path, OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), model.state_dict(), [d])
    return path


def save_checkpoint(path: str, cfg: dict, model_state: dict, dictionaries: list) -> str:
    """A checkpoint laid out as fairseq's trainer writes one (no optimizer state), atomically."""
    from .atomic import atomic_path

    state = {
        "args": None,
        "cfg": cfg,
        "model": model_state,
        "criterion": None,
        "optimizer_history": [{"criterion_name": "HubertCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": None}, "num_updates": 0}],
        "task_state": {"dictionaries": dictionaries},
        "extra_state": {"previous_training_time": 0.0},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path
