"""``ae-hubert demo`` / ``make demo``: HuBERT's loop end to end on the synthetic corpus.

corpus -> two schedules through the iteration driver (stock ``fairseq-hydra-train`` for training):
``standard_toy`` (MFCC K=100 -> layer 3 K=100, each from scratch) and ``progressive_toy`` (three
shorter iterations with rising clustering height, continuing, half the updates). Prints
(1) label quality of the MFCC clusters vs the layer clusters (PNMI and purities against the
corpus's frame phone labels), (2) the two schedules side by side and (3) the layer-wise probe
of every checkpoint of each schedule (iterations end to end), with the plots' paths, and (4) a
reset sweep: CTC fine-tuning of the last ``standard_toy`` model with its top k = 0..3 layers
re-initialised, WER vs k. Resumable; all outputs under ``work_dir``.
"""
from __future__ import annotations

import json
import os
import time

from ..common.atomic import write_text_atomic
from ..corpus.toy_corpus import build
from .iterate import iterate, summary_table
from ..runner.lock import WorkDirLock
from ..runner.stages import Stages

SCHEDULES = ("standard_toy", "progressive_toy")
PROBE_UTTERANCES = 120
SWEEP_KS = (0, 1, 2, 3)


def probe_schedule(run_dir: str, records: list[dict], corpus: str, out_dir: str) -> dict:
    """Probe every checkpoint of a schedule's iterations; JSON/CSV/plots under ``out_dir``."""
    from ..analysis.layer_probe import present_metrics, probe_checkpoints, write_probe_results
    from ..analysis.plots import plot_probe_results

    dirs = [os.path.join(run_dir, r["iteration"], "checkpoints") for r in records]
    results = probe_checkpoints(dirs, corpus, max_utterances=PROBE_UTTERANCES)
    files = [*write_probe_results(results, out_dir), *plot_probe_results(results, present_metrics(results), out_dir)]
    return {"files": files, "checkpoints": [{"run": r["run"], "updates": r["updates"],
                                             "autoencoder_index": round(r["autoencoder_index"], 4),
                                             "top": r["layers"][max(r["layers"], key=int)]} for r in results]}


def probe_table(name: str, probe: dict) -> str:
    head = f"{name + ' checkpoint':28s} {'AE index':>9s} {'top: phone acc':>15s} {'input R2':>9s} " \
           f"{'letter CER':>11s} {'word acc':>9s}"
    out = [head, "-" * len(head)]
    for c in probe["checkpoints"]:
        t = c["top"]
        out.append(f"{c['run'] + '@' + str(c['updates']):28s} {c['autoencoder_index']:9.3f} "
                   f"{t.get('phone_acc', float('nan')):15.3f} {t['input_r2']:9.3f} "
                   f"{t.get('letter_cer', float('nan')):11.3f} {t.get('word_acc', float('nan')):9.3f}")
    return "\n".join(out)


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
    w = os.path.abspath(work_dir)
    with WorkDirLock(w):
        return _run_demo(w, utterances, seed, schedules, overrides)


def _run_demo(w: str, utterances: int, seed: int, schedules, overrides: list[str] | None) -> dict:
    t0 = time.time()
    corpus = os.path.join(w, "corpus")
    Stages(w).run("corpus", lambda: build(corpus, utterances=utterances, seed=seed)["splits"])
    results = {}
    for name in schedules:
        t = time.time()
        records = iterate(name, os.path.join(w, name), data=corpus, overrides=overrides)
        probe_dir = os.path.join(w, "probe", name)
        probe = Stages(w).run(f"probe.{name}",
                              lambda: probe_schedule(os.path.join(w, name), records, corpus, probe_dir))
        results[name] = {"records": records, "probe": probe, "seconds_this_run": round(time.time() - t, 1)}
    from ..finetune.reset_sweep import reset_sweep, sweep_table

    first = results[schedules[0]]["records"]
    pretrained = os.path.join(w, schedules[0], first[-1]["iteration"], "checkpoints", "checkpoint_last.pt")
    sweep_dir = os.path.join(w, "reset_sweep")
    sweep = reset_sweep(pretrained, corpus, list(SWEEP_KS), sweep_dir, splits=("valid", "test"))
    text = ["Label quality of each iteration's targets vs frame phone labels (" + schedules[0] + "):",
            quality_table(first), ""]
    for name in schedules:
        text += [f"Schedule {name}:", summary_table(results[name]["records"]), ""]
    text.append("Layer-wise probe of every checkpoint (top layer's scores; AE index: README):")
    for name in schedules:
        text += [probe_table(name, results[name]["probe"]), ""]
    text.append("Probe plots:")
    text += [f"  {p}" for name in schedules for p in results[name]["probe"]["files"] if p.endswith(".png")]
    text += ["", f"Reset sweep: CTC fine-tuning of {schedules[0]}/{first[-1]['iteration']} with the top k layers "
             f"re-initialised (finetune/toy_cpu, same seed and budget), greedy decoding of checkpoint_last:",
             sweep_table(sweep, ("valid", "test")), f"  {sweep_dir}/sweep.csv  {sweep_dir}/wer_vs_k.png", ""]
    results["reset_sweep"] = sweep
    text.append(f"total demo time this run: {time.time() - t0:.0f} s; outputs under {w}")
    report = "\n".join(text)
    write_text_atomic(os.path.join(w, "demo_report.txt"), report + "\n")
    write_text_atomic(os.path.join(w, "demo_summary.json"), json.dumps(results, indent=1) + "\n")
    print()
    print(report)
    return results
