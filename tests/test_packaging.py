"""The package installs into another environment that already has the stack (fairseq, torch, ...):
the wheel, installed with --no-deps into a fresh venv, gives the CLI, ``python -m ae_hubert`` and a
plugin that fairseq-hydra-train loads from the installed package (not this source tree)."""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig

from conftest import CONFIG_DIR, REPO


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd[:3]} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def test_wheel_into_a_fresh_venv_trains_through_fairseq(tmp_path, corpus, mfcc_labels):
    src = tmp_path / "src"  # a copy: building must not write into the source tree
    shutil.copytree(os.path.join(REPO, "ae_hubert"), src / "ae_hubert", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(REPO, "setup.py"), src / "setup.py")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp_path / "dist"), str(src)])
    wheel = glob.glob(str(tmp_path / "dist" / "ae_hubert-*.whl"))
    assert len(wheel) == 1
    venv = tmp_path / "venv"
    run(["python3", "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    run([py, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel[0]])
    site = run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    # the stack (fairseq, torch, ...) of this environment, as a user's existing environment would have it;
    # its .pth files (our editable install among them) are not processed from a path added this way
    with open(os.path.join(site, "stack.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    cwd = str(tmp_path)  # not the source tree
    where = run([py, "-c", "import ae_hubert, os; print(os.path.dirname(ae_hubert.__file__))"], cwd=cwd).strip()
    assert where.startswith(str(venv)), where
    assert os.path.isfile(os.path.join(where, "config", "pretrain", "toy_cpu.yaml"))
    assert os.path.isfile(os.path.join(where, "analysis", "templates", "report.html.j2"))
    assert "iterate" in run([str(venv / "bin" / "ae-hubert"), "--help"], cwd=cwd)
    assert "(default: 100)" in run([py, "-m", "ae_hubert", "kmeans", "--help"], cwd=cwd)
    out = run([py, "-m", "fairseq_cli.hydra_train", "--config-dir", CONFIG_DIR, "--config-name", "toy_cpu",
               f"task.data={corpus}", f"task.label_dir={mfcc_labels['lab']}", "task.label_rate=100",
               "optimization.max_update=1", f"checkpoint.save_dir={tmp_path}/ckpt", "dataset.disable_validation=true",
               f"common.user_dir={where}"], cwd=cwd)
    assert "num_updates: 1 >= max_update: 1" in out or os.path.isfile(tmp_path / "ckpt" / "checkpoint_last.pt")
    assert os.path.isfile(tmp_path / "ckpt" / "checkpoint_last.pt")
    assert f"{where}" in out or "hubert_pretraining_checked" in out
