import numpy as np
import soundfile as sf

from ae_hubert.common.manifest import read_manifest
from ae_hubert.features.dump import dump_mfcc
from ae_hubert.features.mfcc import deltas, mfcc
from ae_hubert.features.shards import read_shard


def reference_deltas(x, n=2):
    """torchaudio.functional.compute_deltas, written out: replicate padding, window 2n+1."""
    t = len(x)
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(t):
        for k in range(1, n + 1):
            out[i] += k * (x[min(i + k, t - 1)] - x[max(i - k, 0)])
    return out / (2 * sum(k * k for k in range(1, n + 1)))


def test_deltas_match_reference():
    x = np.random.default_rng(0).normal(size=(37, 13)).astype(np.float32)
    assert np.allclose(deltas(x), reference_deltas(x), atol=1e-5)


def test_mfcc_shape_rate_and_blocks(corpus):
    e = read_manifest(f"{corpus}/train.tsv").entries[0]
    wav, _ = sf.read(e.path, dtype="float32")
    f = mfcc(wav)
    assert f.shape == (1 + (len(wav) - 400) // 160, 39) and f.dtype == np.float32
    assert np.allclose(f[:, 13:26], deltas(f[:, :13]), atol=1e-4)
    assert np.allclose(f[:, 26:], deltas(f[:, 13:26]), atol=1e-4)
    # energy-free cepstra respond to the signal's spectrum, not its scale: a louder copy shifts c0 only
    g = mfcc(wav * 2)
    assert np.allclose(g[:, 1:13], f[:, 1:13], atol=1e-2)


def test_sharded_dump_concatenates_to_unsharded(corpus, tmp_path):
    dump_mfcc(corpus, "train", str(tmp_path / "one"))
    for r in range(3):
        dump_mfcc(corpus, "train", str(tmp_path / "three"), nshard=3, rank=r)
    one = read_shard(str(tmp_path / "one"), "train", 0, 1)
    three = [read_shard(str(tmp_path / "three"), "train", r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate([s.feats for s in three]), one.feats)
    assert np.array_equal(np.concatenate([s.lengths for s in three]), one.lengths)
    assert not [p for p in (tmp_path / "one").iterdir() if "partial" in p.name]


def test_rerun_gives_same_bytes(corpus, tmp_path):
    dump_mfcc(corpus, "valid", str(tmp_path / "a"))
    first = (tmp_path / "a" / "valid_0_1.npy").read_bytes()
    dump_mfcc(corpus, "valid", str(tmp_path / "a"))
    assert (tmp_path / "a" / "valid_0_1.npy").read_bytes() == first


def test_mfcc_at_50_hz_is_every_other_frame_in_dump_and_label(corpus, tmp_path, capsys):
    """``--mfcc-rate 50`` keeps frames 0, 2, 4, ... (those a 50 Hz layer's frames line up with), in a
    dump and in labels computed from the audio alike; a checkpoint's layer takes no MFCC rate."""
    import joblib
    from sklearn.cluster import KMeans

    from ae_hubert.cli import main

    assert main(["dump", "mfcc", "--tsv-dir", corpus, "--split", "valid", "--out-dir", str(tmp_path / "f100")]) == 0
    assert main(["dump", "mfcc", "--tsv-dir", corpus, "--split", "valid", "--out-dir", str(tmp_path / "f50"),
                 "--mfcc-rate", "50"]) == 0
    one, two = read_shard(str(tmp_path / "f100"), "valid", 0, 1), read_shard(str(tmp_path / "f50"), "valid", 0, 1)
    full, lens, half = one.feats, list(one.lengths), two.feats
    starts = np.cumsum([0, *lens[:-1]])
    assert list(two.lengths) == [(n + 1) // 2 for n in lens]
    assert np.array_equal(half, np.concatenate([full[s:s + n:2] for s, n in zip(starts, lens)]))
    km = KMeans(4, n_init=1, random_state=0).fit(half)
    joblib.dump(km, tmp_path / "km.bin")
    common = ["--split", "valid", "--km", str(tmp_path / "km.bin"), "--name", "km"]
    assert main(["label", "--feat-dir", str(tmp_path / "f50"), *common, "--out-dir", str(tmp_path / "a")]) == 0
    assert main(["label", "--tsv-dir", corpus, *common, "--out-dir", str(tmp_path / "b"), "--mfcc-rate", "50"]) == 0
    assert (tmp_path / "a" / "valid.km").read_text() == (tmp_path / "b" / "valid.km").read_text()
    capsys.readouterr()
    assert main(["label", "--tsv-dir", corpus, *common, "--out-dir", str(tmp_path / "c"), "--mfcc-rate", "50",
                 "--ckpt", "x.pt", "--layer", "1"]) == 2
    assert "--mfcc-rate: only for MFCC labels" in capsys.readouterr().err
    assert main(["label", "--feat-dir", str(tmp_path / "f50"), *common, "--out-dir", str(tmp_path / "c"),
                 "--mfcc-rate", "50"]) == 2
