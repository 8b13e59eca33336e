"""``ae-hubert probe``, ``report``: what every layer of a model knows, and one page to read it."""
from __future__ import annotations

import os

from ..common.arguments import SEED, device_option, integer, output_file, path
from ..common.command import Command, echo
from ..common.outputs import Files


def _probe(a):
    from ..common.atomic import check_writable_dir
    from .layer_probe import present_metrics, probe_checkpoints, write_probe_results
    from .plots import plot_probe_results
    from .report import build_report

    check_writable_dir(a.out)
    results = probe_checkpoints(a.ckpt, a.data, k=a.k, max_utterances=a.max_utterances, seed=a.seed,
                                device=a.device, cca=a.cca, ctc_steps=a.ctc_steps)
    js, csv_path = write_probe_results(results, a.out)
    pngs = plot_probe_results(results, present_metrics(results), a.out)
    for r in results:
        echo(f"{r['checkpoint']} ({r['run']}, {r['updates']} updates): autoencoder index {r['autoencoder_index']:.3f}")
        for layer, m in r["layers"].items():
            echo(f"  layer {layer:>2}: " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()))
    echo(js, csv_path, *pngs, f"report: {build_report(a.out)}")


def _probe_args(s):
    s.add_argument("--ckpt", nargs="+", required=True,
                   help="checkpoint files and/or directories of checkpoints (runs, e.g. iterations, in order)")
    s.add_argument("--data", required=True,
                   help="labelled data: train/valid .tsv and any of .phn, .ltr, .wrdspan, .spk")
    s.add_argument("--out", type=path, required=True, help="output directory (probe.json, probe.csv, plots)")
    s.add_argument("--k", type=integer(2), default=50, help="clusters for PNMI/purities")
    s.add_argument("--max-utterances", type=integer(1), default=200, help="utterances per split")
    s.add_argument("--seed", type=SEED, default=1, help="k-means and probe seed")
    device_option(s)
    s.add_argument("--cca", action="store_true", help="also the mean CCA similarity with the input MFCC")
    s.add_argument("--ctc-steps", type=integer(1), default=150, help="optimisation steps of the CTC letter probe")


def _probe_files(a) -> Files:
    return Files({a.out: "--out"}, {c: "--ckpt" for c in a.ckpt if not os.path.isdir(c)}, {a.data: "--data"})


def _report_files(a) -> Files:
    """Any file of the work dir the page is built from may not be replaced by it (a page it wrote
    before may)."""
    out = a.out or os.path.join(a.work_dir, "report.html")
    inside = os.path.realpath(out).startswith(os.path.realpath(a.work_dir) + os.sep)
    read = inside and os.path.isfile(out) and not out.endswith((".html", ".htm"))
    # its page may go inside the work dir it shows, never into another run's
    return Files({out: "--out"}, {out: "WORK_DIR"} if read else {}, into_work_dirs=inside)


def _report(a):
    from .report import build_report

    path_ = build_report(a.work_dir, a.out)
    echo(path_)
    return {"report": path_}


def _report_args(s):
    s.add_argument("work_dir", help="a work dir of iterate, demo, probe (--out) or reset-sweep")
    s.add_argument("--out", type=output_file, default=None, help="HTML file to write (default: WORK_DIR/report.html)")


COMMANDS = [
    Command("probe", "per-layer phone/letter/word/voice/input metrics of checkpoints, with plots", _probe, _probe_args,
            files=_probe_files),
    Command("report", "one self-contained HTML page of a work dir (iterate, demo, probe, sweep)", _report, _report_args,
            files=_report_files),
]
