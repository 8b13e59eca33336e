"""``ae-hubert launch``: a schedule's commands for N GPUs of one node or several nodes (SLURM).

Training runs through fairseq's own distributed settings, nothing else:
- one node, G GPUs: ``distributed_world_size=G nprocs_per_node=G``; ``fairseq-hydra-train`` spawns
  one process per GPU itself (fairseq picks a free local port);
- N nodes under SLURM: ``srun`` with one task per GPU (``--ntasks-per-node=G``),
  ``distributed_world_size=N*G`` and a fixed ``distributed_port``; fairseq reads the node list,
  ``SLURM_PROCID`` (rank) and ``SLURM_LOCALID`` (device) itself.
Sidecars shard with ``--nshard/--rank``: under SLURM a dump is an array job, one task per shard.
``--slurm DIR`` writes one sbatch script per stage and ``submit.sh``, which chains them with
``--dependency=afterok``; without it the steps are printed (the iteration driver's dry run).
Scripts are rendered from the steps of ``plan.py``, the same ones ``iterate`` executes.
"""
from __future__ import annotations

import os
import shlex

from ..common.atomic import write_text_atomic
from ..common.errors import AeHubertError
from ..runner.trainer import HYDRA_TRAIN
from .plan import Step

DEFAULT_PORT = 29671  # fairseq's Base recipe's


def distributed_overrides(nodes: int, gpus_per_node: int, port: int = DEFAULT_PORT) -> list[str]:
    if nodes < 1 or gpus_per_node < 1:
        raise AeHubertError("--nodes and --gpus-per-node must be >= 1")
    world = nodes * gpus_per_node
    if world == 1:
        return []
    out = [f"distributed_training.distributed_world_size={world}",
           f"distributed_training.nprocs_per_node={gpus_per_node}"]
    if nodes > 1:
        out.append(f"distributed_training.distributed_port={port}")
    return out


def stage_groups(steps: list[Step]) -> list[tuple[str, list[Step]]]:
    """Consecutive steps of one stage, in order: one SLURM job each."""
    groups: list[tuple[str, list[Step]]] = []
    for st in steps:
        if groups and groups[-1][0] == st.stage:
            groups[-1][1].append(st)
        else:
            groups.append((st.stage, [st]))
    return groups


def uses_model(st: Step) -> bool:
    """A sidecar that runs a HuBERT model (a layer dump, labels from the audio with a checkpoint, the
    layer choice)."""
    return (st.args[:2] == ("dump", "hubert") or (st.args[:1] == ("label",) and "--ckpt" in st.args)
            or st.args[:1] == ("choose-layer",))


def sbatch_script(stage: str, steps: list[Step], nodes: int, gpus_per_node: int, log_dir: str, time: str) -> str:
    """One stage's steps as an sbatch script. Sharded steps (``rank`` set) become an array job whose
    task r runs rank r's steps; training under several nodes runs with ``srun`` (one task per GPU)."""
    head = ["#!/bin/bash", f"#SBATCH --job-name={stage}", f"#SBATCH --time={time}"]
    ranks = sorted({st.rank for st in steps if st.rank is not None})
    head.append(f"#SBATCH --output={log_dir}/{stage}.%A_%a.log" if ranks else f"#SBATCH --output={log_dir}/{stage}.%j.log")
    train = [st for st in steps if st.tool == HYDRA_TRAIN]
    if train:
        tasks = gpus_per_node if nodes > 1 else 1  # one node: fairseq-hydra-train spawns its own processes
        head += [f"#SBATCH --nodes={nodes}", f"#SBATCH --ntasks-per-node={tasks}",
                 f"#SBATCH --gpus-per-node={gpus_per_node}", "#SBATCH --cpus-per-task=8"]
    else:
        head += ["#SBATCH --nodes=1", "#SBATCH --ntasks=1", "#SBATCH --cpus-per-task=8"]
        if any(uses_model(st) for st in steps):
            head.append("#SBATCH --gpus-per-node=1")

    def line(st: Step) -> str:
        if st.tool == HYDRA_TRAIN and nodes > 1:  # one task per GPU; fairseq reads SLURM_PROCID / SLURM_LOCALID
            return Step(st.name, st.stage, "srun", (st.tool, *st.args), st.cwd).shell()
        return st.shell()

    body = [line(st) for st in steps if st.rank is None]
    if ranks:
        head.append(f"#SBATCH --array={','.join(map(str, ranks))}")
        body.append('case "$SLURM_ARRAY_TASK_ID" in')
        for r in ranks:
            body.append(f"  {r})")
            body += [f"    {line(st)}" for st in steps if st.rank == r]
            body.append("    ;;")
        body += ['  *) echo "no shard $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;', "esac"]
    return "\n".join(head + ["set -euo pipefail", *body]) + "\n"


def write_slurm(steps: list[Step], out_dir: str, nodes: int, gpus_per_node: int,
                time: str = "72:00:00") -> list[str]:
    from ..common.atomic import ensure_writable_dir

    ensure_writable_dir(out_dir)
    logs = ensure_writable_dir(os.path.join(os.path.abspath(out_dir), "logs"))
    paths, submit = [], ["#!/bin/bash", "# submits every stage in order, each after the previous one succeeded",
                         "set -euo pipefail", "cd \"$(dirname \"$0\")\"", "dep=()"]
    for i, (stage, group) in enumerate(stage_groups(steps)):
        path = os.path.join(out_dir, f"{i:02d}_{stage}.sbatch")
        write_text_atomic(path, sbatch_script(stage, group, nodes, gpus_per_node, logs, time))
        paths.append(path)
        submit.append(f"id=$(sbatch --parsable \"${{dep[@]}}\" {shlex.quote(os.path.basename(path))})")
        submit.append('dep=(--dependency=afterok:"${id%%;*}")')
        submit.append(f"echo \"{stage}: $id\"")
    sub = os.path.join(out_dir, "submit.sh")
    write_text_atomic(sub, "\n".join(submit) + "\n")
    os.chmod(sub, 0o755)
    return [*paths, sub]
