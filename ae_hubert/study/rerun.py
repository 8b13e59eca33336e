"""``ae-hubert study-rerun``: are a study's committed figures reproducible? One seed of one of its
runs probed over updates (H1's, or an H0 control's: ``probed_runs.json``) trained again from
scratch in a new work dir by the study's own steps (``seed.SeedRuns``: the same schedule, seed,
corpus and probes), then compared number by number with the original's records, read from its work
dir or from its ``study-pack --results-only`` copy: every iteration's ``record.json`` (targets and
their quality, final losses) and every probe the original made of its checkpoints. Only what the
original holds is trained and probed. The runs are deterministic, so on the same library versions,
thread count and kind of CPU every number should be the same; wall-clock times are left out, and
paths are compared by their place in their work dir.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from typing import Callable

from ..common.errors import AeHubertError
from ..common.lock import MARKER_DIR, WorkDirLock
from ..runner.stages import Stages
from .config import load_study, plan_study, schedule_name
from .pack import PACKAGE, PACKAGE_DIR, WORK_DIR
from .records import EXPECTED_CORPUS, PROBE_MARKER, StudyError, check_rebuilt_corpus, probed_runs
from .run import study_corpus
from .seed import SeedRuns

# wall-clock, not results (wall_seconds_this_run: in the iteration records of earlier versions)
TIMES = frozenset({"seconds", "wall", "train_seconds", "sidecar_seconds", "wall_seconds_this_run"})
SHOWN = 5  # differences listed per record
PATH_END = r"(?=[/\s\"',;:\]=]|$)"  # a path's root ends where a path separator or a delimiter follows


class NotReproduced(AeHubertError):
    """The rerun ran, and some of its figures differ from the original's (exit status 1)."""
    exit_status = 1


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError) as e:
        raise StudyError(f"{path}: unreadable ({e})") from None
    if not isinstance(value, dict):
        raise StudyError(f"{path}: not a JSON dict")
    return value


def _same_number(a, b, tolerance: float) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b  # counts (updates, K) are exact whatever the tolerance
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=tolerance, abs_tol=0.0)


def differences(original, rerun, tolerance: float = 0.0, where: str = "") -> list[tuple[str, object, object]]:
    """Every leaf of two records that differs (non-integer numbers by more than ``tolerance``,
    relative), as (key path, original, rerun); wall-clock times (:data:`TIMES`) are skipped."""
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
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (original, rerun)):
        return [] if _same_number(original, rerun, tolerance) else [(where.lstrip("."), original, rerun)]
    same = original == rerun and isinstance(original, bool) == isinstance(rerun, bool)  # True == 1 in Python
    return [] if same else [(where.lstrip("."), original, rerun)]


def _relative(record, roots: list[str]):
    """``record`` with each of ``roots`` (a work dir as given, as its real path, as recorded) and
    the package's directory replaced, in every string, by the placeholders a results copy writes,
    so that paths compare by their place in their work dir."""
    forms = [(re.compile(re.escape(form) + PATH_END), to) for path, to in ((PACKAGE, PACKAGE_DIR),
             *((r, WORK_DIR) for r in roots)) for p in dict.fromkeys((path, os.path.realpath(path)))
             for form in dict.fromkeys((p, json.dumps(p)[1:-1]))]

    def rewrite(value):
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        if isinstance(value, str):
            for pattern, to in forms:
                value = pattern.sub(lambda _: to, value)
        return value

    return rewrite(record)


def _recorded_root(records: dict[str, object], run: str, seed: int) -> list[str]:
    """The work dir the original's records name (the study's path when it ran, which a moved or
    linked work dir no longer has), read from its checkpoints' paths."""
    inside = os.sep + os.path.join("runs", run, f"s{seed}") + os.sep
    roots = set()
    for record in records.values():
        ckpt = record.get("checkpoint") if isinstance(record, dict) else None
        if isinstance(ckpt, str) and os.path.isabs(ckpt) and inside in ckpt:
            roots.add(ckpt[:ckpt.index(inside)])
    return sorted(roots)


def _schedule(study, run: str) -> tuple[str, str]:
    """The hypothesis and schedule the study trains ``run`` by."""
    for h, specs in study.schedules.items():
        for spec in (specs.values() if isinstance(specs, dict) else [specs]):
            if schedule_name(spec) == run:
                return h, spec
    raise StudyError(f"{study.path}: no schedule of the study is named {run}")


def _settings(summary_path: str, summary: dict, study) -> None:
    """The original's K and measurement settings (its ``study.json``) are the config's."""
    theirs = summary.get("measure", {})
    if not isinstance(theirs, dict):
        raise StudyError(f"{summary_path}: 'measure' is not a mapping")
    theirs = {**({"k": summary["k"]} if "k" in summary else {}), **theirs}
    ours = {"k": study.k, **dataclasses.asdict(study.measure)}
    for key in sorted(set(theirs) & set(ours)):  # a setting added since the original cannot differ from it
        if theirs[key] != ours[key]:
            raise StudyError(f"{summary_path}: {key} is {theirs[key]!r}, the study config {study.path} says "
                             f"{ours[key]!r}: pass the original's config (--config)")


def _originals(results: str, run: str, seed: int) -> dict[str, object]:
    """What the original holds of seed ``seed`` of ``run``, read before any training: each
    iteration's ``record.json`` and each probe marker's result, by path relative to ``results``."""
    home = os.path.join("runs", run, f"s{seed}")
    its = sorted(d for d in os.listdir(os.path.join(results, home)) if os.path.isfile(
        os.path.join(results, home, d, "record.json"))) if os.path.isdir(os.path.join(results, home)) else []
    markers = os.path.join(results, MARKER_DIR)
    probes = sorted((f for f in os.listdir(markers) if f.startswith(f"s{seed}.{run}.") and PROBE_MARKER.fullmatch(f)),
                    key=lambda f: (f.split(".")[2], int(PROBE_MARKER.fullmatch(f)["updates"]))) \
        if os.path.isdir(markers) else []
    if not its or not probes:
        raise StudyError(f"{results}: no {'iteration record' if not its else 'probe'} of {run} seed {seed} to "
                         f"compare with (under {home if not its else MARKER_DIR})")
    out: dict[str, object] = {os.path.join(home, it, "record.json"): _read_json(os.path.join(results, home, it,
                                                                                            "record.json"))
                              for it in its}
    for f in probes:
        path = os.path.join(markers, f)
        marker = _read_json(path)
        if not isinstance(marker.get("result"), dict):
            raise StudyError(f"{path}: a probe marker without its result")
        out[os.path.join(MARKER_DIR, f)] = marker["result"]
    return out


def _check_corpus(results: str, corpus: str, echo: Callable[[str], None]) -> None:
    """The corpus the rerun trains on is the original's: its results copy's fingerprint, or the
    original work dir's own corpus, fingerprinted here."""
    from ..corpus.corpus_files import fingerprint

    if os.path.isfile(os.path.join(results, EXPECTED_CORPUS)):
        check_rebuilt_corpus(results, corpus, echo)
        return
    theirs = os.path.join(results, "corpus")
    if not os.path.isfile(os.path.join(theirs, "train.tsv")):
        echo(f"{results}: neither a corpus fingerprint ({EXPECTED_CORPUS}) nor a corpus: the rerun's corpus is not "
             "checked against the original's")
        return
    if os.path.realpath(theirs) != os.path.realpath(corpus):
        a, b = fingerprint(theirs), fingerprint(corpus)
        differ = sorted(k for k in a if a[k] != b.get(k))
        if differ:
            raise StudyError(f"{corpus}: not the corpus of {results} ({' and '.join(differ)} differ from {theirs})")


def rerun(results: str, run: str, seed: int, work_dir: str, config: str | None = None, data: str | None = None,
          tolerance: float = 0.0, echo: Callable[[str], None] = print) -> dict:
    """Train seed ``seed`` of ``run`` again under ``work_dir`` and compare it with ``results`` (the
    original study's work dir or results copy); raises :class:`NotReproduced` when a figure differs.
    Resumable like the study: the same call after a kill goes on where it stopped."""
    summary_path = os.path.join(results, "study.json")
    summary = _read_json(summary_path)
    if config is None and not isinstance(summary.get("study"), str):
        raise StudyError(f"{summary_path}: names no study config ('study'); pass --config")
    study = load_study(config or summary["study"])
    _settings(summary_path, summary, study)
    known = [os.path.basename(r) for r in probed_runs(results) or []]
    run = os.path.basename(run.rstrip("/"))
    if run not in known:
        raise StudyError(f"{results}: {run} is not a run the study probed over updates; it has: "
                         + (", ".join(known) or "none (no probed_runs.json)"))
    hypothesis, spec = _schedule(study, run)
    originals = _originals(results, run, seed)
    iterations = sum(1 for rel in originals if rel.endswith("record.json"))
    wanted: dict[str, set[int]] = {}  # iteration: the updates of the checkpoints the original probed
    for rel in originals:
        if rel.startswith(MARKER_DIR):
            m = PROBE_MARKER.fullmatch(os.path.basename(rel))
            wanted.setdefault(m["piece"].split(".")[-1], set()).add(int(m["updates"]))
    w = os.path.abspath(work_dir)
    if os.path.realpath(w) == os.path.realpath(results):
        raise StudyError(f"{w}: the rerun needs its own work dir, not the original's")
    study.data = data or study.data
    with WorkDirLock(w, "study-rerun", reads=(study.data,) if study.data else ()):
        stages = Stages(w, echo)
        study.data = study.data or study_corpus(study, w, stages)
        _check_corpus(results, study.data, echo)
        seed_runs = SeedRuns(plan_study(study, [hypothesis]), [hypothesis], w, seed, stages, echo)
        _, records = seed_runs.run(spec, iterations=iterations)
        for record in records:
            seed_runs.probe_every_checkpoint(run, record, only=wanted.get(record["iteration"], set()))
        compared = _compare(originals, w, [os.path.abspath(results), *_recorded_root(originals, run, seed)],
                            tolerance)
    differ = {k: v for k, v in compared.items() if v}
    lines = [f"{k}: {'identical' if not v else f'{len(v)} differ'}" for k, v in compared.items()]
    for k, v in differ.items():
        lines += [f"  {k}: {path}: {a!r} -> {b!r}" for path, a, b in v[:SHOWN]]
    echo("\n".join(lines))
    out = {"run": run, "seed": seed, "results": os.path.abspath(results), "work_dir": w, "tolerance": tolerance,
           "compared": len(compared), "differ": {k: len(v) for k, v in differ.items()}}
    if differ:
        raise NotReproduced(f"{len(differ)} of {len(compared)} records of {run} seed {seed} differ from {results}")
    return out


def _compare(originals: dict[str, object], w: str, roots: list[str], tolerance: float) -> dict[str, list]:
    """``{record: differences}`` for each record the original holds against the rerun's."""
    out = {}
    for rel, original in originals.items():
        ours = os.path.join(w, rel)
        if not os.path.isfile(ours):
            out[rel] = [("", "recorded", "missing from the rerun")]
            continue
        mine = _read_json(ours)
        out[rel] = differences(_relative(original, roots),
                               _relative(mine["result"] if rel.startswith(MARKER_DIR) else mine, [w]), tolerance)
    return out
