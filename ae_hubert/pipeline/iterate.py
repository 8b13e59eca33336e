"""``ae-hubert iterate``: HuBERT's loop, driven by a schedule, resumable at any point.

Per iteration: [choose the layer] -> dump features -> k-means -> labels (sidecars, each a stage
whose marker is written only after its outputs are complete) -> [continue-init] -> pretraining
through the stock ``fairseq-hydra-train`` (which resumes from ``checkpoint_last.pt`` by itself) ->
a JSON record. ``--dry-run`` prints the equivalent commands and runs nothing.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from typing import Callable

from ..common.atomic import write_text_atomic
from .schedule import Iteration, Schedule, Target, load_schedule
from .stages import Stages
from .train import final_stats, run_training, train_command

SPLITS = ("train", "valid")


class _Plan:
    """Runs stages, or (dry run) prints the equivalent commands."""

    def __init__(self, work_dir: str, dry_run: bool, echo: Callable[[str], None]):
        self.dry_run = dry_run
        self.echo = echo
        self.stages = None if dry_run else Stages(work_dir, echo)

    def run(self, name: str, argv: list[str], fn: Callable, cwd: str | None = None):
        if self.dry_run:
            line = " ".join(shlex.quote(a) for a in argv)
            self.echo(f"# {name}\n" + (f"cd {shlex.quote(cwd)} && {line}" if cwd else line))
            return None
        return self.stages.run(name, fn)

    def seconds(self, name: str) -> float:
        return (self.stages.seconds(name) or 0.0) if self.stages else 0.0


def _sidecars(plan: _Plan, s: Schedule, it: Iteration, t: Target, d: str, prev_ckpt: str | None,
              data: str) -> dict:
    from ..clustering.kmeans import learn_kmeans
    from ..clustering.label import dump_labels
    from ..clustering.layer_choice import choose_layer
    from ..features.dump import dump_hubert, dump_mfcc

    info: dict = {"name": t.name, "source": t.source, "k": t.k, "rate": t.rate}
    stage_names = []
    layer = t.layer
    if layer == "auto":
        name = f"{it.name}.{t.name}.choose_layer"
        stage_names.append(name)
        choice = plan.run(name, ["ae-hubert", "choose-layer", "--ckpt", prev_ckpt, "--data", data, "--split", "valid",
                                 "--k", str(t.k), "--candidates", ",".join(map(str, t.candidates)),
                                 "--seed", str(s.seed)],
                          lambda: choose_layer(prev_ckpt, data, "valid", t.candidates, t.k, s.seed))
        info["layer_choice"] = choice
        layer = choice["chosen"] if choice else "<auto>"
    info["layer"] = layer
    feat = os.path.join(d, f"feat_{t.name}")
    km = os.path.join(d, f"{t.name}.kmeans.bin")
    labels = os.path.join(d, "labels")

    def dump():
        for split in SPLITS:
            for rank in range(s.nshard):
                if t.source == "mfcc":
                    dump_mfcc(data, split, feat, s.nshard, rank)
                else:
                    dump_hubert(data, split, prev_ckpt, layer, feat, s.nshard, rank)
        return {"feat_dir": feat}

    kind = ["mfcc"] if t.source == "mfcc" else ["hubert", "--ckpt", str(prev_ckpt), "--layer", str(layer)]
    name = f"{it.name}.{t.name}.dump"
    stage_names.append(name)
    plan.run(name, ["ae-hubert", "dump", *kind, "--tsv-dir", data, "--split", "{train,valid}", "--out-dir", feat,
                    "--nshard", str(s.nshard), "--rank", "0" if s.nshard == 1 else f"{{0..{s.nshard - 1}}}"], dump)
    name = f"{it.name}.{t.name}.kmeans"
    stage_names.append(name)
    plan.run(name, ["ae-hubert", "kmeans", "--feat-dir", feat, "--split", "train", "--nshard", str(s.nshard),
                    "--k", str(t.k), "--out", km, "--percent", str(t.percent), "--seed", str(s.seed),
                    *(["--streamed"] if s.kmeans_streamed else [])],
             lambda: {"inertia": float(learn_kmeans(feat, "train", s.nshard, t.k, km, t.percent, s.seed,
                                                    s.kmeans_max_iter, s.kmeans_streamed).inertia_)})

    def label():
        for split in SPLITS:
            dump_labels(feat, split, s.nshard, km, labels, name=t.name)
        if not s.keep_features:
            shutil.rmtree(feat, ignore_errors=True)
        return {"label_dir": labels}

    name = f"{it.name}.{t.name}.labels"
    stage_names.append(name)
    plan.run(name, ["ae-hubert", "label", "--feat-dir", feat, "--split", "{train,valid}", "--nshard", str(s.nshard),
                    "--km", km, "--out-dir", labels, "--name", t.name], label)
    info["seconds"] = round(sum(plan.seconds(n) for n in stage_names), 2)
    info["kmeans"] = km
    return info


def _quality(data: str, labels: str, t: Target) -> dict:
    from ..clustering.quality import label_quality

    out = {}
    for split in SPLITS:
        phn = os.path.join(data, f"{split}.phn")
        if os.path.isfile(phn):
            q = label_quality(os.path.join(labels, f"{split}.{t.name}"), phn, km_rate=t.rate, phn_rate=50)
            out[split] = {k: q[k] for k in ("pnmi", "phone_purity", "cluster_purity")}
    return out


def iterate(schedule: str, work_dir: str, data: str | None = None, overrides: list[str] | None = None,
            dry_run: bool = False, echo: Callable[[str], None] = print) -> list[dict]:
    s = load_schedule(schedule, data, overrides)  # everything is validated before any work
    data = os.path.abspath(s.data)
    work_dir = os.path.abspath(work_dir)
    plan = _Plan(work_dir, dry_run, echo)
    prev_ckpt = os.path.abspath(s.start_from) if s.start_from else None
    records = []
    for it in s.iterations:
        t0 = time.time()
        d = os.path.join(work_dir, it.name)
        labels = os.path.join(d, "labels")
        targets = [_sidecars(plan, s, it, t, d, prev_ckpt, data) for t in it.targets]
        extra = []
        if it.init == "continue":
            from .continue_init import model_overrides, prepare_continue_init

            init = os.path.join(d, "init.pt")
            names = [t.name for t in it.targets]
            model = model_overrides([*s.overrides, *it.overrides, *s.cli_overrides])
            plan.run(f"{it.name}.init", ["ae-hubert", "init-continue", "--prev", prev_ckpt, "--label-dir", labels,
                                         "--labels", ",".join(names), "--reset-top-layers", str(it.reset_top_layers),
                                         "--out", init, *[f"model.{k}={v}" for k, v in model.items()]],
                     lambda: prepare_continue_init(prev_ckpt, labels, names, it.reset_top_layers, init, s.seed, model))
            extra.append(f"checkpoint.finetune_from_model={init}")
        ckpt_dir = os.path.join(d, "checkpoints")
        cmd = train_command(s.train_config_dir, s.train_config_name, [
            f"task.data={data}", f"task.label_dir={labels}", f"task.labels=[{','.join(t.name for t in it.targets)}]",
            f"task.label_rate={it.label_rate:g}", f"checkpoint.save_dir={ckpt_dir}",
            f"optimization.max_update={it.max_update}", f"common.seed={s.seed}", *extra,
            *s.overrides, *it.overrides, *s.cli_overrides])
        stats = plan.run(f"{it.name}.train", cmd, lambda: final_stats(run_training(cmd, d, save_dir=ckpt_dir)), cwd=d)
        ckpt = os.path.join(ckpt_dir, "checkpoint_last.pt")
        if not dry_run:
            record = {
                "schedule": s.name, "iteration": it.name, "init": it.init, "reset_top_layers": it.reset_top_layers,
                "label_rate": it.label_rate, "max_update": it.max_update,
                "targets": [dict(info, quality=_quality(data, labels, t)) for info, t in zip(targets, it.targets)],
                "train": stats.get("train", {}), "valid": stats.get("valid", {}),
                "updates": int(stats.get("train", {}).get("num_updates", 0)),
                "train_seconds": plan.seconds(f"{it.name}.train"),
                "sidecar_seconds": round(sum(t["seconds"] for t in targets) + plan.seconds(f"{it.name}.init"), 2),
                "wall_seconds_this_run": round(time.time() - t0, 2),
                "checkpoint": ckpt, "label_dir": labels, "previous_checkpoint": prev_ckpt,
                "overrides": it.overrides + s.overrides + s.cli_overrides,
            }
            write_text_atomic(os.path.join(d, "record.json"), json.dumps(record, indent=1) + "\n")
            records.append(record)
        prev_ckpt = ckpt
    if not dry_run:
        write_text_atomic(os.path.join(work_dir, "records.json"), json.dumps(records, indent=1) + "\n")
    return records


def summary_table(records: list[dict]) -> str:
    """One line per iteration: label quality (valid, else train), updates, time."""
    head = f"{'iteration':10s} {'targets':22s} {'init':9s} {'PNMI':>6s} {'ph.pur':>7s} {'updates':>8s} " \
           f"{'valid acc':>9s} {'sidecar s':>9s} {'train s':>8s}"
    rows = [head, "-" * len(head)]
    for r in records:
        t = r["targets"][0]
        q = t["quality"].get("valid") or t["quality"].get("train") or {}
        src = "MFCC" if t["source"] == "mfcc" else f"L{t['layer']}"
        rows.append(f"{r['iteration']:10s} {src + ' K=' + str(t['k']) + (' +' if len(r['targets']) > 1 else ''):22s} "
                    f"{r['init'] + ('-' + str(r['reset_top_layers']) if r['reset_top_layers'] else ''):9s} "
                    f"{q.get('pnmi', float('nan')):6.3f} {q.get('phone_purity', float('nan')):7.3f} "
                    f"{r['updates']:8d} {r['valid'].get('correct_m_0', float('nan')):9.3f} "
                    f"{r['sidecar_seconds']:9.1f} {r['train_seconds']:8.1f}")
    tot_u = sum(r["updates"] for r in records)
    tot_s = sum(r["sidecar_seconds"] + r["train_seconds"] for r in records)
    rows.append(f"{'total':10s} {'':22s} {'':9s} {'':6s} {'':7s} {tot_u:8d} {'':9s} {'':9s} {tot_s:8.1f}")
    return "\n".join(rows)
