"""``ae-hubert dump``: features of one manifest shard -> ``{split}_{rank}_{nshard}.npy`` + ``.len``.

The format is stock ``simple_kmeans``'s: one float32 (frames x dim) array for the whole shard
and one frame count per utterance. Features stream to a temporary ``.npy`` (bounded RAM); the
pair is renamed into place only when complete, ``.len`` last.
"""
from __future__ import annotations

import logging
import os
from typing import Iterable, Sequence

import numpy as np
from npy_append_array import NpyAppendArray
from tqdm import tqdm

from ..common.atomic import atomic_paths, ensure_writable_dir
from ..common.audio import MIN_SAMPLES, check_headers, entry_blocks, read_entry
from ..common.checkpoint import weights_digest
from ..common.errors import AeHubertError, located
from ..common.manifest import ManifestEntry, read_manifest, shard_range
from ..common.sampling import sampled_indices
from .shards import feature_paths

logger = logging.getLogger(__name__)


def _check_finite(feat: np.ndarray, entry: ManifestEntry) -> None:
    if not np.isfinite(feat).all():
        raise AeHubertError(f"{entry.where}: {entry.path}: features contain NaN or inf")


def write_shard(feat_dir: str, split: str, rank: int, nshard: int,
                features: Iterable[tuple[ManifestEntry, np.ndarray]], total: int, desc: str) -> tuple[str, str]:
    """Stream ``(entry, feats)`` pairs (manifest order) into the shard files, atomically."""
    ensure_writable_dir(feat_dir)
    npy, len_path = feature_paths(feat_dir, split, rank, nshard)
    with atomic_paths(npy, len_path) as (tmp_npy, tmp_len):
        with NpyAppendArray(tmp_npy, delete_if_exists=True, rewrite_header_on_append=False) as arr, open(tmp_len, "w") as lens:
            for entry, feat in tqdm(features, total=total, desc=desc, unit="utt",
                                    disable=os.environ.get("AE_HUBERT_QUIET") == "1"):
                _check_finite(feat, entry)
                arr.append(np.ascontiguousarray(feat, dtype=np.float32))
                lens.write(f"{len(feat)}\n")
    return npy, len_path


def shard_entries(tsv_dir: str, split: str, nshard: int, rank: int, min_samples: int = MIN_SAMPLES,
                  sample: float | None = None, seed: int = 0) -> list[ManifestEntry]:
    """The shard's manifest entries (``sample``: only those k-means samples, see
    ``common/sampling.py``); every one must be long enough for one feature frame (400 samples: the
    25 ms MFCC window, HuBERT's CNN receptive field) and its audio header must match the manifest."""
    manifest = read_manifest(os.path.join(tsv_dir, f"{split}.tsv"))
    if nshard > len(manifest):
        raise AeHubertError(f"{manifest.tsv}: --nshard {nshard} is more than its {len(manifest)} utterances")
    entries = manifest.shard(nshard, rank)
    if sample is not None:
        sizes = [end - start for start, end in (shard_range(len(manifest), nshard, r) for r in range(nshard))]
        entries = [entries[i] for i in sampled_indices(sizes, sample, seed)[rank]]
    for e in entries:
        if e.nsamples < min_samples:
            raise AeHubertError(f"{e.where}: {e.relpath} has {e.nsamples} samples, fewer than the {min_samples} "
                                "needed for one feature frame (remove it from the manifest)")
    check_headers(entries)
    return entries


def sample_split(split: str) -> str:
    """The name a sample dump is written under (``train`` -> ``train_sample``): a label run over
    features of only some utterances must not be mistaken for the whole split's."""
    return f"{split}_sample"


def layer_from(path: str, ckpt: str | None = None) -> int:
    """The layer a ``choose-layer --json`` result chose; for ``ckpt`` only if chosen for that very
    checkpoint (by its weights: a layer chosen for one model says nothing about another's)."""
    import json

    try:
        with open(path) as f:
            result = json.load(f)
        chosen = result.get("chosen")
    except FileNotFoundError:
        raise located(path, "layer choice not found (run `ae-hubert choose-layer --json` first)") from None
    except (OSError, ValueError, AttributeError) as e:
        raise located(path, f"not a choose-layer result ({e})") from None
    if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < 1:
        raise located(path, f"'chosen' must be a layer number >= 1, got {chosen!r}")
    scores = result.get("scores")
    if isinstance(scores, dict) and scores and str(chosen) not in scores:  # an edited choice: named here, not later
        raise located(path, f"'chosen' is {chosen}, not one of the layers it scored ({', '.join(scores)})")
    recorded = result.get("ckpt_weights")
    if recorded is not None and ckpt is not None and os.path.isfile(ckpt) and weights_digest(ckpt) != recorded:
        raise located(path, f"layer {chosen} was chosen for another checkpoint ({result.get('ckpt')}), not for "
                            f"{ckpt}: run choose-layer on this one")
    return chosen


def batches_by_length(entries: Sequence[ManifestEntry], max_samples: int, window: int = 256
                      ) -> Iterable[list[int]]:
    """Index batches: within windows of ``window`` utterances, sorted by length and packed to
    at most ``max_samples`` padded samples. Windows keep memory bounded and output in order.
    ``max_samples`` <= 0: one utterance per batch, in manifest order (sorting would only hold
    finished features back and, growing allocation sizes, fragment the heap: measured +1 GB RSS)."""
    if max_samples <= 0:
        yield from ([i] for i in range(len(entries)))
        return
    for w0 in range(0, len(entries), window):
        idx = sorted(range(w0, min(w0 + window, len(entries))), key=lambda i: entries[i].nsamples)
        batch: list[int] = []
        for i in idx:
            longest = max([entries[j].nsamples for j in batch] + [entries[i].nsamples])
            if batch and longest * (len(batch) + 1) > max_samples:
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch


def _hubert_features(extractor, entries, layer: int, max_samples: int, max_chunk: int
                     ) -> Iterable[tuple[ManifestEntry, np.ndarray]]:
    done: dict[int, np.ndarray] = {}
    next_out = 0
    for batch in batches_by_length(entries, max_samples):
        long = [i for i in batch if entries[i].nsamples > max_chunk]
        short = [i for i in batch if entries[i].nsamples <= max_chunk]
        if short:
            wavs = [read_entry(entries[i]) for i in short]
            for i, out in zip(short, extractor(wavs, [layer])):
                done[i] = out[layer]
        for i in long:  # like stock: very long audio in independent chunks of max_chunk samples,
            # read one chunk at a time (memory bounded by the chunk, not by the clip)
            sizes = [min(max_chunk, entries[i].nsamples - s) for s in range(0, entries[i].nsamples, max_chunk)]
            out, at = None, 0
            for chunk in entry_blocks(entries[i], block=max_chunk):
                if len(chunk) < MIN_SAMPLES:
                    continue
                feat = extractor([chunk], [layer])[0][layer]
                if out is None:  # filled in place: the clip's features are held once, not twice
                    kept = sum(extractor.frames(n) for n in sizes if n >= MIN_SAMPLES)
                    out = np.empty((kept, feat.shape[1]), feat.dtype)
                out[at:at + len(feat)] = feat
                at += len(feat)
            done[i] = out[:at]
        while next_out in done:
            yield entries[next_out], done.pop(next_out)
            next_out += 1


def shard_features(tsv_dir: str, split: str, nshard: int = 1, rank: int = 0, ckpt: str | None = None,
                   layer: int | None = None, sample: float | None = None, seed: int = 0,
                   max_samples: int | None = None, max_chunk: int = 1_600_000, device: str | None = None,
                   user_dir: str | None = None, dtype: str = "float32", mfcc_rate: int = 100
                   ) -> tuple[list[ManifestEntry], Iterable[tuple[ManifestEntry, np.ndarray]], str]:
    """One manifest shard's features, computed as they are consumed: 39-d MFCC when ``ckpt`` is
    None, else 1-based ``layer`` of ``ckpt`` (stock ``dump_hubert_feature.py`` semantics; ``dtype``
    float16/bfloat16 runs the model in that precision, for GPUs). Returns (entries, a lazy
    ``(entry, features)`` iterator in manifest order, a short description). ``mfcc_rate`` 50 keeps
    every other MFCC frame: frame i then lines up with a 50 Hz layer's frame i (``at_layer_frames``).
    Every check (manifest, audio headers, checkpoint, layer) runs before this returns."""
    if mfcc_rate not in (100, 50):
        raise AeHubertError(f"--mfcc-rate must be 100 or 50, got {mfcc_rate}")
    if ckpt is None:
        from .mfcc import mfcc_stream

        step = 100 // mfcc_rate
        entries = shard_entries(tsv_dir, split, nshard, rank, sample=sample, seed=seed)
        return entries, ((e, mfcc_stream(entry_blocks(e))[::step]) for e in entries), \
            "mfcc" if step == 1 else f"mfcc{mfcc_rate}"
    if mfcc_rate != 100:
        raise AeHubertError("--mfcc-rate is for MFCC features (without --ckpt)")
    import torch

    from ..common.checkpoint import load_hubert
    from .hubert_layers import HubertLayerExtractor

    if dtype not in ("float32", "float16", "bfloat16"):
        raise AeHubertError(f"--dtype must be float32, float16 or bfloat16, got {dtype!r}")
    read_manifest(os.path.join(tsv_dir, f"{split}.tsv"))  # a bad manifest fails before the model loads
    loaded = load_hubert(ckpt, user_dir=user_dir)
    if not 1 <= layer <= loaded.num_layers:
        raise AeHubertError(f"{ckpt}: --layer {layer} out of range, the model has layers 1..{loaded.num_layers}")
    extractor = HubertLayerExtractor(loaded.model.to(getattr(torch, dtype)), loaded.normalize, device)
    receptive = next(n for n in range(1, 1 << 20) if extractor.frames(n) > 0)
    entries = shard_entries(tsv_dir, split, nshard, rank, min_samples=receptive, sample=sample, seed=seed)
    if max_samples is None:  # measured on 2 CPU cores: batching does not pay there, so one utterance
        max_samples = 1_600_000 if extractor.device.type == "cuda" else 0  # per batch; on a GPU it does
    return entries, _hubert_features(extractor, entries, layer, max_samples, max_chunk), f"L{layer}"


def dump_features(tsv_dir: str, split: str, out_dir: str, nshard: int = 1, rank: int = 0,
                  sample: float | None = None, seed: int = 0, **kind) -> tuple[str, str]:
    """``ae-hubert dump``: a shard's features (``shard_features``; ``kind``: ``ckpt``, ``layer`` and
    the model options) -> ``{split}_{rank}_{nshard}.npy`` + ``.len``. With ``sample`` (a fraction),
    only the utterances k-means samples from the shard, under ``{split}_sample_{rank}_{nshard}``."""
    entries, feats, what = shard_features(tsv_dir, split, nshard, rank, sample=sample, seed=seed, **kind)
    name = split if sample is None else sample_split(split)
    return write_shard(out_dir, name, rank, nshard, feats, len(entries), f"{what} {name} {rank}/{nshard}")


def dump_mfcc(tsv_dir: str, split: str, out_dir: str, nshard: int = 1, rank: int = 0) -> tuple[str, str]:
    return dump_features(tsv_dir, split, out_dir, nshard, rank)


def dump_hubert(tsv_dir: str, split: str, ckpt: str, layer: int, out_dir: str, nshard: int = 1,
                rank: int = 0, **options) -> tuple[str, str]:
    """Dump 1-based ``layer`` of ``ckpt`` (options: ``shard_features``'s)."""
    return dump_features(tsv_dir, split, out_dir, nshard, rank, ckpt=ckpt, layer=layer, **options)
