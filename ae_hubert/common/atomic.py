"""Write-to-temporary-then-rename, so an interrupted run never leaves a file that looks finished."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

from .errors import located


def ensure_writable_dir(path: str | os.PathLike) -> str:
    """Create ``path`` if needed and check that files can be created in it."""
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise located(path, f"cannot create output directory ({e.strerror})") from None
    if not os.path.isdir(path):
        raise located(path, "output path exists and is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise located(path, "output directory is not writable")
    return path


def tmp_name(final: str | os.PathLike) -> str:
    """The temporary name used for ``final`` while it is being written (same dir, same suffix)."""
    final = os.fspath(final)
    d, base = os.path.split(final)
    stem, ext = os.path.splitext(base)
    return os.path.join(d, f".{stem}.partial-{os.getpid()}{ext}")


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path; rename it to ``final`` only if the block completes."""
    final = os.fspath(final)
    ensure_writable_dir(os.path.dirname(os.path.abspath(final)))
    tmp = tmp_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_paths(*finals: str | os.PathLike) -> Iterator[list[str]]:
    """Like :func:`atomic_path` for several files that only make sense together.

    All are renamed in the given order once the block completes; put the file that marks
    completion (e.g. the ``.len`` index of a feature dump) last.
    """
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(_deferred(f)) for f in finals]
        yield [t.tmp for t in tmps]
        for t in tmps:
            t.commit()


class _deferred:
    def __init__(self, final):
        self.final = os.fspath(final)
        ensure_writable_dir(os.path.dirname(os.path.abspath(self.final)))
        self.tmp = tmp_name(self.final)

    def __enter__(self):
        return self

    def commit(self):
        os.replace(self.tmp, self.final)

    def __exit__(self, *exc):
        if os.path.exists(self.tmp):
            os.remove(self.tmp)
        return False


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_lines_atomic(path: str | os.PathLike, lines) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(f"{line}\n")


__all__ = ["atomic_path", "atomic_paths", "ensure_writable_dir", "tmp_name", "write_text_atomic",
           "write_lines_atomic"]
