"""No input is ever an output: what a command will write, checked against what it reads, before any work.

Each command that writes files declares them beside its handler (``Command(files=...)``): the files
it will write, the files it reads, and the data directories whose own files (manifests, transcripts,
phone labels, voices, the letter dictionary) it reads. ``check_files`` refuses, naming both, an
output that is an input by its real path (links included) or that would replace a data directory's
own file (a manifest, transcript, phone labels or voices: never a command's output, whether or
not it reads that directory), so ``label --out-dir DATA --name tsv`` or ``choose-layer --json CKPT``
fail in one line instead of destroying their input.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import located

CORPUS_SUFFIXES = (".tsv", ".phn", ".wrd", ".ltr", ".spk", ".wrdspan")  # a data dir's own files, their dicts
AUDIO_SUFFIXES = (".wav", ".flac")  # no command that checks its outputs writes audio


@dataclass
class Files:
    """``{path: the option that names it}`` of what a command writes and reads."""
    outputs: dict[str, str]
    inputs: dict[str, str] = field(default_factory=dict)
    data_dirs: dict[str, str] = field(default_factory=dict)


def corpus_file(name: str) -> bool:
    return name.endswith(CORPUS_SUFFIXES + AUDIO_SUFFIXES) or any(name == f"dict{sfx}.txt" for sfx in CORPUS_SUFFIXES)


def check_files(files: Files) -> None:
    real_inputs = {os.path.realpath(p): (p, option) for p, option in files.inputs.items() if p}
    for p, option in files.inputs.items():  # label files (valid.km) come with their dictionary (dict.km.txt)
        ext = os.path.splitext(p or "")[1]
        labels_dict = os.path.join(os.path.dirname(p or ""), f"dict{ext}.txt")
        if ext and os.path.isfile(labels_dict):
            real_inputs.setdefault(os.path.realpath(labels_dict), (labels_dict, f"{option}'s dictionary"))
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
            path, option = real_dirs.get(os.path.dirname(real), (os.path.dirname(out) or ".", "a data directory"))
            raise located(out, f"{out_option} would replace a file of the data directory {path} ({option}): "
                               "write it elsewhere")
