"""One seed of a study: its runs and the measurements the hypotheses ask of them.

Every run is an ``iterate`` work dir (``W/runs/SCHEDULE/sSEED``) and every measurement a stage of
the study (``W/.stages``) recorded with the settings it depends on, so a killed study redoes only
what was unfinished and a measurement asked for by two hypotheses is made once. Fine-tunings are
``reset-sweep`` work dirs (``W/finetune/RUN/sSEED/ITERATION``), resumable on their own.
"""
from __future__ import annotations

import json
import os
from typing import Callable

from ..common.checkpoint import saved_checkpoints
from ..runner.stages import Stages
from .config import Plan, schedule_name
from .downstream import MEASURES
from .hypotheses import hypotheses
from .records import done_probes
from ..corpus.phone_sequences import LABEL as PHONE_LABEL


def _json_round_trip(value):
    """Results as they read back from a stage marker (int keys become strings), fresh or resumed."""
    return json.loads(json.dumps(value))


def finetune_seconds(train: dict) -> float | None:
    """A fine-tuning's training time: fairseq's cumulative time over its resumes, else (a marker
    written before that was recorded) the wall time of its last training process."""
    seconds = train.get("train_seconds")
    return seconds if seconds is not None else train.get("train", {}).get("wall")


def brief(record: dict) -> dict:
    """What the study keeps of an iteration's record."""
    return {k: record[k] for k in ("iteration", "updates", "targets", "train_seconds", "sidecar_seconds")}


class SeedRuns:
    """One seed's runs and measurements. ``measure()`` asks each wanted hypothesis for its own, first
    what it measures on H1's iteration-1 model before iteration 2 trains (``measure_first``), then
    the rest, and adds what every summary reads: the records of H1's iterations the wanted
    hypotheses trained (``--only H0`` trains iteration 1 alone), the other runs', the probes of H1's
    runs, and the fine-tuning time (each fine-tuning once)."""

    SHARED = ("seed", "run", "records", "probes", "other_runs", "finetune_seconds")  # not a hypothesis's keys

    def __init__(self, plan: Plan, wanted: list[str], w: str, seed: int, stages: Stages,
                 echo: Callable[[str], None]):
        study = plan.study
        self.plan, self.study, self.wanted, self.w, self.seed, self.stages, self.echo = \
            plan, study, wanted, w, seed, stages, echo
        self.references = plan.references  # armed hypothesis: the reference arm's name
        self.corpus = study.data
        self.m = study.measure
        self.h1_name = schedule_name(study.schedules["H1"])
        self.other_runs: dict[str, list[dict]] = {}
        self.h1_probes: dict[str, dict[str, dict]] = {}  # iteration: {updates: probe} of H1's runs
        self.finetuned: dict[tuple, float | None] = {}  # (home, run, iteration, k): training seconds
        self._h1_first: dict | None = None
        self._h1: list[dict] | None = None

    def measure(self) -> dict:
        out = {"seed": self.seed}
        for phase in ("measure_first", "measure"):
            for h in self.wanted:
                step = getattr(hypotheses()[h], phase, None)
                result = step(self) if step is not None else {}
                clash = set(result) & {*out, *self.SHARED}
                if clash:
                    raise RuntimeError(f"study/{h.lower()}.py: {phase} returns {sorted(clash)}, which another "
                                       "hypothesis or the seed's record already holds")
                out.update(result)
        out["run"], out["records"] = self.h1_name, [brief(r) for r in (self._h1 or [self.h1_first()])]
        if self.h1_probes:
            out["probes"] = {it: dict(sorted(p.items(), key=lambda kv: int(kv[0])))
                             for it, p in self.h1_probes.items()}
        if self.other_runs:
            out["other_runs"] = self.other_runs
        out["finetune_seconds"] = sum(s for s in self.finetuned.values() if s)
        return out

    def run(self, spec: str, start_from: str | None = None, iterations: int | None = None) -> tuple[str, list[dict]]:
        """A schedule's run for this seed (``iterate`` skips what is done; ``iterations``: only the
        first N); its name and records."""
        from ..pipeline.iterate import iterate

        name = schedule_name(spec)
        records = iterate(spec, os.path.join(self.w, "runs", name, f"s{self.seed}"), data=self.corpus,
                          overrides=[*self.study.overrides, f"common.seed={self.seed}"], echo=self.echo,
                          start_from=start_from, iterations=iterations)
        if name != self.h1_name and iterations is None:
            self.other_runs[name] = [brief(r) for r in records]
        return name, records

    def h1_first(self) -> dict:
        """The record of H1's iteration 1, trained alone if iteration 2 is not yet: what is measured
        on it before iteration 2 trains is kept by a session that ends between them."""
        if self._h1 is None and self._h1_first is None:
            self._h1_first = self.run(self.study.schedules["H1"], iterations=1)[1][0]
        return self._h1[0] if self._h1 is not None else self._h1_first

    def h1(self) -> list[dict]:
        """The records of H1's runs (both iterations; trained once per call)."""
        if self._h1 is None:
            self._h1 = self.run(self.study.schedules["H1"])[1]
        return self._h1

    def settings(self, ckpt: str, *keys: str) -> str:
        """What a measurement depends on: one done with other settings is refused, not reused."""
        text = json.dumps({"k": self.study.k, "corpus": self.corpus, "ckpt": ckpt,
                           **{key: getattr(self.m, key) for key in keys}}, sort_keys=True)
        return text.replace(self.w, "$W")  # a moved work dir still resumes these (not its runs or fine-tunings)

    def cluster_quality(self, run: str, it: str, ckpt: str) -> dict:
        """Every layer clustered at the study's K (``clustering/layer_choice.py``: fit and choose
        on train, report on valid)."""
        from ..clustering.layer_choice import cluster_quality

        return self.stages.run(f"s{self.seed}.{run}.{it}.cluster_quality", lambda: _json_round_trip(cluster_quality(
            self.corpus, self.study.k, ckpt, train_utterances=self.m.train_utterances,
            valid_utterances=self.m.valid_utterances, seed=self.seed)),
            command=self.settings(ckpt, "train_utterances", "valid_utterances"))

    def probe(self, run: str, it: str, updates: int, ckpt: str) -> dict:
        """Every layer of one checkpoint probed (``analysis/layer_probe.py``)."""
        from ..analysis.layer_probe import probe_layers

        return self.stages.run(f"s{self.seed}.{run}.{it}.probe.{updates}", lambda: _json_round_trip({
            **probe_layers(ckpt, self.corpus, k=self.study.k, max_utterances=self.m.probe_utterances,
                           seed=self.seed, ctc_steps=self.m.ctc_steps), "iteration": it}),
            command=self.settings(ckpt, "probe_utterances", "ctc_steps"))

    def probe_every_checkpoint(self, run: str, record: dict, only: set[int] | None = None) -> dict:
        """Probes of every checkpoint an iteration of ``run`` saved (``{updates: probe}``); ``only``:
        of those at these updates (``study-rerun``: the ones the original probed)."""
        it = record["iteration"]
        # a carried work dir keeps the results of probed interval checkpoints, not the files
        ckpts = {**saved_checkpoints(os.path.dirname(record["checkpoint"])),
                 **done_probes(self.stages).get(f"s{self.seed}.{run}.{it}", {}),
                 record["updates"]: record["checkpoint"]}
        return {str(u): self.probe(run, it, u, path) for u, path in sorted(ckpts.items())
                if only is None or u in only}

    def probe_h1(self, record: dict, every_checkpoint: bool = False) -> dict:
        """Probes of an iteration of H1's runs: its last checkpoint, or every one it saved."""
        run, it = self.h1_name, record["iteration"]
        probes = self.probe_every_checkpoint(run, record) if every_checkpoint else \
            {str(record["updates"]): self.probe(run, it, record["updates"], record["checkpoint"])}
        self.h1_probes.setdefault(it, {}).update(probes)
        return probes

    def finetune(self, run: str, it: str, ckpt: str, ks: list[int], phones: bool = False) -> dict:
        """``{k: {wer, cer, ...}}`` on the study's split: a ``reset-sweep`` work dir per model; every
        fine-tuning has the same config, budget and seed (the study's). ``phones``: CTC on the
        corpus's phone sequences instead of letters (its ``wer`` is the phone error rate), under
        ``W/finetune_phones/``."""
        from ..finetune.reset_sweep import reset_sweep

        ft = self.study.finetune
        overrides = [*ft.overrides, f"common.seed={self.seed}"]
        if phones:
            self.phone_sequences()
            overrides += [f"task.labels=[{PHONE_LABEL}]", "criterion.post_process=none"]
        home = "finetune_phones" if phones else "finetune"
        rows = reset_sweep(ckpt, self.corpus, ks, os.path.join(self.w, home, run, f"s{self.seed}", it),
                           config=ft.config, overrides=overrides, splits=(ft.split,))
        out = {str(r["k"]): {**r[ft.split], "train_seconds": finetune_seconds(r["train"])} for r in rows}
        for k, r in out.items():
            self.finetuned[(home, run, it, k)] = r["train_seconds"]
        return out

    def downstream(self, run: str, it: str, ckpt: str, ks: list[int], measures: list[str] | None = None) -> dict:
        """A model measured downstream (``downstream.py``): ``finetune`` (letters, each k of ``ks``),
        ``phone_ctc`` (phones, k = 0) and ``phone_recognition`` (frozen); ``measures``: the names
        (``downstream.MEASURES``) to take, every one by default."""
        take = set(MEASURES if measures is None else measures)
        out = {}
        if "phone_recognition" in take:
            out["phone_recognition"] = self.phone_recognition(run, it, ckpt)
        if "letter_ctc" in take:
            out["finetune"] = self.finetune(run, it, ckpt, ks)
        if "phone_ctc" in take:
            out["phone_ctc"] = self.finetune(run, it, ckpt, [0], phones=True)["0"]
        return out

    def phone_sequences(self) -> None:
        """The corpus's phone sequences (``{split}.phnseq`` beside its manifests), written when
        missing: derived from the corpus's own labels in seconds, so a corpus rebuilt on another
        machine (study-pack leaves it out) gets them again, which a stage marker would not."""
        from ..corpus.phone_sequences import write_phone_sequences

        if not all(os.path.isfile(os.path.join(self.corpus, f)) for f in
                   (f"dict.{PHONE_LABEL}.txt", *(f"{s}.{PHONE_LABEL}" for s in ("train", "valid", "test")))):
            write_phone_sequences(self.corpus)

    def phone_recognition(self, run: str, it: str, ckpt: str) -> dict:
        """The frozen model's weighted-sum phone recogniser (``analysis/phone_recognition.py``), PER
        on the fine-tuning's split."""
        from ..analysis.phone_recognition import phone_recognition

        self.phone_sequences()
        m, split = self.m, self.study.finetune.split
        return self.stages.run(f"s{self.seed}.{run}.{it}.phone_recognition", lambda: _json_round_trip(
            phone_recognition(ckpt, self.corpus, train_utterances=m.phone_train_utterances, split=split,
                              utterances=m.phone_utterances, steps=m.phone_steps, seed=self.seed)),
            command=json.dumps({"settings": self.settings(ckpt, "phone_train_utterances", "phone_utterances",
                                                          "phone_steps"), "split": split}))

    def arm(self, run: str, record: dict, records: list[dict] | None = None) -> dict:
        """What every arm of an armed hypothesis reports: its run, updates (of ``records``, else of
        ``record``'s iteration), targets and their PNMI, and the WER/CER of its final model
        fine-tuned with every layer (k = 0)."""
        it, ckpt = record["iteration"], record["checkpoint"]
        t = record["targets"][0]
        return {"run": run, "iteration": it, "updates": sum(r["updates"] for r in (records or [record])),
                "target": {"source": t["source"], "layer": t["layer"],
                           "pnmi": (t["quality"].get("valid") or t["quality"].get("train") or {}).get("pnmi")},
                "finetune": self.finetune(run, it, ckpt, [0])["0"]}
