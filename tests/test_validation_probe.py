"""Per-layer probes logged at each validation by ``hubert_pretraining_checked`` (stock fairseq-hydra-train)."""
import re

from conftest import hydra_train


def _valid_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "valid on 'valid' subset" in line]


def test_layer_probes_are_logged_with_validation_stats(corpus, mfcc_labels, tmp_path):
    common = [f"task.data={corpus}", f"task.label_dir={mfcc_labels['lab']}", "task.label_rate=100",
              "optimization.max_update=4", "dataset.validate_interval_updates=2",
              f"checkpoint.save_dir={tmp_path}/ckpt", "checkpoint.no_save=true"]
    r = hydra_train(str(tmp_path), *common, "+task.probe_utterances=10")
    lines = _valid_lines(r.stdout + r.stderr)
    assert len(lines) >= 2  # updates 2 and 4: probed at every validation
    for line in lines:
        stats = dict(re.findall(r"(probe_\w+) ([-\d.e]+)", line))
        assert {f"probe_input_r2_L{layer}" for layer in range(7)} <= set(stats)
        assert {f"probe_phone_acc_L{layer}" for layer in range(7)} <= set(stats)
        assert all(0 <= float(stats[f"probe_phone_acc_L{layer}"]) <= 1 for layer in range(7))
        assert float(stats["probe_seconds"]) > 0
    off = hydra_train(str(tmp_path), *common)
    lines = _valid_lines(off.stdout + off.stderr)
    assert lines and not any("probe_" in line for line in lines)  # off by default
