"""``ae-hubert demo`` / ``make demo``: HuBERT's loop end to end on the synthetic corpus.

corpus -> two schedules through the iteration driver (stock ``fairseq-hydra-train`` for training):
``standard_toy`` (MFCC K=100 -> layer 3 K=100, each from scratch) and ``progressive_toy`` (three
shorter iterations with rising clustering height, continuing, half the updates). Prints
(1) label quality of the MFCC clusters vs the layer clusters (PNMI and purities against the
corpus's frame phone labels) and (2) the two schedules side by side. Resumable; all outputs
under ``work_dir``.
"""
from __future__ import annotations

import json
import os
import time

from ..common.atomic import write_text_atomic
from ..corpus.toy_corpus import build
from .iterate import iterate, summary_table
from .stages import Stages

SCHEDULES = ("standard_toy", "progressive_toy")


def quality_table(records: list[dict]) -> str:
    """Every iteration's targets: source, K, rate and quality on train and valid."""
    head = f"{'targets (schedule/iteration)':40s} {'K':>4s} {'rate':>6s} {'split':>6s} {'PNMI':>7s} " \
           f"{'phone pur':>10s} {'cluster pur':>12s}"
    out = [head, "-" * len(head)]
    for r in records:
        for t in r["targets"]:
            src = "MFCC clusters" if t["source"] == "mfcc" else f"layer {t['layer']} clusters"
            for split, q in t["quality"].items():
                out.append(f"{r['schedule'] + '/' + r['iteration'] + ': ' + src:40s} {t['k']:4d} "
                           f"{t['rate']:4.0f}Hz {split:>6s} {q['pnmi']:7.3f} {q['phone_purity']:10.3f} "
                           f"{q['cluster_purity']:12.3f}")
    return "\n".join(out)


def run_demo(work_dir: str, utterances: int = 400, seed: int = 1, schedules=SCHEDULES,
             overrides: list[str] | None = None) -> dict:
    t0 = time.time()
    w = os.path.abspath(work_dir)
    corpus = os.path.join(w, "corpus")
    Stages(w).run("corpus", lambda: build(corpus, utterances=utterances, seed=seed)["splits"])
    results = {}
    for name in schedules:
        t = time.time()
        records = iterate(name, os.path.join(w, name), data=corpus, overrides=overrides)
        results[name] = {"records": records, "seconds_this_run": round(time.time() - t, 1)}
    first = results[schedules[0]]["records"]
    text = ["Label quality of each iteration's targets vs frame phone labels (" + schedules[0] + "):",
            quality_table(first), ""]
    for name in schedules:
        text += [f"Schedule {name}:", summary_table(results[name]["records"]), ""]
    text.append(f"total demo time this run: {time.time() - t0:.0f} s; outputs under {w}")
    report = "\n".join(text)
    write_text_atomic(os.path.join(w, "demo_report.txt"), report + "\n")
    write_text_atomic(os.path.join(w, "demo_summary.json"), json.dumps(results, indent=1) + "\n")
    print()
    print(report)
    return results
