"""Interval checkpoints are kept when an interval ends an epoch (fairseq alone skips them)."""
import os

from conftest import hydra_train

from ae_hubert.runner.trainer import checkpoint_updates


def test_an_interval_that_ends_an_epoch_gets_its_checkpoint(corpus, mfcc_labels, tmp_path):
    # one batch holds the whole train split: every update ends an epoch, and every update is an interval
    save = tmp_path / "ckpt"
    hydra_train(str(tmp_path), f"task.data={corpus}", f"task.label_dir={mfcc_labels['lab']}", "task.label_rate=100",
                "dataset.max_tokens=100000000", "dataset.batch_size=1000", "optimization.max_update=2",
                "checkpoint.save_interval_updates=1", "dataset.validate_interval_updates=1", f"checkpoint.save_dir={save}")
    kept = sorted(f for f in os.listdir(save) if f.startswith("checkpoint_") and f[11].isdigit())
    assert kept == ["checkpoint_1_1.pt", "checkpoint_2_2.pt"], kept  # epoch == updates: each save ended an epoch
    assert [checkpoint_updates(str(save / f)) for f in kept] == [1, 2]
    assert not [f for f in os.listdir(save) if "partial" in f]
