import logging
import os

import numpy as np
import pytest
import soundfile as sf

from ae_hubert.common.atomic import atomic_path, ensure_writable_dir
from ae_hubert.common.audio import read_audio
from ae_hubert.common.errors import AeHubertError
from ae_hubert.common.manifest import read_manifest, shard_range
from stock import stock_module


def write_tsv(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_shard_range_matches_stock():
    fu = stock_module("feature_utils")
    for tot in (7, 10, 101):
        for nshard in (1, 2, 3, 4):
            for rank in range(nshard):
                assert shard_range(tot, nshard, rank) == fu.get_shard_range(tot, nshard, rank)


@pytest.mark.parametrize("lines,msg,line", [
    ([], "empty manifest", None),
    (["/root"], "empty manifest", None),
    (["/root", "a.wav 123"], "expected 'relpath<TAB>nsamples'", 2),
    (["/root", "a.wav\t12x"], "not an integer", 2),
    (["/root", "a.wav\t10", "b.wav\t0"], "must be positive", 3),
])
def test_manifest_errors_name_file_and_line(tmp_path, lines, msg, line):
    tsv = write_tsv(tmp_path / "x.tsv", lines) if lines else str((tmp_path / "x.tsv").write_text("") or tmp_path / "x.tsv")
    with pytest.raises(AeHubertError) as e:
        read_manifest(tsv)
    assert msg in str(e.value)
    assert str(e.value).startswith(tsv + (f":{line}" if line else ""))


def test_missing_manifest(tmp_path):
    with pytest.raises(AeHubertError, match="manifest not found"):
        read_manifest(str(tmp_path / "nope.tsv"))


def test_audio_errors(tmp_path):
    sr16 = tmp_path / "ok.wav"
    sf.write(sr16, np.zeros(1600, dtype=np.float32) + 0.1, 16000)
    assert read_audio(str(sr16), 1600).shape == (1600,)
    with pytest.raises(AeHubertError, match="manifest says 1700"):
        read_audio(str(sr16), 1700, where="train.tsv:3")
    with pytest.raises(AeHubertError, match="not found"):
        read_audio(str(tmp_path / "missing.wav"))
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AeHubertError, match="empty"):
        read_audio(str(tmp_path / "empty.wav"))
    (tmp_path / "text.wav").write_text("this is not audio")
    with pytest.raises(AeHubertError, match="not readable as audio"):
        read_audio(str(tmp_path / "text.wav"))
    sf.write(tmp_path / "sr8.wav", np.zeros(800, dtype=np.float32), 8000)
    with pytest.raises(AeHubertError, match="sample rate 8000"):
        read_audio(str(tmp_path / "sr8.wav"))
    full = (tmp_path / "ok.wav").read_bytes()
    (tmp_path / "trunc.wav").write_bytes(full[: len(full) // 2])
    with pytest.raises(AeHubertError) as e:
        read_audio(str(tmp_path / "trunc.wav"), 1600, where="train.tsv:9")
    assert str(e.value).startswith("train.tsv:9: ")
    st = np.stack([np.full(1600, 0.2), np.full(1600, 0.4)], axis=1).astype(np.float32)
    sf.write(tmp_path / "stereo.wav", st, 16000, subtype="FLOAT")
    assert np.allclose(read_audio(str(tmp_path / "stereo.wav")), 0.3)
    sf.write(tmp_path / "nan.wav", np.full(1600, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AeHubertError, match="NaN"):
        read_audio(str(tmp_path / "nan.wav"))


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []
    with atomic_path(final) as tmp:
        open(tmp, "w").write("whole")
    assert final.read_text() == "whole"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_dir(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    with pytest.raises(AeHubertError, match="not writable"):
        ensure_writable_dir(str(d))


def test_output_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(AeHubertError, match="not a directory|cannot create"):
        ensure_writable_dir(str(f / "sub"))


def test_uncreatable_output_dir():
    with pytest.raises(AeHubertError, match="cannot create|not writable"):
        ensure_writable_dir("/proc/ae_hubert_cannot_be_here/out")


def test_a_rerun_removes_what_a_killed_writer_left(tmp_path):
    """Leftovers of dead writers on this host go; a live writer's and another host's stay."""
    import subprocess

    from ae_hubert.common import atomic

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".train_0_1.partial-{atomic._HOST}-{dead.pid}.npy"
    live = tmp_path / f".train_0_1.partial-{atomic._HOST}-{os.getpid()}.len"
    other = tmp_path / ".train_0_1.partial-elsewhere-1.npy"
    for p in (stale, live, other):
        p.write_bytes(b"x" * 100)
    with atomic.atomic_path(tmp_path / "train_0_1.npy") as tmp:
        open(tmp, "wb").close()
    assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / "train_0_1.npy").exists()


@pytest.mark.slow
def test_importing_the_plugin_leaves_an_unconfigured_root_logger_quiet():
    """fairseq's import sets the root logger to DEBUG (a basicConfig in one of its modules); a script
    that imports ae_hubert must not print every library's debug lines (seen with matplotlib)."""
    import subprocess
    import sys

    code = ("import logging, ae_hubert, ae_hubert.analysis.plots; ae_hubert.register(); "
            "logging.getLogger('matplotlib').debug('x'); print(logging.getLogger().level)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(logging.WARNING) and "DEBUG" not in out.stderr
