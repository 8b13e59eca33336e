"""``ae-hubert study``: the paper's questions measured over seeds, resumable in pieces.

A study is a YAML file (``config/study/*.yaml``): the corpus to build, the number of seeds, the
schedule each hypothesis trains, and the sizes of the measurements. For every seed each schedule is
run by ``iterate`` (``common.seed`` = the seed) under ``W/runs/SCHEDULE/sSEED``; every measurement
of a finished run is a stage of its own (``W/.stages``), so a killed study reruns only what was
unfinished, and ``--seeds`` can be raised later. The results are summarised over seeds
(``analysis/study_summary.py``) into ``W/study.json``, ``W/study.md`` and plots with error bars.

- H1: the iteration-1 model's best layer clusters vs MFCC clusters (``cluster-quality``, same K,
  voice-disjoint valid), and the iteration-2 model's best-layer phone accuracy vs iteration 1's at
  equal updates (``probe`` of each iteration's last checkpoint).
- H2: the per-layer probes of every checkpoint of the same runs, over updates and iterations.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Callable

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..common.errors import AeHubertError
from ..runner.lock import WorkDirLock
from ..runner.stages import Stages
from .schedule import _get, _int, _mapping, _name, _overrides, _str, load_schedule, shipped_config

HYPOTHESES = ("H1", "H2")
NEEDS = {"H1": "H1", "H2": "H1"}  # the schedule whose runs a hypothesis measures
TOP_KEYS = ("name", "description", "corpus", "data", "seeds", "overrides", "k", "measure", "schedules")
CORPUS_KEYS = ("utterances", "seed", "vocabulary")
MEASURE_KEYS = ("train_utterances", "valid_utterances", "probe_utterances", "ctc_steps")


class StudyError(AeHubertError):
    pass


@dataclass
class Study:
    name: str
    path: str
    corpus: dict
    data: str | None
    seeds: int
    overrides: list[str]
    k: int
    measure: dict
    schedules: dict[str, str] = field(default_factory=dict)


def load_study(spec: str) -> Study:
    """Parse and validate a study YAML; every error names the field."""
    path = shipped_config(spec, "study", StudyError)
    where = os.path.basename(path)
    try:
        raw = OmegaConf.load(path)
        return _parse(raw, path, where)
    except (OmegaConfBaseException, OSError, ValueError, yaml.YAMLError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StudyError(f"{path}: not a readable YAML study ({first})") from None


def _parse(raw, path: str, where: str) -> Study:
    try:
        _mapping(raw, where, TOP_KEYS)
        corpus = _mapping(_get(raw, "corpus", where, DictConfig({})), f"{where}: corpus", CORPUS_KEYS)
        measure = _mapping(_get(raw, "measure", where, DictConfig({})), f"{where}: measure", MEASURE_KEYS)
        schedules = _mapping(_get(raw, "schedules", where, required=True), f"{where}: schedules", HYPOTHESES)
        data = _get(raw, "data", where)
        study = Study(
            name=_name(_get(raw, "name", where, os.path.splitext(os.path.basename(path))[0]), f"{where}: name"),
            path=os.path.abspath(path),
            corpus={"utterances": _int(_get(corpus, "utterances", where, 3000), f"{where}: corpus.utterances", 30),
                    "seed": _int(_get(corpus, "seed", where, 0), f"{where}: corpus.seed", 0, 2 ** 32 - 1),
                    "vocabulary": _int(_get(corpus, "vocabulary", where, 3000), f"{where}: corpus.vocabulary", 50)},
            data=None if data is None else _str(data, f"{where}: data"),
            seeds=_int(_get(raw, "seeds", where, 3), f"{where}: seeds", 1, 100),
            overrides=_overrides(_get(raw, "overrides", where, OmegaConf.create([])), f"{where}: overrides"),
            k=_int(_get(raw, "k", where, 100), f"{where}: k", 2),
            measure={key: _int(_get(measure, key, where, default), f"{where}: measure.{key}", 1)
                     for key, default in (("train_utterances", 300), ("valid_utterances", 300),
                                          ("probe_utterances", 200), ("ctc_steps", 150))},
            schedules={h: _str(s, f"{where}: schedules.{h}") for h, s in schedules.items()})
        if "H1" not in study.schedules:
            raise StudyError(f"{where}: schedules.H1: required (the runs every hypothesis measures)")
    except StudyError:
        raise
    except AeHubertError as e:  # the schedule helpers' errors, re-raised as the study's
        raise StudyError(str(e)) from None
    for i, o in enumerate(study.overrides):
        if o.lstrip("+~").split("=", 1)[0] in ("common.seed", "seed"):
            raise StudyError(f"{where}: overrides[{i}]: the seed is the study's (seeds: N), not an override")
    here = os.path.dirname(study.path)  # relative paths in a study file are relative to that file
    if study.data is not None and not os.path.isabs(study.data):
        study.data = os.path.join(here, study.data)
    for h, spec in study.schedules.items():
        if not os.path.isabs(spec) and os.path.isfile(os.path.join(here, spec)):
            study.schedules[h] = os.path.join(here, spec)
    return study


def _wanted(study: Study, only: list[str] | None) -> list[str]:
    if only is None:
        return [h for h in HYPOTHESES if NEEDS[h] in study.schedules]
    for h in only:
        if h not in HYPOTHESES:
            raise StudyError(f"--only {h}: unknown hypothesis; known: {', '.join(HYPOTHESES)}")
        if NEEDS[h] not in study.schedules:
            raise StudyError(f"--only {h}: {study.path}: schedules.{NEEDS[h]} is not set (it trains {h}'s runs)")
    return [h for h in HYPOTHESES if h in only]


def _json_round_trip(value):
    """Results as they read back from a stage marker (int keys become strings), fresh or resumed."""
    return json.loads(json.dumps(value))


def saved_checkpoints(ckpt_dir: str) -> dict[int, str]:
    """``{updates: path}`` of every checkpoint a run saved (read from each file, not its name); an
    interval checkpoint is preferred to ``checkpoint_best``/``_last`` holding the same update."""
    from ..analysis.checkpoints import checkpoint_runs
    from ..runner.trainer import checkpoint_updates

    out: dict[int, str] = {}
    for f in checkpoint_runs([ckpt_dir])[0][1]:  # sorted: checkpoint_E_U before _best and _last
        updates = checkpoint_updates(f)
        if updates is not None:
            out.setdefault(updates, f)
    return dict(sorted(out.items()))


def run_study(spec: str, work_dir: str, seeds: int | None = None, only: list[str] | None = None,
              data: str | None = None, echo: Callable[[str], None] = print) -> dict:
    """Run (or resume) a study; returns the summary also written to ``W/study.json``."""
    from ..analysis.study_summary import summarise, write_study

    study = load_study(spec)
    if seeds is not None:
        study.seeds = seeds
    if data is not None:
        study.data = data
    wanted = _wanted(study, only)
    w = os.path.abspath(work_dir)
    needed = sorted({study.schedules[NEEDS[h]] for h in wanted})
    if study.data is not None:  # every schedule is validated (and its configs composed) before any work
        for name in needed:
            load_schedule(name, study.data, [*study.overrides, "common.seed=1"])
    with WorkDirLock(w):
        stages = Stages(w, echo)
        corpus = study.data or os.path.join(w, "corpus")
        if study.data is None:
            from ..corpus.study_corpus import build

            stages.run("corpus", lambda: build(corpus, **study.corpus)["splits"],
                       command=json.dumps(study.corpus, sort_keys=True))
        per_seed = []
        for seed in range(1, study.seeds + 1):
            per_seed.append(_measure_seed(study, wanted, w, corpus, seed, stages, echo))
        summary = summarise(study, wanted, per_seed)
        summary["files"] = write_study(summary, w)
    return summary


def _measure_seed(study: Study, wanted: list[str], w: str, corpus: str, seed: int, stages: Stages,
                  echo: Callable[[str], None]) -> dict:
    from .iterate import iterate

    out = {"seed": seed}
    schedule = study.schedules["H1"]
    run_dir = os.path.join(w, "runs", os.path.splitext(os.path.basename(schedule))[0], f"s{seed}")
    records = iterate(schedule, run_dir, data=corpus, overrides=[*study.overrides, f"common.seed={seed}"],
                      echo=echo)
    if len(records) < 2:
        raise StudyError(f"{schedule}: H1 needs two iterations (MFCC targets, then layer targets), "
                         f"got {len(records)}")
    m = study.measure
    iters = {r["iteration"]: r for r in records[:2]}
    first = records[0]
    prefix = f"s{seed}.{os.path.basename(os.path.dirname(run_dir))}"
    out["records"] = [{k: r[k] for k in ("iteration", "updates", "targets", "train_seconds", "sidecar_seconds")}
                      for r in records]

    def settings(ckpt: str, *keys: str) -> str:  # a measurement done with other settings is refused, not reused
        text = json.dumps({"k": study.k, "corpus": corpus, "ckpt": ckpt, **{key: m[key] for key in keys}},
                          sort_keys=True)
        return text.replace(w, "$W")  # a moved work dir still resumes

    if "H1" in wanted:
        from ..analysis.cluster_quality import cluster_quality

        out["cluster_quality"] = stages.run(f"{prefix}.cluster_quality", lambda: _json_round_trip(cluster_quality(
            corpus, study.k, first["checkpoint"], train_utterances=m["train_utterances"],
            valid_utterances=m["valid_utterances"], seed=seed)),
            command=settings(first["checkpoint"], "train_utterances", "valid_utterances"))

    def probe(it: str, updates: int, ckpt: str) -> dict:
        from ..analysis.layer_probe import probe_layers

        return stages.run(f"{prefix}.{it}.probe.{updates}", lambda: _json_round_trip({
            **probe_layers(ckpt, corpus, k=study.k, max_utterances=m["probe_utterances"], seed=seed,
                           ctc_steps=m["ctc_steps"]), "iteration": it}),
            command=settings(ckpt, "probe_utterances", "ctc_steps"))

    out["probes"] = {}
    for it, r in iters.items():
        ckpt_dir = os.path.dirname(r["checkpoint"])
        ckpts = {r["updates"]: r["checkpoint"]}
        if "H2" in wanted:
            ckpts = {**saved_checkpoints(ckpt_dir), **ckpts}
        out["probes"][it] = {str(u): probe(it, u, path) for u, path in sorted(ckpts.items())}
    return out

