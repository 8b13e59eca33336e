"""``ae-hubert quality``: phone purity, cluster purity and PNMI of frame labels vs phones.

Definitions are stock ``measure_teacher_quality.py``'s: with the joint distribution
p(phone, label), phone purity = sum over labels of max over phones ("ref pur"), cluster purity
= sum over phones of max over labels ("hyp pur"), PNMI = I(phone; label) / H(phone).
Label sequences at different frame rates are aligned in time (frame i of a rate-R sequence
covers [i/R, (i+1)/R)); each sequence is read at the finer rate and the longer one is truncated.
"""
from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np

from ..common.atomic import check_writable_dir, write_text_atomic
from ..common.audio import SAMPLE_RATE
from ..common.errors import AeHubertError, located, missing
from ..common.manifest import read_manifest
from ..common.text import read_lines


def read_label_lines(path: str) -> list[list[str]]:
    if not os.path.isfile(path):
        raise missing(path, "label file")
    return [line.split() for line in read_lines(path)]


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


KNOWN_RATES = (25.0, 50.0, 100.0)  # label rates of HuBERT's targets: layer features (50, or 25 with stride) and MFCC


def infer_rate(hyps: list[list[str]], refs: list[list[str]], ref_rate: float, path: str) -> float:
    """The label rate that makes the label lines as long (in seconds) as the reference lines."""
    n_hyp, n_ref = sum(map(len, hyps)), sum(map(len, refs))
    if n_hyp == 0 or n_ref == 0:
        raise located(path, "no frames to compare")
    rate = n_hyp / n_ref * ref_rate
    best = min(KNOWN_RATES, key=lambda r: abs(np.log(rate / r)))
    if abs(rate / best - 1) > 0.1:
        raise located(path, f"cannot infer --km-rate: the lines are {rate:.1f} Hz long against the phones at "
                            f"{ref_rate:g} Hz, none of {', '.join(f'{r:g}' for r in KNOWN_RATES)} Hz; pass --km-rate")
    return best


def check_lengths(hyps: list[list[str]], refs: list[list[str]], hyp_rate: float, ref_rate: float,
                  hyp_path: str, ref_path: str, hyp_first_line: int = 1,
                  hint: str = "wrong --km-rate/--phn-rate, or the files are not of the same utterances") -> None:
    """Each label line must last as long as its phone line (within 2 frames + 2%): a wrong rate or
    lines of other utterances would otherwise be scored without a word. Utterance i is line
    ``hyp_first_line + i`` of ``hyp_path`` (2 for a manifest, whose first line is its root)."""
    for i, (h, r) in enumerate(zip(hyps, refs)):
        expected = len(r) * hyp_rate / ref_rate
        if abs(len(h) - expected) > 2 + 0.02 * expected:
            raise located(hyp_path, f"{len(h)} labels at {hyp_rate:g} Hz ({len(h) / hyp_rate:.2f} s) but line {i + 1} "
                                    f"of {ref_path} has {len(r)} phones at {ref_rate:g} Hz ({len(r) / ref_rate:.2f} s): "
                                    f"{hint}", hyp_first_line + i)


def check_phone_rate(refs: list[list[str]], phn_rate: float, phn_path: str) -> None:
    """Phone lines beside their manifest (``valid.phn`` next to ``valid.tsv``, a corpus's data dir)
    must last as long as its audio at ``phn_rate``: a wrong --phn-rate is named as such, not blamed
    on the labels' rate."""
    tsv = os.path.splitext(phn_path)[0] + ".tsv"
    if not os.path.isfile(tsv):
        return
    entries = read_manifest(tsv).entries
    if len(entries) != len(refs):
        return  # not this manifest's phones line for line; the label files are checked against each other
    for i, (r, e) in enumerate(zip(refs, entries)):
        seconds = e.nsamples / SAMPLE_RATE
        if abs(len(r) - seconds * phn_rate) > 2 + 0.02 * seconds * phn_rate:
            raise located(phn_path, f"{len(r)} phones at --phn-rate {phn_rate:g} Hz ({len(r) / phn_rate:.2f} s) but "
                                    f"line {e.line} of {tsv} is {seconds:.2f} s of audio: wrong --phn-rate? "
                                    f"({len(r) / max(seconds, 1e-3):.0f} Hz fits)", i + 1)


def _check_not_swapped(hyps: list[list[str]], refs: list[list[str]], km_path: str, phn_path: str) -> None:
    """Phone symbols given as --km and label ids as --phn score plausibly but mean nothing: refused.
    (Any symbols on both sides, as stock allows, e.g. phones against phones, are compared.)"""
    first = next(((i, t) for i, line in enumerate(hyps, start=1) for t in line if not t.isdigit()), None)
    if first is not None and all(t.isdigit() for line in refs for t in line):
        raise located(km_path, f"{first[1]!r} is not a label id while {phn_path} holds only ids: --km and --phn "
                               "swapped? (--km takes the cluster labels, --phn the frame phones)", first[0])


def label_quality(km_path: str, phn_path: str, km_rate: float | None = None, phn_rate: float = 50,
                  json_out: str | None = None) -> dict:
    """``km_rate`` None: inferred from the line lengths (50 or 100 Hz labels against the phones)."""
    for name, rate in (("--km-rate", km_rate), ("--phn-rate", phn_rate)):
        if rate is not None and not rate > 0:
            raise AeHubertError(f"{name} must be a positive frame rate in Hz, got {rate}")
    if json_out:
        if os.path.isdir(json_out):
            raise located(json_out, "--json is a directory")
        check_writable_dir(os.path.dirname(os.path.abspath(json_out)))
    hyps = read_label_lines(km_path)
    refs = read_label_lines(phn_path)
    _check_not_swapped(hyps, refs, km_path, phn_path)
    if len(hyps) != len(refs):
        raise located(km_path, f"{len(hyps)} lines but {phn_path} has {len(refs)}")
    check_phone_rate(refs, phn_rate, phn_path)
    if km_rate is None:
        km_rate = infer_rate(hyps, refs, phn_rate, km_path)
    check_lengths(hyps, refs, km_rate, phn_rate, km_path, phn_path)
    counts, diff = joint_counts(refs, hyps, phn_rate, km_rate)
    if not counts:
        raise located(km_path, "no frames to compare")
    out = scores(counts)
    out.update({"frame_diff": diff, "km": km_path, "phn": phn_path, "km_rate": km_rate, "phn_rate": phn_rate})
    if json_out:
        write_text_atomic(json_out, json.dumps(out, indent=1) + "\n")
    return out
