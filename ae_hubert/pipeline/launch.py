"""``ae-hubert launch``: a schedule's commands for N GPUs of one node or several nodes (SLURM).

Training runs through fairseq's own distributed settings, nothing else:
- one node, G GPUs: ``distributed_world_size=G nprocs_per_node=G``; ``fairseq-hydra-train`` spawns
  one process per GPU itself (fairseq picks a free local port);
- N nodes under SLURM: ``srun`` with one task per GPU (``--ntasks-per-node=G``),
  ``distributed_world_size=N*G`` and a fixed ``distributed_port``; fairseq reads the node list,
  ``SLURM_PROCID`` (rank) and ``SLURM_LOCALID`` (device) itself.
Sidecars shard with ``--nshard/--rank``: under SLURM a dump is an array job, one task per shard.
``--slurm DIR`` writes one sbatch script per stage and ``submit.sh``, which chains them with
``--dependency=afterok``; without it the commands are printed (the iteration driver's dry run).
"""
from __future__ import annotations

import os
import re
import shlex

from ..common.atomic import write_text_atomic

DEFAULT_PORT = 29671  # fairseq's Base recipe's


def distributed_overrides(nodes: int, gpus_per_node: int, port: int = DEFAULT_PORT) -> list[str]:
    if nodes < 1 or gpus_per_node < 1:
        raise ValueError("--nodes and --gpus-per-node must be >= 1")
    world = nodes * gpus_per_node
    if world == 1:
        return []
    out = [f"distributed_training.distributed_world_size={world}",
           f"distributed_training.nprocs_per_node={gpus_per_node}"]
    if nodes > 1:
        out.append(f"distributed_training.distributed_port={port}")
    return out


def plan_commands(schedule: str, work_dir: str, data: str | None, overrides: list[str]) -> list[tuple[str, str]]:
    """``[(stage, shell command)]`` of the driver's dry run."""
    from .iterate import iterate

    lines: list[str] = []
    iterate(schedule, work_dir, data, overrides, dry_run=True, echo=lines.append)
    stages = []
    for block in lines:
        if block.startswith("# ") and "\n" in block:
            name, cmd = block[2:].split("\n", 1)
            stages.append((name, cmd))
    return stages


_SPLITS = re.compile(r"--split '\{([\w,]+)\}'")
_RANKS = re.compile(r"--rank '\{0\.\.(\d+)\}'")


def sbatch_script(name: str, cmd: str, nodes: int, gpus_per_node: int, log_dir: str, time: str) -> str:
    head = ["#!/bin/bash", f"#SBATCH --job-name={name}", f"#SBATCH --output={log_dir}/{name}.%A_%a.log",
            f"#SBATCH --time={time}"]
    body = cmd
    if name.endswith(".train"):
        tasks = gpus_per_node if nodes > 1 else 1  # one node: fairseq-hydra-train spawns its own processes
        head += [f"#SBATCH --nodes={nodes}", f"#SBATCH --ntasks-per-node={tasks}",
                 f"#SBATCH --gpus-per-node={gpus_per_node}", "#SBATCH --cpus-per-task=8"]
        if nodes > 1:  # one task per GPU; fairseq reads SLURM_PROCID / SLURM_LOCALID
            body = re.sub(r"(\S*fairseq-hydra-train)", r"srun \1", cmd, count=1)
    else:
        head += ["#SBATCH --nodes=1", "#SBATCH --ntasks=1", "#SBATCH --cpus-per-task=8"]
        if ".dump" in name:
            head.append("#SBATCH --gpus-per-node=1")
        ranks = _RANKS.search(body)
        if ranks:
            head.append(f"#SBATCH --array=0-{ranks.group(1)}")
            body = _RANKS.sub('--rank "$SLURM_ARRAY_TASK_ID"', body)
    splits = _SPLITS.search(body)
    if splits:
        body = "for split in {}; do\n  {}\ndone".format(" ".join(splits.group(1).split(",")),
                                                       _SPLITS.sub('--split "$split"', body))
    return "\n".join(head + ["set -euo pipefail", body]) + "\n"


def write_slurm(stages: list[tuple[str, str]], out_dir: str, nodes: int, gpus_per_node: int,
                time: str = "72:00:00") -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    logs = os.path.join(os.path.abspath(out_dir), "logs")
    paths, submit = [], ["#!/bin/bash", "# submits every stage in order, each after the previous one succeeded",
                         "set -euo pipefail", "cd \"$(dirname \"$0\")\"", "dep=()"]
    for i, (name, cmd) in enumerate(stages):
        path = os.path.join(out_dir, f"{i:02d}_{name}.sbatch")
        write_text_atomic(path, sbatch_script(name, cmd, nodes, gpus_per_node, logs, time))
        paths.append(path)
        submit.append(f"id=$(sbatch --parsable \"${{dep[@]}}\" {shlex.quote(os.path.basename(path))})")
        submit.append('dep=(--dependency=afterok:"${id%%;*}")')
        submit.append(f"echo \"{name}: $id\"")
    sub = os.path.join(out_dir, "submit.sh")
    write_text_atomic(sub, "\n".join(submit) + "\n")
    os.chmod(sub, 0o755)
    os.makedirs(logs, exist_ok=True)
    return [*paths, sub]
