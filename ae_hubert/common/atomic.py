"""Write-to-temporary-then-rename, so an interrupted run never leaves a file that looks finished."""
from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
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
    try:  # access() says yes to root everywhere; creating a file is the real test (e.g. under /proc)
        import tempfile

        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise located(path, f"cannot write files in this directory ({e.strerror})") from None
    return path


def check_writable_dir(path: str | os.PathLike) -> str:
    """Up-front check that outputs can go to directory ``path``, without creating it: a refusal
    that comes later (bad input) must not leave an empty directory behind. ``path`` or its
    nearest existing ancestor must be a writable directory; the writer creates it when it writes."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        return ensure_writable_dir(path)
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise located(path, f"cannot create output directory ({parent} is not a directory)")
    ensure_writable_dir(parent)
    return path


_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())
_PARTIAL = re.compile(r"^\.(?P<stem>.*)\.partial-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)(?P<ext>\.[^.]*)?$")


def tmp_name(final: str | os.PathLike) -> str:
    """The temporary name used for ``final`` while it is being written (same dir, same suffix):
    ``.STEM.partial-HOST-PID.EXT``, so a later run can tell a dead writer's leftover from a live one."""
    final = os.fspath(final)
    d, base = os.path.split(final)
    stem, ext = os.path.splitext(base)
    return os.path.join(d, f".{stem}.partial-{_HOST}-{os.getpid()}{ext}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_partial(name: str) -> bool:
    """A temporary file of ours (``tmp_name``), its writer alive or not."""
    return bool(_PARTIAL.match(os.path.basename(name)))


def is_stale_partial(name: str) -> bool:
    """A temporary file of ours whose writer (on this host) is dead. Other hosts' files are left
    alone: on a shared filesystem their writers may still be running."""
    m = _PARTIAL.match(os.path.basename(name))
    return bool(m) and m["host"] == _HOST and not _alive(int(m["pid"]))


def remove_stale_partials(directory: str | os.PathLike, recursive: bool = False) -> list[str]:
    """Delete the leftovers of killed writers under ``directory``; returns what was removed."""
    removed = []
    walk = os.walk(directory) if recursive else [(os.fspath(directory), [], _listdir(directory))]
    for d, _, files in walk:
        for f in files:
            if f.startswith(".") and ".partial-" in f and is_stale_partial(f):
                path = os.path.join(d, f)
                try:
                    os.remove(path)
                    removed.append(path)
                except FileNotFoundError:
                    pass
    return removed


_swept: set[str] = set()


def sweep_once(directory: str) -> None:
    """:func:`remove_stale_partials` the first time this process writes into ``directory`` (the
    leftovers of writers that died before we started; a listing per file would cost O(files^2))."""
    key = os.path.realpath(directory)
    if key not in _swept:
        remove_stale_partials(directory)
        _swept.add(key)


def _listdir(d) -> list[str]:
    try:
        return os.listdir(d)
    except OSError:
        return []


def _not_a_directory(final: str) -> None:
    """A directory where an output file goes would make the rename fail after the work (and, for
    a pair of files, after the first one was renamed): refuse before the work."""
    if os.path.isdir(final):
        raise located(final, "a directory is in the way of this output file (remove or rename it)")


def check_output_files(*paths: str | os.PathLike) -> None:
    """A driver's summary files, written when its run ends: a directory in the place of one is
    refused before the run, not after hours of work."""
    for p in paths:
        _not_a_directory(os.fspath(p))


def remove_output(path: str | os.PathLike) -> None:
    """Remove an output file (or a link standing for one; what it points at stays), if there: a
    summary withdrawn before what it describes is removed. A directory in its place is refused."""
    path = os.fspath(path)
    if not os.path.islink(path):
        _not_a_directory(path)
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise located(path, f"cannot be removed ({e.strerror or e})") from None


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path; rename it to ``final`` only if the block completes."""
    final = os.fspath(final)
    _not_a_directory(final)
    sweep_once(ensure_writable_dir(os.path.dirname(os.path.abspath(final))))
    tmp = tmp_name(final)
    try:
        yield tmp
        try:
            os.replace(tmp, final)
        except OSError as e:  # (named as the file it would have replaced, not as the partial)
            raise located(final, f"cannot be replaced ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def output_dir(path: str | os.PathLike) -> Iterator[str]:
    """``path`` checked writable up front; if this block made it (and parents) and stops on an error,
    the directories it made go too while empty (a refused command leaves nothing behind, not even its
    --out-dir). For one writer: a second one writing into the same new directory could lose it."""
    path = os.path.abspath(os.fspath(path))
    check_writable_dir(path)
    made = []  # the directories that do not exist yet, deepest first
    d = path
    while not os.path.exists(d):
        made.append(d)
        d = os.path.dirname(d)
    try:
        yield path
    except BaseException:
        for d in made:
            try:
                os.rmdir(d)
            except OSError:  # not empty (or gone): it and its parents stay
                break
        raise


@contextlib.contextmanager
def atomic_paths(*finals: str | os.PathLike) -> Iterator[list[str]]:
    """Like :func:`atomic_path` for several files that only make sense together.

    All are renamed in the given order once the block completes; put the file that marks
    completion (e.g. the ``.len`` index of a feature dump) last.
    """
    for f in finals:
        _not_a_directory(os.fspath(f))
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(_deferred(f)) for f in finals]
        yield [t.tmp for t in tmps]
        for t in tmps:
            t.commit()


class _deferred:
    def __init__(self, final):
        self.final = os.fspath(final)
        sweep_once(ensure_writable_dir(os.path.dirname(os.path.abspath(self.final))))
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


def unshare_hard_links(paths) -> list[str]:
    """Give each of ``paths`` that shares its data with another path (a work dir copied with
    ``cp -al``) a copy of its own, before a writer that rewrites it in place (fairseq copies over
    ``checkpoint_last.pt``, appends to its logs, rewrites ``.hydra/``) would write through to the
    other path's file; a link to a file (``cp -as``) is replaced by a copy of it for the same
    reason. Directories and missing paths are left alone. Returns the files copied."""
    import shutil

    done = []
    for path in paths:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if (stat.S_ISREG(st.st_mode) and st.st_nlink > 1) or (stat.S_ISLNK(st.st_mode) and os.path.isfile(path)):
            with atomic_path(path) as tmp:
                shutil.copy2(path, tmp)
            done.append(path)
    return done


__all__ = ["atomic_path", "atomic_paths", "check_writable_dir", "ensure_writable_dir", "output_dir",
           "remove_stale_partials", "tmp_name", "unshare_hard_links", "write_text_atomic", "write_lines_atomic"]
