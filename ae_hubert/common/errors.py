"""One error type for bad input: the CLI prints it as a single line naming the file (and line)."""
from __future__ import annotations

import os


class AeHubertError(Exception):
    """A user-facing error. Its message names the file (and line) at fault."""


def located(path: str | os.PathLike, msg: str, line: int | None = None) -> AeHubertError:
    """Build an error whose message starts with ``path[:line]``."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return AeHubertError(f"{where}: {msg}")


def missing(path: str | os.PathLike, what: str, hint: str = "") -> AeHubertError:
    """``what`` (a file) is not at ``path``: "not found" with ``hint`` (how to make it), or, where a
    directory stands, said as such (the usual slip: the data dir given for a file inside it)."""
    if os.path.isdir(path):
        return located(path, f"a directory, where the {what} belongs")
    return located(path, f"{what} not found{hint}")
