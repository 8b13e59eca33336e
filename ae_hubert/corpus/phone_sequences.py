"""The phones each utterance says, in order: ``{split}.phnseq`` and ``dict.phnseq.txt``, CTC targets
for phone recognition (PER), beside a corpus's manifests.

Derived from the corpus's own labels, so any corpus with ``.phn`` (one phone per 50 Hz frame) and
``.wrdspan`` (``WORD:start:end``) gets them: within each word, the frames' phones with repeats
merged; silence dropped. A phone shorter than a frame is therefore lost, and two equal phones in a
row inside one word count once (across words they stay two)."""
from __future__ import annotations

import os
from collections import Counter

from ..common.atomic import write_lines_atomic
from ..common.audio import FRAME_CENTRE_S, FRAME_HOP_S
from ..common.errors import located
from ..common.text import read_lines
from .corpus_files import parse_spans

LABEL = "phnseq"
SILENCE = "sil"


def utterance_phones(frames: list[str], spans: list[tuple[float, float]]) -> list[str]:
    """The phone sequence of one utterance from its frame phones and word spans."""
    out: list[str] = []
    for start, end in spans:
        first = max(0, int(-(-(start - FRAME_CENTRE_S) // FRAME_HOP_S)))  # first frame centred at or after start
        prev = None
        for i in range(first, len(frames)):
            if i * FRAME_HOP_S + FRAME_CENTRE_S >= end:
                break
            p = frames[i]
            if p != prev and p != SILENCE:
                out.append(p)
            prev = p
    return out


def write_phone_sequences(data: str, splits: tuple[str, ...] = ("train", "valid", "test")) -> dict[str, int]:
    """Write ``{split}.phnseq`` for each split and ``dict.phnseq.txt`` (fairseq's ``SYMBOL COUNT``
    lines, counts from train); returns each split's phone count."""
    counts: Counter = Counter()
    totals = {}
    for split in splits:
        phn, spans = os.path.join(data, f"{split}.phn"), os.path.join(data, f"{split}.wrdspan")
        frames, words = read_lines(phn), read_lines(spans)
        if len(frames) != len(words):
            raise located(spans, f"{len(words)} lines but {phn} has {len(frames)}")
        seqs = []
        for i, (f, w) in enumerate(zip(frames, words)):
            seq = utterance_phones(f.split(), [(a, b) for _, a, b in parse_spans(w, spans, i + 1)])
            if not seq:
                raise located(phn, "no phone inside the utterance's word spans (.wrdspan): nothing to recognise", i + 1)
            seqs.append(seq)
        write_lines_atomic(os.path.join(data, f"{split}.{LABEL}"), [" ".join(s) for s in seqs])
        if split == "train":
            counts.update(p for s in seqs for p in s)
        else:
            for p in {p for s in seqs for p in s}:
                counts.setdefault(p, 0)
        totals[split] = sum(map(len, seqs))
    write_lines_atomic(os.path.join(data, f"dict.{LABEL}.txt"),
                       [f"{p} {n}" for p, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))])
    return totals
