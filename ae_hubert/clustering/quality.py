"""``ae-hubert quality``: phone purity, cluster purity and PNMI of frame labels vs phones.

Definitions are stock ``measure_teacher_quality.py``'s: with the joint distribution
p(phone, label), phone purity = sum over labels of max over phones ("ref pur"), cluster purity
= sum over phones of max over labels ("hyp pur"), PNMI = I(phone; label) / H(phone).
Label sequences at different frame rates are aligned in time (frame i of a rate-R sequence
covers [i/R, (i+1)/R)); each sequence is read at the finer rate and the longer one is truncated.
"""
from __future__ import annotations

import json
from collections import Counter

import numpy as np

from ..common.atomic import write_text_atomic
from ..common.errors import located


def read_label_lines(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8") as f:
            return [line.split() for line in f]
    except FileNotFoundError:
        raise located(path, "label file not found") from None


def resample(labels: list[str], rate: float, target_rate: float, n: int | None = None) -> list[str]:
    """Read ``labels`` (at ``rate`` Hz) at ``target_rate`` Hz by time."""
    if rate == target_rate:
        return labels
    n = int(np.floor(len(labels) * target_rate / rate)) if n is None else n
    idx = np.minimum((np.arange(n) * rate / target_rate).astype(np.int64), len(labels) - 1)
    return [labels[i] for i in idx]


def joint_counts(refs: list[list[str]], hyps: list[list[str]], ref_rate: float = 50, hyp_rate: float = 50):
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} reference lines but {len(hyps)} label lines")
    rate = max(ref_rate, hyp_rate)
    counts: Counter = Counter()
    frame_diff = 0
    for r, h in zip(refs, hyps):
        if not r or not h:
            continue
        r = resample(r, ref_rate, rate)
        h = resample(h, hyp_rate, rate)
        frame_diff += abs(len(r) - len(h))
        m = min(len(r), len(h))
        counts.update(zip(r[:m], h[:m]))
    return counts, frame_diff


def scores(counts: Counter) -> dict:
    refs = sorted({r for r, _ in counts})
    hyps = sorted({h for _, h in counts})
    ri = {r: i for i, r in enumerate(refs)}
    hi = {h: i for i, h in enumerate(hyps)}
    p = np.zeros((len(refs), len(hyps)))
    for (r, h), c in counts.items():
        p[ri[r], hi[h]] = c
    total = p.sum()
    p /= total
    p_ref = p.sum(1, keepdims=True)
    p_hyp = p.sum(0, keepdims=True)
    with np.errstate(divide="ignore"):
        pmi = np.log(p / (p_ref @ p_hyp) + 1e-8)
    mi = float((p * pmi).sum())
    h_ref = float((-p_ref * np.log(p_ref + 1e-8)).sum())
    h_hyp = float((-p_hyp * np.log(p_hyp + 1e-8)).sum())
    return {
        "phone_purity": float(p.max(0).sum()),
        "cluster_purity": float(p.max(1).sum()),
        "pnmi": mi / h_ref if h_ref > 0 else 0.0,
        "mi": mi, "h_phone": h_ref, "h_label": h_hyp,
        "n_phones": len(refs), "n_labels_used": len(hyps), "frames": int(total),
    }


def label_quality(km_path: str, phn_path: str, km_rate: float = 50, phn_rate: float = 50,
                  json_out: str | None = None) -> dict:
    hyps = read_label_lines(km_path)
    refs = read_label_lines(phn_path)
    if len(hyps) != len(refs):
        raise located(km_path, f"{len(hyps)} lines but {phn_path} has {len(refs)}")
    counts, diff = joint_counts(refs, hyps, phn_rate, km_rate)
    if not counts:
        raise located(km_path, "no frames to compare")
    out = scores(counts)
    out.update({"frame_diff": diff, "km": km_path, "phn": phn_path, "km_rate": km_rate, "phn_rate": phn_rate})
    if json_out:
        write_text_atomic(json_out, json.dumps(out, indent=1) + "\n")
    return out
