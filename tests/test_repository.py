"""The repository is the tool: no run artefacts in the tracked tree, no large files, a small tree.

Results go in as tables, small JSON records and plots. The one exception is ``carry/``, the folder
that carries one unfinished run between machines (its last checkpoint as fairseq wrote it, so the
resume stays exact); it is emptied when the run is done.
"""
import os
import re
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARRY = "carry/"
MAX_FILE = 1_000_000  # bytes: no tracked file outside carry/ is larger
MAX_TREE = 15_000_000  # bytes: the tracked tree outside carry/
MAX_CARRY = 64_000_000  # bytes: one run's last checkpoint with optimizer state, its labels and records
# checkpoints, tensorboard events, features, labels, k-means models, training logs, hydra's run configs
ARTEFACT = re.compile(r"(\.(pt|ckpt|npy|len|km|bin|log)$|events\.out\.tfevents|(^|/)\.hydra/|(^|/)tblog/)")


def tracked() -> list[tuple[str, int]]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [f for f in out.decode().split("\0") if f]
    return [(f, os.path.getsize(os.path.join(REPO, f))) for f in files if os.path.isfile(os.path.join(REPO, f))]


def test_no_run_artefact_or_large_file_is_tracked_outside_the_carry_folder():
    files = tracked()
    artefacts = [f for f, _ in files if ARTEFACT.search(f) and not f.startswith(CARRY)]
    assert not artefacts, f"run artefacts in the tracked tree (only {CARRY} may carry them): {artefacts[:10]}"
    large = [(f, n) for f, n in files if n > MAX_FILE and not f.startswith(CARRY)]
    assert not large, f"tracked files over {MAX_FILE} bytes: {large}"


def test_the_tracked_tree_stays_small():
    files = tracked()
    tree = sum(n for f, n in files if not f.startswith(CARRY))
    carry = sum(n for f, n in files if f.startswith(CARRY))
    assert tree <= MAX_TREE, f"tracked tree {tree / 1e6:.1f} MB > {MAX_TREE / 1e6:.0f} MB"
    assert carry <= MAX_CARRY, f"{CARRY} holds {carry / 1e6:.1f} MB: one unfinished run at a time"


def test_the_ignore_rules_keep_run_artefacts_out():
    """A run written into the checkout (a study's work dir, a demo, a pack) is ignored by git."""
    probes = ["study_work/runs/x/checkpoints/checkpoint_last.pt", "w/tblog/events.out.tfevents.1.host",
              "docs/x/feat/train_0_1.npy", "docs/x/labels/train.km", "w/iter1/train.log", "w/.hydra/config.yaml",
              "w.pack/pack.json", "w.results/study.md"]
    r = subprocess.run(["git", "check-ignore", "--no-index", *probes], cwd=REPO, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        pytest.skip("not a git checkout")
    assert sorted(r.stdout.split()) == sorted(probes)
    kept = subprocess.run(["git", "check-ignore", "--no-index", "carry/study/runs/r/checkpoints/checkpoint_last.pt"],
                          cwd=REPO, capture_output=True, text=True)
    assert kept.returncode == 1, "the carry folder must stay trackable"


def test_nothing_below_the_cli_imports_it():
    """``cli.py`` is the table of commands on top: no module of the package imports it."""
    pkg = os.path.join(REPO, "ae_hubert")
    importers = []
    for root, _, files in os.walk(pkg):
        for f in files:
            path = os.path.join(root, f)
            if f.endswith(".py") and os.path.relpath(path, pkg) not in ("cli.py", "__main__.py"):
                text = open(path, encoding="utf-8").read()
                if re.search(r"^\s*(from\s+(ae_hubert|\.+)\s+import\s+cli\b|from\s+(ae_hubert)?\.+cli\s+import|"
                             r"import\s+ae_hubert\.cli)", text, re.M):
                    importers.append(os.path.relpath(path, REPO))
    assert not importers, importers
