"""Resumable stages: a stage's marker is written only after all its outputs are complete.

A rerun after a kill skips every stage whose marker exists and redoes the interrupted one; the
tools write atomically, so redoing it gives the same bytes. A stage records what it runs (its
command and settings) when it starts as well as when it ends, so that a rerun under other settings
is refused for a half-done stage too (training would otherwise continue from the old checkpoint
under the new settings), naming the first difference and the way out. A step that names its
outputs records their digests, and a rerun that finds one changed since (labels edited in place, a
k-means file replaced) is refused before the steps after it read it.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import time
from typing import Any, Callable

from ..common.atomic import ensure_writable_dir, write_text_atomic
from ..common.checkpoint import file_digest
from ..common.errors import AeHubertError, located
from ..common.lock import MARKER_DIR

logger = logging.getLogger(__name__)


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _same(recorded: str, accepted: tuple) -> bool:
    """A recorded command is one of ``accepted`` word for word (quoting aside: a work dir moved to a
    path that needs quotes records the same words)."""
    return recorded in accepted or any(a is not None and _words(recorded) == _words(a) for a in accepted)


def _without_paths(value):
    """A JSON value with every absolute path replaced by a placeholder."""
    if isinstance(value, dict):
        return {k: _without_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    return "<path>" if isinstance(value, str) and value.startswith(os.sep) else value


def relocated(value, old: str, new: str):
    """A record's paths under ``old`` moved to ``new`` (those of a copied or moved work dir)."""
    if isinstance(value, dict):
        return {k: relocated(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [relocated(v, old, new) for v in value]
    if isinstance(value, str) and (value == old or value.startswith(old + os.sep)):
        return new + value[len(old):]
    return value


def output_digest(path: str) -> str:
    """A step output's identity by content; a JSON record's without the paths it names (where it
    was made: a study carried to another machine rewrites them, and holds the same record)."""
    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return file_digest(path)
        import hashlib

        return "json:" + hashlib.sha1(json.dumps(_without_paths(record), sort_keys=True).encode()).hexdigest()
    return file_digest(path)


def first_difference(before: str, now: str) -> str:
    """The first setting that differs between two commands, in words: ``now X, was Y``."""
    old, new = _words(before), _words(now)

    def named(ws, i):  # a value after its option (``--seed 2``) is shown with it
        return f"{ws[i - 1]} {ws[i]}" if i > 0 and ws[i - 1].startswith("--") and not ws[i].startswith("--") else ws[i]

    gone = [i for i, w in enumerate(old) if w not in new]
    added = [i for i, w in enumerate(new) if w not in old]
    if added and gone:
        return f"now {named(new, added[0])!r}, was {named(old, gone[0])!r}"
    if added:
        return f"now also {named(new, added[0])!r}"
    if gone:
        return f"{named(old, gone[0])!r} no longer given"
    return "the same words in another order"


class Stages:
    def __init__(self, work_dir: str, echo: Callable[[str], None] = print,
                 way_out: str = "use a new work dir, or delete this marker and what follows it to redo it"):
        self.work_dir = os.path.abspath(work_dir)
        self.marker_dir = ensure_writable_dir(os.path.join(self.work_dir, MARKER_DIR))
        self.echo = echo
        self.way_out = way_out  # what a refused rerun says to do (``{name}``: the stage)
        self.verified: set[str] = set()  # done steps whose outputs were found unchanged by this run

    def marker(self, name: str) -> str:
        return os.path.join(self.marker_dir, f"{name}.json")

    def started_marker(self, name: str) -> str:
        return os.path.join(self.marker_dir, "started", f"{name}.json")

    def never_started(self, name: str) -> bool:
        """Neither done nor started in this work dir (what its save dir holds is not its own)."""
        return self.done(name) is None and not os.path.isfile(self.started_marker(name))

    def names(self) -> set[str]:
        """Every stage this work dir holds a marker of, done or started."""
        dirs = (self.marker_dir, os.path.dirname(self.started_marker("x")))
        return {f[:-len(".json")] for d in dirs if os.path.isdir(d) for f in os.listdir(d)
                if f.endswith(".json") and f != "inputs.json"}

    def forget(self, name: str) -> bool:
        """Remove ``name``'s markers (done and started), so that a rerun redoes it; whether any existed."""
        found = False
        for path in (self.marker(name), self.started_marker(name)):
            if os.path.isfile(path):
                os.remove(path)
                found = True
        return found

    def _refuse(self, name: str, path: str, what: str, before: str, now: str) -> AeHubertError:
        return AeHubertError(f"{path}: this step was {what} with other settings ({first_difference(before, now)}); "
                             f"rerun with the same settings to {'resume' if what == 'started' else 'reuse'} it, or "
                             + self.way_out.format(name=name))

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

    def check(self, name: str, command: str | None, done_as: tuple[str, ...] = ()) -> dict | None:
        """``name``'s marker if it is done under ``command`` (or one of ``done_as``), else None;
        refused when it was done or started under other settings. Changes nothing: callers check a
        whole plan this way before they remove or run anything."""
        prev = self.done(name)
        accepted = (command, *done_as)
        if prev is not None:
            if command is not None and not _same(prev.get("command", command), accepted):
                raise self._refuse(name, self.marker(name), "done", prev["command"], command)
            self._verify(name, prev)
            return prev
        started = self.started_marker(name)
        if command is not None and os.path.isfile(started):
            try:
                with open(started) as f:
                    before = json.load(f)["command"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise located(started, f"unreadable stage record ({e}); delete it to redo the stage") from None
            if not _same(before, accepted):
                raise self._refuse(name, started, "started", before, command)
        return None

    def _path(self, rel: str) -> str:
        return rel if os.path.isabs(rel) else os.path.join(self.work_dir, rel)

    def _digests(self, outputs: tuple[str, ...]) -> dict[str, str]:
        """``{path relative to the work dir: digest}`` of the outputs that exist (relative: a moved or
        copied work dir still resumes)."""
        out = {}
        for p in outputs:
            if os.path.isfile(p):
                rel = os.path.relpath(os.path.abspath(p), self.work_dir)
                out[p if rel.startswith(os.pardir) else rel] = output_digest(p)
        return out

    def _verify(self, name: str, prev: dict) -> None:
        """Refuse a done step whose recorded outputs changed since it made them. A missing one is not
        refused here: whatever reads it next says so, where a changed one would be read in silence."""
        if name in self.verified:
            return
        recorded = prev.get("outputs") or {}
        for rel, digest in (recorded.items() if isinstance(recorded, dict) else ()):
            path = self._path(rel)
            if os.path.isfile(path) and output_digest(path) != digest:
                raise located(path, f"changed since step {name} made it (by content; {self.marker(name)}): the steps "
                                    "after it would go on from the changed file; " + self.way_out.format(name=name))
        self.verified.add(name)

    def check_inputs(self, now: dict[str, tuple[str, str]], restarting: bool = False, write: bool = True,
                     way_out: str = "use a new work dir") -> None:
        """Refuse inputs from outside the work dir (``{role: (path, digest)}``) other than it was
        started on, naming the first that changed, unless ``restarting`` (everything is redone);
        with ``write``, record them as they are now (``.stages/inputs.json``), beside those recorded
        before and not read now (a sweep's split decoded earlier stays in its table, and checked)."""
        path = os.path.join(self.marker_dir, "inputs.json")
        before: dict = {}
        if os.path.isfile(path) and not restarting:
            try:
                with open(path) as f:
                    before = json.load(f)
            except (OSError, ValueError) as e:
                raise located(path, f"unreadable ({e}); delete it to accept the inputs as they are now") from None
            changed = [role for role, (_, digest) in now.items() if role in before and before[role] != digest]
            if changed:
                raise located(now[changed[0]][0], f"differs from the {changed[0]} this work dir was started on (by "
                                                  f"content, {path}): changed since, or another file; {way_out}")
        if write:
            recorded = {**before, **{role: digest for role, (_, digest) in now.items()}}
            write_text_atomic(path, json.dumps(recorded, indent=1) + "\n")

    def run(self, name: str, fn: Callable[[], Any], command: str | None = None,
            done_as: tuple[str, ...] = (), outputs: tuple[str, ...] = ()) -> Any:
        """Run ``fn`` unless ``name`` is done; return its (JSON-able) result either way. ``command``
        (what the step runs) is recorded; a done step whose command differs is refused, not reused,
        unless it is one of ``done_as``: the same step as an earlier version of the tool wrote it.
        ``outputs``: files the step makes and later steps read, recorded by content and checked on
        every rerun."""
        prev = self.check(name, command, done_as)
        if prev is not None:
            self.echo(f"[skip] {name} (done)")
            return prev["result"]
        if command is not None:
            started = self.started_marker(name)
            os.makedirs(os.path.dirname(started), exist_ok=True)
            write_text_atomic(started, json.dumps({"command": command}, indent=1) + "\n")
        self.echo(f"[run ] {name}")
        t0 = time.time()
        result = fn()
        record = {"result": result, "seconds": round(time.time() - t0, 2),
                  **({"command": command} if command is not None else {}),
                  **({"outputs": self._digests(outputs)} if outputs else {})}
        write_text_atomic(self.marker(name), json.dumps(record, indent=1) + "\n")
        return result

    def seconds(self, name: str) -> float | None:
        rec = self.done(name)
        return rec["seconds"] if rec else None
