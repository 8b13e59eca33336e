"""Word and character error rates (editdistance), summed edits over summed reference lengths."""
from __future__ import annotations

import editdistance


def error_rates(hyps: list[str], refs: list[str]) -> dict:
    """``{"wer", "cer", "words", "chars"}`` of hypothesis vs reference sentences (words split on
    whitespace; characters of the sentences with single spaces between words)."""
    w_err = w_len = c_err = c_len = 0
    for h, r in zip(hyps, refs, strict=True):
        hw, rw = h.split(), r.split()
        w_err += editdistance.eval(hw, rw)
        w_len += len(rw)
        hc, rc = " ".join(hw), " ".join(rw)
        c_err += editdistance.eval(hc, rc)
        c_len += len(rc)
    return {"wer": w_err / max(w_len, 1), "cer": c_err / max(c_len, 1), "words": w_len, "chars": c_len}
