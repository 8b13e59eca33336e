"""The device check (benchmarks/gpu_check.py) and its bootstrap (scripts/gpu_bundle.py, gpu_setup.py),
run here on the CPU: the script that meets a GPU is the one these tests ran."""
import json
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import gpu_check  # noqa: E402


def _ctx(tmp_path):
    return gpu_check.Context(gpu_check.PROFILES["tiny"], str(tmp_path), str(tmp_path / "corpus"))


def _sleeps(ctx, seconds):
    subprocess.run(["sleep", str(seconds)])  # a grandchild: killed with the part's process group
    return {"slept": seconds}


def _fails(ctx):
    raise ValueError("a planted failure")


def test_a_part_is_boxed_and_its_failure_recorded(tmp_path):
    spawn = False  # forked: the parts here are test functions; --spawn is run by the slow test below
    ctx = _ctx(tmp_path)
    t = time.perf_counter()
    r = gpu_check.run_part(ctx, "slow", _sleeps, (30,), box=1.5, spawn=spawn)
    assert r["status"] == "timed out" and time.perf_counter() - t < 10
    assert subprocess.run(["pgrep", "-f", "sleep 30"], capture_output=True).returncode != 0  # nothing left running
    r = gpu_check.run_part(ctx, "bad", _fails, (), box=30, spawn=spawn)
    assert r["status"] == "failed" and "a planted failure" in r["error"] and "ValueError" in r["log_tail"]
    r = gpu_check.run_part(ctx, "fine", _sleeps, (0,), box=30, spawn=spawn)
    assert r["status"] == "ok" and r["result"] == {"slept": 0}


def test_the_table_shows_failures_and_goes_between_its_markers(tmp_path):
    record = {"profile": "gpu", "date": "2026-12-06 12:00 UTC", "total_seconds": 12.0,
              "parts": {"env": {"status": "ok", "result": {"device": "NVIDIA H100", "gpu_memory_gib": 79.2}},
                        "kmeans": {"status": "timed out", "error": "stopped after its 75 s box"},
                        "labels": {"status": "failed", "error": "RuntimeError: CUDA | error\nline two"}}}
    text = gpu_check.table(record)
    assert "NVIDIA H100" in text and "| kmeans | timed out |" in text
    assert "CUDA / error line two" in text  # one table row, whatever the error held
    doc = tmp_path / "doc.md"
    doc.write_text(f"before\n{gpu_check.TABLE_BEGIN}\nold\n{gpu_check.TABLE_END}\nafter\n")
    gpu_check.write_table_into(record, str(doc))
    new = doc.read_text()
    assert new.startswith("before\n") and new.endswith("after\n") and "old" not in new and "NVIDIA H100" in new
    doc.write_text("no markers\n")
    with pytest.raises(gpu_check.CheckError, match="markers"):
        gpu_check.write_table_into(record, str(doc))
    docs = open(os.path.join(REPO, "docs", "gpu.md")).read()
    assert gpu_check.TABLE_BEGIN in docs and gpu_check.TABLE_END in docs


def _check(*args, timeout=60):
    return subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "gpu_check.py"), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_bad_records_and_docs_are_refused_in_one_line(tmp_path):
    junk = tmp_path / "junk.json"
    for text in ("not json", "[1, 2]", '{"profile": "gpu", "parts": {"x": 1}}'):
        junk.write_text(text)
        r = _check("--table", str(junk))
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and str(junk) in r.stderr, r.stderr
    r = _check("--table", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "missing.json" in r.stderr
    cut = tmp_path / "cut.json"  # a part's result without one of its figures
    cut.write_text(json.dumps({"profile": "gpu", "date": "d", "parts": {"prepare": {"status": "ok", "result": {
        "dump_audio_minutes": 1.0}}}}))
    r = _check("--table", str(cut))
    assert r.returncode == 2 and f"{cut}: part prepare: its result has no usable figure (KeyError: 'train_audio_hours')" \
        in r.stderr and len(r.stderr.strip().splitlines()) == 1
    cut.write_text(json.dumps({"profile": "gpu", "date": "d", "parts": {"env": {"status": "ok", "result": None}}}))
    r = _check("--table", str(cut))
    assert r.returncode == 2 and f"{cut}: the record's head has no usable figure" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"profile": "gpu", "date": "d", "parts": {}}))
    doc = tmp_path / "doc.md"
    doc.write_text(f"{gpu_check.TABLE_END}\n{gpu_check.TABLE_BEGIN}\n")  # the markers the wrong way round
    r = _check("--table", str(good), "--into", str(doc))
    assert r.returncode == 2 and "markers" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert doc.read_text() == f"{gpu_check.TABLE_END}\n{gpu_check.TABLE_BEGIN}\n"
    doc.write_text(f"head\n{gpu_check.TABLE_BEGIN}\nold\n{gpu_check.TABLE_END}\ntail\n")
    utf16 = tmp_path / "utf16.md"
    utf16.write_bytes(f"{gpu_check.TABLE_BEGIN}\n{gpu_check.TABLE_END}\n".encode("utf-16"))
    r = _check("--table", str(good), "--into", str(utf16))
    assert r.returncode == 2 and f"{utf16}: not a readable UTF-8 document" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    link = tmp_path / "link.md"
    link.symlink_to(doc)
    r = _check("--table", str(good), "--into", str(link))  # a linked doc is edited through its link
    assert r.returncode == 0 and link.is_symlink() and "old" not in doc.read_text()
    assert doc.read_text().startswith("head\n") and doc.read_text().endswith("tail\n")


def test_the_gpu_profile_refuses_a_machine_without_one(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "gpu_check.py"), "--work", str(tmp_path),
                        "--out", str(tmp_path / "gpu.json")], capture_output=True, text=True)
    assert r.returncode == 2 and "no GPU here" in r.stderr and not (tmp_path / "gpu.json").exists()


@pytest.mark.slow
def test_the_device_check_runs_every_part_on_the_cpu(corpus, tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "gpu_check.py"), "--profile", "tiny",
                        "--work", str(tmp_path / "w"), "--corpus", corpus, "--out", str(out)],
                       capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    record = json.loads(out.read_text())
    names = [n for n, _, _ in gpu_check.parts(gpu_check.PROFILES["tiny"])]
    assert list(record["parts"]) == names
    bad = {n: p.get("error") for n, p in record["parts"].items() if p["status"] != "ok"}
    assert not bad, bad
    res = {n: p["result"] for n, p in record["parts"].items()}
    assert res["env"]["device"] == "cpu" and res["env"]["fairseq"]
    dump = res["dump"]["variants"]
    assert set(dump) >= {"fp32 one at a time", "fp32 batched", "bf16 batched", "fp16 batched",
                         "stock dump_hubert_feature.py (fp32)"}
    assert all(v["x_real_time"] > 0 for v in dump.values())
    assert res["dump"]["utterances"] == 2 * res["dump"]["distinct_utterances"]
    assert dump["fp32 batched"]["max_abs_diff"] < 1e-3 and dump["stock dump_hubert_feature.py (fp32)"]["mean_cosine"] > 0.9999
    assert 0.99 < dump["fp16 batched"]["mean_cosine"] <= 1.0 + 1e-6
    km = res["kmeans"]
    assert km["frames"] == gpu_check.PROFILES["tiny"].kmeans_frames
    assert 0.9 < km["same_subset"]["inertia_ratio_ours_to_sklearn"] < 1.1 and km["sklearn_cpu_extrapolated_seconds"] > 0
    assert res["labels"]["fused_equals_dump_labels"] is True
    for name in names:
        if name.startswith(("pretrain", "finetune")):
            assert res[name]["updates_per_second"] > 0 and res[name]["audio_seconds_per_update"] > 0
    assert res["pretrain/plugin task + probes/fp32"]["probe_seconds"] is not None
    assert res["pretrain/stock/fp32"]["probe_seconds"] is None and res["pretrain/stock/bf16"]["updates_per_second"] > 0
    assert res["pretrain/plugin + extra head/fp32"]["parameters"] > res["pretrain/stock/fp32"]["parameters"]
    assert res["finetune/k3/fp32"]["decode"]["utterances"] > 0
    assert res["probe"]["layers"] == 7 and "phone_acc" in res["probe"]["metrics"]
    assert res["driver"]["updates"] == gpu_check.PROFILES["tiny"].driver_updates
    assert set(res["driver"]["wall_seconds"]) == {"iterate", "probe", "reset_sweep_k0_with_decode"}
    table = gpu_check.table(record)
    assert all(f"| {n} |" in table for n in names if n != "env")
    # a rerun of one part within the same loan keeps the others, also when --out was lost (a killed call)
    out.unlink()
    r = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "gpu_check.py"), "--profile", "tiny",
                        "--work", str(tmp_path / "w"), "--corpus", corpus, "--out", str(out), "--only", "labels",
                        "--spawn"], capture_output=True, text=True, timeout=200)
    assert r.returncode == 0, r.stderr[-2000:]
    again = json.loads(out.read_text())
    assert list(again["parts"]) == names and again["parts"]["labels"]["status"] == "ok"
    assert again["parts"]["driver"] == record["parts"]["driver"]
    for bad in ("nosuch", "", "labels,"):  # one line, exit 2, nothing run
        r = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "gpu_check.py"), "--profile", "tiny",
                            "--work", str(tmp_path / "w"), "--corpus", corpus, "--out", str(out), "--only", bad],
                           capture_output=True, text=True, timeout=200)
        assert r.returncode == 2 and r.stderr.startswith("gpu_check: --only") and "[gpu_check]" not in r.stdout, bad


@pytest.mark.slow
def test_the_bundle_builds_fits_and_sets_up_a_python_from_it(tmp_path):
    """Built for this machine's Python so that it can be set up here too: the archive, the fairseq
    helpers compiled from source, the imports from the bundle and both synthesisers speaking."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "gpu_bundle.py"), "--out", str(tmp_path / "b"),
                        "--python", here], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert info["size_mb"] < 52 and info["python"] == here
    assert {"hydra-core", "soundfile", "fairseq-fixed", "wordfreq"} <= set(info["packages"])
    assert info["pyx"] == ["fairseq/data/data_utils_fast.pyx", "fairseq/data/token_block_utils_fast.pyx"]
    dest = tmp_path / "dest"
    r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "gpu_setup.py"),
                        str(tmp_path / "b" / "bundle.tar.gz"), "--dest", str(dest)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((dest / "setup.json").read_text())
    assert report["fairseq_from"].startswith(str(dest / "site"))  # the bundle's, not this .venv's
    assert report["flite"]["samples"] > 0 and report["espeak"]["samples"] > 0
    assert set(report["seconds"]) == {"unpack", "compile", "check"}
    # a bundle for another Python is refused in one line
    other = "3.99"
    info["python"] = other
    import tarfile

    bad = tmp_path / "other.tar.gz"
    (tmp_path / "bundle.json").write_text(json.dumps(info))
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(tmp_path / "bundle.json", arcname="bundle.json")
    r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "gpu_setup.py"), str(bad),
                        "--dest", str(tmp_path / "d2")], capture_output=True, text=True)
    assert r.returncode == 2 and "built for Python 3.99" in r.stderr
