"""``ae-hubert study``: the paper's questions measured over seeds, resumable in pieces.

A study is a YAML file (``config/study/*.yaml``): the corpus to build, the number of seeds, the
schedules the hypotheses train, the fine-tuning they share and the sizes of the measurements. For
every seed each schedule is run by ``iterate`` (``common.seed`` = the seed) under
``W/runs/SCHEDULE/sSEED``; every measurement of a finished run is a stage of its own
(``W/.stages``; fine-tunings are ``reset-sweep`` work dirs under ``W/finetune``), so a killed study
reruns only what was unfinished, and ``--seeds`` can be raised later. The results are summarised
over seeds (``analysis/study_summary.py``) into ``W/study.json``, ``W/study.md`` and plots with
error bars.

- H1: the iteration-1 model's best layer clusters vs MFCC clusters (``cluster-quality``, same K,
  voice-disjoint valid), and the iteration-2 model's best-layer phone accuracy vs iteration 1's at
  equal updates (``probe`` of each iteration's last checkpoint).
- H2: the per-layer probes of every checkpoint of the same runs, over updates and iterations.
- H3: WER and CER on the voice-disjoint test set after fine-tuning with the top k layers reset, for
  each k of the study's list, on the iteration-1 and iteration-2 models of the same runs; verdicts
  compare the study's ``finetune.judge`` (WER, or CER where WER saturates).
- H4: clustering height: H1's iteration 2 (its layer, ``auto`` in the shipped study) against
  schedules that train the same iteration on another layer's clusters, started from the same
  iteration-1 model (``start_from``) with the same updates; judged by the targets' PNMI, the new
  model's best-layer phone accuracy and its judged error rate after fine-tuning (k = 0).
- H5: iteration structure: H1's runs (the standard recipe) against schedules with the same total
  updates or half of them; judged by the final model's best-layer cluster PNMI (the labels it
  would give) and its judged error rate after the same fine-tuning (k = 0).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Callable

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..common.atomic import write_text_atomic
from ..common.checkpoint import saved_checkpoints
from ..common.errors import AeHubertError
from ..runner.configs import override_key
from ..runner.lock import WorkDirLock
from ..runner.stages import Stages
from .schedule import _get, _int, _list, _mapping, _name, _overrides, _str, load_schedule, shipped_config

HYPOTHESES = ("H1", "H2", "H3", "H4", "H5")
ARMED = ("H4", "H5")  # hypotheses whose schedules are arms (name: schedule), compared against H1's runs
TOP_KEYS = ("name", "description", "corpus", "data", "seeds", "overrides", "k", "measure", "finetune", "schedules")
CORPUS_KEYS = ("utterances", "seed", "vocabulary")
MEASURE_KEYS = ("train_utterances", "valid_utterances", "probe_utterances", "ctc_steps")
JUDGES = ("wer", "cer")  # the fine-tuning error rate H3-H5's verdicts compare (both are always reported)
FINETUNE_KEYS = ("config", "overrides", "ks", "split", "judge")


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
    schedules: dict = field(default_factory=dict)  # H1: schedule; H4/H5: {arm: schedule}
    finetune: dict = field(default_factory=dict)  # config, overrides, ks, split


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


def _schedules(raw, where: str) -> dict:
    node = _mapping(_get(raw, "schedules", where, required=True), f"{where}: schedules", ("H1", *ARMED))
    out = {}
    for h, value in node.items():
        if h in ARMED:
            arms = value
            if not isinstance(arms, DictConfig) or len(arms) == 0:
                raise StudyError(f"{where}: schedules.{h}: give at least one arm (name: schedule)")
            out[h] = {_name(a, f"{where}: schedules.{h}"): _str(v, f"{where}: schedules.{h}.{a}")
                      for a, v in arms.items()}
        else:
            out[h] = _str(value, f"{where}: schedules.{h}")
    if "H1" not in out:
        raise StudyError(f"{where}: schedules.H1: required (the runs every hypothesis measures)")
    return out


def _finetune(raw, where: str) -> dict:
    node = _mapping(_get(raw, "finetune", where, DictConfig({})), f"{where}: finetune", FINETUNE_KEYS)
    ks = [_int(k, f"{where}: finetune.ks", 0) for k in _list(_get(node, "ks", where, ListConfig([0, 1, 2, 3])),
                                                              f"{where}: finetune.ks")]
    if 0 not in ks or len(set(ks)) < len(ks):
        raise StudyError(f"{where}: finetune.ks: distinct k >= 0 including 0 (fine-tuning every layer), got {ks}")
    out = {"config": _str(_get(node, "config", where, "finetune/toy_cpu"), f"{where}: finetune.config"),
           "overrides": _overrides(_get(node, "overrides", where, ListConfig([])), f"{where}: finetune.overrides"),
           "ks": sorted(ks), "split": _name(_get(node, "split", where, "test"), f"{where}: finetune.split"),
           "judge": _str(_get(node, "judge", where, "wer"), f"{where}: finetune.judge")}
    if out["judge"] not in JUDGES:
        raise StudyError(f"{where}: finetune.judge: one of {', '.join(JUDGES)}, got {out['judge']!r}")
    from ..finetune.reset_sweep import SWEEP_OWNED

    for i, o in enumerate(out["overrides"]):
        key = override_key(o)
        if key in SWEEP_OWNED or key in ("common.seed", "seed"):
            raise StudyError(f"{where}: finetune.overrides[{i}]: {key} is set by the study for every fine-tuning")
    return out


def _parse(raw, path: str, where: str) -> Study:
    try:
        _mapping(raw, where, TOP_KEYS)
        corpus = _mapping(_get(raw, "corpus", where, DictConfig({})), f"{where}: corpus", CORPUS_KEYS)
        measure = _mapping(_get(raw, "measure", where, DictConfig({})), f"{where}: measure", MEASURE_KEYS)
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
            schedules=_schedules(raw, where), finetune=_finetune(raw, where))
    except StudyError:
        raise
    except AeHubertError as e:  # the schedule helpers' errors, re-raised as the study's
        raise StudyError(str(e)) from None
    for i, o in enumerate(study.overrides):
        if override_key(o) in ("common.seed", "seed"):
            raise StudyError(f"{where}: overrides[{i}]: the seed is the study's (seeds: N), not an override")
    here = os.path.dirname(study.path)  # relative paths in a study file are relative to that file

    def near(spec: str) -> str:
        return os.path.join(here, spec) if not os.path.isabs(spec) and os.path.isfile(os.path.join(here, spec)) \
            else spec

    if study.data is not None and not os.path.isabs(study.data):
        study.data = os.path.join(here, study.data)
    study.schedules = {h: {a: near(v) for a, v in spec.items()} if isinstance(spec, dict) else near(spec)
                       for h, spec in study.schedules.items()}
    study.finetune["config"] = near(study.finetune["config"])
    return study


def _wanted(study: Study, only: list[str] | None) -> list[str]:
    if only is None:
        return [h for h in HYPOTHESES if h not in ARMED or h in study.schedules]
    for h in only:
        if h not in HYPOTHESES:
            raise StudyError(f"--only {h}: unknown hypothesis; known: {', '.join(HYPOTHESES)}")
        if h in ARMED and h not in study.schedules:
            raise StudyError(f"--only {h}: {study.path}: schedules.{h} is not set (the arms {h} compares)")
    return [h for h in HYPOTHESES if h in only]


def _schedule_name(spec: str) -> str:
    return os.path.splitext(os.path.basename(spec))[0]


def check_schedules(study: Study, wanted: list[str]) -> dict:
    """Everything the wanted hypotheses will run, checked before any work: every schedule parsed and
    composed (the arms of H4 against the depth of H1's iteration-1 model, which does not exist yet),
    the fine-tuning (config, overrides, ks against the models' depth, label files), and the
    comparisons made fair: every target has the study's K; H4's arms train H1's iteration 2 again
    on other targets (same training config, overrides, init and k-means, as many updates); H5's
    arms have H1's training config and depth and H1's total updates or half of it. Returns
    ``{"updates": {run: total updates}, "references": {H4/H5 if wanted: the name of the reference arm}}``."""
    from ..finetune.reset_sweep import check_sweep_inputs
    from ..runner.trainer import resolve_train_config

    def load(spec, **kw):
        try:
            return load_schedule(spec, study.data, [*study.overrides, "common.seed=1"], **kw)
        except AeHubertError as e:
            raise StudyError(str(e)) from None

    def same_k(s, what):
        bad = [f"{it.name}: {t.k}" for it in s.iterations for t in it.targets if t.k != study.k]
        if bad:
            raise StudyError(f"{s.path}: {what}: targets with K other than the study's k={study.k} ({', '.join(bad)})")

    def differs(s, what, mine: dict, h1s: dict):
        for key, value in mine.items():
            if value != h1s[key]:
                raise StudyError(f"{s.path}: {what}: {key} {value!r} differs from H1's {h1s[key]!r}; the arms "
                                 "compare targets/structure, everything else must be H1's")

    h1 = load(study.schedules["H1"])
    if len(h1.iterations) < 2:
        raise StudyError(f"{h1.path}: H1 needs two iterations (MFCC targets, then layer targets), "
                         f"got {len(h1.iterations)}")
    same_k(h1, "schedules.H1")
    totals = {"H1": h1.total_updates}
    runs = {_schedule_name(study.schedules["H1"]): "schedules.H1"}
    reference = {"H4": _h1_arm_name(h1.iterations[1].targets), "H5": "standard"}
    depths = [it.depth for it in h1.iterations[:2]]
    config = (h1.train_config_dir, h1.train_config_name)
    for h in ARMED:
        if h not in wanted:
            continue
        if reference[h] in study.schedules[h]:
            raise StudyError(f"{study.path}: schedules.{h}.{reference[h]}: that name is the reference arm "
                             f"(H1's {'iteration 2' if h == 'H4' else 'runs'}); name this arm otherwise")
        for arm, spec in study.schedules[h].items():
            what = f"schedules.{h}.{arm}"
            name = _schedule_name(spec)
            if name in runs:  # runs live under W/runs/NAME: two arms cannot share one
                raise StudyError(f"{study.path}: {what}: schedule name {name!r} is also {runs[name]}'s (runs are "
                                 "kept under W/runs/NAME); give each a file of its own name")
            runs[name] = what
            if h == "H4":
                s = load(spec, start_depth=h1.iterations[0].depth)
                same_k(s, what)
                ref = h1.iterations[1]
                if s.total_updates != ref.max_update:
                    raise StudyError(f"{s.path}: {what}: {s.total_updates} updates; H4 compares at H1's "
                                     f"iteration-2 budget ({ref.max_update})")
                for it in s.iterations:
                    differs(s, f"{what}: {it.name}", _training(s, it), _training(h1, ref))
                depths += [it.depth for it in s.iterations]
            else:
                s = load(spec)
                same_k(s, what)
                if 2 * s.total_updates != h1.total_updates and s.total_updates != h1.total_updates:
                    raise StudyError(f"{s.path}: {what}: {s.total_updates} updates in all; H5 compares at "
                                     f"H1's total ({h1.total_updates}) or half of it")
                for it in s.iterations:
                    differs(s, f"{what}: {it.name}", {"train_config": (s.train_config_dir, s.train_config_name),
                                                      "depth": it.depth},
                            {"train_config": config, "depth": h1.iterations[0].depth})
                depths.append(s.iterations[-1].depth)
            totals[f"{h}.{arm}"] = s.total_updates
    if {"H3", "H4", "H5"} & set(wanted):
        ft = study.finetune
        ks = ft["ks"] if "H3" in wanted else [0]
        try:
            cfg_dir, cfg_name = resolve_train_config(ft["config"], "finetune.config")
            check_sweep_inputs(study.data, ks, min(depths), "reinit", cfg_dir, cfg_name,
                               [*ft["overrides"], "common.seed=1"], (ft["split"],))
        except AeHubertError as e:
            raise StudyError(f"{study.path}: finetune: {e}") from None
    return {"updates": totals, "references": {h: name for h, name in reference.items() if h in wanted}}


def _training(s, it) -> dict:
    """What an iteration's training is besides its targets and updates (H4 compares only targets)."""
    overrides = sorted(o for o in [*s.overrides, *it.overrides] if override_key(o) != "optimization.max_update")
    return {"train_config": (s.train_config_dir, s.train_config_name), "overrides": overrides, "init": it.init,
            "reset_top_layers": it.reset_top_layers, "kmeans_max_iter": s.kmeans_max_iter,
            "kmeans_percent": [t.percent for t in it.targets], "depth": it.depth}


def _json_round_trip(value):
    """Results as they read back from a stage marker (int keys become strings), fresh or resumed."""
    return json.loads(json.dumps(value))


PROBE_MARKER = re.compile(r"(?P<piece>.+)\.probe\.(?P<updates>\d+)\.json")  # sSEED.RUN.ITERATION.probe.UPDATES


def done_probes(stages: Stages) -> dict[str, dict[int, str]]:
    """The study's finished probes, read from their markers: ``{"sSEED.RUN.ITERATION": {updates:
    checkpoint}}`` (the checkpoint as recorded, ``$W`` resolved)."""
    out: dict[str, dict[int, str]] = {}
    for f in sorted(os.listdir(stages.marker_dir)):
        m = PROBE_MARKER.fullmatch(f)
        command = (stages.done(f[:-len(".json")]) or {}).get("command") if m else None
        if command:
            ckpt = json.loads(command)["ckpt"].replace("$W", stages.work_dir)
            out.setdefault(m["piece"], {})[int(m["updates"])] = ckpt
    return out


def run_study(spec: str, work_dir: str, seeds: int | None = None, only: list[str] | None = None,
              data: str | None = None, echo: Callable[[str], None] = print,
              only_seeds: list[int] | None = None) -> dict:
    """Run (or resume) a study; returns the summary also written to ``W/study.json``. ``only_seeds``
    runs and summarises just those seeds (one machine or session per seed; a last call over all of
    them, with everything done, summarises the whole study). A call narrower than the summary
    already in ``W`` writes its own under ``W/partial/`` (``summary_dir``) and leaves that one."""
    from ..analysis.study_summary import summarise, summary_dir, write_study

    study = load_study(spec)
    if seeds is not None:
        study.seeds = seeds
    if data is not None:
        study.data = data
    beyond = [s for s in only_seeds or [] if s > study.seeds]
    if beyond:  # the last call over all seeds would leave them out of the summary
        raise StudyError(f"--only-seeds {beyond[0]}: the study has seeds 1..{study.seeds} (raise --seeds)")
    wanted = _wanted(study, only)
    w = os.path.abspath(work_dir)
    corpus_check = None
    if study.data is not None:  # every schedule is checked (and its configs composed) before any work
        checked = check_schedules(study, wanted)
    with WorkDirLock(w):
        stages = Stages(w, echo)
        if study.data is None:  # the schedules need the corpus's manifests: checked once it is built
            from ..corpus.study_corpus import build

            study.data = os.path.join(w, "corpus")
            stages.run("corpus", lambda: build(study.data, **study.corpus)["splits"],
                       command=json.dumps(study.corpus, sort_keys=True))
            corpus_check = check_rebuilt_corpus(w, study.data, echo)
            checked = check_schedules(study, wanted)
        record_probed_runs(w, os.path.join("runs", _schedule_name(study.schedules["H1"])))
        per_seed = [_Seed(study, wanted, w, seed, stages, echo, checked["references"]).measure()
                    for seed in (only_seeds or range(1, study.seeds + 1))]
        summary = summarise(study, wanted, per_seed)
        if corpus_check is not None:
            summary["corpus_check"] = corpus_check
        out = summary_dir(summary, w, echo)
        summary["files"] = write_study(summary, out)
        summary["summary_dir"] = out
    return summary


PROBED_RUNS = "probed_runs.json"  # the runs whose interval checkpoints H2 probes (the H1 schedule's)


def record_probed_runs(w: str, run: str) -> None:
    """Record, once per work dir and added to by each call, the run (``runs/NAME``, relative to
    ``w``) whose interval checkpoints H2 probes: ``study-pack`` carries only those, not the arms'
    (H4/H5 probe an arm's last checkpoint). Recorded whatever ``--only`` says: a later H2 call
    needs the H1 run's checkpoints even if this one measures H1 alone."""
    known = probed_runs(w) or []
    if run not in known:
        write_text_atomic(os.path.join(w, PROBED_RUNS), json.dumps({"runs": sorted([*known, run])}, indent=1) + "\n")


def probed_runs(w: str) -> list[str] | None:
    """The runs ``record_probed_runs`` recorded in ``w``; None in a work dir from before that record
    (every run's interval checkpoints may then be probed)."""
    path = os.path.join(w, PROBED_RUNS)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            runs = json.load(f)["runs"]
        if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
            raise ValueError("'runs' is not a list of run dirs")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StudyError(f"{path}: unreadable record of the probed runs ({e}); delete it to carry every "
                         "run's interval checkpoints") from None
    return runs


EXPECTED_CORPUS = "corpus.expected.json"  # written by study-pack: the corpus the carried results were measured on


def check_rebuilt_corpus(w: str, corpus: str, echo: Callable[[str], None]) -> dict | None:
    """A work dir carried by ``study-pack`` holds the fingerprint of the corpus its results (and
    half-trained runs' labels) came from; the corpus rebuilt here from the same seed should match
    it. A mismatch (other library versions) is said loudly and recorded, not fatal: what is done
    stays valid for its own corpus, but the study then mixes two."""
    from ..corpus.corpus_files import fingerprint

    path = os.path.join(w, EXPECTED_CORPUS)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            expected = json.load(f)
    except (OSError, ValueError) as e:
        raise StudyError(f"{path}: unreadable corpus fingerprint ({e}); delete it to skip the check") from None
    found = fingerprint(corpus)
    differ = sorted(k for k in found if expected.get(k) != found[k])
    if differ:
        echo(f"WARNING: the corpus rebuilt in {corpus} differs from the one this work dir's results were "
             f"measured on ({' and '.join(differ)} differ; {path}): other library versions? Results done "
             "before and after the move come from two corpora; half-trained runs resume on other audio.")
    return {"expected": expected, "found": found, "same": not differ}


class _Seed:
    """One seed's runs and measurements; each measurement a stage recorded with its settings."""

    def __init__(self, study: Study, wanted: list[str], w: str, seed: int, stages: Stages,
                 echo: Callable[[str], None], references: dict[str, str]):
        self.study, self.wanted, self.w, self.seed, self.stages, self.echo = study, wanted, w, seed, stages, echo
        self.references = references  # H4/H5: the reference arm's name
        self.corpus = study.data
        self.m = study.measure

    def run(self, spec: str, start_from: str | None = None, iterations: int | None = None) -> tuple[str, list[dict]]:
        """A schedule's run for this seed (``iterate`` skips what is done; ``iterations``: only the
        first N); its name and records."""
        from .iterate import iterate

        name = _schedule_name(spec)
        records = iterate(spec, os.path.join(self.w, "runs", name, f"s{self.seed}"), data=self.corpus,
                          overrides=[*self.study.overrides, f"common.seed={self.seed}"], echo=self.echo,
                          start_from=start_from, iterations=iterations)
        return name, records

    def settings(self, ckpt: str, *keys: str) -> str:
        """What a measurement depends on: one done with other settings is refused, not reused."""
        text = json.dumps({"k": self.study.k, "corpus": self.corpus, "ckpt": ckpt, **{key: self.m[key] for key in keys}},
                          sort_keys=True)
        return text.replace(self.w, "$W")  # a moved work dir still resumes these (not its runs or fine-tunings)

    def cluster_quality(self, run: str, it: str, ckpt: str) -> dict:
        from ..clustering.layer_choice import cluster_quality

        return self.stages.run(f"s{self.seed}.{run}.{it}.cluster_quality", lambda: _json_round_trip(cluster_quality(
            self.corpus, self.study.k, ckpt, train_utterances=self.m["train_utterances"],
            valid_utterances=self.m["valid_utterances"], seed=self.seed)),
            command=self.settings(ckpt, "train_utterances", "valid_utterances"))

    def probe(self, run: str, it: str, updates: int, ckpt: str) -> dict:
        from ..analysis.layer_probe import probe_layers

        return self.stages.run(f"s{self.seed}.{run}.{it}.probe.{updates}", lambda: _json_round_trip({
            **probe_layers(ckpt, self.corpus, k=self.study.k, max_utterances=self.m["probe_utterances"],
                           seed=self.seed, ctc_steps=self.m["ctc_steps"]), "iteration": it}),
            command=self.settings(ckpt, "probe_utterances", "ctc_steps"))

    def probe_run(self, run: str, record: dict) -> dict:
        """Probes of an iteration's last checkpoint (H1), and (H2) of every one it saved."""
        it, ckpts = record["iteration"], {record["updates"]: record["checkpoint"]}
        if "H2" in self.wanted:
            ckpts = {**saved_checkpoints(os.path.dirname(record["checkpoint"])), **self.probed(run, it), **ckpts}
        return {str(u): self.probe(run, it, u, path) for u, path in sorted(ckpts.items())}

    def probed(self, run: str, it: str) -> dict[int, str]:
        """``{updates: checkpoint}`` of this run's probes already done: a work dir carried by
        ``study-pack`` keeps the results of its interval checkpoints, not the files."""
        return done_probes(self.stages).get(f"s{self.seed}.{run}.{it}", {})

    def finetune(self, run: str, it: str, ckpt: str, ks: list[int]) -> dict:
        """``{k: {wer, cer, ...}}`` on the study's split: a ``reset-sweep`` work dir per model
        (W/finetune/RUN/sSEED/ITERATION), resumable on its own; every fine-tuning has the same
        config, budget and seed (the study's)."""
        from ..finetune.reset_sweep import reset_sweep

        ft = self.study.finetune
        rows = reset_sweep(ckpt, self.corpus, ks, os.path.join(self.w, "finetune", run, f"s{self.seed}", it),
                           config=ft["config"], overrides=[*ft["overrides"], f"common.seed={self.seed}"],
                           splits=(ft["split"],))
        return {str(r["k"]): {**r[ft["split"]], "train_seconds": finetune_seconds(r["train"])} for r in rows}

    def measure(self) -> dict:
        study, wanted = self.study, self.wanted
        out = {"seed": self.seed}
        # iteration 1 is measured before iteration 2 trains: a session that ends between them keeps its figures
        run, (first,) = self.run(study.schedules["H1"], iterations=1)
        if "H1" in wanted:
            out["cluster_quality"] = self.cluster_quality(run, first["iteration"], first["checkpoint"])
        probes = {first["iteration"]: self.probe_run(run, first)} if "H1" in wanted or "H2" in wanted else None
        run, records = self.run(study.schedules["H1"])
        second = records[1]
        out["run"], out["records"] = run, [_brief(r) for r in records]
        if probes is not None:
            out["probes"] = {**probes, second["iteration"]: self.probe_run(run, second)}
        ks = study.finetune["ks"] if "H3" in wanted else [0]
        if "H3" in wanted:
            out["finetune"] = {r["iteration"]: self.finetune(run, r["iteration"], r["checkpoint"], ks)
                               for r in (first, second)}
        if "H4" in wanted:
            out["H4"] = {self.references["H4"]: self._arm(run, second, ks, best_phone=True)}
            for arm, spec in study.schedules["H4"].items():
                name, recs = self.run(spec, start_from=first["checkpoint"])
                out.setdefault("other_runs", {})[name] = [_brief(r) for r in recs]
                out["H4"][arm] = self._arm(name, recs[-1], [0], best_phone=True, records=recs)
        if "H5" in wanted:
            last = records[-1]
            out["H5"] = {self.references["H5"]: self._arm(run, last, ks if last is second else [0], cluster=True,
                                                          records=records)}
            for arm, spec in study.schedules["H5"].items():
                name, recs = self.run(spec)
                out.setdefault("other_runs", {})[name] = [_brief(r) for r in recs]
                out["H5"][arm] = self._arm(name, recs[-1], [0], cluster=True, records=recs)
        return out

    def _arm(self, run: str, record: dict, ks: list[int], best_phone: bool = False, cluster: bool = False,
             records: list[dict] | None = None) -> dict:
        """One arm of H4/H5: its targets' PNMI, its final model's WER/CER after fine-tuning every layer
        (k = 0), and (H4) its best-layer phone accuracy or (H5) its best-layer cluster PNMI."""
        it, ckpt = record["iteration"], record["checkpoint"]
        t = record["targets"][0]
        out = {"run": run, "iteration": it, "updates": sum(r["updates"] for r in (records or [record])),
               "target": {"source": t["source"], "layer": t["layer"],
                          "pnmi": (t["quality"].get("valid") or t["quality"].get("train") or {}).get("pnmi")},
               "finetune": self.finetune(run, it, ckpt, ks)["0"]}
        if best_phone:
            out["probe"] = self.probe(run, it, record["updates"], ckpt)
        if cluster:
            out["cluster_quality"] = self.cluster_quality(run, it, ckpt)
        return out


def finetune_seconds(train: dict) -> float | None:
    """A fine-tuning's training time: fairseq's cumulative time over its resumes, else (a marker
    written before that was recorded) the wall time of its last training process."""
    seconds = train.get("train_seconds")
    return seconds if seconds is not None else train.get("train", {}).get("wall")


def _brief(record: dict) -> dict:
    return {k: record[k] for k in ("iteration", "updates", "targets", "train_seconds", "sidecar_seconds")}


def _h1_arm_name(targets) -> str:
    """H1's iteration 2 as an arm of H4, named by how its layer is picked (``auto`` or ``L6``)."""
    layer = next((t.layer for t in targets if t.source == "layer"), None)
    return "auto" if layer == "auto" else f"L{layer}"
