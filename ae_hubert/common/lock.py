"""One driver per work dir: an exclusive ``flock`` on ``W/.ae_hubert.lock``.

The kernel drops the lock when its holder dies (even by kill -9), so a lock left by a dead process
is simply taken over; the file only records who holds it, for the refusal message. ``driven_dir``
lets every command refuse to write inside a work dir another process is driving
(``common/outputs``), and a driver refuse to start inside one; ``foreign_work_dir`` does the same for
a finished run's work dir (a resume trusts its files). A driver records its kind in the work dir
(``.stages/kind``): a work dir is resumed by the tool that made it, never taken over by another.
"""
from __future__ import annotations

import fcntl
import os
import re
import socket
import stat
import sys
import time

from .atomic import ensure_writable_dir, tmp_name, write_text_atomic
from .errors import AeHubertError, located

LOCK_NAME = ".ae_hubert.lock"
MARKER_DIR = ".stages"  # a work dir's step markers (runner/stages): its presence makes a directory a work dir
KIND_FILE = "kind"  # in MARKER_DIR: the driver that made the work dir (iterate, reset-sweep, demo, study, ...)
# what the drivers write at the top of their work dirs (a new work dir holding one is refused)
DRIVER_FILES = ("records.json", "report.html", "sweep.csv", "sweep.json", "wer_vs_k.png", "study.json", "study.md",
                "demo_summary.json", "probed_runs.json")
# the drivers whose work dirs hold other drivers' runs, and which: such a nested run may be resumed on its own
NESTS = {"study": ("iterate", "reset-sweep"), "study-rerun": ("iterate",), "demo": ("iterate", "reset-sweep"),
         "gpu-check": ("iterate", "reset-sweep", "study", "demo")}
# a work dir from before kinds were recorded, by its markers (first match): resumed by that tool only
_MARKED_BY = ((re.compile(r".+\.(init|kmeans|choose_layer|(labels|dump|quality|merge)(\..+)?)"), "iterate"),
              (re.compile(r"k\d+\.(train|decode\..+)"), "reset-sweep"), (re.compile(r".+\.train"), "iterate"),
              (re.compile(r"s\d+\..+"), "study"), (re.compile(r"probe\..+"), "demo"))
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


def _holder(fd: int) -> str:
    """The holder's line in an open lock file (``pid N on HOST: COMMAND (work dir W)``)."""
    return os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown pid"


def _holder_dir(line: str) -> str | None:
    """The work dir a holder's line names (None for a line of a version that did not say)."""
    m = re.search(r" \(work dir (.+)\)$", line)
    return m[1] if m else None


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
        holder = _holder(fd)
        if os.fstat(fd).st_nlink > 1 and _holder_dir(holder) not in (None, os.path.realpath(work_dir)):
            return None  # a lock file shared with a copy (cp -al), held for the other work dir
        return holder
    except OSError:  # a filesystem without flock: no driver can hold it either
        return None
    finally:
        os.close(fd)


def _record_line(path: str, what: str) -> str:
    """The one line a small record file holds ("" when it is missing)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as e:
        raise located(path, f"unreadable ({e}); it names {what}") from None


def work_dir_kind(w: str) -> str | None:
    """The driver that made work dir ``w``: ``.stages/kind``, or where that is missing or empty (a
    work dir of an earlier version, or one whose record was removed) what its step markers say;
    None for no work dir, or markers that name no tool."""
    kind = _record_line(os.path.join(w, MARKER_DIR, KIND_FILE), "the tool that made this work dir")
    if kind:
        return kind
    names = set()
    for d in (os.path.join(w, MARKER_DIR), os.path.join(w, MARKER_DIR, "started")):
        if os.path.isdir(d):
            names |= {f[:-len(".json")] for f in os.listdir(d) if f.endswith(".json")}
    return next((tool for pattern, tool in _MARKED_BY if any(pattern.fullmatch(n) for n in names)), None)


OWNER_FILE = ".ae_hubert.owner"  # in a directory a work dir reaches through a link: the work dir it belongs to
IDENTITY_FILE = "identity"  # in MARKER_DIR: the work dir's identity when its driver last ran (not a copy's own)


def _identity(w: str) -> str:
    """A work dir's identity beside its path: its markers' inode, kept by a move and new in a copy
    (the device number is left out: a remount may change it)."""
    return str(os.stat(os.path.join(w, MARKER_DIR)).st_ino)


def _same(recorded: str, identity: str) -> bool:
    return recorded.rpartition(":")[2] == identity  # (a record of the version that wrote DEV:INODE)


def _owner_record(path: str, work_dir: str, copied: bool, kind: str | None) -> str | None:
    """Where ``work_dir`` records itself as the owner of the directory the link ``path`` reaches
    (None when it is already recorded, or the link stays inside the work dir); refused when the
    directory belongs to another work dir, or may: a copy of a work dir (``cp -a``, ``cp -al``)
    keeps its links, and writing or restarting there would change, or remove, the original's
    files. A linked run of a kind ``kind`` nests (a study's run kept on another disk) is claimed too."""
    real, mine = os.path.realpath(path), os.path.realpath(work_dir)
    if not os.path.exists(real):
        raise located(path, f"a link to {os.readlink(path)}, which does not exist: make it a directory, or point "
                            "it at one")
    if not os.path.isdir(real):
        return None
    if real == mine or real.startswith(mine + os.sep) or mine.startswith(real + os.sep):
        raise located(path, f"a link to {real}, {'inside' if real.startswith(mine + os.sep) else 'holding'} this "
                            "work dir itself (two of its steps would share, or remove, each other's files): make it "
                            "a directory of its own")
    above = owning_work_dir(os.path.dirname(real), of=mine, kind=kind) or _owned_below(real, mine, kind)
    if above:
        raise located(path, f"a link to {real}, which holds or lies in a directory the work dir {above} keeps "
                            "through a link: make it a directory of this work dir's own")
    nested = os.path.isdir(os.path.join(real, MARKER_DIR)) and (work_dir_kind(real) or "") in NESTS.get(kind, ())
    other = foreign_work_dir(os.path.dirname(real)) if nested else foreign_work_dir(real)  # (a run in another's)
    if other:
        raise located(path, f"a link into {other}, the work dir of another run: make it a directory of its own")
    tag = os.path.join(real, OWNER_FILE)
    owner, _, identity = _record_line(tag, "the work dir whose files these are").partition("\n")
    identity, me = identity.strip(), _identity(mine)
    keep = "make it a directory of this work dir's own, or use that work dir"
    if identity:  # the owner by identity: itself when moved, never a copy of it
        if _same(identity, me):
            return tag if owner != mine or identity != me else None
        if owner == mine:
            raise located(path, f"a link to {real}, recorded as this work dir's by one with another identity (a copy "
                                "put at its original's path, or a filesystem whose inode numbers changed): if this "
                                f"work dir wrote there, remove {tag}; else {keep}")
        there = os.path.isdir(os.path.join(owner, MARKER_DIR)) and _same(identity, _identity(owner))
        raise located(path, f"a link to {real}, which holds the files of the work dir {owner}"
                            + ("" if there else f" (moved or removed since: if it is gone, remove {tag} to let this "
                                                "work dir take the directory over)")
                            + f" (a copy of a work dir keeps its links): {keep}")
    if owner:  # recorded by path alone (the version before identities)
        if owner != mine and os.path.isdir(os.path.join(owner, MARKER_DIR)) and not os.path.samefile(owner, mine):
            raise located(path, f"a link to {real}, which holds the files of the work dir {owner} (a copy of a work "
                                f"dir keeps its links): {keep}")
        return tag
    if copied and any(e.name != OWNER_FILE for e in os.scandir(real)):  # (an empty one is nobody's yet)
        raise located(path, f"a link to {real}, whose owner is not recorded, in a copy of a work dir (or one moved to "
                            "another filesystem): the original may write there too; make it a directory of this work "
                            "dir's own (if the original is gone, remove "
                            f"{os.path.join(mine, MARKER_DIR, IDENTITY_FILE)} to take the directory over)")
    return tag


def _record(tag: str) -> tuple[str, str]:
    owner, _, identity = _record_line(tag, "the work dir whose files these are").partition("\n")
    return owner, identity.strip()


def _not_foreign(tag: str, of: str | None, kind: str | None) -> bool:
    """Whether the record ``tag`` is of ``of`` (by path, or by identity: moved since), of a run
    nested in ``of`` (its owner inside ``of``), or of the run ``of`` is nested in (``of`` lies in the
    recorded directory and its ``kind`` nests in the owner's: a study's run kept on another disk)."""
    owner, identity = _record(tag)
    if not owner:
        return True
    if of is None:
        return False
    if owner == of or owner.startswith(of + os.sep):
        return True
    try:
        if identity and _same(identity, _identity(of)):
            return True
    except OSError:
        pass
    return of.startswith(os.path.dirname(tag) + os.sep) and kind in NESTS.get(work_dir_kind(owner) or "", ())


def owning_work_dir(path: str, of: str | None = None, kind: str | None = None) -> str | None:
    """The work dir whose record (``OWNER_FILE``) is in the directory around ``path`` that it reaches
    through a link (moved or gone since: the record still counts, until it is removed), unless this
    process (or the driver that started it) holds its lock or that of a work dir on the way, or the
    record is of ``of`` (a work dir of ``kind``: see ``_not_foreign``): the files there are that run's."""
    d = os.path.realpath(path)
    while True:
        if holds(os.path.join(d, LOCK_NAME)):
            return None
        tag = os.path.join(d, OWNER_FILE)
        if os.path.isfile(tag):
            owner = _record(tag)[0]
            if _not_foreign(tag, of, kind) or holds(os.path.join(owner, LOCK_NAME)):
                return None
            return owner
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _owned_below(real: str, mine: str, kind: str | None) -> str | None:
    """Another work dir whose record (``OWNER_FILE``) lies in a directory below ``real`` (links not
    followed), unless this process holds its lock or it is a run nested there: a link to ``real``
    would reach its files."""
    for d, dirs, files in os.walk(real):
        if d != real and OWNER_FILE in files:
            tag = os.path.join(d, OWNER_FILE)
            owner = _record(tag)[0]
            nested_here = owner.startswith(real + os.sep)  # a run inside what is claimed: it claims its own
            if not (nested_here or _not_foreign(tag, mine, kind) or holds(os.path.join(owner, LOCK_NAME))):
                return owner
        dirs[:] = [x for x in dirs if x != MARKER_DIR]
    return None


def _links_below(work_dir: str, writes: list[str], skip: tuple[str, ...] = ()) -> list[str]:
    """The links at or below ``writes`` (dangling ones too), not entering nested work dirs, nor the
    directories ``skip`` names (real paths: a study's --data); below the directories the links reach
    too, unless ``writes`` is the whole work dir (a study's or demo's: its nested runs claim theirs,
    and a data dir linked in is read, not written)."""
    links, todo, seen = [], [], set()
    w = os.path.abspath(work_dir)
    whole = [os.path.abspath(t) for t in writes] == [w]
    for top in writes:  # (the work dir itself named through a link is not one of them)
        (links if os.path.islink(top) and os.path.abspath(top) != w else todo).append(top)
        up = os.path.dirname(os.path.abspath(top))
        while up.startswith(w + os.sep):  # a linked dir on the way down to it (W/iter2 -> elsewhere)
            if os.path.islink(up) and up not in links:
                links.append(up)
            up = os.path.dirname(up)
    links = [link for link in links if os.path.realpath(link) not in skip]
    todo += [link for link in links if os.path.isdir(link) and not whole]
    while todo:
        d = todo.pop()
        if os.path.realpath(d) in seen:
            continue
        seen.add(os.path.realpath(d))
        try:
            entries = list(os.scandir(d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if d != work_dir and any(e.name == MARKER_DIR for e in entries):
            continue  # a nested run: it claims its own
        for e in entries:
            if e.is_symlink():
                if os.path.realpath(e.path) in skip:
                    continue
                if e.is_dir() or not os.path.exists(e.path):  # (a link to a file is not followed by a writer)
                    links.append(e.path)
                    if e.is_dir() and not whole:
                        todo.append(e.path)
            elif e.is_dir() and e.name != MARKER_DIR:
                todo.append(e.path)
    return sorted(links)


def claim_linked_dirs(work_dir: str, writes: list[str], kind: str | None = None, skip: tuple[str, ...] = ()) -> None:
    """Every directory that is a link to elsewhere at or below ``writes`` (the directories of
    ``work_dir`` its driver writes or removes) belongs to this work dir alone: checked all first
    (nothing recorded when one is refused), then the work dir recorded in each, and its own identity
    in ``.stages``, by which a copy knows itself; the work dirs of runs nested there claim their own."""
    mine = os.path.realpath(work_dir)
    me = _identity(mine)
    known = os.path.join(mine, MARKER_DIR, IDENTITY_FILE)
    recorded = _record_line(known, "the identity of this work dir")
    copied = bool(recorded) and not _same(recorded, me)
    tags = [tag for link in _links_below(work_dir, writes, tuple(os.path.realpath(p) for p in skip))
            if (tag := _owner_record(link, work_dir, copied, kind))]
    for tag in tags:
        try:
            write_text_atomic(tag, f"{mine}\n{me}\n")
        except (AeHubertError, OSError) as e:
            raise located(os.path.dirname(tag), "a directory this work dir reaches through a link, where it records "
                                                f"that the directory is its own (a copy keeping the link is then "
                                                f"refused), and cannot ({e})") from None
    if recorded != me:
        write_text_atomic(known, me + "\n")


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


def foreign_work_dir(path: str) -> str | None:
    """The nearest work dir (a directory with ``.stages``) around ``path``, or ``path`` itself, unless
    this process (or the driver that started it) holds the lock of it or of a work dir around it:
    everything under a work dir belongs to its run, whose resume trusts its features, k-means,
    labels, checkpoints and records. None when ``path`` lies in no work dir, or in one driven here."""
    d, nearest = os.path.realpath(path), None
    while True:
        if holds(os.path.join(d, LOCK_NAME)):
            return None
        if nearest is None and os.path.isdir(os.path.join(d, MARKER_DIR)):
            nearest = d
        parent = os.path.dirname(d)
        if parent == d:
            return nearest
        d = parent


def _private_lock_file(path: str) -> int:
    """A new lock file at ``path``, locked, in place of one shared by a hard link (``cp -al W COPY``):
    a lock on the shared file would lock both work dirs, and its holder line would name the other's
    driver. Written under its temporary name first (a leftover is cleaned like any killed writer's)."""
    tmp = tmp_name(path)
    fd = _open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _serialise(w: str) -> int | None:
    """An exclusive flock on the directory ``w`` itself, held for the moment a driver takes the lock,
    so that replacing a shared lock file never races another driver taking it. None where the
    filesystem has no flock on directories (NFS): the inode check in ``WorkDirLock`` remains."""
    try:
        dfd = os.open(w, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(dfd, fcntl.LOCK_EX)
    except OSError:
        os.close(dfd)
        return None
    return dfd


def _work_dir_below(w: str, depth: int = 4) -> str | None:
    """A work dir up to ``depth`` levels below ``w`` (links not followed; a run's own lie at most
    three down: a study's W/finetune/NAME/sK), if any."""
    top = w.rstrip(os.sep).count(os.sep)
    for d, dirs, _ in os.walk(w):
        if d != w and MARKER_DIR in dirs:
            return d
        dirs[:] = [x for x in dirs if x != MARKER_DIR] if d.count(os.sep) - top < depth else []
    return None


def _unmarked(w: str) -> bool:
    """No step markers yet: a new work dir (or one a refused start left empty)."""
    try:
        with os.scandir(os.path.join(w, MARKER_DIR)) as it:
            return next(it, None) is None
    except FileNotFoundError:
        return True


class WorkDirLock:
    """The lock of a work dir, for a driver of ``kind`` (recorded in a new work dir, and checked: a
    work dir of another kind is refused, and so is a new one inside another run's work dir); without
    a kind (a reader such as study-pack) only the lock. ``writes``: the directories of the work dir
    the driver writes or removes (default: all of it), whose links to elsewhere it claims; ``reads``:
    directories it only reads, never claimed."""

    def __init__(self, work_dir: str, kind: str | None = None, writes: list[str] | None = None,
                 reads: tuple[str, ...] = ()):
        self.path = os.path.join(os.path.abspath(work_dir), LOCK_NAME)
        self.kind = kind
        self.writes = writes
        self.reads = reads  # directories linked in that the driver only reads (its --data): never claimed
        self.fd: int | None = None
        self.recorded_kind = False

    def _check_kind(self, w: str) -> str | None:
        made_by = work_dir_kind(w)
        if made_by is not None and made_by != self.kind:
            raise AeHubertError(f"{w}: a work dir of `ae-hubert {made_by}`, not of `ae-hubert {self.kind}`: resume it "
                                f"with `ae-hubert {made_by}`, or use a new work dir")
        return made_by

    def _check_place(self, w: str) -> None:
        parent = os.path.dirname(os.path.realpath(w))  # a link named as the work dir: where it points counts
        around = driven_dir(parent)
        if around:  # a run started inside another's work dir would write under its driver
            raise AeHubertError(f"{w}: inside {around[0]}, a work dir in use by another ae-hubert run ({around[1]}); "
                                "wait for it, or use a work dir elsewhere")
        linked = [p for p in (os.path.join(w, MARKER_DIR), os.path.join(w, MARKER_DIR, "started")) if os.path.islink(p)]
        if linked:
            raise located(linked[0], "a link where the work dir's step markers belong (they would be another run's): "
                                     "remove it")
        if self.kind is None:
            return
        made_by = self._check_kind(w)
        outer = foreign_work_dir(parent)
        # a run nested in a study's or demo's work dir by that driver may be resumed on its own by its tool
        if outer and not (made_by is not None and self.kind in NESTS.get(work_dir_kind(outer) or "", ())):
            raise AeHubertError(f"{w}: inside the work dir {outer} of another run, whose files only its own run "
                                "writes; use a work dir beside it instead")
        owner = owning_work_dir(parent)
        if owner and self.kind not in NESTS.get(work_dir_kind(owner) or "", ()):
            raise AeHubertError(f"{w}: inside a directory the work dir {owner} keeps through a link, whose files only "
                                "its own run writes; use a work dir elsewhere")
        if _unmarked(w):
            kept = sorted(f for f in DRIVER_FILES if os.path.lexists(os.path.join(w, f)))
            if kept:  # a new work dir: the user's file of that name would be replaced
                raise located(os.path.join(w, kept[0]), "in a new work dir, where a driver writes a file of that name: "
                                                        "move it, or use another dir")
            inner = _work_dir_below(w)
            if inner and os.path.isdir(os.path.join(w, MARKER_DIR)) and \
                    (work_dir_kind(inner) or "") in NESTS.get(self.kind, ()):
                inner = None  # its own run (a study or demo of an earlier version, stopped in its first run)
            if inner:
                raise AeHubertError(f"{w}: holds {inner}, the work dir of another run, whose files only its own run "
                                    "writes; use a new, empty work dir")

    def _take(self, w: str) -> int:
        """The lock file's descriptor, locked; a shared one (hard link) replaced by one of this dir's own."""
        mine = os.path.realpath(w)
        for attempt in range(5):
            fd = _open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK)  # not inherited by children (PEP 446)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise located(self.path, "not a plain file where the work dir's lock file belongs; remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                got = True
            except BlockingIOError:  # held, or only looked at for a moment by held_by
                got = False
            except OSError as e:  # not a regular file (a FIFO), a filesystem without locks
                os.close(fd)
                raise located(self.path, f"cannot lock the work dir ({e.strerror or e}); remove it if it is not "
                                         "a plain file, or use a work dir on a filesystem with locks") from None
            if os.fstat(fd).st_nlink > 1 and (got or _holder_dir(_holder(fd)) not in (None, mine)):
                try:  # shared with a copy (or its original): free, or held for the other
                    return _private_lock_file(self.path)
                finally:
                    os.close(fd)
            if got:
                try:
                    if os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                        return fd
                except FileNotFoundError:
                    pass
                os.close(fd)  # replaced meanwhile (no directory flock here): lock the new one
                continue
            holder = _holder(fd)
            os.close(fd)
            if attempt < 4:
                time.sleep(0.1)
                continue
            raise AeHubertError(f"{w}: in use by another ae-hubert run ({holder}); wait for it or stop it "
                                f"(lock: {self.path})")
        raise AeHubertError(f"{w}: could not take the work dir's lock ({self.path} kept changing)")

    def __enter__(self) -> "WorkDirLock":
        w = os.path.dirname(self.path)
        self._check_place(w)
        ensure_writable_dir(w)
        dfd = _serialise(w)
        try:
            fd = self._take(w)
        finally:
            if dfd is not None:
                os.close(dfd)
        self.fd = fd
        HELD.add(os.path.realpath(self.path))
        _publish()
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv[:3])} "
                         f"(work dir {os.path.realpath(w)})\n".encode())
            if self.kind is not None:
                self._claim(w)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _claim(self, w: str) -> None:
        """With the lock held: the kind checked again (another driver may have started here between
        the first look and the lock) and recorded in a new work dir; its linked dirs claimed."""
        self._check_kind(w)
        if _unmarked(w):  # a work dir with markers but no record (an earlier version's) is known by its markers
            write_text_atomic(os.path.join(ensure_writable_dir(os.path.join(w, MARKER_DIR)), KIND_FILE),
                              self.kind + "\n")
            self.recorded_kind = True
        claim_linked_dirs(w, [w] if self.writes is None else self.writes, self.kind, self.reads)

    def __exit__(self, *exc) -> None:
        w = os.path.dirname(self.path)
        if self.recorded_kind and exc and exc[0] is not None:  # a start refused before it wrote anything (its
            self.recorded_kind = False                          # kind and identity aside): the dir is no tool's
            markers = os.path.join(w, MARKER_DIR)
            try:
                if set(os.listdir(w)) <= {MARKER_DIR, LOCK_NAME} and set(os.listdir(markers)) <= {KIND_FILE,
                                                                                                  IDENTITY_FILE}:
                    for name in os.listdir(markers):
                        os.remove(os.path.join(markers, name))
                    os.rmdir(markers)  # (no work dir here: other commands may write into the dir again)
            except OSError:
                pass
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock; the file stays (removing it would race)
            self.fd = None
            HELD.discard(os.path.realpath(self.path))
            _publish()
