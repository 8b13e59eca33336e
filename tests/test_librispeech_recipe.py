"""examples/librispeech/run.sh end to end on a fake LibriSpeech tree (real layout, flac, trans.txt)."""
import os
import subprocess

import numpy as np
import pytest
import soundfile as sf

from conftest import BIN, REPO


def fake_librispeech(corpus, root):
    """The demo corpus laid out as LibriSpeech + Libri-light limited (flac, <spk>-<chapter>.trans.txt)."""
    from ae_hubert.common.audio import read_entry
    from ae_hubert.common.manifest import read_manifest

    voices = {}
    chapters = {}

    def put(split_dir, entry, words, voice, i):
        spk = voices.setdefault(voice, 100 + len(voices))
        chap = 1000 + i // 4
        d = os.path.join(root, split_dir, str(spk), str(chap))
        os.makedirs(d, exist_ok=True)
        utt = f"{spk}-{chap}-{i:04d}"
        sf.write(os.path.join(d, utt + ".flac"), read_entry(entry), 16000, format="FLAC")
        chapters.setdefault(os.path.join(d, f"{spk}-{chap}.trans.txt"), []).append(f"{utt} {words}")

    for split, targets in (("train", ["LibriSpeech/train-clean-100"]),
                           ("valid", ["LibriSpeech/dev-clean", "LibriSpeech/dev-other"]),
                           ("test", ["LibriSpeech/test-clean", "LibriSpeech/test-other"])):
        entries = read_manifest(os.path.join(corpus, f"{split}.tsv")).entries
        words = open(os.path.join(corpus, f"{split}.wrd")).read().splitlines()
        spk = open(os.path.join(corpus, f"{split}.spk")).read().splitlines()
        for i, (e, w, v) in enumerate(zip(entries, words, spk)):
            put(targets[i * len(targets) // len(entries)], e, w, v, i)
            if split == "train" and i < 12:  # Libri-light limited: 1h/0 and 9h, from the train set
                put("librispeech_finetuning/" + ("1h/0/clean" if i < 6 else "9h/clean"), e, w, v, i)
    for path, lines in chapters.items():
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    return os.path.join(root, "LibriSpeech"), os.path.join(root, "librispeech_finetuning")


def test_manifests_match_fairseq_formats(corpus, tmp_path):
    from ae_hubert.corpus.librispeech import prepare_librispeech

    ls, ll = fake_librispeech(corpus, str(tmp_path / "raw"))
    out = str(tmp_path / "data")
    written = prepare_librispeech(ls, out, ll)
    assert written["train"] == 32 and written["train_10h"] == 12 and written["train_1h"] == 6
    assert written["train_10min"] == 6 and written["valid"] == 4 and written["test_clean"] + written["test_other"] == 4
    tsv = open(os.path.join(out, "train.tsv")).read().splitlines()
    assert tsv[0] == os.path.abspath(ls)
    rel, n = tsv[1].split("\t")
    assert rel.startswith("train-clean-100/") and int(n) == sf.info(os.path.join(ls, rel)).frames
    wrd = open(os.path.join(out, "train.wrd")).readline().strip()
    ltr = open(os.path.join(out, "train.ltr")).readline().strip()
    assert ltr == " ".join(wrd.replace(" ", "|")) + " |"  # fairseq's libri_labels.py format
    from fairseq.data import Dictionary

    d = Dictionary.load(os.path.join(out, "dict.ltr.txt"))
    assert all(d.index(c) != d.unk() for c in ltr.split())


def test_bad_tree_names_the_file(corpus, tmp_path):
    from ae_hubert.common.errors import AeHubertError
    from ae_hubert.corpus.librispeech import prepare_librispeech

    ls, _ = fake_librispeech(corpus, str(tmp_path / "raw"))
    trans = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(ls, "dev-clean"))
                   for f in fs if f.endswith(".trans.txt"))[0]
    with open(trans, "a") as f:
        f.write("9999-1-0001 GHOST WORDS\n")
    with pytest.raises(AeHubertError, match=r"trans\.txt:\d+: 9999-1-0001\.flac not found"):
        prepare_librispeech(ls, str(tmp_path / "data"))


def test_recipe_end_to_end_at_toy_scale(corpus, tmp_path):
    ls, ll = fake_librispeech(corpus, str(tmp_path / "raw"))
    work = str(tmp_path / "work")
    env = dict(os.environ, LS=ls, LL=ll, WORK=work, SCHEDULES="standard_toy", FT_CONFIG="finetune/toy_cpu",
               KS="0,2", AE_HUBERT=os.path.join(BIN, "ae-hubert"), PATH=BIN + os.pathsep + os.environ["PATH"],
               SWEEP_OVERRIDES="optimization.max_update=2 dataset.validate_interval_updates=2",
               PROBE_ARGS="--max-utterances 8 --k 5 --ctc-steps 5")
    script = os.path.join(REPO, "examples", "librispeech", "run.sh")
    cmd = ["bash", script, "optimization.max_update=4", "dataset.validate_interval_updates=4",
           "checkpoint.save_interval_updates=4"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for it in ("iter1", "iter2"):
        assert os.path.isfile(os.path.join(work, "standard_toy", it, "checkpoints", "checkpoint_last.pt"))
    assert os.path.isfile(os.path.join(work, "probe", "standard_toy", "over_updates.png"))
    sweep = open(os.path.join(work, "sweep", "standard_toy", "sweep.csv")).read().splitlines()
    assert sweep[0].startswith("k,mode,dev_clean_wer") and [row.split(",")[0] for row in sweep[1:]] == ["0", "2"]
    log = open(os.path.join(work, "sweep", "standard_toy", "k2", "train.log")).read()
    assert "dataset.train_subset=train_10h" in log and "reinit the top 2" in log
    # one self-contained page for the whole recipe: schedule, probes (plots embedded), sweep, times
    out = subprocess.run([os.path.join(BIN, "ae-hubert"), "report", work], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    html = open(out.stdout.strip()).read()
    for text in ("Schedule standard_toy", "Layer probes: probe/standard_toy",
                 "Reset sweep: sweep/standard_toy", "dev_clean WER", "Run times", "iter2.train"):
        assert text in html, text
    assert html.count("data:image/png;base64,") >= 4 and "src=\"http" not in html
    # two sharded dump processes at once concatenate to the unsharded dump
    data, ckpt = os.path.join(work, "data"), os.path.join(work, "standard_toy", "iter1", "checkpoints",
                                                          "checkpoint_last.pt")
    dump = [os.path.join(BIN, "ae-hubert"), "dump", "hubert", "--tsv-dir", data, "--split", "train", "--ckpt", ckpt,
            "--layer", "3"]
    procs = [subprocess.Popen(dump + ["--out-dir", str(tmp_path / "two"), "--nshard", "2", "--rank", str(i)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in (0, 1)]
    assert [p.wait() for p in procs] == [0, 0]
    subprocess.run(dump + ["--out-dir", str(tmp_path / "one")], check=True, capture_output=True)
    two = np.concatenate([np.load(tmp_path / "two" / f"train_{i}_2.npy") for i in (0, 1)])
    np.testing.assert_array_equal(two, np.load(tmp_path / "one" / "train_0_1.npy"))
    lens = [open(tmp_path / "two" / f"train_{i}_2.len").read().split() for i in (0, 1)]
    assert lens[0] + lens[1] == open(tmp_path / "one" / "train_0_1.len").read().split()


def test_a_bad_file_in_the_last_split_leaves_nothing_written(corpus, tmp_path):
    """Every split is read and every file checked before any is written: a refusal in the last split
    (test-other, 8 kHz audio) leaves no earlier split's files behind; a chapter with audio but no
    transcript is refused, not dropped."""
    from ae_hubert.common.errors import AeHubertError
    from ae_hubert.corpus.librispeech import prepare_librispeech

    ls, _ = fake_librispeech(corpus, str(tmp_path / "raw"))
    flac = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(ls, "test-other"))
                  for f in fs if f.endswith(".flac"))[-1]
    sf.write(flac, np.zeros(8000, dtype=np.float32), 8000, format="FLAC")
    out = tmp_path / "data"
    with pytest.raises(AeHubertError, match="sample rate 8000"):
        prepare_librispeech(ls, str(out))
    assert not out.exists() or not os.listdir(out)
    sf.write(flac, np.zeros(16000, dtype=np.float32), 16000, format="FLAC")
    trans = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(ls, "dev-other"))
                   for f in fs if f.endswith(".trans.txt"))[0]
    os.remove(trans)
    with pytest.raises(AeHubertError, match="audio but no <spk>-<chapter>.trans.txt") as e:
        prepare_librispeech(ls, str(out))
    assert os.path.dirname(trans) in str(e.value)
    assert not out.exists() or not os.listdir(out)
