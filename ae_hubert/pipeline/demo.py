"""``ae-hubert demo`` / ``make demo``: one HuBERT iteration end to end on the synthetic corpus.

corpus -> MFCC -> k-means (K=100) -> labels -> pretraining (stock fairseq-hydra-train, tiny model)
-> dump a middle layer -> k-means -> labels for iteration 2 -> a table of label quality (PNMI and
purities against the corpus's frame phone labels) of the MFCC clusters vs the layer clusters.
Every stage is resumable; all outputs live under ``work_dir``.
"""
from __future__ import annotations

import json
import os
import time

from ..clustering.kmeans import learn_kmeans
from ..clustering.label import dump_labels
from ..clustering.quality import label_quality
from ..common.atomic import write_text_atomic
from ..corpus.toy_corpus import build
from ..features.dump import dump_hubert, dump_mfcc
from .stages import Stages
from .train import CONFIG_DIR, final_stats, run_training, train_command

SPLITS = ("train", "valid")


def quality_table(rows: list[dict]) -> str:
    head = f"{'labels':42s} {'K':>4s} {'rate':>6s} {'PNMI':>7s} {'phone pur':>10s} {'cluster pur':>12s}"
    out = [head, "-" * len(head)]
    for r in rows:
        q = r["quality"]
        out.append(f"{r['name']:42s} {r['k']:4d} {r['rate']:4.0f}Hz {q['pnmi']:7.3f} {q['phone_purity']:10.3f} "
                   f"{q['cluster_purity']:12.3f}")
    return "\n".join(out)


def run_demo(work_dir: str, utterances: int = 400, max_update: int = 1000, seed: int = 1, k1: int = 100,
             k2: int = 100, layer: int | None = None, extra_overrides: list[str] | None = None) -> dict:
    t_start = time.time()
    st = Stages(work_dir)
    w = st.work_dir
    corpus = os.path.join(w, "corpus")
    it1, it2 = os.path.join(w, "iter1"), os.path.join(w, "iter2")

    st.run("corpus", lambda: build(corpus, utterances=utterances, seed=seed)["splits"])

    def mfcc_labels():
        for split in SPLITS:
            dump_mfcc(corpus, split, os.path.join(it1, "feat"))
        km = learn_kmeans(os.path.join(it1, "feat"), "train", 1, k1, os.path.join(it1, "km.bin"), seed=seed)
        for split in SPLITS:
            dump_labels(os.path.join(it1, "feat"), split, 1, os.path.join(it1, "km.bin"), os.path.join(it1, "labels"))
        return {"inertia": float(km.inertia_)}

    st.run("iter1.labels", mfcc_labels)

    ckpt_dir = os.path.join(it1, "checkpoints")
    cmd = train_command(os.path.join(CONFIG_DIR, "pretrain"), "toy_cpu", [
        f"task.data={corpus}", f"task.label_dir={os.path.join(it1, 'labels')}", "task.label_rate=100",
        f"checkpoint.save_dir={ckpt_dir}", f"optimization.max_update={max_update}", f"common.seed={seed}",
        *(extra_overrides or [])])

    def pretrain():
        log = run_training(cmd, it1)
        return final_stats(log)

    stats = st.run("iter1.train", pretrain)
    ckpt = os.path.join(ckpt_dir, "checkpoint_last.pt")

    from ..common.checkpoint import load_hubert

    n_layers = load_hubert(ckpt).num_layers
    layer = layer or (n_layers + 1) // 2

    def layer_labels():
        for split in SPLITS:
            dump_hubert(corpus, split, ckpt, layer, os.path.join(it2, "feat"))
        km = learn_kmeans(os.path.join(it2, "feat"), "train", 1, k2, os.path.join(it2, "km.bin"), seed=seed)
        for split in SPLITS:
            dump_labels(os.path.join(it2, "feat"), split, 1, os.path.join(it2, "km.bin"), os.path.join(it2, "labels"))
        return {"inertia": float(km.inertia_), "layer": layer}

    st.run("iter2.labels", layer_labels)

    rows = []
    for name, d, k, rate in ((f"iter1: MFCC clusters", it1, k1, 100),
                             (f"iter2: layer {layer}/{n_layers} of iter1 model", it2, k2, 50)):
        for split in SPLITS:
            q = label_quality(os.path.join(d, "labels", f"{split}.km"), os.path.join(corpus, f"{split}.phn"),
                              km_rate=rate, phn_rate=50)
            rows.append({"name": f"{name} ({split})", "k": k, "rate": rate, "quality": q})
    table = quality_table(rows)
    summary = {"rows": rows, "train_stats": stats, "layer": layer, "max_update": max_update,
               "stage_seconds": {s: st.seconds(s) for s in ("corpus", "iter1.labels", "iter1.train", "iter2.labels")},
               "total_seconds": round(time.time() - t_start, 1)}
    write_text_atomic(os.path.join(w, "demo_summary.json"), json.dumps(summary, indent=1) + "\n")
    write_text_atomic(os.path.join(w, "demo_table.txt"), table + "\n")
    print()
    print(table)
    tr, va = stats.get("train", {}), stats.get("valid", {})
    print(f"\niteration 1 pretraining: {int(tr.get('num_updates', 0))} updates, train loss {tr.get('loss', float('nan')):.3f}, "
          f"valid masked accuracy {va.get('correct_m_0', float('nan')):.3f}")
    print(f"outputs under {w}")
    return summary
