"""H1, HuBERT's own result: the iteration-1 model's best layer gives better clusters than MFCC (same
K, voice-disjoint valid, the layer chosen on train), and iteration 2, trained on those clusters,
beats iteration 1 in best-layer phone accuracy at equal updates."""
from __future__ import annotations

import os

from ..analysis.plots import plt, save_figure
from .plots import bars
from .summary import best_phone_acc, fmt, last_probe, stat

TITLE = "layer clusters beat MFCC clusters, and iteration 2 beats iteration 1"
ARMS = False
SCHEDULE = True  # schedules.H1: the runs every hypothesis measures
MARGIN = 0.03  # the best layer's PNMI must beat MFCC's by this much on average (and in every seed)


def check(plan) -> None:
    """Nothing beyond H1's schedule, which every hypothesis's check has already read."""


def measure_first(seed) -> dict:
    first = seed.h1_first()
    cq = seed.cluster_quality(seed.h1_name, first["iteration"], first["checkpoint"])
    seed.probe_h1(first)
    return {"cluster_quality": cq}


def measure(seed) -> dict:
    seed.probe_h1(seed.h1()[1])
    return {}  # the probes of H1's runs are in every seed's record


def summarise(per_seed: list[dict], study=None) -> dict:
    cq = [s["cluster_quality"] for s in per_seed]
    layers = sorted(cq[0]["layers"], key=int)
    diffs = [c["best_minus_mfcc_pnmi"] for c in cq]
    its = list(per_seed[0]["probes"])[:2]
    best = {it: [best_phone_acc(last_probe(s["probes"][it])) for s in per_seed] for it in its}
    gain = [b2[1] - b1[1] for b1, b2 in zip(best[its[0]], best[its[1]])]
    updates = {it: [int(max(s["probes"][it], key=int)) for s in per_seed] for it in its}
    target_layer = [next((t["layer"] for t in s["records"][1]["targets"] if t["source"] == "layer"), None)
                    if len(s.get("records", [])) > 1 else None for s in per_seed]
    d, g = stat(diffs), stat(gain)
    held_pnmi = d["mean"] >= MARGIN and min(diffs) > 0
    held_acc = g["mean"] > 0 and min(gain) > 0
    return {
        "k": cq[0]["k"], "iterations": its, "updates": updates,
        "mfcc_pnmi": stat(c["mfcc"]["pnmi"] for c in cq),
        "layer_pnmi": {str(layer): stat(c["layers"][layer]["pnmi"] for c in cq) for layer in layers},
        "best_layer": [c["best_layer"] for c in cq],
        "iter2_target_layer": target_layer,
        "best_minus_mfcc_pnmi": d,
        "phone_acc": {it: {str(layer): stat(last_probe(s["probes"][it])["layers"][layer]["phone_acc"]
                                            for s in per_seed)
                           for layer in sorted(last_probe(per_seed[0]["probes"][it])["layers"], key=int)}
                      for it in its},
        "best_phone_acc": {it: stat(b[1] for b in best[it]) for it in its},
        "best_phone_acc_layer": {it: [b[0] for b in best[it]] for it in its},
        "iter2_minus_iter1_phone_acc": g,
        "held": {"pnmi": held_pnmi, "phone_acc": held_acc, "all": held_pnmi and held_acc},
    }


def markdown(h: dict, seeds: int) -> list[str]:
    it1, it2 = h["iterations"]
    lines = [f"K = {h['k']}, voice-disjoint valid, {seeds} seed(s), mean ± std (per-seed values in study.json).",
             "", "| features (iteration-1 model) | PNMI |", "|---|---:|", f"| MFCC | {fmt(h['mfcc_pnmi'])} |"]
    lines += [f"| layer {lay} | {fmt(s)} |" for lay, s in h["layer_pnmi"].items()]
    d = h["best_minus_mfcc_pnmi"]
    lines += ["", f"- best layer - MFCC: {fmt(d)} (per seed: {', '.join(f'{v:+.4f}' for v in d['values'])}; "
                  f"best layers {h['best_layer']}, picked on train; {it2} trained on layers "
                  f"{h['iter2_target_layer']}); needed: mean >= +{MARGIN} and > 0 in every seed: "
                  f"**{'held' if h['held']['pnmi'] else 'not held'}**",
              f"- best-layer phone accuracy at {h['updates'][it1][0]} updates: {it1} {fmt(h['best_phone_acc'][it1])}, "
              f"{it2} {fmt(h['best_phone_acc'][it2])}; {it2} - {it1}: {fmt(h['iter2_minus_iter1_phone_acc'])} "
              f"(per seed: {', '.join(f'{v:+.4f}' for v in h['iter2_minus_iter1_phone_acc']['values'])}): "
              f"**{'held' if h['held']['phone_acc'] else 'not held'}**", ""]
    return lines


def plots(h: dict, out_dir: str) -> list[str]:
    it1, it2 = h["iterations"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    layers = list(h["layer_pnmi"])
    bars(a, [int(x) for x in layers], [h["layer_pnmi"][x] for x in layers], label=f"{it1} layer clusters")
    m = h["mfcc_pnmi"]
    a.axhline(m["mean"], color="k", ls="--", lw=1, label="MFCC clusters")
    a.axhspan(m["mean"] - m["std"], m["mean"] + m["std"], color="k", alpha=0.1)
    a.set(xlabel="layer", ylabel=f"PNMI (K={h['k']}, valid)", title="H1: cluster quality by layer")
    a.legend(fontsize=7)
    for it in (it1, it2):
        acc = h["phone_acc"][it]
        bars(b, [int(x) for x in acc], list(acc.values()), label=f"{it} @ {h['updates'][it][0]} updates")
    b.set(xlabel="layer", ylabel="phone accuracy (linear, valid)", title="H1: phone accuracy by layer")
    b.legend(fontsize=7)
    fig.tight_layout()
    return [save_figure(fig, os.path.join(out_dir, "h1_by_layer.png"))]


def verdict(h: dict) -> list[str]:
    d = h["best_minus_mfcc_pnmi"]
    return [f"H1 best layer - MFCC PNMI: {d['mean']:+.4f} (per seed {', '.join(f'{v:+.4f}' for v in d['values'])}); "
            f"iteration 2 - 1 best-layer phone accuracy: {h['iter2_minus_iter1_phone_acc']['mean']:+.4f}: "
            f"{'held' if h['held']['all'] else 'not held'}"]
