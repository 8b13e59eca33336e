"""``ae-hubert``: the table of commands. Each command's arguments and handler live in its stage's
``commands.py``; nothing in the package imports this module.
"""
from __future__ import annotations

import logging
import sys

from .analysis import commands as analysis
from .clustering import commands as clustering
from .common.command import UsageError, build_parser as _build_parser
from .common.errors import AeHubertError
from .corpus import commands as corpus
from .features import commands as features
from .finetune import commands as finetune
from .models import commands as models
from .pipeline import commands as pipeline
from .study import commands as study

# in the order `ae-hubert --help` lists them: the loop's stages, then what drives them
COMMANDS = [*corpus.COMMANDS, *features.COMMANDS, *clustering.COMMANDS, *analysis.COMMANDS, *models.COMMANDS,
            *finetune.COMMANDS, *pipeline.COMMANDS, *study.COMMANDS]


def build_parser():
    return _build_parser("ae-hubert", "the sidecar tools of the HuBERT loop, the study and the demo", COMMANDS)


def main(argv=None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # tables reach a redirected log as they are printed
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print(f"ae-hubert: error: {e}", file=sys.stderr)
        return 2
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # an import may have configured the root logger already
    for name in ("fairseq", "ae_hubert"):  # fairseq's import configures the root logger at INFO
        logging.getLogger(name).setLevel(level)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    if not args.verbose:  # library deprecation notices are not the user's business; -v shows them
        import warnings

        warnings.filterwarnings("ignore")
    try:
        args.fn(args)
    except AeHubertError as e:
        print(f"ae-hubert {args.cmd}: error: {e}", file=sys.stderr)
        return getattr(e, "exit_status", 2)  # 2: bad input; 1: ran, and the answer is no (study-rerun)
    except UnicodeDecodeError as e:  # a binary or non-UTF-8 file where text (manifest, labels, dict) was expected
        print(f"ae-hubert {args.cmd}: error: a text input is not UTF-8 ({e.reason} at byte {e.start}); "
              "manifests, label and dictionary files must be UTF-8 text", file=sys.stderr)
        return 2
    except OSError as e:  # an output path the checks could not foresee (a full disk, a vanished directory)
        where = e.filename if e.filename is not None else ""
        print(f"ae-hubert {args.cmd}: error: {where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ae-hubert {args.cmd}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
