"""No input is ever an output: what a command will write, checked against what it reads, before any work.

Each command that writes files declares them beside its handler (``Command(files=...)``): the files
it will write, the files it reads, and the data directories whose own files (manifests, transcripts,
phone labels, voices, the letter dictionary) it reads. ``check_files`` refuses, naming both, an
output that is an input by its real path (links included) or that would replace a data directory's
own file (a manifest, transcript, phone labels or voices: never a command's output, whether or
not it reads that directory) or a file the loop made (``loop_product``: stage markers, checkpoints,
feature shards, label sets; only the label-making commands rewrite label sets) or that lies inside a
work dir this process does not drive (running or finished: a resume trusts its files), so
``label --out-dir DATA --name tsv``, ``choose-layer --json CKPT`` or ``label --out-dir W/iter2/labels``
fail in one line instead of destroying their input or training a resumed run on other labels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .checkpoint import TRAINER_SAVES
from .errors import located
from .lock import MARKER_DIR, OWNER_FILE, driven_dir, foreign_work_dir, owning_work_dir

CORPUS_SUFFIXES = (".tsv", ".phn", ".wrd", ".ltr", ".spk", ".wrdspan", ".phnseq")  # a data dir's own files, their dicts
CORPUS_FILES = ("corpus.json",)  # a synthetic corpus's summary: its presence marks the corpus complete
AUDIO_SUFFIXES = (".wav", ".flac")  # no command that checks its outputs writes audio


@dataclass
class Files:
    """``{path: the option that names it}`` of what a command writes and reads."""
    outputs: dict[str, str]
    inputs: dict[str, str] = field(default_factory=dict)
    data_dirs: dict[str, str] = field(default_factory=dict)
    writes_labels: bool = False  # a command that makes label sets (label, merge-labels) may rewrite their files
    into_work_dirs: bool = False  # may write an HTML page inside another run's work dir (report's)


def loop_product(path: str) -> str | None:
    """What an existing file made by the loop is, where no other command may write: a work dir's
    stage markers and records, a training run's checkpoints, feature shards, a label set's files
    (a ``{split}.km`` beside its ``dict.km.txt``, or that dictionary). None for anything else."""
    if not os.path.isfile(path):
        return None
    d, name = os.path.split(path)
    ext = os.path.splitext(name)[1]
    if MARKER_DIR in path.split(os.sep) or (name == "records.json" and os.path.isdir(os.path.join(d, MARKER_DIR))):
        return "a work dir's record of its steps"
    if TRAINER_SAVES.fullmatch(name):
        return "a training run's checkpoint"
    if ext in (".npy", ".len") and os.path.isfile(os.path.join(d, os.path.splitext(name)[0] + (".len" if ext == ".npy"
                                                                                                 else ".npy"))):
        return "a feature shard"
    if (name.startswith("dict.") and name.endswith(".txt") and name.count(".") >= 2) or \
            (ext and os.path.isfile(os.path.join(d, f"dict{ext}.txt"))):
        return "a file of a label set"
    return None


def corpus_file(name: str) -> bool:
    return name.endswith(CORPUS_SUFFIXES + AUDIO_SUFFIXES) or name in CORPUS_FILES or \
        any(name == f"dict{sfx}.txt" for sfx in CORPUS_SUFFIXES)


def label_sets(inputs: dict[str, str]) -> dict[tuple[str, str], str]:
    """``{(real directory, ".km"): option}`` for each label set an input belongs to: a label file
    (``valid.km`` beside ``dict.km.txt``) or a label dictionary (``dict.km.txt``). Every split's
    file of such a set, and its dictionary, is then an input too."""
    sets = {}
    for p, option in inputs.items():
        if not p:
            continue
        d, name = os.path.dirname(os.path.realpath(p)), os.path.basename(p)
        ext = os.path.splitext(name)[1]
        if name.startswith("dict.") and name.endswith(".txt") and name.count(".") >= 2:
            sets.setdefault((d, "." + name[len("dict."):-len(".txt")]), option)
        elif ext and os.path.isfile(os.path.join(d, f"dict{ext}.txt")):
            sets.setdefault((d, ext), option)
    return sets


def check_files(files: Files) -> None:
    real_inputs = {os.path.realpath(p): (p, option) for p, option in files.inputs.items() if p}
    sets = {} if files.writes_labels else label_sets(files.inputs)
    real_dirs = {os.path.realpath(d): (d, option) for d, option in files.data_dirs.items() if d}
    for out, out_option in files.outputs.items():
        if not out:
            continue
        real = os.path.realpath(out)
        if real in real_inputs:
            path, option = real_inputs[real]
            raise located(out, f"{out_option} would overwrite an input of this command ({option} {path}): write it "
                               "elsewhere")
        if corpus_file(os.path.basename(real)) and os.path.exists(real):  # a manifest, transcript, phone labels
            # the directory the file is in, not a link's (kmeans --out LINK -> DATA/train.tsv names DATA)
            path, option = real_dirs.get(os.path.dirname(real), (os.path.dirname(real), "a data directory"))
            raise located(out, f"{out_option} would replace a file of the data directory {path} ({option}): "
                               "write it elsewhere")
        name = os.path.basename(real)
        for (d, ext), option in sets.items():  # another split's labels, or the dictionary, of an input's label set
            if os.path.dirname(real) == d and os.path.exists(real) and (name.endswith(ext) or name == f"dict{ext}.txt"):
                raise located(out, f"{out_option} would overwrite a file of the label set {ext} that {option} reads "
                                   f"({d}): write it elsewhere")
        made = loop_product(real)
        if made and not (files.writes_labels and made == "a file of a label set"):
            raise located(out, f"{out_option} would overwrite {made}: write it elsewhere")
        if not (files.into_work_dirs and real.endswith((".html", ".htm"))):
            running = driven_dir(real)
            if running:
                raise located(out, f"{out_option} writes inside {running[0]}, a work dir in use by another ae-hubert "
                                   f"run ({running[1]}): wait for it, or write elsewhere")
            w = foreign_work_dir(real)
            if w:
                raise located(out, f"{out_option} writes inside the work dir {w}, whose files only its own run "
                                   "writes (rerun it, with --restart STEP to redo a step): write elsewhere")
            w = owning_work_dir(real)
            if w:
                raise located(out, f"{out_option} writes into a directory the work dir {w} keeps through a link "
                                   f"(its {OWNER_FILE} says so), whose files only that run writes: write elsewhere")

