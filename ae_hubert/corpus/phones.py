"""One phone set for both synthesisers (CMU's 39 phones plus ``sil``) and 50 Hz frame labels."""
from __future__ import annotations

import re

SILENCE = "sil"
CMU_PHONES = ("aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th "
              "uh uw v w y z zh").split()
PHONE_SET = CMU_PHONES + [SILENCE]

FLITE_TO_CMU = {"pau": SILENCE, "ax": "ah", "h#": SILENCE, "brth": SILENCE}

# espeak-ng's English phoneme mnemonics (phsource/ph_english) -> CMU.
ESPEAK_TO_CMU = {
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "g": "g", "f": "f", "v": "v", "T": "th",
    "D": "dh", "s": "s", "z": "z", "S": "sh", "Z": "zh", "tS": "ch", "dZ": "jh", "m": "m", "n": "n",
    "N": "ng", "l": "l", "r": "r", "w": "w", "j": "y", "h": "hh", "x": "k", "?": "t", "t#": "t",
    "d#": "d", "r-": "r", "l/": "l", "n-": "n", "z#": "z", "s#": "s", "w#": "w", "hw": "w",
    "@": "ah", "@2": "ah", "@5": "ah", "a#": "ah", "V": "ah", "3": "er", "3:": "er", "@L": "l",
    "I": "ih", "I2": "ih", "I#": "ih", "i": "iy", "i:": "iy", "E": "eh", "a": "ae", "aa": "ae",
    "A:": "aa", "A@": "aa", "0": "aa", "O:": "ao", "O@": "ao", "O": "ao", "U": "uh", "u:": "uw",
    "eI": "ey", "aI": "ay", "aI@": "ay", "aI3": "ay", "OI": "oy", "aU": "aw", "oU": "ow", "@U": "ow",
    "e@": "eh", "i@": "iy", "i@3": "iy", "I@": "ih", "U@": "uh", "o@": "ao", "e": "eh", "o": "ow",
    "IR": "er", "VR": "er", "3R": "er",
    "_": SILENCE, "_:": SILENCE, "_!": SILENCE, "_|": SILENCE, "_^_": SILENCE,
}


def flite_phone(p: str) -> str:
    p = FLITE_TO_CMU.get(p, p)
    if p not in PHONE_SET:
        raise ValueError(f"flite phone {p!r} is not in the CMU set")
    return p


ESPEAK_MODIFIERS = {";"}  # events that modify the previous phone rather than start a new one


def espeak_phone(p: str) -> str | None:
    """Map an espeak mnemonic (None for a modifier event); variant markers are dropped if unknown."""
    if p in ESPEAK_MODIFIERS:
        return None
    if p in ESPEAK_TO_CMU:
        return ESPEAK_TO_CMU[p]
    base = re.sub(r"[0-9#;]+$", "", p)
    if base in ESPEAK_TO_CMU:
        return ESPEAK_TO_CMU[base]
    if base.startswith("_"):
        return SILENCE
    raise ValueError(f"espeak-ng phoneme {p!r} has no CMU mapping (add it to ESPEAK_TO_CMU)")


def n_frames(nsamples: int, win: int = 400, hop: int = 320) -> int:
    """Number of HuBERT frames (50 Hz) for ``nsamples`` at 16 kHz: floor((n-400)/320)+1."""
    return max(0, (nsamples - win) // hop + 1)


def frame_labels(segments: list[tuple[float, float, str]], nsamples: int, sample_rate: int = 16000,
                 win: int = 400, hop: int = 320) -> list[str]:
    """The phone at the centre of every frame; time not covered by a segment is silence.

    ``segments`` are ``(start_s, end_s, phone)``, sorted and non-overlapping.
    """
    labels = []
    j = 0
    for i in range(n_frames(nsamples, win, hop)):
        t = (i * hop + win / 2) / sample_rate
        while j < len(segments) and segments[j][1] <= t:
            j += 1
        if j < len(segments) and segments[j][0] <= t < segments[j][1]:
            labels.append(segments[j][2])
        else:
            labels.append(SILENCE)
    return labels
