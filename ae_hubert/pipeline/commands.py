"""``ae-hubert iterate``, ``launch``, ``study``, ``study-pack``, ``study-unpack``, ``demo``: the loop and the
study, driven end to end."""
from __future__ import annotations

from ..common.arguments import SEED, int_list, integer, name_list, path, slurm_time
from ..common.command import Command, UsageError, echo


def _iterate(a):
    from .iterate import iterate, summary_table

    records = iterate(a.schedule, a.work_dir, a.data, a.overrides, a.dry_run, start_from=a.start_from)
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


def _study(a):
    from ..analysis.study_summary import DRIFT_MARGIN
    from .study import run_study

    s = run_study(a.config, a.work_dir, a.seeds, a.only, a.data, only_seeds=a.only_seeds)
    lines = []
    if "H1" in s:
        h = s["H1"]
        lines.append(f"H1 best layer - MFCC PNMI: {h['best_minus_mfcc_pnmi']['mean']:+.4f} "
                     f"(per seed {', '.join(f'{v:+.4f}' for v in h['best_minus_mfcc_pnmi']['values'])}); "
                     f"iteration 2 - 1 best-layer phone accuracy: {h['iter2_minus_iter1_phone_acc']['mean']:+.4f}: "
                     f"{'held' if h['held']['all'] else 'not held'}")
    if "H2" in s:
        for it, r in s["H2"]["iterations"].items():
            turn = "n/a (no middle layer)" if r["depth_input_r2_dip"] is None else \
                "yes" if r["top_turns_back"] else "no"
            lines.append(f"H2 {it}: top layer input R2 over updates falls {r['top_input_r2_dip']['mean']:.4f} "
                         f"then climbs back {r['top_input_r2_rise']['mean']:.4f} ({'both' if r['drifts'] else 'not both'}"
                         f" > {DRIFT_MARGIN} in every seed); turns back toward the input at the top of the stack: "
                         f"{turn}")
    for it, r in s.get("H3", {}).get("iterations", {}).items():
        j = s["H3"]["judge"]
        lines.append(f"H3 {it}: {s['H3']['split']} {j.upper()} by k reset " + ", ".join(
            f"k={k} {100 * r['rows'][str(k)][j]['mean']:.1f}%" for k in r["ks"]) +
            f" (a reset below k=0 in every seed: {'yes' if r['reset_helps'] else 'no'})")
    for h in ("H4", "H5"):
        if h in s:
            j = s[h]["judge"]
            lines.append(f"{h}: " + ", ".join(f"{arm} {a[s[h]['metric']]['mean']:.4f} / {j.upper()} "
                                             f"{100 * a[j]['mean']:.1f}%" for arm, a in s[h]["arms"].items()) +
                         f" ({s[h]['metric']} / {s[h]['split']} {j.upper()})")
    if len(s["seeds"]) < 3:
        lines.append(f"({len(s['seeds'])} seed(s) only: the spread and the 'every seed' verdicts need --seeds 3)")
    out = s["summary_dir"]
    echo("", *lines, f"study: {out}/study.md (tables, plots), {out}/study.json")
    return {k: s[k] for k in ("study", "seeds", "hypotheses")}


def _study_args(s):
    s.add_argument("--work-dir", type=path, required=True, help="everything the study writes goes here; rerun to "
                   "resume")
    s.add_argument("--config", default="study_cpu", help="a study YAML file or a shipped name (config/study/)")
    s.add_argument("--seeds", type=integer(1, 100), default=None, help="seeds 1..N (default: the config's seeds)")
    s.add_argument("--only", type=name_list, default=None, help="comma-separated hypotheses, e.g. H1 (default: "
                   "every one the config sets up)")
    s.add_argument("--only-seeds", type=int_list(1), default=None, help="comma-separated seeds to run and summarise "
                   "now, e.g. 2,3 (default: 1..--seeds); spreads a study over machines or sessions")
    s.add_argument("--data", default=None, help="an existing study corpus (default: build the config's corpus "
                   "under WORK_DIR/corpus)")


def _study_pack(a):
    from .study_pack import pack_study

    import os

    if a.results_only and a.drop_unfinished:
        raise UsageError("--drop-unfinished: a results-only copy carries no run, finished or not")
    out = a.out_dir or os.path.abspath(a.work_dir) + (".results" if a.results_only else ".pack")
    r = pack_study(a.work_dir, out, keep_unfinished=not a.drop_unfinished, results_only=a.results_only)
    half = f", {len(r['half_trained'])} half-trained pieces ({', '.join(r['half_trained'])})" if r["half_trained"] else ""
    then = "" if a.results_only else f"; on another machine: ae-hubert study-unpack {out} WORK_DIR"
    echo(f"packed {len(r['files'])} files and {len(r['models'])} models{half} ({r['bytes'] / 1e6:.1f} MB) of "
           f"{r['work_dir']} into {r['pack']}{then}")
    return r


def _study_pack_args(s):
    s.add_argument("work_dir", type=path, help="the study's work dir (not while a study runs in it)")
    s.add_argument("out_dir", type=path, nargs="?", default=None, help="the pack (a directory, replaced whole when "
                   "the new one is complete; default: WORK_DIR.pack, or WORK_DIR.results, beside the work dir)")
    s.add_argument("--drop-unfinished", action="store_true", help="leave out pieces being trained (by default "
                   "they travel with their last checkpoint, optimizer state included, and resume exactly)")
    s.add_argument("--results-only", action="store_true", help="a reader's copy: summaries, plots and per-run "
                   "records; no model, log or label (not for study-unpack)")


def _study_unpack(a):
    from .study_pack import unpack_study

    r = unpack_study(a.pack_dir, a.work_dir)
    echo(f"unpacked {r['files']} files and {r['models']} models into {r['work_dir']} (packed from "
           f"{r['packed_from']}); resume with: ae-hubert study --work-dir {r['work_dir']} ...")
    return r


def _study_unpack_args(s):
    s.add_argument("pack_dir", type=path, help="a directory written by study-pack")
    s.add_argument("work_dir", type=path, help="a new (or empty) work dir")


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
    Command("launch", "a schedule's steps for G GPUs x N nodes; --slurm writes sbatch scripts", _launch, _launch_args),
    Command("study", "the study: HuBERT's own result (H1) and the paper's questions over seeds (resumable in pieces)",
            _study, _study_args),
    Command("study-pack", "keep what a study's later steps need (results, markers, each trained iteration's final "
            "model without optimizer state) in a small directory to copy; --results-only: its results for a reader",
            _study_pack, _study_pack_args),
    Command("study-unpack", "put a study-pack back as a work dir (on another machine or session); the next `study` "
            "call rebuilds the corpus and goes on where the pack left off", _study_unpack, _study_unpack_args),
    Command("demo", "the HuBERT loop on the synthetic corpus: probes and a reset comparison", _demo, _demo_args),
]
