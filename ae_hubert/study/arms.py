"""What the armed hypotheses (H4, H5) share: arms (``schedules.HN: {arm: schedule}``) compared with a
reference arm made of H1's runs, each judged by a metric of its own and by the error rate of its
final model fine-tuned with every layer; paired per-seed differences against the reference."""
from __future__ import annotations

import os
from typing import Callable

from ..pipeline.schedule import Schedule
from .config import Plan, schedule_name
from ..analysis.plots import plt, save_figure
from .records import StudyError
from .summary import fmt, paired, pct, stat


def check_arms(plan: Plan, h: str, reference: str, check_arm: Callable[[Plan, str, str], Schedule]) -> None:
    """Every arm of ``h``: named apart from the reference arm, a schedule of its own name (runs live
    under W/runs/NAME), checked by ``check_arm(plan, spec, what)``, its total updates recorded."""
    study = plan.study
    if reference in study.schedules[h]:
        raise StudyError(f"{study.path}: schedules.{h}.{reference}: that name is the reference arm (made of "
                         "H1's runs); name this arm otherwise")
    plan.references[h] = reference
    for arm, spec in study.schedules[h].items():
        what = f"schedules.{h}.{arm}"
        name = schedule_name(spec)
        if name in plan.runs:
            raise StudyError(f"{study.path}: {what}: schedule name {name!r} is also {plan.runs[name]}'s (runs are "
                             "kept under W/runs/NAME); give each a file of its own name")
        plan.runs[name] = what
        plan.updates[f"{h}.{arm}"] = check_arm(plan, spec, what).total_updates


# What an arm may change in H1's model besides its targets: the heads and their losses (the
# ``hubert_layer_targets`` model and criterion, docs/layer_targets.md); all else must be H1's.
MODEL_HEAD_KEYS = ("model._name", "criterion._name", "model.layer_targets", "model.reconstruct_layer",
                   "model.reconstruct_weight", "model.reconstruct_frames")


def training_overrides(s: Schedule, it, besides: tuple[str, ...] = ()) -> list[str]:
    """An iteration's overrides as a comparison of training sees them: without its updates and the
    keys ``besides`` (e.g. ``MODEL_HEAD_KEYS``), sorted."""
    from ..runner.configs import override_key

    return sorted(o for o in [*s.overrides, *it.overrides]
                  if override_key(o) not in ("optimization.max_update", *besides))


def same_as_h1(s: Schedule, what: str, mine: dict, h1s: dict) -> None:
    """An arm compares targets or structure: everything else must be H1's."""
    for key, value in mine.items():
        if value != h1s[key]:
            raise StudyError(f"{s.path}: {what}: {key} {value!r} differs from H1's {h1s[key]!r}; the arms "
                             "compare targets/structure, everything else must be H1's")


def summarise(per_seed: list[dict], h: str, metric: str, measure: Callable[[dict], float], study) -> dict:
    """Each arm over seeds: updates, targets (layer, PNMI), WER and CER, its ``metric``
    (``measure(arm_result)``), and paired per-seed differences of the metric and of the judged
    error rate against the reference arm (first by construction)."""
    judge = study.finetune.judge
    reference = next(iter(per_seed[0][h]))
    out = {"reference": reference, "metric": metric, "judge": judge, "arms": {}}
    for arm in per_seed[0][h]:
        a = [s[h][arm] for s in per_seed]
        pnmi = [x["target"]["pnmi"] for x in a]
        out["arms"][arm] = {"run": a[0]["run"], "updates": [x["updates"] for x in a],
                            "target_layer": [x["target"]["layer"] for x in a],
                            "target_pnmi": stat(pnmi) if None not in pnmi else None,
                            "wer": stat(x["finetune"]["wer"] for x in a), "cer": stat(x["finetune"]["cer"] for x in a),
                            metric: stat(measure(x) for x in a)}
    ref = out["arms"][reference]
    for arm, row in out["arms"].items():
        if arm != reference:
            row["error_minus_reference"] = paired(row[judge]["values"], ref[judge]["values"])
            row["metric_minus_reference"] = paired(row[metric]["values"], ref[metric]["values"])
    return {**out, "split": study.finetune.split, "finetune": study.finetune.config}


def markdown(h: dict, note: str) -> list[str]:
    metric, ref, j = h["metric"], h["reference"], h["judge"].upper()
    lines = [note, "", f"| arm | run | updates | targets: layer | targets: PNMI | {metric} | "
             f"{metric} - {ref} | {h['split']} WER % | {h['split']} CER % | {j} - {ref} |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for arm, r in h["arms"].items():
        diff, ediff = r.get("metric_minus_reference"), r.get("error_minus_reference")
        lines.append(f"| {arm} | {r['run']} | {r['updates'][0]} | {r['target_layer']} | "
                     f"{fmt(r['target_pnmi']) if r['target_pnmi'] else '-'} | {fmt(r[metric])} | "
                     f"{fmt(diff) if diff else '-'} | {pct(r['wer'])} | {pct(r['cer'])} | "
                     f"{pct(ediff) if ediff else '-'} |")
    return lines + [""]


def plots(h: dict, name: str, out_dir: str) -> list[str]:
    """Each arm's metric and its judged error rate after fine-tuning, mean ± std over seeds."""
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


def verdict(h: dict, name: str) -> list[str]:
    j = h["judge"]
    return [f"{name}: " + ", ".join(f"{arm} {a[h['metric']]['mean']:.4f} / {j.upper()} {100 * a[j]['mean']:.1f}%"
                                    for arm, a in h["arms"].items()) + f" ({h['metric']} / {h['split']} {j.upper()})"]
