"""Interval checkpoints are kept when an interval ends an epoch (fairseq alone skips them)."""
import os

import pytest
from conftest import hydra_train

from ae_hubert.common.checkpoint import checkpoint_updates


@pytest.mark.parametrize("extra, kept_intervals, epochs", [
    (["checkpoint.keep_interval_updates=2"], ["checkpoint_2_2.pt", "checkpoint_3_3.pt"], []),  # pruned as mid-epoch
    (["checkpoint.no_epoch_checkpoints=false"], ["checkpoint_1_1.pt", "checkpoint_2_2.pt", "checkpoint_3_3.pt"],
     ["checkpoint1.pt", "checkpoint2.pt", "checkpoint3.pt"]),  # epoch checkpoints as fairseq writes them, plus intervals
])
def test_an_interval_that_ends_an_epoch_gets_its_checkpoint(corpus, mfcc_labels, tmp_path, extra, kept_intervals,
                                                            epochs):
    # one batch holds the whole train split: every update ends an epoch, and every update is an interval
    save = tmp_path / "ckpt"
    hydra_train(str(tmp_path), f"task.data={corpus}", f"task.label_dir={mfcc_labels['lab']}", "task.label_rate=100",
                "dataset.max_tokens=100000000", "dataset.batch_size=1000", "optimization.max_update=3",
                "checkpoint.save_interval_updates=1", "dataset.validate_interval_updates=1",
                f"checkpoint.save_dir={save}", *extra)
    files = os.listdir(save)
    kept = sorted(f for f in files if f.startswith("checkpoint_") and f[11].isdigit())
    assert kept == kept_intervals  # checkpoint_E_U with E == U: each of these saves ended an epoch
    assert [checkpoint_updates(str(save / f)) for f in kept] == [int(f[11]) for f in kept]
    assert sorted(f for f in files if f[10:11].isdigit()) == epochs
    assert not [f for f in files if "partial" in f]
