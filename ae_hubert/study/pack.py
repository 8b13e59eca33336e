"""Carrying a study between machines: ``study-pack W DIR`` keeps what its later steps need, small
enough to commit; ``study-unpack DIR W`` puts it back on another machine, in another session.

A study takes days of 2-core time and a session hours, and a session may start on a new machine.
What later steps need from a finished piece is its results (every stage marker and small record:
the measurements, the fine-tunings' error rates, the iterations' label quality) and the final model
of each trained piece not yet decoded (H3 fine-tunes a pretraining iteration's model, H4 starts
from it), kept as fairseq writes it with ``--no-save-optimizer-state``. Everything else is left
out: the study's own corpus (rebuilt from its seed by the next ``study`` call), features (shards'
``.npy`` and ``.len``), labels, k-means models, tensorboard events and the finished pieces' logs
(their final losses are in their markers), interval checkpoints whose probes are done (their
results are kept; the others of the runs H2 probes over updates, recorded in ``probed_runs.json``,
travel, slimmed, for the probes still to do; the H4/H5 arms' are never probed) and decoded
fine-tuned models (their scores are kept). A piece being trained when the session ended (no
``.train`` marker, an intact ``checkpoint_last.pt``) travels whole but for its features: that
checkpoint as fairseq wrote it (optimizer state included, so the next call resumes exactly where it
stopped, not an hour back), its labels and k-means model, its log (its final losses are read from
it) and its markers.
``keep_unfinished=False`` leaves it out like any other piece not finished (one killed before its
training started, or with a truncated last checkpoint), which the next call redoes from its start.
The resume is exact when the corpus rebuilt there is the same (it is, from its seed, on the same
library versions): the pack keeps the corpus's fingerprint (``corpus.expected.json``) and the next
``study`` call warns if its rebuild differs.

A pack records no absolute path: the work dir's and the package's paths in its text files become
the placeholders :data:`WORK_DIR` and :data:`PACKAGE_DIR`, which unpacking replaces with the new ones.
``results_only`` writes a reader's copy instead: the summaries, plots and per-run records
(:func:`results_plan`), no model, log, label or training configuration; it is not a pack to resume.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile

from .summary import PARTIAL_DIR
from ..common.checkpoint import INTERVAL, LAST as FINAL_MODEL, checkpoint_updates, load_state_lazily
from ..common.atomic import check_writable_dir, is_partial, write_text_atomic
from ..common.errors import located
from ..common.lock import IDENTITY_FILE, LOCK_NAME, MARKER_DIR, OWNER_FILE, WorkDirLock

PACK_FILE = "pack.json"
SMALL = 256 * 1024  # records, logs and plots are smaller (the summary, kept at any size, may not be)
DATA = (".pt", ".npy", ".km", ".bin")  # models, features, labels, k-means: left out at any size
TEXT = (".json", ".yaml", ".txt", ".csv", ".md", ".log", ".tsv")
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # recorded commands name it
MARKER = re.compile(r"(?P<unit>[^.]+)\..+\.json")  # NAME.STEP[...].json: a step of the piece NAME/
WORK_DIR, PACKAGE_DIR = "@WORK_DIR@", "@AE_HUBERT_PACKAGE@"  # what a pack's text files say instead of paths
RESULT_SUFFIXES = (".md", ".json", ".csv", ".png")
TENSORBOARD = "tblog"  # the shipped configs' common.tensorboard_logdir (in each run's directory)
NOT_RESULTS = {".hydra", "checkpoints", TENSORBOARD, "labels", "corpus"}  # run artefacts' folders


def results_plan(w: str) -> list[str]:
    """The files a reader of a study needs, relative to ``w``: the summaries and plots (``W/``,
    ``W/partial/``), the study's measurement records (``W/.stages/``), and below ``runs/`` and
    ``finetune/`` the records, label-quality scores, sweep tables and decoding scores. Nothing a
    run only needs to go on (models, features, labels, logs, the steps' markers, hydra configs)."""
    out = []
    for root, dirs, files in os.walk(w):
        rel_root = os.path.relpath(root, w)
        parts = [] if rel_root == "." else rel_root.split(os.sep)
        dirs[:] = sorted(d for d in dirs if d not in NOT_RESULTS and not d.startswith("feat")
                         and not (d == MARKER_DIR and parts))  # a run's step markers are not results
        for f in sorted(files):
            if f.endswith(RESULT_SUFFIXES) and f != PACK_FILE and f != LOCK_NAME and not is_partial(f):
                out.append(os.path.join(rel_root, f) if parts else f)
    return out


def _pieces(d: str) -> dict[str, dict]:
    """The trained pieces of a Stages directory ``d``: the subdirectories NAME with markers
    ``NAME.*`` (an ``iterate`` iteration, a ``reset-sweep`` kK) or a checkpoint (a kK still
    training has no marker yet); whether each was trained, decoded."""
    out = {u: {"trained": False, "decoded": False} for u in sorted(os.listdir(d))
           if os.path.isfile(os.path.join(d, u, "checkpoints", FINAL_MODEL))}
    for f in sorted(os.listdir(os.path.join(d, MARKER_DIR))):
        m = MARKER.fullmatch(f)
        if m and os.path.isdir(os.path.join(d, m["unit"])):
            p = out.setdefault(m["unit"], {"trained": False, "decoded": False})
            p["trained"] |= f == f"{m['unit']}.train.json"
            p["decoded"] |= f.startswith(f"{m['unit']}.decode.")
    return out


def pack_plan(w: str, keep_unfinished: bool = True) -> tuple[list[str], list[str], list[str]]:
    """(files copied as they are, models kept without optimizer state, pieces carried half-trained),
    relative to ``w``."""
    from ..runner.stages import Stages
    from .records import done_probes, probed_runs

    copy, models, resumed = [], [], []
    # interval checkpoints no finished probe names travel too (a session ended among the probes)
    probed = {(os.path.dirname(c), u) for ckpts in done_probes(Stages(w)).values() for u, c in ckpts.items()}
    unfinished_in = {}  # a Stages dir -> its pieces left out (os.walk visits it before its .stages/)
    over_updates = probed_runs(w)  # None: a work dir from before that record, any run may be probed

    def unprobed(ckpts: str) -> list[str]:
        rel = os.path.relpath(ckpts, w)
        if over_updates is not None and not any(rel.startswith(r + os.sep) for r in over_updates):
            return []  # an H4/H5 arm: only its last checkpoint is probed
        return [os.path.relpath(os.path.join(ckpts, f), w) for f in sorted(os.listdir(ckpts))
                if INTERVAL.fullmatch(f) and (ckpts, int(f[:-3].rsplit("_", 1)[1])) not in probed]

    for root, dirs, files in os.walk(w):
        dirs.sort()
        dirs[:] = [d for d in dirs if d != TENSORBOARD and not (root == w and d == "corpus")]
        if MARKER_DIR in dirs:
            pieces = _pieces(root)
            for u, p in pieces.items():
                ckpts = os.path.join(root, u, "checkpoints")
                has_final = os.path.isfile(os.path.join(ckpts, FINAL_MODEL))
                if p["trained"] and not p["decoded"] and has_final:
                    models += [os.path.relpath(os.path.join(ckpts, FINAL_MODEL), w)] + unprobed(ckpts)
                elif (not p["trained"] and keep_unfinished
                      and checkpoint_updates(os.path.join(ckpts, FINAL_MODEL)) is not None):
                    # an intact one only: a truncated last (a kill mid-copy) would resume from a slimmed interval
                    resumed.append(os.path.join(root, u))
                    models += unprobed(ckpts)
            unfinished_in[root] = {u for u, p in pieces.items()
                                   if not p["trained"] and os.path.join(root, u) not in resumed}
            dirs[:] = [d for d in dirs if d not in unfinished_in[root]]
        unfinished = unfinished_in.get(os.path.dirname(root), set()) if os.path.basename(root) == MARKER_DIR else set()
        half_trained = any(root == r or root.startswith(r + os.sep) for r in resumed)
        # the study's summaries (W/study.json, W/partial/NAME/) are its results, kept at any size
        summary = root == w or os.path.dirname(root) == os.path.join(w, PARTIAL_DIR)
        for f in sorted(files):
            path = os.path.join(root, f)
            m = MARKER.fullmatch(f)
            if os.path.basename(root) == MARKER_DIR and (m and m["unit"] in unfinished or (
                    f == "corpus.json" and os.path.dirname(root) == w and os.path.isdir(os.path.join(w, "corpus")))):
                continue
            if f in (LOCK_NAME, OWNER_FILE) or is_partial(f) or (f == IDENTITY_FILE
                                                                 and os.path.basename(root) == MARKER_DIR):
                continue  # (a work dir's identity is of its place on this disk: the unpacked one is not a copy)
            if f.endswith(".log") and not half_trained:
                continue  # a finished piece's losses are in its markers
            if f.endswith(".len") and os.path.isfile(path[:-4] + ".npy"):
                continue  # a feature shard's index: its .npy is left out, the shard redone if ever needed
            if half_trained:  # all it needs to go on exactly: features (redone only before training) stay
                if f.endswith((".npy", ".tmp")) or f == "checkpoint_best.pt" or INTERVAL.fullmatch(f):
                    continue  # interval checkpoints not yet probed travel in ``models``
            elif f.endswith(DATA) or os.path.getsize(path) > SMALL and not summary:
                continue
            copy.append(os.path.relpath(path, w))
    return copy, sorted(models), [os.path.relpath(r, w) for r in resumed]


def _apart(source: str, what: str, *others: str) -> None:
    """Refuse outputs that overlap what is read (a pack replaced or cleaned up would take it along)."""
    rs = os.path.realpath(source)
    for o in others:
        ro = os.path.realpath(o)
        if ro == rs or ro.startswith(rs + os.sep) or rs.startswith(ro + os.sep):
            raise located(o, f"overlaps {what} {source}: put it elsewhere")


def pack_study(work_dir: str, out_dir: str, keep_unfinished: bool = True, results_only: bool = False) -> dict:
    """Write the pack of ``work_dir`` to ``out_dir`` (replaced whole once the new one is complete);
    ``keep_unfinished``: carry half-trained pieces; ``results_only``: the reader's copy (module docstring)."""
    import torch

    from ..corpus.corpus_files import fingerprint
    from .records import EXPECTED_CORPUS, PROBED_RUNS

    w, out = os.path.abspath(work_dir), os.path.abspath(out_dir)
    if not os.path.isdir(os.path.join(w, MARKER_DIR)):
        raise located(w, "not a work dir (no .stages/): nothing to pack")
    if not any(os.path.exists(os.path.join(w, f)) for f in ("runs", "study.json", PROBED_RUNS)):
        raise located(w, "not a study's work dir (no runs/, study.json or probed_runs.json; an iterate or "
                         "reset-sweep work dir is not packed by study-pack)")
    _apart(w, "the work dir", out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out) and _pack_info(out) is None):
        raise located(out, "exists and is not a pack (no readable pack.json): not replaced")
    check_writable_dir(os.path.dirname(out))
    with WorkDirLock(w), _staging(out) as tmp:  # a study running in W would change it under us
        copy, models, resumed = ((results_plan(w), [], []) if results_only else pack_plan(w, keep_unfinished))
        moves = _path_forms(w, WORK_DIR) + _path_forms(PACKAGE, PACKAGE_DIR)
        for rel in copy:
            _copy(os.path.join(w, rel), os.path.join(tmp, rel), moves)
        for rel in models:
            state = load_state_lazily(os.path.join(w, rel))
            state["last_optimizer_state"] = None
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            torch.save(state, os.path.join(tmp, rel))
        corpus = os.path.join(w, "corpus")
        if os.path.isfile(os.path.join(corpus, "corpus.json")):  # the corpus the results came from
            write_text_atomic(os.path.join(tmp, EXPECTED_CORPUS), json.dumps(fingerprint(corpus), indent=1) + "\n")
            copy = sorted(set(copy) | {EXPECTED_CORPUS})
        info = {"work_dir": WORK_DIR, "package": PACKAGE_DIR, "results_only": results_only, "files": copy,
                "models": models, "half_trained": resumed,
                "bytes": sum(os.path.getsize(os.path.join(tmp, r)) for r in copy + models)}
        with open(os.path.join(tmp, PACK_FILE), "w") as f:
            json.dump(info, f, indent=1)
    return {**info, "work_dir": w, "pack": out}


@contextlib.contextmanager
def _staging(out: str):
    """A new directory beside ``out`` to write into; when the block completes it replaces ``out``
    (the old one, if any, removed only then); on failure it is removed and ``out`` is untouched.
    Its name is unique (never a directory that was there before)."""
    parent, name = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    holder = tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=parent)
    try:
        new = os.path.join(holder, "new")
        os.makedirs(new)
        yield new
        if os.path.isdir(out) and not os.path.islink(out):
            os.replace(out, os.path.join(holder, "old"))
        elif os.path.lexists(out):
            os.remove(out)
        os.replace(new, out)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _pack_info(d: str) -> dict | None:
    """``d``'s pack description, or None when it has none that this tool wrote."""
    try:
        with open(os.path.join(d, PACK_FILE), encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    ok = isinstance(info, dict) and all(isinstance(info.get(k), list) for k in ("files", "models")) \
        and all(isinstance(info.get(k), str) and info[k] for k in ("work_dir", "package"))
    return info if ok else None


def _path_forms(path: str, to: str) -> list[tuple[str, str]]:
    """``(old, new)`` rewrites for every form a path takes in a work dir's text files: as given, as
    its real path (hydra and fairseq write the real working directory) and JSON-escaped (a
    non-ASCII path in ``json.dumps`` output)."""
    forms = []
    for p in dict.fromkeys((path, os.path.realpath(path))):
        forms.append((p, to))
        escaped = json.dumps(p)[1:-1]
        if escaped != p:
            forms.append((escaped, to))
    return forms


def _copy(src: str, dst: str, moves: list[tuple[str, str]]) -> None:
    """Copy one file; a text file with its paths rewritten by ``moves``."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if src.endswith(TEXT):
        try:
            with open(src, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError as e:
            raise located(src, f"not UTF-8 text ({e.reason} at byte {e.start}): cannot rewrite its paths") from None
        with open(dst, "w", encoding="utf-8") as f:
            f.write(_moved(text, moves))
        shutil.copystat(src, dst)
    else:
        shutil.copy2(src, dst)


UNSAFE_PATH = re.compile(r'["\\\x00-\x1f]')  # would break the JSON records a path is written into


def unpack_study(pack_dir: str, work_dir: str) -> dict:
    """Put a pack back as the work dir ``work_dir`` (new or empty); the packed work dir's path is
    rewritten to ``work_dir`` in its records and markers."""
    p, w = os.path.abspath(pack_dir), os.path.abspath(work_dir)
    meta = os.path.join(p, PACK_FILE)
    if not os.path.isfile(meta):
        raise located(p, "not a pack (no pack.json; see `ae-hubert study-pack`)")
    info = _pack_info(p)
    if info is None:
        raise located(meta, "unreadable pack description (want a JSON object with 'files' and 'models' lists "
                            "and 'work_dir' and 'package' paths)")
    files, models, old = list(info["files"]), list(info["models"]), info["work_dir"]
    if info.get("results_only"):
        raise located(meta, "a study's results (study-pack --results-only), not a pack to resume: its models "
                            "and step markers were left out")
    for rel in files + models:
        if not isinstance(rel, str) or os.path.isabs(rel) or ".." in rel.split(os.sep) \
                or not os.path.isfile(os.path.join(p, rel)):
            raise located(meta, f"lists {rel!r}, which is not a file of the pack")
    if UNSAFE_PATH.search(w):
        raise located(w, "a work dir path with a quote, backslash or control character cannot be written into "
                         "the study's JSON records: choose another")
    if os.path.lexists(w) and (not os.path.isdir(w) or os.path.islink(w) or os.listdir(w)):
        raise located(w, "exists and is not empty (or not a directory): unpack into a new work dir")
    _apart(p, "the pack", w)
    check_writable_dir(w)
    moves = [(old, w), (info["package"], PACKAGE)]  # packs before placeholders named absolute paths
    with _staging(w) as tmp:
        for rel in files + models:
            _copy(os.path.join(p, rel), os.path.join(tmp, rel), moves)
    packed_from = "another machine" if old == WORK_DIR else old
    return {"work_dir": w, "from": p, "packed_from": packed_from, "files": len(files), "models": len(models)}


def _moved(text: str, moves: list[tuple[str, str]]) -> str:
    """Whole paths rewritten: ``old`` only where a path starts (not after a name character, a dot
    or a slash: ``/w`` does not touch ``/x/w``) and a path component ends (not before another name
    character: ``/w`` does not touch ``/w2`` or ``/w_2``; hydra's ``override_dirname`` joins items
    with ``__``, which ends one)."""
    for a, b in moves:
        if a != b:
            text = re.sub(r'(?<![\w./])' + re.escape(a) + r'(?=__|[^\w.+-]|\.(?![\w.+-])|$)', lambda _m: b, text)
    return text
