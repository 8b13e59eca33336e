"""H0, the positive controls: does the instrument see an autoencoder top layer when there is one?

Two models built to be the extremes, each H1's iteration 1 (from scratch, the same updates and
training) with one change, against H1's iteration 1 itself (``mfcc``, the reference arm):

- ``autoencoder``: the top layer regresses the input's MFCC frames (``model.reconstruct_layer``), the
  cluster prediction moved below it: input-like at the top by construction;
- ``phones``: trained on the corpus's own frame phones (``{source: phones}``): the most phonetic
  targets masked prediction can have.

The instrument passes when, in every seed, the top layer's input R² ranks autoencoder > mfcc >
phones, its phone accuracy phones > mfcc > autoencoder, and the autoencoder index (the top's
phonetic loss and input gain against the model's own layers, ``analysis/layer_probe.py``: not a
comparison of what the models learned) autoencoder > mfcc > phones; the autoencoder-shape
verdicts (a fall then a climb of the input R², over depth or over updates, beyond the seeds'
spread: ``summary.turn_back``) fire on the autoencoder and not on the phones model; and fine-tuning the
autoencoder with its top layers reset beats fine-tuning every layer in every seed.
"""
from __future__ import annotations

import os

from ..analysis.plots import panels, save_figure
from ..runner.configs import override_key
from . import arms, downstream
from .plots import bars
from .config import schedule_name
from .records import StudyError
from .summary import fmt, last_probe, paired, pct, stat, turn_back

TITLE = "positive controls: would the probes and the fine-tuning see an autoencoder top layer?"
ARMS = True
ROLES = {"autoencoder": "top layer reconstructs the input", "phones": "oracle phone targets"}
REFERENCE = "mfcc"


def reference(h1) -> str:
    return REFERENCE


def _training(s, it) -> dict:
    """What a control shares with H1's iteration 1: all but its heads and targets."""
    return {"train_config": (s.train_config_dir, s.train_config_name),
            "overrides": arms.training_overrides(s, it, arms.MODEL_HEAD_KEYS), "init": it.init,
            "reset_top_layers": it.reset_top_layers, "depth": it.depth}


def _check_arm(plan, spec: str, what: str):
    h1, ref = plan.h1, plan.h1.iterations[0]
    s = plan.load(spec, what)
    role = what.rsplit(".", 1)[1]
    if len(s.iterations) != 1:
        raise StudyError(f"{s.path}: {what}: a control is one iteration (H1's first, changed), got "
                         f"{len(s.iterations)}")
    it = s.iterations[0]
    plan.same_k(s, what)
    if it.max_update != ref.max_update:
        raise StudyError(f"{s.path}: {what}: {it.max_update} updates; the controls compare at H1's iteration-1 "
                         f"budget ({ref.max_update})")
    arms.same_as_h1(s, f"{what}: {it.name}", _training(s, it), _training(h1, ref))
    keys = {override_key(o): o.split("=", 1)[-1] for o in [*s.overrides, *it.overrides]}
    if role == "autoencoder" and keys.get("model.reconstruct_layer") != str(it.depth):
        raise StudyError(f"{s.path}: {what}: the autoencoder control's top layer ({it.depth}) reconstructs the "
                         f"input: set +model.reconstruct_layer={it.depth} (docs/layer_targets.md)")
    if role == "phones" and [t.source for t in it.targets] != ["phones"]:
        raise StudyError(f"{s.path}: {what}: the phones control trains on the corpus's phones alone "
                         "(targets: [{source: phones}])")
    return s


def check(plan) -> None:
    study = plan.study
    arms_given = set(study.schedules["H0"])
    if arms_given != set(ROLES):
        raise StudyError(f"{study.path}: schedules.H0: the controls are exactly "
                         + ", ".join(f"{a} ({r})" for a, r in ROLES.items()) + f"; got {sorted(arms_given)}")
    arms.check_arms(plan, "H0", REFERENCE, _check_arm)
    for spec in study.schedules["H0"].values():  # probed over updates: study-pack carries their checkpoints
        plan.probed_runs.append(os.path.join("runs", schedule_name(spec)))
    depth = plan.h1.iterations[0].depth
    plan.finetunes(study.finetune.ks, [depth])


def measure(seed) -> dict:
    """Every checkpoint of each control probed; each final model measured downstream three ways
    (``downstream.py``): the autoencoder fine-tuned on letters with each k of the study's
    ``finetune.ks`` (the reset check is its), the reference and the phones model with k = 0 (the
    reference's is H3's, whose sweep goes on to the other ks when H3 runs); all three fine-tuned on
    phones (k = 0) and given to the frozen weighted-sum phone recogniser."""
    ks = seed.study.finetune.ks
    first = seed.h1_first()
    runs = {REFERENCE: (seed.h1_name, first, seed.probe_h1(first, every_checkpoint=True))}
    for arm, spec in seed.study.schedules["H0"].items():
        run, records = seed.run(spec)
        runs[arm] = (run, records[-1], seed.probe_every_checkpoint(run, records[-1]))
    out = {}
    for arm, (run, r, probes) in runs.items():
        out[arm] = {"run": run, "updates": r["updates"], "probes": probes,
                    **seed.downstream(run, r["iteration"], r["checkpoint"], ks if arm == "autoencoder" else [0])}
    return {"H0": out}


def _downstream(per_seed: list[dict], judge: str) -> dict:
    """Every downstream measure's power: the measure with the largest autoencoder effect in spreads
    of the reference (the effect the instrument exists for) is the one to judge by."""
    measures = downstream.compare({arm: [s["H0"][arm] for s in per_seed] for arm in per_seed[0]["H0"]}, REFERENCE,
                                  judge)
    ratios = {n: r["effects"]["autoencoder"]["in_spreads"] for n, r in measures.items()}
    known = {n: v for n, v in ratios.items() if v is not None}
    chosen = max(known, key=known.get) if known else None
    return {"measures": measures, "chosen": chosen, "goal": downstream.POWER_GOAL,
            "meets_goal": bool(chosen) and known[chosen] >= downstream.POWER_GOAL}


def _top(probe: dict) -> str:
    return max(probe["layers"], key=int)


def _arm_summary(a: list[dict], judge: str) -> dict:
    """One control over seeds: its top layer at the end, every layer's input R² and phone accuracy
    at the end, the top layer's input R² over updates, the two shape verdicts, its fine-tunings."""
    ends = [last_probe(x["probes"]) for x in a]
    top = _top(ends[0])
    layers = sorted(ends[0]["layers"], key=int)
    middle = [lay for lay in layers if 0 < int(lay) < int(top)]
    common = sorted(set.intersection(*(set(map(int, x["probes"])) for x in a)))
    over_updates = turn_back([[x["probes"][str(u)]["layers"][top]["input_r2"] for u in common] for x in a])
    over_depth = turn_back([[e["layers"][lay]["input_r2"] for lay in [*middle, top]] for e in ends]) \
        if middle else None
    ft = {k: {m: stat(x["finetune"][k][m] for x in a) for m in ("wer", "cer")}
          for k in sorted(a[0]["finetune"], key=int)}
    out = {"run": a[0]["run"], "updates": [x["updates"] for x in a], "top_layer": int(top),
           "top_input_r2": stat(e["layers"][top]["input_r2"] for e in ends),
           "top_phone_acc": stat(e["layers"][top]["phone_acc"] for e in ends),
           "autoencoder_index": stat(e["autoencoder_index"] for e in ends),
           "by_layer": {lay: {m: stat(e["layers"][lay][m] for e in ends) for m in ("input_r2", "phone_acc")}
                        for lay in layers},
           "checkpoints": common,
           "top_input_r2_over_updates": [stat(x["probes"][str(u)]["layers"][top]["input_r2"] for x in a)
                                         for u in common],
           "turn_back_over_updates": over_updates, "turn_back_over_depth": over_depth,
           "turns_back": over_updates["fires"] or bool(over_depth and over_depth["fires"]),
           "finetune": ft}
    resets = [k for k in ft if k != "0"]
    if resets:
        best = min(resets, key=lambda k: ft[k][judge]["mean"])
        diff = paired([x["finetune"][best][judge] for x in a], [x["finetune"]["0"][judge] for x in a])
        out.update(best_reset_k=int(best), reset_minus_k0=diff, reset_helps=max(diff["values"]) < 0)
    return out


def _ranks(per_seed_values: dict[str, list[float]], order: list[str]) -> bool:
    """``order`` (highest first) holds in every seed."""
    return all(all(a > b for a, b in zip(vals, vals[1:]))
               for vals in zip(*(per_seed_values[arm] for arm in order)))


def summarise(per_seed: list[dict], study) -> dict:
    judge = study.finetune.judge
    out = {"reference": REFERENCE, "judge": judge, "split": study.finetune.split, "arms": {}}
    for arm in per_seed[0]["H0"]:
        out["arms"][arm] = _arm_summary([s["H0"][arm] for s in per_seed], judge)
    a = out["arms"]
    r2 = {arm: a[arm]["top_input_r2"]["values"] for arm in a}
    acc = {arm: a[arm]["top_phone_acc"]["values"] for arm in a}
    index = {arm: a[arm]["autoencoder_index"]["values"] for arm in a}
    checks = {
        "input_r2_autoencoder_mfcc_phones": _ranks(r2, ["autoencoder", REFERENCE, "phones"]),
        "phone_acc_phones_mfcc_autoencoder": _ranks(acc, ["phones", REFERENCE, "autoencoder"]),
        "index_autoencoder_mfcc_phones": _ranks(index, ["autoencoder", REFERENCE, "phones"]),
        "shape_fires_on_autoencoder": a["autoencoder"]["turns_back"],
        "shape_silent_on_phones": not a["phones"]["turns_back"],
        "reset_helps_autoencoder": bool(a["autoencoder"].get("reset_helps")),
    }
    return {**out, "checks": checks, "passes": all(checks.values()), "downstream": _downstream(per_seed, judge)}


CHECK_TEXT = {
    "input_r2_autoencoder_mfcc_phones": "top-layer input R²: autoencoder > mfcc > phones in every seed",
    "phone_acc_phones_mfcc_autoencoder": "top-layer phone accuracy: phones > mfcc > autoencoder in every seed",
    "index_autoencoder_mfcc_phones": "autoencoder index (each model against its own layers): autoencoder > mfcc > "
                                     "phones in every seed",
    "shape_fires_on_autoencoder": "the autoencoder-shape verdict fires on the autoencoder (over depth or updates)",
    "shape_silent_on_phones": "... and not on the phones model",
    "reset_helps_autoencoder": "fine-tuning the autoencoder with its top layers reset beats every layer, every seed",
}


def _shape(t: dict | None) -> str:
    if t is None:
        return "-"
    return f"{t['dip']['mean']:.3f} / {t['rise']['mean']:.3f} (> {t['margin']:.3f}: {'yes' if t['fires'] else 'no'})"


def markdown(h: dict, seeds: int) -> list[str]:
    j = h["judge"].upper()
    lines = ["Each control is H1's iteration 1 with one change (mfcc: H1's iteration 1 itself); the top layer's "
             "probes at the last checkpoint, mean ± std over seeds. Shape: fall / climb of the input R² (over the "
             "transformer layers at the end; over the top layer's checkpoints), against the margin (the seeds' "
             f"spread, at least the floor); {j} on the {h['split']} split after fine-tuning.", "",
             f"| control | top input R² | top phone acc | AE index | shape over depth | shape over updates | "
             f"{j} k=0 | best reset: k, {j} - (k=0) |", "|---|---:|---:|---:|---|---|---:|---|"]
    for arm, r in h["arms"].items():
        reset = f"{r['best_reset_k']}, {pct(r['reset_minus_k0'])}" if "best_reset_k" in r else "-"
        lines.append(f"| {arm} | {fmt(r['top_input_r2'], 3)} | {fmt(r['top_phone_acc'], 3)} | "
                     f"{fmt(r['autoencoder_index'], 3)} | {_shape(r['turn_back_over_depth'])} | "
                     f"{_shape(r['turn_back_over_updates'])} | {pct(r['finetune']['0'][h['judge']])} | {reset} |")
    lines += [""] + [f"- {CHECK_TEXT[c]}: **{'yes' if ok else 'no'}**" for c, ok in h["checks"].items()]
    lines += ["", f"The instrument {'passes' if h['passes'] else 'does not pass'} the controls.", ""]
    d = h["downstream"]
    arms = list(h["arms"])
    lines += ["Downstream measures and their power: each arm's value (mean ± std over seeds), the reference's "
              "seed-to-seed spread (std), and each control's paired difference to the reference, in spreads "
              f"(the goal: the autoencoder control's effect >= {d['goal']:g} spreads).", "",
              *downstream.table(d["measures"], arms, h["reference"])]
    lines += ["", f"- the measure with the most power: **{d['chosen']}** "
                  f"({'meets' if d['meets_goal'] else 'short of'} the goal of {d['goal']:g} spreads)", ""]
    return lines


def plots(h: dict, out_dir: str) -> list[str]:
    """Input R² and phone accuracy by layer at the end, and the top layer's input R² over updates."""
    fig, axes = panels(3)
    for i, (arm, r) in enumerate(h["arms"].items()):
        layers = sorted(r["by_layer"], key=int)
        for ax, m in zip(axes, ("input_r2", "phone_acc")):
            bars(ax, [int(lay) for lay in layers], [r["by_layer"][lay][m] for lay in layers], color=f"C{i}",
                 label=arm)
        bars(axes[2], r["checkpoints"], r["top_input_r2_over_updates"], color=f"C{i}", label=arm)
    axes[0].set(title="input R² by layer (end)", xlabel="layer")
    axes[1].set(title="phone accuracy by layer (end)", xlabel="layer")
    axes[2].set(title="top layer input R² over updates", xlabel="updates")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return [save_figure(fig, os.path.join(out_dir, "h0_controls.png"))]


def verdict(h: dict) -> list[str]:
    a = h["arms"]
    return ["H0 top layer input R2 / phone acc: " + ", ".join(
        f"{arm} {r['top_input_r2']['mean']:.3f} / {r['top_phone_acc']['mean']:.3f}" for arm, r in a.items()) +
        f"; controls {'pass' if h['passes'] else 'fail'} (" +
        ", ".join(f"{c} {'yes' if ok else 'no'}" for c, ok in h["checks"].items()) + ")",
        f"H0 downstream: the most power in {h['downstream']['chosen']} (" + ", ".join(
            f"{n} {r['effects']['autoencoder']['in_spreads']:.1f}" if r["effects"]["autoencoder"]["in_spreads"] is not None
            else f"{n} -" for n, r in h["downstream"]["measures"].items()) + " spreads: autoencoder - mfcc)"]
