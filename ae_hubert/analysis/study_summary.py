"""A study's measurements summarised over seeds: mean +- std, verdicts, tables and error-bar plots.

Input: one dict per seed from ``pipeline/study.py`` (cluster-quality of the iteration-1 model,
per-layer probes of checkpoints of each iteration, WER/CER after fine-tuning with k top layers reset,
and the H4/H5 arms). Output: ``study.json`` (every per-seed value
kept beside its mean and std), ``study.md`` (what held, with the numbers) and PNGs.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..common.atomic import write_text_atomic

H1_MARGIN = 0.03  # the best layer's PNMI must beat MFCC's by this much on average (and in every seed)
H2_METRICS = ("phone_acc", "input_r2", "letter_cer", "word_acc", "voice_acc", "pnmi")
# Input-R^2 changes smaller than this count as probe noise in H2's "turns back toward the input"
# verdicts. Chosen before measuring; study_cpu's three seeds then put the seed-to-seed std of a
# layer's input R^2 (200-utterance probe) at 0.014-0.031 at 500 updates, 0.008-0.017 at 1000, 0.000-0.012 later.
DRIFT_MARGIN = 0.01


def dip_then_rise(values: list[float]) -> tuple[float, float, int]:
    """(first - lowest, last - lowest, where the lowest is) of a curve: a turn back toward the input
    needs both above DRIFT_MARGIN, so a curve that only rises (lowest first) or only falls does not."""
    i = int(np.argmin(values))
    return values[0] - values[i], values[-1] - values[i], i


def stat(values) -> dict:
    """Mean and sample std (ddof 1; 0 for one seed) with the values themselves."""
    v = [float(x) for x in values]
    arr = np.asarray(v, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(v) > 1 else 0.0, "values": v}


def fmt(s: dict, digits: int = 4) -> str:
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def _last(probes: dict) -> dict:
    return probes[max(probes, key=int)]


def _best_phone_acc(probe: dict) -> tuple[int, float]:
    layer = max(probe["layers"], key=lambda lay: probe["layers"][lay].get("phone_acc", -1.0))
    return int(layer), float(probe["layers"][layer].get("phone_acc", float("nan")))


def summarise_h1(per_seed: list[dict]) -> dict:
    cq = [s["cluster_quality"] for s in per_seed]
    layers = sorted(cq[0]["layers"], key=int)
    diffs = [c["best_minus_mfcc_pnmi"] for c in cq]
    its = list(per_seed[0]["probes"])[:2]
    best = {it: [_best_phone_acc(_last(s["probes"][it])) for s in per_seed] for it in its}
    gain = [b2[1] - b1[1] for b1, b2 in zip(best[its[0]], best[its[1]])]
    updates = {it: [int(max(s["probes"][it], key=int)) for s in per_seed] for it in its}
    target_layer = [next((t["layer"] for t in s["records"][1]["targets"] if t["source"] == "layer"), None)
                    if len(s.get("records", [])) > 1 else None for s in per_seed]
    d = stat(diffs)
    g = stat(gain)
    held_pnmi = d["mean"] >= H1_MARGIN and min(diffs) > 0
    held_acc = g["mean"] > 0 and min(gain) > 0
    return {
        "k": cq[0]["k"], "iterations": its, "updates": updates,
        "mfcc_pnmi": stat(c["mfcc"]["pnmi"] for c in cq),
        "layer_pnmi": {str(layer): stat(c["layers"][layer]["pnmi"] for c in cq) for layer in layers},
        "best_layer": [c["best_layer"] for c in cq],
        "iter2_target_layer": target_layer,
        "best_minus_mfcc_pnmi": d,
        "phone_acc": {it: {str(layer): stat(_last(s["probes"][it])["layers"][layer]["phone_acc"] for s in per_seed)
                           for layer in sorted(_last(per_seed[0]["probes"][it])["layers"], key=int)} for it in its},
        "best_phone_acc": {it: stat(b[1] for b in best[it]) for it in its},
        "best_phone_acc_layer": {it: [b[0] for b in best[it]] for it in its},
        "iter2_minus_iter1_phone_acc": g,
        "held": {"pnmi": held_pnmi, "phone_acc": held_acc, "all": held_pnmi and held_acc},
    }


def summarise_h2(per_seed: list[dict]) -> dict:
    out = {"iterations": {}}
    offset = 0
    for it in per_seed[0]["probes"]:
        common = sorted(set.intersection(*(set(map(int, s["probes"][it])) for s in per_seed)))
        first = per_seed[0]["probes"][it][str(common[-1])]["layers"]
        layers = sorted(first, key=int)
        top = layers[-1]
        metrics = [m for m in H2_METRICS if m in first[top]]
        curves = {str(u): {"step": offset + u,
                           "autoencoder_index": stat(s["probes"][it][str(u)]["autoencoder_index"] for s in per_seed),
                           "layers": {lay: {m: stat(s["probes"][it][str(u)]["layers"][lay][m] for s in per_seed)
                                            for m in metrics} for lay in layers}}
                  for u in common}
        dips, rises, at, depth = [], [], [], []
        middle = [lay for lay in layers if 0 < int(lay) < int(top)]  # transformer layers below the top
        for s in per_seed:
            # over updates: the top layer's input R^2 falls after the first checkpoint, then climbs back
            dip, rise, i = dip_then_rise([s["probes"][it][str(u)]["layers"][top]["input_r2"] for u in common])
            dips.append(dip)
            rises.append(rise)
            at.append(common[i])
            # over depth, at the end: input R^2 falls through the middle layers and rises again at the top
            end = s["probes"][it][str(common[-1])]["layers"]
            if middle:
                depth.append(dip_then_rise([end[lay]["input_r2"] for lay in [*middle, top]]))
        out["iterations"][it] = {
            "updates": common, "top_layer": int(top), "metrics": metrics, "curves": curves,
            "top_input_r2_dip": stat(dips), "top_input_r2_rise": stat(rises), "top_input_r2_min_at": at,
            "drifts": all(d > DRIFT_MARGIN and r > DRIFT_MARGIN for d, r in zip(dips, rises)),
            "depth_input_r2_dip": stat(d[0] for d in depth) if depth else None,
            "depth_input_r2_rise": stat(d[1] for d in depth) if depth else None,
            "depth_input_r2_min_layer": [int(middle[d[2]]) if d[2] < len(middle) else int(top) for d in depth],
            "top_turns_back": bool(depth) and all(d > DRIFT_MARGIN and r > DRIFT_MARGIN for d, r, _ in depth)}
        offset += common[-1]
    return out


def _paired(values_a, values_b) -> dict:
    """Per-seed difference a - b, summarised."""
    return stat(a - b for a, b in zip(values_a, values_b))


def summarise_h3(per_seed: list[dict], judge: str = "wer") -> dict:
    """Each k's WER and CER over seeds; ``judge`` (the study's ``finetune.judge``) is the error
    rate the verdict compares: a reset helps when its k has the lowest mean and is below k = 0 in
    every seed."""
    out = {"judge": judge, "iterations": {}}
    for it in per_seed[0]["finetune"]:
        ks = sorted(per_seed[0]["finetune"][it], key=int)
        err = {k: [s["finetune"][it][k][judge] for s in per_seed] for k in ks}
        rows = {k: {**{m: stat(s["finetune"][it][k][m] for s in per_seed) for m in ("wer", "cer")},
                    "minus_k0": _paired(err[k], err["0"])} for k in ks}
        reset = [k for k in ks if k != "0"]
        best = min(reset, key=lambda k: rows[k][judge]["mean"]) if reset else "0"
        helps = bool(reset) and max(rows[best]["minus_k0"]["values"]) < 0
        out["iterations"][it] = {"ks": [int(k) for k in ks], "rows": rows, "best_reset_k": int(best),
                                 "reset_helps": helps}
    return out


def _best_pnmi(cq: dict) -> float:
    return float(cq["layers"][str(cq["best_layer"])]["pnmi"])


def _arms(per_seed: list[dict], h: str, metric: str, measure, judge: str) -> dict:
    """Each arm of H4/H5 over seeds: updates, targets (layer, PNMI), WER and CER, its ``metric``
    (``measure(arm_result)``), and paired per-seed differences of the metric and of the ``judge``
    error rate against the reference arm (H1's, first by construction)."""
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
            row["error_minus_reference"] = _paired(row[judge]["values"], ref[judge]["values"])
            row["metric_minus_reference"] = _paired(row[metric]["values"], ref[metric]["values"])
    return out


def summarise_h4(per_seed: list[dict], judge: str = "wer") -> dict:
    return _arms(per_seed, "H4", "best_phone_acc", lambda x: _best_phone_acc(x["probe"])[1], judge)


def summarise_h5(per_seed: list[dict], judge: str = "wer") -> dict:
    return _arms(per_seed, "H5", "best_layer_pnmi", lambda x: _best_pnmi(x["cluster_quality"]), judge)


def _all_records(per_seed: list[dict]) -> list[dict]:
    """The records of every run of every seed (H1's and the H4/H5 arms'), each once."""
    return [r for s in per_seed for run in (s["records"], *s.get("other_runs", {}).values()) for r in run]


def _finetune_seconds(per_seed: list[dict]) -> float:
    """Training time of every fine-tuning of every seed, each once (H4/H5's reference arms reuse
    H3's k = 0 fine-tuning of the same model)."""
    seen = {}
    for s in per_seed:
        for it, by_k in s.get("finetune", {}).items():
            for k, r in by_k.items():
                seen[(s["seed"], s["run"], it, k)] = r.get("train_seconds")
        for h in ("H4", "H5"):
            for arm in s.get(h, {}).values():
                seen[(s["seed"], arm["run"], arm["iteration"], "0")] = arm["finetune"].get("train_seconds")
    return sum(v for v in seen.values() if v)


def summarise(study, wanted: list[str], per_seed: list[dict]) -> dict:
    out = {"study": study.name, "config": study.path, "seeds": [s["seed"] for s in per_seed], "k": study.k,
           "measure": study.measure, "hypotheses": wanted,
           "compute": {**{f"{key}_hours": round(sum(r[f"{key}_seconds"] for r in _all_records(per_seed)) / 3600, 2)
                          for key in ("train", "sidecar")},
                       "finetune_hours": round(_finetune_seconds(per_seed) / 3600, 2)},
           "per_seed": per_seed}
    if "H1" in wanted:
        out["H1"] = summarise_h1(per_seed)
    if "H2" in wanted:
        out["H2"] = summarise_h2(per_seed)
    for h, fn in (("H3", summarise_h3), ("H4", summarise_h4), ("H5", summarise_h5)):
        if h in wanted:
            out[h] = {**fn(per_seed, study.finetune["judge"]), "split": study.finetune["split"],
                      "finetune": study.finetune["config"]}
    return out


def _h1_markdown(h: dict, n: int) -> list[str]:
    it1, it2 = h["iterations"]
    lines = ["## H1: layer clusters beat MFCC clusters, and iteration 2 beats iteration 1", "",
             f"K = {h['k']}, voice-disjoint valid, {n} seed(s), mean ± std (per-seed values in study.json).", "",
             "| features (iteration-1 model) | PNMI |", "|---|---:|", f"| MFCC | {fmt(h['mfcc_pnmi'])} |"]
    lines += [f"| layer {lay} | {fmt(s)} |" for lay, s in h["layer_pnmi"].items()]
    d = h["best_minus_mfcc_pnmi"]
    lines += ["", f"- best layer - MFCC: {fmt(d)} (per seed: {', '.join(f'{v:+.4f}' for v in d['values'])}; "
                  f"best layers {h['best_layer']}, picked on train; {it2} trained on layers "
                  f"{h['iter2_target_layer']}); needed: mean >= +{H1_MARGIN} and > 0 in every seed: "
                  f"**{'held' if h['held']['pnmi'] else 'not held'}**",
              f"- best-layer phone accuracy at {h['updates'][it1][0]} updates: {it1} {fmt(h['best_phone_acc'][it1])}, "
              f"{it2} {fmt(h['best_phone_acc'][it2])}; {it2} - {it1}: {fmt(h['iter2_minus_iter1_phone_acc'])} "
              f"(per seed: {', '.join(f'{v:+.4f}' for v in h['iter2_minus_iter1_phone_acc']['values'])}): "
              f"**{'held' if h['held']['phone_acc'] else 'not held'}**", ""]
    return lines


def _h2_markdown(h: dict) -> list[str]:
    lines = ["## H2: does the top layer drift back toward the input?", ""]
    for it, r in h["iterations"].items():
        top = str(r["top_layer"])
        lines += [f"### {it}", "", "| updates | AE index | top: phone acc | top: input R² | " +
                  " | ".join(f"top: {m}" for m in r["metrics"] if m not in ("phone_acc", "input_r2")) + " |",
                  "|---:|---:|---:|---:|" + "---:|" * len([m for m in r["metrics"] if m not in ("phone_acc", "input_r2")])]
        for u, c in r["curves"].items():
            t = c["layers"][top]
            extra = [fmt(t[m], 3) for m in r["metrics"] if m not in ("phone_acc", "input_r2")]
            lines.append(f"| {u} | {fmt(c['autoencoder_index'], 3)} | {fmt(t['phone_acc'], 3) if 'phone_acc' in t else '-'} | "
                         f"{fmt(t['input_r2'], 3)} | " + " | ".join(extra) + (" |" if extra else ""))
        turn = (f"falls then climbs back (each > {DRIFT_MARGIN}) in every seed" if r["drifts"]
                else f"no: not a fall then a climb (each > {DRIFT_MARGIN}) in every seed")
        lines += ["", f"- over updates, top layer (L{top}) input R²: first checkpoint minus lowest "
                      f"{fmt(r['top_input_r2_dip'])}, end minus lowest {fmt(r['top_input_r2_rise'])} (lowest at "
                      f"updates {r['top_input_r2_min_at']}): **{turn}**"]
        if r["depth_input_r2_dip"] is not None:
            turn = ("the top turns back toward the input in every seed" if r["top_turns_back"]
                    else f"no: not a dip through the middle then a climb at the top (each > {DRIFT_MARGIN}) in "
                         "every seed")
            lines += [f"- over depth at {r['updates'][-1]} updates, transformer layer 1 minus the lowest one "
                      f"{fmt(r['depth_input_r2_dip'])}, top minus the lowest {fmt(r['depth_input_r2_rise'])} "
                      f"(lowest, per seed: layers {r['depth_input_r2_min_layer']}): **{turn}**"]
        lines.append("")
    return lines


def _pct(s: dict) -> str:
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def _h3_markdown(h: dict) -> list[str]:
    j = h["judge"].upper()
    lines = ["## H3: reset the top k layers before fine-tuning", "",
             f"WER and CER (%) on the {h['split']} split (voices not in train) after the same fine-tuning "
             f"({os.path.basename(h['finetune'])}), mean ± std over seeds; the verdict compares {j}.", ""]
    for it, r in h["iterations"].items():
        lines += [f"### {it} model", "", f"| k reset | WER | CER | {j} - (k = 0) |", "|---:|---:|---:|---:|"]
        for k, row in r["rows"].items():
            lines.append(f"| {k} | {_pct(row['wer'])} | {_pct(row['cer'])} | {_pct(row['minus_k0'])} |")
        lines += ["", f"- lowest mean {j} with a reset: k = {r['best_reset_k']}; below fine-tuning every layer in "
                      f"every seed: **{'yes' if r['reset_helps'] else 'no'}**", ""]
    return lines


def _arms_markdown(h: dict, title: str, note: str) -> list[str]:
    metric, ref, j = h["metric"], h["reference"], h["judge"].upper()
    lines = [title, "", note, "", f"| arm | run | updates | targets: layer | targets: PNMI | {metric} | "
             f"{metric} - {ref} | {h['split']} WER % | {h['split']} CER % | {j} - {ref} |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for arm, r in h["arms"].items():
        diff, ediff = r.get("metric_minus_reference"), r.get("error_minus_reference")
        lines.append(f"| {arm} | {r['run']} | {r['updates'][0]} | {r['target_layer']} | "
                     f"{fmt(r['target_pnmi']) if r['target_pnmi'] else '-'} | {fmt(r[metric])} | "
                     f"{fmt(diff) if diff else '-'} | {_pct(r['wer'])} | {_pct(r['cer'])} | "
                     f"{_pct(ediff) if ediff else '-'} |")
    return lines + [""]


PARTIAL_DIR = "partial"  # W/partial/NAME: the summary of a call narrower than W/study.json


def _seed_span(seeds) -> str:
    """Sorted seeds with runs as ranges: ``1..3``, ``1+3``, ``1..3+5``."""
    seeds, parts = sorted(seeds), []
    for s in seeds:
        if parts and s == parts[-1][1] + 1:
            parts[-1][1] = s
        else:
            parts.append([s, s])
    return "+".join(str(a) if a == b else f"{a}..{b}" for a, b in parts)


def summary_dir(summary: dict, w: str, echo=print) -> str:
    """Where a call's summary is written: ``W``, unless ``W/study.json`` (of the same study) has a
    hypothesis or a seed this call leaves out (``--only``/``--only-seeds``), so that a narrow call
    never replaces a wider summary: such a call writes its own under ``W/partial/H1+H3.s1..3``."""
    try:
        with open(os.path.join(w, "study.json")) as f:
            old = json.load(f)
        study, hypotheses, seeds = old["study"], set(old["hypotheses"]), set(old["seeds"])
    except (OSError, ValueError, KeyError, TypeError):
        return w  # no summary yet (or not one a whole call wrote): nothing wider to keep
    if study != summary["study"]:
        echo(f"study: {w}/study.json summarised study {study!r}, not {summary['study']!r}: replaced")
        return w
    left = [*sorted(hypotheses - set(summary["hypotheses"])),
            *(f"seed {s}" for s in sorted(seeds - set(summary["seeds"])))]
    if not left:
        return w
    out = os.path.join(w, PARTIAL_DIR, "+".join(summary["hypotheses"]) + ".s" + _seed_span(summary["seeds"]))
    os.makedirs(out, exist_ok=True)
    echo(f"study: this call leaves out {', '.join(left)} of {w}/study.json, which it keeps; its summary: {out}")
    return out


def write_study(summary: dict, out_dir: str) -> list[str]:
    from .study_plots import plot_arms, plot_h1, plot_h2, plot_h3

    files = []
    if "H1" in summary:
        files += plot_h1(summary["H1"], out_dir)
    if "H2" in summary:
        files += plot_h2(summary["H2"], out_dir)
    if "H3" in summary:
        files += plot_h3(summary["H3"], out_dir)
    for h in ("H4", "H5"):
        if h in summary:
            files += plot_arms(summary[h], h, out_dir)
    n = len(summary["seeds"])
    md = [f"# Study {summary['study']}", "",
          f"Seeds {summary['seeds']}; training {summary['compute']['train_hours']} h, sidecars "
          f"{summary['compute']['sidecar_hours']} h, fine-tuning {summary['compute']['finetune_hours']} h "
          f"(as recorded by the runs; measurements not "
          "included).", ""]
    if n < 3:
        md += [f"**{n} seed(s) only**: the ± figures and the 'every seed' verdicts need at least 3 seeds "
               "(`--seeds 3`); read these as one run's numbers.", ""]
    if "H1" in summary:
        md += _h1_markdown(summary["H1"], n)
    if "H2" in summary:
        md += _h2_markdown(summary["H2"])
    if "H3" in summary:
        md += _h3_markdown(summary["H3"])
    if "H4" in summary:
        md += _arms_markdown(summary["H4"], "## H4: clustering height", "Iteration 2 trained on the clusters of "
                             "different layers of the same iteration-1 model, same updates; judged by the new model's "
                             f"best-layer phone accuracy and its {summary['H4']['judge'].upper()} after "
                             "fine-tuning every layer.")
    if "H5" in summary:
        md += _arms_markdown(summary["H5"], "## H5: iteration structure", "The standard recipe (H1's runs) against "
                             "other schedules at the same total updates or half; judged by the final model's "
                             f"best-layer cluster PNMI (the labels it would give) and its "
                             f"{summary['H5']['judge'].upper()} after fine-tuning.")
    md += ["## Plots", ""] + [f"![{os.path.basename(f)}]({os.path.basename(f)})" for f in files]
    write_text_atomic(os.path.join(out_dir, "study.md"), "\n".join(md) + "\n")
    write_text_atomic(os.path.join(out_dir, "study.json"), json.dumps(summary, indent=1) + "\n")
    return [os.path.join(out_dir, "study.json"), os.path.join(out_dir, "study.md"), *files]
