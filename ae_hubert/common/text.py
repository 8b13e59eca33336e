"""Text inputs (manifests, ``.len``, labels, transcripts) read as UTF-8; a file that is not (UTF-16, binary,
or UTF-8 behind a byte-order mark) is one error naming the file and line, not a bare decoding error."""
from __future__ import annotations

import os

from .errors import located


BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark: fairseq (and YAML keys) would read it as text of line 1


def refuse_bom(path: str | os.PathLike, head: bytes, what: str = "fairseq reads it as part of line 1") -> None:
    """One error naming the file when ``head`` (its first bytes) starts with a byte-order mark."""
    if head.startswith(BOM):
        raise located(path, f"starts with a UTF-8 byte-order mark, which {what}; save it as UTF-8 without one", 1)


def read_lines(path: str | os.PathLike, limit: int | None = None) -> list[str]:
    """The lines of ``path`` without their newlines (the first ``limit`` only, when given)."""
    with open(path, "rb") as f:
        data = f.read()
    refuse_bom(path, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise located(path, f"not UTF-8 text ({e.reason} at byte {e.start}); manifests, labels, transcripts and "
                            "dictionaries are UTF-8", data[:e.start].count(b"\n") + 1) from None
    lines = text.splitlines()
    return lines if limit is None else lines[:limit]
