"""The stage plan: a schedule as an ordered list of steps, each one command.

This is the only definition of what a schedule does. ``iterate`` executes the steps (an
``ae-hubert`` step through the same parser and handler as the CLI subcommand), ``--dry-run`` prints
them as shell lines, and ``launch`` renders them into sbatch scripts. A step's result that later
steps need is a file: ``layer: auto`` is a ``choose-layer`` step writing a JSON that the dump step
reads with ``--layer-from``, so it resolves under SLURM too.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from ..clustering import commands as clustering_commands
from ..features import commands as feature_commands
from ..clustering.label import shard_label_path
from ..features.dump import sample_split
from ..models import commands as model_commands
from .schedule import Iteration, Schedule, Target

SPLITS = ("train", "valid")
# the ``ae-hubert`` commands a plan's steps run (in this process when ``iterate`` executes them)
STEP_COMMANDS = [*feature_commands.COMMANDS, *clustering_commands.COMMANDS, *model_commands.COMMANDS]
PHONE_RATE = 50.0  # frame phone labels (.phn) of the synthetic corpora


@dataclass(frozen=True)
class Step:
    name: str  # unique; its completion marker is .stages/NAME.json
    stage: str  # the stage it belongs to (one SLURM job per stage)
    tool: str  # "ae-hubert", "fairseq-hydra-train" or "rm"
    args: tuple[str, ...]
    cwd: str | None = None
    rank: int | None = None  # shard index of a sharded step (a SLURM array task)
    save_dir: str | None = None  # training steps: fairseq's checkpoint dir
    max_update: int | None = None  # training steps
    done_as: tuple[tuple[str, ...], ...] = ()  # the same step's arguments as earlier versions wrote them
    outputs: tuple[str, ...] = ()  # files it makes that later steps read: recorded by content, checked on a rerun

    def shell(self, args: tuple[str, ...] | None = None) -> str:
        """The step as a shell line (``args``: other arguments of the same step)."""
        line = " ".join(shlex.quote(a) for a in (self.tool, *(self.args if args is None else args)))
        return f"(mkdir -p {shlex.quote(self.cwd)} && cd {shlex.quote(self.cwd)} && {line})" if self.cwd else line


@dataclass(frozen=True)
class TargetFiles:
    """Where one target's files live in its iteration's directory."""
    feat: str
    kmeans: str
    labels: str
    layer_json: str
    quality_dir: str

    def quality(self, split: str, name: str) -> str:
        return os.path.join(self.quality_dir, f"{split}.{name}.json")

    def label_set(self, name: str, *files: str) -> tuple[str, ...]:
        """Label files (``{split}.{name}`` and the like) of this target's set, with its dictionary."""
        return (*(os.path.join(self.labels, f) for f in files), os.path.join(self.labels, f"dict.{name}.txt"))


def iteration_dir(work_dir: str, it: Iteration) -> str:
    return os.path.join(work_dir, it.name)


def target_files(work_dir: str, it: Iteration, t: Target) -> TargetFiles:
    d = iteration_dir(work_dir, it)
    return TargetFiles(os.path.join(d, f"feat_{t.name}"), os.path.join(d, f"{t.name}.kmeans.bin"),
                       os.path.join(d, "labels"), os.path.join(d, f"{t.name}.layer.json"),
                       os.path.join(d, "quality"))


def checkpoint_dir(work_dir: str, it: Iteration) -> str:
    return os.path.join(iteration_dir(work_dir, it), "checkpoints")


def _target_steps(s: Schedule, it: Iteration, t: Target, f: TargetFiles, prev_ckpt: str | None,
                  data: str) -> list[Step]:
    """dump -> k-means -> labels -> quality of one target. With ``label_from_audio`` (the default)
    only the k-means sample is dumped (``dump --sample``; the whole train split when
    ``percent`` is -1) and every other label comes from the audio (``label --tsv-dir``), sharded
    like the dump and joined by ``merge-labels``."""
    pre = f"{it.name}.{t.name}"
    steps = []
    n = str(s.nshard)
    if t.source == "phones":  # the corpus's own frame phones: no features, no k-means
        steps.append(Step(f"{pre}.labels", f"{pre}.labels", "ae-hubert", (
            "phone-labels", "--data", data, "--splits", ",".join(SPLITS), "--out-dir", f.labels, "--name", t.name),
            outputs=f.label_set(t.name, *(f"{split}.{t.name}" for split in SPLITS))))
        return steps + _quality_steps(t, f, pre, data)
    if t.source == "mfcc":
        kind = ["mfcc"] + (["--mfcc-rate", f"{t.rate:g}"] if t.rate != 100 else [])
    elif t.layer == "auto":
        choose = ("choose-layer", "--ckpt", prev_ckpt, "--data", data, "--k", str(t.k),
                  "--candidates", ",".join(map(str, t.candidates)), "--seed", str(s.seed), "--json", f.layer_json)
        # before the one clustering protocol the layer was chosen on valid (--split valid): a work dir
        # whose step finished so keeps its choice, and its record says which protocol made it
        before = (*choose[:5], "--split", "valid", *choose[5:])
        steps.append(Step(f"{pre}.choose_layer", f"{pre}.choose_layer", "ae-hubert", choose, done_as=(before,),
                          outputs=(f.layer_json,)))
        kind = ["hubert", "--ckpt", prev_ckpt, "--layer-from", f.layer_json]
    else:
        kind = ["hubert", "--ckpt", prev_ckpt, "--layer", str(t.layer)]
    sample = s.label_from_audio and t.percent != -1
    from_audio = {split for split in SPLITS if s.label_from_audio and (split != "train" or sample)}
    fit_split = sample_split("train") if sample else "train"
    for split in [sp for sp in SPLITS if sp not in from_audio or (sp == "train" and sample)]:
        for rank in range(s.nshard):
            steps.append(Step(f"{pre}.dump.{split}" + (f".{rank}" if s.nshard > 1 else ""), f"{pre}.dump",
                              "ae-hubert", ("dump", *kind, "--tsv-dir", data, "--split", split, "--out-dir", f.feat,
                                            "--nshard", n, "--rank", str(rank),
                                            *(["--sample", f"{t.percent:g}", "--seed", str(s.seed)] if sample else [])),
                              rank=rank if s.nshard > 1 else None))
    steps.append(Step(f"{pre}.kmeans", f"{pre}.kmeans", "ae-hubert", (
        "kmeans", "--feat-dir", f.feat, "--split", fit_split, "--nshard", n, "--k", str(t.k), "--out", f.kmeans,
        "--percent", "-1" if sample else f"{t.percent:g}", "--seed", str(s.seed),
        "--max-iter", str(s.kmeans_max_iter), *(["--streamed"] if s.kmeans_streamed else [])), outputs=(f.kmeans,)))
    for split in SPLITS:
        if split not in from_audio:
            steps.append(Step(f"{pre}.labels.{split}", f"{pre}.labels", "ae-hubert", (
                "label", "--feat-dir", f.feat, "--split", split, "--nshard", n, "--km", f.kmeans,
                "--out-dir", f.labels, "--name", t.name), outputs=f.label_set(t.name, f"{split}.{t.name}")))
            continue
        for rank in range(s.nshard):  # sharded: an array job of their own, before the merge and quality
            steps.append(Step(f"{pre}.labels.{split}" + (f".{rank}" if s.nshard > 1 else ""),
                              f"{pre}.label_shards" if s.nshard > 1 else f"{pre}.labels", "ae-hubert", (
                                  "label", "--tsv-dir", data, "--split", split, *kind[1:], "--km", f.kmeans,
                                  "--out-dir", f.labels, "--name", t.name, "--nshard", n, "--rank", str(rank)),
                              rank=rank if s.nshard > 1 else None, outputs=f.label_set(t.name, os.path.basename(
                                  shard_label_path(f.labels, split, t.name, s.nshard, rank)))))
    for split in sorted(from_audio, key=SPLITS.index) if s.nshard > 1 else []:
        steps.append(Step(f"{pre}.merge.{split}", f"{pre}.labels", "ae-hubert", (
            "merge-labels", "--label-dir", f.labels, "--split", split, "--nshard", n, "--name", t.name,
            "--tsv-dir", data), outputs=f.label_set(t.name, f"{split}.{t.name}")))
    if not s.keep_features:
        steps.append(Step(f"{pre}.drop_features", f"{pre}.labels", "rm", ("-rf", f.feat)))
    return steps + _quality_steps(t, f, pre, data)


def _quality_steps(t: Target, f: TargetFiles, pre: str, data: str) -> list[Step]:
    steps = []
    for split in SPLITS:
        phn = os.path.join(data, f"{split}.phn")
        if os.path.isfile(phn):
            steps.append(Step(f"{pre}.quality.{split}", f"{pre}.labels", "ae-hubert", (
                "quality", "--km", os.path.join(f.labels, f"{split}.{t.name}"), "--phn", phn,
                "--km-rate", f"{t.rate:g}", "--phn-rate", f"{PHONE_RATE:g}", "--json", f.quality(split, t.name)),
                outputs=(f.quality(split, t.name),)))
    return steps


def plan(s: Schedule, work_dir: str) -> list[Step]:
    """Every step of the schedule, in order. ``work_dir`` and the data are made absolute, and every
    path that travels as a hydra override checked (for ``iterate`` and ``launch`` alike)."""
    from ..runner.trainer import check_hydra_path, train_args
    from ..models.continue_init import model_override_strings

    work_dir = os.path.abspath(work_dir)
    data = os.path.abspath(s.data)
    prev_ckpt = os.path.abspath(s.start_from) if s.start_from else None
    check_hydra_path(work_dir, "--work-dir")
    check_hydra_path(data, "--data")
    if prev_ckpt:
        check_hydra_path(prev_ckpt, "--start-from")
    steps: list[Step] = []
    for it in s.iterations:
        d = iteration_dir(work_dir, it)
        for t in it.targets:
            steps += _target_steps(s, it, t, target_files(work_dir, it, t), prev_ckpt, data)
        init = None
        if it.init == "continue":
            init = os.path.join(d, "init.pt")
            model = model_override_strings([*s.overrides, *it.overrides, *s.cli_overrides])
            steps.append(Step(f"{it.name}.init", f"{it.name}.init", "ae-hubert", (
                "init-continue", "--prev", prev_ckpt, "--label-dir", target_files(work_dir, it, it.targets[0]).labels,
                "--labels", ",".join(t.name for t in it.targets), "--reset-top-layers", str(it.reset_top_layers),
                "--seed", str(s.seed), "--out", init, *model), outputs=(init,)))
        ckpts = checkpoint_dir(work_dir, it)
        steps.append(Step(f"{it.name}.train", f"{it.name}.train", "fairseq-hydra-train",
                          tuple(train_args(s.train_config_dir, s.train_config_name, s.train_overrides(
                              it, data, target_files(work_dir, it, it.targets[0]).labels, ckpts, init))),
                          cwd=d, save_dir=ckpts, max_update=it.max_update))
        prev_ckpt = os.path.join(ckpts, "checkpoint_last.pt")
    return steps
