"""``ae-hubert decode``, ``spm``, ``reset-sweep``: fine-tuning with the top layers reset, and its error rates."""
from __future__ import annotations

from ..common.arguments import Once, device_option, int_list, integer, name_list, path, plain_name
from ..common.command import Command, echo
from ..common.outputs import Files


def _decode(a):
    from .decode import decode

    r = decode(a.ckpt, a.data, a.split, a.out, a.device, a.max_utterances)
    if "wer" in r:
        echo(f"{a.split}: WER {100 * r['wer']:.2f}%  CER {100 * r['cer']:.2f}%  "
             f"({r['utterances']} utterances, {r['words']} words)")
    else:
        echo(f"{a.split}: {r['utterances']} utterances decoded (no reference transcripts)")
    if a.out:
        echo(f"transcripts: {a.out}/{a.split}.hyp.wrd")


def _decode_args(s):
    s.add_argument("--ckpt", required=True, help="fine-tuned CTC checkpoint")
    s.add_argument("--data", required=True, help="directory with {split}.tsv (and references {split}.ltr/.wrd)")
    s.add_argument("--split", type=plain_name, required=True, help="split to decode")
    s.add_argument("--out", help="write {split}.hyp.wrd / .ref.wrd / .hyp.units / .scores.json here")
    device_option(s)
    s.add_argument("--max-utterances", type=integer(1), default=None, help="decode only the first N (default: all)")


def _spm(a):
    from .spm_units import build_spm

    r = build_spm(a.data, a.vocab_size, a.name, a.model_type)
    echo(f"{r['units']} units: {r['model']}, {r['dict']}", *r["labels"].values(),
         f"fine-tune with: task.labels=[{r['name']}] criterion.post_process=sentencepiece")


def _spm_files(a) -> Files:
    """The data dir, and the label set NAME there unless spm made it (its NAME.model beside it): a
    k-means or phone label set of that name is not replaced by subword units."""
    import os

    name = a.name or f"spm{a.vocab_size}"
    ours = os.path.isfile(os.path.join(a.data, f"{name}.model"))
    return Files({a.data: "--data", **({} if ours else {os.path.join(a.data, f"dict.{name}.txt"): "--name"})})


def _spm_args(s):
    s.add_argument("--data", required=True, help="directory with {train,valid,test}.wrd (or .ltr)")
    s.add_argument("--vocab-size", type=integer(2), required=True, help="number of subword units")
    s.add_argument("--name", type=plain_name, default=None, help="label name (default spm{vocab_size})")
    s.add_argument("--model-type", default="unigram", choices=["unigram", "bpe", "char", "word"],
                   help="sentencepiece model type")


def _reset_sweep(a):
    from ..analysis.report import build_report
    from .reset_sweep import reset_sweep, sweep_table

    rows = reset_sweep(a.ckpt, a.data, a.ks, a.work_dir, a.mode, a.config, a.overrides, tuple(a.splits), a.restart)
    echo(sweep_table(rows, tuple(a.splits)), f"{a.work_dir}/sweep.csv  {a.work_dir}/wer_vs_k.png",
         f"report: {build_report(a.work_dir)}")


def _reset_sweep_args(s):
    s.add_argument("--ckpt", required=True, help="pretrained HuBERT checkpoint (w2v_path)")
    s.add_argument("--data", required=True, help="fine-tuning data: {train,valid}.tsv/.ltr, dict.ltr.txt")
    s.add_argument("--ks", type=int_list(0), required=True, help="comma-separated k values, e.g. 0,1,2,3")
    s.add_argument("--work-dir", type=path, required=True, help="one run per k under here, sweep.csv/json, wer_vs_k.png")
    s.add_argument("--mode", default="reinit", choices=["reinit", "drop"],
                   help="reinit: fresh weights in the top k blocks; drop: remove them")
    s.add_argument("--config", default="finetune/toy_cpu", help="shipped fine-tune config or a YAML path")
    s.add_argument("--splits", type=name_list, default=["valid"], help="comma-separated splits to decode")
    s.add_argument("--restart", type=integer(0), metavar="K", action=Once, help="redo k's run from scratch under the settings "
                                                                   "given now (a rerun under other settings is refused)")
    s.add_argument("overrides", nargs="*", help="hydra overrides for every run (same seed/budget for all k)")


COMMANDS = [
    Command("decode", "greedy CTC decoding of a fine-tuned checkpoint: WER, CER, transcripts", _decode, _decode_args,
            files=lambda a: Files({a.out: "--out"} if a.out else {}, {a.ckpt: "--ckpt"}, {a.data: "--data"})),
    Command("spm", "sentencepiece subword units + fairseq dictionary as CTC targets", _spm, _spm_args,
            files=_spm_files),
    Command("reset-sweep", "fine-tune once per k with the top k layers reset; WER vs k", _reset_sweep, _reset_sweep_args),
]
