"""``ae-hubert iterate``: HuBERT's loop, driven by a schedule, resumable at any point.

The schedule becomes a list of steps (``plan.py``): per iteration [choose the layer] -> dump
features -> k-means -> labels -> label quality -> [continue-init] -> pretraining through the stock
``fairseq-hydra-train`` (resumed from ``checkpoint_last.pt`` after a kill) -> a JSON record. Each
step's marker is written only after its outputs are complete; a rerun skips finished steps. One
driver per work dir (a lock); a rerun first removes what killed writers left behind.
``--dry-run`` prints the steps as shell lines and runs nothing.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from typing import Callable

from ..common.atomic import remove_stale_partials, write_text_atomic
from ..runner.lock import WorkDirLock
from ..runner.stages import Stages
from ..common.checkpoint import checkpoint_training_seconds
from ..runner.trainer import final_stats, run_training
from .plan import SPLITS, Step, checkpoint_dir, iteration_dir, plan, target_files
from .schedule import Iteration, Schedule, load_schedule


def execute(step: Step):
    """Run one step in this process (training as an owned subprocess); its JSON-able result."""
    if step.tool == "ae-hubert":
        from ..common.command import invoke
        from .plan import STEP_COMMANDS

        return invoke(STEP_COMMANDS, step.args)
    if step.tool == "fairseq-hydra-train":
        log = run_training(list(step.args), step.cwd, step.save_dir, step.max_update)
        return final_stats(log, step.save_dir)
    if step.tool == "rm":
        shutil.rmtree(step.args[-1], ignore_errors=True)
        return {"removed": step.args[-1]}
    raise ValueError(f"unknown tool {step.tool!r}")


def _read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _record(s: Schedule, it: Iteration, steps: list[Step], stages: Stages, work_dir: str, data: str,
            prev_ckpt: str | None, t0: float) -> dict:
    def seconds(prefix: str) -> float:
        return round(sum(stages.seconds(st.name) or 0.0 for st in steps if st.name.startswith(prefix)), 2)

    targets = []
    for t in it.targets:
        f = target_files(work_dir, it, t)
        info = {"name": t.name, "source": t.source, "k": t.k, "rate": t.rate, "layer": t.layer,
                "kmeans": f.kmeans, "inertia": stages.done(f"{it.name}.{t.name}.kmeans")["result"]["inertia"],
                "seconds": seconds(f"{it.name}.{t.name}.")}
        if t.layer == "auto":
            info["layer_choice"] = _read_json(f.layer_json)
            info["layer"] = info["layer_choice"]["chosen"]
        info["quality"] = {split: {k: q[k] for k in ("pnmi", "phone_purity", "cluster_purity")}
                           for split in SPLITS if os.path.isfile(f.quality(split, t.name))
                           for q in [_read_json(f.quality(split, t.name))]}
        targets.append(info)
    stats = stages.done(f"{it.name}.train")["result"]
    ckpt = os.path.join(checkpoint_dir(work_dir, it), "checkpoint_last.pt")
    return {
        "schedule": s.name, "iteration": it.name, "init": it.init, "reset_top_layers": it.reset_top_layers,
        "label_rate": it.label_rate, "max_update": it.max_update, "targets": targets,
        "train": stats.get("train", {}), "valid": stats.get("valid", {}),
        "updates": int(stats.get("train", {}).get("num_updates", 0)),
        "train_seconds": round(checkpoint_training_seconds(ckpt) or stages.seconds(f"{it.name}.train") or 0.0, 2),
        "sidecar_seconds": round(sum(t["seconds"] for t in targets) + (stages.seconds(f"{it.name}.init") or 0), 2),
        "wall_seconds_this_run": round(time.time() - t0, 2),
        "checkpoint": ckpt,
        "label_dir": target_files(work_dir, it, it.targets[0]).labels, "previous_checkpoint": prev_ckpt,
        "overrides": it.overrides + s.overrides + s.cli_overrides,
    }


def iterate(schedule: str, work_dir: str, data: str | None = None, overrides: list[str] | None = None,
            dry_run: bool = False, echo: Callable[[str], None] = print, start_from: str | None = None,
            iterations: int | None = None) -> list[dict]:
    """Run (or resume) a schedule in ``work_dir``; its iteration records. ``iterations``: only the
    first N (a caller measuring each iteration as soon as it is trained); a later call goes on."""
    s = load_schedule(schedule, data, overrides, start_from)  # everything is validated before any work
    work_dir = os.path.abspath(work_dir)
    steps = plan(s, work_dir)
    if dry_run:
        for st in steps:
            echo(f"# {st.name}\n{st.shell()}")
        return []
    with WorkDirLock(work_dir):
        for path in remove_stale_partials(work_dir, recursive=True):
            echo(f"[clean] {path} (left by a killed run)")
        stages = Stages(work_dir, echo)
        data = os.path.abspath(s.data)
        records = []
        prev_ckpt = os.path.abspath(s.start_from) if s.start_from else None
        for it in s.iterations[:iterations]:
            t0 = time.time()
            mine = [st for st in steps if st.name.startswith(f"{it.name}.")]
            for st in mine:
                # recorded relative to the work dir, so a moved or copied work dir still resumes
                stages.run(st.name, lambda st=st: execute(st), command=st.shell().replace(work_dir, "$W"),
                           done_as=tuple(st.shell(args).replace(work_dir, "$W") for args in st.done_as))
            record = _record(s, it, mine, stages, work_dir, data, prev_ckpt, t0)
            write_text_atomic(os.path.join(iteration_dir(work_dir, it), "record.json"),
                              json.dumps(record, indent=1) + "\n")
            records.append(record)
            prev_ckpt = record["checkpoint"]
        write_text_atomic(os.path.join(work_dir, "records.json"), json.dumps(records, indent=1) + "\n")
    return records


def summary_table(records: list[dict]) -> str:
    """One line per iteration: label quality (valid, else train), updates, time."""
    head = f"{'iteration':10s} {'targets':22s} {'init':9s} {'PNMI':>6s} {'ph.pur':>7s} {'updates':>8s} " \
           f"{'valid acc':>9s} {'sidecar s':>9s} {'train s':>8s}"
    rows = [head, "-" * len(head)]
    for r in records:
        t = r["targets"][0]
        q = t["quality"].get("valid") or t["quality"].get("train") or {}
        src = "MFCC" if t["source"] == "mfcc" else f"L{t['layer']}"
        rows.append(f"{r['iteration']:10s} {src + ' K=' + str(t['k']) + (' +' if len(r['targets']) > 1 else ''):22s} "
                    f"{r['init'] + ('-' + str(r['reset_top_layers']) if r['reset_top_layers'] else ''):9s} "
                    f"{q.get('pnmi', float('nan')):6.3f} {q.get('phone_purity', float('nan')):7.3f} "
                    f"{r['updates']:8d} {r['valid'].get('correct_m_0', float('nan')):9.3f} "
                    f"{r['sidecar_seconds']:9.1f} {r['train_seconds']:8.1f}")
    tot_u = sum(r["updates"] for r in records)
    tot_s = sum(r["sidecar_seconds"] + r["train_seconds"] for r in records)
    rows.append(f"{'total':10s} {'':22s} {'':9s} {'':6s} {'':7s} {tot_u:8d} {'':9s} {'':9s} {tot_s:8.1f}")
    return "\n".join(rows)
