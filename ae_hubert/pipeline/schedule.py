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

import difflib
import os
from dataclasses import dataclass, field

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..common.arguments import FILE_NAME
from ..common.errors import AeHubertError
from ..runner.configs import override_key
from ..runner.trainer import CONFIG_DIR, resolve_train_config

SOURCES = {"mfcc": 100.0, "layer": 50.0}
INITS = ("scratch", "continue")


class ScheduleError(AeHubertError):
    pass


@dataclass
class Target:
    source: str  # mfcc | layer
    k: int
    layer: int | str | None = None  # 1-based, or "auto"
    percent: float = -1.0  # k-means sample fraction of utterances (<= 0: all)
    name: str = "km"
    candidates: list[int] | None = None  # for layer: auto

    @property
    def rate(self) -> float:
        return SOURCES[self.source]


@dataclass
class Iteration:
    name: str
    targets: list[Target]
    max_update: int
    init: str = "scratch"
    reset_top_layers: int = 0
    overrides: list[str] = field(default_factory=list)
    depth: int = 0  # transformer layers of the model this iteration trains

    @property
    def label_rate(self) -> float:
        return self.targets[0].rate


@dataclass
class Schedule:
    name: str
    path: str
    data: str | None
    train_config_dir: str
    train_config_name: str
    overrides: list[str]  # the schedule's, for every iteration
    iterations: list[Iteration]
    cli_overrides: list[str] = field(default_factory=list)  # from the command line, applied last
    kmeans_max_iter: int = 100
    kmeans_streamed: bool = False  # bounded-memory k-means (memory-mapped sample, chunked passes)
    seed: int = 1
    start_from: str | None = None
    start_depth: int | None = None
    nshard: int = 1
    keep_features: bool = True
    # labels computed from the audio in the pass that computes the features (label --tsv-dir): a
    # feature dump only for the k-means sample (train; all of it when kmeans.percent is -1)
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


TOP_KEYS = ("name", "description", "data", "train_config", "overrides", "kmeans", "start_from", "seed", "nshard",
            "keep_features", "label_from_audio", "iterations")
KMEANS_KEYS = ("percent", "max_iter", "streamed")
ITERATION_KEYS = ("name", "targets", "init", "reset_top_layers", "max_update", "overrides")
TARGET_KEYS = ("source", "k", "layer", "percent", "name", "candidates")
NAME = FILE_NAME
# overrides the schedule itself sets for every run (Schedule.train_overrides): the field to use instead
OWNED = {"task.data": "data", "task.label_dir": "(the iteration's labels)", "task.labels": "targets[].name",
         "model.label_rate": "targets[].source (it follows task.label_rate)", "task.label_rate": "targets[].source", "checkpoint.save_dir": "(the iteration's directory)",
         "checkpoint.finetune_from_model": "init: continue"}
# overrides that stand for a schedule field: the last one given wins and becomes that field
ALIASES = {"optimization.max_update": "max_update", "common.seed": "seed"}


def _alias(overrides: list[str], key: str, value: int, where: str) -> int:
    for o in overrides:
        k, _, v = o.lstrip("+").partition("=")
        if k == key:
            try:
                value = int(v)
            except ValueError:
                raise ScheduleError(f"{where}: {o}: expected an integer") from None
    return value


def _mapping(node, where, keys):
    """``node`` must be a mapping whose keys are all known; a misspelt key gets a suggestion."""
    if not isinstance(node, DictConfig):
        raise ScheduleError(f"{where}: expected a mapping of {', '.join(keys)}, got {_show(node)}")
    for key in node.keys():
        if key not in keys:
            close = difflib.get_close_matches(str(key), keys, n=1)
            raise ScheduleError(f"{where}.{key}: unknown key" + (f" (did you mean {close[0]}?)" if close
                                                                 else f"; known: {', '.join(keys)}"))
    return node


def _show(node) -> str:
    return repr(OmegaConf.to_container(node) if OmegaConf.is_config(node) else node)


def _get(node, key, where, default=None, required=False):
    if key in node and node[key] is not None:
        return node[key]
    if required:
        raise ScheduleError(f"{where}.{key}: required")
    return default


def _list(node, where) -> list:
    if not isinstance(node, ListConfig):
        raise ScheduleError(f"{where}: expected a list, got {_show(node)}")
    return list(node)


def _int(value, where, minimum=None, maximum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{where}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ScheduleError(f"{where}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ScheduleError(f"{where}: must be <= {maximum}, got {value}")
    return value


def _bool(value, where) -> bool:
    if not isinstance(value, bool):  # a string "false" would otherwise read as true
        raise ScheduleError(f"{where}: expected true or false, got {value!r}")
    return value


def _str(value, where) -> str:
    if OmegaConf.is_config(value) or isinstance(value, bool):
        raise ScheduleError(f"{where}: expected a string, got {_show(value)}")
    return str(value)


def _name(value, where) -> str:
    """Names become directory and file names inside the work dir: plain words, no paths."""
    value = _str(value, where)
    if not NAME.fullmatch(value):
        raise ScheduleError(f"{where}: {value!r} must be letters, digits, '_' or '-' (it names files in the "
                            "work dir), not starting with '-'")
    return value


def _fraction(value, where) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (value != -1 and not 0 < value <= 1):
        raise ScheduleError(f"{where}: a fraction in (0, 1], or -1 for all, got {value!r}")
    return float(value)


def _overrides(node, where) -> list[str]:
    out = [_str(o, f"{where}[{i}]") for i, o in enumerate(_list(node, where))]
    check_overrides(out, where)
    return out


def check_overrides(overrides: list[str], where: str) -> None:
    for i, o in enumerate(overrides):
        key = override_key(o)
        if key in OWNED:
            raise ScheduleError(f"{where}[{i}]: {key} is set by the schedule for every run; use {OWNED[key]}")


def _manifest_sizes(data: str, where: str, nshard: int) -> list[int]:
    """Checks both splits (their audio headers too); returns the train utterances' sample counts."""
    from ..common.audio import check_headers
    from ..common.manifest import read_manifest

    sizes: list[int] = []
    for split in ("train", "valid"):
        m = read_manifest(os.path.join(data, f"{split}.tsv"))
        if nshard > len(m):
            raise ScheduleError(f"{where}: nshard: {nshard} shards but {m.tsv} has {len(m)} utterances")
        short = next((e for e in m.entries if e.nsamples < MIN_SAMPLES), None)
        if short is not None:
            raise ScheduleError(f"{short.where}: {short.relpath} has {short.nsamples} samples, fewer than the "
                                f"{MIN_SAMPLES} needed for one feature frame (remove it from the manifest)")
        check_headers(m.entries)
        if split == "train":
            sizes = [e.nsamples for e in m.entries]
    return sizes


def check_model_builds(cfg, ks: list[int], where: str) -> None:
    """Build the iteration's model once (dictionaries of the targets' sizes): sizes that cannot work
    together (e.g. an embedding width the attention heads do not divide) fail here, not after the
    sidecars, at the start of training."""
    import torch
    from fairseq import models, tasks
    from fairseq.data import Dictionary

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


def sampled_frames(sizes: list[int], rate: float, percent: float) -> int:
    """About how many frames k-means will see: every train utterance's frames at ``rate``, times the
    sampled fraction (MFCC: 25 ms windows every 10 ms; layers: 20 ms frames)."""
    hop = 16000 // int(rate)
    total = sum(max(0, (n - 400) // hop + 1) for n in sizes)
    return int(total * (percent if percent > 0 else 1.0))

MIN_SAMPLES = 400  # one MFCC window / HuBERT's CNN receptive field


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
    try:
        raw = OmegaConf.load(path)
    except (OmegaConfBaseException, OSError, ValueError, yaml.YAMLError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ScheduleError(f"{path}: not a readable YAML schedule ({first})") from None
    where = os.path.basename(path)
    _mapping(raw, where, TOP_KEYS)
    try:
        cfg_dir, cfg_name = resolve_train_config(_str(_get(raw, "train_config", where, "pretrain/toy_cpu"),
                                                      f"{where}: train_config"), f"{where}: train_config")
    except AeHubertError as e:
        raise ScheduleError(str(e)) from None
    overrides = _overrides(_get(raw, "overrides", where, ListConfig([])), f"{where}: overrides")
    cli_overrides = list(extra_overrides or [])
    km = _mapping(_get(raw, "kmeans", where, DictConfig({})), f"{where}: kmeans", KMEANS_KEYS)
    start_from = start_from_arg if start_from_arg is not None else _get(raw, "start_from", where)
    data = data or _get(raw, "data", where)
    sched = Schedule(
        name=_name(_get(raw, "name", where, os.path.splitext(os.path.basename(path))[0]), f"{where}: name"),
        path=os.path.abspath(path), data=None if data is None else _str(data, f"{where}: data"),
        train_config_dir=cfg_dir, train_config_name=cfg_name, overrides=overrides, iterations=[],
        cli_overrides=cli_overrides,
        kmeans_max_iter=_int(_get(km, "max_iter", f"{where}: kmeans", 100), f"{where}: kmeans.max_iter", 1),
        kmeans_streamed=_bool(_get(km, "streamed", f"{where}: kmeans", False), f"{where}: kmeans.streamed"),
        seed=_int(_get(raw, "seed", where, 1), f"{where}: seed", 0, 2 ** 32 - 1),
        start_from=None if start_from is None else _str(start_from, f"{where}: start_from"),
        nshard=_int(_get(raw, "nshard", where, 1), f"{where}: nshard", 1),
        keep_features=_bool(_get(raw, "keep_features", where, True), f"{where}: keep_features"),
        label_from_audio=_bool(_get(raw, "label_from_audio", where, True), f"{where}: label_from_audio"),
        description=_str(_get(raw, "description", where, ""), f"{where}: description"),
    )
    default_percent = _fraction(_get(km, "percent", where, -1), f"{where}: kmeans.percent")
    if sched.data is None:
        raise ScheduleError(f"{where}: data: no manifest directory (set `data:` or pass --data)")
    if not os.path.isfile(os.path.join(sched.data, "train.tsv")):
        raise ScheduleError(f"{where}: data: {sched.data} has no train.tsv")
    sizes = _manifest_sizes(sched.data, where, sched.nshard)
    check_overrides(cli_overrides, f"{where}: command-line overrides")
    sched.seed = _int(_alias(overrides + cli_overrides, "common.seed", sched.seed, where), f"{where}: seed", 0,
                      2 ** 32 - 1)
    if sched.start_from is not None:
        if not os.path.isfile(sched.start_from):
            raise ScheduleError(f"{'--start-from' if start_from_arg is not None else where + ': start_from'}: "
                                f"checkpoint {sched.start_from} not found")
        sched.start_depth = load_hubert(sched.start_from).num_layers
    elif start_depth is not None:
        sched.start_depth = start_depth
    its = _list(_get(raw, "iterations", where, required=True), f"{where}: iterations")
    if len(its) == 0:
        raise ScheduleError(f"{where}: iterations: empty")
    prev_depth = sched.start_depth
    for i, it in enumerate(its):
        w = f"{where}: iterations[{i}]"
        _mapping(it, w, ITERATION_KEYS)
        name = _name(_get(it, "name", w, f"iter{i + 1}"), f"{w}.name")
        it_overrides = _overrides(_get(it, "overrides", w, ListConfig([])), f"{w}.overrides")
        init = _str(_get(it, "init", w, "scratch"), f"{w}.init")
        if init not in INITS:
            raise ScheduleError(f"{w}.init: {init!r} is not one of {', '.join(INITS)}")
        reset = _int(_get(it, "reset_top_layers", w, 0), f"{w}.reset_top_layers", 0)
        max_update = _int(_alias(overrides + it_overrides + cli_overrides, "optimization.max_update",
                                 _get(it, "max_update", w, required=True), w), f"{w}.max_update", 1)
        targets = []
        raw_targets = _list(_get(it, "targets", w, required=True), f"{w}.targets")
        if len(raw_targets) == 0:
            raise ScheduleError(f"{w}.targets: empty")
        for j, t in enumerate(raw_targets):
            tw = f"{w}.targets[{j}]"
            _mapping(t, tw, TARGET_KEYS)
            source = _str(_get(t, "source", tw, required=True), f"{tw}.source")
            if source not in SOURCES:
                raise ScheduleError(f"{tw}.source: unknown source {source!r} (expected one of {', '.join(SOURCES)})")
            k = _int(_get(t, "k", tw, required=True), f"{tw}.k", 2)
            layer = _get(t, "layer", tw)
            candidates = None
            if source == "layer":
                if prev_depth is None:
                    raise ScheduleError(f"{tw}.source: 'layer' needs a previous checkpoint (none before the "
                                        "first iteration; set start_from)")
                if layer is None:
                    raise ScheduleError(f"{tw}.layer: required for source 'layer' (an integer or 'auto')")
                if layer == "auto":
                    candidates = [_int(c, f"{tw}.candidates", 1) for c in
                                  _list(_get(t, "candidates", tw, ListConfig(list(range(1, prev_depth + 1)))),
                                        f"{tw}.candidates")]
                    bad = [c for c in candidates if c > prev_depth]
                    if bad or not candidates or len(set(candidates)) < len(candidates):
                        raise ScheduleError(f"{tw}.candidates: distinct layers in 1..{prev_depth}, got {candidates}")
                else:
                    layer = _int(layer, f"{tw}.layer", 1)
                    if layer > prev_depth:
                        raise ScheduleError(f"{tw}.layer: {layer} > depth {prev_depth} of the previous model")
            elif layer is not None:
                raise ScheduleError(f"{tw}.layer: only for source 'layer'")
            if "candidates" in t and layer != "auto":
                raise ScheduleError(f"{tw}.candidates: only for layer: auto")
            percent = _fraction(_get(t, "percent", tw, default_percent), f"{tw}.percent")
            frames = sampled_frames(sizes, SOURCES[source], percent)
            if k > frames:
                raise ScheduleError(f"{tw}.k: {k} clusters but k-means will see only about {frames} frames")
            label = _name(_get(t, "name", tw, "km" if j == 0 else f"km{j + 1}"), f"{tw}.name")
            targets.append(Target(source, k, layer, percent, label, candidates))
        if len({t.rate for t in targets}) > 1:
            raise ScheduleError(f"{w}.targets: MFCC (100 Hz) and layer (50 Hz) targets cannot share an "
                                "iteration: fairseq's task has one label_rate")
        if len({t.name for t in targets}) < len(targets):
            raise ScheduleError(f"{w}.targets: label names must differ")
        iteration = Iteration(name, targets, max_update, init, reset, it_overrides)
        cfg = compose_train_config(cfg_dir, cfg_name, sched.train_overrides(
            iteration, os.path.abspath(sched.data), os.path.join("/", "LABEL_DIR"), os.path.join("/", "SAVE_DIR"),
            None), w)
        depth = iteration.depth = int(cfg.model.encoder_layers)
        if depth < 1:
            raise ScheduleError(f"{w}: model.encoder_layers: {depth}; a HuBERT model needs at least one layer")
        check_model_builds(cfg, [t.k for t in targets], w)
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


def shipped_config(spec: str, group: str, error: type[AeHubertError]) -> str:
    """A path, or the name of a YAML shipped in ``config/GROUP/`` (e.g. schedule ``standard``)."""
    if os.path.isfile(spec):
        return spec
    shipped = os.path.join(CONFIG_DIR, group, spec + ".yaml")
    if os.path.isfile(shipped):
        return shipped
    raise error(f"{spec}: {group} not found (neither a file nor a shipped {group} in {os.path.dirname(shipped)})")


def shipped_schedule(spec: str) -> str:
    """A path, or the name of a shipped schedule (``standard``, ``progressive_toy``, ...)."""
    return shipped_config(spec, "schedule", ScheduleError)
