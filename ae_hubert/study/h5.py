"""H5, iteration structure: H1's runs (the standard recipe) against schedules with the same total
updates or half of them; judged by the final model's best-layer cluster PNMI (the labels it would
give) and its error rate after the same fine-tuning (k = 0)."""
from __future__ import annotations

from . import arms
from .records import StudyError
from .summary import best_pnmi

TITLE = "iteration structure"
ARMS = True
NOTE = ("The standard recipe (H1's runs) against other schedules at the same total updates or half; judged by "
        "the final model's best-layer cluster PNMI (the labels it would give) and its {judge} after fine-tuning.")


def reference(h1) -> str:
    return "standard"


def _check_arm(plan, spec: str, what: str):
    """An arm has H1's training config, depth and K, and H1's total updates or half of them."""
    h1 = plan.h1
    s = plan.load(spec, what)
    plan.same_k(s, what)
    if 2 * s.total_updates != h1.total_updates and s.total_updates != h1.total_updates:
        raise StudyError(f"{s.path}: {what}: {s.total_updates} updates in all; H5 compares at H1's total "
                         f"({h1.total_updates}) or half of it")
    for it in s.iterations:
        arms.same_as_h1(s, f"{what}: {it.name}", {"train_config": (s.train_config_dir, s.train_config_name),
                                                  "depth": it.depth},
                        {"train_config": (h1.train_config_dir, h1.train_config_name), "depth": h1.iterations[0].depth})
    plan.finetunes([0], [s.iterations[-1].depth])
    return s


def check(plan) -> None:
    plan.finetunes([0], [plan.h1.iterations[-1].depth])  # the reference arm
    arms.check_arms(plan, "H5", reference(plan.h1), _check_arm)


def measure(seed) -> dict:
    def arm(run: str, records: list[dict]) -> dict:
        last = records[-1]
        return {**seed.arm(run, last, records),
                "cluster_quality": seed.cluster_quality(run, last["iteration"], last["checkpoint"])}

    out = {seed.references["H5"]: arm(seed.h1_name, seed.h1())}
    for name, spec in seed.study.schedules["H5"].items():
        out[name] = arm(*seed.run(spec))
    return {"H5": out}


def summarise(per_seed: list[dict], study) -> dict:
    return arms.summarise(per_seed, "H5", "best_layer_pnmi", lambda x: best_pnmi(x["cluster_quality"]), study)


def markdown(h: dict, seeds: int) -> list[str]:
    return arms.markdown(h, NOTE.format(judge=h["judge"].upper()))


def plots(h: dict, out_dir: str) -> list[str]:
    return arms.plots(h, "H5", out_dir)


def verdict(h: dict) -> list[str]:
    return arms.verdict(h, "H5")
