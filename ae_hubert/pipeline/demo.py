"""``ae-hubert demo`` / ``make demo``: HuBERT's loop end to end on the synthetic corpus.

The quick demo (default, 5-11 minutes on 2 CPU cores): corpus -> MFCC -> k-means -> labels ->
pretraining (400 updates) -> layer-3 clusters of that model -> a second iteration on them (100
updates, continuing) -> the layer-wise probe of every checkpoint -> a short reset comparison (CTC
fine-tuning with the top k = 0 and 2 layers re-initialised, 300 updates each). ``--full`` runs the
longer comparisons instead: ``standard_toy`` and ``progressive_toy`` side by side and a reset sweep
over k = 0..3 with the full fine-tuning budget. Each table is printed as soon as its part is done;
``W/report.html`` holds everything at the end. Resumable; all outputs under ``work_dir``.
"""
from __future__ import annotations

import json
import os
import time

from ..common.atomic import write_text_atomic
from ..common.manifest import data_inputs
from ..common.outputs import corpus_file
from ..corpus.toy_corpus import build
from ..common.lock import WorkDirLock
from ..common.checkpoint import file_digest
from ..runner.stages import Stages
from .iterate import iterate, summary_table

QUICK = {"schedules": ("demo_toy",), "ks": (0, 2), "finetune": ["optimization.max_update=300"]}
FULL = {"schedules": ("standard_toy", "progressive_toy"), "ks": (0, 1, 2, 3), "finetune": []}
PROBE_UTTERANCES = 120


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


def run_demo(work_dir: str, utterances: int = 400, seed: int = 1, full: bool = False,
             schedules: list[str] | None = None, overrides: list[str] | None = None) -> dict:
    from .schedule import check_overrides

    w = os.path.abspath(work_dir)
    check_overrides(list(overrides or []), "demo: overrides")  # before the corpus is synthesised
    plan = FULL if full else QUICK
    if schedules:
        plan = {**plan, "schedules": tuple(schedules)}
    with WorkDirLock(w, "demo"):
        return _run_demo(w, utterances, seed, plan, overrides)


def _say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


def _run_demo(w: str, utterances: int, seed: int, plan: dict, overrides: list[str] | None) -> dict:
    from ..analysis.report import build_report
    from ..finetune.reset_sweep import reset_sweep, sweep_table

    from .schedule import shipped_schedule

    t0 = time.time()
    schedules = plan["schedules"]
    for name in schedules:  # a misspelt name fails before the corpus is built
        shipped_schedule(name)
    corpus = os.path.join(w, "corpus")
    # the corpus's settings are recorded: a rerun with other ones is refused, not run on the old corpus
    Stages(w, way_out="use a new work dir").run(
        "corpus", lambda: build(corpus, utterances=utterances, seed=seed)["splits"],
        f"toy-corpus --out-dir $W/corpus --utterances {utterances} --seed {seed}",
        outputs=(os.path.join(corpus, "corpus.json"),))
    # its files by content too (manifests, audio, transcripts, phones): one replaced by hand is refused
    own = tuple(sorted(f for f in os.listdir(corpus) if corpus_file(f) and not f.endswith((".tsv", ".wav", ".flac"))))
    Stages(w, way_out="use a new work dir").check_inputs(data_inputs(corpus, ("train", "valid", "test"), own),
                                                         way_out="use a new work dir")
    results = {}
    text = []

    def part(*lines: str) -> None:
        text.extend(lines)
        _say("", *lines)

    for name in schedules:
        t = time.time()
        records = iterate(name, os.path.join(w, name), data=corpus, overrides=overrides)
        results[name] = {"records": records, "seconds_this_run": round(time.time() - t, 1)}
        if name == schedules[0]:
            part(f"Label quality of each iteration's targets vs frame phone labels ({name}):", quality_table(records))
        part(f"Schedule {name}:", summary_table(records))
    for name in schedules:
        probe_dir = os.path.join(w, "probe", name)
        records = results[name]["records"]
        probed = " ".join(file_digest(r["checkpoint"]) for r in records)  # the models, by content
        command, stages = f"probe {name} of checkpoints {probed}", Stages(w)
        done = stages.done(f"probe.{name}")
        if done is not None and done.get("command", command) != command and stages.forget(f"probe.{name}"):
            _say(f"[redo] probe.{name} (its run was redone since: other models)")
        probe = stages.run(f"probe.{name}", lambda: probe_schedule(os.path.join(w, name), records, corpus, probe_dir),
                           command=command)
        results[name]["probe"] = probe
        part(f"Layer-wise probe of every {name} checkpoint (top layer's scores; AE index: docs/probing.md):",
             probe_table(name, probe), "plots:", *[f"  {p}" for p in probe["files"] if p.endswith(".png")])
    first = results[schedules[0]]["records"]
    pretrained = os.path.join(w, schedules[0], first[-1]["iteration"], "checkpoints", "checkpoint_last.pt")
    sweep_dir = os.path.join(w, "reset_sweep" if tuple(plan["ks"]) == FULL["ks"] else "reset_quick")
    sweep = reset_sweep(pretrained, corpus, list(plan["ks"]), sweep_dir, overrides=plan["finetune"],
                        splits=("valid", "test"))
    results["reset_sweep"] = sweep
    budget = " ".join(plan["finetune"]) or "the config's budget"
    part(f"Reset comparison: CTC fine-tuning of {schedules[0]}/{first[-1]['iteration']} with the top k layers "
         f"re-initialised (finetune/toy_cpu, {budget}, same seed for every k), greedy decoding of checkpoint_last:",
         sweep_table(sweep, ("valid", "test")), f"  {sweep_dir}/sweep.csv  {sweep_dir}/wer_vs_k.png")
    report = build_report(w)
    part(f"total demo time this run: {time.time() - t0:.0f} s; outputs under {w}", f"report: {report}")
    write_text_atomic(os.path.join(w, "demo_report.txt"), "\n".join(text) + "\n")
    write_text_atomic(os.path.join(w, "demo_summary.json"), json.dumps(results, indent=1) + "\n")
    return results
