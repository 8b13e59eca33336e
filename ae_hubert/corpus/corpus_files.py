"""Write a synthetic corpus's splits in fairseq's formats, plus the labels only synthesis gives.

Per split: ``{split}.tsv`` (manifest), ``.wrd`` (words, upper case), ``.ltr`` (letters, ``|``
between words), ``.phn`` (one CMU phone per 50 Hz frame), ``.spk`` (the voice), ``.wrdspan``
(``WORD:start:end`` in seconds); for the corpus: ``dict.ltr.txt``, ``dict.phn.txt`` and
``corpus.json`` (the summary, written last: its presence means the corpus is complete).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np
import soundfile as sf

from ..common.atomic import atomic_path, check_writable_dir, ensure_writable_dir, write_lines_atomic, write_text_atomic
from ..common.errors import located
from ..common.letters import words_to_letters
from ..common.manifest import read_manifest, write_manifest
from . import phones
from .speech import SAMPLE_RATE

SPLITS = ("train", "valid", "test")
LABELS = ("wrd", "ltr", "phn", "spk", "wrdspan")  # per split, beside {split}.tsv
SHARES = (0.8, 0.1, 0.1)  # of the utterances, per split
CHUNK = 16  # utterances synthesised per fresh worker process


BUILDING = ".corpus-building.json"  # the settings of a build under way; corpus.json replaces it at the end


def _built_with(out_dir: str) -> tuple[str, dict] | None:
    """The settings an earlier build into ``out_dir`` recorded (finished or stopped half way), with
    the file that says so; None where no build of ours wrote there."""
    for name in ("corpus.json", BUILDING):
        path = os.path.join(out_dir, name)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    recorded = json.load(f)
            except (ValueError, UnicodeDecodeError):
                recorded = None
            if isinstance(recorded, dict) and name == "corpus.json":
                recorded = recorded["build"] if "build" in recorded else _older_summary(recorded)
            if not isinstance(recorded, dict):
                raise located(path, "not a corpus summary as a build writes it; remove the directory or use another")
            return path, recorded
    return None


def _older_summary(recorded: dict) -> dict:
    """The settings a summary written before builds recorded them still shows."""
    kind = recorded.get("kind", "toy")
    out = {"corpus": kind, **{k: recorded[k] for k in ("seed", "utterances") if k in recorded}}
    if kind == "study" and "vocabulary_size" in recorded:
        out["vocabulary"] = recorded["vocabulary_size"]
    if kind == "toy" and isinstance(recorded.get("voices"), list):
        out["voices"] = recorded["voices"]
    return out


def check_corpus_dir(out_dir: str, settings: dict) -> None:
    """Refuse, before any work, a build that would overwrite what it did not make: a corpus built with
    other settings (its labels, k-means and runs describe other audio) or a data dir of manifests and
    labels no build of ours wrote. The same build again (or one stopped half way) may go on."""
    check_writable_dir(out_dir)
    out_dir = os.path.abspath(out_dir)
    if not os.path.isdir(out_dir):
        return
    earlier = _built_with(out_dir)
    if earlier is None:
        ours = [f"{s}.{x}" for s in SPLITS for x in ("tsv", *LABELS)] + ["dict.ltr.txt", "dict.phn.txt", "wav"]
        found = [n for n in ours if os.path.exists(os.path.join(out_dir, n))]
        if found:
            raise located(out_dir, f"holds {found[0]} but no corpus.json: not a corpus this tool built (or a build "
                                   "stopped before it recorded its settings), and a build would overwrite it; use a "
                                   "new or empty directory")
        return
    path, recorded = earlier
    for key, value in settings.items():
        if key in recorded and recorded[key] != value:
            raise located(path, f"this corpus was built with {key} {recorded[key]!r}, now {value!r}: a build would "
                                "replace it under files made from it (labels, k-means, runs); use a new directory, "
                                "or remove this one first")


def start_corpus(out_dir: str, settings: dict) -> str:
    """Make ``OUT/wav`` and replace an earlier ``corpus.json`` with the build's settings under
    ``.corpus-building.json``: a rebuild stopped half way must not look complete, and its rerun must
    still be known as this build. Called only once every input check has passed."""
    out_dir = os.path.abspath(out_dir)
    write_text_atomic(os.path.join(out_dir, BUILDING), json.dumps(settings, indent=1) + "\n")  # before anything
    ensure_writable_dir(os.path.join(out_dir, "wav"))
    try:
        os.remove(os.path.join(out_dir, "corpus.json"))
    except FileNotFoundError:
        pass
    return out_dir


def write_wav(path: str, pcm: np.ndarray) -> None:
    """16-bit PCM WAV at the corpus rate, under a temporary name until complete."""
    with atomic_path(path) as tmp:
        sf.write(tmp, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def synthesise(chunk_fn: Callable[[list], list], jobs: list, workers: int | None) -> list:
    """``chunk_fn`` over fixed chunks of ``jobs``, each chunk in a fresh forked process, results in
    job order. libespeak-ng keeps state between utterances (its output depends on what it spoke
    before), so fixed chunks in fresh processes give the same bytes for any number of workers."""
    chunks = [jobs[i:i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    with mp.get_context("fork").Pool(workers or min(4, os.cpu_count() or 1), maxtasksperchild=1) as pool:
        return [r for chunk in pool.map(chunk_fn, chunks, chunksize=1) for r in chunk]


def assign_splits(n: int, rng) -> list[str]:
    """Each utterance's split: a random 80/10/10 partition drawn from ``rng`` (numpy Generator)."""
    order = rng.permutation(n)
    n_train = int(round(n * SHARES[0]))
    n_valid = int(round(n * SHARES[1]))
    names = [""] * n
    for rank, i in enumerate(order):
        names[i] = "train" if rank < n_train else "valid" if rank < n_train + n_valid else "test"
    return names


@dataclass
class Utterance:
    uid: str
    text: str
    voice: str
    nsamples: int
    frame_phones: list[str]
    word_spans: list[tuple[str, float, float]]


def write_corpus(out_dir: str, utts: list[Utterance], split_of: list[str], summary: dict, settings: dict) -> dict:
    """``utts[i]`` (audio already at ``wav/{uid}.wav``) goes to split ``split_of[i]``; returns
    ``summary`` completed with each split's size and the build's ``settings``. Audio files no split
    lists (strays in ``wav/``) are removed."""
    summary = dict(summary, sample_rate=SAMPLE_RATE, splits={}, phones=phones.PHONE_SET, build=settings)
    letter_counts: Counter = Counter()
    for split in SPLITS:
        us = [u for u, s in zip(utts, split_of) if s == split]
        write_manifest(os.path.join(out_dir, f"{split}.tsv"), out_dir,
                       [(f"wav/{u.uid}.wav", u.nsamples) for u in us])
        write_lines_atomic(os.path.join(out_dir, f"{split}.wrd"), [u.text.upper() for u in us])
        write_lines_atomic(os.path.join(out_dir, f"{split}.ltr"), [words_to_letters(u.text) for u in us])
        write_lines_atomic(os.path.join(out_dir, f"{split}.phn"), [" ".join(u.frame_phones) for u in us])
        write_lines_atomic(os.path.join(out_dir, f"{split}.spk"), [u.voice for u in us])
        write_lines_atomic(os.path.join(out_dir, f"{split}.wrdspan"),
                           [" ".join(f"{w.upper()}:{a:.3f}:{b:.3f}" for w, a, b in u.word_spans) for u in us])
        if split == "train":
            for u in us:
                letter_counts.update(words_to_letters(u.text).split())
        summary["splits"][split] = {"utterances": len(us), "voices": len({u.voice for u in us}),
                                    "hours": sum(u.nsamples for u in us) / SAMPLE_RATE / 3600}
    for u in utts:  # every letter must be in the dictionary even if train lacks it
        for c in words_to_letters(u.text).split():
            letter_counts.setdefault(c, 0)
    write_lines_atomic(os.path.join(out_dir, "dict.ltr.txt"),
                       [f"{c} {n}" for c, n in sorted(letter_counts.items(), key=lambda x: (-x[1], x[0]))])
    phone_counts = Counter(p for u in utts for p in u.frame_phones)
    write_lines_atomic(os.path.join(out_dir, "dict.phn.txt"),
                       [f"{p} {phone_counts.get(p, 0)}" for p in phones.PHONE_SET])
    keep = {f"{u.uid}.wav" for u in utts}
    for name in os.listdir(os.path.join(out_dir, "wav")):
        if name.endswith(".wav") and name not in keep:
            os.remove(os.path.join(out_dir, "wav", name))
    write_text_atomic(os.path.join(out_dir, "corpus.json"), json.dumps(summary, indent=1) + "\n")
    os.remove(os.path.join(out_dir, BUILDING))
    return summary


def parse_spans(line: str, path: str, lineno: int) -> list[tuple[str, float, float]]:
    """One line of ``{split}.wrdspan``: ``(word, start, end)`` per word, in seconds."""
    spans = []
    for item in line.split():
        try:
            word, start, end = item.rsplit(":", 2)
            spans.append((word, float(start), float(end)))
        except ValueError:
            raise located(path, f"bad word span {item!r} (want WORD:start:end in seconds)", lineno) from None
    return spans


def fingerprint(out_dir: str) -> dict:
    """Digests of a corpus's labels (manifest entries without their machine-specific root line,
    transcripts, frame phones, voices, dictionaries) and of its audio: a corpus rebuilt from its
    seed on another machine must match them for results measured on the old one to carry over."""
    labels, audio = hashlib.sha256(), hashlib.sha256()
    for split in SPLITS:
        for e in read_manifest(os.path.join(out_dir, f"{split}.tsv")).entries:
            labels.update(f"{e.relpath}\t{e.nsamples}\n".encode())
            with open(e.path, "rb") as f:
                audio.update(f.read())
        for ext in LABELS:
            with open(os.path.join(out_dir, f"{split}.{ext}"), "rb") as f:
                labels.update(f.read())
    for name in ("dict.ltr.txt", "dict.phn.txt"):
        with open(os.path.join(out_dir, name), "rb") as f:
            labels.update(f.read())
    return {"labels": labels.hexdigest(), "audio": audio.hexdigest()}
