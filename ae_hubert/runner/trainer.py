"""Training through the stock ``fairseq-hydra-train`` entry point, as a subprocess the driver owns.

- The plugin is passed as ``common.user_dir``; fairseq resumes from ``checkpoint_last.pt`` by itself,
  so rerunning the same command after a kill continues training instead of restarting.
- Files fairseq rewrites in place (its checkpoint copies, logs, ``.hydra/``) are made the run's own
  first when a hard-linked copy of a work dir (``cp -al``) shares them with another.
- A run whose ``checkpoint_last.pt`` already reached ``max_update`` is not started again (fairseq
  would train one more update before noticing).
- The trainer runs in its own process group and dies with the driver: SIGTERM/SIGINT/SIGHUP sent
  to the driver are forwarded to that group and waited for, and the kernel kills the trainer if
  the driver dies by kill -9 (``PR_SET_PDEATHSIG``, Linux).
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys

from ..common.atomic import remove_output, unshare_hard_links
from ..common.checkpoint import LAST, checkpoint_updates, repair_last_checkpoint
from ..common.errors import AeHubertError, located

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(PACKAGE_DIR, "config")
HYDRA_TRAIN = "fairseq-hydra-train"


def hydra_train_executable() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), HYDRA_TRAIN)
    if os.path.isfile(exe):
        return exe
    found = shutil.which(HYDRA_TRAIN)
    if not found:
        raise AeHubertError(f"{HYDRA_TRAIN} not found (is fairseq installed in this environment?)")
    return found


def train_args(config_dir: str, config_name: str, overrides: list[str]) -> list[str]:
    """Arguments of ``fairseq-hydra-train`` (without the executable) for a config and overrides."""
    return ["--config-dir", config_dir, "--config-name", config_name, *overrides, f"common.user_dir={PACKAGE_DIR}"]


def resolve_train_config(spec: str, where: str) -> tuple[str, str]:
    """``pretrain/toy_cpu`` (shipped) or a path to a YAML -> (config dir, config name)."""
    path = spec if spec.endswith(".yaml") else os.path.join(CONFIG_DIR, spec + ".yaml")
    if not os.path.isfile(path):
        raise AeHubertError(f"{where}: training config {spec!r} not found ({path})")
    return os.path.dirname(os.path.abspath(path)), os.path.splitext(os.path.basename(path))[0]


def _checkpoints(save_dir: str) -> list[str]:
    """The checkpoints fairseq wrote into ``save_dir`` (``checkpoint*.pt``, also half-written ones)."""
    if not os.path.isdir(save_dir):
        return []
    return sorted(name for name in os.listdir(save_dir)
                  if name.startswith("checkpoint") and ".pt" in name and os.path.isfile(os.path.join(save_dir, name)))


def check_no_checkpoints(save_dir: str, step: str, way_out: str) -> None:
    """A training step that never started in this work dir must find no checkpoints in its save dir:
    fairseq would resume from them (another run's, copied or linked in, or left when the step
    records were removed) and train, or at once finish, another model under this run's record."""
    found = _checkpoints(save_dir)
    if found:
        raise located(os.path.join(save_dir, found[0]), f"a checkpoint {step} did not make (the step never started "
                                                        "in this work dir): fairseq would resume from it under this "
                                                        f"run's record; remove it, or {way_out} (which removes "
                                                        "the checkpoints there)")


def check_before_training(stages, name: str, save_dir: str, inputs_now, config_now, checked: str,
                          restart: str, args: list[str], run_dir: str) -> dict:
    """Right before a training step runs (its driver may have run for hours since it checked
    everything), returning the config its arguments ``args`` compose now, for
    :func:`check_trained_as_composed`: that config's files as checked (``config_now()``, read after
    composing, so an edit before the composition is seen by the digest and one after by the
    record), its inputs (``inputs_now()``: data, starting checkpoint, read again) as recorded; for a
    step that never started, no checkpoints in its save dir, and for a started one, checkpoints
    trained on this config (:func:`check_trained_as_composed`)."""
    from .configs import check_config_unchanged, composed_as_saved

    composed = composed_as_saved(args)
    check_config_unchanged(config_now(), checked, name)
    stages.check_inputs(inputs_now(), write=False)
    if stages.never_started(name):
        check_no_checkpoints(save_dir, name, restart)
    elif _checkpoints(save_dir):
        check_trained_as_composed(run_dir, composed, name, restart, stages.work_dir)
    return composed


HYDRA_RECORD = os.path.join(".hydra", "config.yaml")  # in a run's directory (RECORDED_HERE)


def _hydra_record(run_dir: str) -> str:
    """Where the last training process in ``run_dir`` left hydra's record of its config; a run begun
    by a version before :data:`RECORDED_HERE`, under a user config without ``hydra.run.dir``, left it
    in hydra's default ``outputs/DATE/TIME/`` (the newest)."""
    import glob

    path = os.path.join(run_dir, HYDRA_RECORD)
    if os.path.lexists(path):
        return path
    older = glob.glob(os.path.join(glob.escape(run_dir), "outputs", "*", "*", HYDRA_RECORD))
    return max(older, key=lambda p: (os.path.getmtime(p), p)) if older else path


def check_trained_as_composed(run_dir: str, composed: dict, name: str, restart: str, work_dir: str) -> None:
    """A training step's checkpoints, after it trained or before it resumes from them, come from a
    process that composed ``composed`` (its record, :func:`_hydra_record`, says so), the config
    composed from the same files and overrides when the step was checked: one edited as training
    started and put back before it ended trains another model than the step's record would say, and
    the file checks before and after see nothing. Refused; the checkpoints stay (``restart``, the
    way to train the step again, removes them) and no rerun resumes from them."""
    from .configs import config_differences, saved_config

    path = _hydra_record(run_dir)
    saved = _moved_with_its_run(saved_config(path), composed, work_dir)
    if saved is None:
        raise located(path, f"{name}: hydra's record of the config its training process composed is missing or "
                            f"unreadable, so what trained its checkpoints cannot be confirmed; {restart} to train it "
                            "again (which removes its checkpoints)")
    diffs = config_differences(saved, composed)
    if diffs:
        key, used, now = diffs[0]
        more = len(diffs) - 1
        raise located(path, f"{name}: its training process composed {key}: {used!r} (hydra's record), where the "
                            f"config as checked composes {now!r}"
                            f"{f' ({more} more setting' + (' differs)' if more == 1 else 's differ)') if more else ''}"
                            " (edited as it started, or composed by another version of fairseq or ae_hubert); "
                            f"{restart} to train it again (which removes its checkpoints)")


def _moved_with_its_run(saved: dict | None, composed: dict, work_dir: str) -> dict | None:
    """A saved config's paths as they are now, when ``work_dir`` was moved or copied since the run
    trained: its ``checkpoint.save_dir`` then, less the part below the work dir, is where the work
    dir was (paths elsewhere, a data dir that did not move with it, stay as they are)."""
    from .stages import relocated

    try:
        old, new = saved["checkpoint"]["save_dir"], composed["checkpoint"]["save_dir"]
    except (TypeError, KeyError):
        return saved
    if not (isinstance(old, str) and isinstance(new, str)) or old == new:
        return saved
    below = os.path.relpath(new, work_dir)
    if below.startswith(os.pardir) or not old.endswith(os.sep + below):
        return saved
    return relocated(saved, old[:-len(below) - 1], work_dir)


def remove_checkpoints(save_dir: str) -> None:
    """What a redone training step must not resume from: the checkpoints fairseq wrote into
    ``save_dir``; any other file there is the user's and stays, and so does the directory while it
    holds one."""
    for name in _checkpoints(save_dir):
        remove_output(os.path.join(save_dir, name))
    try:
        os.rmdir(save_dir)
    except OSError:
        pass


def check_hydra_path(path: str, what: str) -> None:
    """Paths travel as hydra overrides (``task.data=PATH``): one that hydra's own override parser does
    not read back as the same text (a comma, quotes, brackets, ``~ # & ! ;``, a non-ASCII letter
    such as ``wörk``), or one it would resolve (``W${common.seed}``: the trainer would write into
    ``W1``), is refused here, not by the trainer after the sidecars."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        same = "${" not in path and OverridesParser.create().parse_overrides([f"key={path}"])[0].value() == path
    except Exception:  # hydra's grammar errors (OverrideParseException and what it wraps)
        same = False
    if not same:
        bad = sorted({c for c in path if not (c.isascii() and (c.isalnum() or c in "/._-+:@%?*| "))})
        raise AeHubertError(f"{what} {path}: hydra overrides cannot carry this path"
                            + (f" (it contains {' '.join(bad)}); use a name without them" if bad else "; use another name"))


def die_with_parent(parent: int):
    def preexec() -> None:  # runs in the child between fork and exec
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:  # not Linux: forwarding of SIGTERM/SIGINT still applies
            return
        if os.getppid() != parent:  # the driver died before prctl took effect
            os._exit(1)
    return preexec


FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_INNER = re.compile(r"\]\[(?:train_inner|train)\]\[INFO\] - .*?loss[= ]([-\d.e+]+).*?num_updates[= ](\d+)")
_ACC = re.compile(r"correct_m_0[= ]([-\d.e+]+)")


class TrainingProgress:
    """One updating line while fairseq trains: updates / max_update, loss, masked accuracy and the
    time left, read from fairseq's own log as it is written (its log stays whole in the file)."""

    def __init__(self, log_path: str, max_update: int | None, start: int, desc: str):
        import threading

        from tqdm import tqdm

        self.log_path = log_path
        self.offset = os.path.getsize(log_path)
        self.bar = tqdm(total=max_update, initial=start, desc=desc, unit="upd", dynamic_ncols=True,
                        disable=os.environ.get("AE_HUBERT_QUIET") == "1")
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def _read(self) -> None:
        with open(self.log_path, errors="replace") as f:
            f.seek(self.offset)
            chunk = f.read()
        cut = chunk.rfind("\n") + 1  # whole lines only
        self.offset += len(chunk[:cut].encode())
        for line in chunk[:cut].splitlines():
            m = _INNER.search(line)
            if m:
                n = int(m.group(2))
                acc = _ACC.search(line)
                self.bar.update(max(0, n - self.bar.n))
                self.bar.set_postfix_str(f"loss {float(m.group(1)):.3f}" + (f" acc {float(acc.group(1)):.3f}"
                                                                             if acc else ""), refresh=True)

    def _follow(self) -> None:
        while not self.done.wait(1.0):
            self._read()

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self._read()
        self.bar.close()


def run_owned(cmd: list[str], cwd: str, log) -> int:
    """Run ``cmd`` (stdout/stderr to the open file ``log``) as a child that cannot outlive us.
    A forwarded signal is re-raised here after the child has exited."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=die_with_parent(os.getpid()))
    received: list[int] = []

    def forward(signum, _frame):
        received.append(signum)
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        rc = proc.wait()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if proc.poll() is None:  # an exception while waiting: never leave the trainer behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if received:
        if received[0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + received[0])
    return rc


REWRITTEN_CHECKPOINTS = re.compile(r"checkpoint_last\.pt|checkpoint_best\.pt|checkpoint\.best_.*\.pt")


def _in(d: str, wanted=lambda name: True) -> list[str]:
    return [os.path.join(d, f) for f in sorted(os.listdir(d)) if wanted(f)] if os.path.isdir(d) else []


# where every training process leaves hydra's record of the config it composed (``.hydra/config.yaml`` in
# its run's directory), given on its command line so that no config file, edited as it starts, moves it
RECORDED_HERE = ("hydra.run.dir=.", "hydra.output_subdir=.hydra")
FRESH_RUN = "[ae_hubert] training from the start"  # in a run's log: what precedes it is a redone run's


def run_training(args: list[str], run_dir: str, save_dir: str, max_update: int | None = None,
                 log_name: str = "train.log") -> str:
    """Run ``fairseq-hydra-train ARGS`` in ``run_dir`` (hydra writes there), appending its output to
    ``log_name``; returns the log's path. Does nothing when ``save_dir`` already holds a checkpoint
    at ``max_update``."""
    os.makedirs(run_dir, exist_ok=True)
    unshare_hard_links(_in(run_dir, lambda f: f.endswith(".log")) + _in(os.path.join(run_dir, ".hydra")))
    repaired = repair_last_checkpoint(save_dir)
    log = os.path.join(run_dir, log_name)
    cmd = [hydra_train_executable(), *args, *RECORDED_HERE]
    with open(log, "a") as f:
        if repaired:
            f.write(f"[ae_hubert] {repaired}\n")
        updates = checkpoint_updates(os.path.join(save_dir, LAST))
        if max_update is not None and updates is not None and updates >= max_update:
            f.write(f"[ae_hubert] checkpoint_last.pt is at {updates} >= max_update {max_update} updates: "
                    "training is complete, not restarted\n")
            return log
        # the checkpoints fairseq copies over (the others it writes under a new name, or renames into place)
        unshare_hard_links(_in(save_dir, REWRITTEN_CHECKPOINTS.fullmatch))
        if updates is None:
            f.write(f"{FRESH_RUN} (no checkpoint yet in {save_dir}): the lines above are a run that was redone\n")
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        with TrainingProgress(log, max_update, updates or 0, f"train {os.path.basename(run_dir)}"):
            rc = run_owned(cmd, run_dir, f)
    if rc != 0:
        with open(log, errors="replace") as f:
            lines = [ln.strip() for ln in f.read()[-20000:].splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
        raise AeHubertError(f"{log}: {HYDRA_TRAIN} failed (exit {rc}): {last[:300]} (the whole log is in that file)")
    if max_update is not None:  # a run that stopped short (max_epoch, no checkpoint saved) is not done
        updates = checkpoint_updates(os.path.join(save_dir, LAST))
        if updates is None or updates < max_update:
            raise AeHubertError(f"{log}: {HYDRA_TRAIN} stopped at "
                                f"{'no saved checkpoint' if updates is None else f'{updates} updates'}, short of "
                                f"max_update {max_update} (a max_epoch, no_save or other stopping setting?)")
    return log


_STAT = re.compile(r"(\w+) ([-\d.e+]+)")


def final_stats(log: str, save_dir: str | None = None) -> dict:
    """Last train/valid summary lines of a fairseq log: loss, masked accuracy, updates (the update
    count from ``checkpoint_last.pt`` when the log has none)."""
    out: dict = {}
    with open(log) as f:
        lines = f.read().splitlines()
    fresh = [i for i, line in enumerate(lines) if line.startswith(FRESH_RUN)]
    for line in lines[fresh[-1] if fresh else 0:]:  # this run's (a redone run's log goes on in the same file)
        for kind in ("train", "valid"):
            if f"[{kind}][INFO]" in line and " | " in line:
                stats = dict(_STAT.findall(line.split(" | ", 1)[1].replace(" | ", " ")))
                out[kind] = {k: float(v) for k, v in stats.items() if k in
                             ("loss", "correct_m_0", "correct_u_0", "num_updates", "wall", "ppl")}
    if save_dir and "num_updates" not in out.get("train", {}):
        updates = checkpoint_updates(os.path.join(save_dir, LAST))
        if updates is not None:
            out.setdefault("train", {})["num_updates"] = float(updates)
    return out
