"""H3, the reset: WER and CER on the voice-disjoint test split after fine-tuning with the top k
layers reset, for each k of the study's ``finetune.ks``, on the iteration-1 and iteration-2 models
of H1's runs. A reset helps when its k has the lowest mean judged error rate (``finetune.judge``)
and is below k = 0 in every seed."""
from __future__ import annotations

import os

from ..analysis.plots import plt, save_figure
from .plots import bars
from .summary import paired, pct, stat

TITLE = "reset the top k layers before fine-tuning"
ARMS = False


def check(plan) -> None:
    plan.finetunes(plan.study.finetune.ks, [it.depth for it in plan.h1.iterations[:2]])


def measure(seed) -> dict:
    run, ks = seed.h1_name, seed.study.finetune.ks
    return {"finetune": {r["iteration"]: seed.finetune(run, r["iteration"], r["checkpoint"], ks)
                         for r in seed.h1()[:2]}}


def summarise(per_seed: list[dict], study=None, judge: str | None = None) -> dict:
    judge = judge or (study.finetune.judge if study is not None else "wer")
    out = {"judge": judge, "iterations": {}}
    for it in per_seed[0]["finetune"]:
        ks = sorted(per_seed[0]["finetune"][it], key=int)
        err = {k: [s["finetune"][it][k][judge] for s in per_seed] for k in ks}
        rows = {k: {**{m: stat(s["finetune"][it][k][m] for s in per_seed) for m in ("wer", "cer")},
                    "minus_k0": paired(err[k], err["0"])} for k in ks}
        reset = [k for k in ks if k != "0"]
        best = min(reset, key=lambda k: rows[k][judge]["mean"]) if reset else "0"
        helps = bool(reset) and max(rows[best]["minus_k0"]["values"]) < 0
        out["iterations"][it] = {"ks": [int(k) for k in ks], "rows": rows, "best_reset_k": int(best),
                                 "reset_helps": helps}
    if study is not None:
        out.update(split=study.finetune.split, finetune=study.finetune.config)
    return out


def markdown(h: dict, seeds: int) -> list[str]:
    j = h["judge"].upper()
    lines = [f"WER and CER (%) on the {h['split']} split (voices not in train) after the same fine-tuning "
             f"({os.path.basename(h['finetune'])}), mean ± std over seeds; the verdict compares {j}.", ""]
    for it, r in h["iterations"].items():
        lines += [f"### {it} model", "", f"| k reset | WER | CER | {j} - (k = 0) |", "|---:|---:|---:|---:|"]
        for k, row in r["rows"].items():
            lines.append(f"| {k} | {pct(row['wer'])} | {pct(row['cer'])} | {pct(row['minus_k0'])} |")
        lines += ["", f"- lowest mean {j} with a reset: k = {r['best_reset_k']}; below fine-tuning every layer in "
                      f"every seed: **{'yes' if r['reset_helps'] else 'no'}**", ""]
    return lines


def plots(h: dict, out_dir: str) -> list[str]:
    """The judged error rate against k, one line per pretrained model."""
    j = h["judge"]
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    its = list(h["iterations"].items())
    for i, (it, r) in enumerate(its):
        err = [r["rows"][str(k)][j] for k in r["ks"]]
        dodge = 0.06 * (i - (len(its) - 1) / 2)  # side by side, so the error bars of one k stay apart
        bars(ax, [k + dodge for k in r["ks"]], [{"mean": 100 * e["mean"], "std": 100 * e["std"]} for e in err],
             label=f"{it} model")
    ax.set_xticks(sorted({k for _, r in its for k in r["ks"]}))
    ax.set(xlabel="top layers reset before fine-tuning (k)", ylabel=f"{h['split']} {j.upper()} (%)",
           title="H3: reset before fine-tuning")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return [save_figure(fig, os.path.join(out_dir, f"h3_{j}_vs_k.png"))]


def verdict(h: dict) -> list[str]:
    j = h["judge"]
    return [f"H3 {it}: {h['split']} {j.upper()} by k reset " + ", ".join(
        f"k={k} {100 * r['rows'][str(k)][j]['mean']:.1f}%" for k in r["ks"]) +
        f" (a reset below k=0 in every seed: {'yes' if r['reset_helps'] else 'no'})"
        for it, r in h["iterations"].items()]
