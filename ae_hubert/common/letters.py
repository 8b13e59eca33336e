"""fairseq's letter transcripts (``.ltr``), both ways: ``KEEP A GOING`` <-> ``K E E P | A | G O I N G |``
(the format of ``examples/wav2vec/libri_labels.py``; ``|`` ends every word)."""
from __future__ import annotations


def words_to_letters(text: str) -> str:
    return " ".join(list(" ".join(text.upper().split()).replace(" ", "|"))) + " |"


def letters_to_words(units) -> list[str]:
    """Words of a letter sequence (a list of units, or an ``.ltr`` line)."""
    if isinstance(units, str):
        units = units.split()
    return "".join(" " if u == "|" else u for u in units).split()
