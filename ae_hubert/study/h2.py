"""H2, the autoencoder behaviour: does the top layer drift back toward the input? Every checkpoint
of H1's runs probed per layer; the verdicts look for a fall then a climb of the top layer's input
R² over updates, and for a dip through the middle layers then a climb at the top over depth."""
from __future__ import annotations

import os

from ..analysis.plots import panels, plt, save_figure
from .plots import bars
from .summary import DRIFT_FLOOR, fmt, stat, turn_back

TITLE = "does the top layer drift back toward the input?"
ARMS = False
METRICS = ("phone_acc", "input_r2", "letter_cer", "word_acc", "voice_acc", "pnmi")


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
        middle = [lay for lay in layers if 0 < int(lay) < int(top)]  # transformer layers below the top
        # over updates: the top layer's input R^2 falls after the first checkpoint, then climbs back
        updates = turn_back([[s["probes"][it][str(u)]["layers"][top]["input_r2"] for u in common] for s in per_seed])
        # over depth, at the end: input R^2 falls through the middle layers and rises again at the top
        depth = turn_back([[s["probes"][it][str(common[-1])]["layers"][lay]["input_r2"] for lay in [*middle, top]]
                           for s in per_seed]) if middle else None
        out["iterations"][it] = {
            "updates": common, "top_layer": int(top), "metrics": metrics, "curves": curves,
            "top_input_r2_dip": updates["dip"], "top_input_r2_rise": updates["rise"],
            "top_input_r2_min_at": [common[i] for i in updates["lowest_at"]], "drift_margin": updates["margin"],
            "drifts": updates["fires"],
            "depth_input_r2_dip": depth["dip"] if depth else None,
            "depth_input_r2_rise": depth["rise"] if depth else None,
            "depth_input_r2_min_layer": [int([*middle, top][i]) for i in depth["lowest_at"]] if depth else [],
            "depth_margin": depth["margin"] if depth else None,
            "top_turns_back": bool(depth) and depth["fires"]}
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
        margin = f"{r.get('drift_margin', DRIFT_FLOOR):.4f}"
        turn = (f"falls then climbs back (each > {margin}) in every seed" if r["drifts"]
                else f"no: not a fall then a climb (each > {margin}) in every seed")
        lines += ["", f"- over updates, top layer (L{top}) input R²: first checkpoint minus lowest "
                      f"{fmt(r['top_input_r2_dip'])}, end minus lowest {fmt(r['top_input_r2_rise'])} (lowest at "
                      f"updates {r['top_input_r2_min_at']}): **{turn}**"]
        if r["depth_input_r2_dip"] is not None:
            turn = ("the top turns back toward the input in every seed" if r["top_turns_back"]
                    else f"no: not a dip through the middle then a climb at the top (each > "
                         f"{r.get('depth_margin') or DRIFT_FLOOR:.4f}) in every seed")
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
                     f" > {r.get('drift_margin', DRIFT_FLOOR):.4f} in every seed); turns back toward the input at the top of the stack: {turn}")
    return lines
