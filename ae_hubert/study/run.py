"""``ae-hubert study``: run (or resume) a study, every seed, every wanted hypothesis, and summarise."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable

from ..common.lock import WorkDirLock
from ..runner.stages import Stages
from .config import load_study, plan_study, wanted as wanted_hypotheses
from .records import StudyError, check_rebuilt_corpus, record_probed_runs
from .seed import SeedRuns


def run_study(spec: str, work_dir: str, seeds: int | None = None, only: list[str] | None = None,
              data: str | None = None, echo: Callable[[str], None] = print,
              only_seeds: list[int] | None = None) -> dict:
    """Run (or resume) a study; returns the summary also written to ``W/study.json``. ``only_seeds``
    runs and summarises just those seeds (one machine or session per seed; a last call over all of
    them, with everything done, summarises the whole study). A call narrower than the summary
    already in ``W`` writes its own under ``W/partial/`` (``summary_dir``) and leaves that one."""
    from .summary import summarise, summary_dir, write_study

    study = load_study(spec)
    if seeds is not None:
        study.seeds = seeds
    if data is not None:
        study.data = data
    beyond = [s for s in only_seeds or [] if s > study.seeds]
    if beyond:  # the last call over all seeds would leave them out of the summary
        raise StudyError(f"--only-seeds {beyond[0]}: the study has seeds 1..{study.seeds} (raise --seeds)")
    wanted = wanted_hypotheses(study, only)
    w = os.path.abspath(work_dir)
    corpus_check = None
    if study.data is not None:  # every schedule is checked (and its configs composed) before any work
        plan = plan_study(study, wanted)
    with WorkDirLock(w, "study", reads=(study.data,) if study.data else ()):  # (--data: read, never claimed)
        stages = Stages(w, echo)
        if study.data is None:  # the schedules need the corpus's manifests: checked once it is built
            study.data = study_corpus(study, w, stages)
            corpus_check = check_rebuilt_corpus(w, study.data, echo)
            plan = plan_study(study, wanted)
        for run in plan.probed_runs:
            record_probed_runs(w, run)
        per_seed = [SeedRuns(plan, wanted, w, seed, stages, echo).measure()
                    for seed in (only_seeds or range(1, study.seeds + 1))]
        summary = summarise(study, wanted, per_seed)
        if corpus_check is not None:
            summary["corpus_check"] = corpus_check
        out = summary_dir(summary, w, echo)
        summary["files"] = write_study(summary, out)
        summary["summary_dir"] = out
    return summary


def study_corpus(study, w: str, stages: Stages) -> str:
    """The study's own corpus, built from its seed as ``W/corpus`` (a resumable stage)."""
    from ..corpus.study_corpus import build

    out = os.path.join(w, "corpus")
    corpus = dataclasses.asdict(study.corpus)
    stages.run("corpus", lambda: build(out, **corpus)["splits"], command=json.dumps(corpus, sort_keys=True))
    return out
