"""One error type for bad input: the CLI prints it as a single line naming the file (and line)."""
from __future__ import annotations

import os


class AeHubertError(Exception):
    """A user-facing error. Its message names the file (and line) at fault."""


def located(path: str | os.PathLike, msg: str, line: int | None = None) -> AeHubertError:
    """Build an error whose message starts with ``path[:line]``."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return AeHubertError(f"{where}: {msg}")
