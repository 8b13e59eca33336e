"""``ae-hubert iterate``: HuBERT's loop, driven by a schedule, resumable at any point.

The schedule becomes a list of steps (``plan.py``): per iteration [choose the layer] -> dump
features -> k-means -> labels -> label quality -> [continue-init] -> pretraining through the stock
``fairseq-hydra-train`` (resumed from ``checkpoint_last.pt`` after a kill) -> a JSON record. Each
step's marker is written only after its outputs are complete; a rerun skips finished steps. One
driver per work dir (a lock); a rerun first removes what killed writers left behind.
``--dry-run`` prints the steps as shell lines and runs nothing.

A rerun resumes the same run or is refused: every step records its command when it starts and when
it ends (``runner/stages.py``), the work dir records its data manifests (``.stages/inputs.json``),
and ``--restart STEP`` redoes a step and everything after it (its checkpoints removed) under the
settings given now. ``records.json`` keeps the records of iterations beyond a narrower rerun.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Callable

from ..analysis.report import withdraw_report
from ..common.atomic import check_output_files, remove_output, remove_stale_partials, write_text_atomic
from ..common.checkpoint import checkpoint_training_seconds, file_digest
from ..common.manifest import data_inputs
from ..common.errors import AeHubertError, located
from ..runner.configs import check_config_unchanged, with_config_digest
from ..common.lock import WorkDirLock, claim_linked_dirs
from ..runner.stages import Stages, relocated
from ..runner.trainer import (check_before_training, check_no_checkpoints, check_trained_as_composed, final_stats,
                              remove_checkpoints, run_training)
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
            prev_ckpt: str | None) -> dict:
    def seconds(prefix: str) -> float:
        return round(sum(stages.seconds(st.name) or 0.0 for st in steps if st.name.startswith(prefix)), 2)

    targets = []
    for t in it.targets:
        f = target_files(work_dir, it, t)
        km = stages.done(f"{it.name}.{t.name}.kmeans")  # none for phone targets
        info = {"name": t.name, "source": t.source, "k": t.k, "rate": t.rate, "layer": t.layer,
                "kmeans": f.kmeans if km else None, "inertia": km["result"]["inertia"] if km else None,
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
        "checkpoint": ckpt,
        "label_dir": target_files(work_dir, it, it.targets[0]).labels, "previous_checkpoint": prev_ckpt,
        "overrides": it.overrides + s.overrides + s.cli_overrides,
    }


def _inputs(data: str, start_from: str | None) -> dict[str, tuple[str, str]]:
    """What the run reads from outside its work dir, by content: the manifests' entries, their audio,
    the phone labels (targets and label quality) and the starting checkpoint."""
    phones = ("train.phn", "valid.phn", "dict.phn.txt")
    out = data_inputs(data, ("train", "valid"), tuple(f for f in phones if os.path.isfile(os.path.join(data, f))))
    if start_from:
        out["start_from"] = (start_from, file_digest(start_from))
    return out


def _first_of(steps: list[Step], restart: str) -> int | None:
    return next((i for i, st in enumerate(steps) if st.name == restart or st.name.startswith(restart + ".")), None)


def _with_dropped_features(steps: list[Step], first: int) -> int:
    """A restart after the features were dropped (``keep_features: false``) begins at the dump that
    made them: the steps it redoes read them, and the dump's marker alone would not bring them back."""
    dropped = {st.args[-1] for st in steps[first:] if st.tool == "rm"}
    for i, st in enumerate(steps[:first]):
        out = st.args[st.args.index("--out-dir") + 1] if st.args[:1] == ("dump",) and "--out-dir" in st.args else None
        if out in dropped and not os.path.isdir(out):
            return i
    return first


def _commands(st: Step, work_dir: str) -> tuple[str, tuple[str, ...]]:
    """(the command a step records, the forms of it earlier versions recorded): relative to the work
    dir, so a moved or copied work dir still resumes; a training step's with its config's digest."""
    plain = st.shell().replace(work_dir, "$W")
    earlier = tuple(st.shell(args).replace(work_dir, "$W") for args in st.done_as)
    if st.tool != "fairseq-hydra-train":
        return plain, earlier
    return with_config_digest(plain, list(st.args), earlier)


def _restart(stages: Stages, steps: list[Step], first: int, work_dir: str, echo, start_from: str | None) -> None:
    """Forget step ``first`` and every later one, and any step the work dir holds beyond this
    schedule's (a wider schedule's later iterations, trained on what is now redone); remove the
    checkpoints of the training steps among them, which fairseq would otherwise resume."""
    keep = {st.name for st in steps[:first]}
    save_dirs = {st.name: st.save_dir for st in steps if st.save_dir}
    gone = [n for n in [st.name for st in steps[first:]] + sorted(stages.names() - {st.name for st in steps})
            if n not in keep]
    # a training step's checkpoints: its own save_dir, or (a wider schedule's) W/ITERATION/checkpoints
    saves = {n: save_dirs.get(n) or (os.path.join(work_dir, n[:-len(".train")], "checkpoints")
                                     if n.endswith(".train") else None) for n in gone}
    for save in filter(None, saves.values()):
        if start_from and os.path.realpath(start_from).startswith(os.path.realpath(save) + os.sep):
            raise AeHubertError(f"--restart {steps[first].name} would remove {save}, which holds --start-from "
                                f"{start_from}; copy it elsewhere first")
    # a wider schedule's iterations lie beyond the lock's claim: their linked checkpoint dirs this run's too
    claim_linked_dirs(work_dir, [save for save in saves.values() if save and os.path.lexists(save)], "iterate")
    # first the run's summaries (rewritten whole when it ends), so that none outlives the checkpoints
    # removed below, even when one cannot be rewritten: records.json holds what is still trained (its
    # iterations' own records first; one that was a link becomes a file, its target left alone), the
    # forgotten iterations' record.json and the report, which showed them, go
    path = os.path.join(work_dir, "records.json")
    if os.path.lexists(path):
        kept = []
        for st in steps[:first]:
            if st.name.endswith(".train") and stages.done(st.name) is not None:
                with contextlib.suppress(OSError, ValueError), \
                        open(os.path.join(work_dir, st.name[:-len(".train")], "record.json")) as f:
                    kept.append(json.load(f))
        write_text_atomic(path, json.dumps(_merge_records(path, kept, stages, steps, set(gone)), indent=1) + "\n")
    for name in gone:
        if name.endswith(".train"):
            remove_output(os.path.join(work_dir, name[:-len(".train")], "record.json"))
    withdraw_report(work_dir)
    for name in gone:
        if stages.forget(name):
            echo(f"[redo] {name}")
        if saves[name]:
            remove_checkpoints(saves[name])


def _merge_records(path: str, records: list[dict], stages: Stages, steps: list[Step],
                   forgotten: set[str] = frozenset()) -> list[dict]:
    """This run's records, then an earlier run's records of later iterations whose steps are still done
    and not being ``forgotten`` (a narrower schedule, or ``iterations=N``, never drops what a wider
    run finished), their paths moved to this work dir when it was copied or moved since."""
    if os.path.islink(path):  # (another run's records, read through a link, are not this run's)
        return records
    try:
        with open(path) as f:
            earlier = json.load(f)
    except (OSError, ValueError):
        return records
    if not isinstance(earlier, list):
        return records
    mine = {r["iteration"] for r in records}
    keep = []
    for r in earlier:
        if not isinstance(r, dict) or r.get("iteration") in mine or f"{r.get('iteration')}.train" in forgotten:
            continue
        train = stages.done(f"{r.get('iteration')}.train")
        if train is not None:
            tail = os.path.join(str(r.get("iteration")), "checkpoints", "checkpoint_last.pt")
            ckpt = str(r.get("checkpoint") or "")
            old = ckpt[:-len(tail) - 1] if ckpt.endswith(os.sep + tail) else None
            keep.append(relocated(r, old, os.path.dirname(os.path.abspath(path))) if old else r)
    return records + keep


def iterate(schedule: str, work_dir: str, data: str | None = None, overrides: list[str] | None = None,
            dry_run: bool = False, echo: Callable[[str], None] = print, start_from: str | None = None,
            iterations: int | None = None, restart: str | None = None) -> list[dict]:
    """Run (or resume) a schedule in ``work_dir``; its iteration records. ``iterations``: only the
    first N (a caller measuring each iteration as soon as it is trained); a later call goes on.
    ``restart``: redo that step (or iteration) and everything after it."""
    s = load_schedule(schedule, data, overrides, start_from)  # everything is validated before any work
    work_dir = os.path.abspath(work_dir)
    steps = plan(s, work_dir)
    if dry_run:
        for st in steps:
            echo(f"# {st.name}\n{st.shell()}")
        return []
    gpu = next((it for it in s.iterations[:iterations] if it.needs_gpu), None)
    if gpu is not None:  # (launch and --dry-run only write commands: a login node needs no GPU)
        import torch

        if not torch.cuda.is_available():
            raise AeHubertError(f"{schedule}: {gpu.name}: common.fp16=true trains only on a GPU (fairseq's fp16 "
                                "optimizer needs CUDA) and this machine has none; set common.fp16=false")
    with WorkDirLock(work_dir, "iterate", writes=[iteration_dir(work_dir, it) for it in s.iterations]):
        for path in remove_stale_partials(work_dir, recursive=True):
            echo(f"[clean] {path} (left by a killed run)")
        check_output_files(*(os.path.join(work_dir, f) for f in ("records.json", "report.html")))
        stages = Stages(work_dir, echo, way_out="use a new work dir, or --restart {name} to redo it and what follows "
                                                "under the settings given now")
        commands = {st.name: _commands(st, work_dir) for st in steps}
        first = _first_of(steps, restart) if restart is not None else len(steps)
        if first is None:
            names = [st.name for st in steps]
            raise AeHubertError(f"--restart {restart}: no such step in this schedule (steps: {', '.join(names[:6])}"
                                f"{', ...' if len(names) > 6 else ''}; an iteration name restarts its first step)")
        redo_from = _with_dropped_features(steps, first) if restart is not None else first
        if redo_from < first:
            first = redo_from
            echo(f"--restart {restart}: from {steps[first].name}, since the features it reads were dropped "
                 "(keep_features: false)")
        data = os.path.abspath(s.data)
        if s.start_from and os.path.realpath(s.start_from).startswith(os.path.realpath(work_dir) + os.sep):
            # the run writes there (checkpoints, k-means files, init.pt): it would resume from it, or write over it
            raise located(s.start_from, f"--start-from lies in the work dir {work_dir}, where this run writes its "
                                        "files; copy it elsewhere first")
        # everything that would refuse the run is checked before anything is removed or run
        inputs = _inputs(data, s.start_from)
        restart_all = f"--restart {steps[0].name} to redo everything from the inputs as they are now"
        stages.check_inputs(inputs, first == 0, write=False, way_out=f"use a new work dir, or {restart_all}")
        for st in steps[:first]:
            stages.check(st.name, *commands[st.name])
        for st in steps if restart is None else steps[:first]:  # (a restart removes the rest)
            if st.save_dir and stages.never_started(st.name):
                check_no_checkpoints(st.save_dir, st.name, f"--restart {st.name}")
        if restart is not None:
            _restart(stages, steps, first, work_dir, echo, s.start_from)
        stages.check_inputs(inputs, first == 0)
        records = []
        prev_ckpt = os.path.abspath(s.start_from) if s.start_from else None

        def train(st, composed):  # then, as checked before: the config it composed, its files, its inputs
            stats = execute(st)
            check_trained_as_composed(st.cwd, composed, st.name, f"--restart {st.name}", work_dir)
            check_config_unchanged(_commands(st, work_dir)[0], commands[st.name][0], st.name)
            stages.check_inputs(_inputs(data, s.start_from), write=False)  # (changed meanwhile: not recorded)
            return stats
        for it in s.iterations[:iterations]:
            mine = [st for st in steps if st.name.startswith(f"{it.name}.")]
            for st in mine:
                if stages.done(st.name) is None:  # a link made since the lock was taken: claimed before it writes
                    claim_linked_dirs(work_dir, [iteration_dir(work_dir, it)], "iterate")
                composed = None
                if st.save_dir and stages.done(st.name) is None:
                    composed = check_before_training(stages, st.name, st.save_dir, lambda: _inputs(data, s.start_from),
                                                     lambda st=st: _commands(st, work_dir)[0], commands[st.name][0],
                                                     f"--restart {st.name}", list(st.args), st.cwd)
                stages.run(st.name, lambda st=st, c=composed: train(st, c) if st.save_dir else execute(st),
                           *commands[st.name], outputs=st.outputs)
            record = _record(s, it, mine, stages, work_dir, data, prev_ckpt)
            write_text_atomic(os.path.join(iteration_dir(work_dir, it), "record.json"),
                              json.dumps(record, indent=1) + "\n")
            records.append(record)
            prev_ckpt = record["checkpoint"]
        path = os.path.join(work_dir, "records.json")
        write_text_atomic(path, json.dumps(_merge_records(path, records, stages, steps), indent=1) + "\n")
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
