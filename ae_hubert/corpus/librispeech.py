"""LibriSpeech (and Libri-light's limited sets) -> fairseq manifests and letter targets.

Input layout (as released): ``ROOT/<split>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` with one
``<spk>-<chapter>.trans.txt`` per chapter (``UTT-ID WORDS...``); Libri-light's
``librispeech_finetuning/{1h/0..5,9h}/{clean,other}/<spk>/<chapter>/...`` has the same chapters.
Output, in fairseq's formats (``wav2vec_manifest.py`` + ``libri_labels.py``): ``{name}.tsv`` (root line,
relative paths, sample counts), ``{name}.wrd`` (words), ``{name}.ltr`` (letters, ``|`` after every
word), ``{name}.spk`` (speaker ids, for the voice probe) and ``dict.ltr.txt`` (letter counts of
``train``, else of every split written). Output names: ``train`` (960 h: every ``train-*`` present),
``valid`` (dev-clean + dev-other), ``dev_clean``, ``dev_other``, ``test_clean``, ``test_other``, and
with Libri-light ``train_10h`` (1h + 9h), ``train_1h``, ``train_10min`` (``1h/0``).
"""
from __future__ import annotations

import collections
import glob
import os

from ..common.atomic import write_lines_atomic
from ..common.audio import MIN_SAMPLES
from ..common.errors import located
from ..common.letters import words_to_letters
from ..common.manifest import write_manifest
from ..common.text import read_lines

LIBRISPEECH_SPLITS = {
    "train": ["train-clean-100", "train-clean-360", "train-other-500"],
    "valid": ["dev-clean", "dev-other"],
    "dev_clean": ["dev-clean"], "dev_other": ["dev-other"],
    "test_clean": ["test-clean"], "test_other": ["test-other"],
}
LIBRILIGHT_SPLITS = {"train_10h": ["1h", "9h"], "train_1h": ["1h"], "train_10min": [os.path.join("1h", "0")]}


def read_chapters(dirs: list[str]) -> list[tuple[str, str]]:
    """``[(flac path, WORDS)]`` under ``dirs``, sorted by path; every flac needs its transcript line."""
    import soundfile as sf  # noqa: F401  (fail early when libsndfile is missing)

    items = []
    for d in dirs:
        transcribed = {os.path.dirname(t) for t in glob.glob(os.path.join(d, "**", "*.trans.txt"), recursive=True)}
        for flac in sorted(glob.glob(os.path.join(d, "**", "*.flac"), recursive=True)):
            if os.path.dirname(flac) not in transcribed:  # a chapter without its transcript: not silently dropped
                raise located(os.path.dirname(flac), "audio but no <spk>-<chapter>.trans.txt in this chapter")
        for trans in sorted(glob.glob(os.path.join(d, "**", "*.trans.txt"), recursive=True)):
            chapter = os.path.dirname(trans)
            flacs = {os.path.splitext(os.path.basename(f))[0] for f in glob.glob(os.path.join(chapter, "*.flac"))}
            seen = set()
            for lineno, line in enumerate(read_lines(trans), start=1):
                parts = line.strip().split(" ", 1)
                if not parts[0]:
                    continue
                if len(parts) != 2 or not parts[1].strip():
                    raise located(trans, f"want 'UTTERANCE-ID WORDS', got {line.strip()!r}", lineno)
                if parts[0] not in flacs:
                    raise located(trans, f"{parts[0]}.flac not found in {chapter}", lineno)
                if parts[0] in seen:  # one recording must not become two utterances
                    raise located(trans, f"a second transcript line for {parts[0]}", lineno)
                seen.add(parts[0])
                items.append((os.path.join(chapter, parts[0] + ".flac"), " ".join(parts[1].upper().split())))
            for missing in sorted(flacs - seen):
                raise located(os.path.join(chapter, missing + ".flac"), f"no transcript line in {trans}")
    return sorted(items)


def scan_split(root: str, items: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """The manifest rows of a split, every file's header checked (16 kHz, readable) and its last sample read:
    a FLAC cut short keeps its header's length, so only reading its end finds it before training does."""
    import soundfile as sf

    rows = []
    for path, _ in items:
        try:
            with sf.SoundFile(path) as f:
                frames, rate = f.frames, f.samplerate
                complete = frames < MIN_SAMPLES or _last_sample_read(f)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise located(path, f"not readable as audio ({e})") from None
        if rate != 16000:
            raise located(path, f"sample rate {rate}, want 16000")
        if frames < MIN_SAMPLES:
            raise located(path, f"{frames} samples, fewer than the {MIN_SAMPLES} of one feature frame (the "
                                "tools refuse it in a manifest)")
        if not complete:
            raise located(path, f"cut short: its header says {frames} samples but the last cannot be read")
        rows.append((os.path.relpath(path, root), frames))
    return rows


def _last_sample_read(f) -> bool:
    try:
        f.seek(f.frames - 1)
        return len(f.read(1)) == 1
    except (RuntimeError, ValueError):  # libsndfile's seek error on a file shorter than its header
        return False


def write_split(name: str, root: str, items: list[tuple[str, str]], rows: list[tuple[str, int]],
                out_dir: str) -> int:
    write_manifest(os.path.join(out_dir, f"{name}.tsv"), os.path.abspath(root), rows)
    write_lines_atomic(os.path.join(out_dir, f"{name}.wrd"), [w for _, w in items])
    write_lines_atomic(os.path.join(out_dir, f"{name}.ltr"), [words_to_letters(w) for _, w in items])
    write_lines_atomic(os.path.join(out_dir, f"{name}.spk"),
                       [os.path.basename(p).split("-")[0] for p, _ in items])
    return len(items)


def prepare_librispeech(root: str, out_dir: str, libri_light: str | None = None) -> dict:
    """Write every split whose source directories exist; returns ``{name: utterances}``."""
    if not os.path.isdir(root):
        raise located(root, "LibriSpeech root not found")
    written, counts = {}, collections.Counter()
    sources = [(name, root, [os.path.join(root, s) for s in subs]) for name, subs in LIBRISPEECH_SPLITS.items()]
    if libri_light:
        if not os.path.isdir(libri_light):
            raise located(libri_light, "Libri-light librispeech_finetuning directory not found")
        if not any(os.path.isdir(os.path.join(libri_light, d)) for d in ("1h", "9h")):
            raise located(libri_light, "no Libri-light split directories (1h, 9h) here")
        sources += [(name, libri_light, [os.path.join(libri_light, s) for s in subs])
                    for name, subs in LIBRILIGHT_SPLITS.items()]
    if not any(os.path.isdir(d) for _, _, dirs in sources for d in dirs):
        raise located(root, "no LibriSpeech split directories (train-clean-100, dev-clean, ...) here")
    scanned = []  # every split read and every file checked before any is written: all or nothing
    for name, base, dirs in sources:
        dirs = [d for d in dirs if os.path.isdir(d)]
        if not dirs:
            continue
        items = read_chapters(dirs)
        if not items:
            raise located(dirs[0], "no <spk>-<chapter>.trans.txt found under this directory")
        scanned.append((name, base, items, scan_split(base, items)))
    for name, base, items, rows in scanned:
        written[name] = write_split(name, base, items, rows, out_dir)
        if name == "train" or "train" not in written:
            counts.update(c for _, w in items for c in words_to_letters(w).split())
    write_lines_atomic(os.path.join(out_dir, "dict.ltr.txt"),
                       [f"{c} {n}" for c, n in sorted(counts.items(), key=lambda cn: (-cn[1], cn[0]))])
    return written
