"""Checkpoint lists for probing: files as given, and directories of checkpoints saved during a run
(``checkpoint_*.pt`` of fairseq's ``save_interval_updates``). Each directory is one run; runs given
in order (e.g. the iterations of a schedule) are laid end to end on one update axis."""
from __future__ import annotations

import glob
import os

from ..common.errors import located


def checkpoint_runs(paths: list[str]) -> list[tuple[str, list[str]]]:
    """``[(run, files)]``: a directory is a run of its ``checkpoint*.pt``; consecutive files that sit in
    the same directory form one run."""
    runs: list[tuple[str, list[str]]] = []
    for p in paths:
        if os.path.isdir(p):
            found = [f for f in sorted(glob.glob(os.path.join(p, "checkpoint*.pt"))) if ".partial-" not in f]
            if not found:
                raise located(p, "no checkpoint*.pt in this directory")
            runs.append((os.path.normpath(p), found))
        elif not os.path.isfile(p):
            raise located(p, "checkpoint not found")
        else:
            run = os.path.dirname(os.path.normpath(p))
            if runs and runs[-1][0] == run:
                runs[-1][1].append(p)
            else:
                runs.append((run, [p]))
    return runs


def run_label(run: str) -> str:
    """Short name of a run: ``iter2/checkpoints`` -> ``iter2``."""
    parts = os.path.normpath(run).split(os.sep)
    if parts[-1] == "checkpoints" and len(parts) > 1:
        return parts[-2]
    return parts[-1]
