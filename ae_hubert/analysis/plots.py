"""Probe plots: a layer x checkpoint heatmap per metric, and per-layer curves per checkpoint."""
from __future__ import annotations

import os

import numpy as np

from ..common.atomic import atomic_path
from ..common.errors import AeHubertError

try:
    import matplotlib
except ImportError:  # an optional part: pip install 'ae_hubert[plots]'
    raise AeHubertError("plots need matplotlib: pip install 'ae_hubert[plots]' (or matplotlib)") from None
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig, path: str) -> str:
    """PNG written under a temporary name and renamed when complete; the figure is closed."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def panels(n: int, width: float = 3.2, height: float = 2.8):
    """A grid of ``n`` panels, at most 4 per row; returns (figure, flat list of the n axes)."""
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _int_layers(results: list[dict]) -> list[dict]:
    """Layer keys as ints (results read back from probe.json have string keys)."""
    return [{**r, "layers": {int(k): v for k, v in r["layers"].items()}} for r in results]


def checkpoint_name(r: dict) -> str:
    """``run@updates`` (e.g. ``iter2@400``), or the file name for a lone checkpoint."""
    if "run" in r:
        return f"{r['run']}@{r.get('updates', 0)}"
    return os.path.basename(r["checkpoint"])


def plot_probe_results(results: list[dict], metrics: tuple[str, ...], out_dir: str) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    results = _int_layers(results)
    names = [checkpoint_name(r) for r in results]
    layers = sorted({int(layer) for r in results for layer in r["layers"]})
    paths = []
    for metric in metrics:
        grid = np.full((len(layers), len(results)), np.nan)
        for j, r in enumerate(results):
            for layer, m in r["layers"].items():
                grid[layers.index(int(layer)), j] = m.get(metric, np.nan)
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(results), 0.5 + 0.4 * len(layers)))
        im = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis")
        ax.set_yticks(range(len(layers)), [str(layer) for layer in layers])
        ax.set_xticks(range(len(results)), names, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("layer")
        ax.set_title(metric)
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(im, ax=ax)
        paths.append(save_figure(fig, os.path.join(out_dir, f"heatmap_{metric}.png")))
    fig, axes = panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        for name, r in zip(names, results):
            ls = sorted(r["layers"], key=int)
            ax.plot([int(layer) for layer in ls], [r["layers"][layer].get(metric, np.nan) for layer in ls],
                    marker="o", label=name)
        ax.set_title(metric)
        ax.set_xlabel("layer")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    paths.append(save_figure(fig, os.path.join(out_dir, "layer_curves.png")))
    if len({r.get("step", r.get("updates")) for r in results}) > 1:
        paths.append(plot_over_updates(results, metrics, out_dir))
    return paths


def plot_over_updates(results: list[dict], metrics: tuple[str, ...], out_dir: str) -> str:
    """How each layer's metric evolves over training updates (one line per layer); runs given one after
    the other (iterations) share the axis, with a dashed line where each later run starts."""
    step = lambda r: r.get("step", r.get("updates", 0))  # noqa: E731
    ordered = sorted(_int_layers(results), key=step)
    starts = sorted({step(r) - r.get("updates", 0) for r in ordered} - {0})
    layers = sorted({int(layer) for r in ordered for layer in r["layers"]})
    fig, axes = panels(len(metrics))
    cmap = plt.get_cmap("viridis", max(len(layers), 2))
    for ax, metric in zip(axes, metrics):
        for i, layer in enumerate(layers):
            pts = [(step(r), r["layers"][layer].get(metric, np.nan)) for r in ordered if layer in r["layers"]]
            ax.plot([u for u, _ in pts], [v for _, v in pts], marker=".", color=cmap(i), label=f"L{layer}")
        for s in starts:
            ax.axvline(s, color="grey", ls="--", lw=0.8)
        ax.set_title(metric)
        ax.set_xlabel("updates (runs end to end)" if starts else "updates")
    axes[-1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return save_figure(fig, os.path.join(out_dir, "over_updates.png"))
