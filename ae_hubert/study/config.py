"""A study YAML (``config/study/*.yaml``): its schema, and the check of everything it will run.

    name: study_cpu
    corpus: {utterances: 3000, seed: 0, vocabulary: 3000}   # the synthetic corpus to build
    data: null                  # or an existing corpus's manifests
    seeds: 3
    overrides: []               # hydra overrides for every pretraining run
    k: 100                      # every target's K, and the K of every clustering measured
    measure: {train_utterances: 300, valid_utterances: 300, probe_utterances: 200, ctc_steps: 150,
              phone_train_utterances: 1000, phone_utterances: 300, phone_steps: 1000}
    finetune: {config: finetune/toy_cpu, overrides: [], ks: [0, 1, 2, 3], split: test, judge: wer}
    downstream: [letter_ctc, phone_ctc, phone_recognition]   # H6's downstream measures (downstream.py)
    schedules:
      H1: study_h1              # the runs every hypothesis measures (MFCC targets, then a layer's)
      H4: {middle: study_h4_middle, top: study_h4_top}   # an armed hypothesis: {arm: schedule}

Paths in the file are relative to it. Errors are one line naming the field (``common/schema.py``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


from ..common.errors import AeHubertError
from ..common.schema import did_you_mean, file_name, load_yaml, read, spec
from ..pipeline.schedule import Schedule, load_schedule, owned_override, shipped_config
from ..runner.configs import override_key
from .downstream import MEASURES
from .hypotheses import armed, hypotheses, names
from .records import StudyError

JUDGES = ("wer", "cer")  # the fine-tuning error rate the verdicts compare (both are always reported)
SEED_KEYS = ("common.seed", "seed")


def _not_the_seed(override: str) -> str | None:
    return "the seed is the study's (seeds: N), not an override" if override_key(override) in SEED_KEYS else None


def _study_override(override: str) -> str | None:
    return owned_override(override) or _not_the_seed(override)


def _finetune_override(override: str) -> str | None:
    from ..finetune.reset_sweep import SWEEP_OWNED

    key = override_key(override)
    if key in SWEEP_OWNED or key in SEED_KEYS:
        return f"{key} is set by the study for every fine-tuning"
    return owned_override(override)


@dataclass
class Corpus:
    utterances: int = spec(3000, minimum=30, maximum=10 ** 7)
    seed: int = spec(0, minimum=0, maximum=2 ** 32 - 1)
    vocabulary: int = spec(3000, minimum=50)


@dataclass
class Measure:
    train_utterances: int = spec(300, minimum=1)  # clustering protocol: fit and choose on train ...
    valid_utterances: int = spec(300, minimum=1)  # ... report on valid
    probe_utterances: int = spec(200, minimum=1)
    ctc_steps: int = spec(150, minimum=1)
    # the weighted-sum phone recogniser (analysis/phone_recognition.py): trained on this many train
    # utterances for this many steps, scored on the fine-tuning's split
    phone_train_utterances: int = spec(1000, minimum=1)
    phone_utterances: int = spec(300, minimum=1)
    phone_steps: int = spec(1000, minimum=1)


@dataclass
class Finetune:
    config: str = "finetune/toy_cpu"
    overrides: list[str] = spec([], check=_finetune_override)
    ks: list[int] = spec([0, 1, 2, 3], minimum=0)  # top layers reset before fine-tuning (H3)
    split: str = spec("test", check=file_name)
    judge: str = spec("wer", choices=JUDGES)


@dataclass
class Study:
    schedules: dict[str, Any] = spec()  # H1: schedule; an armed hypothesis: {arm: schedule}
    name: str | None = spec(None, check=file_name)  # default: the file's name
    description: str = ""
    corpus: Corpus = spec(Corpus())
    data: str | None = None
    seeds: int = spec(3, minimum=1, maximum=100)
    overrides: list[str] = spec([], check=_study_override)
    k: int = spec(100, minimum=2)
    measure: Measure = spec(Measure())
    finetune: Finetune = spec(Finetune())
    # the downstream measures H6 judges by (H0 takes every one: it measures which has the power)
    downstream: list[str] = spec(list(MEASURES), choices=tuple(MEASURES), nonempty=True)
    path: str = spec("", derived=True)


def load_study(spec_or_path: str) -> Study:
    """Parse and validate a study YAML; every error names the field."""
    path = shipped_config(spec_or_path, "study", StudyError)
    where = path
    study = read(Study, load_yaml(path, "study", StudyError), where, error=StudyError)
    study.path = os.path.abspath(path)
    study.name = study.name or os.path.splitext(os.path.basename(path))[0]
    if file_name(study.name):
        raise StudyError(f"{where}: name: {file_name(study.name)}")
    study.schedules = _schedules(study.schedules, where)
    ks = study.finetune.ks
    if 0 not in ks or len(set(ks)) < len(ks):
        raise StudyError(f"{where}: finetune.ks: distinct k >= 0 including 0 (fine-tuning every layer), got {ks}")
    study.finetune.ks = sorted(ks)
    if len(set(study.downstream)) < len(study.downstream):
        raise StudyError(f"{where}: downstream: each measure once, got {study.downstream}")
    here = os.path.dirname(study.path)  # relative paths in a study file are relative to that file

    def near(spec: str) -> str:
        return os.path.join(here, spec) if not os.path.isabs(spec) and os.path.isfile(os.path.join(here, spec)) \
            else spec

    if study.data == "":
        raise StudyError(f"{where}: data: empty (a corpus's manifest directory, or leave it out to build one)")
    if study.data is not None and not os.path.isabs(study.data):
        study.data = os.path.join(here, study.data)
    study.schedules = {h: {a: near(v) for a, v in s.items()} if isinstance(s, dict) else near(s)
                       for h, s in study.schedules.items()}
    study.finetune.config = near(study.finetune.config)
    return study


def _schedules(node: dict, where: str) -> dict:
    """``schedules``: per hypothesis, its schedule (H1's: the runs every hypothesis measures) or, for
    an armed one, its arms."""
    known = [h for h, m in hypotheses().items() if m.ARMS or getattr(m, "SCHEDULE", False)]
    out = {}
    for h, value in node.items():
        what = f"{where}: schedules.{h}"
        if h not in known:
            raise StudyError(f"{what}: unknown key" + did_you_mean(h, known))
        if h in armed():
            if not isinstance(value, dict) or len(value) == 0:
                raise StudyError(f"{what}: give at least one arm (name: schedule)")
            for arm in value:
                if not isinstance(arm, str):  # YAML reads yes/no/on/off, 010 or 1:30 as other values
                    raise StudyError(f"{what}: arm name {arm!r} is not text as written: quote it")
            for arm, s in value.items():
                if file_name(arm):
                    raise StudyError(f"{what}: {file_name(arm)}")
                if not isinstance(s, str):
                    raise StudyError(f"{what}.{arm}: expected a schedule (a file or a shipped name), got {s!r}")
            out[h] = value
        elif not isinstance(value, str):
            raise StudyError(f"{what}: expected a schedule (a file or a shipped name), got {value!r}")
        else:
            out[h] = value
    if "H1" not in out:
        raise StudyError(f"{where}: schedules.H1: required (the runs every hypothesis measures)")
    return out


def wanted(study: Study, only: list[str] | None) -> list[str]:
    """The hypotheses a call measures: ``--only``'s, or every one the study sets up."""
    if only is None:
        return [h for h in names() if h not in armed() or h in study.schedules]
    for h in only:
        if h not in names():
            raise StudyError(f"--only {h}: unknown hypothesis; known: {', '.join(names())}")
        if h in armed() and h not in study.schedules:
            raise StudyError(f"--only {h}: {study.path}: schedules.{h} is not set (the arms {h} compares)")
    return [h for h in names() if h in only]


def schedule_name(spec: str) -> str:
    """A schedule's runs live under W/runs/NAME."""
    return os.path.splitext(os.path.basename(spec))[0]


@dataclass
class Plan:
    """Everything a call will run, as the hypotheses' checks found it: H1's schedule, every run's
    total updates, the reference arm of each armed hypothesis, and the fine-tunings to compose."""
    study: Study
    h1: Schedule
    updates: dict[str, int] = field(default_factory=dict)  # H1, or HN.ARM: total updates
    references: dict[str, str] = field(default_factory=dict)  # armed hypothesis: its reference arm's name
    runs: dict[str, str] = field(default_factory=dict)  # schedule name: the entry of the study that runs it
    probed_runs: list[str] = field(default_factory=list)  # runs/NAME whose interval checkpoints are probed
    finetune_ks: set[int] = field(default_factory=set)
    finetuned_depths: list[int] = field(default_factory=list)

    def load(self, spec: str, what: str, **kw) -> Schedule:
        """A schedule as the study runs it (its overrides, a seed); errors as the study's, naming the
        study's field (``what``) that gives the schedule."""
        try:
            return load_schedule(spec, self.study.data, [*self.study.overrides, "common.seed=1"], **kw)
        except AeHubertError as e:
            raise StudyError(f"{self.study.path}: {what}: {e}") from None

    def same_k(self, s: Schedule, what: str) -> None:
        bad = [f"{it.name}: {t.k}" for it in s.iterations for t in it.targets
               if t.k != self.study.k and t.source != "phones"]
        if bad:
            raise StudyError(f"{s.path}: {what}: targets with K other than the study's k={self.study.k} "
                             f"({', '.join(bad)})")

    def finetunes(self, ks, depths) -> None:
        """The hypothesis fine-tunes models of these depths with these ks reset."""
        self.finetune_ks.update(ks)
        self.finetuned_depths.extend(depths)


def check_schedules(study: Study, wanted_hypotheses: list[str]) -> dict:
    """:func:`plan_study`'s findings: ``{"updates": {run: total updates}, "references": {armed
    hypothesis: reference arm}}``."""
    plan = plan_study(study, wanted_hypotheses)
    return {"updates": plan.updates, "references": plan.references}


def plan_study(study: Study, wanted_hypotheses: list[str]) -> Plan:
    """Everything the wanted hypotheses will run, checked before any work: H1's schedule (two
    iterations, the study's K), each hypothesis's own check (its arms fair, see h4.py and h5.py),
    and the fine-tunings they need (config, overrides, ks against the models' depth, label files).
    The plan goes to every seed's measurements (``seed.SeedRuns``)."""
    from ..finetune.reset_sweep import check_sweep_inputs
    from ..runner.trainer import resolve_train_config

    plan = Plan(study, None)
    plan.h1 = h1 = plan.load(study.schedules["H1"], "schedules.H1")
    if len(h1.iterations) < 2:
        raise StudyError(f"{h1.path}: H1 needs two iterations (MFCC targets, then layer targets), "
                         f"got {len(h1.iterations)}")
    plan.same_k(h1, "schedules.H1")
    plan.updates["H1"] = h1.total_updates
    plan.runs[schedule_name(study.schedules["H1"])] = "schedules.H1"
    # recorded whatever --only says: a later H2 call needs the H1 run's interval checkpoints
    plan.probed_runs.append(os.path.join("runs", schedule_name(study.schedules["H1"])))
    for h in wanted_hypotheses:
        hypotheses()[h].check(plan)
    if plan.finetune_ks:
        ft = study.finetune
        try:
            cfg_dir, cfg_name = resolve_train_config(ft.config, "finetune.config")
            check_sweep_inputs(study.data, sorted(plan.finetune_ks), min(plan.finetuned_depths), "reinit", cfg_dir,
                               cfg_name, [*ft.overrides, "common.seed=1"], (ft.split,))
        except AeHubertError as e:
            raise StudyError(f"{study.path}: finetune: {e}") from None
    return plan

