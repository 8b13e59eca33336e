import os

import numpy as np
import pytest
import torch

from ae_hubert.common.checkpoint import load_hubert
from ae_hubert.common.errors import AeHubertError
from ae_hubert.common.manifest import read_manifest
from ae_hubert.common.audio import read_entry
from ae_hubert.features.dump import dump_hubert
from ae_hubert.features.hubert_layers import HubertLayerExtractor
from ae_hubert.features.shards import read_shard


def test_weights_only_loading_stays_on(stock_checkpoint):
    import ae_hubert  # noqa: F401  (installs the allow-list)

    state = torch.load(stock_checkpoint, map_location="cpu", weights_only=True)
    assert "task_state" in state and "model" in state


def test_stock_checkpoint_is_read_and_model_in_eval(stock_checkpoint):
    loaded = load_hubert(stock_checkpoint)
    assert loaded.num_layers == 6 and not loaded.model.training and not loaded.fine_tuned


def _wavs(corpus, n=6):
    entries = read_manifest(f"{corpus}/valid.tsv").entries[:n]
    return [read_entry(e) for e in entries]


def test_batched_equals_one_at_a_time_and_stock_extract_features(corpus, stock_checkpoint):
    loaded = load_hubert(stock_checkpoint)
    ex = HubertLayerExtractor(loaded.model, loaded.normalize, "cpu")
    assert ex.per_utterance_first_conv  # Base-style GroupNorm extractor: the hard case
    wavs = _wavs(corpus)
    assert len({len(w) for w in wavs}) > 1
    layers = list(range(0, loaded.num_layers + 1))
    batched = ex(wavs, layers)
    for w, b in zip(wavs, batched):
        single = ex([w], layers)[0]
        for layer in layers:
            assert np.allclose(b[layer], single[layer], atol=1e-4), layer
        with torch.no_grad():
            for layer in range(1, loaded.num_layers + 1):
                ref, _ = loaded.model.extract_features(torch.from_numpy(w)[None], padding_mask=None,
                                                       mask=False, output_layer=layer)
                assert b[layer].shape == ref[0].shape
                assert np.allclose(b[layer], ref[0].numpy(), atol=1e-4), layer


def test_naive_zero_padding_would_change_features(corpus, stock_checkpoint):
    """Why the extractor runs the first conv per utterance: padding shifts GroupNorm statistics."""
    loaded = load_hubert(stock_checkpoint)
    wavs = sorted(_wavs(corpus), key=len)
    short, long = wavs[0], wavs[-1]
    padded = torch.zeros(2, len(long))
    padded[0, :len(short)] = torch.from_numpy(short)
    padded[1] = torch.from_numpy(long)
    with torch.no_grad():
        naive = loaded.model.feature_extractor(padded)[0]
        alone = loaded.model.feature_extractor(torch.from_numpy(short)[None])[0]
    n = alone.shape[-1]
    assert not torch.allclose(naive[:, :n], alone, atol=1e-4)


def test_dump_hubert_format_and_sharding(corpus, stock_checkpoint, tmp_path):
    dump_hubert(corpus, "valid", stock_checkpoint, 3, str(tmp_path / "one"), max_samples=60000)
    for r in range(2):
        dump_hubert(corpus, "valid", stock_checkpoint, 3, str(tmp_path / "two"), nshard=2, rank=r)
    one = read_shard(str(tmp_path / "one"), "valid", 0, 1)
    two = [read_shard(str(tmp_path / "two"), "valid", r, 2) for r in range(2)]
    assert one.feats.shape[1] == 128
    m = read_manifest(f"{corpus}/valid.tsv")
    assert list(one.lengths) == [(e.nsamples - 400) // 320 + 1 for e in m.entries]
    assert np.allclose(np.concatenate([s.feats for s in two]), one.feats, atol=1e-4)


def test_long_audio_is_chunked_like_stock(corpus, stock_checkpoint, tmp_path):
    dump_hubert(corpus, "valid", stock_checkpoint, 2, str(tmp_path / "c"), max_chunk=16000)
    m = read_manifest(f"{corpus}/valid.tsv")
    lens = read_shard(str(tmp_path / "c"), "valid", 0, 1).lengths
    expect = [sum((min(16000, e.nsamples - s) - 400) // 320 + 1 for s in range(0, e.nsamples, 16000)
                  if e.nsamples - s >= 400) for e in m.entries]
    assert list(lens) == expect


def test_bad_layer_and_non_hubert_checkpoint(corpus, stock_checkpoint, tmp_path):
    with pytest.raises(AeHubertError, match="out of range"):
        dump_hubert(corpus, "valid", stock_checkpoint, 7, str(tmp_path))
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(AeHubertError, match="not a fairseq checkpoint"):
        load_hubert(str(tmp_path / "other.pt"))
    state = torch.load(stock_checkpoint, map_location="cpu", weights_only=True)
    model = state["cfg"]["model"]
    state["cfg"]["model"] = {"_name": "wav2vec2", "encoder_layers": 2, "encoder_embed_dim": 64,
                             "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 2,
                             "conv_feature_layers": model["conv_feature_layers"]}
    torch.save(state, tmp_path / "w2v.pt")
    with pytest.raises(AeHubertError, match="'wav2vec2' is not a HuBERT model"):
        load_hubert(str(tmp_path / "w2v.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(AeHubertError, match="junk.pt: not a fairseq checkpoint"):
        load_hubert(str(tmp_path / "junk.pt"))
    with pytest.raises(AeHubertError, match="checkpoint not found"):
        load_hubert(str(tmp_path / "missing.pt"))


class _MakesADirectory:
    """A pickle that runs code when loaded unsafely: it would create ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_a_checkpoint_naming_code_is_refused_unrun(tmp_path):
    torch.save({"model": {}, "cfg": _MakesADirectory(str(tmp_path / "ran"))}, tmp_path / "code.pt")
    with pytest.raises(AeHubertError, match=r"code.pt: not a fairseq checkpoint \(it names (posix|os).mkdir, outside "
                                            "the allow-list"):
        load_hubert(str(tmp_path / "code.pt"))
    assert not (tmp_path / "ran").exists()


def test_stock_hubert_dataset_reads_our_manifest_and_labels(corpus, mfcc_labels):
    from fairseq.data import Dictionary
    from fairseq.data.audio.hubert_dataset import HubertDataset

    d = Dictionary.load(os.path.join(mfcc_labels["lab"], "dict.km.txt"))
    ds = HubertDataset(os.path.join(corpus, "valid.tsv"), sample_rate=16000,
                       label_paths=[os.path.join(mfcc_labels["lab"], "valid.km")], label_rates=[100],
                       pad_list=[d.pad()], eos_list=[d.eos()],
                       label_processors=[lambda s: d.encode_line(s, append_eos=False, add_if_not_exist=False).long()],
                       max_keep_sample_size=None, min_keep_sample_size=None, max_sample_size=None,
                       pad_audio=True, random_crop=False, store_labels=True)
    assert len(ds) == len(read_manifest(os.path.join(corpus, "valid.tsv")))
    item = ds[0]
    assert item["source"].ndim == 1
    assert (item["label_list"][0] != d.unk()).all()
    batch = ds.collater([ds[0], ds[1]])
    assert batch["net_input"]["source"].shape[0] == 2


def make_ctc_checkpoint(pretrained: str, out: str, n_letters: int = 30, keep_label_embs: bool = True) -> None:
    """A checkpoint laid out like fairseq's fine-tuned ``hubert_ctc`` ones (released *_finetune_*.pt):
    the pretraining config in ``model.w2v_args``, encoder weights under ``w2v_encoder.w2v_model.``."""
    state = torch.load(pretrained, map_location="cpu", weights_only=True)
    enc = {f"w2v_encoder.w2v_model.{k}": v for k, v in state["model"].items()
           if not k.startswith("final_proj") and (keep_label_embs or k != "label_embs_concat")}
    dim = state["cfg"]["model"]["encoder_embed_dim"]
    enc["w2v_encoder.proj.weight"] = torch.randn(n_letters, dim)
    enc["w2v_encoder.proj.bias"] = torch.zeros(n_letters)
    cfg = dict(state["cfg"])
    cfg["model"] = {"_name": "hubert_ctc", "w2v_path": "/gone/pretrained.pt", "w2v_args": state["cfg"],
                    "normalize": False, "data": "/gone"}
    cfg["task"] = dict(state["cfg"]["task"], fine_tuning=True, labels=["ltr"], single_target=True)
    state.update(cfg=cfg, model=enc, task_state={})
    torch.save(state, out)


@pytest.mark.parametrize("keep_label_embs", [True, False])
def test_fine_tuned_ctc_checkpoint_dumps_like_its_pretrained_model(corpus, stock_checkpoint, tmp_path,
                                                                    keep_label_embs):
    ctc = str(tmp_path / "ctc.pt")
    make_ctc_checkpoint(stock_checkpoint, ctc, keep_label_embs=keep_label_embs)
    loaded = load_hubert(ctc)
    assert loaded.fine_tuned and loaded.num_layers == 6
    dump_hubert(corpus, "valid", ctc, 6, str(tmp_path / "ft"))
    dump_hubert(corpus, "valid", stock_checkpoint, 6, str(tmp_path / "pt"))
    a = read_shard(str(tmp_path / "ft"), "valid", 0, 1).feats
    b = read_shard(str(tmp_path / "pt"), "valid", 0, 1).feats
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_hubert_masking_is_seeded_by_torch():
    from fairseq.models.hubert import hubert

    from ae_hubert import compat

    compat.exact_training("test")

    masks = []
    for _ in range(2):
        torch.manual_seed(3)
        masks.append(hubert.compute_mask_indices((4, 120), None, 0.65, 5, min_masks=2))
    assert np.array_equal(masks[0], masks[1]) and masks[0].any()
    torch.manual_seed(4)
    assert not np.array_equal(hubert.compute_mask_indices((4, 120), None, 0.65, 5, min_masks=2), masks[0])


def test_all_layers_in_one_pass_with_layerdrop_off(corpus, stock_checkpoint):
    loaded = load_hubert(stock_checkpoint)
    wavs = _wavs(corpus, 2)
    ref = HubertLayerExtractor(loaded.model, loaded.normalize, "cpu")(wavs, list(range(7)))
    loaded.model.encoder.layerdrop = 0.9  # a training-time LayerDrop would skip most layers...
    loaded.model.train()
    ex = HubertLayerExtractor(loaded.model, loaded.normalize, "cpu")  # ...the extractor runs in eval mode
    assert not loaded.model.training
    out = ex(wavs, list(range(7)))
    for a, b in zip(ref, out):
        assert sorted(b) == list(range(7))
        for layer in range(7):
            assert np.array_equal(a[layer], b[layer])


def test_reduced_precision_dump_stays_float32_and_close(corpus, stock_checkpoint, tmp_path):
    """--dtype bfloat16 (meant for GPUs; bfloat16 also runs on CPU) writes stock float32 files close to full precision."""
    full = np.load(dump_hubert(corpus, "valid", stock_checkpoint, 3, str(tmp_path / "f32"))[0])
    half = np.load(dump_hubert(corpus, "valid", stock_checkpoint, 3, str(tmp_path / "bf16"), dtype="bfloat16")[0])
    assert half.dtype == np.float32 and half.shape == full.shape
    cos = (full * half).sum(1) / (np.linalg.norm(full, axis=1) * np.linalg.norm(half, axis=1))
    assert cos.mean() > 0.99 and not np.array_equal(full, half)
