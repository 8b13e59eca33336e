"""One error type for bad input: the CLI prints it as a single line naming the file (and line)."""
from __future__ import annotations

import os


class AeHubertError(Exception):
    """A user-facing error. Its message names the file (and line) at fault."""


def located(path: str | os.PathLike, msg: str, line: int | None = None) -> AeHubertError:
    """Build an error whose message starts with ``path[:line]``. A file "not found" where a directory
    stands is said as such (the usual slip: the data dir given where a file inside it belongs)."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    if line is None and " not found" in msg and os.path.isdir(path):
        msg = f"a directory, where a file belongs ({msg.replace(' not found', '', 1)})"
    return AeHubertError(f"{where}: {msg}")
