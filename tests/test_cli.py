import os
import subprocess

import pytest
from conftest import BIN


def ae(*args):
    return subprocess.run([os.path.join(BIN, "ae-hubert"), *args], capture_output=True, text=True)


@pytest.mark.slow
def test_bad_manifest_is_one_clear_line(tmp_path):
    (tmp_path / "train.tsv").write_text("/root\nwav/a.wav 100\n")
    r = ae("dump", "mfcc", "--tsv-dir", str(tmp_path), "--split", "train", "--out-dir", str(tmp_path / "f"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{tmp_path}/train.tsv:2" in lines[0]
    assert not (tmp_path / "f" / "train_0_1.npy").exists()


def test_cli_pipeline_on_corpus(corpus, tmp_path):
    f, lab = str(tmp_path / "feat"), str(tmp_path / "lab")
    assert ae("dump", "mfcc", "--tsv-dir", corpus, "--split", "valid", "--out-dir", f).returncode == 0
    r = ae("kmeans", "--feat-dir", f, "--split", "valid", "--nshard", "1", "--k", "5", "--out", str(tmp_path / "km"),
           "--percent", "0.5", "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert ae("label", "--feat-dir", f, "--split", "valid", "--nshard", "1", "--km", str(tmp_path / "km"),
              "--out-dir", lab).returncode == 0
    r = ae("quality", "--km", f"{lab}/valid.km", "--phn", f"{corpus}/valid.phn", "--km-rate", "100",
           "--json", str(tmp_path / "q.json"))
    assert r.returncode == 0 and "PNMI" in r.stdout
    assert os.path.isfile(tmp_path / "q.json")
