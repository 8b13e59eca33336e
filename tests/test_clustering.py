import os

import joblib
import numpy as np
import pytest

from ae_hubert.clustering.kmeans import learn_kmeans
from ae_hubert.clustering.label import dump_labels
from ae_hubert.clustering.quality import joint_counts, label_quality, resample, scores
from ae_hubert.common.errors import AeHubertError
from ae_hubert.features.shards import read_shard
from stock import stock_module


def test_stock_apply_kmeans_gives_our_labels(mfcc_labels):
    dkl = stock_module("dump_km_label")
    apply = dkl.ApplyKmeans(mfcc_labels["km"])
    shard = read_shard(mfcc_labels["feat"], "valid", 0, 1)
    ours = open(os.path.join(mfcc_labels["lab"], "valid.km")).read().splitlines()
    assert len(ours) == len(shard)
    for i, line in enumerate(ours):
        stock = apply(np.asarray(shard.utterance(i))).tolist()
        assert list(map(int, line.split())) == stock


def test_stock_dump_km_label_reads_our_files(mfcc_labels, tmp_path):
    dkl = stock_module("dump_km_label")
    dkl.dump_label(mfcc_labels["feat"], "valid", mfcc_labels["km"], 1, 0, str(tmp_path))
    assert (tmp_path / "valid_0_1.km").read_text() == open(os.path.join(mfcc_labels["lab"], "valid.km")).read()


def test_our_label_reads_stock_kmeans(mfcc_labels, tmp_path):
    lk = stock_module("learn_kmeans")
    km_path = str(tmp_path / "stock.km")
    lk.learn_kmeans(mfcc_labels["feat"], "train", 1, km_path, 10, seed=0, percent=-1, init="k-means++",
                    max_iter=5, batch_size=10000, tol=0.0, n_init=2, reassignment_ratio=0.0,
                    max_no_improvement=100)
    out = dump_labels(mfcc_labels["feat"], "valid", 1, km_path, str(tmp_path / "lab"))
    stock = stock_module("dump_km_label").ApplyKmeans(km_path)
    shard = read_shard(mfcc_labels["feat"], "valid", 0, 1)
    assert open(out).readline().split() == list(map(str, stock(np.asarray(shard.utterance(0)))))


def test_dict_lists_every_cluster(mfcc_labels):
    lines = open(os.path.join(mfcc_labels["lab"], "dict.km.txt")).read().splitlines()
    assert lines == [f"{i} 1" for i in range(20)]


def test_kmeans_is_a_fitted_sklearn_model_and_seeded(mfcc_labels, tmp_path):
    km = joblib.load(mfcc_labels["km"])
    assert km.cluster_centers_.shape == (20, 39)
    a = learn_kmeans(mfcc_labels["feat"], "train", 1, 8, str(tmp_path / "a.bin"), percent=0.5, seed=4)
    b = learn_kmeans(mfcc_labels["feat"], "train", 1, 8, str(tmp_path / "b.bin"), percent=0.5, seed=4)
    c = learn_kmeans(mfcc_labels["feat"], "train", 1, 8, str(tmp_path / "c.bin"), percent=0.5, seed=5)
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)
    assert not np.array_equal(a.cluster_centers_, c.cluster_centers_)


def test_kmeans_rejects_bad_k(mfcc_labels, tmp_path):
    with pytest.raises(AeHubertError, match="larger than the number of sampled frames"):
        learn_kmeans(mfcc_labels["feat"], "valid", 1, 10 ** 7, str(tmp_path / "x.bin"))
    with pytest.raises(AeHubertError, match="at least 2"):
        learn_kmeans(mfcc_labels["feat"], "valid", 1, 1, str(tmp_path / "x.bin"))
    assert not os.path.exists(tmp_path / "x.bin")


def test_kmeans_rejects_nan_features(tmp_path):
    feats = np.ones((30, 3), dtype=np.float32)
    feats[7, 1] = np.nan
    np.save(tmp_path / "tr_0_1.npy", feats)
    (tmp_path / "tr_0_1.len").write_text("10\n20\n")
    with pytest.raises(AeHubertError, match="NaN"):
        learn_kmeans(str(tmp_path), "tr", 1, 2, str(tmp_path / "km.bin"))


def test_quality_known_answers(tmp_path):
    rng = np.random.default_rng(0)
    phones = [list(rng.choice(list("abcdefgh"), size=200)) for _ in range(20)]
    same = scores(joint_counts(phones, phones)[0])
    assert same["pnmi"] == pytest.approx(1.0, abs=1e-6)
    assert same["phone_purity"] == pytest.approx(1.0) and same["cluster_purity"] == pytest.approx(1.0)
    rand = [list(map(str, rng.integers(0, 50, size=200))) for _ in range(20)]
    r = scores(joint_counts(phones, rand)[0])
    assert r["pnmi"] < 0.1
    # a relabelling is as good as the original
    perm = [[{"a": "7", "b": "3"}.get(p, p) for p in u] for u in phones]
    assert scores(joint_counts(phones, perm)[0])["pnmi"] == pytest.approx(1.0, abs=1e-6)


def test_quality_aligns_rates_in_time(tmp_path):
    assert resample(list("ab"), 50, 100) == list("aabb")
    phn = ["a b c d", "e f"]
    km100 = ["1 1 2 2 3 3 4 4", "5 5 6 6"]
    (tmp_path / "x.phn").write_text("\n".join(phn) + "\n")
    (tmp_path / "x.km").write_text("\n".join(km100) + "\n")
    q = label_quality(str(tmp_path / "x.km"), str(tmp_path / "x.phn"), km_rate=100, phn_rate=50,
                      json_out=str(tmp_path / "q.json"))
    assert q["pnmi"] == pytest.approx(1.0, abs=1e-6) and q["frame_diff"] == 0
    assert os.path.isfile(tmp_path / "q.json")
    (tmp_path / "short.km").write_text("1 1\n")
    with pytest.raises(AeHubertError, match="1 lines but"):
        label_quality(str(tmp_path / "short.km"), str(tmp_path / "x.phn"))


def test_mfcc_clusters_carry_phone_information(corpus, mfcc_labels):
    q = label_quality(os.path.join(mfcc_labels["lab"], "train.km"), os.path.join(corpus, "train.phn"),
                      km_rate=100, phn_rate=50)
    assert 0.1 < q["pnmi"] < 0.9


def test_streamed_kmeans_equals_in_memory_fit(mfcc_labels, tmp_path):
    """Bounded-memory k-means (memory-mapped sample, chunked Lloyd passes) reaches the in-memory result."""
    import joblib

    from ae_hubert.clustering.kmeans import fit_kmeans, learn_kmeans, sample_features, sampled_utterances
    from ae_hubert.clustering.lloyd import fit_lloyd

    feats = sample_features(mfcc_labels["feat"], "train", 1, -1, 0)
    ref = fit_kmeans(feats, 12, seed=3, min_gain=0)  # both run to sklearn's convergence rule
    parts = sampled_utterances(mfcc_labels["feat"], "train", 1, -1, 0)
    assert all(isinstance(p, np.memmap) or isinstance(p.base, np.memmap) for p in parts)  # nothing loaded
    small = fit_lloyd(parts, 12, seed=3, chunk_frames=997, in_memory=False, min_gain=0)  # chunks across utterances
    big = fit_lloyd(parts, 12, seed=3, chunk_frames=10 ** 6, in_memory=False, min_gain=0)
    np.testing.assert_allclose(small.cluster_centers_, big.cluster_centers_, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(small.cluster_centers_, ref.cluster_centers_, rtol=1e-3, atol=1e-2)
    assert abs(small.inertia_ - ref.inertia_) / ref.inertia_ < 1e-3
    assert (small.predict(feats[:500]) == ref.predict(feats[:500])).mean() > 0.99
    out = str(tmp_path / "km.bin")
    learn_kmeans(mfcc_labels["feat"], "train", 1, 12, out, seed=3, streamed=True, chunk_frames=2000)
    assert joblib.load(out).cluster_centers_.shape == (12, feats.shape[1])  # what stock dump_km_label reads


def test_torch_lloyd_is_sklearn_lloyd_and_stops_when_it_stalls(mfcc_labels):
    """The torch loop (CPU here, CUDA when there) runs the same iterations as sklearn's Lloyd from the same
    init; stopping when 5 iterations gain < 0.1% ends within 0.5% of running to convergence, earlier."""
    from sklearn.cluster import KMeans, kmeans_plusplus

    from ae_hubert.clustering.kmeans import fit_kmeans, sample_features
    from ae_hubert.clustering.lloyd import fit_lloyd
    from ae_hubert.clustering.sample import init_frame_indices

    feats = sample_features(mfcc_labels["feat"], "train", 1, -1, 0)
    init, _ = kmeans_plusplus(feats[init_frame_indices(len(feats), 30, 4)], 30, random_state=4)
    ref = KMeans(n_clusters=30, init=init, n_init=1, max_iter=40, tol=0.0, algorithm="lloyd").fit(feats)
    ours = fit_lloyd([feats], 30, seed=4, max_iter=40, tol=0.0, min_gain=0.0, device="cpu")
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-3, atol=1e-2)
    assert abs(ours.inertia_ - ref.inertia_) / ref.inertia_ < 1e-4
    full = fit_kmeans(feats, 30, seed=4, max_iter=300, min_gain=0.0)
    quick = fit_kmeans(feats, 30, seed=4, max_iter=300)
    assert quick.n_iter_ < full.n_iter_ and quick.n_iter_ % 5 == 0
    assert quick.inertia_ < 1.005 * full.inertia_
    streamed = fit_lloyd([feats], 30, seed=4, max_iter=300, in_memory=False, device="cpu")
    assert streamed.n_iter_ < full.n_iter_ and streamed.inertia_ < 1.005 * full.inertia_


class _TouchesAFile:
    """A pickle that runs code when loaded unchecked: it would create ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_kmeans_file_naming_code_is_refused_unrun(tmp_path):
    import joblib

    from ae_hubert.clustering.apply import load_centroids
    from ae_hubert.common.errors import AeHubertError

    joblib.dump(_TouchesAFile(str(tmp_path / "ran")), tmp_path / "km.bin")
    with pytest.raises(AeHubertError, match=r"km.bin: not a joblib k-means file \(it names (io|builtins)\.open, "
                                            "outside the allow-list"):
        load_centroids(str(tmp_path / "km.bin"))
    assert not (tmp_path / "ran").exists()
