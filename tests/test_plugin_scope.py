"""The user dir leaves stock fairseq as it is; the plugin's own task and models change it, and say so.

Importing ``ae_hubert`` only registers names and allow-lists checkpoint classes. fairseq's
``compute_mask_indices`` and ``save_checkpoint`` are wrapped (compat.py) when the plugin's task or
models are built, and the trainer's log says so once.
"""
import os
import subprocess
import sys

from conftest import hydra_train

EXACT = "ae_hubert: exact training"

PROBE = r"""
import ae_hubert
from fairseq import checkpoint_utils
from fairseq.models.hubert import hubert
from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig, HubertPretrainingTask
from ae_hubert.tasks.hubert_pretraining_checked import HubertPretrainingCheckedConfig, HubertPretrainingCheckedTask

def wrapped():
    return [hasattr(hubert.compute_mask_indices, "__wrapped__"), hasattr(checkpoint_utils.save_checkpoint, "__wrapped__")]

print("import", wrapped())
HubertPretrainingTask(HubertPretrainingConfig(data=DATA, label_dir=LABELS, labels=["km"], label_rate=100))
print("stock task", wrapped())
HubertPretrainingCheckedTask(HubertPretrainingCheckedConfig(data=DATA, label_dir=LABELS, labels=["km"], label_rate=100))
print("plugin task", wrapped())
"""


def test_importing_the_plugin_changes_no_fairseq_function_until_its_task_is_built(corpus, mfcc_labels):
    code = f"DATA, LABELS = {corpus!r}, {mfcc_labels['lab']!r}\n" + PROBE
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.split(" ")[0] in ("import", "stock", "plugin")]
    assert lines == ["import [False, False]", "stock task [False, False]", "plugin task [True, True]"], out.stdout


def _train(tmp_path, name, *extra):
    save = tmp_path / name / "ckpt"
    (tmp_path / name).mkdir()
    r = hydra_train(str(tmp_path / name), *extra, "dataset.max_tokens=100000000", "dataset.batch_size=1000",
                    "optimization.max_update=2", "checkpoint.save_interval_updates=1",
                    "dataset.validate_interval_updates=1", f"checkpoint.save_dir={save}")
    return sorted(os.listdir(save)), r.stdout + r.stderr


def test_a_stock_run_with_the_user_dir_saves_and_logs_as_stock(corpus, mfcc_labels, tmp_path):
    """One batch holds the whole train split, so every update ends an epoch and is an interval:
    stock fairseq keeps no interval checkpoint then, and a stock task with the user dir loaded keeps
    none either; the plugin's task keeps them and logs why, once."""
    data = [f"task.data={corpus}", f"task.label_dir={mfcc_labels['lab']}", "task.label_rate=100"]
    stock, stock_log = _train(tmp_path, "stock", *data, "task._name=hubert_pretraining")
    ours, ours_log = _train(tmp_path, "ours", *data)
    assert not [f for f in stock if f.startswith("checkpoint_1")], stock
    assert EXACT not in stock_log
    assert ["checkpoint_1_1.pt", "checkpoint_2_2.pt"] == [f for f in ours if f.startswith("checkpoint_") and f[11].isdigit()]
    assert ours_log.count(EXACT) == 1 and "task hubert_pretraining_checked" in ours_log


def test_the_names_before_the_rename_still_load(stock_checkpoint, tmp_path):
    """Configs and checkpoints that name ``ae_hubert_pretraining`` / ``ae_hubert`` / ``ae_hubert_ctc``
    keep working: each old name is a subclass of the new one."""
    import torch
    from fairseq.criterions import CRITERION_REGISTRY
    from fairseq.models import MODEL_REGISTRY
    from fairseq.tasks import TASK_REGISTRY

    from ae_hubert.common.checkpoint import load_hubert
    from ae_hubert.models.hubert_layer_targets import HubertLayerTargetsModel

    for registry, old, new in ((TASK_REGISTRY, "ae_hubert_pretraining", "hubert_pretraining_checked"),
                               (MODEL_REGISTRY, "ae_hubert", "hubert_layer_targets"),
                               (MODEL_REGISTRY, "ae_hubert_ctc", "hubert_ctc_reset"),
                               (CRITERION_REGISTRY, "ae_hubert", "hubert_layer_targets")):
        assert registry[old] is not registry[new] and issubclass(registry[old], registry[new])
    state = torch.load(stock_checkpoint, map_location="cpu", weights_only=False)
    state["cfg"]["task"]["_name"] = "ae_hubert_pretraining"
    state["cfg"]["model"]["_name"] = "ae_hubert"
    old = str(tmp_path / "old_names.pt")
    torch.save(state, old)
    loaded = load_hubert(old)
    assert isinstance(loaded.model, HubertLayerTargetsModel) and loaded.num_layers == 6


def test_the_legacy_entry_point_trains_with_the_plugin_task(corpus, mfcc_labels, tmp_path):
    """``fairseq-train DATA --user-dir ...`` (argparse, no hydra) takes the plugin's task by name."""
    from conftest import BIN, USER_DIR

    cmd = [os.path.join(BIN, "fairseq-train"), corpus, "--user-dir", USER_DIR, "--task", "hubert_pretraining_checked",
           "--label-dir", mfcc_labels["lab"], "--labels", '["km"]', "--label-rate", "100", "--min-sample-size", "8000",
           "--arch", "hubert", "--criterion", "hubert", "--pred-nomask-weight", "0", "--loss-weights", "[10]",
           "--optimizer", "adam", "--lr", "0.001", "--max-tokens", "320000", "--max-update", "2", "--cpu",
           "--num-workers", "0", "--save-dir", str(tmp_path / "ckpt"), "--encoder-layers", "2",
           "--encoder-embed-dim", "64", "--encoder-ffn-embed-dim", "128", "--encoder-attention-heads", "2",
           "--final-dim", "32", "--conv-feature-layers", "[(64,10,5)] + [(64,3,2)] * 4 + [(64,2,2)] * 2",
           "--log-format", "simple", "--disable-validation"]
    r = subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert os.path.isfile(tmp_path / "ckpt" / "checkpoint_last.pt")
    assert (r.stdout + r.stderr).count(EXACT) == 1
