"""H6, modified losses on the top layers: where do the input-like targets go?

H1's iteration 2 (``standard``: the chosen layer's clusters predicted by the top layer) against arms
that train the same iteration with a second head on a middle layer (``hubert_layer_targets``): the
MFCC clusters of iteration 1 predicted there while the top keeps the layer's clusters, or the
reverse (the seed paper's lever: which targets the top layer is asked to predict). Each arm starts
from the same seed's iteration-1 model (its layers clustered) with H1's iteration-2 updates; judged
by the final model's top layer (input R², phone accuracy, autoencoder index), its best-layer cluster
PNMI and the study's ``downstream:`` measures (``downstream.py``; H0 says which has the power),
every one as a paired difference to the standard arm, seed by seed.
"""
from __future__ import annotations

import os

from ..analysis.plots import panels, save_figure
from . import arms, downstream
from .records import StudyError
from .summary import best_phone_acc, best_pnmi, fmt, paired, stat

TITLE = "modified losses on the top layers: MFCC targets in the middle, or on the top"
ARMS = True
REFERENCE = "standard"
# The model-side figures each arm reports (higher input R^2 and autoencoder index: more input-like).
METRICS = {
    "top_input_r2": lambda x: x["probe"]["layers"][max(x["probe"]["layers"], key=int)]["input_r2"],
    "top_phone_acc": lambda x: x["probe"]["layers"][max(x["probe"]["layers"], key=int)]["phone_acc"],
    "autoencoder_index": lambda x: x["probe"]["autoencoder_index"],
    "best_phone_acc": lambda x: best_phone_acc(x["probe"])[1],
    "best_layer_pnmi": lambda x: best_pnmi(x["cluster_quality"]),
}


def reference(h1) -> str:
    return REFERENCE


def _training(s, it) -> dict:
    """What an arm shares with H1's iteration 2: all but its heads and its second target."""
    return {"train_config": (s.train_config_dir, s.train_config_name),
            "overrides": arms.training_overrides(s, it, arms.MODEL_HEAD_KEYS), "init": it.init,
            "reset_top_layers": it.reset_top_layers, "kmeans_max_iter": s.kmeans_max_iter, "depth": it.depth,
            "layer_target": [(t.source, t.layer, t.k) for t in it.targets if t.source == "layer"]}


def _check_arm(plan, spec: str, what: str):
    """One iteration from H1's iteration-1 model, H1's iteration-2 updates and training, the same
    layer target plus an MFCC one, both with heads (``model.layer_targets``)."""
    h1, ref = plan.h1, plan.h1.iterations[1]
    s = plan.load(spec, what, start_depth=h1.iterations[0].depth)
    plan.same_k(s, what)
    if len(s.iterations) != 1:
        raise StudyError(f"{s.path}: {what}: an H6 arm is one iteration (H1's second, changed), got "
                         f"{len(s.iterations)}")
    it = s.iterations[0]
    if it.max_update != ref.max_update:
        raise StudyError(f"{s.path}: {what}: {it.max_update} updates; H6 compares at H1's iteration-2 budget "
                         f"({ref.max_update})")
    arms.same_as_h1(s, f"{what}: {it.name}", _training(s, it), _training(h1, ref))
    if sorted(t.source for t in it.targets) != ["layer", "mfcc"]:
        raise StudyError(f"{s.path}: {what}: an H6 arm predicts the layer's clusters and MFCC clusters (targets: "
                         "a layer one and an mfcc one at rate: 50), got "
                         + ", ".join(t.source for t in it.targets))
    plan.finetunes([0], [it.depth])
    return s


def check(plan) -> None:
    plan.finetunes([0], [plan.h1.iterations[1].depth])  # the reference arm
    arms.check_arms(plan, "H6", REFERENCE, _check_arm)


def measure(seed) -> dict:
    first, second = seed.h1()[:2]

    def arm(run: str, r: dict) -> dict:
        it, ckpt = r["iteration"], r["checkpoint"]
        return {"run": run, "updates": r["updates"],
                "probe": seed.probe(run, it, r["updates"], ckpt),
                "cluster_quality": seed.cluster_quality(run, it, ckpt),
                **seed.downstream(run, it, ckpt, [0], seed.study.downstream)}

    out = {REFERENCE: arm(seed.h1_name, second)}
    for name, spec in seed.study.schedules["H6"].items():
        run, records = seed.run(spec, start_from=first["checkpoint"])
        out[name] = arm(run, records[-1])
    return {"H6": out}


def summarise(per_seed: list[dict], study) -> dict:
    judge = study.finetune.judge
    names = list(per_seed[0]["H6"])
    out = {"reference": REFERENCE, "judge": judge, "split": study.finetune.split, "arms": {}}
    for arm in names:
        records = [s["H6"][arm] for s in per_seed]
        row = {"run": records[0]["run"], "updates": [x["updates"] for x in records]}
        for m, read in METRICS.items():
            row[m] = stat(read(x) for x in records)
        out["arms"][arm] = row
    ref = out["arms"][REFERENCE]
    for arm, row in out["arms"].items():
        if arm != REFERENCE:
            row["minus_reference"] = {m: paired(row[m]["values"], ref[m]["values"]) for m in METRICS}
    out["downstream"] = downstream.compare({arm: [s["H6"][arm] for s in per_seed] for arm in names}, REFERENCE, judge)
    return out


def _every_seed(diff: dict) -> str:
    v = diff["values"]
    return "+ in every seed" if min(v) > 0 else "− in every seed" if max(v) < 0 else "mixed"


def markdown(h: dict, seeds: int) -> list[str]:
    arms_ = list(h["arms"])
    lines = ["H1's iteration 2 (standard) against the same iteration with a second head on layer 3, started from "
             "the same iteration-1 model with the same updates; the final model's figures (mean ± std over seeds) "
             "and each arm's paired difference to the standard arm.", "",
             "| figure | " + " | ".join(arms_) + " | " +
             " | ".join(f"{a} - {h['reference']}" for a in arms_ if a != h["reference"]) + " |",
             "|---|" + "---:|" * (2 * len(arms_) - 1)]
    for m in METRICS:
        diffs = [f"{fmt(r['minus_reference'][m])} ({_every_seed(r['minus_reference'][m])})"
                 for a, r in h["arms"].items() if a != h["reference"]]
        lines.append(f"| {m} | " + " | ".join(fmt(h["arms"][a][m]) for a in arms_) + " | " + " | ".join(diffs) + " |")
    lines += ["", f"Downstream ({h['split']} split), in spreads of the standard arm's seed-to-seed std:", "",
              *downstream.table(h["downstream"], arms_, h["reference"]), ""]
    return lines


def plots(h: dict, out_dir: str) -> list[str]:
    """Each figure per arm, mean ± std over seeds."""
    arms_ = list(h["arms"])
    names = [*METRICS, *h["downstream"]]
    fig, axes = panels(len(names))
    for ax, m in zip(axes, names):
        stats = [h["arms"][a][m] if m in METRICS else h["downstream"][m]["arms"][a] for a in arms_]
        ax.bar(range(len(arms_)), [s["mean"] for s in stats], yerr=[s["std"] for s in stats], capsize=4,
               color=[f"C{i}" for i in range(len(arms_))])
        ax.set_xticks(range(len(arms_)), arms_, fontsize=7, rotation=15)
        ax.set_title(m.replace("_", " "), fontsize=9)
    fig.tight_layout()
    return [save_figure(fig, os.path.join(out_dir, "h6_arms.png"))]


def verdict(h: dict) -> list[str]:
    lines = []
    for arm, r in h["arms"].items():
        if arm != h["reference"]:
            d = r["minus_reference"]
            lines.append(f"H6 {arm} - {h['reference']}: top input R2 {d['top_input_r2']['mean']:+.4f} "
                         f"({_every_seed(d['top_input_r2'])}), top phone acc {d['top_phone_acc']['mean']:+.4f} "
                         f"({_every_seed(d['top_phone_acc'])}), best-layer PNMI {d['best_layer_pnmi']['mean']:+.4f}; "
                         + ", ".join(f"{n} {100 * m['effects'][arm]['mean']:+.1f} pts"
                                     for n, m in h["downstream"].items()))
    return lines
