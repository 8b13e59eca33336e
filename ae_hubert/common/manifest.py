"""fairseq audio manifests (``{split}.tsv``: a root line, then ``relpath<TAB>nsamples``)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import AeHubertError, located, missing
from .text import read_lines


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # absolute (root joined)
    relpath: str
    nsamples: int
    line: int  # 1-based line number in the manifest, for error messages
    tsv: str = ""

    @property
    def where(self) -> str:
        return f"{self.tsv}:{self.line}"


@dataclass(frozen=True)
class Manifest:
    tsv: str
    root: str
    entries: list[ManifestEntry]

    def __len__(self) -> int:
        return len(self.entries)

    def shard(self, nshard: int, rank: int) -> list[ManifestEntry]:
        start, end = shard_range(len(self.entries), nshard, rank)
        return self.entries[start:end]


def shard_range(total: int, nshard: int, rank: int) -> tuple[int, int]:
    """The same split as fairseq's ``simple_kmeans/feature_utils.get_shard_range``."""
    if nshard < 1 or not 0 <= rank < nshard:
        raise AeHubertError(f"--rank {rank} / --nshard {nshard}: need nshard >= 1 and 0 <= rank < nshard")
    start = round(total / nshard * rank)
    end = round(total / nshard * (rank + 1))
    return start, end


def read_manifest(tsv: str | os.PathLike) -> Manifest:
    """Parse and validate a manifest; every problem names the file and line."""
    tsv = os.fspath(tsv)
    if not os.path.isfile(tsv):
        raise missing(tsv, "manifest")
    lines = read_lines(tsv)
    if not lines or not lines[0].strip():
        raise located(tsv, "empty manifest (expected a root directory on line 1)", 1)
    root = lines[0].rstrip()
    if "\t" in root:  # fairseq's manifests start with the audio root directory, then relpath<TAB>nsamples
        raise located(tsv, f"line 1 must be the audio root directory, got an entry ({root[:60]!r}): the root line "
                           "is missing", 1)
    entries = []
    for i, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            raise located(tsv, "blank line in manifest", i)
        parts = raw.split("\t")
        if len(parts) != 2:
            raise located(tsv, f"expected 'relpath<TAB>nsamples', got {raw[:80]!r}", i)
        rel, n = parts
        try:
            nsamples = int(n)
        except ValueError:
            raise located(tsv, f"sample count {n!r} is not an integer", i) from None
        if nsamples <= 0:
            raise located(tsv, f"sample count must be positive, got {nsamples}", i)
        entries.append(ManifestEntry(os.path.join(root, rel), rel, nsamples, i, tsv))
    if not entries:
        raise located(tsv, "empty manifest (a root line but no audio lines)")
    return Manifest(tsv, root, entries)


def write_manifest(tsv: str | os.PathLike, root: str, rows: list[tuple[str, int]]) -> None:
    from .atomic import write_lines_atomic

    write_lines_atomic(tsv, [root] + [f"{rel}\t{n}" for rel, n in rows])


def audio_digest(tsv: str | os.PathLike) -> str:
    """A manifest's audio by content, cheaply: each file's size and 4 KiB from its middle (an edited,
    replaced or reversed recording changes it; a copied corpus does not). Reading every byte of a
    960 h corpus on each resume would cost minutes; this costs one small read per file."""
    import hashlib

    h = hashlib.sha1()
    for e in read_manifest(tsv).entries:
        try:
            with open(e.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(size // 2)
                h.update(f"{e.relpath}\t{size}\n".encode() + f.read(4096))
        except OSError as err:
            raise located(e.tsv, f"{e.relpath}: {err.strerror or err}", e.line) from None
    return h.hexdigest()


def data_inputs(data: str, splits: tuple[str, ...], files: tuple[str, ...] = ()) -> dict[str, tuple[str, str]]:
    """What a resumable run reads from a data directory, by content (``{role: (path, digest)}`` for
    ``Stages.check_inputs``): each split's manifest entries and audio, and ``files`` there (its
    transcripts, their dictionary) whole. A run resumed on other data is refused, not continued."""
    from .checkpoint import file_digest

    out = {}
    for split in splits:
        tsv = os.path.join(data, f"{split}.tsv")
        out[f"{split}.tsv"] = (tsv, entries_digest(tsv))
        out[f"{split} audio"] = (tsv, audio_digest(tsv))
    for name in files:
        out[name] = (os.path.join(data, name), file_digest(os.path.join(data, name)))
    return out


def entries_digest(tsv: str | os.PathLike) -> str:
    """A manifest's identity by its entries (paths and sample counts), not its first line: the
    audio root moves with a copied corpus, the data does not."""
    import hashlib

    with open(tsv, "rb") as f:
        f.readline()
        return hashlib.sha1(f.read()).hexdigest()
