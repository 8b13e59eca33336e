"""H4, clustering height: H1's iteration 2 (trained on the clusters of the layer its schedule names,
``auto`` in the shipped study) against arms that train the same iteration on another layer's
clusters, started from the same iteration-1 model with the same updates; judged by the targets'
PNMI, the new model's best-layer phone accuracy and its error rate after fine-tuning (k = 0)."""
from __future__ import annotations

from . import arms
from .records import StudyError
from .summary import best_phone_acc

TITLE = "clustering height"
ARMS = True
NOTE = ("Iteration 2 trained on the clusters of different layers of the same iteration-1 model, same updates; "
        "judged by the new model's best-layer phone accuracy and its {judge} after fine-tuning every layer.")


def reference(h1) -> str:
    """H1's iteration 2 as an arm, named by how its layer is picked (``auto`` or ``L6``)."""
    layer = next((t.layer for t in h1.iterations[1].targets if t.source == "layer"), None)
    return "auto" if layer == "auto" else f"L{layer}"


def _training(s, it) -> dict:
    """What an iteration's training is besides its targets and updates (H4 compares only targets)."""
    return {"train_config": (s.train_config_dir, s.train_config_name), "overrides": arms.training_overrides(s, it),
            "init": it.init, "reset_top_layers": it.reset_top_layers, "kmeans_max_iter": s.kmeans_max_iter,
            "kmeans_percent": [t.percent for t in it.targets], "depth": it.depth}


def _check_arm(plan, spec: str, what: str):
    """An arm trains H1's iteration 2 again on other targets: started from the iteration-1 model
    (which does not exist yet: its depth is assumed), H1's iteration-2 budget, training and K."""
    h1, ref = plan.h1, plan.h1.iterations[1]
    s = plan.load(spec, what, start_depth=h1.iterations[0].depth)
    plan.same_k(s, what)
    if s.total_updates != ref.max_update:
        raise StudyError(f"{s.path}: {what}: {s.total_updates} updates; H4 compares at H1's iteration-2 budget "
                         f"({ref.max_update})")
    for it in s.iterations:
        arms.same_as_h1(s, f"{what}: {it.name}", _training(s, it), _training(h1, ref))
    plan.finetunes([0], [it.depth for it in s.iterations])
    return s


def check(plan) -> None:
    plan.finetunes([0], [plan.h1.iterations[1].depth])  # the reference arm
    arms.check_arms(plan, "H4", reference(plan.h1), _check_arm)


def measure(seed) -> dict:
    first, second = seed.h1()[:2]

    def arm(run: str, record: dict, records=None) -> dict:
        return {**seed.arm(run, record, records),
                "probe": seed.probe(run, record["iteration"], record["updates"], record["checkpoint"])}

    out = {seed.references["H4"]: arm(seed.h1_name, second)}
    for name, spec in seed.study.schedules["H4"].items():
        run, records = seed.run(spec, start_from=first["checkpoint"])
        out[name] = arm(run, records[-1], records)
    return {"H4": out}


def summarise(per_seed: list[dict], study) -> dict:
    return arms.summarise(per_seed, "H4", "best_phone_acc", lambda x: best_phone_acc(x["probe"])[1], study)


def markdown(h: dict, seeds: int) -> list[str]:
    return arms.markdown(h, NOTE.format(judge=h["judge"].upper()))


def plots(h: dict, out_dir: str) -> list[str]:
    return arms.plots(h, "H4", out_dir)


def verdict(h: dict) -> list[str]:
    return arms.verdict(h, "H4")
