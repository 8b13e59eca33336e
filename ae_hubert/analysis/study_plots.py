"""The study's plots: every point a mean over seeds with its std as an error bar."""
from __future__ import annotations

import os

from .plots import _panels, plt, save_figure


def _bars(ax, xs, stats, **kw):
    ax.errorbar(xs, [s["mean"] for s in stats], yerr=[s["std"] for s in stats], capsize=3, marker="o", ms=3, **kw)


def plot_h1(h: dict, out_dir: str) -> list[str]:
    it1, it2 = h["iterations"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    layers = list(h["layer_pnmi"])
    _bars(a, [int(x) for x in layers], [h["layer_pnmi"][x] for x in layers], label=f"{it1} layer clusters")
    m = h["mfcc_pnmi"]
    a.axhline(m["mean"], color="k", ls="--", lw=1, label="MFCC clusters")
    a.axhspan(m["mean"] - m["std"], m["mean"] + m["std"], color="k", alpha=0.1)
    a.set(xlabel="layer", ylabel=f"PNMI (K={h['k']}, valid)", title="H1: cluster quality by layer")
    a.legend(fontsize=7)
    for it in (it1, it2):
        acc = h["phone_acc"][it]
        _bars(b, [int(x) for x in acc], list(acc.values()), label=f"{it} @ {h['updates'][it][0]} updates")
    b.set(xlabel="layer", ylabel="phone accuracy (linear, valid)", title="H1: phone accuracy by layer")
    b.legend(fontsize=7)
    fig.tight_layout()
    return [save_figure(fig, os.path.join(out_dir, "h1_by_layer.png"))]


def plot_h2(h: dict, out_dir: str) -> list[str]:
    its = list(h["iterations"].values())
    metrics = list(its[0]["metrics"])
    fig, axes = _panels(len(metrics) + 1)
    cmap = plt.get_cmap("viridis", max(len(its[0]["curves"][str(its[0]["updates"][-1])]["layers"]), 2))
    for ax, metric in zip(axes, metrics):
        for r in its:
            last = r["curves"][str(r["updates"][-1])]["layers"]
            for i, lay in enumerate(last):
                steps = [r["curves"][str(u)]["step"] for u in r["updates"]]
                _bars(ax, steps, [r["curves"][str(u)]["layers"][lay][metric] for u in r["updates"]], color=cmap(i),
                      label=f"L{lay}" if r is its[0] else None)
            ax.axvline(r["curves"][str(r["updates"][0])]["step"] - r["updates"][0], color="grey", ls="--", lw=0.8)
        ax.set(title=metric, xlabel="updates (iterations end to end)")
    ax = axes[-1]
    for r in its:
        _bars(ax, [r["curves"][str(u)]["step"] for u in r["updates"]],
              [r["curves"][str(u)]["autoencoder_index"] for u in r["updates"]], color="C3")
    ax.set(title="autoencoder index", xlabel="updates (iterations end to end)")
    axes[0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return [save_figure(fig, os.path.join(out_dir, "h2_over_updates.png"))]


def plot_h3(h: dict, out_dir: str) -> list[str]:
    """The judged error rate (``h["judge"]``) against k, one line per pretrained model."""
    j = h["judge"]
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    its = list(h["iterations"].items())
    for i, (it, r) in enumerate(its):
        err = [r["rows"][str(k)][j] for k in r["ks"]]
        dodge = 0.06 * (i - (len(its) - 1) / 2)  # side by side, so the error bars of one k stay apart
        _bars(ax, [k + dodge for k in r["ks"]], [{"mean": 100 * e["mean"], "std": 100 * e["std"]} for e in err],
              label=f"{it} model")
    ax.set_xticks(sorted({k for _, r in its for k in r["ks"]}))
    ax.set(xlabel="top layers reset before fine-tuning (k)", ylabel=f"{h['split']} {j.upper()} (%)",
           title="H3: reset before fine-tuning")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return [save_figure(fig, os.path.join(out_dir, f"h3_{j}_vs_k.png"))]


def plot_arms(h: dict, name: str, out_dir: str) -> list[str]:
    """H4/H5: each arm's metric and its judged error rate after fine-tuning, mean ± std over seeds."""
    arms = list(h["arms"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric, scale, label in ((axes[0], h["metric"], 1, h["metric"].replace("_", " ")),
                                     (axes[1], h["judge"], 100,
                                      f"{h['split']} {h['judge'].upper()} (%) after fine-tuning")):
        stats = [h["arms"][a][metric] for a in arms]
        ax.bar(range(len(arms)), [scale * s["mean"] for s in stats], yerr=[scale * s["std"] for s in stats],
               capsize=4, color=[f"C{i}" for i in range(len(arms))])
        ax.set_xticks(range(len(arms)), [f"{a}\n{h['arms'][a]['updates'][0]} upd" for a in arms], fontsize=7)
        ax.set(ylabel=label, title=f"{name}: {label}")
    fig.tight_layout()
    return [save_figure(fig, os.path.join(out_dir, f"{name.lower()}_arms.png"))]


def plot_attempts(attempts: list[dict], path: str) -> str:
    """Learning curves of the H1 attempts (docs/results/h1_attempts.json): the best layer's PNMI
    minus MFCC's over updates (the H1 line at +0.03), and valid masked accuracy."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for i, t in enumerate(attempts):
        label = f"{t['name']}: {t['setting']}"
        a.plot(t["updates"], [p - t["mfcc_pnmi"] for p in t["best_pnmi"]], marker="o", color=f"C{i}", label=label)
        b.plot(t["updates"], t["valid_masked_acc"], marker="o", color=f"C{i}", label=label)
    a.axhline(0, color="k", lw=0.8)
    a.axhline(0.03, color="k", ls="--", lw=0.8, label="H1 needs +0.03")
    a.set(xlabel="updates (iteration 1)", ylabel="best layer PNMI - MFCC PNMI (K=100, valid)",
          title="H1 attempts: cluster quality", ylim=(-0.2, 0.05))
    b.set(xlabel="updates (iteration 1)", ylabel="masked prediction accuracy (valid)", title="learning")
    a.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path)
