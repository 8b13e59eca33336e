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
from .train import CONFIG_DIR

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
    description: str = ""

    @property
    def total_updates(self) -> int:
        return sum(it.max_update for it in self.iterations)


def resolve_train_config(spec: str, where: str) -> tuple[str, str]:
    """``pretrain/toy_cpu`` (shipped) or a path to a YAML -> (config dir, config name)."""
    path = spec if spec.endswith(".yaml") else os.path.join(CONFIG_DIR, spec + ".yaml")
    if not os.path.isfile(path):
        raise ScheduleError(f"{where}: training config {spec!r} not found ({path})")
    return os.path.dirname(os.path.abspath(path)), os.path.splitext(os.path.basename(path))[0]


def encoder_depth(config_dir: str, config_name: str, overrides: list[str]) -> int:
    """Transformer depth the training config (plus overrides) asks for."""
    cfg = OmegaConf.load(os.path.join(config_dir, config_name + ".yaml"))
    depth = OmegaConf.select(cfg, "model.encoder_layers", default=12)  # HubertConfig's default
    for o in overrides:
        key, _, value = o.lstrip("+").partition("=")
        if key == "model.encoder_layers":
            depth = int(value)
    return int(depth)


def _get(node, key, where, default=None, required=False):
    if key in node and node[key] is not None:
        return node[key]
    if required:
        raise ScheduleError(f"{where}.{key}: required")
    return default


def _int(value, where, minimum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            else:
                raise ValueError
        except ValueError:
            raise ScheduleError(f"{where}: expected an integer, got {value!r}") from None
    if minimum is not None and value < minimum:
        raise ScheduleError(f"{where}: must be >= {minimum}, got {value}")
    return value


def load_schedule(path: str, data: str | None = None, extra_overrides: list[str] | None = None) -> Schedule:
    """Parse and validate; raise :class:`ScheduleError` naming the field before any work."""
    from ..common.checkpoint import load_hubert

    path = shipped_schedule(path)
    try:
        raw = OmegaConf.load(path)
    except (OmegaConfBaseException, OSError, ValueError) as e:
        raise ScheduleError(f"{path}: not a readable YAML schedule ({e})") from None
    where = os.path.basename(path)
    cfg_dir, cfg_name = resolve_train_config(str(_get(raw, "train_config", where, "pretrain/toy_cpu")),
                                             f"{where}: train_config")
    overrides = [str(o) for o in _get(raw, "overrides", where, [])]
    cli_overrides = list(extra_overrides or [])
    km = _get(raw, "kmeans", where, {})
    sched = Schedule(
        name=str(_get(raw, "name", where, os.path.splitext(os.path.basename(path))[0])),
        path=os.path.abspath(path), data=data or _get(raw, "data", where),
        train_config_dir=cfg_dir, train_config_name=cfg_name, overrides=overrides, iterations=[],
        cli_overrides=cli_overrides,
        kmeans_max_iter=_int(_get(km, "max_iter", f"{where}: kmeans", 100), f"{where}: kmeans.max_iter", 1),
        kmeans_streamed=bool(_get(km, "streamed", f"{where}: kmeans", False)),
        seed=_int(_get(raw, "seed", where, 1), f"{where}: seed"),
        start_from=_get(raw, "start_from", where),
        nshard=_int(_get(raw, "nshard", where, 1), f"{where}: nshard", 1),
        keep_features=bool(_get(raw, "keep_features", where, True)),
        description=str(_get(raw, "description", where, "")),
    )
    default_percent = float(_get(km, "percent", where, -1.0))
    if sched.data is None:
        raise ScheduleError(f"{where}: data: no manifest directory (set `data:` or pass --data)")
    if not os.path.isfile(os.path.join(sched.data, "train.tsv")):
        raise ScheduleError(f"{where}: data: {sched.data} has no train.tsv")
    if sched.start_from is not None:
        if not os.path.isfile(sched.start_from):
            raise ScheduleError(f"{where}: start_from: checkpoint {sched.start_from} not found")
        sched.start_depth = load_hubert(sched.start_from).num_layers
    its = _get(raw, "iterations", where, required=True)
    if len(its) == 0:
        raise ScheduleError(f"{where}: iterations: empty")
    prev_depth = sched.start_depth
    for i, it in enumerate(its):
        w = f"{where}: iterations[{i}]"
        name = str(_get(it, "name", w, f"iter{i + 1}"))
        it_overrides = [str(o) for o in _get(it, "overrides", w, [])]
        depth = encoder_depth(cfg_dir, cfg_name, overrides + it_overrides + cli_overrides)
        init = str(_get(it, "init", w, "scratch"))
        if init not in INITS:
            raise ScheduleError(f"{w}.init: {init!r} is not one of {', '.join(INITS)}")
        if init == "continue" and prev_depth is None:
            raise ScheduleError(f"{w}.init: 'continue' needs a previous checkpoint (none before the first "
                                "iteration; set start_from)")
        if init == "continue" and prev_depth != depth:
            raise ScheduleError(f"{w}.init: 'continue' needs the same depth as the previous model "
                                f"({prev_depth} layers), this iteration has {depth}")
        reset = _int(_get(it, "reset_top_layers", w, 0), f"{w}.reset_top_layers", 0)
        if reset and init != "continue":
            raise ScheduleError(f"{w}.reset_top_layers: only meaningful with init: continue")
        if reset > depth:
            raise ScheduleError(f"{w}.reset_top_layers: {reset} > model depth {depth}")
        targets = []
        raw_targets = _get(it, "targets", w, required=True)
        if len(raw_targets) == 0:
            raise ScheduleError(f"{w}.targets: empty")
        for j, t in enumerate(raw_targets):
            tw = f"{w}.targets[{j}]"
            source = str(_get(t, "source", tw, required=True))
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
                if str(layer) == "auto":
                    layer = "auto"
                    candidates = [_int(c, f"{tw}.candidates", 1) for c in _get(t, "candidates", tw,
                                                                               range(1, prev_depth + 1))]
                    bad = [c for c in candidates if c > prev_depth]
                    if bad or not candidates:
                        raise ScheduleError(f"{tw}.candidates: layers must be in 1..{prev_depth}, got {candidates}")
                else:
                    layer = _int(layer, f"{tw}.layer", 1)
                    if layer > prev_depth:
                        raise ScheduleError(f"{tw}.layer: {layer} > depth {prev_depth} of the previous model")
            elif layer is not None:
                raise ScheduleError(f"{tw}.layer: only for source 'layer'")
            percent = float(_get(t, "percent", tw, default_percent))
            if percent == 0 or percent > 1:
                raise ScheduleError(f"{tw}.percent: a fraction in (0, 1], or -1 for all, got {percent}")
            label = str(_get(t, "name", tw, "km" if j == 0 else f"km{j + 1}"))
            targets.append(Target(source, k, layer, percent, label, candidates))
        if len({t.rate for t in targets}) > 1:
            raise ScheduleError(f"{w}.targets: MFCC (100 Hz) and layer (50 Hz) targets cannot share an "
                                "iteration: fairseq's task has one label_rate")
        if len({t.name for t in targets}) < len(targets):
            raise ScheduleError(f"{w}.targets: label names must differ")
        max_update = _int(_get(it, "max_update", w, required=True), f"{w}.max_update", 1)
        sched.iterations.append(Iteration(name, targets, max_update, init, reset, it_overrides, depth))
        prev_depth = depth
    names = [it.name for it in sched.iterations]
    if len(set(names)) < len(names):
        raise ScheduleError(f"{where}: iterations: names must differ, got {names}")
    return sched


def shipped_schedule(spec: str) -> str:
    """A path, or the name of a shipped schedule (``standard``, ``progressive_toy``, ...)."""
    if os.path.isfile(spec):
        return spec
    shipped = os.path.join(CONFIG_DIR, "schedule", spec + ".yaml")
    if os.path.isfile(shipped):
        return shipped
    raise ScheduleError(f"{spec}: schedule not found (neither a file nor a shipped schedule in "
                        f"{os.path.dirname(shipped)})")
