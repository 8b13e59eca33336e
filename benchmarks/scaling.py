"""How the between-iteration stages grow with the data: ours and stock side by side, three sizes.

For each corpus size (synthetic corpora of N utterances, built with the corpus tools) and a
Base-size HuBERT (94.7 M parameters, layer 6), every stage runs in a fresh process so that its
peak RSS is its own:
  dump          ours ``dump hubert`` vs stock ``dump_hubert_feature.py``'s loop (one utterance at a time)
  kmeans        ours in memory and ``--streamed`` vs stock ``learn_kmeans.py``'s MiniBatchKMeans
  label         ours ``label --feat-dir`` vs stock ``dump_km_label.py``'s ApplyKmeans
  fused label   ours ``label --tsv-dir --ckpt`` (features never written): time and disk
Reports seconds, peak RSS, frames/s and disk per stage and size, the fitted growth
time ~ frames^a (least squares on log-log), and keeps everything in a JSON.
The dumps and the label stages run alternated, ``--repeats`` times each (ours, stock, ours,
stock, ...), and the fastest run of each is kept: a single cold run per stage favours whichever
runs second (page cache, CPU frequency), which misled an earlier version. torch, sklearn and
joblib are imported before every stage's clock starts (a second of import would otherwise
swamp the sub-second label stage).
Resumable: finished measurements are kept in that JSON (``--results``, default
``benchmarks/results/scaling.json`` in the repository, so finished sizes survive a new machine) and
skipped.

Usage: python benchmarks/scaling.py [--work DIR] [--results JSON] [--sizes 40,120,400] [--k 500]
                                    [--repeats 3] [--skip-stock-kmeans-above N]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("AE_HUBERT_QUIET", "1")

# one stage in a fresh interpreter: prints seconds (imports excluded) and peak RSS as JSON on its last line
RUNNER = r"""
import json, os, resource, sys, time
sys.path.insert(0, {repo!r})
os.environ["AE_HUBERT_QUIET"] = "1"
import numpy, torch, joblib, sklearn.cluster  # the libraries every stage uses: their import is not the stage's
{setup}
t = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

STAGES = {
    "dump ours": "from ae_hubert.features.dump import dump_hubert\n"
                 "dump_hubert({corpus!r}, 'train', {ckpt!r}, 6, {feat!r}, device='cpu')",
    "dump stock": "sys.path.insert(0, os.path.join({repo!r}, 'benchmarks'))\n"
                  "from between_iterations import stock_dump\n"
                  "stock_dump({ckpt!r}, {corpus!r}, 'train', 6, {stock_feat!r}, 'cpu')",
    "kmeans ours": "from ae_hubert.clustering.kmeans import learn_kmeans\n"
                   "learn_kmeans({feat!r}, 'train', 1, {k}, {km!r}, seed=0)",
    "kmeans ours streamed": "from ae_hubert.clustering.kmeans import learn_kmeans\n"
                            "learn_kmeans({feat!r}, 'train', 1, {k}, {km_streamed!r}, seed=0, streamed=True)",
    "kmeans stock": "sys.path.insert(0, os.path.join({repo!r}, 'benchmarks'))\n"
                    "import joblib\nfrom between_iterations import stock_fit\n"
                    "joblib.dump(stock_fit({feat!r}, 'train', {k}, 0), {km_stock!r})",
    "label ours": "from ae_hubert.clustering.label import dump_labels\n"
                  "dump_labels({feat!r}, 'train', 1, {km!r}, {lab!r}, device='cpu')",
    "label stock": "sys.path.insert(0, os.path.join({repo!r}, 'benchmarks'))\n"
                   "from between_iterations import stock_label\n"
                   "stock_label({km!r}, {feat!r}, 'train', {stock_km!r})",
    "fused label ours": "from ae_hubert.clustering.label import label_audio\n"
                        "label_audio({corpus!r}, 'train', {km!r}, {fused!r}, ckpt={ckpt!r}, layer=6, device='cpu')",
}


PAIRS = (("dump ours", "dump stock"), ("label ours", "label stock"))


def run_stage(name: str, paths: dict) -> dict:
    lines = STAGES[name].format(repo=REPO, **paths).splitlines()
    setup = [ln for ln in lines if ln.startswith(("import ", "from ", "sys.path"))]
    body = [ln for ln in lines if ln not in setup]
    code = RUNNER.format(repo=REPO, setup="\n".join(setup), body="\n".join(body))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{name} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def disk_mb(*paths: str) -> float:
    total = 0
    for p in paths:
        if os.path.isfile(p):
            total += os.path.getsize(p)
        for root, _, files in os.walk(p):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total / 2 ** 20


def inertia(feats: np.ndarray, centers: np.ndarray) -> float:
    from ae_hubert.clustering.apply import NearestCentroid

    lab = NearestCentroid(centers, "cpu")(feats)
    return float(((feats - centers[lab]) ** 2).sum(dtype=np.float64))


def growth(frames: list[float], seconds: list[float]) -> float:
    """Exponent a of seconds ~ frames^a (least squares on logs)."""
    return float(np.polyfit(np.log(frames), np.log(seconds), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ae_hubert_scaling"))
    ap.add_argument("--results", default=os.path.join(REPO, "benchmarks", "results", "scaling.json"))
    ap.add_argument("--sizes", default="40,120,400", help="corpus utterances per size (train is ~80%)")
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3,
                    help="alternated ours/stock runs of the dump and of the label stage; the fastest is reported")
    ap.add_argument("--skip-stock-kmeans-above", type=int, default=10 ** 9,
                    help="frames above which stock k-means is not run (it is the slowest stage)")
    a = ap.parse_args()
    from ae_hubert.common.atomic import write_text_atomic
    from ae_hubert.common.fresh_checkpoint import save_fresh_hubert
    from ae_hubert.common.manifest import read_manifest
    from ae_hubert.corpus.toy_corpus import build
    from ae_hubert.features.shards import read_shard

    os.makedirs(a.work, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.results)), exist_ok=True)
    out_json = a.results
    results = json.load(open(out_json)) if os.path.isfile(out_json) else {}
    ckpt = os.path.join(a.work, "base.pt")
    if not os.path.isfile(ckpt):
        save_fresh_hubert(ckpt, "base", n_classes=a.k, seed=0)
    for n in [int(x) for x in a.sizes.split(",")]:
        d = os.path.join(a.work, f"n{n}")
        corpus = os.path.join(d, "corpus")
        if not os.path.isfile(os.path.join(corpus, "train.tsv")):
            build(corpus, utterances=n, seed=0)
        paths = {"corpus": corpus, "ckpt": ckpt, "k": a.k, "feat": os.path.join(d, "feat"),
                 "stock_feat": os.path.join(d, "stock_feat"), "km": os.path.join(d, "km.bin"),
                 "km_streamed": os.path.join(d, "km_streamed.bin"), "km_stock": os.path.join(d, "km_stock.bin"),
                 "lab": os.path.join(d, "lab"), "stock_km": os.path.join(d, "stock.km"),
                 "fused": os.path.join(d, "fused")}
        row = results.setdefault(str(n), {})
        entries = read_manifest(os.path.join(corpus, "train.tsv")).entries
        row["audio_minutes"] = sum(e.nsamples for e in entries) / 16000 / 60
        for name in STAGES:
            pair = next((p for p in PAIRS if name in p), None)
            if pair is not None:  # alternated ours/stock runs, the fastest of each kept
                if name != pair[0] or all(len(row.get(d, {}).get("runs", [])) >= a.repeats for d in pair):
                    continue
                runs = {d: [] for d in pair}
                for rep in range(a.repeats):
                    for d in pair:
                        r = run_stage(d, paths)
                        runs[d].append(r)
                        print(f"n={n} {d} run {rep + 1}: {r['seconds']:.1f} s, peak {r['peak_rss_mb']:.0f} MB", flush=True)
                for d in pair:
                    row[d] = {"seconds": min(r["seconds"] for r in runs[d]),
                              "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[d]),
                              "runs": [r["seconds"] for r in runs[d]]}
                if pair[0] == "dump ours":
                    row["frames"] = int(read_shard(paths["feat"], "train", 0, 1).lengths.sum())
                    row["disk_mb dump -> label"] = disk_mb(paths["feat"])
                write_text_atomic(out_json, json.dumps(results, indent=1) + "\n")
                continue
            if name in row:
                continue
            if name == "kmeans stock" and row.get("frames", 0) > a.skip_stock_kmeans_above:
                continue
            t = time.time()
            row[name] = run_stage(name, paths)
            print(f"n={n} {name}: {row[name]['seconds']:.1f} s, peak {row[name]['peak_rss_mb']:.0f} MB "
                  f"({time.time() - t:.0f} s wall)", flush=True)
            if name == "fused label ours":
                row["disk_mb fused"] = disk_mb(paths["fused"])
            write_text_atomic(out_json, json.dumps(results, indent=1) + "\n")
        if "inertia ratio ours/stock" not in row and os.path.isfile(paths["km_stock"]):
            import joblib

            feats = np.asarray(read_shard(paths["feat"], "train", 0, 1).feats, dtype=np.float32)
            i_o, i_s = (inertia(feats, joblib.load(p).cluster_centers_) for p in (paths["km"], paths["km_stock"]))
            row["inertia ratio ours/stock"] = i_o / i_s
            row["labels identical to stock"] = open(paths["stock_km"]).read() == open(
                os.path.join(paths["lab"], "train.km")).read()
            row["fused labels identical"] = open(os.path.join(paths["fused"], "train.km")).read() == open(
                os.path.join(paths["lab"], "train.km")).read()
            write_text_atomic(out_json, json.dumps(results, indent=1) + "\n")
    sizes = sorted(results, key=int)
    print(f"\n{'stage':22s} " + " ".join(f"{'n=' + s + ' s':>10s} {'MB':>6s} {'kfr/s':>7s}" for s in sizes)
          + f" {'growth a':>9s}")
    for name in STAGES:
        cells, xs, ys = [], [], []
        for s in sizes:
            r = results[s].get(name)
            if r is None:
                cells.append(f"{'-':>10s} {'-':>6s} {'-':>7s}")
                continue
            fr = results[s]["frames"]
            cells.append(f"{r['seconds']:10.1f} {r['peak_rss_mb']:6.0f} {fr / r['seconds'] / 1000:7.1f}")
            xs.append(fr)
            ys.append(r["seconds"])
        a_fit = f"{growth(xs, ys):9.2f}" if len(xs) >= 2 else f"{'-':>9s}"
        print(f"{name:22s} " + " ".join(cells) + " " + a_fit)
    print()
    for s in sizes:
        r = results[s]
        extra = {k: v for k, v in r.items() if not isinstance(v, dict)}
        print(f"n={s}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items()))


if __name__ == "__main__":
    main()
