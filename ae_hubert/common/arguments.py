"""Argument types for the command line: every number is range-checked before any work, and a bad
value becomes one line (``argument --k: must be an integer >= 2, got '1'``)."""
from __future__ import annotations

import argparse
import re

# a split, label or iteration name: it becomes part of file and directory names, so no paths or dots
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def integer(minimum: int | None = None, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        bounds = (f" >= {minimum}" if minimum is not None else "") + \
                 (f" and <= {maximum}" if maximum is not None else "")
        if value is None or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be an integer{bounds}, got {text!r}")
        return value
    parse.__name__ = "integer"
    return parse


def _number(text: str, ok, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")  # fails every check below
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    return _number(text, lambda v: 0 < v < float("inf"), "a positive number")


def non_negative_float(text: str) -> float:
    return _number(text, lambda v: 0 <= v < float("inf"), "a number >= 0")


def sample_fraction(text: str) -> float:
    """-1 (everything) or a fraction in (0, 1]: a percentage such as 50 is refused, not read as 'all'."""
    return _number(text, lambda v: v == -1 or 0 < v <= 1, "a fraction in (0, 1] or -1 for all")


def gain_fraction(text: str) -> float:
    """A relative improvement in [0, 1): 0 turns the check off."""
    return _number(text, lambda v: 0 <= v < 1, "a fraction in [0, 1) (0: off)")


def int_list(minimum: int = 0):
    """Comma-separated integers (>= ``minimum``), no duplicates, at least one."""
    one = integer(minimum)

    def parse(text: str) -> list[int]:
        items = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in items):
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
        try:
            values = [one(p) for p in items]
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"every item {e} (in {text!r})") from None
        if len(set(values)) < len(values):
            raise argparse.ArgumentTypeError(f"duplicate values in {text!r}")
        return values
    parse.__name__ = "integer list"
    return parse


def name_list(text: str) -> list[str]:
    items = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in items):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    if len(set(items)) < len(items):
        raise argparse.ArgumentTypeError(f"duplicate names in {text!r}")
    return items


SEED = integer(0, 2 ** 32 - 1)  # numpy's and sklearn's seed range


def plain_name(text: str) -> str:
    """A split or label name: it becomes part of file names, so no paths, no dots at the start."""
    if not FILE_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be letters, digits, '_' or '-' (it names files), got {text!r}")
    return text


def output_file(text: str) -> str:
    """A file to write: not empty, not a directory (checked again, with its parent, before the work)."""
    import os

    if not text.strip() or text.endswith(os.sep) or os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"must be a file name (not empty, not a directory), got {text!r}")
    return text


def device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, and CUDA only where it is available."""
    import re

    import torch

    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available here")
        index = int(text.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return text


def frame_rate(text: str) -> float:
    return _number(text, lambda v: 1 <= v <= 16000, "a frame rate in Hz between 1 and 16000")


def slurm_time(text: str) -> str:
    """SLURM's --time forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS."""
    import re

    if not re.fullmatch(r"\d+(:\d{2}){0,2}|\d+-\d{1,2}(:\d{2}){0,2}", text):
        raise argparse.ArgumentTypeError(f"must be a SLURM time such as 72:00:00 or 3-00:00:00, got {text!r}")
    return text


def path(text: str) -> str:
    """A non-empty path (an empty one would silently mean the current directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


class Once(argparse.Action):
    """An option that may be given once: a second one (``--restart A --restart B``) is an error,
    not silently the last."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice; give it once")
        setattr(namespace, self.dest, values)


def device_option(s: argparse.ArgumentParser) -> None:
    s.add_argument("--device", type=device, default=None, help="cpu / cuda / cuda:N (default: cuda when available)")


def shard_options(s: argparse.ArgumentParser) -> None:
    s.add_argument("--nshard", type=integer(1), default=1, help="number of shards the split is cut into")
    s.add_argument("--rank", type=integer(0), default=0, help="which shard (0-based, < --nshard)")


MFCC_RATES = (100, 50)  # Hz: stock's 10 ms frames, or every other one (the 50 Hz of HuBERT's layers)


def mfcc_rate_option(k: argparse.ArgumentParser) -> None:
    k.add_argument("--mfcc-rate", type=int, choices=MFCC_RATES, default=100,
                   help="MFCC frames per second: 100 as stock, or 50 (every other frame, the frames HuBERT's 50 Hz "
                        "layers line up with: labels for a head on a layer)")


def model_options(k: argparse.ArgumentParser, required: bool) -> None:
    """The options that pick and run a model layer (``dump hubert``; ``label --tsv-dir`` with a model)."""
    k.add_argument("--ckpt", required=required, default=None,
                   help="any fairseq HuBERT checkpoint, pretrained or fine-tuned"
                        + ("" if required else " (--tsv-dir: label its layer's features; without: MFCC)"))
    which = k.add_mutually_exclusive_group(required=required)
    which.add_argument("--layer", type=integer(1), help="1-based transformer layer, as stock")
    which.add_argument("--layer-from", metavar="JSON", help="read the layer from a `choose-layer --json` result ('chosen')")
    k.add_argument("--max-samples", type=integer(0), default=None,
                   help="padded samples per batch, 0: one utterance per batch (default: 1.6M on CUDA, 0 on CPU); "
                        "an utterance longer than this is a batch of its own")
    k.add_argument("--max-chunk", type=integer(400), default=1_600_000,
                   help="longer audio is cut into independent chunks of this many samples, as stock")
    device_option(k)
    k.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="model precision; float16/bfloat16 for GPUs, files stay float32")
    k.add_argument("--user-dir", default=None, help="another fairseq plugin the checkpoint needs")

