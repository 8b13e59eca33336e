"""One driver per work dir: an exclusive ``flock`` on ``W/.ae_hubert.lock``.

The kernel drops the lock when its holder dies (even by kill -9), so a lock left by a dead process
is simply taken over; the file only records who holds it, for the refusal message. ``driven_dir``
lets every command refuse to write inside a work dir another process is driving
(``common/outputs``), and a driver refuse to start inside one.
"""
from __future__ import annotations

import fcntl
import os
import socket
import sys
import time

from .atomic import ensure_writable_dir
from .errors import AeHubertError, located

LOCK_NAME = ".ae_hubert.lock"
MARKER_DIR = ".stages"  # a work dir's step markers (runner/stages): its presence makes a directory a work dir
# The locks this process holds: its own steps may write inside their work dir, and so may the
# processes it starts (a harness running `ae-hubert` commands in its work dir), which inherit them
# through HELD_ENV. Checked before any other open of the lock file, since on NFS (flock emulated by
# POSIX locks) closing any descriptor of it would drop this process's lock.
HELD: set[str] = set()
HELD_ENV = "AE_HUBERT_HELD_LOCKS"
INHERITED = frozenset(p for p in os.environ.get(HELD_ENV, "").split(os.pathsep) if p)


def holds(lock_path: str) -> bool:
    """Whether this process, or the driver that started it, holds the lock at ``lock_path`` (real)."""
    return lock_path in HELD or lock_path in INHERITED


def _publish() -> None:
    os.environ[HELD_ENV] = os.pathsep.join(sorted(INHERITED | HELD))


def _open(path: str, flags: int) -> int:
    """The lock file, never through a link (a planted link would have the lock truncate its target)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        if os.path.islink(path):
            raise located(path, "a link where the work dir's lock file belongs; remove it") from None
        raise located(path, f"cannot open the work dir's lock ({e.strerror or e})") from None


def held_by(work_dir: str) -> str | None:
    """Who holds ``work_dir``'s lock, when another process does (None when nobody, or this one)."""
    path = os.path.join(os.path.realpath(work_dir), LOCK_NAME)
    if holds(path) or not os.path.isfile(path) or os.path.islink(path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # taken and dropped at once: nobody holds it
        return None
    except BlockingIOError:
        return os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown pid"
    except OSError:  # a filesystem without flock: no driver can hold it either
        return None
    finally:
        os.close(fd)


def driven_dir(path: str) -> tuple[str, str] | None:
    """The work dir around ``path`` (or ``path`` itself) that another process holds locked, and who."""
    d = os.path.realpath(path)
    while True:
        holder = held_by(d) if os.path.isdir(d) else None
        if holder:
            return d, holder
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


class WorkDirLock:
    def __init__(self, work_dir: str):
        self.path = os.path.join(os.path.abspath(work_dir), LOCK_NAME)
        self.fd: int | None = None

    def __enter__(self) -> "WorkDirLock":
        w = os.path.dirname(self.path)
        around = driven_dir(os.path.dirname(w))
        if around:  # a run started inside another's work dir would write under its driver
            raise AeHubertError(f"{w}: inside {around[0]}, a work dir in use by another ae-hubert run ({around[1]}); "
                                "wait for it, or use a work dir elsewhere")
        ensure_writable_dir(w)
        fd = _open(self.path, os.O_RDWR | os.O_CREAT)  # not inherited by children (PEP 446)
        for attempt in range(5):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:  # held, or only looked at for a moment by held_by: asked again shortly
                if attempt < 4:
                    time.sleep(0.1)
                    continue
                holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown pid"
                os.close(fd)
                raise AeHubertError(f"{w}: in use by another ae-hubert run ({holder}); wait for it or stop it "
                                    f"(lock: {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv[:3])}\n".encode())
        self.fd = fd
        HELD.add(os.path.realpath(self.path))
        _publish()
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock; the file stays (removing it would race)
            self.fd = None
            HELD.discard(os.path.realpath(self.path))
            _publish()
