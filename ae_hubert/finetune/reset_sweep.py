"""``ae-hubert reset-sweep``: fine-tune once per k with the top k layers reset, decode, WER vs k.

Every run uses the same fine-tuning config, seed and budget (the stock ``fairseq-hydra-train`` with
``model.reset_top_layers=k``), and is decoded on its own from ``checkpoint_last.pt`` (equal budget,
no selection on the scored split). Resumable: each run's training and decoding are stages, and a
rerun resumes training from fairseq's ``checkpoint_last.pt``. Writes ``sweep.json``, ``sweep.csv``
and ``wer_vs_k.png`` under the work dir.
"""
from __future__ import annotations

import csv
import json
import os

from ..common.atomic import atomic_path, write_text_atomic
from ..common.errors import AeHubertError
from ..pipeline.stages import Stages
from ..pipeline.train import final_stats, run_training, train_command


def reset_sweep(ckpt: str, data: str, ks: list[int], work_dir: str, mode: str = "reinit",
                config: str = "finetune/toy_cpu", overrides: list[str] | None = None,
                splits: tuple[str, ...] = ("valid",)) -> list[dict]:
    from ..pipeline.schedule import ScheduleError, resolve_train_config
    from .decode import decode

    try:
        cfg_dir, cfg_name = resolve_train_config(config, "reset-sweep --config")
    except ScheduleError as e:
        raise AeHubertError(str(e)) from None
    if not os.path.isfile(ckpt):
        raise AeHubertError(f"{ckpt}: checkpoint not found")
    w = os.path.abspath(work_dir)
    stages = Stages(w)
    rows = []
    for k in ks:
        run = os.path.join(w, f"k{k}")
        save = os.path.join(run, "checkpoints")
        cmd = train_command(cfg_dir, cfg_name, [
            f"task.data={os.path.abspath(data)}", f"model.w2v_path={os.path.abspath(ckpt)}",
            f"model.reset_top_layers={k}", f"model.reset_mode={mode}", f"checkpoint.save_dir={save}",
            *(overrides or [])])
        stats = stages.run(f"k{k}.train", lambda: final_stats(run_training(cmd, run, save_dir=save)))
        row = {"k": k, "mode": mode, "train": stats}
        for split in splits:
            def _decode(split=split):
                r = decode(os.path.join(save, "checkpoint_last.pt"), data, split, os.path.join(run, "decode"))
                return {key: r[key] for key in ("wer", "cer", "words", "utterances") if key in r}
            row[split] = stages.run(f"k{k}.decode.{split}", _decode)
        rows.append(row)
    write_sweep(rows, splits, w)
    return rows


def sweep_table(rows: list[dict], splits: tuple[str, ...]) -> str:
    head = f"{'k reset':>7s} {'mode':>6s} " + " ".join(f"{s + ' WER':>10s} {s + ' CER':>10s}" for s in splits)
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(f"{r['k']:7d} {r['mode']:>6s} " + " ".join(
            f"{100 * r[s]['wer']:9.1f}% {100 * r[s]['cer']:9.1f}%" for s in splits))
    return "\n".join(out)


def write_sweep(rows: list[dict], splits: tuple[str, ...], out_dir: str) -> list[str]:
    from ..analysis.plots import plt, save_figure

    js = os.path.join(out_dir, "sweep.json")
    write_text_atomic(js, json.dumps(rows, indent=1) + "\n")
    path = os.path.join(out_dir, "sweep.csv")
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["k", "mode", *[f"{s}_{m}" for s in splits for m in ("wer", "cer")]])
        for r in rows:
            wr.writerow([r["k"], r["mode"], *[f"{r[s][m]:.6f}" for s in splits for m in ("wer", "cer")]])
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for s in splits:
        ax.plot([r["k"] for r in rows], [100 * r[s]["wer"] for r in rows], marker="o", label=f"{s} WER")
        ax.plot([r["k"] for r in rows], [100 * r[s]["cer"] for r in rows], marker="s", ls="--", label=f"{s} CER")
    ax.set_xlabel("top layers reset before fine-tuning (k)")
    ax.set_ylabel("%")
    ax.legend(fontsize=7)
    return [js, path, save_figure(fig, os.path.join(out_dir, "wer_vs_k.png"))]
