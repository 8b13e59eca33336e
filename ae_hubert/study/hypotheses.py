"""The study's hypotheses: every module ``hN.py`` of this package is one, found by its name.

A hypothesis module defines (see h3.py for the smallest):

- ``TITLE``: its question, the heading of its section in ``study.md``;
- ``ARMS``: True when the study YAML's ``schedules.HN`` names arms (``{arm: schedule}``) it compares
  against a reference arm made of H1's runs; such a module also has ``reference(h1_schedule)`` (the
  reference arm's name); ``SCHEDULE`` (optional): True when it takes one schedule of its own
  (``schedules.HN: SCHEDULE``, as H1);
- ``check(plan)``: what it will run, checked before any work (``config.Plan``: the study, H1's
  schedule, and what the hypotheses record there: updates, reference arms, fine-tunings to compose,
  runs probed over updates), e.g. that its arms are fair;
- ``measure(seed)``: its per-seed measurements from ``seed.SeedRuns`` (which holds the plan), a dict
  of its own keys merged into the seed's record (every measurement a resumable stage); optionally
  ``measure_first(seed)``, what it measures on H1's iteration-1 model before iteration 2 trains;
- ``summarise(per_seed, study)``: mean +- std over seeds and the verdict;
- ``markdown(h, seeds)``, ``plots(h, out_dir)``, ``verdict(h)``: its section of ``study.md``, its
  figures and its lines in the command's output.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from types import ModuleType

ATTRIBUTES = ("TITLE", "ARMS", "check", "measure", "summarise", "markdown", "plots", "verdict")


@functools.cache
def hypotheses() -> dict[str, ModuleType]:
    """``{"H1": module, ...}`` in the order of their numbers; a module that lacks part of the
    interface fails here, before any work, not after every seed has trained."""
    from . import __path__ as here

    found = sorted((m.name for m in pkgutil.iter_modules(here) if re.fullmatch(r"h\d+", m.name)),
                   key=lambda n: int(n[1:]))
    modules = {n.upper(): importlib.import_module(f"{__package__}.{n}") for n in found}
    for h, module in modules.items():
        missing = [a for a in ATTRIBUTES if not hasattr(module, a)] + \
            (["reference"] if getattr(module, "ARMS", False) and not hasattr(module, "reference") else [])
        if missing:
            raise ImportError(f"{module.__file__}: a hypothesis module defines {', '.join(missing)} "
                              "(see ae_hubert/study/hypotheses.py)")
    return modules


def names() -> tuple[str, ...]:
    return tuple(hypotheses())


def armed() -> tuple[str, ...]:
    """The hypotheses whose schedules are arms (``schedules.HN: {arm: schedule}``)."""
    return tuple(h for h, m in hypotheses().items() if m.ARMS)
