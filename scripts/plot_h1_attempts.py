"""Draw docs/results/h1_attempts.png from the measured figures in docs/results/h1_attempts.json: the
learning curves of the H1 attempts (the best layer's PNMI minus MFCC's over updates, the H1 line at
+0.03, and valid masked accuracy)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ae_hubert.study.h1 import MARGIN  # noqa: E402
from ae_hubert.analysis.plots import plt, save_figure  # noqa: E402


def plot_attempts(attempts: list[dict], path: str) -> str:
    """Learning curves of the H1 attempts (docs/results/h1_attempts.json): the best layer's PNMI
    minus MFCC's over updates (the H1 line at +0.03), and valid masked accuracy."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for i, t in enumerate(attempts):
        label = f"{t['name']}: {t['setting']}"
        a.plot(t["updates"], [p - t["mfcc_pnmi"] for p in t["best_pnmi"]], marker="o", color=f"C{i}", label=label)
        b.plot(t["updates"], t["valid_masked_acc"], marker="o", color=f"C{i}", label=label)
    a.axhline(0, color="k", lw=0.8)
    a.axhline(MARGIN, color="k", ls="--", lw=0.8, label=f"H1 needs +{MARGIN}")
    a.set(xlabel="updates (iteration 1)", ylabel="best layer PNMI - MFCC PNMI (K=100, valid)",
          title="H1 attempts: cluster quality", ylim=(-0.2, 0.05))
    b.set(xlabel="updates (iteration 1)", ylabel="masked prediction accuracy (valid)", title="learning")
    a.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path)


if __name__ == "__main__":
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "results")
    with open(os.path.join(here, "h1_attempts.json")) as f:
        attempts = json.load(f)["attempts"]
    print(plot_attempts(attempts, os.path.join(here, "h1_attempts.png")))
