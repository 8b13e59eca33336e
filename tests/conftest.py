"""Shared fixtures: a small synthetic corpus, its MFCC labels, and a checkpoint from stock fairseq."""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys

import pytest

os.environ.setdefault("AE_HUBERT_QUIET", "1")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DIR = os.path.join(REPO, "ae_hubert")
CONFIG_DIR = os.path.join(USER_DIR, "config", "pretrain")
BIN = os.path.dirname(sys.executable)


def run_cmd(cmd, cwd) -> str:
    """Run a command; its stdout+stderr, or an assertion error with their tails."""
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{cmd[0]} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout + r.stderr


def hydra_train(cwd, *overrides, user_dir=True, check=True):
    """Run the stock ``fairseq-hydra-train`` entry point on the toy config."""
    cmd = [os.path.join(BIN, "fairseq-hydra-train"), "--config-dir", CONFIG_DIR, "--config-name", "toy_cpu"]
    cmd += list(overrides)
    if user_dir:
        cmd.append(f"common.user_dir={USER_DIR}")
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"fairseq-hydra-train failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def silent_manifests(data, n: int, seconds: int) -> str:
    """train/valid manifests of ``n`` utterances of ``seconds`` each, all links to one silent flac
    (the schedule checks read sizes and audio headers, not samples); returns ``data``."""
    import numpy as np
    import soundfile as sf

    data = str(data)
    os.makedirs(data, exist_ok=True)
    sf.write(os.path.join(data, "silence.flac"), np.zeros(16000 * seconds, dtype=np.float32), 16000)
    for i in range(n):
        os.symlink(os.path.join(data, "silence.flac"), os.path.join(data, f"u{i}.flac"))
    for split in ("train", "valid"):
        with open(os.path.join(data, f"{split}.tsv"), "w") as f:
            f.write(f"{data}\n" + "".join(f"u{i}.flac\t{16000 * seconds}\n" for i in range(n)))
    return data


# a test that needs one of these (directly or through another fixture) synthesises audio or trains a
# model: it belongs to the full suite only (`make test`), not to `make test-fast`
BUILDS = {"corpus", "mfcc_labels", "stock_checkpoint", "stock_base_checkpoint", "study"}  # study: a module's own corpus


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BUILDS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@contextlib.contextmanager
def _built_once(tmp_path_factory, name: str):
    """A directory for a session fixture, built by one test process and shared by the others (pytest-xdist
    workers share their run's base temp dir): yields (path, whether this process must build it)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes; a crashed builder frees it
        must = not done.exists()
        if must:
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
        yield path, must
        if must:
            done.write_text("")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    from ae_hubert.corpus.toy_corpus import build

    with _built_once(tmp_path_factory, "corpus") as (out, must):
        if must:
            build(str(out), utterances=40, seed=3, workers=2)
    return str(out)


@pytest.fixture(scope="session")
def mfcc_labels(corpus, tmp_path_factory):
    """MFCC features, a k=20 k-means and km labels for train/valid of ``corpus``."""
    from ae_hubert.clustering.kmeans import learn_kmeans
    from ae_hubert.clustering.label import dump_labels
    from ae_hubert.features.dump import dump_mfcc

    with _built_once(tmp_path_factory, "mfcc") as (w, must):
        feat, lab, km = str(w / "feat"), str(w / "lab"), str(w / "km.bin")
        if must:
            for split in ("train", "valid"):
                dump_mfcc(corpus, split, feat)
            learn_kmeans(feat, "train", 1, 20, km, seed=0)
            for split in ("train", "valid"):
                dump_labels(feat, split, 1, km, lab)
    return {"feat": feat, "lab": lab, "km": km}


@pytest.fixture(scope="session")
def stock_checkpoint(corpus, mfcc_labels, tmp_path_factory):
    """A checkpoint written by stock fairseq-hydra-train with the stock task and model names."""
    with _built_once(tmp_path_factory, "stock_ckpt") as (w, must):
        if must:
            hydra_train(str(w), f"task.data={corpus}", f"task.label_dir={mfcc_labels['lab']}", "task.label_rate=100",
                        "task._name=hubert_pretraining", "optimization.max_update=4",
                        f"checkpoint.save_dir={w}/ckpt", user_dir=False)
    path = os.path.join(str(w), "ckpt", "checkpoint_last.pt")
    assert os.path.isfile(path)
    return path


STOCK_HUBERT_CONFIG = os.path.join(os.path.dirname(__import__("fairseq").__file__), "examples", "hubert", "config")


@pytest.fixture(scope="session")
def stock_base_checkpoint(corpus, mfcc_labels, tmp_path_factory):
    """A Base-size (12 x 768) checkpoint in the exact released format, written by stock
    fairseq-hydra-train from fairseq's own hubert_base_librispeech.yaml (one CPU update, no
    optimizer state), with the stock task and model names."""
    with _built_once(tmp_path_factory, "stock_base") as (w, must):
        if must:
            _stock_base(w, corpus, mfcc_labels)
    path = os.path.join(str(w), "ckpt", "checkpoint_last.pt")
    assert os.path.isfile(path)
    return path


def _stock_base(w, corpus, mfcc_labels) -> None:
    cmd = [os.path.join(BIN, "fairseq-hydra-train"), "--config-dir", os.path.join(STOCK_HUBERT_CONFIG, "pretrain"),
           "--config-name", "hubert_base_librispeech", f"task.data={corpus}", f"task.label_dir={mfcc_labels['lab']}",
           "task.labels=[km]", "model.label_rate=100", "common.fp16=false", "common.cpu=true",
           "distributed_training.distributed_world_size=1", "distributed_training.nprocs_per_node=1",
           "dataset.num_workers=0", "dataset.max_tokens=200000", "task.min_sample_size=8000",
           "optimization.max_update=1", "dataset.disable_validation=true", "checkpoint.no_save_optimizer_state=true",
           f"checkpoint.save_dir={w}/ckpt", f"hydra.run.dir={w}"]
    run_cmd(cmd, str(w))
