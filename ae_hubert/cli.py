"""``ae-hubert``: the sidecar tools between HuBERT iterations (a thin layer over the stages).

Every subcommand is a handler returning a JSON-able result; ``invoke`` runs one from an argument
list in-process, which is how the iteration driver executes its steps (the same parser, the same
checks, the same code as the command line).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .common.arguments import (SEED, device, frame_rate, gain_fraction, int_list, integer, name_list, output_file,
                               path, plain_name, sample_fraction, slurm_time)
from .common.errors import AeHubertError


class UsageError(AeHubertError):
    """A bad command line (unknown option, a number out of range, ...)."""


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every default shown, except a None one: its help says what happens instead."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Errors are raised (one line, exit status 2 from ``main``), never printed with the usage."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _print(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


def _toy_corpus(a):
    from .corpus.toy_corpus import build

    s = build(a.out_dir, a.utterances, a.seed, a.voices, a.workers)
    _print(json.dumps(s["splits"], indent=1))
    return s["splits"]


def _study_corpus(a):
    from .corpus.study_corpus import build

    s = build(a.out_dir, a.utterances, a.seed, a.vocabulary, a.workers)
    _print(json.dumps(s["splits"], indent=1))
    return s["splits"]


def _model_kind(a) -> dict:
    """``shard_features``'s arguments for what the options name: MFCC, or a layer of a checkpoint."""
    if getattr(a, "ckpt", None) is None:
        return {}
    from .features.dump import layer_from

    layer = a.layer if a.layer is not None else layer_from(a.layer_from)
    return {"ckpt": a.ckpt, "layer": layer, "max_samples": a.max_samples, "max_chunk": a.max_chunk,
            "user_dir": a.user_dir, "dtype": a.dtype}


def _dump(a):
    from .features.dump import dump_features

    kind = _model_kind(a)
    if kind:
        kind["device"] = a.device
    paths = dump_features(a.tsv_dir, a.split, a.out_dir, a.nshard, a.rank, sample=a.sample, seed=a.seed, **kind)
    _print(" ".join(paths))
    return {"files": list(paths)}


def _kmeans(a):
    from .clustering.kmeans import learn_kmeans

    km = learn_kmeans(a.feat_dir, a.split, a.nshard, a.k, a.out, a.percent, a.seed, a.max_iter, a.streamed,
                      a.chunk_frames, a.min_gain, a.device)
    _print(f"{a.out}: k={a.k} inertia={km.inertia_:.6g}")
    return {"inertia": float(km.inertia_), "iterations": int(km.n_iter_)}


def _label(a):
    from .clustering.label import dump_labels, label_audio

    if a.feat_dir is not None:
        given = [o for o, v in (("--ckpt", a.ckpt), ("--layer", a.layer), ("--layer-from", a.layer_from),
                                ("--rank", a.rank)) if v is not None]
        if given:
            raise UsageError(f"{' and '.join(given)}: only with --tsv-dir (--feat-dir labels dumped features)")
        out = dump_labels(a.feat_dir, a.split, a.nshard, a.km, a.out_dir, a.name, a.device)
    else:
        if a.ckpt is None and (a.layer is not None or a.layer_from is not None):
            raise UsageError("--layer/--layer-from: give the checkpoint too (--ckpt); without it labels are of MFCC")
        if a.ckpt is not None and a.layer is None and a.layer_from is None:
            raise UsageError("--ckpt: give the layer too (--layer or --layer-from)")
        rank = a.rank or 0
        if not rank < a.nshard:
            raise UsageError(f"--rank {rank} / --nshard {a.nshard}: need 0 <= rank < nshard")
        out = label_audio(a.tsv_dir, a.split, a.km, a.out_dir, a.name, a.nshard, rank, a.device, **_model_kind(a))
    _print(out)
    return {"labels": out}


def _merge_labels(a):
    from .clustering.label import merge_labels

    out = merge_labels(a.label_dir, a.split, a.nshard, a.name, a.tsv_dir)
    _print(out)
    return {"labels": out}


def _quality(a):
    from .clustering.quality import label_quality

    q = label_quality(a.km, a.phn, a.km_rate, a.phn_rate, a.json)
    _print(f"PNMI {q['pnmi']:.4f}  phone purity {q['phone_purity']:.4f}  cluster purity "
           f"{q['cluster_purity']:.4f}  ({q['frames']} frames, {q['n_labels_used']} labels used, "
           f"labels at {q['km_rate']:g} Hz)")
    return {k: q[k] for k in ("pnmi", "phone_purity", "cluster_purity", "frames", "km_rate")}


def _demo(a):
    from .pipeline.demo import run_demo

    run_demo(a.work_dir, utterances=a.utterances, seed=a.seed, full=a.full, schedules=a.schedules,
             overrides=a.overrides)


def _iterate(a):
    from .pipeline.iterate import iterate, summary_table

    records = iterate(a.schedule, a.work_dir, a.data, a.overrides, a.dry_run, start_from=a.start_from)
    if records:
        from .analysis.report import build_report

        _print("", summary_table(records), f"records: {a.work_dir}/records.json",
               f"training curves: tensorboard --logdir {a.work_dir}  (pip install tensorboard)",
               f"report: {build_report(a.work_dir)}")


def _study(a):
    from .analysis.study_summary import DRIFT_MARGIN
    from .pipeline.study import run_study

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
    _print("", *lines, f"study: {out}/study.md (tables, plots), {out}/study.json")
    return {k: s[k] for k in ("study", "seeds", "hypotheses")}


def _study_pack(a):
    from .pipeline.study_pack import pack_study

    out = a.out_dir or a.work_dir.rstrip("/") + (".results" if a.results_only else ".pack")
    r = pack_study(a.work_dir, out, keep_unfinished=not a.drop_unfinished, results_only=a.results_only)
    half = f", {len(r['half_trained'])} half-trained pieces ({', '.join(r['half_trained'])})" if r["half_trained"] else ""
    then = "" if a.results_only else f"; on another machine: ae-hubert study-unpack {out} WORK_DIR"
    _print(f"packed {len(r['files'])} files and {len(r['models'])} models{half} ({r['bytes'] / 1e6:.1f} MB) of "
           f"{r['work_dir']} into {r['pack']}{then}")
    return r


def _study_unpack(a):
    from .pipeline.study_pack import unpack_study

    r = unpack_study(a.pack_dir, a.work_dir)
    _print(f"unpacked {r['files']} files and {r['models']} models into {r['work_dir']} (packed from "
           f"{r['packed_from']}); resume with: ae-hubert study --work-dir {r['work_dir']} ...")
    return r


def _choose_layer(a):
    from .clustering.layer_choice import choose_layer

    r = choose_layer(a.ckpt, a.data, a.split, a.candidates, a.k, a.seed, a.max_utterances, json_out=a.json)
    _print(r["why"])
    return r


def _cluster_quality(a):
    from .analysis.cluster_quality import cluster_quality

    r = cluster_quality(a.data, a.k, a.ckpt, a.layers, a.train_utterances, a.valid_utterances, a.seed,
                        json_out=a.json)
    rows = [("MFCC", r["mfcc"])] + [(f"layer {layer}", q) for layer, q in r.get("layers", {}).items()]
    _print(f"{'features':10s} {'PNMI':>7s} {'phone pur':>9s} {'clus pur':>8s}   (K={r['k']}: fit on "
           f"{r['train_utterances']} train, scored on {r['valid_utterances']} valid utterances)",
           *(f"{name:10s} {q['pnmi']:7.4f} {q['phone_purity']:9.4f} {q['cluster_purity']:8.4f}" for name, q in rows))
    if "best_layer" in r:
        _print(f"best: layer {r['best_layer']}, PNMI {r['best_minus_mfcc_pnmi']:+.4f} vs MFCC")
    return r


def _init_continue(a):
    from .pipeline.continue_init import model_overrides, prepare_continue_init

    for item in a.model:
        key, sep, _ = item.lstrip("+").partition("=")
        if not sep or not key.startswith("model.") or "." in key[len("model."):] or not key[len("model."):]:
            raise UsageError(f"{item!r}: expected model.KEY=VALUE (see ae-hubert init-continue --help)")
    r = prepare_continue_init(a.prev, a.label_dir, a.labels, a.reset_top_layers, a.out, a.seed,
                              model_overrides(a.model))
    _print(f"{a.out}: {r['kept_tensors']} tensors from {a.prev}, {len(r['fresh_tensors'])} fresh")
    return r


def _probe(a):
    from .analysis.layer_probe import present_metrics, probe_checkpoints, write_probe_results
    from .analysis.plots import plot_probe_results
    from .common.atomic import check_writable_dir

    check_writable_dir(a.out)
    results = probe_checkpoints(a.ckpt, a.data, k=a.k, max_utterances=a.max_utterances, seed=a.seed,
                                device=a.device, cca=a.cca, ctc_steps=a.ctc_steps)
    js, csv_path = write_probe_results(results, a.out)
    pngs = plot_probe_results(results, present_metrics(results), a.out)
    for r in results:
        _print(f"{r['checkpoint']} ({r['run']}, {r['updates']} updates): "
               f"autoencoder index {r['autoencoder_index']:.3f}")
        for layer, m in r["layers"].items():
            _print(f"  layer {layer:>2}: " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()))
    from .analysis.report import build_report

    _print(js, csv_path, *pngs, f"report: {build_report(a.out)}")


def _decode(a):
    from .finetune.decode import decode

    r = decode(a.ckpt, a.data, a.split, a.out, a.device, a.max_utterances)
    if "wer" in r:
        _print(f"{a.split}: WER {100 * r['wer']:.2f}%  CER {100 * r['cer']:.2f}%  "
               f"({r['utterances']} utterances, {r['words']} words)")
    else:
        _print(f"{a.split}: {r['utterances']} utterances decoded (no reference transcripts)")
    if a.out:
        _print(f"transcripts: {a.out}/{a.split}.hyp.wrd")


def _spm(a):
    from .finetune.spm_units import build_spm

    r = build_spm(a.data, a.vocab_size, a.name, a.model_type)
    _print(f"{r['units']} units: {r['model']}, {r['dict']}", *r["labels"].values(),
           f"fine-tune with: task.labels=[{r['name']}] criterion.post_process=sentencepiece")


def _reset_sweep(a):
    from .finetune.reset_sweep import reset_sweep, sweep_table

    from .analysis.report import build_report

    rows = reset_sweep(a.ckpt, a.data, a.ks, a.work_dir, a.mode, a.config, a.overrides, tuple(a.splits))
    _print(sweep_table(rows, tuple(a.splits)), f"{a.work_dir}/sweep.csv  {a.work_dir}/wer_vs_k.png",
           f"report: {build_report(a.work_dir)}")


def _export_stock(a):
    from .models.export_stock import export_stock

    r = export_stock(a.ckpt, a.out)
    _print(f"{r['to']}: stock hubert / hubert_pretraining names; dropped {len(r['dropped_tensors'])} "
           "extra-head tensors")


def _librispeech(a):
    from .corpus.librispeech import prepare_librispeech

    written = prepare_librispeech(a.root, a.out, a.libri_light)
    _print(*[f"{a.out}/{name}.tsv  {n} utterances (.wrd .ltr .spk)" for name, n in written.items()],
           f"{a.out}/dict.ltr.txt")


def _report(a):
    from .analysis.report import build_report

    path = build_report(a.work_dir, a.out)
    _print(path)
    return {"report": path}


def _launch(a):
    from .pipeline.launch import distributed_overrides, write_slurm
    from .pipeline.plan import plan
    from .pipeline.schedule import load_schedule

    dist = distributed_overrides(a.nodes, a.gpus_per_node, a.port)
    steps = plan(load_schedule(a.schedule, a.data, [*a.overrides, *dist]), a.work_dir)
    if a.slurm:
        _print(*write_slurm(steps, a.slurm, a.nodes, a.gpus_per_node, a.time))
    else:
        _print(*[f"# {st.name}\n{st.shell()}" for st in steps])


def _model_options(k, required: bool) -> None:
    """The options that pick and run a model layer (``dump hubert``; ``label --tsv-dir`` with a model)."""
    k.add_argument("--ckpt", required=required, default=None,
                   help="any fairseq HuBERT checkpoint, pretrained or fine-tuned"
                        + ("" if required else " (--tsv-dir: label its layer's features; without: MFCC)"))
    which = k.add_mutually_exclusive_group(required=required)
    which.add_argument("--layer", type=integer(1), help="1-based transformer layer, as stock")
    which.add_argument("--layer-from", metavar="JSON", help="read the layer from a `choose-layer --json` result ('chosen')")
    k.add_argument("--max-samples", type=integer(0), default=None,
                   help="padded samples per batch (default 1.6M on CUDA; on CPU one utterance per batch)")
    k.add_argument("--max-chunk", type=integer(400), default=1_600_000,
                   help="longer audio is cut into independent chunks of this many samples, as stock")
    _device(k)
    k.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="model precision; float16/bfloat16 for GPUs, files stay float32")
    k.add_argument("--user-dir", default=None, help="another fairseq plugin the checkpoint needs")


def _shards(s) -> None:
    s.add_argument("--nshard", type=integer(1), default=1, help="number of shards the split is cut into")
    s.add_argument("--rank", type=integer(0), default=0, help="which shard (0-based, < --nshard)")


def _device(s) -> None:
    s.add_argument("--device", type=device, default=None, help="cpu / cuda / cuda:N (default: cuda when available)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ae-hubert", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level (fairseq's and ours)")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser, metavar="COMMAND")

    s = sub.add_parser("toy-corpus", help="synthesise the offline demo corpus")
    s.add_argument("out_dir", type=path, help="output directory (tsv, wav/, wrd, ltr, phn, spk, wrdspan)")
    s.add_argument("--utterances", type=integer(10), default=400, help="utterances in all splits together")
    s.add_argument("--seed", type=SEED, default=0, help="corpus seed (same seed, same bytes)")
    s.add_argument("--voices", type=name_list, help="comma-separated flite:NAME / espeak:NAME (default: 2 flite + 4 espeak-ng)")
    s.add_argument("--workers", type=integer(1), default=None, help="synthesis processes (default: CPU count)")
    s.set_defaults(fn=_toy_corpus)

    s = sub.add_parser("study-corpus", help="synthesise the harder study corpus: many voices (new ones in "
                       "valid/test), 3000 words, rooms, noise")
    s.add_argument("out_dir", type=path, help="output directory (the toy corpus's files)")
    s.add_argument("--utterances", type=integer(30), default=3000, help="utterances in all splits together "
                   "(3000: 3.1 hours, built in 3.7 min on 2 cores)")
    s.add_argument("--seed", type=SEED, default=0, help="corpus seed (same seed, same bytes)")
    s.add_argument("--vocabulary", type=integer(50), default=3000, help="words (the most frequent that pass "
                   "the pronunciation checks)")
    s.add_argument("--workers", type=integer(1), default=None, help="synthesis processes (default: CPU count)")
    s.set_defaults(fn=_study_corpus)

    s = sub.add_parser("librispeech", help="LibriSpeech (+ Libri-light limited) -> manifests, .wrd/.ltr, dict")
    s.add_argument("--root", required=True, help="LibriSpeech root (train-clean-100/, dev-clean/, ...)")
    s.add_argument("--out", type=path, required=True, help="output manifest directory")
    s.add_argument("--libri-light", help="Libri-light librispeech_finetuning/ root (1h/, 9h/)")
    s.set_defaults(fn=_librispeech)

    s = sub.add_parser("dump", help="dump MFCC or HuBERT-layer features of a manifest shard")
    kinds = s.add_subparsers(dest="kind", required=True, parser_class=_Parser, metavar="KIND")
    for kind, text in (("mfcc", "39-d MFCC + deltas at 100 Hz (stock dump_mfcc_feature.py)"),
                       ("hubert", "one transformer layer of a HuBERT checkpoint at 50 Hz (stock dump_hubert_feature.py)")):
        k = kinds.add_parser(kind, help=text, description=text)
        k.add_argument("--tsv-dir", required=True, help="directory with {split}.tsv")
        k.add_argument("--split", type=plain_name, required=True, help="manifest name, e.g. train")
        k.add_argument("--out-dir", type=path, required=True, help="writes {split}_{rank}_{nshard}.npy and .len here")
        _shards(k)
        k.set_defaults(fn=_dump, kind=kind)
        k.add_argument("--sample", type=sample_fraction, default=None,
                       help="dump only the utterances `kmeans --percent` would sample (a fraction of each "
                            "shard), under {split}_sample_{rank}_{nshard}; fit with --percent -1")
        k.add_argument("--seed", type=SEED, default=0, help="(with --sample) the sampling seed, as kmeans --seed")
        if kind == "hubert":
            _model_options(k, required=True)

    s = sub.add_parser("kmeans", help="fit k-means on dumped features -> joblib sklearn KMeans")
    s.add_argument("--feat-dir", required=True, help="directory of `dump` shards")
    s.add_argument("--split", type=plain_name, required=True, help="which split's shards to fit on")
    s.add_argument("--nshard", type=integer(1), default=1, help="number of shards the split was dumped in")
    s.add_argument("--k", type=integer(2), required=True, help="number of clusters")
    s.add_argument("--out", type=output_file, required=True, help="k-means file to write (joblib, loadable by stock tools)")
    s.add_argument("--percent", type=sample_fraction, default=-1,
                   help="fraction of each shard's utterances to fit on, in (0, 1]; -1: all")
    s.add_argument("--seed", type=SEED, default=0, help="sampling and k-means++ seed")
    s.add_argument("--max-iter", type=integer(1), default=100, help="Lloyd iterations at most")
    s.add_argument("--streamed", action="store_true",
                   help="bounded memory: features stay memory-mapped, Lloyd passes read them in chunks")
    s.add_argument("--chunk-frames", type=integer(1), default=200_000, help="(with --streamed) frames per chunk")
    s.add_argument("--min-gain", type=gain_fraction, default=1e-3,
                   help="stop when 5 Lloyd iterations lower the inertia by less than this fraction of it "
                        "(0: off, run to --max-iter or sklearn's convergence rule)")
    _device(s)
    s.set_defaults(fn=_kmeans)

    s = sub.add_parser("label", help="assign frame labels with a k-means model -> {split}.NAME, dict.NAME.txt",
                       description="Label dumped features (--feat-dir, as stock dump_km_label.py), or compute "
                                   "each utterance's features from the audio and label them in one pass without "
                                   "writing them (--tsv-dir: MFCC, or a layer of --ckpt).")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--feat-dir", help="directory of `dump` shards")
    src.add_argument("--tsv-dir", help="directory with {split}.tsv: features computed from the audio, not stored")
    s.add_argument("--split", type=plain_name, required=True, help="which split to label")
    s.add_argument("--nshard", type=integer(1), default=1,
                   help="shards the split was dumped in (--feat-dir) or is labelled in (--tsv-dir)")
    s.add_argument("--rank", type=integer(0), default=None,
                   help="(--tsv-dir) which shard this run labels -> {split}_{rank}_{nshard}.NAME (default 0)")
    s.add_argument("--km", required=True, help="k-means file (ours, stock learn_kmeans.py's, or a released one)")
    s.add_argument("--out-dir", type=path, required=True, help="label directory")
    s.add_argument("--name", type=plain_name, default="km", help="label name: writes {split}.NAME and dict.NAME.txt")
    _model_options(s, required=False)
    s.set_defaults(fn=_label)

    s = sub.add_parser("merge-labels", help="join sharded `label --tsv-dir` outputs into {split}.NAME")
    s.add_argument("--label-dir", required=True, help="where the {split}_{rank}_{nshard}.NAME files are")
    s.add_argument("--split", type=plain_name, required=True, help="which split")
    s.add_argument("--nshard", type=integer(1), required=True, help="number of shards")
    s.add_argument("--name", type=plain_name, default="km", help="label name")
    s.add_argument("--tsv-dir", default=None, help="check the line count against {split}.tsv here")
    s.set_defaults(fn=_merge_labels)

    s = sub.add_parser("quality", help="PNMI and purities of frame labels against frame phone labels")
    s.add_argument("--km", required=True, help="frame labels, one utterance per line")
    s.add_argument("--phn", required=True, help="frame phone labels, same utterances in the same order")
    s.add_argument("--km-rate", type=frame_rate, default=None,
                   help="label frame rate in Hz (default: inferred from the line lengths, 50 or 100)")
    s.add_argument("--phn-rate", type=frame_rate, default=50, help="phone label frame rate in Hz")
    s.add_argument("--json", type=output_file, default=None, help="also write the scores here")
    s.set_defaults(fn=_quality)

    s = sub.add_parser("iterate", help="run a HuBERT iteration schedule (resumable, one run per work dir)")
    s.add_argument("--schedule", required=True, help="a YAML file or a shipped name (standard, progressive_toy, ...)")
    s.add_argument("--work-dir", type=path, required=True, help="everything the run writes goes here")
    s.add_argument("--data", default=None, help="manifest directory (overrides the schedule's data:)")
    s.add_argument("--start-from", default=None, help="checkpoint that plays the previous iteration for iteration 1 "
                   "(overrides the schedule's start_from:; e.g. hubert_base_ls960.pt)")
    s.add_argument("--dry-run", action="store_true", help="print the steps as shell lines, run nothing")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every training run (e.g. "
                   "optimization.lr=[0.0002])")
    s.set_defaults(fn=_iterate)

    s = sub.add_parser("study", help="the study: HuBERT's own result (H1) and the paper's questions over seeds "
                       "(resumable in pieces)")
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
    s.set_defaults(fn=_study)

    s = sub.add_parser("study-pack", help="keep what a study's later steps need (results, markers, each trained "
                       "iteration's final model without optimizer state) in a small directory to commit or copy")
    s.add_argument("work_dir", type=path, help="the study's work dir (not while a study runs in it)")
    s.add_argument("out_dir", type=path, nargs="?", default=None, help="the pack (a directory, replaced whole when "
                   "the new one is complete; default: WORK_DIR.pack, or WORK_DIR.results, beside the work dir)")
    s.add_argument("--drop-unfinished", action="store_true", help="leave out pieces being trained (by default "
                   "they travel with their last checkpoint, optimizer state included, and resume exactly)")
    s.add_argument("--results-only", action="store_true", help="a reader's copy: summaries, plots and per-run "
                   "records; no model, log or label (not for study-unpack)")
    s.set_defaults(fn=_study_pack)

    s = sub.add_parser("study-unpack", help="put a study-pack back as a work dir (on another machine or session); "
                       "the next `study` call rebuilds the corpus and goes on where the pack left off")
    s.add_argument("pack_dir", type=path, help="a directory written by study-pack")
    s.add_argument("work_dir", type=path, help="a new (or empty) work dir")
    s.set_defaults(fn=_study_unpack)

    s = sub.add_parser("choose-layer", help="score every layer's clusters on held-out data; pick the best")
    s.add_argument("--ckpt", required=True, help="HuBERT checkpoint")
    s.add_argument("--data", required=True, help="directory with {split}.tsv (and {split}.phn for PNMI)")
    s.add_argument("--split", type=plain_name, default="valid", help="held-out split to score on")
    s.add_argument("--k", type=integer(2), required=True, help="clusters per layer (the target's K)")
    s.add_argument("--candidates", type=int_list(1), default=None, help="comma-separated 1-based layers "
                   "(default: all)")
    s.add_argument("--seed", type=SEED, default=1, help="k-means seed")
    s.add_argument("--max-utterances", type=integer(1), default=200, help="utterances scored")
    s.add_argument("--json", type=output_file, default=None, help="write the choice and every layer's score here")
    s.set_defaults(fn=_choose_layer)

    s = sub.add_parser("cluster-quality", help="PNMI of MFCC clusters and of every layer's clusters, one "
                       "protocol: fit on train, score on valid")
    s.add_argument("--data", required=True, help="directory with train/valid .tsv and valid.phn")
    s.add_argument("--k", type=integer(2), required=True, help="clusters (the same K for every representation)")
    s.add_argument("--ckpt", default=None, help="HuBERT checkpoint (default: MFCC only)")
    s.add_argument("--layers", type=int_list(1), default=None, help="comma-separated 1-based layers (default: all)")
    s.add_argument("--train-utterances", type=integer(1), default=300, help="train utterances k-means is fit on")
    s.add_argument("--valid-utterances", type=integer(1), default=300, help="valid utterances scored")
    s.add_argument("--seed", type=SEED, default=1, help="k-means seed")
    s.add_argument("--json", type=output_file, default=None, help="also write every score here")
    s.set_defaults(fn=_cluster_quality)

    s = sub.add_parser("init-continue", help="next iteration's initial weights from the previous checkpoint")
    s.add_argument("--prev", required=True, help="previous iteration's pretraining checkpoint")
    s.add_argument("--label-dir", required=True, help="the next iteration's label dir (dict.NAME.txt)")
    s.add_argument("--labels", type=name_list, default=["km"], help="comma-separated label names")
    s.add_argument("--reset-top-layers", type=integer(0), default=0, help="re-initialise this many top blocks")
    s.add_argument("--out", type=output_file, required=True, help="checkpoint to write (for checkpoint.finetune_from_model)")
    s.add_argument("--seed", type=SEED, default=1, help="seed of the fresh heads and reset layers")
    s.add_argument("model", nargs="*", help="model.KEY=VALUE of the next iteration's model (e.g. model._name=ae_hubert)")
    s.set_defaults(fn=_init_continue)

    s = sub.add_parser("probe", help="per-layer phone/letter/word/voice/input metrics of checkpoints, with plots")
    s.add_argument("--ckpt", nargs="+", required=True,
                   help="checkpoint files and/or directories of checkpoints (runs, e.g. iterations, in order)")
    s.add_argument("--data", required=True,
                   help="labelled data: train/valid .tsv and any of .phn, .ltr, .wrdspan, .spk")
    s.add_argument("--out", type=path, required=True, help="output directory (probe.json, probe.csv, plots)")
    s.add_argument("--k", type=integer(2), default=50, help="clusters for PNMI/purities")
    s.add_argument("--max-utterances", type=integer(1), default=200, help="utterances per split")
    s.add_argument("--seed", type=SEED, default=1, help="k-means and probe seed")
    _device(s)
    s.add_argument("--cca", action="store_true", help="also the mean CCA similarity with the input MFCC")
    s.add_argument("--ctc-steps", type=integer(1), default=150, help="optimisation steps of the CTC letter probe")
    s.set_defaults(fn=_probe)

    s = sub.add_parser("decode", help="greedy CTC decoding of a fine-tuned checkpoint: WER, CER, transcripts")
    s.add_argument("--ckpt", required=True, help="fine-tuned CTC checkpoint")
    s.add_argument("--data", required=True, help="directory with {split}.tsv (and references {split}.ltr/.wrd)")
    s.add_argument("--split", type=plain_name, required=True, help="split to decode")
    s.add_argument("--out", help="write {split}.hyp.wrd / .ref.wrd / .hyp.units / .scores.json here")
    _device(s)
    s.add_argument("--max-utterances", type=integer(1), default=None, help="decode only the first N (default: all)")
    s.set_defaults(fn=_decode)

    s = sub.add_parser("spm", help="sentencepiece subword units + fairseq dictionary as CTC targets")
    s.add_argument("--data", required=True, help="directory with {train,valid,test}.wrd (or .ltr)")
    s.add_argument("--vocab-size", type=integer(2), required=True, help="number of subword units")
    s.add_argument("--name", type=plain_name, default=None, help="label name (default spm{vocab_size})")
    s.add_argument("--model-type", default="unigram", choices=["unigram", "bpe", "char", "word"],
                   help="sentencepiece model type")
    s.set_defaults(fn=_spm)

    s = sub.add_parser("reset-sweep", help="fine-tune once per k with the top k layers reset; WER vs k")
    s.add_argument("--ckpt", required=True, help="pretrained HuBERT checkpoint (w2v_path)")
    s.add_argument("--data", required=True, help="fine-tuning data: {train,valid}.tsv/.ltr, dict.ltr.txt")
    s.add_argument("--ks", type=int_list(0), required=True, help="comma-separated k values, e.g. 0,1,2,3")
    s.add_argument("--work-dir", type=path, required=True, help="one run per k under here, sweep.csv/json, wer_vs_k.png")
    s.add_argument("--mode", default="reinit", choices=["reinit", "drop"],
                   help="reinit: fresh weights in the top k blocks; drop: remove them")
    s.add_argument("--config", default="finetune/toy_cpu", help="shipped fine-tune config or a YAML path")
    s.add_argument("--splits", type=name_list, default=["valid"], help="comma-separated splits to decode")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every run (same seed/budget for all k)")
    s.set_defaults(fn=_reset_sweep)

    s = sub.add_parser("export-stock", help="an ae_hubert pretraining checkpoint under stock names (hubert)")
    s.add_argument("--ckpt", required=True, help="ae_hubert pretraining checkpoint")
    s.add_argument("--out", type=output_file, required=True, help="checkpoint to write")
    s.set_defaults(fn=_export_stock)

    s = sub.add_parser("launch", help="a schedule's steps for G GPUs x N nodes; --slurm writes sbatch scripts")
    s.add_argument("--schedule", required=True, help="a YAML file or a shipped name")
    s.add_argument("--work-dir", type=path, required=True, help="the run's work dir (on a shared filesystem)")
    s.add_argument("--data", default=None, help="manifest directory (overrides the schedule's data:)")
    s.add_argument("--nodes", type=integer(1, 10000), default=1, help="nodes for training")
    s.add_argument("--gpus-per-node", type=integer(1, 64), default=8, help="GPUs per node")
    s.add_argument("--port", type=integer(1, 65535), default=29671, help="distributed_port for multi-node runs")
    s.add_argument("--slurm", metavar="DIR", help="write one sbatch script per stage and submit.sh here")
    s.add_argument("--time", type=slurm_time, default="72:00:00", help="SLURM time limit per stage")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every training run")
    s.set_defaults(fn=_launch)

    s = sub.add_parser("report", help="one self-contained HTML page of a work dir (iterate, demo, probe, sweep)")
    s.add_argument("work_dir", help="a work dir of iterate, demo, probe (--out) or reset-sweep")
    s.add_argument("--out", type=output_file, default=None, help="HTML file to write (default: WORK_DIR/report.html)")
    s.set_defaults(fn=_report)

    s = sub.add_parser("demo", help="the HuBERT loop on the synthetic corpus: probes and a reset comparison")
    s.add_argument("work_dir", type=path, help="everything the demo writes goes here (resumable)")
    s.add_argument("--utterances", type=integer(10), default=400, help="corpus size")
    s.add_argument("--seed", type=SEED, default=1, help="corpus seed")
    s.add_argument("--full", action="store_true", help="the longer comparisons: standard_toy vs progressive_toy, "
                   "reset sweep k = 0..3 with the full fine-tuning budget (about 20 min)")
    s.add_argument("--schedules", type=name_list, default=None,
                   help="comma-separated schedules to run side by side (default: demo_toy; with --full "
                        "standard_toy,progressive_toy)")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every training run")
    s.set_defaults(fn=_demo)
    return p


def invoke(argv: list[str]):
    """Run one subcommand in this process; its result. Bad arguments raise :class:`UsageError`."""
    args = build_parser().parse_args(argv)
    return args.fn(args)


def main(argv=None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # tables reach a redirected log as they are printed
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print(f"ae-hubert: error: {e}", file=sys.stderr)
        return 2
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # an import may have configured the root logger already
    for name in ("fairseq", "ae_hubert"):  # fairseq's import configures the root logger at INFO
        logging.getLogger(name).setLevel(level)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    if not args.verbose:  # library deprecation notices are not the user's business; -v shows them
        import warnings

        warnings.filterwarnings("ignore")
    try:
        args.fn(args)
    except AeHubertError as e:
        print(f"ae-hubert {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as e:  # a binary or non-UTF-8 file where text (manifest, labels, dict) was expected
        print(f"ae-hubert {args.cmd}: error: a text input is not UTF-8 ({e.reason} at byte {e.start}); "
              "manifests, label and dictionary files must be UTF-8 text", file=sys.stderr)
        return 2
    except OSError as e:  # an output path the checks could not foresee (a full disk, a vanished directory)
        where = e.filename if e.filename is not None else ""
        print(f"ae-hubert {args.cmd}: error: {where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ae-hubert {args.cmd}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
