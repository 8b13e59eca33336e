"""Pretraining through the stock ``fairseq-hydra-train`` entry point, as a subprocess.

The plugin is passed as ``common.user_dir``; fairseq resumes from ``checkpoint_last.pt`` by
itself, so rerunning the same command after a kill continues training instead of restarting.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import zipfile
import subprocess
import sys

from ..common.atomic import atomic_path
from ..common.errors import AeHubertError

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(PACKAGE_DIR, "config")


def hydra_train_executable() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "fairseq-hydra-train")
    if os.path.isfile(exe):
        return exe
    found = shutil.which("fairseq-hydra-train")
    if not found:
        raise AeHubertError("fairseq-hydra-train not found (is fairseq installed in this environment?)")
    return found


def train_command(config_dir: str, config_name: str, overrides: list[str]) -> list[str]:
    return [hydra_train_executable(), "--config-dir", config_dir, "--config-name", config_name,
            *overrides, f"common.user_dir={PACKAGE_DIR}"]


def _intact(path: str) -> bool:
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
    last = os.path.join(save_dir, "checkpoint_last.pt")
    if not os.path.exists(last) or _intact(last):
        return None
    candidates = [p for p in glob.glob(os.path.join(save_dir, "checkpoint*.pt"))
                  if p != last and ".partial-" not in p and _intact(p)]
    if not candidates:
        os.remove(last)
        return f"removed truncated {last}"
    newest = max(candidates, key=os.path.getmtime)
    with atomic_path(last) as tmp:
        shutil.copyfile(newest, tmp)
    return f"replaced truncated {last} by {newest}"


def run_training(cmd: list[str], run_dir: str, log_name: str = "train.log", save_dir: str | None = None) -> str:
    """Run ``cmd`` in ``run_dir`` (hydra writes there), appending its output to ``log_name``."""
    os.makedirs(run_dir, exist_ok=True)
    repaired = repair_last_checkpoint(save_dir) if save_dir else None
    log = os.path.join(run_dir, log_name)
    with open(log, "a") as f:
        if repaired:
            f.write(f"[ae_hubert] {repaired}\n")
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, cwd=run_dir, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        with open(log) as f:
            tail = f.read()[-2000:]
        raise AeHubertError(f"{log}: fairseq-hydra-train failed (exit {r.returncode}):\n{tail}")
    return log


_STAT = re.compile(r"(\w+) ([-\d.e+]+)")


def final_stats(log: str) -> dict:
    """Last train/valid summary lines of a fairseq log: loss, masked accuracy, updates."""
    out: dict = {}
    with open(log) as f:
        lines = f.read().splitlines()
    for line in lines:
        for kind in ("train", "valid"):
            if f"[{kind}][INFO]" in line and " | " in line:
                stats = dict(_STAT.findall(line.split(" | ", 1)[1].replace(" | ", " ")))
                out[kind] = {k: float(v) for k, v in stats.items() if k in
                             ("loss", "correct_m_0", "correct_u_0", "num_updates", "wall", "ppl")}
    return out
