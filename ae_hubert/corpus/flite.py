"""Debian's flite: 16 kHz voices (kal16, awb, ...) with phone end times from ``-psdur``."""
from __future__ import annotations

import os
import subprocess
import tempfile

import numpy as np
import soundfile as sf


def synth(text: str, voice: str = "kal16", stretch: float = 1.0, f0_mean: float | None = None
          ) -> tuple[np.ndarray, int, list[tuple[float, str]]]:
    """Return ``(int16 samples, sample_rate, [(end_seconds, flite_phone), ...])``."""
    fd, wav = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    cmd = ["flite", "-voice", voice, "-psdur", "--setf", f"duration_stretch={stretch:.3f}"]
    if f0_mean is not None:
        cmd += ["--setf", f"int_f0_target_mean={f0_mean:.1f}"]
    cmd += ["-t", text, "-o", wav]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        samples, sr = sf.read(wav, dtype="int16")
    except FileNotFoundError:
        raise RuntimeError("flite not found; apt-get install flite") from None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"flite failed for voice {voice!r}: {e.stderr.strip()}") from None
    finally:
        os.remove(wav)
    phones = []
    for tok in out.split():
        name, _, end = tok.rpartition(":")
        if name:
            phones.append((float(end), name))
    if not phones:
        raise RuntimeError(f"flite printed no phone durations for voice {voice!r} (is it a flite voice?)")
    return samples, sr, phones


def voices() -> list[str]:
    """The voices built into this flite (``flite -lv``); a ``.flitevox`` file or URL is a voice too."""
    try:
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        raise RuntimeError("flite not found; apt-get install flite") from None
    return out.partition(":")[2].split()


def word_prons(words: list[str], voice: str, batch: int = 500) -> dict[str, list[str]]:
    """Each word's flite phones (without pauses). Words are said in batches, separated by "; "
    (flite pauses at each), which is ~100x faster than one call per word; a batch whose pauses do
    not split into one group per word is said one word at a time."""
    prons: dict[str, list[str]] = {}
    for b in range(0, len(words), batch):
        chunk = words[b:b + batch]
        _, _, ph = synth("; ".join(chunk) + ".", voice)
        groups, cur = [], []
        for _, p in ph:
            if p == "pau":
                if cur:
                    groups.append(cur)
                cur = []
            else:
                cur.append(p)
        if cur:
            groups.append(cur)
        if len(groups) == len(chunk):
            prons.update(zip(chunk, groups))
            continue
        for w in chunk:
            _, _, ph = synth(w, voice)
            prons[w] = [p for _, p in ph if p != "pau"]
    return prons
