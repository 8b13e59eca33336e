"""The released-checkpoint path (hubert_base_ls960.pt + the L9 km500 quantizer) on a Base-size
checkpoint in the exact released format, built locally by stock fairseq-hydra-train: layer-9 dump
-> a joblib MiniBatchKMeans fit by stock learn_kmeans.py -> labels -> reset fine-tuning."""
import os

import numpy as np

from conftest import BIN, USER_DIR, run_cmd
from stock import stock_module


def test_base_layer9_quantizer_labels_and_reset_fine_tune(corpus, stock_base_checkpoint, tmp_path):
    from ae_hubert.clustering.label import dump_labels
    from ae_hubert.features.dump import dump_hubert
    from ae_hubert.features.shards import read_shard

    feat = str(tmp_path / "feat")
    for split in ("train", "valid"):
        dump_hubert(corpus, split, stock_base_checkpoint, 9, feat)
    shard = read_shard(feat, "valid", 0, 1)
    assert shard.feats.shape[1] == 768
    km = str(tmp_path / "L9_km20.bin")  # the stock quantizer format: joblib MiniBatchKMeans
    stock_module("learn_kmeans").learn_kmeans(feat, "train", 1, km, 20, seed=0, percent=-1, init="k-means++",
                                              max_iter=20, batch_size=10000, tol=0.0, n_init=2,
                                              reassignment_ratio=0.0, max_no_improvement=100)
    labels = dump_labels(feat, "valid", 1, km, str(tmp_path / "labels"))
    apply = stock_module("dump_km_label").ApplyKmeans(km)
    first = open(labels).readline().split()
    assert first == list(map(str, apply(np.asarray(shard.utterance(0)))))
    assert len(first) == shard.lengths[0]  # 50 Hz labels, one per layer-9 frame
    # reset fine-tuning of the Base checkpoint: top 3 layers re-initialised, a few CPU updates
    out = run_cmd([os.path.join(BIN, "fairseq-hydra-train"), "--config-dir", os.path.join(USER_DIR, "config", "finetune"),
                   "--config-name", "toy_cpu", f"task.data={corpus}", f"model.w2v_path={stock_base_checkpoint}",
                   "model.reset_top_layers=3", "model.freeze_finetune_updates=1", "optimization.max_update=2",
                   "dataset.max_tokens=120000", "dataset.validate_interval_updates=2", "model.mask_channel_prob=0.1",
                   "model.mask_channel_length=16", f"checkpoint.save_dir={tmp_path}/ft",
                   f"common.user_dir={USER_DIR}"], str(tmp_path))
    assert "reinit the top 3" in out and "num_updates 2" in out
    from ae_hubert.finetune.decode import decode

    r = decode(str(tmp_path / "ft" / "checkpoint_last.pt"), corpus, "valid", max_utterances=2)
    assert r["utterances"] == 2 and "wer" in r
