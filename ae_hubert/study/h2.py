"""H2, the autoencoder behaviour: does the top layer drift back toward the input? Every checkpoint
of H1's runs probed per layer; the verdicts look for a fall then a climb of the top layer's input
R² over updates, and for a dip through the middle layers then a climb at the top over depth."""
from __future__ import annotations

import os

import numpy as np

from ..analysis.plots import panels, plt, save_figure
from .plots import bars
from .summary import fmt, stat

TITLE = "does the top layer drift back toward the input?"
ARMS = False
METRICS = ("phone_acc", "input_r2", "letter_cer", "word_acc", "voice_acc", "pnmi")
# Input-R^2 changes smaller than this count as probe noise in the "turns back toward the input"
# verdicts. Chosen before measuring; study_cpu's three seeds then put the seed-to-seed std of a
# layer's input R^2 (200-utterance probe) at 0.014-0.031 at 500 updates, 0.008-0.017 at 1000, 0.000-0.012 later.
DRIFT_MARGIN = 0.01


def dip_then_rise(values: list[float]) -> tuple[float, float, int]:
    """(first - lowest, last - lowest, where the lowest is) of a curve: a turn back toward the input
    needs both above DRIFT_MARGIN, so a curve that only rises (lowest first) or only falls does not."""
    i = int(np.argmin(values))
    return values[0] - values[i], values[-1] - values[i], i


def check(plan) -> None:
    """Nothing beyond H1's schedule: H2 probes its runs."""


def measure_first(seed) -> dict:
    seed.probe_h1(seed.h1_first(), every_checkpoint=True)
    return {}  # the probes of H1's runs are in every seed's record


def measure(seed) -> dict:
    seed.probe_h1(seed.h1()[1], every_checkpoint=True)
    return {}


def summarise(per_seed: list[dict], study=None) -> dict:
    out = {"iterations": {}}
    offset = 0
    for it in per_seed[0]["probes"]:
        common = sorted(set.intersection(*(set(map(int, s["probes"][it])) for s in per_seed)))
        first = per_seed[0]["probes"][it][str(common[-1])]["layers"]
        layers = sorted(first, key=int)
        top = layers[-1]
        metrics = [m for m in METRICS if m in first[top]]
        curves = {str(u): {"step": offset + u,
                           "autoencoder_index": stat(s["probes"][it][str(u)]["autoencoder_index"] for s in per_seed),
                           "layers": {lay: {m: stat(s["probes"][it][str(u)]["layers"][lay][m] for s in per_seed)
                                            for m in metrics} for lay in layers}}
                  for u in common}
        dips, rises, at, depth = [], [], [], []
        middle = [lay for lay in layers if 0 < int(lay) < int(top)]  # transformer layers below the top
        for s in per_seed:
            # over updates: the top layer's input R^2 falls after the first checkpoint, then climbs back
            dip, rise, i = dip_then_rise([s["probes"][it][str(u)]["layers"][top]["input_r2"] for u in common])
            dips.append(dip)
            rises.append(rise)
            at.append(common[i])
            # over depth, at the end: input R^2 falls through the middle layers and rises again at the top
            end = s["probes"][it][str(common[-1])]["layers"]
            if middle:
                depth.append(dip_then_rise([end[lay]["input_r2"] for lay in [*middle, top]]))
        out["iterations"][it] = {
            "updates": common, "top_layer": int(top), "metrics": metrics, "curves": curves,
            "top_input_r2_dip": stat(dips), "top_input_r2_rise": stat(rises), "top_input_r2_min_at": at,
            "drifts": all(d > DRIFT_MARGIN and r > DRIFT_MARGIN for d, r in zip(dips, rises)),
            "depth_input_r2_dip": stat(d[0] for d in depth) if depth else None,
            "depth_input_r2_rise": stat(d[1] for d in depth) if depth else None,
            "depth_input_r2_min_layer": [int(middle[d[2]]) if d[2] < len(middle) else int(top) for d in depth],
            "top_turns_back": bool(depth) and all(d > DRIFT_MARGIN and r > DRIFT_MARGIN for d, r, _ in depth)}
        offset += common[-1]
    return out


def markdown(h: dict, seeds: int) -> list[str]:
    lines = []
    for it, r in h["iterations"].items():
        top = str(r["top_layer"])
        others = [m for m in r["metrics"] if m not in ("phone_acc", "input_r2")]
        lines += [f"### {it}", "", "| updates | AE index | top: phone acc | top: input R² | " +
                  " | ".join(f"top: {m}" for m in others) + " |", "|---:|---:|---:|---:|" + "---:|" * len(others)]
        for u, c in r["curves"].items():
            t = c["layers"][top]
            extra = [fmt(t[m], 3) for m in others]
            lines.append(f"| {u} | {fmt(c['autoencoder_index'], 3)} | {fmt(t['phone_acc'], 3) if 'phone_acc' in t else '-'} | "
                         f"{fmt(t['input_r2'], 3)} | " + " | ".join(extra) + (" |" if extra else ""))
        turn = (f"falls then climbs back (each > {DRIFT_MARGIN}) in every seed" if r["drifts"]
                else f"no: not a fall then a climb (each > {DRIFT_MARGIN}) in every seed")
        lines += ["", f"- over updates, top layer (L{top}) input R²: first checkpoint minus lowest "
                      f"{fmt(r['top_input_r2_dip'])}, end minus lowest {fmt(r['top_input_r2_rise'])} (lowest at "
                      f"updates {r['top_input_r2_min_at']}): **{turn}**"]
        if r["depth_input_r2_dip"] is not None:
            turn = ("the top turns back toward the input in every seed" if r["top_turns_back"]
                    else f"no: not a dip through the middle then a climb at the top (each > {DRIFT_MARGIN}) in "
                         "every seed")
            lines += [f"- over depth at {r['updates'][-1]} updates, transformer layer 1 minus the lowest one "
                      f"{fmt(r['depth_input_r2_dip'])}, top minus the lowest {fmt(r['depth_input_r2_rise'])} "
                      f"(lowest, per seed: layers {r['depth_input_r2_min_layer']}): **{turn}**"]
        lines.append("")
    return lines


def plots(h: dict, out_dir: str) -> list[str]:
    its = list(h["iterations"].values())
    metrics = list(its[0]["metrics"])
    fig, axes = panels(len(metrics) + 1)
    cmap = plt.get_cmap("viridis", max(len(its[0]["curves"][str(its[0]["updates"][-1])]["layers"]), 2))
    for ax, metric in zip(axes, metrics):
        for r in its:
            last = r["curves"][str(r["updates"][-1])]["layers"]
            for i, lay in enumerate(last):
                steps = [r["curves"][str(u)]["step"] for u in r["updates"]]
                bars(ax, steps, [r["curves"][str(u)]["layers"][lay][metric] for u in r["updates"]], color=cmap(i),
                     label=f"L{lay}" if r is its[0] else None)
            ax.axvline(r["curves"][str(r["updates"][0])]["step"] - r["updates"][0], color="grey", ls="--", lw=0.8)
        ax.set(title=metric, xlabel="updates (iterations end to end)")
    ax = axes[-1]
    for r in its:
        bars(ax, [r["curves"][str(u)]["step"] for u in r["updates"]],
             [r["curves"][str(u)]["autoencoder_index"] for u in r["updates"]], color="C3")
    ax.set(title="autoencoder index", xlabel="updates (iterations end to end)")
    axes[0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return [save_figure(fig, os.path.join(out_dir, "h2_over_updates.png"))]


def verdict(h: dict) -> list[str]:
    lines = []
    for it, r in h["iterations"].items():
        turn = "n/a (no middle layer)" if r["depth_input_r2_dip"] is None else "yes" if r["top_turns_back"] else "no"
        lines.append(f"H2 {it}: top layer input R2 over updates falls {r['top_input_r2_dip']['mean']:.4f} "
                     f"then climbs back {r['top_input_r2_rise']['mean']:.4f} ({'both' if r['drifts'] else 'not both'}"
                     f" > {DRIFT_MARGIN} in every seed); turns back toward the input at the top of the stack: {turn}")
    return lines
