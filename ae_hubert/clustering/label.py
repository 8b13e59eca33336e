"""``ae-hubert label``: ``{split}.km`` (one line per manifest line) and ``dict.km.txt``."""
from __future__ import annotations

import os

from tqdm import tqdm

from ..common.atomic import atomic_path, ensure_writable_dir, write_lines_atomic
from ..features.shards import read_shards
from .apply import NearestCentroid, load_centroids


def write_dict(out_dir: str, k: int, name: str = "km") -> str:
    """All ``k`` ids, so no label can become ``<unk>`` (stock README's loop produced an empty dict)."""
    path = os.path.join(out_dir, f"dict.{name}.txt")
    write_lines_atomic(path, [f"{i} 1" for i in range(k)])
    return path


def dump_labels(feat_dir: str, split: str, nshard: int, km_path: str, out_dir: str, name: str = "km",
                device: str | None = None) -> str:
    centers = load_centroids(km_path)
    assign = NearestCentroid(centers, device)
    ensure_writable_dir(out_dir)
    shards = read_shards(feat_dir, split, nshard)
    out = os.path.join(out_dir, f"{split}.{name}")
    with atomic_path(out) as tmp, open(tmp, "w") as f:
        for shard in shards:
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
                labs = assign(shard.feats[lo:hi])
                for u in range(i, j):
                    a = shard.offsets[u] - lo
                    f.write(" ".join(map(str, labs[a:a + shard.lengths[u]].tolist())) + "\n")
                bar.update(j - i)
                i = j
            bar.close()
    write_dict(out_dir, len(centers), name)
    return out
