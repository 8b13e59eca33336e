"""Resumable stages: a stage's marker is written only after all its outputs are complete.

A rerun after a kill skips every stage whose marker exists and redoes the interrupted one; the
tools write atomically, so redoing it gives the same bytes.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable

from ..common.atomic import ensure_writable_dir, write_text_atomic
from ..common.errors import AeHubertError, located

logger = logging.getLogger(__name__)


class Stages:
    def __init__(self, work_dir: str, echo: Callable[[str], None] = print):
        self.work_dir = os.path.abspath(work_dir)
        self.marker_dir = ensure_writable_dir(os.path.join(self.work_dir, ".stages"))
        self.echo = echo

    def marker(self, name: str) -> str:
        return os.path.join(self.marker_dir, f"{name}.json")

    def done(self, name: str) -> dict | None:
        path = self.marker(name)
        if not os.path.isfile(path):
            return None
        try:
            with open(path) as f:
                rec = json.load(f)
        except (OSError, ValueError) as e:
            raise located(path, f"unreadable stage marker ({e}); delete it to redo the stage") from None
        if not isinstance(rec, dict) or "result" not in rec:
            raise located(path, "not a stage marker (no 'result'); delete it to redo the stage")
        return rec

    def run(self, name: str, fn: Callable[[], Any], command: str | None = None,
            done_as: tuple[str, ...] = ()) -> Any:
        """Run ``fn`` unless ``name`` is done; return its (JSON-able) result either way. ``command``
        (what the step runs) is recorded; a done step whose command differs is refused, not reused,
        unless it is one of ``done_as``: the same step as an earlier version of the tool wrote it."""
        prev = self.done(name)
        if prev is not None:
            if command is not None and prev.get("command", command) not in (command, *done_as):
                raise AeHubertError(f"{self.marker(name)}: this step was done with other settings "
                                    f"({prev['command'][:200]} ...); use a new work dir, or delete this "
                                    "marker and what follows it to redo it")
            self.echo(f"[skip] {name} (done)")
            return prev["result"]
        self.echo(f"[run ] {name}")
        t0 = time.time()
        result = fn()
        record = {"result": result, "seconds": round(time.time() - t0, 2),
                  **({"command": command} if command is not None else {})}
        write_text_atomic(self.marker(name), json.dumps(record, indent=1) + "\n")
        return result

    def seconds(self, name: str) -> float | None:
        rec = self.done(name)
        return rec["seconds"] if rec else None
