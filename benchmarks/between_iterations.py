"""Between-iteration stage, stock fairseq algorithms vs ae_hubert, side by side on the same data.

Stages (iteration 2 of HuBERT: features of a layer of the previous model):
  dump   stock: dump_hubert_feature.py's loop, one utterance at a time through
         extract_features(output_layer=L) (run on CPU here; stock itself hard-codes .cuda())
         ours:  ae_hubert.features.dump.dump_hubert (length-sorted batches, exact padding)
  fit    stock: learn_kmeans.py's MiniBatchKMeans with its defaults (n_init=20, batch 10000, ...)
         ours:  ae_hubert.clustering.kmeans.fit_kmeans (full-batch Lloyd, one k-means++ init)
  label  stock: dump_km_label.py's ApplyKmeans (numpy, per utterance)
         ours:  ae_hubert.clustering.label.dump_labels (torch, blocks of frames)
Prints seconds and ratios, and the final inertia of both k-means on all frames.

Usage: python benchmarks/between_iterations.py [--work DIR] [--utterances N] [--arch base|toy] [--k K]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("AE_HUBERT_QUIET", "1")

from ae_hubert.clustering.apply import load_centroids  # noqa: E402
from ae_hubert.clustering.kmeans import fit_kmeans, sample_features  # noqa: E402
from ae_hubert.clustering.label import dump_labels  # noqa: E402
from ae_hubert.common.audio import read_entry  # noqa: E402
from ae_hubert.common.checkpoint import load_hubert  # noqa: E402
from ae_hubert.common.manifest import read_manifest  # noqa: E402
from ae_hubert.corpus.toy_corpus import build  # noqa: E402
from ae_hubert.features.dump import dump_hubert  # noqa: E402
from ae_hubert.features.shards import read_shard  # noqa: E402
from ae_hubert.common.fresh_checkpoint import save_fresh_hubert  # noqa: E402
import fairseq  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(fairseq.__file__), "examples", "hubert", "simple_kmeans"))


def stock_dump(ckpt: str, tsv_dir: str, split: str, layer: int, out_dir: str, device: str,
               max_chunk=1_600_000):
    """dump_hubert_feature.py's algorithm: per utterance, chunks of max_chunk, output_layer=layer."""
    from npy_append_array import NpyAppendArray

    loaded = load_hubert(ckpt, device=device)
    model = loaded.model
    os.makedirs(out_dir, exist_ok=True)
    npy = os.path.join(out_dir, f"{split}_0_1.npy")
    if os.path.exists(npy):
        os.remove(npy)
    arr = NpyAppendArray(npy)
    with open(os.path.join(out_dir, f"{split}_0_1.len"), "w") as lens, torch.no_grad():
        for e in read_manifest(os.path.join(tsv_dir, f"{split}.tsv")).entries:
            x = torch.from_numpy(read_entry(e)).float().view(1, -1).to(device)
            feats = []
            for start in range(0, x.size(1), max_chunk):
                chunk = x[:, start:start + max_chunk]
                f, _ = model.extract_features(source=chunk, padding_mask=None, mask=False, output_layer=layer)
                feats.append(f)
            feat = torch.cat(feats, 1).squeeze(0)
            arr.append(feat.cpu().numpy())
            lens.write(f"{len(feat)}\n")
    arr.close()


def stock_fit(feat_dir: str, split: str, k: int, seed: int):
    from sklearn.cluster import MiniBatchKMeans

    feats = sample_features(feat_dir, split, 1, -1, seed)
    km = MiniBatchKMeans(n_clusters=k, init="k-means++", max_iter=100, batch_size=10000, verbose=0,
                         compute_labels=False, tol=0.0, max_no_improvement=100, init_size=None, n_init=20,
                         reassignment_ratio=0.0, random_state=seed)
    km.fit(feats)
    return km


def stock_label(km_path: str, feat_dir: str, split: str, out: str):
    import dump_km_label

    apply = dump_km_label.ApplyKmeans(km_path)
    shard = read_shard(feat_dir, split, 0, 1)
    with open(out, "w") as f:
        for i in range(len(shard)):
            f.write(" ".join(map(str, apply(np.asarray(shard.utterance(i))).tolist())) + "\n")


def inertia(feats: np.ndarray, centers: np.ndarray) -> float:
    from ae_hubert.clustering.apply import NearestCentroid

    lab = NearestCentroid(centers, "cpu")(feats)
    return float(((feats - centers[lab]) ** 2).sum())


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ae_hubert_bench"))
    ap.add_argument("--utterances", type=int, default=400)
    ap.add_argument("--arch", default="base", choices=["base", "toy"])
    ap.add_argument("--layer", type=int, default=6)
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    a = ap.parse_args()
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    corpus = os.path.join(a.work, "corpus")
    if not os.path.isfile(os.path.join(corpus, "train.tsv")):
        build(corpus, utterances=a.utterances, seed=a.seed)
    ckpt = os.path.join(a.work, f"{a.arch}.pt")
    if not os.path.isfile(ckpt):
        save_fresh_hubert(ckpt, a.arch, n_classes=a.k, seed=a.seed)
    split = "train"
    n_utt = len(read_manifest(os.path.join(corpus, f"{split}.tsv")))
    hours = sum(e.nsamples for e in read_manifest(os.path.join(corpus, f"{split}.tsv")).entries) / 16000 / 3600
    print(f"data: {n_utt} utterances, {hours * 60:.1f} min of audio; model: {a.arch} (layer {a.layer}); "
          f"K={a.k}; torch threads {torch.get_num_threads()}; device {device}")

    sd, od = os.path.join(a.work, "stock_feat"), os.path.join(a.work, "ours_feat")
    # dumps alternate, best of 2 each: the first pass over the data also warms caches and allocators
    t_dump_s, t_dump_o = float("inf"), float("inf")
    for _ in range(2):
        t_dump_s = min(t_dump_s, timed(lambda: stock_dump(ckpt, corpus, split, a.layer, sd, device))[0])
        t_dump_o = min(t_dump_o, timed(lambda: dump_hubert(corpus, split, ckpt, a.layer, od, device=device))[0])
    fs, fo = read_shard(sd, split, 0, 1), read_shard(od, split, 0, 1)
    dump_diff = float(np.abs(np.asarray(fs.feats) - np.asarray(fo.feats)).max())

    t_fit_s, km_s = timed(lambda: stock_fit(od, split, a.k, a.seed))
    t_fit_o, km_o = timed(lambda: fit_kmeans(sample_features(od, split, 1, -1, a.seed), a.k, a.seed))
    feats = np.asarray(fo.feats, dtype=np.float32)
    in_s, in_o = inertia(feats, km_s.cluster_centers_), inertia(feats, km_o.cluster_centers_)

    import joblib

    km_path = os.path.join(a.work, "km.bin")
    joblib.dump(km_o, km_path)
    t_lab_s, _ = timed(lambda: stock_label(km_path, od, split, os.path.join(a.work, "stock.km")))
    t_lab_o, _ = timed(lambda: dump_labels(od, split, 1, km_path, os.path.join(a.work, "ours_lab"), device=device))
    same = open(os.path.join(a.work, "stock.km")).read() == open(os.path.join(a.work, "ours_lab", f"{split}.km")).read()

    rows = [("dump", t_dump_s, t_dump_o), ("k-means fit", t_fit_s, t_fit_o), ("label", t_lab_s, t_lab_o)]
    tot_s, tot_o = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"\n{'stage':14s} {'stock s':>9s} {'ours s':>9s} {'speed-up':>9s}")
    for name, s, o in rows + [("total", tot_s, tot_o)]:
        print(f"{name:14s} {s:9.2f} {o:9.2f} {s / o:8.1f}x")
    print(f"\nmax |stock - ours| feature difference: {dump_diff:.2e}")
    print(f"k-means inertia on all {len(feats)} frames: stock {in_s:.6g}, ours {in_o:.6g} "
          f"(ours/stock = {in_o / in_s:.4f})")
    print(f"labels identical to stock ApplyKmeans: {same}")
    _ = load_centroids(km_path)


if __name__ == "__main__":
    main()
