"""Checkpoint lists for probing: files as given, and directories of checkpoints saved during a run
(``checkpoint_*.pt`` of fairseq's ``save_interval_updates``), ordered by training updates."""
from __future__ import annotations

import glob
import os

from ..common.checkpoint import load_state
from ..common.errors import located


def num_updates(path: str) -> int:
    hist = load_state(path).get("optimizer_history") or [{}]
    return int(hist[-1].get("num_updates", 0))


def expand_checkpoints(paths: list[str]) -> list[tuple[str, int]]:
    """``[(checkpoint, updates)]``: directories expand to their checkpoints, one per update count."""
    out: list[tuple[str, int]] = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(glob.glob(os.path.join(p, "checkpoint*.pt")))
            found = [f for f in found if ".partial-" not in f]
            if not found:
                raise located(p, "no checkpoint*.pt in this directory")
            seen: dict[int, str] = {}
            for f in found:  # checkpoint_last/best duplicate an interval checkpoint: keep one per update
                seen.setdefault(num_updates(f), f)
            out.extend((f, u) for u, f in sorted(seen.items()))
        else:
            out.append((p, num_updates(p)))
    return out
