"""What a study's work dir records about itself beside its stage markers: the runs H2 probes over
updates (``probed_runs.json``), the probes already done (read from their markers), and the corpus
a carried work dir's results were measured on (``corpus.expected.json``, written by ``study-pack``)."""
from __future__ import annotations

import json
import os
import re
from typing import Callable

from ..common.atomic import write_text_atomic
from ..common.errors import AeHubertError
from ..runner.stages import Stages


class StudyError(AeHubertError):
    pass


PROBE_MARKER = re.compile(r"(?P<piece>.+)\.probe\.(?P<updates>\d+)\.json")  # sSEED.RUN.ITERATION.probe.UPDATES


def done_probes(stages: Stages) -> dict[str, dict[int, str]]:
    """The study's finished probes, read from their markers: ``{"sSEED.RUN.ITERATION": {updates:
    checkpoint}}`` (the checkpoint as recorded, ``$W`` resolved)."""
    out: dict[str, dict[int, str]] = {}
    for f in sorted(os.listdir(stages.marker_dir)):
        m = PROBE_MARKER.fullmatch(f)
        command = (stages.done(f[:-len(".json")]) or {}).get("command") if m else None
        if command:
            ckpt = json.loads(command)["ckpt"].replace("$W", stages.work_dir)
            out.setdefault(m["piece"], {})[int(m["updates"])] = ckpt
    return out


PROBED_RUNS = "probed_runs.json"  # the runs whose interval checkpoints are probed (H1's for H2, the H0 controls)


def record_probed_runs(w: str, run: str) -> None:
    """Record, once per work dir and added to by each call, the run (``runs/NAME``, relative to
    ``w``) whose interval checkpoints H2 probes: ``study-pack`` carries only those, not the arms'
    (H4/H5 probe an arm's last checkpoint). Recorded whatever ``--only`` says: a later H2 call
    needs the H1 run's checkpoints even if this one measures H1 alone."""
    known = probed_runs(w) or []
    if run not in known:
        write_text_atomic(os.path.join(w, PROBED_RUNS), json.dumps({"runs": sorted([*known, run])}, indent=1) + "\n")


def probed_runs(w: str) -> list[str] | None:
    """The runs ``record_probed_runs`` recorded in ``w``; None in a work dir from before that record
    (every run's interval checkpoints may then be probed)."""
    path = os.path.join(w, PROBED_RUNS)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            runs = json.load(f)["runs"]
        if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
            raise ValueError("'runs' is not a list of run dirs")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StudyError(f"{path}: unreadable record of the probed runs ({e}); delete it to carry every "
                         "run's interval checkpoints") from None
    return runs


EXPECTED_CORPUS = "corpus.expected.json"  # written by study-pack: the corpus the carried results were measured on


def check_rebuilt_corpus(w: str, corpus: str, echo: Callable[[str], None]) -> dict | None:
    """A work dir carried by ``study-pack`` holds the fingerprint of the corpus its results (and
    half-trained runs' labels) came from; the corpus rebuilt here from the same seed should match
    it. A mismatch (other library versions) is refused: the work dir's runs would resume, and its
    results be extended, on other audio (each run's own check of its inputs would refuse it later)."""
    from ..corpus.corpus_files import fingerprint

    path = os.path.join(w, EXPECTED_CORPUS)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            expected = json.load(f)
    except (OSError, ValueError) as e:
        raise StudyError(f"{path}: unreadable corpus fingerprint ({e}); delete it to skip the check") from None
    found = fingerprint(corpus)
    differ = sorted(k for k in found if expected.get(k) != found[k])
    if differ:
        raise StudyError(f"{corpus}: the corpus rebuilt here differs from the one this work dir's results were "
                         f"measured on ({' and '.join(differ)} differ; {path}): other library versions? Its runs "
                         "would go on on other audio: rebuild it where the library versions match the packing "
                         "machine's, or start a new work dir")
    return {"expected": expected, "found": found, "same": not differ}
