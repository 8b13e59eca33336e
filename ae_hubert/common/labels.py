"""Label files against their manifest and dictionary: one line per utterance, every token a symbol
of ``dict.NAME.txt``. Stock fairseq maps a token missing from the dictionary to ``<unk>`` without a
word (an empty ``dict.km.txt`` gives a loss near zero; a letter missing from ``dict.ltr.txt`` trains
CTC on ``<unk>``): the pretraining task and the fine-tuning sweep check here first."""
from __future__ import annotations

import os

from .errors import located, missing
from .text import read_lines


def dictionary_symbols(path: str) -> set[str]:
    """The symbols of a fairseq dictionary file (``SYMBOL COUNT`` lines)."""
    if not os.path.isfile(path):
        raise missing(path, "dictionary")
    return {line.split()[0] for line in read_lines(path) if line.strip()}


LENGTH_TOLERANCE_S = 0.1  # fairseq's verify_label_lengths: beyond it, it only warns, and trains on

def validate_label_file(path: str, n_lines: int, symbols: set[str] | None, sizes: list[int] | None = None,
                        label_rate: float | None = None, sample_rate: int = 16000) -> None:
    """One line per manifest line; with ``symbols``, every token must be in the dictionary; with the
    utterances' ``sizes`` (samples) and a frame ``label_rate``, every line must last as long as its
    audio (fairseq warns past 0.1 s and trains on labels at another rate, or shifted by a line)."""
    if not os.path.isfile(path):
        raise missing(path, "label file")
    lines = read_lines(path)
    if symbols is not None:
        for i, line in enumerate(lines, start=1):
            for tok in line.split():
                if tok not in symbols:
                    raise located(path, f"label {tok!r} is not in the dictionary (it would silently become <unk>)", i)
    if len(lines) != n_lines:
        raise located(path, f"{len(lines)} lines but the manifest has {n_lines} utterances")
    if sizes is not None and label_rate and label_rate > 0:
        for i, (line, n) in enumerate(zip(lines, sizes), start=1):
            audio_s, label_s = n / sample_rate, len(line.split()) / label_rate
            if abs(audio_s - label_s) > LENGTH_TOLERANCE_S:
                raise located(path, f"{len(line.split())} labels last {label_s:.2f} s at {label_rate:g} Hz but the "
                                    f"utterance lasts {audio_s:.2f} s (labels at another rate, or out of line with "
                                    "the manifest?)", i)
