import json
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
    (["a.wav\t10", "b.wav\t20"], "line 1 must be the audio root directory", 1),
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
    with pytest.raises(AeHubertError, match="a directory, where an audio file belongs"):
        read_audio(str(tmp_path))
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


def test_a_run_knows_its_data_by_content(tmp_path):
    """``data_inputs``: a copied corpus is the same data (the resume goes on); a recording edited in
    place with the same length, or a transcript changed, is other data (the resume is refused)."""
    import shutil

    from ae_hubert.common.manifest import data_inputs

    src = tmp_path / "a"
    (src / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(src / "wav" / f"u{i}.wav", (rng.standard_normal(8000) * 3000).astype(np.int16), 16000,
                 subtype="PCM_16")
    (src / "train.tsv").write_text(f"{src}\n" + "".join(f"wav/u{i}.wav\t8000\n" for i in range(3)))
    (src / "train.ltr").write_text("A |\nB |\nC |\n")
    before = {role: digest for role, (_, digest) in data_inputs(str(src), ("train",), ("train.ltr",)).items()}
    assert set(before) == {"train.tsv", "train audio", "train.ltr"}
    copy = tmp_path / "b"
    shutil.copytree(src, copy)
    (copy / "train.tsv").write_text(f"{copy}\n" + "".join(f"wav/u{i}.wav\t8000\n" for i in range(3)))
    moved = {role: digest for role, (_, digest) in data_inputs(str(copy), ("train",), ("train.ltr",)).items()}
    assert moved == before
    x, _ = sf.read(copy / "wav" / "u1.wav", dtype="int16")
    sf.write(copy / "wav" / "u1.wav", x[::-1], 16000, subtype="PCM_16")  # reversed: same length, other audio
    (copy / "train.ltr").write_text("A |\nE |\nC |\n")
    edited = {role: digest for role, (_, digest) in data_inputs(str(copy), ("train",), ("train.ltr",)).items()}
    assert edited["train.tsv"] == before["train.tsv"]
    assert edited["train audio"] != before["train audio"] and edited["train.ltr"] != before["train.ltr"]


def test_label_lines_must_last_as_long_as_their_audio(tmp_path):
    """The plugin's task refuses what fairseq only warns about: labels at another rate than
    task.label_rate, or a shard's lines out of line with the manifest."""
    from ae_hubert.common.labels import validate_label_file

    sizes = [32000, 16000]  # 2 s and 1 s
    good = tmp_path / "good.km"
    good.write_text(" ".join(["1"] * 99) + "\n" + " ".join(["2"] * 49) + "\n")  # 50 Hz: 1.98 s, 0.98 s
    validate_label_file(str(good), 2, {"1", "2"}, sizes, 50)
    with pytest.raises(AeHubertError, match=r"good.km:1: 99 labels last 0.99 s at 100 Hz but the utterance lasts 2.00"):
        validate_label_file(str(good), 2, {"1", "2"}, sizes, 100)
    with pytest.raises(AeHubertError, match=r"good.km:1: .*lasts 1.00 s"):
        validate_label_file(str(good), 2, {"1", "2"}, sizes[::-1], 50)


def test_a_work_dir_in_use_is_neither_driven_nor_written_by_another_process(tmp_path, capsys):
    """One driver per work dir, and no other command writes inside it while it runs; the driver's
    own steps (this process) still may, and a dead holder frees it."""
    import subprocess
    import sys

    from ae_hubert.cli import main
    from ae_hubert.common.lock import WorkDirLock
    from ae_hubert.common.outputs import Files, check_files

    w = tmp_path / "w"
    w.mkdir()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom ae_hubert.common.lock import WorkDirLock\n"
                               "WorkDirLock(sys.argv[1]).__enter__()\nprint('held', flush=True)\ntime.sleep(120)",
                               str(w)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": repo})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(AeHubertError, match="in use by another ae-hubert run"):
            WorkDirLock(str(w)).__enter__()
        with pytest.raises(AeHubertError, match=r"probe/iter1: --out writes inside .*/w, a work dir in use by "
                                                r"another ae-hubert run \(pid \d+"):
            check_files(Files({str(w / "probe" / "iter1"): "--out"}))
        os.symlink(w, tmp_path / "link")  # the same dir through a link
        with pytest.raises(AeHubertError, match="a work dir in use by another ae-hubert run"):
            check_files(Files({str(tmp_path / "link" / "x.json"): "--json"}))
        assert main(["spm", "--data", str(w / "data"), "--vocab-size", "8"]) == 2
        assert "--data writes inside" in capsys.readouterr().err and not (w / "data").exists()
        with pytest.raises(AeHubertError, match=r"/w/sweep: inside .*/w, a work dir in use by another ae-hubert run"):
            WorkDirLock(str(w / "sweep")).__enter__()  # a run of its own inside it
        assert not (w / "sweep").exists()
        check_files(Files({str(w / "report.html"): "--out"}, into_work_dirs=True))  # report's own page
        child = subprocess.run([sys.executable, "-c", "import sys\nfrom ae_hubert.common.outputs import Files, check_files\n"
                                "check_files(Files({sys.argv[1]: '--out'}))", str(w / "probe")],
                               env={**os.environ, "PYTHONPATH": repo,
                                    "AE_HUBERT_HELD_LOCKS": os.path.realpath(w / ".ae_hubert.lock")})
        assert child.returncode == 0  # a process the driver started (it passes its locks down) writes inside
        check_files(Files({str(tmp_path / "elsewhere"): "--out"}))  # beside it: free
    finally:
        holder.kill()
        holder.wait()
    check_files(Files({str(w / "probe" / "iter1"): "--out"}))  # its holder gone, the dir is free again
    with WorkDirLock(str(w)):  # this process's own lock: its steps write inside
        check_files(Files({str(w / "probe" / "iter1"): "--out"}))


def test_a_driver_keeps_to_its_own_kind_of_work_dir(tmp_path):
    """A work dir is resumed by the tool that made it; no driver starts a new work dir inside another
    run's, finished or not, except the run itself (a study's iterations, a demo's sweep), and those
    nested runs of a study or demo each tool may resume on its own."""
    from ae_hubert.common.lock import WorkDirLock, work_dir_kind

    def a_step(d):  # (a start that made no step leaves no record of its kind)
        (d / ".stages" / "step.json").write_text("{}")

    w = tmp_path / "w"
    with WorkDirLock(str(w), "iterate"):
        assert work_dir_kind(str(w)) == "iterate"
        a_step(w)
        with WorkDirLock(str(w / "sweep"), "reset-sweep"):  # the run's own nested driver
            a_step(w / "sweep")
    with pytest.raises(AeHubertError, match=r"/w: a work dir of `ae-hubert iterate`, not of `ae-hubert reset-sweep`"):
        WorkDirLock(str(w), "reset-sweep").__enter__()
    with WorkDirLock(str(w), "iterate"):  # its own kind resumes it
        with WorkDirLock(str(w / "sweep" / "k0" / "deeper"), "iterate"):  # inside a nested finished one: still its run
            pass
    with pytest.raises(AeHubertError, match=r"/w/sweep: a work dir of `ae-hubert reset-sweep`"):
        WorkDirLock(str(w / "sweep"), "iterate").__enter__()
    with pytest.raises(AeHubertError, match=r"/w/sweep: inside the work dir .*/w of another run"):
        WorkDirLock(str(w / "sweep"), "reset-sweep").__enter__()  # an iterate's work dir holds no runs of its own
    for inside in (w / "iter1" / "sub", w / "sweep" / "more"):
        with pytest.raises(AeHubertError, match=r"inside the work dir .*/w(/sweep)? of another run"):
            WorkDirLock(str(inside), "iterate").__enter__()
        assert not inside.exists()
    os.symlink(w / "iter1", tmp_path / "link")  # a link into the run, named as a new work dir
    with pytest.raises(AeHubertError, match=r"/link: inside the work dir .*/w of another run"):
        WorkDirLock(str(tmp_path / "link"), "reset-sweep").__enter__()
    outer = tmp_path / "outer"
    os.makedirs(outer / "iter1")
    os.rename(w / "sweep", outer / "iter1" / "sweep")  # a new work dir holding another run's
    with pytest.raises(AeHubertError, match=r"/outer: holds .*/outer/iter1/sweep, the work dir of another run"):
        WorkDirLock(str(outer), "iterate").__enter__()
    assert not (outer / ".stages").exists()
    os.makedirs(w / "iter1")
    os.rename(outer / "iter1" / "sweep", w / "iter1" / "pasted")
    with pytest.raises(AeHubertError, match=r"/w/iter1/pasted: inside the work dir .*/w of another run"):
        WorkDirLock(str(w / "iter1" / "pasted"), "reset-sweep").__enter__()
    study = tmp_path / "study"
    with WorkDirLock(str(study), "study"):
        with WorkDirLock(str(study / "runs" / "h1" / "s1"), "iterate"):
            a_step(study / "runs" / "h1" / "s1")
        a_step(study)
    with WorkDirLock(str(study / "runs" / "h1" / "s1"), "iterate"):  # a study's run, resumed on its own
        pass
    (w / ".stages" / "kind").write_text("")  # its record emptied (or removed): what its markers say counts
    (w / ".stages" / "iter1.train.json").write_text("{}")
    assert work_dir_kind(str(w)) == "iterate"
    with pytest.raises(AeHubertError, match="a work dir of `ae-hubert iterate`, not of `ae-hubert demo`"):
        WorkDirLock(str(w), "demo").__enter__()
    old = tmp_path / "old"
    (old / ".stages").mkdir(parents=True)
    (old / ".stages" / "corpus.json").write_text("{}")  # made before kinds were recorded: not claimed by a resume
    with WorkDirLock(str(old), "demo"):
        pass
    assert not (old / ".stages" / "kind").exists()
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / ".ae_hubert.lock")
    with pytest.raises(AeHubertError, match=r"fifo/.ae_hubert.lock: not a plain file where the work dir's lock file belongs"):
        WorkDirLock(str(fifo), "iterate").__enter__()
    with WorkDirLock(str(w)):  # a reader (study-pack) takes only the lock
        pass


def test_a_hard_linked_copy_of_a_work_dir_shares_nothing_it_writes(tmp_path):
    """``cp -al W COPY`` shares every file: the copy's lock would lock both dirs (or, replaced
    carelessly, let a second driver into W), and files written in place (fairseq's checkpoint copies
    and logs) would change the original's."""
    import subprocess

    from ae_hubert.common.atomic import unshare_hard_links
    from ae_hubert.common.lock import LOCK_NAME, WorkDirLock, held_by

    w, c = tmp_path / "w", tmp_path / "copy"
    with WorkDirLock(str(w), "iterate"):
        (w / "checkpoint_last.pt").write_bytes(b"original")
        subprocess.run(["cp", "-al", str(w), str(c)], check=True)  # while W is driven
        with pytest.raises(AeHubertError, match=r"/w: in use by another ae-hubert run \(pid \d+ .*\(work dir .*/w\)\)"):
            WorkDirLock(str(w), "iterate").__enter__()  # W itself stays locked
        with WorkDirLock(str(c), "iterate"):  # its copy is a work dir of its own
            assert os.stat(c / LOCK_NAME).st_ino != os.stat(w / LOCK_NAME).st_ino
            with pytest.raises(AeHubertError, match="in use by another ae-hubert run"):
                WorkDirLock(str(c), "iterate").__enter__()
        assert held_by(str(w)) is None  # this process's
    subprocess.run(["cp", "-al", str(w), str(tmp_path / "idle")], check=True)  # not driven: the copy gets its own
    with WorkDirLock(str(tmp_path / "idle"), "iterate"):
        with WorkDirLock(str(w), "iterate"):
            pass
    (w / "train.log").write_text("original log\n")
    os.link(w / "train.log", c / "train.log")
    assert unshare_hard_links([str(c / f) for f in ("checkpoint_last.pt", "train.log", "absent", ".stages")]) == \
        [str(c / "checkpoint_last.pt"), str(c / "train.log")]
    with open(c / "checkpoint_last.pt", "wb") as f:  # as fairseq's copyfile does
        f.write(b"the copy's")
    with open(c / "train.log", "a") as f:
        f.write("the copy's log\n")
    assert (w / "checkpoint_last.pt").read_bytes() == b"original"
    assert (w / "train.log").read_text() == "original log\n"
    assert unshare_hard_links([str(c / "train.log")]) == []
    assert not [f for f in os.listdir(c) if ".partial-" in f]


def test_a_done_step_whose_output_changed_is_refused(tmp_path):
    """Labels edited in place after the step that made them: a rerun refuses before training on them."""
    from ae_hubert.runner.stages import Stages

    w = tmp_path / "w"
    labels = w / "labels" / "train.km"

    def make():
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("1 2 3\n")
        return {}

    Stages(str(w)).run("iter1.km.labels.train", make, "label ...", outputs=(str(labels), str(w / "gone.txt")))
    Stages(str(w)).check("iter1.km.labels.train", "label ...")  # unchanged (and a file it did not make: ignored)
    labels.write_text("1 3 2\n")  # the same length
    with pytest.raises(AeHubertError, match=r"labels/train.km: changed since step iter1.km.labels.train made it"):
        Stages(str(w)).check("iter1.km.labels.train", "label ...")
    labels.write_text("1 2 3\n")
    moved = tmp_path / "moved"
    os.rename(w, moved)  # recorded relative to the work dir
    Stages(str(moved)).check("iter1.km.labels.train", "label ...")
    labels = moved / "labels" / "train.km"
    labels.unlink()  # missing: whatever reads it next says so
    Stages(str(moved)).check("iter1.km.labels.train", "label ...")
    q = moved / "quality.json"
    q.write_text(json.dumps({"pnmi": 0.5, "km": f"{moved}/labels/valid.km"}))
    Stages(str(moved)).run("q", lambda: {}, "quality ...", outputs=(str(q),))
    q.write_text(json.dumps({"pnmi": 0.5, "km": "/elsewhere/labels/valid.km"}))  # its paths rewritten (study-pack)
    Stages(str(moved)).check("q", "quality ...")
    q.write_text(json.dumps({"pnmi": 0.9, "km": "/elsewhere/labels/valid.km"}))
    with pytest.raises(AeHubertError, match="quality.json: changed since step q made it"):
        Stages(str(moved)).check("q", "quality ...")


def test_a_finished_work_dir_is_written_only_by_its_own_run(tmp_path):
    """A resume trusts a work dir's features, labels and k-means: no other command replaces them."""
    from ae_hubert.common.lock import WorkDirLock
    from ae_hubert.common.outputs import Files, check_files

    w = tmp_path / "w"
    (w / ".stages").mkdir(parents=True)
    (w / "iter2" / "labels").mkdir(parents=True)
    with pytest.raises(AeHubertError, match=r"labels: --out-dir writes inside the work dir .*/w, whose files only its "
                                            "own run writes"):
        check_files(Files({str(w / "iter2" / "labels"): "--out-dir"}, writes_labels=True))
    with WorkDirLock(str(w)):  # the run itself (its in-process steps)
        check_files(Files({str(w / "iter2" / "labels"): "--out-dir"}, writes_labels=True))
    check_files(Files({str(w / "report.html"): "--out"}, into_work_dirs=True))
    with pytest.raises(AeHubertError, match="record.json: --out writes inside the work dir"):  # a page, not a record
        check_files(Files({str(w / "iter1" / "record.json"): "--out"}, into_work_dirs=True))
    check_files(Files({str(tmp_path / "labels"): "--out-dir"}, writes_labels=True))


def test_a_demo_rerun_with_another_corpus_is_refused(tmp_path, monkeypatch):
    """The demo's corpus step records its settings: a rerun with other --utterances or --seed is refused,
    not continued on the corpus of the first."""
    from ae_hubert.pipeline import demo

    built = []

    def build(out, utterances, seed):  # a corpus of one short recording per split
        os.makedirs(os.path.join(out, "wav"), exist_ok=True)
        for split in ("train", "valid", "test"):
            sf.write(os.path.join(out, "wav", f"{split}.wav"), np.zeros(1600, dtype=np.float32), 16000)
            with open(os.path.join(out, f"{split}.tsv"), "w") as f:
                f.write(f"{out}\nwav/{split}.wav\t1600\n")
            with open(os.path.join(out, f"{split}.wrd"), "w") as f:
                f.write("yes\n")
        with open(os.path.join(out, "corpus.json"), "w") as f:
            json.dump({"utterances": utterances, "seed": seed}, f)
        built.append((utterances, seed))
        return {"splits": {}}

    monkeypatch.setattr(demo, "build", build)

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(demo, "iterate", stop)  # the corpus step alone
    w = str(tmp_path / "w")
    for _ in range(2):
        with pytest.raises(Stop):
            demo.run_demo(w, utterances=40, seed=3)
    assert built == [(40, 3)]
    with pytest.raises(AeHubertError, match=r"corpus.json: this step was done with other settings \(now "
                                            r"'--utterances 50', was '--utterances 40'\).*use a new work dir"):
        demo.run_demo(w, utterances=50, seed=3)
    with pytest.raises(AeHubertError, match=r"now '--seed 4', was '--seed 3'"):
        demo.run_demo(w, utterances=40, seed=4)
    with open(os.path.join(w, "corpus", "valid.wrd"), "w") as f:  # a corpus file replaced by hand
        f.write("no\n")
    with pytest.raises(AeHubertError, match=r"valid.wrd: differs from the valid.wrd this work dir was started on"):
        demo.run_demo(w, utterances=40, seed=3)
    with pytest.raises(AeHubertError, match=r"demo: overrides\[0\]: 'dm,x': expected KEY=VALUE"):
        demo.run_demo(str(tmp_path / "w2"), overrides=["dm,x"])
    assert built == [(40, 3)] and not (tmp_path / "w2").exists()


def test_a_training_step_records_the_config_files_it_reads(tmp_path):
    """A file the config's defaults list pulls in is part of what a training step records (a resume
    under an edited one is refused); a value read from the environment is refused as an override."""
    import hashlib
    import shutil

    from ae_hubert.pipeline.schedule import owned_override
    from ae_hubert.runner.configs import config_digest
    from ae_hubert.runner.trainer import CONFIG_DIR

    shipped = os.path.join(CONFIG_DIR, "pretrain")
    with open(os.path.join(shipped, "toy_cpu.yaml"), "rb") as f:  # a file without defaults: its bytes, as before
        assert config_digest(shipped, "toy_cpu") == hashlib.sha1(f.read()).hexdigest()[:12]
    cfg = tmp_path / "cfg"
    (cfg / "optimization").mkdir(parents=True)
    shutil.copy(os.path.join(shipped, "toy_cpu.yaml"), cfg / "parent.yaml")
    (cfg / "optimization" / "fast.yaml").write_text("lr: [0.001]\n")
    (cfg / "child.yaml").write_text("defaults:\n  - _self_\n  - parent\n  - optimization: fast\n")
    first = config_digest(str(cfg), "child")
    shutil.copytree(cfg, tmp_path / "moved")
    assert config_digest(str(tmp_path / "moved"), "child") == first
    (cfg / "parent.yaml").write_text((cfg / "parent.yaml").read_text().replace("max_tokens:", "max_tokens: 1 #"))
    second = config_digest(str(cfg), "child")
    assert second != first
    (cfg / "optimization" / "fast.yaml").write_text("lr: [0.5]\n")
    third = config_digest(str(cfg), "child")
    assert third not in (first, second)
    # the files as hydra resolves them: an `override` entry, a group file's own (group-relative) defaults,
    # a group reached through hydra.searchpath, a group chosen by an override
    (cfg / "optimization" / "slow.yaml").write_text("defaults:\n  - base\n  - _self_\nlr: [0.0001]\n")
    (cfg / "optimization" / "base.yaml").write_text("max_update: 400\n")
    (tmp_path / "extra" / "lr_scheduler").mkdir(parents=True)
    (tmp_path / "extra" / "lr_scheduler" / "flat.yaml").write_text("_name: fixed\n")
    (cfg / "child.yaml").write_text("defaults:\n  - _self_\n  - parent\n  - optimization: fast\n"
                                    "  - lr_scheduler: flat\n  - override optimization: slow\n"
                                    f"hydra:\n  searchpath:\n    - file://{tmp_path / 'extra'}\n")
    digests = {config_digest(str(cfg), "child")}
    for path, text in [(cfg / "optimization" / "base.yaml", "max_update: 401\n"),
                       (cfg / "optimization" / "slow.yaml", "defaults:\n  - base\n  - _self_\nlr: [0.0002]\n"),
                       (tmp_path / "extra" / "lr_scheduler" / "flat.yaml", "_name: fixed\nforce_anneal: 3\n")]:
        path.write_text(text)
        digests.add(config_digest(str(cfg), "child"))
    assert len(digests) == 4 and third not in digests
    (cfg / "optimization" / "fast.yaml").write_text("lr: [0.7]\n")  # replaced by the override entry: not read
    assert config_digest(str(cfg), "child") in digests
    chosen = config_digest(str(cfg), "child", ("optimization=fast",))
    (cfg / "optimization" / "fast.yaml").write_text("lr: [0.8]\n")
    assert config_digest(str(cfg), "child", ("optimization=fast",)) != chosen
    for o in ("optimization.lr=[${oc.env:LR,0.001}]", "optimization.lr=[${ oc.env:LR }]", "common.seed=${now:%S}"):
        assert "reads the environment or the clock" in owned_override(o), o


def test_a_step_recorded_with_the_config_file_alone_still_resumes(tmp_path):
    """Versions before the defaults lists were followed recorded the digest of the config file alone."""
    import hashlib

    from ae_hubert.runner.configs import with_config_digest
    from ae_hubert.runner.trainer import train_args

    (tmp_path / "parent.yaml").write_text("optimization:\n  max_update: 3\n")
    (tmp_path / "child.yaml").write_text("defaults:\n  - parent\n  - _self_\n")
    recorded, earlier = with_config_digest("train", train_args(str(tmp_path), "child", []))
    alone = hashlib.sha1((tmp_path / "child.yaml").read_bytes()).hexdigest()[:12]
    assert f"train  # config-sha1={alone}" in earlier and "train" in earlier and recorded not in earlier


def test_report_and_study_pack_write_into_no_other_run(tmp_path, capsys):
    from ae_hubert.cli import main

    w, other = tmp_path / "w", tmp_path / "other"
    for d in (w, other):
        (d / ".stages").mkdir(parents=True)
        (d / "records.json").write_text("[]")
    assert main(["report", str(other), "--out", str(w / "report.html")]) == 2
    assert "writes inside the work dir" in capsys.readouterr().err and not (w / "report.html").exists()
    assert main(["study-pack", str(other), str(w / "pack")]) == 2
    assert "writes inside the work dir" in capsys.readouterr().err and not (w / "pack").exists()
    assert main(["study-unpack", str(other), str(w / "unpacked")]) == 2
    assert "writes inside the work dir" in capsys.readouterr().err and not (w / "unpacked").exists()


def test_a_linked_checkpoint_dir_belongs_to_one_work_dir(tmp_path):
    """Checkpoints kept on another disk through a link: a copy of the work dir keeps the link, and
    must not train into (or restart, removing) the original's checkpoints; a moved work dir goes on,
    and a copy of the moved one is refused too; a dangling link is named before any work."""
    import subprocess

    from ae_hubert.common.lock import claim_linked_dirs

    big = tmp_path / "big" / "ck"
    big.mkdir(parents=True)
    w = tmp_path / "w"
    (w / ".stages").mkdir(parents=True)
    (w / "iter1").mkdir()
    os.symlink(big, w / "iter1" / "checkpoints")
    for _ in range(2):
        claim_linked_dirs(str(w), [str(w)])
    subprocess.run(["cp", "-a", str(w), str(tmp_path / "c")], check=True)
    c = tmp_path / "c"
    with pytest.raises(AeHubertError, match=r"c/iter1/checkpoints: a link to .*/big/ck, which holds the files of the "
                                            r"work dir .*/w \("):
        claim_linked_dirs(str(c), [str(c)])
    os.rename(w, tmp_path / "w2")
    claim_linked_dirs(str(tmp_path / "w2"), [str(tmp_path / "w2")])  # moved: its own still
    with pytest.raises(AeHubertError, match=r"holds the files of the work dir .*/w2 "):
        claim_linked_dirs(str(c), [str(c)])
    subprocess.run(["cp", "-a", str(tmp_path / "w2"), str(tmp_path / "c2")], check=True)
    os.rename(tmp_path / "w2", tmp_path / "w3")  # the original moved on: its copy still may not take it
    with pytest.raises(AeHubertError, match=r"holds the files of the work dir .*/w2 \(moved or removed since"):
        claim_linked_dirs(str(tmp_path / "c2"), [str(tmp_path / "c2")])
    from ae_hubert.common.outputs import Files, check_files

    claim_linked_dirs(str(tmp_path / "w3"), [str(tmp_path / "w3")])
    with pytest.raises(AeHubertError, match=r"--out writes into a directory the work dir .*/w3 keeps through a link"):
        check_files(Files(outputs={str(big / "sub" / "train.km"): "--out"}))  # (`label --out-dir BIG/sub`)
    os.unlink(c / "iter1" / "checkpoints")
    (c / "iter1" / "checkpoints").mkdir()  # a directory of its own: nothing to claim
    claim_linked_dirs(str(c), [str(c)])
    os.symlink(tmp_path / "nowhere", c / "iter1" / "labels")
    with pytest.raises(AeHubertError, match=r"c/iter1/labels: a link to .*/nowhere, which does not exist"):
        claim_linked_dirs(str(c), [str(c)])


def test_a_driver_claims_every_linked_dir_of_its_work_dir(tmp_path):
    """Features or labels kept elsewhere through a link are claimed when a driver takes the lock,
    before it writes or removes anything: a `cp -a` copy that kept the link is refused at once (a
    --restart there would rewrite the original's labels); a nested run's links are its own."""
    import subprocess

    from ae_hubert.common.lock import OWNER_FILE, WorkDirLock, held_by

    big = tmp_path / "big"
    (big / "labels").mkdir(parents=True)
    (big / "inner").mkdir()
    w = tmp_path / "w"
    with WorkDirLock(str(w), "study"):
        pass
    (w / "iter1").mkdir()
    os.symlink(big / "labels", w / "iter1" / "labels")
    (w / "h1" / ".stages").mkdir(parents=True)  # a run nested in it: its links are claimed by its own driver
    (w / "h1" / ".stages" / "kind").write_text("iterate\n")
    os.symlink(big / "inner", w / "h1" / "features")
    with WorkDirLock(str(w), "study"):
        pass
    assert (big / "labels" / OWNER_FILE).read_text().splitlines()[0] == str(w.resolve())
    assert not (big / "inner" / OWNER_FILE).exists()
    subprocess.run(["cp", "-a", str(w), str(tmp_path / "c")], check=True)
    with pytest.raises(AeHubertError, match=r"c/iter1/labels: a link to .*/big/labels, which holds the files of the "
                                            r"work dir .*/w \("):
        with WorkDirLock(str(tmp_path / "c"), "study"):
            pass
    assert held_by(str(tmp_path / "c")) is None  # the refusal released the lock
    os.unlink(tmp_path / "c" / "iter1" / "labels")
    (tmp_path / "c" / "iter1" / "labels").mkdir()  # a directory of its own: the copy goes on
    with WorkDirLock(str(tmp_path / "c"), "study"):
        pass
def test_linked_dirs_moves_copies_and_refused_starts(tmp_path):
    """A driver claims only the links where it writes (a data dir linked in is not touched); a moved
    work dir is told from a copy by its markers' identity, also when a new run takes its old path;
    a start refused before its first step leaves the dir no tool's; a `cp -al` copy of a running
    work dir is not taken for the running one; a study of an earlier version stopped in its first
    run resumes."""
    import subprocess

    from ae_hubert.common.lock import OWNER_FILE, WorkDirLock, held_by, work_dir_kind

    (tmp_path / "big" / "feat").mkdir(parents=True)
    (tmp_path / "shared_data").mkdir()
    w = tmp_path / "w"
    (w / "iter1").mkdir(parents=True)
    os.symlink(tmp_path / "big" / "feat", w / "iter1" / "feat")
    os.symlink(tmp_path / "shared_data", w / "data")
    with WorkDirLock(str(w), "iterate", writes=[str(w / "iter1")]):
        (w / ".stages" / "iter1.kmeans.json").write_text("{}")
    assert (tmp_path / "big" / "feat" / OWNER_FILE).is_file() and not (tmp_path / "shared_data" / OWNER_FILE).exists()
    os.rename(w, tmp_path / "moved")
    (w / ".stages").mkdir(parents=True)  # a new run at the old path
    (w / ".stages" / "kind").write_text("iterate\n")
    with WorkDirLock(str(tmp_path / "moved"), "iterate", writes=[str(tmp_path / "moved" / "iter1")]):
        pass  # the moved one takes its link over
    subprocess.run(["cp", "-a", str(tmp_path / "moved"), str(tmp_path / "copy")], check=True)
    with pytest.raises(AeHubertError, match="holds the files of the work dir .*/moved"):
        WorkDirLock(str(tmp_path / "copy"), "iterate", writes=[str(tmp_path / "copy" / "iter1")]).__enter__()

    with pytest.raises(AeHubertError, match="boom"):  # refused before its first step
        with WorkDirLock(str(tmp_path / "new"), "reset-sweep"):
            raise AeHubertError("boom")
    assert work_dir_kind(str(tmp_path / "new")) is None
    with WorkDirLock(str(tmp_path / "new"), "iterate"):
        pass

    with WorkDirLock(str(tmp_path / "run"), "iterate"):
        (tmp_path / "run" / ".stages" / "it1.train.json").write_text("{}")
        subprocess.run(["cp", "-al", str(tmp_path / "run"), str(tmp_path / "run_copy")], check=True)
        assert held_by(str(tmp_path / "run")) is None  # (held here)
        assert held_by(str(tmp_path / "run_copy")) is None

    old = tmp_path / "old_study"
    (old / ".stages").mkdir(parents=True)
    (old / "runs" / "h1_s1" / ".stages").mkdir(parents=True)
    (old / "runs" / "h1_s1" / ".stages" / "iter1.kmeans.json").write_text("{}")
    with WorkDirLock(str(old), "study"):
        pass
    with pytest.raises(AeHubertError, match="old_study: a work dir of `ae-hubert study`"):  # now recorded
        WorkDirLock(str(old), "reset-sweep").__enter__()


def test_a_config_file_may_not_load_other_weights_or_write_elsewhere(tmp_path):
    """What an override may not set, a config file (or one its defaults list pulls in) may not either."""
    from ae_hubert.pipeline.schedule import owned_override
    from ae_hubert.runner.configs import check_driven_config, compose_train_config
    from ae_hubert.runner.trainer import CONFIG_DIR

    cfg = tmp_path / "cfg"
    cfg.mkdir()
    with open(os.path.join(CONFIG_DIR, "pretrain", "toy_cpu.yaml")) as f:
        toy = f.read()
    base = ["task.data=/d", "task.label_dir=/l", "checkpoint.save_dir=/s"]
    for edit, refused in [(("checkpoint:\n", "checkpoint:\n  restore_file: /other/checkpoint_2_6.pt\n"),
                           "checkpoint.restore_file"),
                          (("checkpoint:\n", "checkpoint:\n  finetune_from_model: /other/x.pt\n"),
                           "checkpoint.finetune_from_model"),
                          (("checkpoint:\n", "checkpoint:\n  reset_optimizer: true\n"), "checkpoint.reset_optimizer"),
                          (("common:\n", "common:\n  log_file: /other/train.log\n"), "common.log_file"),
                          (("tensorboard_logdir: tblog", "tensorboard_logdir: /other/tblog"),
                           "common.tensorboard_logdir"),
                          (("    dir: .\n", "    dir: /other/iter1\n"), "hydra.run.dir: /other/iter1"),
                          (("  lr: [0.001]", "  lr: ['${oc.env:AE_HUBERT_TEST_LR,0.001}']"),
                           r"parent.yaml: optimization: \$\{oc.env:AE_HUBERT_TEST_LR,0.001\}: a value that reads the "
                           "environment")]:
        (cfg / "parent.yaml").write_text(toy.replace(*edit, 1))
        (cfg / "child.yaml").write_text("defaults:\n  - _self_\n  - parent\n")  # in a file the config pulls in
        c = compose_train_config(str(cfg), "child", base, "child")
        with pytest.raises(AeHubertError, match=refused):
            check_driven_config(c, str(cfg), "child", "child")
    (cfg / "parent.yaml").write_text(toy)
    check_driven_config(compose_train_config(str(cfg), "child", base, "child"), str(cfg), "child", "child")
    (cfg / "parent.yaml").write_text(toy + "  job_logging:\n    handlers:\n      file:\n        filename: "
                                           "${hydra.runtime.output_dir}/${hydra.job.name}.log\n")  # hydra's own
    check_driven_config(compose_train_config(str(cfg), "child", base, "child"), str(cfg), "child", "child")
    for o in ("checkpoint.reset_optimizer=true", "checkpoint.checkpoint_suffix=-x", "common.log_file=/x.log"):
        assert owned_override(o), o
    (cfg / "parent.yaml").write_text(toy.replace("common:\n", "common:\n  wandb_project: ${hydra:job.name}\n", 1))
    with pytest.raises(AeHubertError, match=r"common.wandb_project reads \$\{hydra:...\}, hydra's settings of the "
                                            r"running trainer"):
        compose_train_config(str(cfg), "child", base, "child")


def test_a_work_dir_whose_markers_are_a_link_is_refused(tmp_path):
    from ae_hubert.common.lock import WorkDirLock

    (tmp_path / "v" / ".stages").mkdir(parents=True)
    (tmp_path / "n").mkdir()
    os.symlink(tmp_path / "v" / ".stages", tmp_path / "n" / ".stages")
    with pytest.raises(AeHubertError, match=r"n/.stages: a link where the work dir's step markers belong"):
        WorkDirLock(str(tmp_path / "n"), "iterate").__enter__()


def test_a_redone_runs_stats_are_its_own(tmp_path):
    """A training run's log goes on in the same file when the run is redone: its summary is read
    from this run's lines only (a redone run without validation reports no earlier valid loss)."""
    from ae_hubert.runner.trainer import FRESH_RUN, final_stats

    log = tmp_path / "train.log"
    log.write_text("[x][valid][INFO] - epoch 1 | valid on 'valid' subset | loss 7.5 | num_updates 4\n"
                   "[x][train][INFO] - epoch 1 | loss 8.0 | num_updates 4\n"
                   f"{FRESH_RUN} (no checkpoint yet in /s): the lines above are a run that was redone\n"
                   "[x][train][INFO] - epoch 1 | loss 6.0 | num_updates 6\n")
    stats = final_stats(str(log))
    assert stats == {"train": {"loss": 6.0, "num_updates": 6.0}}


def test_a_studys_run_kept_on_another_disk_and_links_that_hold_the_work_dir(tmp_path):
    """A study's nested run linked to another disk is the study's (claimed, resumed on its own, its
    commands write there); a link to a directory holding the work dir itself is refused; a record of
    the version that wrote DEV:INODE is still the same work dir."""
    from ae_hubert.common.lock import IDENTITY_FILE, OWNER_FILE, WorkDirLock, owning_work_dir

    disk = tmp_path / "disk2" / "s1"
    study = tmp_path / "study"
    (study / "runs").mkdir(parents=True)
    disk.mkdir(parents=True)
    os.symlink(disk, study / "runs" / "s1")
    for _ in range(2):
        with WorkDirLock(str(study), "study"):
            with WorkDirLock(str(study / "runs" / "s1"), "iterate"):
                (disk / ".stages" / "iter1.kmeans.json").write_text("{}")
            (study / ".stages" / "s1.h1.json").write_text("{}")
    assert (disk / OWNER_FILE).read_text().splitlines()[0] == str(study.resolve())
    assert owning_work_dir(str(disk / "iter1" / "labels" / "train.km")) == str(study.resolve())  # (nobody holds)
    with WorkDirLock(str(study / "runs" / "s1"), "iterate"):  # resumed on its own: its commands write there
        assert owning_work_dir(str(disk / "iter1" / "labels" / "train.km")) is None
    ident = (study / ".stages" / IDENTITY_FILE).read_text().strip()
    (study / ".stages" / IDENTITY_FILE).write_text(f"2049:{ident}\n")  # an earlier record, with the device
    with WorkDirLock(str(study), "study"):
        pass
    os.symlink(tmp_path, study / "up")
    with pytest.raises(AeHubertError, match=r"study/up: a link to .*, holding this work dir itself"):
        WorkDirLock(str(study), "study").__enter__()


def test_hydras_own_groups_in_a_driven_config_are_checked(tmp_path):
    """A user file of hydra's own groups (hydra/job_logging/mine.yaml) is digested and checked like
    the rest; a job name that is a path is refused; hydra's groups are not for overrides."""
    from ae_hubert.runner.configs import check_driven_config, compose_train_config, config_digest, driven_override
    from ae_hubert.runner.trainer import CONFIG_DIR

    cfg = tmp_path / "cfg"
    (cfg / "hydra" / "job_logging").mkdir(parents=True)
    with open(os.path.join(CONFIG_DIR, "pretrain", "toy_cpu.yaml")) as f:
        (cfg / "parent.yaml").write_text(f.read())
    mine = cfg / "hydra" / "job_logging" / "mine.yaml"
    mine.write_text("version: 1\nhandlers:\n  file:\n    class: logging.FileHandler\n    filename: /elsewhere/t.log\n")
    (cfg / "child.yaml").write_text("defaults:\n  - _self_\n  - parent\n  - override hydra/job_logging: mine\n")
    base = ["task.data=/d", "task.label_dir=/l", "checkpoint.save_dir=/s"]
    c = compose_train_config(str(cfg), "child", base, "child")
    with pytest.raises(AeHubertError, match=r"mine.yaml: hydra.job_logging: /elsewhere/t.log"):
        check_driven_config(c, str(cfg), "child", "child")
    before = config_digest(str(cfg), "child")
    mine.write_text("version: 1\n")
    assert config_digest(str(cfg), "child") != before
    check_driven_config(compose_train_config(str(cfg), "child", base, "child"), str(cfg), "child", "child")
    (cfg / "child.yaml").write_text("defaults:\n  - _self_\n  - parent\nhydra:\n  job:\n    name: ../../victim/train\n")
    with pytest.raises(AeHubertError, match=r"hydra.job.name: ../../victim/train"):
        check_driven_config(compose_train_config(str(cfg), "child", base, "child"), str(cfg), "child", "child")
    assert driven_override("hydra/job_logging=mine")


def test_links_below_links_inside_owned_dirs_and_inside_the_work_dir(tmp_path):
    """A link below a linked dir is claimed too; a link into a directory inside one another work dir
    keeps is refused, and so is a link between two dirs of the same work dir; a moved owner's
    directory stays its own for other commands; a file link (cp -as) is given data of its own."""
    from ae_hubert.common.atomic import unshare_hard_links
    from ae_hubert.common.lock import OWNER_FILE, WorkDirLock, owning_work_dir

    (tmp_path / "p" / "checkpoints").mkdir(parents=True)
    (tmp_path / "q").mkdir()
    os.symlink(tmp_path / "q", tmp_path / "p" / "checkpoints" / "deeper")
    a = tmp_path / "a"
    a.mkdir()
    os.symlink(tmp_path / "p", a / "iter1")
    with WorkDirLock(str(a), "iterate", writes=[str(a / "iter1")]):
        (a / ".stages" / "iter1.train.json").write_text("{}")
    assert (tmp_path / "q" / OWNER_FILE).is_file() and (tmp_path / "p" / OWNER_FILE).is_file()
    b = tmp_path / "b"
    (b / "iter1").mkdir(parents=True)
    os.symlink(tmp_path / "p" / "checkpoints", b / "iter1" / "checkpoints")
    with pytest.raises(AeHubertError, match=r"b/iter1/checkpoints: a link to .*/p/checkpoints, which holds or lies "
                                            r"in a directory the work dir .*/a keeps through a link"):
        WorkDirLock(str(b), "iterate", writes=[str(b / "iter1")]).__enter__()
    c = tmp_path / "c"
    (c / "iter1").mkdir(parents=True)
    os.symlink(c / "iter1", c / "iter2")
    with pytest.raises(AeHubertError, match=r"c/iter2: a link to .*/c/iter1, inside this work dir itself"):
        WorkDirLock(str(c), "iterate", writes=[str(c / "iter1"), str(c / "iter2")]).__enter__()
    os.rename(a, tmp_path / "a_moved")
    assert owning_work_dir(str(tmp_path / "p" / "labels" / "train.km")) == str(a.resolve())  # (moved: still its)
    (tmp_path / "orig.log").write_text("x\n")
    os.symlink(tmp_path / "orig.log", tmp_path / "copy.log")
    assert unshare_hard_links([str(tmp_path / "copy.log")]) == [str(tmp_path / "copy.log")]
    assert not os.path.islink(tmp_path / "copy.log") and (tmp_path / "copy.log").read_text() == "x\n"


def test_right_before_a_training_step_everything_is_checked_again(tmp_path):
    """The driver may have run for hours since its checks: an input changed meanwhile, an edited
    config, or checkpoints put into a never-started step's save dir refuse the step."""
    from ae_hubert.runner.stages import Stages
    from ae_hubert.runner.trainer import check_before_training, resolve_train_config, train_args

    stages = Stages(str(tmp_path / "w"), lambda _: None)
    data = tmp_path / "train.tsv"
    data.write_text("root\na.wav\t16000\n")
    stages.check_inputs({"train.tsv": (str(data), "one")})
    save = tmp_path / "w" / "iter2" / "checkpoints"
    args = train_args(*resolve_train_config("pretrain/toy_cpu", "test"), ["task.data=/d", f"checkpoint.save_dir={save}"])
    run = str(save.parent)
    check_before_training(stages, "iter2.train", str(save), lambda: {"train.tsv": (str(data), "one")}, lambda: "c",
                          "c", "r", args, run)
    with pytest.raises(AeHubertError, match=r"train.tsv: differs from the train.tsv this work dir was started on"):
        check_before_training(stages, "iter2.train", str(save), lambda: {"train.tsv": (str(data), "two")},
                              lambda: "c", "c", "--restart iter2.train", args, run)
    with pytest.raises(AeHubertError, match=r"iter2.train: its training config .* changed while this run went on"):
        check_before_training(stages, "iter2.train", str(save), lambda: {}, lambda: "c2", "c", "--restart iter2.train",
                              args, run)
    save.mkdir(parents=True)
    (save / "checkpoint_last.pt").write_bytes(b"x")
    with pytest.raises(AeHubertError, match=r"checkpoint_last.pt: a checkpoint iter2.train did not make .* or "
                                            r"--restart iter2.train \(which removes the checkpoints there\)"):
        check_before_training(stages, "iter2.train", str(save), lambda: {}, lambda: "c", "c", "--restart iter2.train",
                              args, run)


def test_a_step_trained_on_another_config_than_the_checked_one_is_not_recorded(tmp_path):
    """A config edited as training starts and put back before it ends: the file checks before and
    after agree, but hydra's record of what the process composed does not: refused, after it trained
    and before any resume from its checkpoints, which stay for --restart to remove."""
    from omegaconf import OmegaConf

    from ae_hubert.runner.stages import Stages
    from ae_hubert.runner.trainer import (check_before_training, check_trained_as_composed, resolve_train_config,
                                          train_args)

    args = train_args(*resolve_train_config("pretrain/toy_cpu", "test"),
                      ["task.data=/d", "task.label_dir=/d", "checkpoint.save_dir=/s/iter1/checkpoints",
                       "optimization.max_update=4"])
    run, save = tmp_path / "w" / "iter1", tmp_path / "w" / "iter1" / "checkpoints"
    stages = Stages(str(tmp_path / "w"), lambda _: None)
    composed = check_before_training(stages, "iter1.train", str(save), lambda: {}, lambda: "c", "c",
                                     "--restart iter1.train", args, str(run))
    assert composed["optimization"]["max_update"] == 4 and "user_dir" not in composed["common"]
    record = run / ".hydra" / "config.yaml"
    record.parent.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({**composed, "common": {**composed["common"], "user_dir": "/elsewhere"}}),
                   record)  # (where the plugin is installed is not a setting)
    save.mkdir()
    (save / "checkpoint_last.pt").write_bytes(b"x")
    check_trained_as_composed(str(run), composed, "iter1.train", "--restart iter1.train", "/s")
    moved = OmegaConf.create(composed)  # the work dir moved since: its paths as they are now, others as they were
    moved.checkpoint.save_dir, moved.task.label_dir = "/old/w/iter1/checkpoints", "/old/w/iter1/labels"
    OmegaConf.save(moved, record)
    check_trained_as_composed(str(run), {**composed, "task": {**composed["task"], "label_dir": "/s/iter1/labels"}},
                              "iter1.train", "--restart iter1.train", "/s")
    with pytest.raises(AeHubertError, match=r"composed task.data: '/d' \(hydra's record\), where the config as "
                                            r"checked composes '/s/corpus'"):  # (task.data=/d did not move with it)
        check_trained_as_composed(str(run), {**composed, "task": {**composed["task"], "data": "/s/corpus",
                                                                  "label_dir": "/s/iter1/labels"}},
                                  "iter1.train", "--restart iter1.train", "/s")
    edited = OmegaConf.create(composed)
    edited.optimization.lr = [0.5]
    OmegaConf.save(edited, record)
    os.makedirs(os.path.dirname(stages.started_marker("iter1.train")), exist_ok=True)
    open(stages.started_marker("iter1.train"), "w").close()
    for check in (lambda: check_before_training(stages, "iter1.train", str(save), lambda: {}, lambda: "c", "c",
                                                "--restart iter1.train", args, str(run)),  # (before it resumes)
                  lambda: check_trained_as_composed(str(run), composed, "iter1.train", "--restart iter1.train", "/s")):
        with pytest.raises(AeHubertError, match=r"\.hydra/config.yaml: iter1.train: its training process composed "
                                                r"optimization.lr: \[0.5\] \(hydra's record\), where the config as "
                                                r"checked composes \[0.001\] \(edited as it started, .*\); "
                                                r"--restart iter1.train to train it again"):
            check()
        assert (save / "checkpoint_last.pt").exists()
    for broken in ("", "[1, 2"):  # (empty, not YAML: as missing)
        record.write_text(broken)
        with pytest.raises(AeHubertError, match=r"is missing or unreadable, so what trained its checkpoints cannot "
                                                r"be confirmed; --restart iter1.train to train it again"):
            check_trained_as_composed(str(run), composed, "iter1.train", "--restart iter1.train", "/s")
    os.remove(record)
    older = run / "outputs" / "2026-12-01" / "10-00-00" / ".hydra" / "config.yaml"  # (an earlier version's, where
    older.parent.mkdir(parents=True)  # hydra's default run dir put it under a config without hydra.run.dir)
    OmegaConf.save(OmegaConf.create(composed), older)
    check_trained_as_composed(str(run), composed, "iter1.train", "--restart iter1.train", "/s")
    assert (save / "checkpoint_last.pt").exists()


def _two_trained_iterations(w):
    """A work dir whose iter1 and iter2 are trained: their markers, checkpoints and records."""
    import json

    from ae_hubert.pipeline.plan import Step
    from ae_hubert.runner.stages import Stages

    stages = Stages(str(w), lambda _: None)
    steps = [Step(f"{i}.train", "train", "fairseq-hydra-train", (), save_dir=str(w / i / "checkpoints"))
             for i in ("iter1", "iter2")]
    records = []
    for st, i in zip(steps, ("iter1", "iter2")):
        stages.run(st.name, lambda: {})
        (w / i / "checkpoints").mkdir(parents=True)
        (w / i / "checkpoints" / "checkpoint_last.pt").write_bytes(b"x")
        records.append({"iteration": i, "checkpoint": str(w / i / "checkpoints" / "checkpoint_last.pt")})
        (w / i / "record.json").write_text(json.dumps(records[-1]))
    return stages, steps, records


def test_a_restart_leaves_no_summary_of_checkpoints_it_removed(tmp_path):
    """Until the redone run ends (refused, killed), records.json, the iteration's record.json and a
    sweep's table show nothing of the checkpoints a --restart removed; the rest stays."""
    import json

    from ae_hubert.finetune.reset_sweep import _drop_row
    from ae_hubert.pipeline.iterate import _restart

    w = tmp_path / "w"
    stages, steps, records = _two_trained_iterations(w)
    (w / "report.html").write_text("<p>iter2</p>")
    for earlier in (json.dumps(records), '[{"bad'):  # (unreadable: rebuilt from the iterations' records)
        (w / "records.json").write_text(earlier)
        _restart(stages, steps, 1, str(w), lambda _: None, None)
        assert json.loads((w / "records.json").read_text()) == records[:1]
    assert not (w / "report.html").exists()
    assert (w / "iter1" / "record.json").exists() and not (w / "iter2" / "record.json").exists()
    assert not (w / "iter2" / "checkpoints" / "checkpoint_last.pt").exists()
    row = {"mode": "reinit", "train": {"loss": 1.0}, "valid": {"wer": 1.0, "cer": 0.5}}
    (tmp_path / "sweep.json").write_text(json.dumps([{"k": 0, **row}, {"k": 1, **row}]))
    _drop_row(str(tmp_path), 1)
    assert [r["k"] for r in json.loads((tmp_path / "sweep.json").read_text())] == [0]
    assert (tmp_path / "sweep.csv").read_text().splitlines() == ["k,mode,valid_wer,valid_cer",
                                                                "0,reinit,1.000000,0.500000"]
    (tmp_path / "sweep.json").unlink()  # (the table's rows cannot be told apart: it goes)
    _drop_row(str(tmp_path), 0)
    assert not (tmp_path / "sweep.csv").exists()
    elsewhere = tmp_path / "elsewhere.json"  # a linked table: the links go, what they point at stays
    elsewhere.write_text(json.dumps([{"k": 0, **row}]))
    (tmp_path / "sweep.json").symlink_to(elsewhere)
    (tmp_path / "sweep.csv").write_text("k\n0\n")
    (tmp_path / "report.html").mkdir()  # a summary that cannot be withdrawn: refused before anything goes
    with pytest.raises(AeHubertError, match="report.html: a directory is in the way"):
        _drop_row(str(tmp_path), 0)
    assert (tmp_path / "sweep.csv").exists()
    (tmp_path / "report.html").rmdir()
    _drop_row(str(tmp_path), 0)
    assert not os.path.lexists(tmp_path / "sweep.json") and not (tmp_path / "sweep.csv").exists()
    assert elsewhere.exists()


def test_a_restart_withdraws_the_summaries_before_it_removes_checkpoints(tmp_path, monkeypatch):
    """A summary that cannot be withdrawn (a directory in its place, a file that cannot be replaced)
    stops a --restart before any checkpoint goes; a linked records.json becomes a file holding what
    is still trained, its target left as it was."""
    import json

    from ae_hubert.pipeline.iterate import _restart

    w = tmp_path / "w"
    stages, steps, records = _two_trained_iterations(w)
    ckpt = w / "iter2" / "checkpoints" / "checkpoint_last.pt"
    (w / "iter2" / "record.json").unlink()
    (w / "iter2" / "record.json").mkdir()
    with pytest.raises(AeHubertError, match="iter2/record.json: a directory is in the way"):
        _restart(stages, steps, 1, str(w), lambda _: None, None)
    assert ckpt.exists() and stages.done("iter2.train") is not None
    (w / "iter2" / "record.json").rmdir()
    (w / "report.html").write_text("<p>iter2</p>")

    def cannot_replace(src, dst):
        raise PermissionError(1, "Operation not permitted")
    (w / "records.json").write_text(json.dumps(records))
    monkeypatch.setattr(os, "replace", cannot_replace)  # (as a read-only or immutable records.json)
    with pytest.raises(AeHubertError, match=r"w/records.json: cannot be replaced \(Operation not permitted\)"):
        _restart(stages, steps, 1, str(w), lambda _: None, None)
    monkeypatch.undo()
    assert ckpt.exists() and (w / "report.html").exists()
    (w / "records.json").unlink()
    theirs = tmp_path / "theirs.json"
    theirs.write_text(json.dumps(records))
    (w / "records.json").symlink_to(theirs)
    _restart(stages, steps, 1, str(w), lambda _: None, None)
    assert not (w / "records.json").is_symlink() and json.loads((w / "records.json").read_text()) == records[:1]
    assert json.loads(theirs.read_text()) == records and not ckpt.exists() and not (w / "report.html").exists()


def test_links_above_owned_dirs_on_the_way_down_and_in_the_markers(tmp_path):
    """A link to a directory holding one another work dir keeps is refused; a linked dir on the way
    down to where a step writes is claimed (a --restart through W/iter2 -> elsewhere); a link in
    .stages is refused; a kept record of a copied work dir names the copy's paths."""
    import json

    from ae_hubert.common.lock import WorkDirLock, claim_linked_dirs
    from ae_hubert.pipeline.iterate import _merge_records
    from ae_hubert.runner.stages import Stages

    (tmp_path / "disk" / "z" / "checkpoints").mkdir(parents=True)
    ow = tmp_path / "ow"
    (ow / "iter1").mkdir(parents=True)
    os.symlink(tmp_path / "disk" / "z" / "checkpoints", ow / "iter1" / "checkpoints")
    with WorkDirLock(str(ow), "iterate", writes=[str(ow / "iter1")]):
        (ow / ".stages" / "iter1.train.json").write_text("{}")
    w7 = tmp_path / "w7"
    w7.mkdir()
    os.symlink(tmp_path / "disk" / "z", w7 / "iter1")
    with pytest.raises(AeHubertError, match=r"w7/iter1: a link to .*/disk/z, which holds or lies in a directory the "
                                            r"work dir .*/ow keeps"):
        WorkDirLock(str(w7), "iterate", writes=[str(w7 / "iter1")]).__enter__()
    (tmp_path / "disk" / "o_iter2" / "checkpoints").mkdir(parents=True)
    o = tmp_path / "o"
    (o / ".stages").mkdir(parents=True)
    os.symlink(tmp_path / "disk" / "o_iter2", o / "iter2")
    claim_linked_dirs(str(o), [str(o / "iter2" / "checkpoints")])  # the link on the way down is claimed
    assert (tmp_path / "disk" / "o_iter2" / ".ae_hubert.owner").is_file()
    r5 = tmp_path / "r5"
    (r5 / ".stages").mkdir(parents=True)
    (tmp_path / "r6_started").mkdir()
    os.symlink(tmp_path / "r6_started", r5 / ".stages" / "started")
    with pytest.raises(AeHubertError, match=r"r5/.stages/started: a link where the work dir's step markers belong"):
        WorkDirLock(str(r5), "iterate").__enter__()
    copy = tmp_path / "copy"
    (copy / ".stages").mkdir(parents=True)
    (copy / ".stages" / "iter2.train.json").write_text(json.dumps({"command": "x", "result": {}}))
    (copy / "records.json").write_text(json.dumps([{"iteration": "iter2", "checkpoint":
                                                    "/old/base/iter2/checkpoints/checkpoint_last.pt",
                                                    "label_dir": "/old/base/iter1/labels"}]))
    kept = _merge_records(str(copy / "records.json"), [], Stages(str(copy), lambda _: None), [])
    assert kept == [{"iteration": "iter2", "checkpoint": f"{copy}/iter2/checkpoints/checkpoint_last.pt",
                     "label_dir": f"{copy}/iter1/labels"}]


def test_a_new_work_dir_holding_files_is_refused(tmp_path):
    """A driver writes its tables and records at the top of its work dir: a new one holding the
    user's files there is refused before anything is replaced."""
    from ae_hubert.common.lock import WorkDirLock

    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "sweep.csv").write_text("precious\n")
    with pytest.raises(AeHubertError, match=r"u/sweep.csv: in a new work dir, where a driver writes a file of that"):
        WorkDirLock(str(tmp_path / "u"), "reset-sweep").__enter__()
    assert (tmp_path / "u" / "sweep.csv").read_text() == "precious\n"
    (tmp_path / "u" / "sweep.csv").unlink()
    (tmp_path / "u" / "study.yaml").write_text("name: mine\n")  # the user's own files of other names stay fine
    (tmp_path / "u" / "iter1").mkdir()
    with WorkDirLock(str(tmp_path / "u"), "iterate"):
        pass


def test_a_study_keeps_its_runs_on_another_disk_and_reads_its_data_unclaimed(tmp_path):
    """A study whose runs live on another disk (S/runs -> BIG/runs) is not locked out by its own
    nested runs' records, which may be resumed alone; its --data linked in is never claimed; a
    moved work dir keeps a link inside its linked dir; a study's run linked into another study's
    run is refused."""
    from ae_hubert.common.lock import OWNER_FILE, WorkDirLock

    big = tmp_path / "big"
    (big / "runs" / "feat_h1").mkdir(parents=True)
    (tmp_path / "corpus").mkdir()
    s = tmp_path / "s"
    s.mkdir()
    os.symlink(big / "runs", s / "runs")
    os.symlink(tmp_path / "corpus", s / "corpus")
    for _ in range(2):
        with WorkDirLock(str(s), "study", reads=(str(tmp_path / "corpus"),)):
            run = s / "runs" / "h1" / "s1"
            run.mkdir(parents=True, exist_ok=True)
            if not (run / "iter1").exists():
                (run / "iter1").mkdir()
                os.symlink(big / "runs" / "feat_h1", run / "iter1" / "features")
            with WorkDirLock(str(run), "iterate", writes=[str(run / "iter1")]):
                (run / ".stages" / "iter1.kmeans.json").write_text("{}")
            (s / ".stages" / "s1.h1.json").write_text("{}")
    with WorkDirLock(str(s / "runs" / "h1" / "s1"), "iterate", writes=[str(s / "runs" / "h1" / "s1" / "iter1")]):
        pass  # resumed alone
    assert not (tmp_path / "corpus" / OWNER_FILE).exists()
    s2 = tmp_path / "s2"
    (s2 / "runs" / "h1").mkdir(parents=True)
    os.symlink(s / "runs" / "h1" / "s1", s2 / "runs" / "h1" / "s1")
    with pytest.raises(AeHubertError, match=r"s2/runs/h1/s1: a link .*(the work dir of another run|keeps through)"):
        WorkDirLock(str(s2), "study").__enter__()


def test_a_copy_may_link_a_fresh_empty_dir(tmp_path):
    """A copy of a work dir knows it is one; a link it makes to a new, empty directory is nobody
    else's and is claimed (one to a directory with files is refused: the original may write there)."""
    from ae_hubert.common.lock import WorkDirLock

    import subprocess

    w = tmp_path / "w"
    with WorkDirLock(str(w), "iterate"):
        (w / ".stages" / "iter1.train.json").write_text("{}")
    subprocess.run(["cp", "-a", str(w), str(tmp_path / "c")], check=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.npy").write_bytes(b"x")
    os.symlink(tmp_path / "full", tmp_path / "c" / "iter1")
    with pytest.raises(AeHubertError, match=r"c/iter1: a link to .*/full, whose owner is not recorded, in a copy"):
        WorkDirLock(str(tmp_path / "c"), "iterate").__enter__()
    os.unlink(tmp_path / "c" / "iter1")
    (tmp_path / "fresh").mkdir()
    os.symlink(tmp_path / "fresh", tmp_path / "c" / "iter1")
    with WorkDirLock(str(tmp_path / "c"), "iterate"):
        pass
