"""What the study's plots share: every point a mean over seeds with its std as an error bar."""
from __future__ import annotations


def bars(ax, xs, stats, **kw):
    ax.errorbar(xs, [s["mean"] for s in stats], yerr=[s["std"] for s in stats], capsize=3, marker="o", ms=3, **kw)
