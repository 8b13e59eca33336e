"""The downstream measures of a pretrained model, and their power to tell two models apart.

``SeedRuns.downstream`` measures a model three ways, each a resumable stage: fine-tuned on letters
(the study's ``finetune:``, every k asked for), fine-tuned on the corpus's phone sequences (k = 0;
its WER over phone tokens is the PER) and the frozen weighted-sum phone recogniser
(``analysis/phone_recognition.py``). ``MEASURES`` reads each as one number per seed, lower is
better; a new measure is one more entry here and one more stage in ``SeedRuns.downstream``.
"""
from __future__ import annotations

from .summary import paired, pct, stat

MEASURES = {  # name: (what it is, the record key SeedRuns.downstream writes, its value in a record)
    "letter_ctc": ("fine-tuned letter CTC, k = 0 ({judge})", "finetune", lambda x, judge: x["finetune"]["0"][judge]),
    "phone_ctc": ("fine-tuned phone CTC, k = 0 (PER)", "phone_ctc", lambda x, judge: x["phone_ctc"]["wer"]),
    "phone_recognition": ("frozen weighted-sum phone recogniser (PER)", "phone_recognition",
                          lambda x, judge: x["phone_recognition"]["per"]),
}
POWER_GOAL = 3.0  # a measure is trusted when an effect is at least this many seed spreads


def compare(arms: dict[str, list[dict]], reference: str, judge: str) -> dict:
    """Per measure: every arm's values over seeds (``arms``: arm -> its per-seed records, each with
    the keys ``SeedRuns.downstream`` returns), the reference's seed-to-seed spread (its std), and
    each other arm's paired difference to the reference, also in spreads. Only the measures every
    record has are compared."""
    out = {}
    for name, (what, key, read) in MEASURES.items():
        if not all(key in x for records in arms.values() for x in records):
            continue  # a measure the study does not take for these arms (``downstream:``)
        values = {arm: [read(x, judge) for x in records] for arm, records in arms.items()}
        spread = stat(values[reference])["std"]
        row = {"what": what.format(judge=judge.upper()), "arms": {arm: stat(v) for arm, v in values.items()},
               "spread": spread, "effects": {}}
        for arm, v in values.items():
            if arm != reference:
                diff = paired(v, values[reference])
                row["effects"][arm] = {**diff, "in_spreads": abs(diff["mean"]) / spread if spread > 0 else None}
        out[name] = row
    return out


def table(measures: dict, arms: list[str], reference: str) -> list[str]:
    """Markdown rows: each measure's arms (mean ± std, %), the spread, each arm minus the reference."""
    lines = ["| measure | " + " | ".join(arms) + " | spread | " +
             " | ".join(f"{a} - {reference} (spreads)" for a in arms if a != reference) + " |",
             "|---|" + "---:|" * (2 * len(arms))]
    for r in measures.values():
        effects = [f"{pct(e)} ({e['in_spreads']:.1f})" if e["in_spreads"] is not None else f"{pct(e)} (-)"
                   for e in r["effects"].values()]
        lines.append(f"| {r['what']} | " + " | ".join(pct(r["arms"][a]) for a in arms) +
                     f" | {100 * r['spread']:.2f} | " + " | ".join(effects) + " |")
    return lines
