"""Which utterances k-means fits on: one rule shared by the k-means fit (over dumped shards) and
by ``dump --sample`` (which dumps only those utterances), so both choose the same frames."""
from __future__ import annotations

import numpy as np

from .errors import AeHubertError


def check_fraction(percent: float) -> None:
    if percent != -1 and not 0 < percent <= 1:
        raise AeHubertError(f"--percent must be a fraction in (0, 1] or -1 for all, got {percent}")


def sampled_indices(shard_sizes: list[int], percent: float, seed: int) -> list[np.ndarray]:
    """Sorted utterance indices kept in each shard: ``percent`` (a fraction in (0, 1], or -1 for
    all) of each shard, as stock ``learn_kmeans.py`` samples; shards draw in order from one
    generator seeded with ``seed``."""
    check_fraction(percent)
    rng = np.random.default_rng(seed)
    out = []
    for n in shard_sizes:
        if 0 < percent < 1:
            out.append(np.sort(rng.choice(n, size=max(1, int(round(n * percent))), replace=False)))
        else:
            out.append(np.arange(n))
    return out
