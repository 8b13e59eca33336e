"""``ae-hubert iterate``, ``launch``, ``demo``: the loop, driven end to end."""
from __future__ import annotations

from ..common.arguments import SEED, Once, integer, name_list, path, slurm_time
from ..common.command import Command, echo
from ..common.outputs import Files


def _iterate(a):
    from .iterate import iterate, summary_table

    records = iterate(a.schedule, a.work_dir, a.data, a.overrides, a.dry_run, start_from=a.start_from,
                      restart=a.restart)
    if records:
        from ..analysis.report import build_report

        echo("", summary_table(records), f"records: {a.work_dir}/records.json",
               f"training curves: tensorboard --logdir {a.work_dir}  (pip install tensorboard)",
               f"report: {build_report(a.work_dir)}")


def _iterate_args(s):
    s.add_argument("--schedule", required=True, help="a YAML file or a shipped name (standard, progressive_toy, ...)")
    s.add_argument("--work-dir", type=path, required=True, help="everything the run writes goes here")
    s.add_argument("--data", default=None, help="manifest directory (overrides the schedule's data:)")
    s.add_argument("--start-from", default=None, help="checkpoint that plays the previous iteration for iteration 1 "
                   "(overrides the schedule's start_from:; e.g. hubert_base_ls960.pt)")
    s.add_argument("--dry-run", action="store_true", help="print the steps as shell lines, run nothing")
    s.add_argument("--restart", metavar="STEP", action=Once, help="redo this step (e.g. iter2.train, or iter2: all of it) and "
                                                     "every later one under the settings given now")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every training run (e.g. "
                   "optimization.lr=[0.0002])")


def _launch(a):
    from .launch import distributed_overrides, write_slurm
    from .plan import plan
    from .schedule import load_schedule

    dist = distributed_overrides(a.nodes, a.gpus_per_node, a.port)
    steps = plan(load_schedule(a.schedule, a.data, [*a.overrides, *dist]), a.work_dir)
    if a.slurm:
        echo(*write_slurm(steps, a.slurm, a.nodes, a.gpus_per_node, a.time))
    else:
        echo(*[f"# {st.name}\n{st.shell()}" for st in steps])


def _launch_args(s):
    s.add_argument("--schedule", required=True, help="a YAML file or a shipped name")
    s.add_argument("--work-dir", type=path, required=True, help="the run's work dir (on a shared filesystem)")
    s.add_argument("--data", default=None, help="manifest directory (overrides the schedule's data:)")
    s.add_argument("--nodes", type=integer(1, 10000), default=1, help="nodes for training")
    s.add_argument("--gpus-per-node", type=integer(1, 64), default=8, help="GPUs per node")
    s.add_argument("--port", type=integer(1, 65535), default=29671, help="distributed_port for multi-node runs")
    s.add_argument("--slurm", metavar="DIR", help="write one sbatch script per stage and submit.sh here")
    s.add_argument("--time", type=slurm_time, default="72:00:00", help="SLURM time limit per stage")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every training run")


def _demo(a):
    from .demo import run_demo

    run_demo(a.work_dir, utterances=a.utterances, seed=a.seed, full=a.full, schedules=a.schedules,
             overrides=a.overrides)


def _demo_args(s):
    s.add_argument("work_dir", type=path, help="everything the demo writes goes here (resumable)")
    s.add_argument("--utterances", type=integer(10), default=400, help="corpus size")
    s.add_argument("--seed", type=SEED, default=1, help="corpus seed")
    s.add_argument("--full", action="store_true", help="the longer comparisons: standard_toy vs progressive_toy, "
                   "reset sweep k = 0..3 with the full fine-tuning budget (about 20 min)")
    s.add_argument("--schedules", type=name_list, default=None,
                   help="comma-separated schedules to run side by side (default: demo_toy; with --full "
                        "standard_toy,progressive_toy)")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every training run")


COMMANDS = [
    Command("iterate", "run a HuBERT iteration schedule (resumable, one run per work dir)", _iterate, _iterate_args),
    Command("launch", "a schedule's steps for G GPUs x N nodes; --slurm writes sbatch scripts", _launch, _launch_args,
            files=lambda a: Files({a.slurm: "--slurm"} if a.slurm else {})),
    Command("demo", "the HuBERT loop on the synthetic corpus: probes and a reset comparison", _demo, _demo_args),
]
