"""One ``ae-hubert`` command: its arguments beside its handler, parsed with one-line errors.

Each stage package declares its commands in its own ``commands.py`` (the arguments next to the code
they call); ``cli.py`` lists them as the ``ae-hubert`` table, and the iteration driver runs a plan's
steps through the same :class:`Command` objects (:func:`invoke`), so a step checks its arguments
exactly as the command line does.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import AeHubertError
from .outputs import Files, check_files


class UsageError(AeHubertError):
    """A bad command line (unknown option, a number out of range, ...)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every default shown, except a None one: its help says what happens instead."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """Errors are raised (one line, exit status 2 from ``main``), never printed with the usage."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


@dataclass(frozen=True)
class Command:
    """``name``: the word after ``ae-hubert``; ``arguments(parser)`` declares its options; ``run(args)``
    does the work and returns a JSON-able result; ``files(args)`` says what it will write and read,
    checked before ``run``. A command with ``kinds`` (``dump mfcc|hubert``) takes one of them as its
    next word instead."""
    name: str
    help: str
    run: Callable[[argparse.Namespace], Any] | None = None
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str | None = None
    kinds: tuple["Command", ...] = field(default_factory=tuple)
    files: Callable[[argparse.Namespace], Files] | None = None  # what it writes and reads (common/outputs.py)

    def execute(self, args: argparse.Namespace):
        """Run, once no output it would write is one of its inputs."""
        if self.files is not None:
            check_files(self.files(args))
        return self.run(args)

    def add_to(self, sub) -> argparse.ArgumentParser:
        """Add this command (and its kinds) to an ``add_subparsers`` object."""
        p = sub.add_parser(self.name, help=self.help, description=self.description or self.help)
        if self.kinds:
            kinds = p.add_subparsers(dest="kind", required=True, parser_class=Parser, metavar="KIND")
            for k in self.kinds:
                k.add_to(kinds)
        else:
            if self.arguments is not None:
                self.arguments(p)
            p.set_defaults(fn=self.execute)
        return p


def build_parser(prog: str, description: str, commands: list[Command]) -> Parser:
    p = Parser(prog=prog, description=description)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level (fairseq's and ours)")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser, metavar="COMMAND")
    for c in commands:
        c.add_to(sub)
    return p


def invoke(commands: list[Command], argv: list[str]):
    """Run one of ``commands`` in this process on ``argv`` (its name first); its result. Bad arguments
    raise :class:`UsageError`."""
    args = build_parser("ae-hubert", "", commands).parse_args(list(argv))
    return args.fn(args)


def echo(*lines: str) -> None:
    """What a command prints: each line as soon as it is known."""
    for line in lines:
        print(line, flush=True)
