"""``ae-hubert label``: ``{split}.km`` (one line per manifest line) and ``dict.km.txt``."""
from __future__ import annotations

import os

import numpy as np
from tqdm import tqdm

from ..common.arguments import FILE_NAME
from ..common.atomic import atomic_path, ensure_writable_dir, write_lines_atomic
from ..common.errors import AeHubertError, located
from ..features.shards import feature_paths, read_shards
from .apply import NearestCentroid, NonFiniteFeatures, load_centroids


def check_label_name(name: str) -> None:
    """A label name becomes file names ({split}.NAME, dict.NAME.txt): a plain word, no paths."""
    if not FILE_NAME.fullmatch(name or ""):
        raise AeHubertError(f"label name {name!r}: use letters, digits, '_' or '-' (it names files)")


def write_dict(out_dir: str, k: int, name: str = "km") -> str:
    """All ``k`` ids, so no label can become ``<unk>`` (stock README's loop produced an empty dict)."""
    path = os.path.join(out_dir, f"dict.{name}.txt")
    write_lines_atomic(path, [f"{i} 1" for i in range(k)])
    return path


def dump_labels(feat_dir: str, split: str, nshard: int, km_path: str, out_dir: str, name: str = "km",
                device: str | None = None) -> str:
    check_label_name(name)
    centers = load_centroids(km_path)
    shards = read_shards(feat_dir, split, nshard)
    dim = shards[0].feats.shape[1]
    if dim != centers.shape[1]:
        raise located(feature_paths(feat_dir, split, 0, nshard)[0],
                      f"features have {dim} dims but the k-means model {km_path} has {centers.shape[1]}")
    assign = NearestCentroid(centers, device)
    ensure_writable_dir(out_dir)
    out = os.path.join(out_dir, f"{split}.{name}")
    with atomic_path(out) as tmp, open(tmp, "w") as f:
        for r, shard in enumerate(shards):
            # assign a whole block of frames at once, then cut it back into utterances
            block = 1 << 18
            i = 0
            bar = tqdm(total=len(shard), desc=f"label {split}", unit="utt",
                       disable=os.environ.get("AE_HUBERT_QUIET") == "1")
            while i < len(shard):
                j = i
                while j < len(shard) and shard.offsets[j] + shard.lengths[j] - shard.offsets[i] <= block:
                    j += 1
                j = max(j, i + 1)
                lo, hi = shard.offsets[i], shard.offsets[j - 1] + shard.lengths[j - 1]
                try:
                    labs = assign(shard.feats[lo:hi])
                except NonFiniteFeatures as e:
                    u = int(np.searchsorted(shard.offsets, lo + e.frame, side="right")) - 1
                    raise located(feature_paths(feat_dir, split, r, nshard)[0],
                                  f"utterance {u + 1} (frame {lo + e.frame}) is NaN or inf: no label") from None
                for u in range(i, j):
                    a = shard.offsets[u] - lo
                    f.write(" ".join(map(str, labs[a:a + shard.lengths[u]].tolist())) + "\n")
                bar.update(j - i)
                i = j
            bar.close()
    write_dict(out_dir, len(centers), name)
    return out
