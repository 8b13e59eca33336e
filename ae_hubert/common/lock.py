"""One driver per work dir: an exclusive ``flock`` on ``W/.ae_hubert.lock``.

The kernel drops the lock when its holder dies (even by kill -9), so a lock left by a dead process
is simply taken over; the file only records who holds it, for the refusal message. ``held_by`` lets
every command refuse to write inside a work dir another process is driving (``common/outputs``).
"""
from __future__ import annotations

import fcntl
import os
import socket
import sys

from .atomic import ensure_writable_dir
from .errors import AeHubertError

LOCK_NAME = ".ae_hubert.lock"
_HELD: set[str] = set()  # the locks this process holds: its own steps may write inside their work dir


def held_by(work_dir: str) -> str | None:
    """Who holds ``work_dir``'s lock, when another process does (None when nobody, or this one)."""
    path = os.path.join(os.path.realpath(work_dir), LOCK_NAME)
    if path in _HELD or not os.path.isfile(path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # taken and dropped at once: nobody holds it
        return None
    except BlockingIOError:
        return os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown pid"
    finally:
        os.close(fd)


class WorkDirLock:
    def __init__(self, work_dir: str):
        self.path = os.path.join(os.path.abspath(work_dir), LOCK_NAME)
        self.fd: int | None = None

    def __enter__(self) -> "WorkDirLock":
        ensure_writable_dir(os.path.dirname(self.path))
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children (PEP 446)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown pid"
            os.close(fd)
            raise AeHubertError(f"{os.path.dirname(self.path)}: in use by another ae-hubert run ({holder}); "
                                f"wait for it or stop it (lock: {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv[:3])}\n".encode())
        self.fd = fd
        _HELD.add(os.path.realpath(self.path))
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock; the file stays (removing it would race)
            self.fd = None
            _HELD.discard(os.path.realpath(self.path))
