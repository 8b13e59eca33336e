"""``ae-hubert``: the sidecar tools between HuBERT iterations (thin layer over the stages)."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .common.errors import AeHubertError


def _toy_corpus(a):
    from .corpus.toy_corpus import build

    s = build(a.out_dir, a.utterances, a.seed, a.voices.split(",") if a.voices else None, a.workers)
    print(json.dumps(s["splits"], indent=1))


def _dump(a):
    from .features import dump

    if a.kind == "mfcc":
        paths = dump.dump_mfcc(a.tsv_dir, a.split, a.out_dir, a.nshard, a.rank)
    else:
        if a.ckpt is None or a.layer is None:
            raise AeHubertError("dump hubert needs --ckpt and --layer")
        paths = dump.dump_hubert(a.tsv_dir, a.split, a.ckpt, a.layer, a.out_dir, a.nshard, a.rank,
                                 max_samples=a.max_samples, max_chunk=a.max_chunk, device=a.device,
                                 user_dir=a.user_dir, dtype=a.dtype)
    print(" ".join(paths))


def _kmeans(a):
    from .clustering.kmeans import learn_kmeans

    km = learn_kmeans(a.feat_dir, a.split, a.nshard, a.k, a.out, a.percent, a.seed, a.max_iter, a.streamed,
                      a.chunk_frames)
    print(f"{a.out}: k={a.k} inertia={km.inertia_:.6g}")


def _label(a):
    from .clustering.label import dump_labels

    print(dump_labels(a.feat_dir, a.split, a.nshard, a.km, a.out_dir, a.name, a.device))


def _quality(a):
    from .clustering.quality import label_quality

    q = label_quality(a.km, a.phn, a.km_rate, a.phn_rate, a.json)
    print(f"PNMI {q['pnmi']:.4f}  phone purity {q['phone_purity']:.4f}  cluster purity "
          f"{q['cluster_purity']:.4f}  ({q['frames']} frames, {q['n_labels_used']} labels used)")


def _demo(a):
    from .pipeline.demo import run_demo

    run_demo(a.work_dir, utterances=a.utterances, seed=a.seed, schedules=a.schedules.split(","),
             overrides=a.overrides)


def _iterate(a):
    from .pipeline.iterate import iterate, summary_table

    records = iterate(a.schedule, a.work_dir, a.data, a.overrides, a.dry_run)
    if records:
        print()
        print(summary_table(records))
        print(f"records: {a.work_dir}/records.json")


def _choose_layer(a):
    from .clustering.layer_choice import choose_layer

    cands = [int(c) for c in a.candidates.split(",")] if a.candidates else None  # None: every layer
    r = choose_layer(a.ckpt, a.data, a.split, cands, a.k, a.seed, a.max_utterances)
    print(r["why"])
    if a.json:
        from .common.atomic import write_text_atomic

        write_text_atomic(a.json, json.dumps(r, indent=1) + "\n")


def _init_continue(a):
    from .pipeline.continue_init import model_overrides, prepare_continue_init

    r = prepare_continue_init(a.prev, a.label_dir, a.labels.split(","), a.reset_top_layers, a.out, a.seed,
                              model_overrides(a.model))
    print(f"{a.out}: {r['kept_tensors']} tensors from {a.prev}, {len(r['fresh_tensors'])} fresh")


def _probe(a):
    from .analysis.layer_probe import probe_checkpoints, write_probe_results

    results = probe_checkpoints(a.ckpt, a.data, k=a.k, max_utterances=a.max_utterances, seed=a.seed,
                                device=a.device, cca=a.cca, ctc_steps=a.ctc_steps)
    js, csv_path = write_probe_results(results, a.out)
    from .analysis.layer_probe import present_metrics
    from .analysis.plots import plot_probe_results

    pngs = plot_probe_results(results, present_metrics(results), a.out)
    for r in results:
        print(f"{r['checkpoint']} ({r['run']}, {r['updates']} updates): "
              f"autoencoder index {r['autoencoder_index']:.3f}")
        for layer, m in r["layers"].items():
            print(f"  layer {layer:>2}: " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()))
    print("\n".join([js, csv_path, *pngs]))


def _decode(a):
    from .finetune.decode import decode

    r = decode(a.ckpt, a.data, a.split, a.out, a.device, a.max_utterances)
    if "wer" in r:
        print(f"{a.split}: WER {100 * r['wer']:.2f}%  CER {100 * r['cer']:.2f}%  "
              f"({r['utterances']} utterances, {r['words']} words)")
    else:
        print(f"{a.split}: {r['utterances']} utterances decoded (no reference transcripts)")
    if a.out:
        print(f"transcripts: {a.out}/{a.split}.hyp.wrd")


def _spm(a):
    from .finetune.spm_units import build_spm

    r = build_spm(a.data, a.vocab_size, a.name, a.model_type)
    print(f"{r['units']} units: {r['model']}, {r['dict']}")
    print("\n".join(r["labels"].values()))
    print(f"fine-tune with: task.labels=[{r['name']}] criterion.post_process=sentencepiece")


def _reset_sweep(a):
    from .finetune.reset_sweep import reset_sweep, sweep_table

    ks = [int(k) for k in a.ks.split(",")]
    splits = tuple(a.splits.split(","))
    rows = reset_sweep(a.ckpt, a.data, ks, a.work_dir, a.mode, a.config, a.overrides, splits)
    print(sweep_table(rows, splits))
    print(f"{a.work_dir}/sweep.csv  {a.work_dir}/wer_vs_k.png")


def _export_stock(a):
    from .models.export_stock import export_stock

    r = export_stock(a.ckpt, a.out)
    print(f"{r['to']}: stock hubert / hubert_pretraining names; dropped {len(r['dropped_tensors'])} extra-head tensors")


def _librispeech(a):
    from .corpus.librispeech import prepare_librispeech

    written = prepare_librispeech(a.root, a.out, a.libri_light)
    for name, n in written.items():
        print(f"{a.out}/{name}.tsv  {n} utterances (.wrd .ltr .spk)")
    print(f"{a.out}/dict.ltr.txt")


def _launch(a):
    from .pipeline.launch import distributed_overrides, plan_commands, write_slurm

    try:
        dist = distributed_overrides(a.nodes, a.gpus_per_node, a.port)
    except ValueError as e:
        raise AeHubertError(str(e)) from None
    stages = plan_commands(a.schedule, a.work_dir, a.data, [*a.overrides, *dist])
    if a.slurm:
        for path in write_slurm(stages, a.slurm, a.nodes, a.gpus_per_node, a.time):
            print(path)
    else:
        for name, cmd in stages:
            print(f"# {name}\n{cmd}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ae-hubert", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("toy-corpus", help="synthesise the offline demo corpus")
    s.add_argument("out_dir")
    s.add_argument("--utterances", type=int, default=400)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--voices", help="comma-separated flite:NAME / espeak:NAME (default: 2 flite + 4 espeak-ng)")
    s.add_argument("--workers", type=int, default=None)
    s.set_defaults(fn=_toy_corpus)

    s = sub.add_parser("librispeech", help="LibriSpeech (+ Libri-light limited) -> manifests, .wrd/.ltr, dict")
    s.add_argument("--root", required=True, help="LibriSpeech root (train-clean-100/, dev-clean/, ...)")
    s.add_argument("--out", required=True)
    s.add_argument("--libri-light", help="Libri-light librispeech_finetuning/ root (1h/, 9h/)")
    s.set_defaults(fn=_librispeech)

    s = sub.add_parser("dump", help="dump MFCC or HuBERT-layer features of a manifest shard")
    s.add_argument("kind", choices=["mfcc", "hubert"])
    s.add_argument("--tsv-dir", required=True)
    s.add_argument("--split", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--nshard", type=int, default=1)
    s.add_argument("--rank", type=int, default=0)
    s.add_argument("--ckpt", help="(hubert) any fairseq HuBERT checkpoint, pretrained or fine-tuned")
    s.add_argument("--layer", type=int, help="(hubert) 1-based transformer layer, as stock")
    s.add_argument("--max-samples", type=int, default=None,
                   help="(hubert) padded samples per batch (default 1.6M on CUDA; on CPU one utterance per batch)")
    s.add_argument("--max-chunk", type=int, default=1_600_000, help="(hubert) longer audio is cut, as stock")
    s.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    s.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="(hubert) model precision; float16/bfloat16 for GPUs, files stay float32")
    s.add_argument("--user-dir", default=None, help="another fairseq plugin the checkpoint needs")
    s.set_defaults(fn=_dump)

    s = sub.add_parser("kmeans", help="fit k-means on dumped features")
    s.add_argument("--feat-dir", required=True)
    s.add_argument("--split", required=True)
    s.add_argument("--nshard", type=int, default=1)
    s.add_argument("--k", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--percent", type=float, default=-1, help="fraction of utterances to sample (<=0: all)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-iter", type=int, default=100)
    s.add_argument("--streamed", action="store_true",
                   help="bounded memory: features stay memory-mapped, Lloyd passes read them in chunks")
    s.add_argument("--chunk-frames", type=int, default=200_000, help="(streamed) frames per chunk")
    s.set_defaults(fn=_kmeans)

    s = sub.add_parser("label", help="assign frame labels with a k-means model")
    s.add_argument("--feat-dir", required=True)
    s.add_argument("--split", required=True)
    s.add_argument("--nshard", type=int, default=1)
    s.add_argument("--km", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--name", default="km", help="label name: writes {split}.NAME and dict.NAME.txt")
    s.add_argument("--device", default=None)
    s.set_defaults(fn=_label)

    s = sub.add_parser("quality", help="PNMI and purities of frame labels against phone labels")
    s.add_argument("--km", required=True)
    s.add_argument("--phn", required=True)
    s.add_argument("--km-rate", type=float, default=50)
    s.add_argument("--phn-rate", type=float, default=50)
    s.add_argument("--json", default=None)
    s.set_defaults(fn=_quality)

    s = sub.add_parser("iterate", help="run a HuBERT iteration schedule (resumable)")
    s.add_argument("--schedule", required=True, help="a YAML file or a shipped name (standard, progressive_toy, ...)")
    s.add_argument("--work-dir", required=True)
    s.add_argument("--data", default=None, help="manifest directory (overrides the schedule's data:)")
    s.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every training run (e.g. "
                   "distributed_training.distributed_world_size=8)")
    s.set_defaults(fn=_iterate)

    s = sub.add_parser("choose-layer", help="score every layer's clusters on held-out data; pick the best")
    s.add_argument("--ckpt", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="valid")
    s.add_argument("--k", type=int, required=True)
    s.add_argument("--candidates", default=None, help="comma-separated 1-based layers (default: all)")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--max-utterances", type=int, default=200)
    s.add_argument("--json", default=None)
    s.set_defaults(fn=_choose_layer)

    s = sub.add_parser("init-continue", help="next iteration's initial weights from the previous checkpoint")
    s.add_argument("--prev", required=True)
    s.add_argument("--label-dir", required=True)
    s.add_argument("--labels", default="km")
    s.add_argument("--reset-top-layers", type=int, default=0)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("model", nargs="*", help="model.KEY=VALUE of the next iteration's model (e.g. model._name=ae_hubert)")
    s.set_defaults(fn=_init_continue)

    s = sub.add_parser("probe", help="per-layer phone/letter/word/voice/input metrics of checkpoints, with plots")
    s.add_argument("--ckpt", nargs="+", required=True,
                   help="checkpoint files and/or directories of checkpoints (runs, e.g. iterations, in order)")
    s.add_argument("--data", required=True,
                   help="labelled data: train/valid .tsv and any of .phn, .ltr, .wrdspan, .spk")
    s.add_argument("--out", required=True)
    s.add_argument("--k", type=int, default=50)
    s.add_argument("--max-utterances", type=int, default=200)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--device", default=None)
    s.add_argument("--cca", action="store_true", help="also the mean CCA similarity with the input MFCC")
    s.add_argument("--ctc-steps", type=int, default=150, help="optimisation steps of the CTC letter probe")
    s.set_defaults(fn=_probe)

    s = sub.add_parser("decode", help="greedy CTC decoding of a fine-tuned checkpoint: WER, CER, transcripts")
    s.add_argument("--ckpt", required=True)
    s.add_argument("--data", required=True, help="directory with {split}.tsv (and references {split}.ltr/.wrd)")
    s.add_argument("--split", required=True)
    s.add_argument("--out", help="write {split}.hyp.wrd / .ref.wrd / .hyp.units / .scores.json here")
    s.add_argument("--device", default=None)
    s.add_argument("--max-utterances", type=int, default=None)
    s.set_defaults(fn=_decode)

    s = sub.add_parser("spm", help="sentencepiece subword units + fairseq dictionary as CTC targets")
    s.add_argument("--data", required=True, help="directory with {train,valid,test}.wrd (or .ltr)")
    s.add_argument("--vocab-size", type=int, required=True)
    s.add_argument("--name", default=None, help="label name (default spm{vocab_size})")
    s.add_argument("--model-type", default="unigram", choices=["unigram", "bpe", "char", "word"])
    s.set_defaults(fn=_spm)

    s = sub.add_parser("reset-sweep", help="fine-tune once per k with the top k layers reset; WER vs k")
    s.add_argument("--ckpt", required=True, help="pretrained HuBERT checkpoint (w2v_path)")
    s.add_argument("--data", required=True, help="fine-tuning data: {train,valid}.tsv/.ltr, dict.ltr.txt")
    s.add_argument("--ks", required=True, help="comma-separated k values, e.g. 0,1,2,3")
    s.add_argument("--work-dir", required=True)
    s.add_argument("--mode", default="reinit", choices=["reinit", "drop"])
    s.add_argument("--config", default="finetune/toy_cpu", help="shipped fine-tune config or a YAML path")
    s.add_argument("--splits", default="valid", help="comma-separated splits to decode")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every run (same seed/budget for all k)")
    s.set_defaults(fn=_reset_sweep)

    s = sub.add_parser("export-stock", help="an ae_hubert pretraining checkpoint under stock names (hubert)")
    s.add_argument("--ckpt", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=_export_stock)

    s = sub.add_parser("launch", help="a schedule's commands for G GPUs x N nodes; --slurm writes sbatch scripts")
    s.add_argument("--schedule", required=True)
    s.add_argument("--work-dir", required=True)
    s.add_argument("--data", default=None)
    s.add_argument("--nodes", type=int, default=1)
    s.add_argument("--gpus-per-node", type=int, default=8)
    s.add_argument("--port", type=int, default=29671, help="distributed_port for multi-node runs")
    s.add_argument("--slurm", metavar="DIR", help="write one sbatch script per stage and submit.sh here")
    s.add_argument("--time", default="72:00:00", help="SLURM time limit per stage")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every training run")
    s.set_defaults(fn=_launch)

    s = sub.add_parser("demo", help="toy corpus + the standard and progressive toy schedules, side by side")
    s.add_argument("work_dir")
    s.add_argument("--utterances", type=int, default=400)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--schedules", default="standard_toy,progressive_toy")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every training run")
    s.set_defaults(fn=_demo)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # an import may have configured the root logger already
    for name in ("fairseq", "ae_hubert"):  # fairseq's import configures the root logger at INFO
        logging.getLogger(name).setLevel(level)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        args.fn(args)
    except AeHubertError as e:
        print(f"ae-hubert {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
