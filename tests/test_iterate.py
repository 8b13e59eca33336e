"""The iteration driver end to end through the stock fairseq-hydra-train, with kills and resumes."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import BIN

SCHEDULE = """
name: tiny
train_config: pretrain/toy_cpu
overrides: [dataset.validate_interval_updates=4, checkpoint.save_interval_updates={save}, common.log_interval=2]
iterations:
  - targets: [{{source: mfcc, k: 12}}]
    max_update: {u1}
  - targets: [{{source: layer, layer: {layer2}, k: 12}}]
    init: {init2}
    max_update: 6
"""


def schedule(tmp_path, u1=16, init2="scratch", layer2="2", save=3):
    p = tmp_path / "tiny.yaml"
    p.write_text(SCHEDULE.format(u1=u1, init2=init2, layer2=layer2, save=save))
    return str(p)


def driver(sched, work, data, env=None, wait=True, args=()):
    cmd = [os.path.join(BIN, "ae-hubert"), "iterate", "--schedule", sched, "--work-dir", work, "--data", data, *args]
    e = dict(os.environ, **(env or {}))
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=e)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=e, start_new_session=True)


def labels(work, it):
    return {s: open(os.path.join(work, it, "labels", f"{s}.km")).read() for s in ("train", "valid")}


@pytest.fixture(scope="module")
def clean_run(corpus, tmp_path_factory):
    """An uninterrupted run whose first iteration trains 16 updates (4 an epoch, checkpoints every 3)."""
    tmp = tmp_path_factory.mktemp("clean")
    work = str(tmp / "work")
    r = driver(schedule(tmp), work, corpus)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return work, r.stdout


def test_two_iterations_through_stock_entry_point(clean_run, corpus):
    work, out = clean_run
    recs = json.load(open(os.path.join(work, "records.json")))
    assert [r["iteration"] for r in recs] == ["iter1", "iter2"]
    assert recs[0]["label_rate"] == 100 and recs[1]["label_rate"] == 50
    assert recs[0]["updates"] == 16 and recs[1]["updates"] == 6
    for r in recs:
        q = r["targets"][0]["quality"]
        assert 0 < q["train"]["pnmi"] < 1 and 0 < q["valid"]["phone_purity"] <= 1
        assert r["valid"]["loss"] > 0 and 0 <= r["valid"]["correct_m_0"] <= 1
        assert os.path.isfile(r["checkpoint"])
    assert recs[1]["targets"][0]["layer"] == 2
    log = open(os.path.join(work, "iter1", "train.log")).read()
    assert "fairseq-hydra-train" in log and "common.user_dir=" in log
    assert "iter1" in out and "total" in out
    assert f"tensorboard --logdir {work}" in out and os.listdir(os.path.join(work, "iter1", "tblog"))
    html = open(os.path.join(work, "report.html")).read()  # iterate writes the run's page and prints its path
    assert f"report: {work}/report.html" in out
    for text in ("Schedule tiny", "<td class=\"l\">iter2</td>", "layer 2 K=12", "Label quality", "Run times",
                 "iter1.km.kmeans"):
        assert text in html, text
    # a rerun does nothing more
    r = driver(os.path.join(os.path.dirname(work), "tiny.yaml"), work, corpus)
    assert r.returncode == 0 and "[run ]" not in r.stdout


def test_lost_marker_redoes_the_step_with_the_same_bytes(clean_run, corpus, tmp_path):
    """A kill between a step's outputs and its marker: the rerun redoes that step (and only it)."""
    import shutil

    work = str(tmp_path / "work")
    shutil.copytree(clean_run[0], work)
    for name in ("iter2.km.labels.valid", "iter2.km.quality.valid", "iter2.train"):
        os.remove(os.path.join(work, ".stages", f"{name}.json"))
    os.remove(os.path.join(work, "iter2", "labels", "valid.km"))
    (tmp_path / "work" / "iter2" / "labels" / ".valid.partial-x-1.km").write_text("left by a killed writer\n")
    r = driver(os.path.join(os.path.dirname(clean_run[0]), "tiny.yaml"), work, corpus)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[skip] iter1.train" in r.stdout and "[run ] iter2.km.labels.valid" in r.stdout
    assert "[skip] iter2.km.labels.train" in r.stdout
    assert "checkpoint_last.pt is at 6 >= max_update 6" in open(os.path.join(work, "iter2", "train.log")).read()
    assert labels(work, "iter1") == labels(clean_run[0], "iter1")
    assert labels(work, "iter2") == labels(clean_run[0], "iter2")
    # the same work dir with other settings: refused, not silently reused
    changed = tmp_path / "changed.yaml"
    changed.write_text(open(os.path.join(os.path.dirname(clean_run[0]), "tiny.yaml")).read().replace("k: 12", "k: 13"))
    r = driver(str(changed), work, corpus)
    assert r.returncode == 2 and "done with other settings" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def weights(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    diff = {k: float((wa[k].float() - wb[k].float()).abs().max()) for k in wa if not wa[k].equal(wb[k])}
    assert not diff, f"{len(diff)} tensors differ, e.g. {sorted(diff.items(), key=lambda kv: -kv[1])[:3]}"


def wait_for(path, p, timeout=240):
    deadline = time.time() + timeout
    while not os.path.exists(path) and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert os.path.exists(path), f"{path} never appeared"


def test_kill_during_training_resumes_bit_identically(clean_run, corpus, tmp_path):
    long_run = clean_run[0]
    work = str(tmp_path / "work")
    sched = schedule(tmp_path)
    p = driver(sched, work, corpus, wait=False)
    wait_for(os.path.join(work, "iter1", "checkpoints", "checkpoint_2_6.pt"), p)  # mid-epoch 2
    os.killpg(p.pid, signal.SIGKILL)  # the driver and everything in its process group
    p.wait()
    assert not os.path.exists(os.path.join(work, ".stages", "iter1.train.json"))
    r = driver(sched, work, corpus)
    assert r.returncode == 0, r.stderr[-2000:]
    log = open(os.path.join(work, "iter1", "train.log")).read()
    resumed = [line for line in log.splitlines() if "Loaded checkpoint" in line and "checkpoint_last.pt" in line]
    assert resumed and "@ 0 updates" not in resumed[-1]
    recs = json.load(open(os.path.join(work, "records.json")))
    assert recs[0]["updates"] == 16
    # the training time counts the killed run's part too (the stage's own seconds are the resume's alone)
    from ae_hubert.common.checkpoint import checkpoint_training_seconds

    before_kill = checkpoint_training_seconds(os.path.join(work, "iter1", "checkpoints", "checkpoint_2_6.pt"))
    assert 0 < before_kill < recs[0]["train_seconds"]
    assert recs[0]["train_seconds"] == round(checkpoint_training_seconds(
        os.path.join(work, "iter1", "checkpoints", "checkpoint_last.pt")), 2)
    for it in ("iter1", "iter2"):
        assert_same_weights(os.path.join(work, it, "checkpoints", "checkpoint_last.pt"),
                            os.path.join(long_run, it, "checkpoints", "checkpoint_last.pt"))
    assert labels(work, "iter2") == labels(long_run, "iter2")


ITERATION_2 = """
name: {name}
train_config: pretrain/toy_cpu
overrides: [dataset.validate_interval_updates=3, common.log_interval=1]
iterations:
  - name: iter2
    targets: [{{source: layer, layer: {layer}, k: 12}}]
    init: continue
    max_update: 3
{extra}"""


def second_iteration(clean_run, tmp_path, name, layer, extra=""):
    """A schedule whose one iteration continues from the clean run's iteration-1 model (--start-from)."""
    p = tmp_path / f"{name}.yaml"
    p.write_text(ITERATION_2.format(name=name, layer=layer, extra=extra))
    return str(p), ["--start-from", os.path.join(clean_run[0], "iter1", "checkpoints", "checkpoint_last.pt")]


def test_continue_init_adaptive_layer_and_dry_run(clean_run, corpus, tmp_path):
    work = str(tmp_path / "work")
    sched, start = second_iteration(clean_run, tmp_path, "adaptive", "auto")
    out = subprocess.run([os.path.join(BIN, "ae-hubert"), "iterate", "--schedule", sched, "--work-dir", work,
                          "--data", corpus, "--dry-run", *start], capture_output=True, text=True)
    assert out.returncode == 0 and "checkpoint.finetune_from_model=" in out.stdout
    assert not os.path.exists(work)
    r = driver(sched, work, corpus, args=start)
    assert r.returncode == 0, r.stderr[-2000:]
    init = json.load(open(os.path.join(work, ".stages", "iter2.init.json")))["result"]
    assert init["kept_tensors"] > 50 and all(k.startswith(("final_proj", "label_embs")) for k in init["fresh_tensors"])
    log = open(os.path.join(work, "iter2", "train.log")).read()
    assert "loading pretrained model from" in log
    rec = json.load(open(os.path.join(work, "iter2", "record.json")))
    choice = rec["targets"][0]["layer_choice"]
    assert choice["criterion"] == "pnmi" and set(choice["scores"]) == {str(i) for i in range(1, 7)}
    assert rec["targets"][0]["layer"] == choice["chosen"]


def test_truncated_checkpoint_last_is_repaired(tmp_path):
    import torch

    from ae_hubert.common.checkpoint import repair_last_checkpoint

    good = tmp_path / "checkpoint_1_4.pt"
    torch.save({"model": {"w": torch.ones(100)}}, good)
    data = good.read_bytes()
    (tmp_path / "checkpoint_last.pt").write_bytes(data[: len(data) // 2])  # a kill mid-copy
    assert "replaced" in repair_last_checkpoint(str(tmp_path))
    assert (tmp_path / "checkpoint_last.pt").read_bytes() == data
    assert repair_last_checkpoint(str(tmp_path)) is None
    good.unlink()
    (tmp_path / "checkpoint_last.pt").write_bytes(data[:100])
    assert "removed" in repair_last_checkpoint(str(tmp_path))
    assert not (tmp_path / "checkpoint_last.pt").exists()


def test_driver_runs_per_layer_targets_and_resets_at_iteration_start(clean_run, corpus, tmp_path):
    """Iteration 2 continues from iteration 1 with its top 2 layers re-initialised and trains the
    per-layer-heads model: MFCC clusters predicted at layer 3, layer-2 clusters at the top."""
    sched, start = second_iteration(clean_run, tmp_path, "multi", 2, extra="""    reset_top_layers: 2
    overrides: [model._name=hubert_layer_targets, criterion._name=hubert_layer_targets, "+model.layer_targets='6:0:1.0,3:0:0.5'"]
""")
    work = str(tmp_path / "work")
    r = driver(sched, work, corpus, args=start)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    log = open(os.path.join(work, "iter2", "train.log")).read()
    assert "loss_m_L3s0" in log and "loss_m_L6s0" in log
    init = json.load(open(os.path.join(work, ".stages", "iter2.init.json")))["result"]
    assert any(k.startswith("encoder.layers.5.") for k in init["fresh_tensors"])
    assert not any(k.startswith("encoder.layers.3.") for k in init["fresh_tensors"])


def test_model_overrides_for_the_continue_init():
    from ae_hubert.models.continue_init import model_overrides

    got = model_overrides(["model._name=hubert_layer_targets", "+model.layer_targets='6:1:1.0,3:0:0.5'", "task.labels=[km]",
                           "model.encoder_layers=4", "+model.layer_targets=6:0:1", "model.a.b=1"])
    assert got == {"_name": "hubert_layer_targets", "layer_targets": "6:0:1", "encoder_layers": 4}


def trainers_of(work):
    """pids of fairseq-hydra-train processes writing under ``work``."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        if "fairseq-hydra-train" in cmd and work in cmd:
            out.append(int(pid))
    return out


def wait_until(cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_second_driver_refused_and_trainer_dies_with_driver(corpus, tmp_path):
    work = str(tmp_path / "work")
    sched = schedule(tmp_path, u1=400)
    p = driver(sched, work, corpus, wait=False)
    assert wait_until(lambda: trainers_of(work), timeout=240), "training never started"
    r = driver(sched, work, corpus)  # a second driver on the same work dir
    assert r.returncode == 2 and f"pid {p.pid}" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    p.send_signal(signal.SIGTERM)  # forwarded to the trainer, which is waited for
    assert p.wait(timeout=60) != 0
    assert not trainers_of(work)
    assert not os.path.exists(os.path.join(work, ".stages", "iter1.train.json"))
    # the dead driver's lock is taken over; kill -9 of the new driver alone kills its trainer (PDEATHSIG)
    q = driver(sched, work, corpus, wait=False)
    assert wait_until(lambda: trainers_of(work), timeout=240), "the lock was not taken over"
    os.kill(q.pid, signal.SIGKILL)
    q.wait()
    assert wait_until(lambda: not trainers_of(work), timeout=30), "the trainer outlived its driver"


def test_dry_run_as_a_shell_script_reproduces_the_run(clean_run, corpus, tmp_path):
    """The printed steps, run by bash, give the driver's labels, k-means and weights exactly."""
    import joblib
    import numpy as np

    sched = os.path.join(os.path.dirname(clean_run[0]), "tiny.yaml")
    work = str(tmp_path / "work")
    out = subprocess.run([os.path.join(BIN, "ae-hubert"), "iterate", "--schedule", sched, "--work-dir", work,
                          "--data", corpus, "--dry-run"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    script = tmp_path / "run.sh"
    script.write_text("set -euo pipefail\n" + out.stdout)
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ["PATH"])
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    for it in ("iter1", "iter2"):
        assert labels(work, it) == labels(clean_run[0], it)
        a = joblib.load(os.path.join(work, it, "km.kmeans.bin")).cluster_centers_
        b = joblib.load(os.path.join(clean_run[0], it, "km.kmeans.bin")).cluster_centers_
        assert np.array_equal(a, b)
        assert_same_weights(os.path.join(work, it, "checkpoints", "checkpoint_last.pt"),
                            os.path.join(clean_run[0], it, "checkpoints", "checkpoint_last.pt"))


def test_a_rerun_under_other_settings_is_refused_until_restarted(clean_run, corpus, tmp_path):
    """A half-done training step rerun with another learning rate: refused (not continued from the old
    checkpoint), naming the difference; ``--restart`` redoes it from scratch under the new settings."""
    import shutil

    work = str(tmp_path / "work")
    shutil.copytree(clean_run[0], work)
    sched = os.path.join(os.path.dirname(clean_run[0]), "tiny.yaml")
    os.remove(os.path.join(work, ".stages", "iter2.train.json"))  # as if killed while training iteration 2
    ckpt = os.path.join(work, "iter2", "checkpoints", "checkpoint_last.pt")
    before = open(ckpt, "rb").read()
    r = driver(sched, work, corpus, args=("optimization.lr=[0.0007]",))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    # overrides are for training: iteration 1's training, done, is the first step they change
    assert "iter1.train.json: this step was done with other settings" in r.stderr
    assert "now also 'optimization.lr=[0.0007]'" in r.stderr and "--restart iter1.train" in r.stderr
    assert open(ckpt, "rb").read() == before
    # the same change for iteration 2 only, through a schedule entry: its first step was done, so refused
    # there; restarting iteration 2 trains it afresh under the new settings
    changed = tmp_path / "changed.yaml"
    changed.write_text(open(sched).read().replace("    max_update: 6", "    max_update: 6\n    overrides: ['optimization.lr=[0.0007]']"))
    r = driver(str(changed), work, corpus)
    assert r.returncode == 2 and "iter2.train" in r.stderr and "started with other settings" in r.stderr, r.stderr
    assert "now also 'optimization.lr=[0.0007]'" in r.stderr and open(ckpt, "rb").read() == before
    r = driver(str(changed), work, corpus, args=("--restart", "iter2.train"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[redo] iter2.train" in r.stdout and "[run ] iter2.train" in r.stdout and "[skip] iter1.train" in r.stdout
    log = open(os.path.join(work, "iter2", "train.log")).read().split("ae_hubert: fairseq-hydra-train")[-1]
    assert "Loaded checkpoint" not in log or "checkpoint_last.pt" not in log  # a fresh run, not a resume
    recs = json.load(open(os.path.join(work, "records.json")))
    assert recs[1]["updates"] == 6 and "optimization.lr=[0.0007]" in recs[1]["overrides"]
    # a narrower schedule (iteration 1 only) keeps iteration 2's record; a call that redoes nothing
    # leaves a finished iteration's record byte for byte (no per-call field in it)
    one = tmp_path / "one.yaml"
    one.write_text(open(str(changed)).read().split("  - targets: [{source: layer")[0])
    rec1 = os.path.join(work, "iter1", "record.json")
    before = open(rec1, "rb").read()
    r = driver(str(one), work, corpus)
    assert r.returncode == 0, r.stderr[-2000:]
    assert open(rec1, "rb").read() == before
    assert [x["iteration"] for x in json.load(open(os.path.join(work, "records.json")))] == ["iter1", "iter2"]
    # --restart of a step the schedule does not have: one line
    r = driver(str(one), work, corpus, args=("--restart", "iter9"))
    assert r.returncode == 2 and "--restart iter9: no such step" in r.stderr


def test_changed_data_is_refused(clean_run, corpus, tmp_path):
    import shutil

    work = str(tmp_path / "work")
    shutil.copytree(clean_run[0], work)
    data = tmp_path / "data"
    data.mkdir()
    for f in os.listdir(corpus):
        (os.symlink if f == "wav" else shutil.copy)(os.path.join(corpus, f), str(data / f))
    for ext in ("tsv", "phn", "wrd", "ltr", "spk", "wrdspan"):  # one utterance fewer, consistently
        if (data / f"valid.{ext}").exists():
            lines = (data / f"valid.{ext}").read_text().splitlines()
            (data / f"valid.{ext}").write_text("\n".join(lines[:-1]) + "\n")
    r = driver(os.path.join(os.path.dirname(clean_run[0]), "tiny.yaml"), work, str(data))
    assert r.returncode == 2 and f"{data}/valid.tsv: differs from the valid.tsv this work dir was started on" in r.stderr, r.stderr


def test_phone_targets_are_a_label_set_like_any_other(corpus, tmp_path):
    """The oracle control: the corpus's frame phones as an iteration's targets (K = dict.phn.txt's
    size, no features or k-means), through the driver and stock fairseq-hydra-train."""
    sched = tmp_path / "phones.yaml"
    sched.write_text("name: phones\ntrain_config: pretrain/toy_cpu\n"
                     "overrides: [dataset.validate_interval_updates=2, common.log_interval=1]\n"
                     "iterations:\n  - targets: [{source: phones}]\n    max_update: 2\n")
    work = str(tmp_path / "work")
    r = driver(str(sched), work, corpus)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.load(open(os.path.join(work, "records.json")))[0]
    phones = [ln.split()[0] for ln in open(os.path.join(corpus, "dict.phn.txt")) if ln.strip()]
    t = rec["targets"][0]
    assert t["source"] == "phones" and t["k"] == len(phones) and t["kmeans"] is None and rec["label_rate"] == 50
    assert t["quality"]["valid"]["pnmi"] == pytest.approx(1.0) and rec["updates"] == 2
    first = open(os.path.join(corpus, "valid.phn")).readline().split()
    assert open(os.path.join(work, "iter1", "labels", "valid.km")).readline().split() == [str(phones.index(p))
                                                                                          for p in first]
    assert not os.path.exists(os.path.join(work, "iter1", "feat_km"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(sched.read_text().replace("{source: phones}", "{source: phones, k: 7}"))
    r = driver(str(bad), str(tmp_path / "w2"), corpus)
    assert r.returncode == 2 and "k: 7, but dict.phn.txt has" in r.stderr
    bad.write_text(sched.read_text().replace("{source: phones}", "{source: mfcc}"))
    r = driver(str(bad), str(tmp_path / "w2"), corpus)
    assert r.returncode == 2 and "targets[0].k: required for source 'mfcc'" in r.stderr


def test_a_refused_restart_removes_nothing_and_a_moved_dir_resumes(clean_run, corpus, tmp_path):
    """--restart under settings an earlier step refuses: nothing forgotten or deleted; a work dir
    copied to a path that needs shell quotes resumes (the same words, quoted); a --start-from inside
    the run's own checkpoint dirs is refused before any work."""
    import shutil

    sched = os.path.join(os.path.dirname(clean_run[0]), "tiny.yaml")
    work = str(tmp_path / "a b")
    shutil.copytree(clean_run[0], work)
    r = driver(sched, work, corpus)
    assert r.returncode == 0 and "[run ]" not in r.stdout, r.stderr[-2000:]
    before = sorted(os.listdir(os.path.join(work, ".stages"))), sorted(os.listdir(os.path.join(work, "iter2",
                                                                                                   "checkpoints")))
    r = driver(sched, work, corpus, args=("--restart", "iter2", "optimization.lr=[0.0005]"))
    assert r.returncode == 2 and "iter1.train.json: this step was done with other settings" in r.stderr
    after = sorted(os.listdir(os.path.join(work, ".stages"))), sorted(os.listdir(os.path.join(work, "iter2",
                                                                                                  "checkpoints")))
    assert after == before and "[redo]" not in r.stdout
    r = driver(sched, work, corpus, args=("--restart", ""))
    assert r.returncode == 2 and "--restart : no such step" in r.stderr
    inside = os.path.join(work, "iter1", "checkpoints", "checkpoint_last.pt")
    r = driver(sched, str(tmp_path / "w2"), corpus, args=("--start-from", inside))
    assert r.returncode == 0 or "lies in" not in r.stderr  # another work dir: its own checkpoints are elsewhere
    r = driver(sched, work, corpus, args=("--start-from", inside))
    assert r.returncode == 2 and "--start-from lies in the work dir" in r.stderr and "iter1/checkpoints" in r.stderr
    elsewhere_inside = os.path.join(work, "iter1", "copied.pt")  # anywhere in the work dir: the run writes there
    shutil.copy(inside, elsewhere_inside)
    r = driver(sched, work, corpus, args=("--start-from", elsewhere_inside))
    assert r.returncode == 2 and "--start-from lies in the work dir" in r.stderr


def test_edited_labels_and_other_drivers_in_the_work_dir_are_refused(clean_run, corpus, tmp_path):
    """Labels edited in place after their step (the same length): a rerun refuses before anything
    trains on them. Another tool's driver is not started on this work dir, nor any driver inside it."""
    import shutil

    sched = os.path.join(os.path.dirname(clean_run[0]), "tiny.yaml")
    work = str(tmp_path / "work")
    shutil.copytree(clean_run[0], work)
    km = os.path.join(work, "iter2", "labels", "valid.km")
    text = open(km).read()
    swapped = text.translate(str.maketrans("12", "21"))
    assert swapped != text and len(swapped) == len(text)
    with open(km, "w") as f:
        f.write(swapped)
    r = driver(sched, work, corpus)
    assert r.returncode == 2 and f"{km}: changed since step iter2.km.labels.valid made it" in r.stderr, r.stderr
    assert "--restart iter2.km.labels.valid to redo it" in r.stderr
    with open(km, "w") as f:
        f.write(text)
    r = driver(sched, work, corpus)
    assert r.returncode == 0 and "[run ]" not in r.stdout, r.stderr[-2000:]
    inside = os.path.join(work, "iter1", "sub")
    r = driver(sched, inside, corpus)
    assert r.returncode == 2 and f"{inside}: inside the work dir {work} of another run" in r.stderr
    assert not os.path.exists(inside)
    ckpt = str(tmp_path / "model.pt")
    shutil.copy(os.path.join(work, "iter2", "checkpoints", "checkpoint_last.pt"), ckpt)
    r = subprocess.run([os.path.join(BIN, "ae-hubert"), "reset-sweep", "--ckpt", ckpt, "--data", corpus, "--ks", "0",
                        "--work-dir", work], capture_output=True, text=True)
    assert r.returncode == 2 and "a work dir of `ae-hubert iterate`, not of `ae-hubert reset-sweep`" in r.stderr, \
        r.stderr[-2000:]


def test_the_trainer_writes_through_no_hard_link(tmp_path, monkeypatch):
    """A work dir copied with ``cp -al`` and resumed: fairseq rewrites its checkpoint copies and
    logs in place, which must not reach the original's files."""
    from ae_hubert.runner import trainer

    orig, copy = tmp_path / "orig", tmp_path / "copy"
    (orig / "checkpoints").mkdir(parents=True)
    (orig / ".hydra").mkdir()
    for f in ("checkpoints/checkpoint_best.pt", ".hydra/config.yaml", "hydra_train.log", "train.log"):
        (orig / f).write_text("original\n")
    subprocess.run(["cp", "-al", str(orig), str(copy)], check=True)
    fake = tmp_path / "fake-hydra-train"  # writes as fairseq does: copyfile over a checkpoint, logs appended
    fake.write_text("#!/bin/sh\necho new > checkpoints/checkpoint_best.pt\necho more >> hydra_train.log\n"
                    "echo cfg > .hydra/config.yaml\n")
    fake.chmod(0o755)
    monkeypatch.setattr(trainer, "hydra_train_executable", lambda: str(fake))
    trainer.run_training([], str(copy), str(copy / "checkpoints"))
    assert (copy / "checkpoints" / "checkpoint_best.pt").read_text() == "new\n"
    assert (copy / "hydra_train.log").read_text() == "original\nmore\n"
    for f in ("checkpoints/checkpoint_best.pt", ".hydra/config.yaml", "hydra_train.log", "train.log"):
        assert (orig / f).read_text() == "original\n", f


def test_a_restart_after_dropped_features_begins_at_their_dump(corpus, tmp_path):
    """keep_features: false removes the features once labelled: a later --restart of the k-means
    must redo the dump that made them, not find its marker done and the features gone."""
    from ae_hubert.pipeline.iterate import _with_dropped_features
    from ae_hubert.pipeline.plan import plan
    from ae_hubert.pipeline.schedule import load_schedule

    sched = tmp_path / "kf.yaml"
    sched.write_text("name: kf\ntrain_config: pretrain/toy_cpu\nkeep_features: false\n"
                     "iterations:\n  - targets: [{source: mfcc, k: 12}]\n    max_update: 2\n")
    steps = plan(load_schedule(str(sched), corpus), str(tmp_path / "w"))
    names = [st.name for st in steps]
    kmeans = next(i for i, n in enumerate(names) if ".kmeans" in n)
    first_dump = next(i for i, n in enumerate(names) if ".dump" in n)
    assert _with_dropped_features(steps, kmeans) == first_dump  # the features are not there
    feat = next(st for st in steps if st.tool == "rm").args[-1]
    os.makedirs(feat)
    assert _with_dropped_features(steps, kmeans) == kmeans  # kept: the restart begins where asked
