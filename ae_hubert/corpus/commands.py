"""``ae-hubert toy-corpus``, ``study-corpus``, ``librispeech``: the data the loop starts from."""
from __future__ import annotations

import json

from ..common.arguments import SEED, integer, name_list, path
from ..common.command import Command, echo
from ..common.outputs import Files


def _corpus(module: str, knob: str):
    """The handler of a corpus builder: ``build(out, utterances, seed, KNOB, workers)`` of ``module``."""
    def run(a):
        import importlib

        build = importlib.import_module(f"{__package__}.{module}").build
        s = build(a.out_dir, a.utterances, a.seed, getattr(a, knob), a.workers)
        echo(json.dumps(s["splits"], indent=1))
        return s["splits"]
    return run


def _toy_corpus_args(s):
    s.add_argument("out_dir", type=path, help="output directory (tsv, wav/, wrd, ltr, phn, spk, wrdspan)")
    s.add_argument("--utterances", type=integer(10), default=400, help="utterances in all splits together")
    s.add_argument("--seed", type=SEED, default=0, help="corpus seed (same seed, same bytes)")
    s.add_argument("--voices", type=name_list, help="comma-separated flite:NAME / espeak:NAME (default: 2 flite + 4 espeak-ng)")
    s.add_argument("--workers", type=integer(1), default=None, help="synthesis processes (default: CPU count)")


def _study_corpus_args(s):
    s.add_argument("out_dir", type=path, help="output directory (the toy corpus's files)")
    s.add_argument("--utterances", type=integer(30), default=3000, help="utterances in all splits together "
                   "(3000: 3.1 hours, built in 3.7 min on 2 cores)")
    s.add_argument("--seed", type=SEED, default=0, help="corpus seed (same seed, same bytes)")
    s.add_argument("--vocabulary", type=integer(50), default=3000, help="words (the most frequent that pass "
                   "the pronunciation checks)")
    s.add_argument("--workers", type=integer(1), default=None, help="synthesis processes (default: CPU count)")


def _librispeech(a):
    from .librispeech import prepare_librispeech

    written = prepare_librispeech(a.root, a.out, a.libri_light)
    echo(*[f"{a.out}/{name}.tsv  {n} utterances (.wrd .ltr .spk)" for name, n in written.items()],
         f"{a.out}/dict.ltr.txt")


def _librispeech_args(s):
    s.add_argument("--root", required=True, help="LibriSpeech root (train-clean-100/, dev-clean/, ...)")
    s.add_argument("--out", type=path, required=True, help="output manifest directory")
    s.add_argument("--libri-light", help="Libri-light librispeech_finetuning/ root (1h/, 9h/)")


def _built(a) -> Files:
    """The corpus directory (a build rewrites its own files; check_corpus_dir refuses another's)."""
    return Files({a.out_dir if hasattr(a, "out_dir") else a.out: "OUT"})


COMMANDS = [
    Command("toy-corpus", "synthesise the offline demo corpus", _corpus("toy_corpus", "voices"), _toy_corpus_args,
            files=_built),
    Command("study-corpus", "synthesise the harder study corpus: many voices (new ones in valid/test), 3000 words, "
            "rooms, noise", _corpus("study_corpus", "vocabulary"), _study_corpus_args, files=_built),
    Command("librispeech", "LibriSpeech (+ Libri-light limited) -> manifests, .wrd/.ltr, dict", _librispeech,
            _librispeech_args, files=_built),
]
