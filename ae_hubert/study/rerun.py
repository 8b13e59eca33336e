"""``ae-hubert study-rerun``: are a study's committed figures reproducible? One seed of one of its
runs probed over updates (H1's, or an H0 control's: ``probed_runs.json``) trained again from
scratch in a new work dir by the study's own steps (``seed.SeedRuns``: the same schedule, seed,
corpus and probes), then compared number by number with the original's records, read from its work
dir or from its ``study-pack --results-only`` copy: every iteration's ``record.json`` (targets and
their quality, final losses) and every probe of a checkpoint the original probed. The runs are
deterministic, so on the same library versions every number should be the same; wall-clock times
are left out, and paths are compared relative to their work dir.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Callable

from ..common.errors import AeHubertError
from ..common.lock import MARKER_DIR, WorkDirLock
from ..runner.stages import Stages
from .config import load_study, plan_study, schedule_name
from .pack import PACKAGE, PACKAGE_DIR, WORK_DIR
from .records import PROBE_MARKER, StudyError, check_rebuilt_corpus, probed_runs
from .run import study_corpus
from .seed import SeedRuns

# wall-clock, not results (wall_seconds_this_run: in the iteration records of earlier versions)
TIMES = frozenset({"seconds", "wall", "train_seconds", "sidecar_seconds", "wall_seconds_this_run"})
SHOWN = 5  # differences listed per record


class NotReproduced(AeHubertError):
    """The rerun ran, and some of its figures differ from the original's (exit status 1)."""
    exit_status = 1


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise StudyError(f"{path}: unreadable ({e})") from None


def differences(original, rerun, tolerance: float = 0.0, where: str = "") -> list[tuple[str, object, object]]:
    """Every leaf of two records that differs (numbers by more than ``tolerance``), as (key path,
    original, rerun); wall-clock times (:data:`TIMES`) are not results and are skipped."""
    if isinstance(original, dict) and isinstance(rerun, dict):
        out = []
        for k in sorted(set(original) | set(rerun), key=str):
            if k in TIMES:
                continue
            if k not in original or k not in rerun:
                out.append((f"{where}.{k}".lstrip("."), original.get(k, "(absent)"), rerun.get(k, "(absent)")))
            else:
                out += differences(original[k], rerun[k], tolerance, f"{where}.{k}")
        return out
    if isinstance(original, list) and isinstance(rerun, list) and len(original) == len(rerun):
        return [d for i, (a, b) in enumerate(zip(original, rerun))
                for d in differences(a, b, tolerance, f"{where}.{i}")]
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (original, rerun))
    if numbers and (abs(original - rerun) <= tolerance or (math.isnan(original) and math.isnan(rerun))):
        return []
    same = original == rerun and isinstance(original, bool) == isinstance(rerun, bool)  # True == 1 in Python
    return [] if same else [(where.lstrip("."), original, rerun)]


def _relative(record, *roots: str):
    """``record`` with each work dir's path (and the package's) replaced by the placeholders a
    results copy writes, so that paths compare by where they are in their work dir."""
    text = json.dumps(record).replace("$W", WORK_DIR)
    for root in roots:
        text = text.replace(json.dumps(os.path.abspath(root))[1:-1], WORK_DIR)
    return json.loads(text.replace(json.dumps(PACKAGE)[1:-1], PACKAGE_DIR))


def _schedule(study, run: str) -> tuple[str, str]:
    """The hypothesis and schedule the study trains ``run`` (``runs/NAME`` or ``NAME``) by."""
    for h, specs in study.schedules.items():
        for spec in (specs.values() if isinstance(specs, dict) else [specs]):
            if schedule_name(spec) == run:
                return h, spec
    raise StudyError(f"{study.path}: no schedule of the study is named {run}")


def rerun(results: str, run: str, seed: int, work_dir: str, config: str | None = None, data: str | None = None,
          tolerance: float = 0.0, echo: Callable[[str], None] = print) -> dict:
    """Train seed ``seed`` of ``run`` again under ``work_dir`` and compare it with ``results`` (the
    original study's work dir or results copy); raises :class:`NotReproduced` when a figure differs.
    Resumable like the study: the same call after a kill goes on where it stopped."""
    summary_path = os.path.join(results, "study.json")
    summary = _read_json(summary_path)
    study = load_study(config or summary.get("study", "?"))
    theirs = {"k": summary.get("k"), **summary.get("measure", {})}
    ours = {"k": study.k, **dataclasses.asdict(study.measure)}
    for key in sorted(set(theirs) & set(ours)):  # a setting added since the original cannot differ from it
        if theirs[key] != ours[key]:
            raise StudyError(f"{summary_path}: {key} is {theirs[key]!r}, the study config {study.path} says "
                             f"{ours[key]!r}: pass the original's config (--config)")
    known = [os.path.basename(r) for r in probed_runs(results) or []]
    name = os.path.basename(run.rstrip("/"))
    if name not in known:
        raise StudyError(f"{results}: {run} is not a run the study probed over updates; it has: "
                         + (", ".join(known) or "none (no probed_runs.json)"))
    if seed not in summary.get("seeds", []):
        raise StudyError(f"{summary_path}: seed {seed} is not one of the study's seeds {summary.get('seeds')}")
    hypothesis, spec = _schedule(study, name)
    originals = _originals(results, name, seed)
    w = os.path.abspath(work_dir)
    if os.path.realpath(w) == os.path.realpath(results):
        raise StudyError(f"{w}: the rerun needs its own work dir, not the original's")
    with WorkDirLock(w, "study-rerun", reads=(data,) if data else ()):
        stages = Stages(w, echo)
        study.data = data or study_corpus(study, w, stages)
        corpus_check = check_rebuilt_corpus(results, study.data, echo)
        if corpus_check is None:
            echo(f"{results}: no corpus fingerprint (a work dir, not a results copy): the corpus is not checked")
        seed_runs = SeedRuns(plan_study(study, [hypothesis]), [hypothesis], w, seed, stages, echo)
        _, records = seed_runs.run(spec)
        for record in records:
            seed_runs.probe_every_checkpoint(name, record)
        compared = _compare(results, w, originals, tolerance)
    differ = {k: v for k, v in compared.items() if v}
    lines = [f"{k}: {'identical' if not v else f'{len(v)} differ'}" for k, v in compared.items()]
    for k, v in differ.items():
        lines += [f"  {k}: {path}: {a!r} -> {b!r}" for path, a, b in v[:SHOWN]]
    echo("\n".join(lines))
    out = {"run": name, "seed": seed, "results": os.path.abspath(results), "work_dir": w, "tolerance": tolerance,
           "compared": len(compared), "differ": {k: len(v) for k, v in differ.items()}}
    if differ:
        raise NotReproduced(f"{len(differ)} of {len(compared)} records of {name} seed {seed} differ from {results}")
    return out


def _originals(results: str, run: str, seed: int) -> list[str]:
    """The records of seed ``seed`` of ``run`` the original holds, relative to it (each iteration's
    ``record.json``, then each probe's marker), checked before any training."""
    home = os.path.join("runs", run, f"s{seed}")
    its = sorted(d for d in os.listdir(os.path.join(results, home)) if os.path.isfile(
        os.path.join(results, home, d, "record.json"))) if os.path.isdir(os.path.join(results, home)) else []
    probes = sorted((f for f in os.listdir(os.path.join(results, MARKER_DIR)) if f.startswith(f"s{seed}.{run}.")
                     and PROBE_MARKER.fullmatch(f)), key=lambda f: (f.split(".")[2], int(PROBE_MARKER.fullmatch(
                         f)["updates"]))) if os.path.isdir(os.path.join(results, MARKER_DIR)) else []
    if not its or not probes:
        raise StudyError(f"{results}: no {'iteration record' if not its else 'probe'} of {run} seed {seed} to "
                         f"compare with (under {home if not its else MARKER_DIR})")
    return [*(os.path.join(home, it, "record.json") for it in its), *(os.path.join(MARKER_DIR, f) for f in probes)]


def _compare(results: str, w: str, originals: list[str], tolerance: float) -> dict[str, list]:
    """``{record: differences}`` for each of ``originals`` (a probe marker's result only)."""
    out = {}
    for rel in originals:
        ours = os.path.join(w, rel)
        if not os.path.isfile(ours):
            out[rel] = [("", "recorded", "missing from the rerun")]
            continue
        a, b = _read_json(os.path.join(results, rel)), _read_json(ours)
        if rel.startswith(MARKER_DIR):
            a, b = a["result"], b["result"]
        out[rel] = differences(_relative(a, results), _relative(b, w), tolerance)
    return out
