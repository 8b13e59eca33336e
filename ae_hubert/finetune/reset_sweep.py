"""``ae-hubert reset-sweep``: fine-tune once per k with the top k layers reset, decode, WER vs k.

Every run uses the same fine-tuning config, seed and budget (the stock ``fairseq-hydra-train`` with
``model.reset_top_layers=k``), and is decoded on its own from ``checkpoint_last.pt`` (equal budget,
no selection on the scored split). Resumable: each run's training and decoding are stages, and a
rerun resumes training from fairseq's ``checkpoint_last.pt``. Writes ``sweep.json``, ``sweep.csv``
and ``wer_vs_k.png`` under the work dir.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
from typing import Callable

from omegaconf import OmegaConf

from ..analysis.report import withdraw_report
from ..common.atomic import atomic_path, check_output_files, remove_output, remove_stale_partials, write_text_atomic
from ..common.errors import AeHubertError, located, missing
from ..runner.configs import (check_batch_fits, check_config_unchanged, check_driven_config, check_lr_schedule,
                              check_mask_fits, check_training_numbers, compose_train_config, driven_override,
                              override_key, with_config_digest)
from ..common.lock import WorkDirLock, claim_linked_dirs
from ..runner.stages import Stages
from ..common.checkpoint import checkpoint_training_seconds, file_digest
from ..common.manifest import data_inputs
from ..runner.trainer import (check_before_training, check_hydra_path, check_no_checkpoints, check_trained_as_composed,
                              final_stats, remove_checkpoints, resolve_train_config, run_training, train_args)
from ..common.labels import dictionary_symbols, validate_label_file


def _run_overrides(data: str, ckpt: str, k: int, mode: str, save: str, overrides: list[str]) -> list[str]:
    return [f"task.data={os.path.abspath(data)}", f"model.w2v_path={os.path.abspath(ckpt)}",
            f"model.reset_top_layers={k}", f"model.reset_mode={mode}", f"checkpoint.save_dir={save}", *overrides]


SWEEP_OWNED = {"model.reset_top_layers": "use --ks", "model.reset_mode": "use --mode", "model.w2v_path": "use --ckpt",
               "task.data": "use --data", "checkpoint.save_dir": "one per k under --work-dir",
               "checkpoint.restore_file": "each k starts from --ckpt and resumes from its own checkpoint_last.pt",
               "checkpoint.continue_once": "each k starts from --ckpt and resumes from its own checkpoint_last.pt",
               "checkpoint.finetune_from_model": "each k starts from --ckpt (model.w2v_path)",
               "task.label_dir": "the transcripts are --data's (checked, and recorded for a resume)",
               "model.w2v_args": "each k is built from --ckpt (a model given here would load none of its weights)",
               "model.no_pretrained_weights": "each k starts from --ckpt's weights"}
# what a sweep's config itself may not set either: each k would not start from --ckpt's weights, or
# would train on transcripts other than --data's (which are checked and recorded)
SWEEP_KEEPS = {"model.w2v_args": None, "model.no_pretrained_weights": False, "task.label_dir": None}


def check_sweep(ckpt: str, data: str, ks: list[int], mode: str, cfg_dir: str, cfg_name: str,
                overrides: list[str], splits: tuple[str, ...]) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """Everything a sweep needs, checked before the first run: the pretrained checkpoint and its
    depth against the whole k list, then :func:`check_sweep_inputs` (whose result it returns)."""
    from ..common.checkpoint import load_hubert

    loaded = load_hubert(ckpt)
    if loaded.fine_tuned:
        raise located(ckpt, "a fine-tuned checkpoint; the sweep fine-tunes a pretrained one (its w2v_path)")
    return check_sweep_inputs(data, ks, loaded.num_layers, mode, cfg_dir, cfg_name, overrides, splits, ckpt)


def check_sweep_inputs(data: str, ks: list[int], depth: int, mode: str, cfg_dir: str, cfg_name: str,
                       overrides: list[str], splits: tuple[str, ...], ckpt: str = "/PRETRAINED.pt"
                       ) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """A sweep's inputs other than the checkpoint (the study checks them before the models exist):
    the k list against ``depth``, the overrides, the composed fine-tuning config, the data and label
    files. Returns the runs' ``max_update``, the splits they train and validate on and their label names."""
    from ..common.manifest import read_manifest

    if not ks:
        raise AeHubertError("--ks: give at least one k")
    for o in overrides:
        key = override_key(o)
        if driven_override(o):
            raise AeHubertError(f"override {o!r}: {driven_override(o)}")
        if key in SWEEP_OWNED:
            raise AeHubertError(f"override {o!r}: the sweep sets {key} for every run ({SWEEP_OWNED[key]})")
        inside = sorted(k for k in SWEEP_OWNED if k.startswith(key + "."))
        if inside:
            raise AeHubertError(f"override {o!r}: a whole group sets {', '.join(inside)}, which the sweep sets for "
                                "every run; override its keys one by one")
    too_deep = [k for k in ks if k > depth or (mode == "drop" and k == depth)]
    if any(k < 0 for k in ks) or too_deep:
        raise AeHubertError(f"--ks {','.join(map(str, ks))}: the model has {depth} transformer layers; "
                            f"{mode} needs 0 <= k {'<' if mode == 'drop' else '<='} {depth}")
    composed_with = _run_overrides(data, ckpt, ks[0], mode, "/SAVE_DIR", overrides)
    cfg = compose_train_config(cfg_dir, cfg_name, composed_with, "reset-sweep")
    check_driven_config(cfg, cfg_dir, cfg_name, "reset-sweep", composed_with)
    for key, default in SWEEP_KEEPS.items():
        if OmegaConf.select(cfg, key, default=default) not in (default, None):
            raise AeHubertError(f"{os.path.join(cfg_dir, cfg_name)}.yaml: {key} is set; "
                                f"{SWEEP_OWNED[key]}: remove it from the config")
    labels = list(cfg.task.labels)
    for name in labels:
        path = os.path.join(data, f"dict.{name}.txt")
        if not os.path.isfile(path):
            raise missing(path, "dictionary of the fine-tuning labels")
    symbols = {name: dictionary_symbols(os.path.join(data, f"dict.{name}.txt")) for name in labels}
    trained = (str(cfg.dataset.train_subset), str(cfg.dataset.valid_subset))
    train = read_manifest(os.path.join(data, f"{cfg.dataset.train_subset}.tsv"))
    check_batch_fits(cfg, [e.nsamples for e in train.entries], "reset-sweep")
    check_mask_fits(cfg, {split: [e.nsamples for e in read_manifest(os.path.join(data, f"{split}.tsv")).entries]
                          for split in (str(cfg.dataset.train_subset), *str(cfg.dataset.valid_subset).split(","))},
                    "reset-sweep")
    check_lr_schedule(cfg, "reset-sweep")
    check_training_numbers(cfg, "reset-sweep")
    for split in dict.fromkeys(("train", "valid", *trained, *splits)):
        n = len(read_manifest(os.path.join(data, f"{split}.tsv")))
        for name in labels:  # what trains and validates must be in the dictionary (else CTC learns <unk>)
            validate_label_file(os.path.join(data, f"{split}.{name}"), n,
                                symbols[name] if split in trained else None)
    used = (str(cfg.dataset.train_subset), *str(cfg.dataset.valid_subset).split(","))
    return int(cfg.optimization.max_update), tuple(dict.fromkeys(used)), tuple(labels)


def reset_sweep(ckpt: str, data: str, ks: list[int], work_dir: str, mode: str = "reinit",
                config: str = "finetune/toy_cpu", overrides: list[str] | None = None,
                splits: tuple[str, ...] = ("valid",), restart: int | None = None) -> list[dict]:
    """One fine-tuning per k (resumable; a rerun under other settings is refused); ``restart``: redo
    that k's run from scratch under the settings given now."""
    from .decode import decode

    cfg_dir, cfg_name = resolve_train_config(config, "reset-sweep --config")
    if not os.path.isfile(ckpt):
        raise missing(ckpt, "checkpoint")
    overrides = list(overrides or [])
    w = os.path.abspath(work_dir)
    check_hydra_path(w, "--work-dir")  # before composing the config, where hydra would say it unnamed
    check_hydra_path(os.path.abspath(data), "--data")
    check_hydra_path(os.path.abspath(ckpt), "--ckpt")
    max_update, trained, labels = check_sweep(ckpt, data, ks, mode, cfg_dir, cfg_name, overrides, splits)
    if restart is not None and restart not in ks:
        raise AeHubertError(f"--restart {restart}: not one of --ks {','.join(map(str, ks))}")
    if os.path.realpath(ckpt).startswith(os.path.realpath(w) + os.sep):
        raise located(ckpt, f"--ckpt lies in the sweep's --work-dir {w}, where its runs write and restart; copy it "
                            "elsewhere first")
    rows = []
    with WorkDirLock(w, "reset-sweep", writes=[os.path.join(w, f"k{k}") for k in ks]):  # a k's run dir, as planned
        remove_stale_partials(w, recursive=True)
        check_output_files(*(os.path.join(w, f) for f in ("sweep.json", "sweep.csv", "wer_vs_k.png", "report.html")))
        stages = Stages(w, way_out="use a new work dir, or --restart K to redo that k's run under the settings "
                                   "given now ({name})")
        def planned(k):  # a k's run dir, checkpoints, training arguments and recorded command
            run = os.path.join(w, f"k{k}")  # (the lock's writes)
            save = os.path.join(run, "checkpoints")
            args = train_args(cfg_dir, cfg_name, _run_overrides(data, ckpt, k, mode, save, overrides))
            return run, save, args, with_config_digest(" ".join(args).replace(w, "$W"), args)
        runs = {k: planned(k) for k in ks}
        # everything that would refuse the sweep is checked before anything is removed or trained
        scored = tuple(s for s in splits if s not in trained)  # decoded only: their manifests and references
        references = tuple(f"{s}.{x}" for s in scored for x in ("ltr", "wrd") if os.path.isfile(os.path.join(data,
                                                                                                         f"{s}.{x}")))
        def inputs_now():  # (read again right before each k trains)
            return {**data_inputs(data, trained + scored, tuple(f"{split}.{name}" for name in labels
                                                                for split in trained)
                                  + tuple(f"dict.{name}.txt" for name in labels) + references),
                    "ckpt": (ckpt, file_digest(ckpt))}
        def split_inputs(split):  # what a decode of ``split`` reads
            return data_inputs(data, (split,), tuple(f"{split}.{x}" for x in ("ltr", "wrd")
                                                     if os.path.isfile(os.path.join(data, f"{split}.{x}"))))
        inputs = inputs_now()
        stages.check_inputs(inputs, write=False)
        for k in ks:
            if k != restart:
                stages.check(f"k{k}.train", *runs[k][3])
                if stages.never_started(f"k{k}.train"):
                    check_no_checkpoints(runs[k][1], f"k{k}.train", f"--restart {k}")
        stages.check_inputs(inputs)
        for k in ks:
            run, save, args, _ = runs[k]
            if k == restart:  # every split it decoded before goes with its run, not only those named now
                _drop_row(w, k)  # (first: no table outlives the checkpoints, even one that cannot be rewritten)
                for name in [f"k{k}.train", *(n for n in stages.names() if n.startswith(f"k{k}.decode."))]:
                    if stages.forget(name):
                        stages.echo(f"[redo] {name}")
                remove_checkpoints(save)

            composed = None
            if stages.done(f"k{k}.train") is None:
                claim_linked_dirs(w, [run], "reset-sweep")  # a link made since the lock was taken
                composed = check_before_training(stages, f"k{k}.train", save, inputs_now, lambda: planned(k)[3][0],
                                                 runs[k][3][0], f"--restart {k}", args, run)

            def _train(args=args, run=run, save=save, composed=composed):
                stats = final_stats(run_training(args, run, save, max_update), save)
                # then, as checked before it trained: the config it composed, its files, its inputs (else not done)
                check_trained_as_composed(run, composed, f"k{k}.train", f"--restart {k}", w)
                check_config_unchanged(planned(k)[3][0], runs[k][3][0], f"k{k}.train")
                stages.check_inputs(inputs_now(), write=False)
                return {**stats, "train_seconds": checkpoint_training_seconds(os.path.join(save, "checkpoint_last.pt"))}
            stats = stages.run(f"k{k}.train", _train, *runs[k][3])
            row = {"k": k, "mode": mode, "train": stats}
            for split in splits:
                def _decode(split=split, save=save, run=run):
                    stages.check_inputs(split_inputs(split), write=False)  # its manifest, audio, references as
                    r = decode(os.path.join(save, "checkpoint_last.pt"), data, split, os.path.join(run, "decode"))
                    stages.check_inputs(split_inputs(split), write=False)  # recorded, before and after it reads them
                    return {key: r[key] for key in ("wer", "cer", "words", "utterances") if key in r}
                row[split] = stages.run(f"k{k}.decode.{split}", _decode)
            rows.append(row)
        earlier = _earlier_rows(stages, w, ks, mode, splits, lambda k: planned(k)[3])
        table = sorted(rows + earlier, key=lambda r: r["k"])
        write_sweep(table, splits + _kept_splits(stages, table, splits), w)
    return rows


def _drop_row(w: str, k: int) -> None:
    """The sweep's table without the row of ``k``, whose run is redone (rewritten whole when the
    sweep ends; until then it shows no figures of checkpoints no longer there): from sweep.json, or,
    when that cannot be read (missing, corrupt, a link), the table's files go; so does the report."""
    withdraw_report(w)
    path = os.path.join(w, "sweep.json")
    rows = None
    if not os.path.islink(path):
        with contextlib.suppress(OSError, ValueError), open(path) as f:
            rows = json.load(f)
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        kept = [r for r in rows if r.get("k") != k]
        if kept != rows:
            write_sweep(kept, tuple(key for key, v in rows[0].items() if isinstance(v, dict) and {"wer", "cer"} <= set(v)),
                        w)
    else:
        for name in ("sweep.json", "sweep.csv", "wer_vs_k.png"):
            if not os.path.isdir(os.path.join(w, name)):  # (a directory: refused when the sweep writes its table)
                remove_output(os.path.join(w, name))


def _kept_splits(stages: Stages, rows: list[dict], splits: tuple[str, ...]) -> tuple[str, ...]:
    """Splits an earlier call decoded for every row of the sweep but this call did not name (a rerun
    without ``--splits valid,test``): their columns stay in sweep.csv/json instead of being dropped."""
    found = {}
    for name in stages.names():
        m = re.fullmatch(r"k(\d+)\.decode\.(.+)", name)
        if m and m[2] not in splits and stages.done(name) is not None:
            found.setdefault(m[2], set()).add(int(m[1]))
    ks_now = {r["k"] for r in rows}
    kept = tuple(sorted(s for s, ks in found.items() if ks_now <= ks))
    for s, ks in sorted(found.items()):
        if s not in kept and ks & ks_now:  # said, not dropped in silence
            stages.echo(f"[note] {s}: decoded for k {','.join(map(str, sorted(ks & ks_now)))} only, so not in "
                        f"sweep.csv; add it to --splits to decode it for every k")
    for r in rows:
        for s in kept:
            r[s] = stages.done(f"k{r['k']}.decode.{s}")["result"]
    return kept


def _earlier_rows(stages: Stages, w: str, ks: list[int], mode: str, splits: tuple[str, ...],
                  expected: Callable[[int], tuple[str, tuple[str, ...]]]) -> list[dict]:
    """Rows of ks an earlier call finished in this work dir under the settings of this one (the same
    command for that k, every split decoded), so a narrower rerun (``--ks 0`` after ``--ks 0,1,2,3``)
    does not drop them from sweep.json, and a sweep.json never mixes settings."""
    out = []
    for name in os.listdir(w):
        if not (name[:1] == "k" and name[1:].isdigit()) or int(name[1:]) in ks:
            continue
        k = int(name[1:])
        train = stages.done(f"k{k}.train")
        decoded = [stages.done(f"k{k}.decode.{split}") for split in splits]
        if train is None or None in decoded:
            continue
        try:
            stages.check(f"k{k}.train", *expected(k))
        except AeHubertError:
            continue  # trained under other settings: not this sweep's row
        out.append({"k": k, "mode": mode, "train": train["result"],
                    **{split: d["result"] for split, d in zip(splits, decoded)}})
    return out


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
