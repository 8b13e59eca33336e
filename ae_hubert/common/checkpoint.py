"""Everything about fairseq checkpoints, in one place: loading (the HuBERT encoder of any checkpoint,
pretrained or fine-tuned, stock or ours; a raw state, lazily), what a checkpoint records (updates,
training time), whether a file is intact, and which checkpoints a run saved.

Pretraining checkpoints (``hubert``, plugin subclasses) are rebuilt through their task and model
registries; fine-tuned CTC checkpoints (``hubert_ctc`` and ours) carry the pretraining config in
``model.w2v_args`` and the encoder weights under ``w2v_encoder.w2v_model.``, so only that encoder
is rebuilt (no ``w2v_path`` file, no label dictionaries and no data directory are needed).
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import zipfile
from dataclasses import dataclass

from .atomic import atomic_path
from .errors import AeHubertError, located, missing

LAST = "checkpoint_last.pt"  # fairseq's copy of the newest checkpoint of a run
INTERVAL = re.compile(r"checkpoint_\d+_\d+\.pt")  # fairseq's checkpoint_EPOCH_UPDATES.pt (save_interval_updates)
# every name fairseq's trainer saves under: last, best (also best_METRIC), per epoch, per interval
TRAINER_SAVES = re.compile(r"checkpoint(_last|_best|\.best_\S+|\d+|_\d+_\d+)\.pt")

CTC_PREFIX = "w2v_encoder.w2v_model."
# heads that only pretraining uses; fine-tuned checkpoints may or may not still carry them
PLUGIN_HEADS = ("layer_heads.", "reconstruct_head.")  # hubert_layer_targets' extra heads: not in stock hubert
PRETRAINING_ONLY = ("label_embs_concat", "final_proj.", "target_glu.", *PLUGIN_HEADS)


@dataclass
class LoadedHubert:
    model: "torch.nn.Module"  # a fairseq HubertModel, eval mode
    normalize: bool  # the task's waveform normalisation (layer_norm over the utterance)
    cfg: object  # the full checkpoint config (omegaconf)
    fine_tuned: bool
    path: str
    num_updates: int = 0  # training updates recorded in the checkpoint (0 for a fresh one)

    @property
    def num_layers(self) -> int:
        return len(self.model.encoder.layers)


def import_user_dir(user_dir: str | None) -> None:
    """Import another fairseq plugin (``--user-dir``) whose models a checkpoint may name."""
    if user_dir:
        from fairseq import utils

        utils.import_user_module(argparse.Namespace(user_dir=user_dir))


def load_failure(e: BaseException) -> str:
    """Why a checkpoint did not load, in a phrase: the class a pickle names that is not allow-listed
    (torch's own message would suggest loading it unsafely), or the unpickler's own complaint."""
    import re

    text = str(e)
    unsafe = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", text)
    if unsafe:
        return (f"it names {unsafe.group(1)}, outside the allow-list of what a fairseq checkpoint holds; not loaded, "
                "since unpickling it could run code")
    if "Weights only load failed" in text:
        detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
        return f"not a readable pickle: {detail.group(1).strip() if detail else 'refused by torch.load'}"
    first = (text.strip().splitlines() or [""])[0][:200]
    return f"loading failed: {type(e).__name__}" + (f" {first}" if first else "")


def load_state(path: str, arg_overrides: dict | None = None) -> dict:
    """``fairseq.checkpoint_utils.load_checkpoint_to_cpu`` with clear errors (``arg_overrides`` as there:
    config values replaced wherever the key appears)."""
    from .. import compat

    compat.install()
    import pickle

    from fairseq import checkpoint_utils

    if not os.path.isfile(path):
        raise missing(path, "checkpoint")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, AttributeError, TypeError,
            IndexError, zipfile.BadZipFile) as e:
        raise located(path, f"not a fairseq checkpoint ({load_failure(e)})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or state.get("cfg") is None:
        raise located(path, "not a fairseq checkpoint (no 'model' weights dict or no 'cfg')")
    return state


def load_state_lazily(path: str) -> dict:
    """A checkpoint's raw state with its tensors memory-mapped, not read (for its metadata)."""
    from .. import compat

    compat.install()
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise located(path, f"not a fairseq checkpoint ({load_failure(e)})") from None
    if not isinstance(state, dict):
        raise located(path, f"not a fairseq checkpoint (it holds a {type(state).__name__}, not a dict)")
    return state


def _is_hubert(model) -> bool:
    from fairseq.models.hubert import HubertModel

    return isinstance(model, HubertModel)


def state_updates(state: dict) -> int:
    """Training updates recorded in a loaded checkpoint state (0 when it has no optimizer history)."""
    hist = state.get("optimizer_history") or [{}]
    last = hist[-1] if isinstance(hist, list) and isinstance(hist[-1], dict) else {}
    return int(last.get("num_updates", 0) or 0)


def state_training_seconds(state: dict) -> float | None:
    """fairseq's training time recorded in a checkpoint state, summed over every resume of the run
    (``extra_state.previous_training_time``); None when it has none."""
    t = (state.get("extra_state") or {}).get("previous_training_time")
    return float(t) if isinstance(t, (int, float)) else None


def load_hubert(path: str, device: str = "cpu", user_dir: str | None = None,
                state: dict | None = None) -> LoadedHubert:
    """Rebuild the HuBERT encoder of ``path`` in eval mode (LayerDrop and dropout inactive).
    ``state``: the already loaded ``load_state(path)``, to avoid reading a large file twice."""
    from .. import register

    register()  # our models/tasks, so their checkpoints load
    from fairseq import models, tasks
    from fairseq.data import Dictionary

    try:
        import_user_dir(user_dir)
    except (ImportError, OSError) as e:
        raise located(user_dir, f"not an importable fairseq plugin ({e})") from None
    if state is None:
        state = load_state(path)
    cfg = state["cfg"]
    model_cfg = cfg.get("model")
    if model_cfg is None or "_name" not in model_cfg:
        raise located(path, "checkpoint config names no model")
    w2v_args = model_cfg.get("w2v_args")
    try:
        if w2v_args is not None:  # fine-tuned: rebuild the inner pretraining model only
            inner_task = tasks.setup_task(w2v_args.task)
            n_label_sets = max(1, len(w2v_args.task.get("labels") or [None]))
            inner_task.load_state_dict({"dictionaries": [Dictionary() for _ in range(n_label_sets)]})
            model = models.build_model(w2v_args.model, inner_task)
            if not _is_hubert(model):
                raise located(path, f"fine-tuned model wraps {w2v_args.model._name!r}, not a HuBERT model")
            model.remove_pretraining_modules()
            weights = {k[len(CTC_PREFIX):]: v for k, v in state["model"].items()
                       if k.startswith(CTC_PREFIX) and not k[len(CTC_PREFIX):].startswith(PRETRAINING_ONLY)}
            if not weights:
                raise located(path, f"no encoder weights under '{CTC_PREFIX}'")
            missing, unexpected = model.load_state_dict(weights, strict=False)
            bad = [k for k in list(missing) + list(unexpected) if not k.startswith(PRETRAINING_ONLY)]
            if bad:
                raise located(path, f"encoder weights do not match the model: {', '.join(bad[:5])}")
            normalize = bool(w2v_args.task.get("normalize", False))
        else:
            task = tasks.setup_task(cfg.task)
            if "task_state" in state:
                task.load_state_dict(state["task_state"])
            model = task.build_model(model_cfg, from_checkpoint=True)
            if not _is_hubert(model):
                raise located(path, f"model {model_cfg._name!r} is not a HuBERT model")
            model.load_state_dict(state["model"], strict=True, model_cfg=model_cfg)
            normalize = bool(cfg.task.get("normalize", False))
    except KeyError as e:
        if "_name" in str(e):
            raise located(path, f"model {model_cfg.get('_name')!r} is not registered (trained with another "
                                "plugin? pass its --user-dir)") from None
        raise located(path, f"checkpoint does not match its own config ({e})") from None
    except AeHubertError:
        raise
    except Exception as e:  # omegaconf/fairseq/torch: a config that does not build, weights that do not fit
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise located(path, f"checkpoint does not match its own config ({type(e).__name__}: {first[:300]})") from None
    model.eval()
    return LoadedHubert(model.to(device), normalize, cfg, w2v_args is not None, path, state_updates(state))


# --- integrity and what a checkpoint file records (read lazily) ---------------------------------

def intact(path: str) -> bool:
    """A torch zip checkpoint whose central directory is there (a truncated copy has none)."""
    try:
        with zipfile.ZipFile(path) as z:
            return len(z.namelist()) > 0
    except (zipfile.BadZipFile, OSError):
        return False


def repair_last_checkpoint(save_dir: str) -> str | None:
    """fairseq writes ``checkpoint_last.pt`` by a plain copy of the newest checkpoint, so a kill at the
    wrong moment leaves it truncated and the rerun cannot resume. Replace a truncated one by the
    newest intact ``checkpoint_*.pt`` (atomically), or remove it. Returns what was done, if anything."""
    last = os.path.join(save_dir, LAST)
    if not os.path.exists(last) or intact(last):
        return None
    candidates = [p for p in glob.glob(os.path.join(save_dir, "checkpoint*.pt"))
                  if p != last and ".partial-" not in p and intact(p)]
    if not candidates:
        os.remove(last)
        return f"removed truncated {last}"
    newest = max(candidates, key=os.path.getmtime)
    with atomic_path(last) as tmp:
        shutil.copyfile(newest, tmp)
    return f"replaced truncated {last} by {newest}"


def intact_state(path: str) -> dict | None:
    """A checkpoint's state with its tensors memory-mapped, not read; None when there is no intact one."""
    if not os.path.isfile(path) or not intact(path):
        return None
    return load_state_lazily(path)


def checkpoint_updates(path: str) -> int | None:
    """``num_updates`` recorded in a checkpoint, read without loading its tensors; None when there
    is no intact checkpoint."""
    state = intact_state(path)
    return None if state is None else state_updates(state)


def checkpoint_training_seconds(path: str) -> float | None:
    """The run's training time up to this checkpoint, over all its resumes (a stage's own seconds
    count only its last resume); None when unknown."""
    state = intact_state(path)
    return None if state is None else state_training_seconds(state)


# --- the checkpoints of a run ------------------------------------------------------------------

def checkpoint_runs(paths: list[str]) -> list[tuple[str, list[str]]]:
    """``[(run, files)]``: a directory is a run of its ``checkpoint*.pt``; consecutive files that sit in
    the same directory form one run."""
    runs: list[tuple[str, list[str]]] = []
    for p in paths:
        if os.path.isdir(p):
            found = [f for f in sorted(glob.glob(os.path.join(p, "checkpoint*.pt"))) if ".partial-" not in f]
            if not found:
                raise located(p, "no checkpoint*.pt in this directory")
            runs.append((os.path.normpath(p), found))
        elif not os.path.isfile(p):
            raise missing(p, "checkpoint")
        else:
            run = os.path.dirname(os.path.normpath(p))
            if runs and runs[-1][0] == run:
                runs[-1][1].append(p)
            else:
                runs.append((run, [p]))
    return runs


def run_label(run: str) -> str:
    """Short name of a run: ``iter2/checkpoints`` -> ``iter2``."""
    parts = os.path.normpath(run).split(os.sep)
    if parts[-1] == "checkpoints" and len(parts) > 1:
        return parts[-2]
    return parts[-1]


def saved_checkpoints(ckpt_dir: str) -> dict[int, str]:
    """``{updates: path}`` of every checkpoint a run saved (read from each file, not its name); an
    interval checkpoint is preferred to ``checkpoint_best``/``_last`` holding the same update."""
    out: dict[int, str] = {}
    for f in checkpoint_runs([ckpt_dir])[0][1]:  # sorted: checkpoint_E_U before _best and _last
        updates = checkpoint_updates(f)
        if updates is not None:
            out.setdefault(updates, f)
    return dict(sorted(out.items()))


def weights_digest(path: str) -> str:
    """A checkpoint's model by its weights, cheaply: every weight's name and shape, and the bytes of
    eight spread over them (memory-mapped, a few MB read). The same model however it was saved
    (slimmed of its optimizer state, re-saved), another one otherwise: any two trained states differ
    in every weight."""
    import hashlib

    import torch

    model = load_state_lazily(path).get("model")
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise located(path, "not a fairseq checkpoint (no 'model' weights dict)")
    keys = sorted(model)
    h = hashlib.sha1()
    for k in keys:
        h.update(f"{k} {tuple(model[k].shape)} {model[k].dtype}\n".encode())
    for k in keys if len(keys) <= 8 else [keys[round(i * (len(keys) - 1) / 7)] for i in range(8)]:
        h.update(model[k].detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


_DIGESTS: dict = {}  # file_digest's answers in this process, by the file's stat


def file_digest(path: str) -> str:
    """A file's identity by content (sha1, read in blocks): a starting or pretrained checkpoint
    replaced at the same path is another input. Read again only when its stat changed (a write
    changes its ctime, which no user can set back), so a driver checking it before and after
    every step pays for one read."""
    import hashlib

    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        key = (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key in _DIGESTS:
            return _DIGESTS[key]
        h = hashlib.sha1()
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]
