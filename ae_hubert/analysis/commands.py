"""``ae-hubert cluster-quality``, ``probe``, ``report``: what the models know, and one page to read it."""
from __future__ import annotations

from ..common.arguments import SEED, device_option, int_list, integer, output_file, path
from ..common.command import Command, echo


def _cluster_quality(a):
    from .cluster_quality import cluster_quality

    r = cluster_quality(a.data, a.k, a.ckpt, a.layers, a.train_utterances, a.valid_utterances, a.seed,
                        json_out=a.json)
    rows = [("MFCC", r["mfcc"])] + [(f"layer {layer}", q) for layer, q in r.get("layers", {}).items()]
    echo(f"{'features':10s} {'PNMI':>7s} {'phone pur':>9s} {'clus pur':>8s}   (K={r['k']}: fit on "
         f"{r['train_utterances']} train, scored on {r['valid_utterances']} valid utterances)",
         *(f"{name:10s} {q['pnmi']:7.4f} {q['phone_purity']:9.4f} {q['cluster_purity']:8.4f}" for name, q in rows))
    if "best_layer" in r:
        echo(f"best: layer {r['best_layer']}, PNMI {r['best_minus_mfcc_pnmi']:+.4f} vs MFCC")
    return r


def _cluster_quality_args(s):
    s.add_argument("--data", required=True, help="directory with train/valid .tsv and valid.phn")
    s.add_argument("--k", type=integer(2), required=True, help="clusters (the same K for every representation)")
    s.add_argument("--ckpt", default=None, help="HuBERT checkpoint (default: MFCC only)")
    s.add_argument("--layers", type=int_list(1), default=None, help="comma-separated 1-based layers (default: all)")
    s.add_argument("--train-utterances", type=integer(1), default=300, help="train utterances k-means is fit on")
    s.add_argument("--valid-utterances", type=integer(1), default=300, help="valid utterances scored")
    s.add_argument("--seed", type=SEED, default=1, help="k-means seed")
    s.add_argument("--json", type=output_file, default=None, help="also write every score here")


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


def _report(a):
    from .report import build_report

    path_ = build_report(a.work_dir, a.out)
    echo(path_)
    return {"report": path_}


def _report_args(s):
    s.add_argument("work_dir", help="a work dir of iterate, demo, probe (--out) or reset-sweep")
    s.add_argument("--out", type=output_file, default=None, help="HTML file to write (default: WORK_DIR/report.html)")


COMMANDS = [
    Command("cluster-quality", "PNMI of MFCC clusters and of every layer's clusters, one protocol: fit on train, "
            "score on valid", _cluster_quality, _cluster_quality_args),
    Command("probe", "per-layer phone/letter/word/voice/input metrics of checkpoints, with plots", _probe, _probe_args),
    Command("report", "one self-contained HTML page of a work dir (iterate, demo, probe, sweep)", _report, _report_args),
]
