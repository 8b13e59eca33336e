"""``ae-hubert study``, ``study-pack``, ``study-unpack``, ``study-rerun``: the study, run, carried between
machines, and one of its runs reproduced."""
from __future__ import annotations

import os

from ..common.arguments import int_list, integer, name_list, non_negative_float, path
from ..common.command import Command, UsageError, echo
from ..common.outputs import Files


def _study(a):
    from .run import run_study
    from .summary import verdict_lines

    s = run_study(a.config, a.work_dir, a.seeds, a.only, a.data, only_seeds=a.only_seeds)
    out = s["summary_dir"]
    echo("", *verdict_lines(s), f"study: {out}/study.md (tables, plots), {out}/study.json")
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
    from .pack import pack_study

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
    from .pack import unpack_study

    r = unpack_study(a.pack_dir, a.work_dir)
    echo(f"unpacked {r['files']} files and {r['models']} models into {r['work_dir']} (packed from "
           f"{r['packed_from']}); resume with: ae-hubert study --work-dir {r['work_dir']} ...")
    return r


def _study_unpack_args(s):
    s.add_argument("pack_dir", type=path, help="a directory written by study-pack")
    s.add_argument("work_dir", type=path, help="a new (or empty) work dir")


def _study_rerun(a):
    from .rerun import rerun

    r = rerun(a.results, a.run, a.seed, a.work_dir, a.config, a.data, a.tolerance)
    echo(f"{r['run']} seed {r['seed']}: all {r['compared']} records as in {r['results']}")
    return r


def _study_rerun_args(s):
    s.add_argument("results", type=path, help="the original study: its work dir, or its study-pack --results-only "
                   "copy (e.g. docs/results/NAME)")
    s.add_argument("--run", required=True, help="a run the study probed over updates (its probed_runs.json), "
                   "e.g. study_h0_phones")
    s.add_argument("--seed", type=integer(1, 100), required=True, help="which seed of it")
    s.add_argument("--work-dir", type=path, required=True, help="a new work dir for the rerun; rerun to resume")
    s.add_argument("--config", default=None, help="the study YAML (default: the shipped one the original names)")
    s.add_argument("--data", default=None, help="an existing study corpus (default: build the config's corpus "
                   "under WORK_DIR/corpus)")
    s.add_argument("--tolerance", type=non_negative_float, default=0.0, help="largest relative difference of a "
                   "measured number still counted the same; counts (updates, K) stay exact (0: identical, as on "
                   "the same library versions, thread count and kind of CPU)")


COMMANDS = [
    Command("study", "the study: HuBERT's own result (H1) and the paper's questions over seeds (resumable in pieces)",
            _study, _study_args),
    Command("study-pack", "keep what a study's later steps need (results, markers, each trained iteration's final "
            "model without optimizer state) in a small directory to copy; --results-only: its results for a reader",
            _study_pack, _study_pack_args, files=lambda a: Files(  # where the pack goes (a pack holds markers)
                {os.path.dirname(os.path.abspath(a.out_dir or a.work_dir)): "OUT_DIR"}, {a.work_dir: "WORK_DIR"})),
    Command("study-unpack", "put a study-pack back as a work dir (on another machine or session); the next `study` "
            "call rebuilds the corpus and goes on where the pack left off", _study_unpack, _study_unpack_args,
            files=lambda a: Files({a.work_dir: "WORK_DIR"}, {a.pack_dir: "PACK_DIR"})),
    Command("study-rerun", "train one seed of a study's run again from scratch (H1's, an H0 control's) and compare "
            "its records and probes with the original's, number by number (exit 1 when any differs)",
            _study_rerun, _study_rerun_args),
]
