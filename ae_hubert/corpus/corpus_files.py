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

from ..common.atomic import atomic_path, ensure_writable_dir, write_lines_atomic, write_text_atomic
from ..common.errors import located
from ..common.letters import words_to_letters
from ..common.manifest import read_manifest, write_manifest
from . import phones
from .speech import SAMPLE_RATE

SPLITS = ("train", "valid", "test")
LABELS = ("wrd", "ltr", "phn", "spk", "wrdspan")  # per split, beside {split}.tsv
SHARES = (0.8, 0.1, 0.1)  # of the utterances, per split
CHUNK = 16  # utterances synthesised per fresh worker process


def start_corpus(out_dir: str) -> str:
    """Make ``OUT/wav`` and drop an earlier ``corpus.json`` first: a rebuild stopped half way must
    not look complete. Called only once every input check has passed."""
    out_dir = os.path.abspath(out_dir)
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


def write_corpus(out_dir: str, utts: list[Utterance], split_of: list[str], summary: dict) -> dict:
    """``utts[i]`` (audio already at ``wav/{uid}.wav``) goes to split ``split_of[i]``; returns
    ``summary`` completed with each split's size. Audio files of an earlier, larger build are removed."""
    summary = dict(summary, sample_rate=SAMPLE_RATE, splits={}, phones=phones.PHONE_SET)
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
