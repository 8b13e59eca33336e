"""Peak memory of ``dump`` does not grow with the clip: audio is read and featurised a block at a time
(MFCC exactly as in one piece; HuBERT layers in stock's independent --max-chunk chunks)."""
import os
import subprocess
import sys

import pytest
import numpy as np
import soundfile as sf

from ae_hubert.common.audio import audio_blocks
from ae_hubert.features.mfcc import mfcc, mfcc_stream

RSS = ("import resource, sys\nfrom ae_hubert.cli import main\nrc = main(sys.argv[1:])\n"
       "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(rc)\n")


def _clip(d, seconds):
    d.mkdir()
    rng = np.random.default_rng(seconds)
    sf.write(d / "a.wav", (0.1 * rng.standard_normal(16000 * seconds)).astype(np.float32), 16000, subtype="PCM_16")
    (d / "train.tsv").write_text(f"{d}\na.wav\t{16000 * seconds}\n")
    return str(d)


def _peak_kb(*argv):
    r = subprocess.run([sys.executable, "-c", RSS, *argv], capture_output=True, text=True,
                       env={**os.environ, "AE_HUBERT_QUIET": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    return int(r.stdout.split("RSS")[-1])


def test_streamed_mfcc_equals_one_piece():
    wav = (0.1 * np.random.default_rng(0).standard_normal(16000 * 7 + 123)).astype(np.float32)
    whole = mfcc(wav)
    for size in (1, 399, 4000, 16000 * 3):
        np.testing.assert_array_equal(mfcc_stream(wav[i:i + size] for i in range(0, len(wav), size)), whole)


def test_audio_blocks_are_the_file(tmp_path):
    d = _clip(tmp_path / "c", 3)
    whole, _ = sf.read(os.path.join(d, "a.wav"), dtype="float32")
    blocks = list(audio_blocks(os.path.join(d, "a.wav"), 48000, block=7000))
    assert [len(b) for b in blocks] == [7000] * 6 + [6000]
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


@pytest.mark.slow
def test_mfcc_dump_memory_does_not_grow_with_clip_length(tmp_path):
    short, long = _clip(tmp_path / "short", 3), _clip(tmp_path / "long", 600)
    peaks = {}
    for name, d in (("short", short), ("long", long)):
        peaks[name] = _peak_kb("dump", "mfcc", "--tsv-dir", d, "--split", "train", "--out-dir", f"{d}/feat")
    feats = np.load(f"{long}/feat/train_0_1.npy")
    assert feats.shape == (1 + (16000 * 600 - 400) // 160, 39)
    # what may grow is the clip's own features (held until appended): 9.4 MB here; the audio is
    # 38 MB as float32 and was 300 MB as the Python floats the old code fed Kaldi (+490 MB measured)
    assert peaks["long"] - peaks["short"] < 3 * feats.nbytes // 1024 + 10_000, peaks


def test_hubert_dump_memory_is_bounded_by_the_chunk(tmp_path, stock_checkpoint):
    """A 10-minute clip in 5-second chunks peaks no higher than one 5-second clip (plus its features)."""
    short, long = _clip(tmp_path / "short", 5), _clip(tmp_path / "long", 600)
    peaks = {}
    for name, d in (("short", short), ("long", long)):
        peaks[name] = _peak_kb("dump", "hubert", "--ckpt", stock_checkpoint, "--layer", "2", "--tsv-dir", d,
                               "--split", "train", "--out-dir", f"{d}/feat", "--max-chunk", str(16000 * 5))
    feats = np.load(f"{long}/feat/train_0_1.npy", mmap_mode="r")
    # the features (15 MB here) may grow; the audio (38 MB as float32, read whole before) may not
    assert peaks["long"] - peaks["short"] < 2 * feats.nbytes // 1024 + 10_000, peaks
