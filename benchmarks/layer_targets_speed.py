"""Training speed of the ``hubert_layer_targets`` model + criterion against stock ``hubert``, same batches.

Variants, built from the toy (or Base) pretraining config with the same seed and trained with Adam
on the same fixed batches of the synthetic corpus, interleaved in rounds so drift hits all alike:
  stock       model hubert, criterion hubert
  ae off      model ae_hubert, criterion ae_hubert, empty layer_targets (must be >= 0.95x stock)
  ae 2 heads  layer_targets "TOP:0:1,MID:0:0.5" (a second head on the middle layer), for information
Prints updates/s and the ratio to stock.

Usage: python benchmarks/layer_targets_speed.py [--arch toy|base] [--steps 20] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from omegaconf import OmegaConf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import ae_hubert  # noqa: E402

ae_hubert.register()  # the plugin's model and criterion, by name
from ae_hubert.clustering.kmeans import learn_kmeans  # noqa: E402
from ae_hubert.clustering.label import dump_labels  # noqa: E402
from ae_hubert.corpus.toy_corpus import build  # noqa: E402
from ae_hubert.features.dump import dump_mfcc  # noqa: E402


def prepare(work: str) -> tuple[str, str]:
    corpus, feat, lab = (os.path.join(work, d) for d in ("corpus", "feat", "lab"))
    if not os.path.isfile(os.path.join(lab, "dict.km.txt")):
        build(corpus, utterances=80, seed=0)
        for split in ("train", "valid"):
            dump_mfcc(corpus, split, feat)
        learn_kmeans(feat, "train", 1, 50, os.path.join(work, "km.bin"), seed=0)
        for split in ("train", "valid"):
            dump_labels(feat, split, 1, os.path.join(work, "km.bin"), lab)
    return corpus, lab


def variant(arch: str, corpus: str, lab: str, model_name: str, criterion_name: str, layer_targets: str | None):
    from fairseq import criterions, tasks

    cfg = OmegaConf.load(os.path.join(REPO, "ae_hubert", "config", "pretrain", "toy_cpu.yaml"))
    OmegaConf.set_struct(cfg, False)
    cfg.task.update(data=corpus, label_dir=lab, label_rate=100)
    cfg.model._name = model_name
    if arch == "base":
        for k in ("conv_feature_layers", "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
                  "encoder_attention_heads", "conv_pos", "conv_pos_groups", "final_dim"):
            cfg.model.pop(k)  # HubertConfig's defaults are the Base architecture
    if layer_targets is not None:
        cfg.model.layer_targets = layer_targets
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    torch.manual_seed(0)
    model = task.build_model(cfg.model)
    crit = criterions.build_criterion(OmegaConf.create({"_name": criterion_name, "pred_masked_weight": 1.0,
                                                        "pred_nomask_weight": 0.0, "loss_weights": [10.0]}), task)
    ds = task.dataset("train")
    batches = [ds.collater([ds[i] for i in range(j, j + 8)]) for j in range(0, 64, 8)]
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    return model, crit, batches, opt


def steps(v, n: int, seed: int) -> float:
    model, crit, batches, opt = v
    torch.manual_seed(seed)
    t = time.perf_counter()
    for i in range(n):
        loss, _, _ = crit(model, batches[i % len(batches)])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ae_hubert_bench_speed"))
    p.add_argument("--arch", default="toy", choices=["toy", "base"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    corpus, lab = prepare(a.work)
    top, mid = (6, 3) if a.arch == "toy" else (12, 6)
    variants = {"stock hubert": variant(a.arch, corpus, lab, "hubert", "hubert", None),
                "hubert_layer_targets, options off": variant(a.arch, corpus, lab, "hubert_layer_targets", "hubert_layer_targets", ""),
                f"hubert_layer_targets, heads {top}:0:1,{mid}:0:0.5": variant(a.arch, corpus, lab, "hubert_layer_targets", "hubert_layer_targets",
                                                                    f"{top}:0:1,{mid}:0:0.5")}
    for v in variants.values():
        steps(v, 2, 0)  # warm-up
    total = {name: 0.0 for name in variants}
    for r in range(a.rounds):
        for name, v in variants.items():
            total[name] += steps(v, a.steps, r)
    n = a.steps * a.rounds
    base = n / total["stock hubert"]
    print(f"{a.arch} HuBERT, batches of 8 utterances, {n} updates per variant, {torch.get_num_threads()} threads")
    print(f"{'variant':34s} {'updates/s':>10s} {'x stock':>8s}")
    for name, t in total.items():
        print(f"{name:34s} {n / t:10.3f} {n / t / base:8.3f}")


if __name__ == "__main__":
    main()
