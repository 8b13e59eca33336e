"""Iteration schedules: which targets each HuBERT iteration trains on, how long, and from what.

A schedule is a YAML file (omegaconf): global settings and a list of iterations. Everything is
validated before any work starts; every error names the offending field, e.g.
``iterations[1].targets[0].layer``.

    name: standard_toy
    data: null                  # manifest dir (train.tsv, valid.tsv, optional .phn); or --data
    train_config: pretrain/toy_cpu   # under ae_hubert/config/, or a path to a YAML
    overrides: []               # hydra overrides for every iteration
    kmeans: {percent: -1, max_iter: 100}
    start_from: null            # a checkpoint that plays "previous iteration" for iteration 1
    iterations:
      - targets: [{source: mfcc, k: 100}]
        max_update: 600
      - targets: [{source: layer, layer: 3, k: 100}]   # layer: auto picks it by a measured criterion
        init: scratch            # or continue (previous weights), with reset_top_layers: k
        max_update: 600
        overrides: []

The label rate is derived from the targets (MFCC 100 Hz, layers 50 Hz), never typed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..common.errors import AeHubertError
from ..common.schema import file_name, load_yaml, read, spec
from ..common.arguments import MFCC_RATES
from ..common.audio import MIN_SAMPLES
from ..runner.configs import (check_batch_fits, check_driven_config, check_lr_schedule, check_mask_fits,
                              check_training_numbers, driven_override, override_key)
from ..runner.trainer import CONFIG_DIR, check_hydra_path, resolve_train_config

SOURCES = {"mfcc": 100.0, "layer": 50.0, "phones": 50.0}  # label rate of each target source (its default)
INITS = ("scratch", "continue")


class ScheduleError(AeHubertError):
    pass


def _fraction(value: float) -> str | None:
    if value != -1 and not 0 < value <= 1:
        return f"a fraction in (0, 1], or -1 for all, got {value!r}"
    return None


def owned_override(override: str) -> str | None:
    """An override of what the schedule itself sets for every run: the field to use instead (a
    whole group such as ``task={...}`` would set them unseen)."""
    if not override.strip():
        return "an empty override"
    if "=" not in override and not override.startswith("~"):
        return f"{override!r}: expected KEY=VALUE (or ~KEY to delete one)"
    key = override_key(override)
    if driven_override(override):
        return driven_override(override)
    if key in OWNED:
        return f"{key} is set by the schedule for every run; use {OWNED[key]}"
    inside = sorted(k for k in (*OWNED, "optimization.max_update", "common.seed") if k.startswith(key + "."))
    if inside:
        return (f"{key}: a whole group sets {', '.join(inside)}, which the schedule owns; override its keys one by "
                "one")
    return None


# The schema of a schedule YAML (read by common/schema.py: one-line errors naming the field).
@dataclass
class Target:
    source: str = spec(choices=tuple(SOURCES))  # mfcc | layer | phones (the corpus's .phn: oracle targets)
    k: int | None = spec(None, minimum=2)  # clusters; for phones, the size of dict.phn.txt
    layer: int | str | None = spec(None, expected="an integer or 'auto'")  # 1-based, or "auto"
    percent: float | None = spec(None, check=_fraction)  # k-means sample fraction (<= 0: all); default kmeans'
    name: str | None = spec(None, check=file_name)  # default km, km2, ...
    candidates: list[int] | None = spec(None, minimum=1)  # for layer: auto
    # labels per second; default the source's (SOURCES); mfcc also 50 (every other frame), so that MFCC
    # clusters can share an iteration with layer or phone targets (fairseq's task has one label_rate)
    rate: float | None = spec(None, expected="a frame rate in Hz")


@dataclass
class Iteration:
    targets: list[Target] = spec(nonempty=True)
    max_update: int = spec(maximum=10 ** 9)  # >= 1 once optimization.max_update overrides are applied
    name: str | None = spec(None, check=file_name)  # default iterN
    init: str = spec("scratch", choices=INITS)  # or continue (previous weights)
    reset_top_layers: int = spec(0, minimum=0)
    overrides: list[str] = spec([], check=lambda o: owned_override(o) or (
        "the seed is the schedule's (seed:), the same for every iteration" if override_key(o) == "common.seed"
        else None))
    depth: int = spec(0, derived=True)  # transformer layers of the model this iteration trains
    needs_gpu: bool = spec(False, derived=True)  # its config trains in fp16 (fairseq's fp16 optimizer is CUDA's)

    @property
    def label_rate(self) -> float:
        return self.targets[0].rate


@dataclass
class KMeans:
    percent: float = spec(-1.0, check=_fraction)
    max_iter: int = spec(100, minimum=1, maximum=10 ** 6)
    streamed: bool = False  # bounded-memory k-means (memory-mapped sample, chunked passes)


@dataclass
class ScheduleFile:
    iterations: list[Iteration] = spec(nonempty=True)
    name: str | None = spec(None, check=file_name)  # default: the file's name
    description: str = ""
    data: str | None = None
    train_config: str = "pretrain/toy_cpu"
    overrides: list[str] = spec([], check=owned_override)
    kmeans: KMeans = spec(KMeans())
    start_from: str | None = None
    seed: int = spec(1, minimum=0, maximum=2 ** 32 - 1)
    nshard: int = spec(1, minimum=1)
    keep_features: bool = True
    # labels computed from the audio in the pass that computes the features (label --tsv-dir): a
    # feature dump only for the k-means sample (train; all of it when kmeans.percent is -1)
    label_from_audio: bool = True


@dataclass
class Schedule:
    """A validated schedule, ready to plan: the file's settings resolved (paths, the training
    config, the command line's overrides, the starting model's depth)."""
    name: str
    path: str
    data: str | None
    train_config_dir: str
    train_config_name: str
    overrides: list[str]  # the schedule's, for every iteration
    iterations: list[Iteration]
    cli_overrides: list[str] = field(default_factory=list)  # from the command line, applied last
    kmeans_max_iter: int = 100
    kmeans_streamed: bool = False
    seed: int = 1
    start_from: str | None = None
    start_depth: int | None = None
    nshard: int = 1
    keep_features: bool = True
    label_from_audio: bool = True
    description: str = ""

    @property
    def total_updates(self) -> int:
        return sum(it.max_update for it in self.iterations)

    def train_overrides(self, it: Iteration, data: str, label_dir: str, save_dir: str, init: str | None) -> list[str]:
        """The hydra overrides of one iteration's ``fairseq-hydra-train`` run (schedule's, then the
        iteration's, then the command line's last)."""
        return [f"task.data={data}", f"task.label_dir={label_dir}",
                f"task.labels=[{','.join(t.name for t in it.targets)}]", f"task.label_rate={it.label_rate:g}",
                f"checkpoint.save_dir={save_dir}", f"optimization.max_update={it.max_update}",
                f"common.seed={self.seed}", *([f"checkpoint.finetune_from_model={init}"] if init else []),
                *self.overrides, *it.overrides, *self.cli_overrides]


# overrides the schedule itself sets for every run (Schedule.train_overrides): the field to use instead
OWNED = {"task.data": "data", "task.label_dir": "(the iteration's labels)", "task.labels": "targets[].name",
         "model.label_rate": "targets[].source (it follows task.label_rate)", "task.label_rate": "targets[].source", "checkpoint.save_dir": "(the iteration's directory)",
         "checkpoint.finetune_from_model": "init: continue",
         "checkpoint.restore_file": "init: continue (a run resumes from its own checkpoint_last.pt)",
         "checkpoint.continue_once": "init: continue (a run resumes from its own checkpoint_last.pt)",
         "checkpoint.no_save": "(the driver reads every iteration's checkpoint)",
         "optimization.max_epoch": "max_update (the iteration's budget)"}
# optimization.max_update and common.seed overrides stand for the schedule's fields: the last one wins
def _alias(overrides: list[str], key: str, value: int, where: str) -> int:
    for o in overrides:
        k, _, v = o.lstrip("+").partition("=")
        if k == key:
            try:
                value = int(v)
            except ValueError:
                raise ScheduleError(f"{where}: {o}: expected an integer") from None
    return value


def check_overrides(overrides: list[str], where: str) -> None:
    for i, o in enumerate(overrides):
        complaint = owned_override(o)
        if complaint:
            raise ScheduleError(f"{where}[{i}]: {complaint}")


def _manifest_sizes(data: str, where: str, nshard: int) -> dict[str, list[int]]:
    """Checks both splits (their audio headers too); returns their utterances' sample counts."""
    from ..common.audio import check_headers
    from ..common.manifest import read_manifest
    from ..common.text import read_lines

    sizes: dict[str, list[int]] = {}
    for split in ("train", "valid"):
        m = read_manifest(os.path.join(data, f"{split}.tsv"))
        if nshard > len(m):
            raise ScheduleError(f"{where}: nshard: {nshard} shards but {m.tsv} has {len(m)} utterances")
        short = next((e for e in m.entries if e.nsamples < MIN_SAMPLES), None)
        if short is not None:
            raise ScheduleError(f"{short.where}: {short.relpath} has {short.nsamples} samples, fewer than the "
                                f"{MIN_SAMPLES} needed for one feature frame (remove it from the manifest)")
        check_headers(m.entries)
        phn = os.path.join(data, f"{split}.phn")
        if os.path.isfile(phn):  # the label-quality steps read it after the sidecars: checked now
            n = len(read_lines(phn))
            if n != len(m):
                raise ScheduleError(f"{phn}: {n} lines but {m.tsv} has {len(m)} utterances")
        sizes[split] = [e.nsamples for e in m.entries]
    return sizes


def check_model_builds(cfg, ks: list[int], where: str) -> None:
    """Build the iteration's model once (dictionaries of the targets' sizes): sizes that cannot work
    together (e.g. an embedding width the attention heads do not divide) fail here, not after the
    sidecars, at the start of training. A model that built once in this process is not built
    again (a study checks many schedules of one model)."""
    import torch
    from fairseq import models, tasks
    from fairseq.data import Dictionary

    try:
        check_training_numbers(cfg, where)
    except AeHubertError as e:
        raise ScheduleError(str(e)) from None
    key = (OmegaConf.to_yaml(cfg.task), OmegaConf.to_yaml(cfg.model), tuple(ks))
    if key in _BUILT:
        return
    dicts = []
    for k in ks:
        d = Dictionary()
        for i in range(k):
            d.add_symbol(str(i))
        dicts.append(d)
    try:
        task = tasks.setup_task(cfg.task)
        task.load_state_dict({"dictionaries": dicts})
        with torch.random.fork_rng():
            models.build_model(cfg.model, task)
    except Exception as e:  # whatever the model's constructor raises for sizes that do not fit
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ScheduleError(f"{where}: the model does not build with these settings ({type(e).__name__}: "
                            f"{first[:200]})") from None
    _BUILT.add(key)


_BUILT: set[tuple] = set()  # (task, model, ks) of the models check_model_builds built


def sampled_frames(sizes: list[int], rate: float, percent: float) -> int:
    """About how many frames k-means will see: every train utterance's frames at ``rate``, times the
    sampled fraction (MFCC: 25 ms windows every 10 ms; layers: 20 ms frames)."""
    hop = 16000 // int(rate)
    total = sum(max(0, (n - MIN_SAMPLES) // hop + 1) for n in sizes)
    return int(total * (percent if percent > 0 else 1.0))



def load_schedule(path: str, data: str | None = None, extra_overrides: list[str] | None = None,
                  start_from: str | None = None, start_depth: int | None = None) -> Schedule:
    """Parse and validate; raise :class:`ScheduleError` naming the field before any work. Every
    iteration's training config is composed here, as ``fairseq-hydra-train`` will compose it.

    ``start_from`` replaces the schedule's own (the checkpoint that plays "previous iteration" for
    iteration 1). ``start_depth`` validates a schedule whose starting checkpoint does not exist yet
    (the study checks every schedule before the runs that will make it): that many layers are
    assumed; such a schedule is for checking only, not for running."""
    try:
        return _load_schedule(path, data, extra_overrides, start_from, start_depth)
    except OmegaConfBaseException as e:  # e.g. an ${interpolation} that does not resolve
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ScheduleError(f"{path}: {first}") from None


def _load_schedule(path: str, data: str | None, extra_overrides: list[str] | None, start_from_arg: str | None,
                   start_depth: int | None) -> Schedule:
    from ..common.checkpoint import load_hubert
    from ..runner.configs import compose_train_config

    path = shipped_schedule(path)
    where = path  # the whole path: a basename is ambiguous across directories
    f = read(ScheduleFile, load_yaml(path, "schedule", ScheduleError), where, error=ScheduleError)
    try:
        cfg_dir, cfg_name = resolve_train_config(f.train_config, f"{where}: train_config")
    except AeHubertError as e:
        raise ScheduleError(str(e)) from None
    cli_overrides = list(extra_overrides or [])
    sched = Schedule(
        name=f.name or os.path.splitext(os.path.basename(path))[0], path=os.path.abspath(path),
        data=data or f.data, train_config_dir=cfg_dir, train_config_name=cfg_name, overrides=f.overrides,
        iterations=[], cli_overrides=cli_overrides, kmeans_max_iter=f.kmeans.max_iter,
        kmeans_streamed=f.kmeans.streamed, seed=f.seed,
        start_from=start_from_arg if start_from_arg is not None else f.start_from, nshard=f.nshard,
        keep_features=f.keep_features, label_from_audio=f.label_from_audio, description=f.description)
    if file_name(sched.name):
        raise ScheduleError(f"{where}: name: {file_name(sched.name)}")
    if sched.data is None:
        raise ScheduleError(f"{where}: data: no manifest directory (set `data:` or pass --data)")
    if not os.path.isfile(os.path.join(sched.data, "train.tsv")):
        raise ScheduleError(f"{where}: data: {sched.data} has no train.tsv")
    check_hydra_path(os.path.abspath(sched.data), f"{where}: data: (or --data)")  # before hydra composes it
    split_sizes = _manifest_sizes(sched.data, where, sched.nshard)
    sizes = split_sizes["train"]
    check_overrides(cli_overrides, f"{where}: command-line overrides")
    sched.seed = _alias(sched.overrides + cli_overrides, "common.seed", sched.seed, where)
    if not 0 <= sched.seed < 2 ** 32:
        raise ScheduleError(f"{where}: seed: must be {'>= 0' if sched.seed < 0 else f'<= {2 ** 32 - 1}'}, got "
                            f"{sched.seed}")
    if sched.start_from is not None:
        if not os.path.isfile(sched.start_from):
            raise ScheduleError(f"{'--start-from' if start_from_arg is not None else where + ': start_from'}: "
                                f"checkpoint {sched.start_from} not found")
        loaded = load_hubert(sched.start_from)
        if loaded.fine_tuned:  # its weights are a CTC model's: init-continue and layer targets need pretraining's
            raise ScheduleError(f"{'--start-from' if start_from_arg is not None else where + ': start_from'}: "
                                f"{sched.start_from} is a fine-tuned checkpoint; start from a pretraining one")
        sched.start_depth = loaded.num_layers
    elif start_depth is not None:
        sched.start_depth = start_depth
    prev_depth = sched.start_depth
    for i, iteration in enumerate(f.iterations):
        w = f"{where}: iterations[{i}]"
        iteration.name = iteration.name or f"iter{i + 1}"
        iteration.max_update = _alias(sched.overrides + iteration.overrides + cli_overrides,
                                      "optimization.max_update", iteration.max_update, w)
        if iteration.max_update < 1:
            raise ScheduleError(f"{w}.max_update: must be >= 1, got {iteration.max_update}")
        for j, t in enumerate(iteration.targets):
            tw = f"{w}.targets[{j}]"
            _check_target(t, tw, prev_depth)
            t.percent = f.kmeans.percent if t.percent is None else t.percent
            t.name = t.name or ("km" if j == 0 else f"km{j + 1}")
            if t.source == "phones":
                t.k = _phone_count(sched.data, t, tw)
                continue
            frames = sampled_frames(sizes, t.rate, t.percent)
            if t.k > frames:
                raise ScheduleError(f"{tw}.k: {t.k} clusters but k-means will see only about {frames} frames")
        targets = iteration.targets
        if len({t.rate for t in targets}) > 1:
            raise ScheduleError(f"{w}.targets: targets at " + " and ".join(f"{t.rate:g}" for t in targets) +
                                " Hz cannot share an iteration: fairseq's task has one label_rate (MFCC targets "
                                "can be at rate: 50)")
        if len({t.name for t in targets}) < len(targets):
            raise ScheduleError(f"{w}.targets: label names must differ")
        composed_with = sched.train_overrides(iteration, os.path.abspath(sched.data), os.path.join("/", "LABEL_DIR"),
                                              os.path.join("/", "SAVE_DIR"), None)
        cfg = compose_train_config(cfg_dir, cfg_name, composed_with, w)
        try:
            check_driven_config(cfg, cfg_dir, cfg_name, w, composed_with)
        except AeHubertError as e:
            raise ScheduleError(str(e)) from None
        depth = iteration.depth = int(cfg.model.encoder_layers)
        iteration.needs_gpu = bool(cfg.common.get("fp16"))  # (common.cpu does not help: its optimizer needs CUDA)
        if depth < 1:
            raise ScheduleError(f"{w}: model.encoder_layers: {depth}; a HuBERT model needs at least one layer")
        check_model_builds(cfg, [t.k for t in targets], w)
        check_batch_fits(cfg, sizes, w)
        check_mask_fits(cfg, split_sizes, w)
        check_lr_schedule(cfg, w)
        init, reset = iteration.init, iteration.reset_top_layers
        if init == "continue" and prev_depth is None:
            raise ScheduleError(f"{w}.init: 'continue' needs a previous checkpoint (none before the first "
                                "iteration; set start_from)")
        if init == "continue" and prev_depth != depth:
            raise ScheduleError(f"{w}.init: 'continue' needs the same depth as the previous model "
                                f"({prev_depth} layers), this iteration has {depth}")
        if reset and init != "continue":
            raise ScheduleError(f"{w}.reset_top_layers: only meaningful with init: continue")
        if reset > depth:
            raise ScheduleError(f"{w}.reset_top_layers: {reset} > model depth {depth}")
        sched.iterations.append(iteration)
        prev_depth = depth
    names = [it.name for it in sched.iterations]
    if len(set(names)) < len(names):
        raise ScheduleError(f"{where}: iterations: names must differ, got {names}")
    return sched


def _phone_count(data: str, t: Target, tw: str) -> int:
    """Phone targets: the corpus's frame phones for both splits and their dictionary, whose size is K."""
    from ..common.labels import dictionary_symbols

    for split in ("train", "valid"):
        if not os.path.isfile(os.path.join(data, f"{split}.phn")):
            raise ScheduleError(f"{tw}.source: 'phones' needs {os.path.join(data, split + '.phn')}")
    try:
        k = len(dictionary_symbols(os.path.join(data, "dict.phn.txt")))
    except AeHubertError as e:
        raise ScheduleError(f"{tw}.source: 'phones': {e}") from None
    if t.k is not None and t.k != k:
        raise ScheduleError(f"{tw}.k: {t.k}, but dict.phn.txt has {k} phones (leave k out for phone targets)")
    return k


def _check_target(t: Target, tw: str, prev_depth: int | None) -> None:
    """What a target's fields must say together, given the depth of the model before it."""
    if t.source != "phones" and t.k is None:
        raise ScheduleError(f"{tw}.k: required for source {t.source!r} (the number of clusters)")
    if t.source == "phones" and (t.percent is not None or t.candidates is not None):
        raise ScheduleError(f"{tw}: phone targets take no k-means settings (percent, candidates)")
    if t.source == "layer":
        if prev_depth is None:
            raise ScheduleError(f"{tw}.source: 'layer' needs a previous checkpoint (none before the first "
                                "iteration; set start_from)")
        if t.layer is None:
            raise ScheduleError(f"{tw}.layer: required for source 'layer' (an integer or 'auto')")
        if isinstance(t.layer, str) and t.layer.isdigit():
            t.layer = int(t.layer)
        if t.layer == "auto":
            t.candidates = list(range(1, prev_depth + 1)) if t.candidates is None else t.candidates
            if any(c > prev_depth for c in t.candidates) or not t.candidates or \
                    len(set(t.candidates)) < len(t.candidates):
                raise ScheduleError(f"{tw}.candidates: distinct layers in 1..{prev_depth}, got {t.candidates}")
        elif isinstance(t.layer, str) and not t.layer.isdigit():
            raise ScheduleError(f"{tw}.layer: expected an integer or 'auto', got {t.layer!r}")
        elif t.layer < 1:
            raise ScheduleError(f"{tw}.layer: must be >= 1, got {t.layer}")
        elif t.layer > prev_depth:
            raise ScheduleError(f"{tw}.layer: {t.layer} > depth {prev_depth} of the previous model")
    elif t.layer is not None:
        raise ScheduleError(f"{tw}.layer: only for source 'layer'")
    if t.candidates is not None and t.layer != "auto":
        raise ScheduleError(f"{tw}.candidates: only for layer: auto")
    rates = MFCC_RATES if t.source == "mfcc" else (SOURCES[t.source],)
    if t.rate is not None and t.rate not in rates:
        raise ScheduleError(f"{tw}.rate: {t.rate:g} Hz; {t.source} targets are at "
                            + " or ".join(f"{r:g}" for r in rates) + " Hz")
    t.rate = float(SOURCES[t.source] if t.rate is None else t.rate)


def shipped_config(spec: str, group: str, error: type[AeHubertError]) -> str:
    """A path, or the name of a YAML shipped in ``config/GROUP/`` (e.g. schedule ``standard``)."""
    if os.path.isfile(spec):
        return spec
    if os.path.exists(spec):
        raise error(f"{spec}: not a {group} file (a directory or a device)")
    if os.sep in spec:
        raise error(f"{spec}: {group} not found")
    shipped = os.path.join(CONFIG_DIR, group, spec + ".yaml")
    if os.path.isfile(shipped):
        return shipped
    raise error(f"{spec}: {group} not found (neither a file nor a shipped {group} in {os.path.dirname(shipped)})")


def shipped_schedule(spec: str) -> str:
    """A path, or the name of a shipped schedule (``standard``, ``progressive_toy``, ...)."""
    return shipped_config(spec, "schedule", ScheduleError)
