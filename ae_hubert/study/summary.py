"""A study's measurements summarised over seeds: ``study.json`` (every per-seed value beside its mean
and std), ``study.md`` (each hypothesis's section: what held, with the numbers) and its plots.

The figures every hypothesis uses live here (:func:`stat`, :func:`paired`); each hypothesis's own
summary, verdict, section and plots live in its module (``hypotheses.py``)."""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from ..common.atomic import write_text_atomic
from .hypotheses import hypotheses


def stat(values) -> dict:
    """Mean and sample std (ddof 1; 0 for one seed) with the values themselves."""
    v = [float(x) for x in values]
    arr = np.asarray(v, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(v) > 1 else 0.0, "values": v}


def paired(values_a, values_b) -> dict:
    """Per-seed difference a - b, summarised."""
    return stat(a - b for a, b in zip(values_a, values_b))


# Input-R^2 changes smaller than this count as probe noise in the "turns back toward the input" verdicts,
# whatever the seeds' spread. Chosen before measuring; study_cpu's three seeds then put the seed-to-seed
# std of a layer's input R^2 (200-utterance probe) at 0.014-0.031 at 500 updates, 0.008-0.017 at 1000,
# 0.000-0.012 later.
DRIFT_FLOOR = 0.01


def dip_then_rise(values: list[float]) -> tuple[float, float, int]:
    """(first - lowest, last - lowest, where the lowest is) of a curve."""
    i = int(np.argmin(values))
    return float(values[0] - values[i]), float(values[-1] - values[i]), i


def turn_back(curves: list[list[float]], floor: float = DRIFT_FLOOR) -> dict:
    """The autoencoder shape on one curve per seed (over updates or over depth): a fall from the
    first point, then a climb back to the last. It fires when, in every seed, both exceed the
    margin: the seeds' spread (the median over the curve's points of their std over seeds), or
    ``floor`` when that is smaller. A curve whose lowest point is its first (only rises) or its last
    (only falls) never fires."""
    per = [dip_then_rise(c) for c in curves]
    spread = float(np.median(np.std(np.asarray(curves, dtype=float), axis=0, ddof=1))) if len(curves) > 1 else 0.0
    margin = max(floor, spread)
    return {"dip": stat(d for d, _, _ in per), "rise": stat(r for _, r, _ in per), "lowest_at": [i for _, _, i in per],
            "spread": spread, "margin": margin, "fires": all(d > margin and r > margin for d, r, _ in per)}


def fmt(s: dict, digits: int = 4) -> str:
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def pct(s: dict) -> str:
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def last_probe(probes: dict) -> dict:
    """The probe of an iteration's last checkpoint (``{updates: probe}``)."""
    return probes[max(probes, key=int)]


def best_phone_acc(probe: dict) -> tuple[int, float]:
    """The layer with the best linear phone accuracy, and that accuracy."""
    layer = max(probe["layers"], key=lambda lay: probe["layers"][lay].get("phone_acc", -1.0))
    return int(layer), float(probe["layers"][layer].get("phone_acc", float("nan")))


def best_pnmi(cq: dict) -> float:
    """The PNMI (valid) of the layer a cluster-quality record chose (on train)."""
    return float(cq["layers"][str(cq["best_layer"])]["pnmi"])


def _all_records(per_seed: list[dict]) -> list[dict]:
    """The records of every run of every seed (H1's and the arms'), each once."""
    return [r for s in per_seed for run in (s["records"], *s.get("other_runs", {}).values()) for r in run]


def summarise(study, wanted: list[str], per_seed: list[dict]) -> dict:
    out = {"study": study.name, "config": study.path, "seeds": [s["seed"] for s in per_seed], "k": study.k,
           "measure": dataclasses.asdict(study.measure), "hypotheses": wanted,
           "compute": {**{f"{key}_hours": round(sum(r[f"{key}_seconds"] for r in _all_records(per_seed)) / 3600, 2)
                          for key in ("train", "sidecar")},
                       "finetune_hours": round(sum(s.get("finetune_seconds", 0) for s in per_seed) / 3600, 2)},
           "per_seed": per_seed}
    for h in wanted:
        out[h] = hypotheses()[h].summarise(per_seed, study)
    return out


PARTIAL_DIR = "partial"  # W/partial/NAME: the summary of a call narrower than W/study.json


def _seed_span(seeds) -> str:
    """Sorted seeds with runs as ranges: ``1..3``, ``1+3``, ``1..3+5``."""
    seeds, parts = sorted(seeds), []
    for s in seeds:
        if parts and s == parts[-1][1] + 1:
            parts[-1][1] = s
        else:
            parts.append([s, s])
    return "+".join(str(a) if a == b else f"{a}..{b}" for a, b in parts)


def summary_dir(summary: dict, w: str, echo=print) -> str:
    """Where a call's summary is written: ``W``, unless ``W/study.json`` (of the same study) has a
    hypothesis or a seed this call leaves out (``--only``/``--only-seeds``), so that a narrow call
    never replaces a wider summary: such a call writes its own under ``W/partial/H1+H3.s1..3``."""
    try:
        with open(os.path.join(w, "study.json")) as f:
            old = json.load(f)
        study, hypotheses_done, seeds = old["study"], set(old["hypotheses"]), set(old["seeds"])
    except (OSError, ValueError, KeyError, TypeError):
        return w  # no summary yet (or not one a whole call wrote): nothing wider to keep
    if study != summary["study"]:
        echo(f"study: {w}/study.json summarised study {study!r}, not {summary['study']!r}: replaced")
        return w
    left = [*sorted(hypotheses_done - set(summary["hypotheses"])),
            *(f"seed {s}" for s in sorted(seeds - set(summary["seeds"])))]
    if not left:
        return w
    out = os.path.join(w, PARTIAL_DIR, "+".join(summary["hypotheses"]) + ".s" + _seed_span(summary["seeds"]))
    os.makedirs(out, exist_ok=True)
    echo(f"study: this call leaves out {', '.join(left)} of {w}/study.json, which it keeps; its summary: {out}")
    return out


def write_study(summary: dict, out_dir: str) -> list[str]:
    """``study.md``, ``study.json`` and every hypothesis's plots in ``out_dir``; the files written."""
    wanted = [h for h in hypotheses() if h in summary]
    files = [f for h in wanted for f in hypotheses()[h].plots(summary[h], out_dir)]
    n = len(summary["seeds"])
    md = [f"# Study {summary['study']}", "",
          f"Seeds {summary['seeds']}; training {summary['compute']['train_hours']} h, sidecars "
          f"{summary['compute']['sidecar_hours']} h, fine-tuning {summary['compute']['finetune_hours']} h "
          "(as recorded by the runs; measurements not included).", ""]
    if n < 3:
        md += [f"**{n} seed(s) only**: the ± figures and the 'every seed' verdicts need at least 3 seeds "
               "(`--seeds 3`); read these as one run's numbers.", ""]
    for h in wanted:
        md += [f"## {h}: {hypotheses()[h].TITLE}", "", *hypotheses()[h].markdown(summary[h], n)]
    md += ["## Plots", ""] + [f"![{os.path.basename(f)}]({os.path.basename(f)})" for f in files]
    write_text_atomic(os.path.join(out_dir, "study.md"), "\n".join(md) + "\n")
    write_text_atomic(os.path.join(out_dir, "study.json"), json.dumps(summary, indent=1) + "\n")
    return [os.path.join(out_dir, "study.json"), os.path.join(out_dir, "study.md"), *files]


def verdict_lines(summary: dict) -> list[str]:
    """Each hypothesis's verdict in a line or two, for the command's output."""
    lines = [line for h in hypotheses() if h in summary for line in hypotheses()[h].verdict(summary[h])]
    if len(summary["seeds"]) < 3:
        lines.append(f"({len(summary['seeds'])} seed(s) only: the spread and the 'every seed' verdicts need "
                     "--seeds 3)")
    return lines
