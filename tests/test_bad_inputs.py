"""Every command refuses bad input up front: exit status 2, one line naming the file/line/field,
no traceback, and no output left that looks finished. Table-driven over every subcommand."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from conftest import BIN
from ae_hubert.cli import main


def _files(c):
    """Bad files, built once per test from the shared fixtures."""
    t = c["tmp"]
    feat = c["feat"]
    bad = {}

    def featdir(name, npy=None, lens=None):
        d = t / name
        d.mkdir()
        src_npy, src_len = os.path.join(feat, "valid_0_1.npy"), os.path.join(feat, "valid_0_1.len")
        (d / "valid_0_1.npy").write_bytes(open(src_npy, "rb").read() if npy is None else npy)
        (d / "valid_0_1.len").write_text(open(src_len).read() if lens is None else lens)
        return str(d)

    bad["empty_npy"] = featdir("empty_npy", npy=b"")
    lens = open(os.path.join(feat, "valid_0_1.len")).read().split()
    bad["len_sum"] = featdir("len_sum", lens="\n".join(lens[:-1]) + "\n")
    bad["len_negative"] = featdir("len_negative", lens="\n".join(["-3"] + lens[1:]) + "\n")
    x = np.load(os.path.join(feat, "valid_0_1.npy"))
    nan = x.copy()
    nan[int(lens[0]) + 5, 3] = np.nan  # frame 6 of utterance 2
    d = t / "nan"
    d.mkdir()
    np.save(d / "valid_0_1.npy", nan)
    shutil.copy(os.path.join(feat, "valid_0_1.len"), d / "valid_0_1.len")
    bad["nan"] = str(d)
    d = t / "dim"
    d.mkdir()
    np.save(d / "valid_0_1.npy", x[:, :13])
    shutil.copy(os.path.join(feat, "valid_0_1.len"), d / "valid_0_1.len")
    bad["dim"] = str(d)
    (t / "garbage.bin").write_bytes(b"not a pickle at all")
    bad["garbage"] = str(t / "garbage.bin")
    torch.save([1, 2, 3], t / "list.pt")
    torch.save(None, t / "none.pt")
    bad["list_pt"], bad["none_pt"] = str(t / "list.pt"), str(t / "none.pt")
    (t / "file").write_text("a file where a directory is expected\n")
    bad["under_file"] = str(t / "file" / "out")
    # a manifest with a clip too short for one feature frame
    short = t / "short"
    short.mkdir()
    import soundfile as sf

    sf.write(short / "s.wav", np.zeros(300, dtype=np.float32), 16000)
    (short / "train.tsv").write_text(f"{short}\ns.wav\t300\n")
    bad["short"] = str(short)
    # labels: 100 Hz MFCC labels, and the same lines in another order
    km = open(os.path.join(c["lab"], "valid.km")).read().splitlines()
    (t / "shuffled.km").write_text("\n".join(km[1:] + km[:1]) + "\n")
    bad["shuffled_km"] = str(t / "shuffled.km")
    # a label dir without dict.km.txt
    nodict = t / "nodict"
    nodict.mkdir()
    bad["nodict"] = str(nodict)
    # data without dict.ltr.txt (fine-tuning)
    nod = t / "noltrdict"
    nod.mkdir()
    for f in os.listdir(c["corpus"]):
        if f.endswith((".tsv", ".ltr", ".wrd")):
            shutil.copy(os.path.join(c["corpus"], f), nod / f)
    bad["no_ltr_dict"] = str(nod)
    state = torch.load(c["ckpt"], map_location="cpu", weights_only=False)
    state["model"]["post_extract_proj.weight"] = torch.zeros(3, 3)  # weights that do not fit the config
    torch.save(state, t / "shape.pt")
    bad["shape_pt"] = str(t / "shape.pt")
    binm = t / "binmanifest"
    binm.mkdir()
    (binm / "train.tsv").write_bytes(b"\xaa\xbb\x00\xff" * 10)
    bad["bin_manifest"] = str(binm)
    textdict = t / "textdict"
    textdict.mkdir()
    (textdict / "dict.km.txt").write_text("0\n1\n")
    bad["text_dict"] = str(textdict)
    # a manifest whose last wav is truncated (its header says fewer samples than the manifest)
    trunc = t / "truncated"
    trunc.mkdir()
    lines = open(os.path.join(c["corpus"], "valid.tsv")).read().splitlines()
    root, rows = lines[0], lines[1:]
    last_rel, last_n = rows[-1].split("\t")
    data = open(os.path.join(root, last_rel), "rb").read()
    (trunc / "last.wav").write_bytes(data[:len(data) // 2])
    (trunc / "valid.tsv").write_text("\n".join([str(trunc)] + [f"{os.path.join(root, r.split(chr(9))[0])}\t"
                                                               f"{r.split(chr(9))[1]}" for r in rows[:-1]]
                                               + [f"last.wav\t{last_n}"]) + "\n")
    shutil.copy(os.path.join(c["corpus"], "train.tsv"), trunc / "train.tsv")  # its root is absolute
    bad["truncated"] = str(trunc)
    # a feature dir where a directory sits at the name of the .len file of the pair
    clash = t / "clash"
    (clash / "valid_0_1.len").mkdir(parents=True)
    bad["clash"] = str(clash)
    # fewer transcript lines than utterances (spm)
    few = t / "few"
    few.mkdir()
    for f in os.listdir(c["corpus"]):
        if f.endswith((".tsv", ".wrd", ".ltr")) or f.startswith("dict."):
            shutil.copy(os.path.join(c["corpus"], f), few / f)
    valid_wrd = open(few / "valid.wrd").read().splitlines()
    (few / "valid.wrd").write_text("\n".join(valid_wrd[:-3]) + "\n")
    bad["few_wrd"] = str(few)
    # a label dictionary with a negative count on its 3rd line
    negdict = t / "negdict"
    negdict.mkdir()
    rows = open(os.path.join(c["lab"], "dict.km.txt")).read().splitlines()
    rows[2] = rows[2].split()[0] + " -1"
    (negdict / "dict.km.txt").write_text("\n".join(rows) + "\n")
    bad["neg_dict"] = str(negdict)
    junk = t / "junkwork"
    junk.mkdir()
    (junk / "records.json").write_text('[1, "x", null]\n')
    bad["junk_records"] = str(junk)
    (junk / ".stages").mkdir()
    onedict = t / "onedict"
    onedict.mkdir()
    (onedict / "dict.km.txt").write_text("0 1\n")
    bad["one_dict"] = str(onedict)
    shortspk = t / "shortspk"
    shortspk.mkdir()
    for f in os.listdir(c["corpus"]):
        if os.path.isfile(os.path.join(c["corpus"], f)):
            shutil.copy(os.path.join(c["corpus"], f), shortspk / f)
    spk = (shortspk / "valid.spk").read_text().splitlines()
    (shortspk / "valid.spk").write_text("\n".join(spk[:3]) + "\n")
    bad["short_spk"] = str(shortspk)
    # a LibriSpeech root with a dev-clean chapter, and an empty Libri-light directory
    import soundfile as sf

    chapter = t / "ls_root" / "dev-clean" / "1" / "2"
    chapter.mkdir(parents=True)
    sf.write(chapter / "1-2-0000.flac", np.zeros(8000, dtype=np.float32), 16000)
    (chapter / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    (t / "empty_ll").mkdir()
    bad["ls_root"], bad["empty_ll"] = str(t / "ls_root"), str(t / "empty_ll")
    short = t / "ls_short" / "dev-clean" / "1" / "2"  # a 300-sample clip: no feature frame in it
    short.mkdir(parents=True)
    sf.write(short / "1-2-0000.flac", np.zeros(300, dtype=np.float32), 16000)
    (short / "1-2.trans.txt").write_text("1-2-0000 HI\n")
    bad["ls_short"] = str(t / "ls_short")
    cut = t / "ls_cut" / "dev-clean" / "1" / "2"  # a FLAC cut in half: its header keeps the whole length
    cut.mkdir(parents=True)
    sf.write(cut / "1-2-0000.flac", np.random.default_rng(0).normal(0, 0.1, 48000).astype(np.float32), 16000)
    whole = (cut / "1-2-0000.flac").read_bytes()
    (cut / "1-2-0000.flac").write_bytes(whole[:len(whole) // 2])
    (cut / "1-2.trans.txt").write_text("1-2-0000 HI\n")
    bad["ls_cut"] = str(t / "ls_cut")
    twice = t / "ls_twice" / "dev-clean" / "1" / "2"  # one recording with two transcript lines
    twice.mkdir(parents=True)
    sf.write(twice / "1-2-0000.flac", np.zeros(8000, dtype=np.float32), 16000)
    (twice / "1-2.trans.txt").write_text("1-2-0000 HI\n1-2-0000 HI AGAIN\n")
    bad["ls_twice"] = str(t / "ls_twice")
    (t / "other_choice.json").write_text(json.dumps({"chosen": 2, "ckpt": "/elsewhere/checkpoint_best.pt",
                                                     "ckpt_weights": "0" * 40}))
    bad["other_choice"] = str(t / "other_choice.json")
    odd_phone = t / "odd_phone"  # valid's first line names a phone dict.phn.txt lacks; train is fine
    odd_phone.mkdir()
    for f in ("train.tsv", "valid.tsv", "train.phn", "valid.phn", "dict.phn.txt"):
        shutil.copy(os.path.join(c["corpus"], f), odd_phone / f)
    (odd_phone / "valid.phn").write_text("QQQ " + (odd_phone / "valid.phn").read_text())
    bad["odd_phone"] = str(odd_phone)
    few_spm = t / "few_spm"  # transcripts only (spm reads .wrd/.ltr and the manifests)
    few_spm.mkdir()
    for f in os.listdir(c["corpus"]):
        if f.endswith((".tsv", ".wrd")):
            shutil.copy(os.path.join(c["corpus"], f), few_spm / f)
    bad["few_spm"] = str(few_spm)
    # the corpus and the checkpoint reached through names with a comma (hydra reads a comma as a list)
    os.symlink(c["corpus"], t / "da,ta")
    os.symlink(c["ckpt"], t / "ck,pt.pt")
    bad["comma_data"], bad["comma_ckpt"] = str(t / "da,ta"), str(t / "ck,pt.pt")
    return bad


def schedule(c, text):
    p = c["tmp"] / f"s{abs(hash(text)) % 10**8}.yaml"
    p.write_text(text)
    return str(p)


GOOD_ITERS = "iterations:\n  - targets: [{source: mfcc, k: 10}]\n    max_update: 5\n"

# (id, argv builder, expected text in the error line, paths that must not exist afterwards)
CASES = [
    ("corpus-utterances", lambda c, b: ["toy-corpus", f"{c['tmp']}/tc", "--utterances", "5"], ">= 10", ["tc"]),
    ("corpus-voice-format", lambda c, b: ["toy-corpus", f"{c['tmp']}/tc", "--voices", "bogus"],
     "expected 'flite:NAME'", ["tc"]),
    ("corpus-voice-unknown", lambda c, b: ["toy-corpus", f"{c['tmp']}/tc", "--voices", "espeak:xx-nope"],
     "--voices", ["tc"]),
    ("corpus-flite-voice-unknown", lambda c, b: ["toy-corpus", f"{c['tmp']}/tc", "--voices", "flite:nosuch"],
     "'flite:nosuch': unknown flite voice (this flite has", ["tc"]),
    ("corpus-workers", lambda c, b: ["toy-corpus", f"{c['tmp']}/tc", "--workers", "0"], "--workers", ["tc"]),
    ("study-corpus-utterances", lambda c, b: ["study-corpus", f"{c['tmp']}/sc", "--utterances", "12"], ">= 30",
     ["sc"]),
    ("study-corpus-vocabulary", lambda c, b: ["study-corpus", f"{c['tmp']}/sc", "--vocabulary", "5"], ">= 50",
     ["sc"]),
    ("study-corpus-vocabulary-huge", lambda c, b: ["study-corpus", f"{c['tmp']}/sc", "--vocabulary", "1000000",
                                                   "--utterances", "30"], "English words have a CMU pronunciation",
     ["sc"]),
    ("study-only-seeds", lambda c, b: ["study", "--work-dir", f"{c['tmp']}/sw", "--only-seeds", "2,0"], ">= 1",
     ["sw"]),
    ("study-only-seeds-beyond", lambda c, b: ["study", "--work-dir", f"{c['tmp']}/sw", "--only-seeds", "2,9"],
     "seeds 1..3", ["sw"]),
    ("study-only-seeds-twice", lambda c, b: ["study", "--work-dir", f"{c['tmp']}/sw", "--only-seeds", "2,2"],
     "duplicate", ["sw"]),
    ("study-pack-not-a-work-dir", lambda c, b: ["study-pack", c["corpus"], f"{c['tmp']}/pk"], "not a work dir",
     ["pk"]),
    ("study-unpack-not-a-pack", lambda c, b: ["study-unpack", c["corpus"], f"{c['tmp']}/uw"], "not a pack", ["uw"]),
    ("dump-rank", lambda c, b: ["dump", "mfcc", "--tsv-dir", c["corpus"], "--split", "valid", "--out-dir",
                                f"{c['tmp']}/o", "--nshard", "2", "--rank", "2"], "--rank 2", ["o"]),
    ("dump-rank-negative", lambda c, b: ["dump", "mfcc", "--tsv-dir", c["corpus"], "--split", "valid", "--out-dir",
                                         f"{c['tmp']}/o", "--rank", "-1"], "--rank", ["o"]),
    ("dump-nshard-0", lambda c, b: ["dump", "mfcc", "--tsv-dir", c["corpus"], "--split", "valid", "--out-dir",
                                    f"{c['tmp']}/o", "--nshard", "0"], "--nshard", ["o"]),
    ("dump-nshard-too-many", lambda c, b: ["dump", "mfcc", "--tsv-dir", c["corpus"], "--split", "valid",
                                           "--out-dir", f"{c['tmp']}/o", "--nshard", "1000", "--rank", "3"],
     "more than its", ["o"]),
    ("dump-no-manifest", lambda c, b: ["dump", "mfcc", "--tsv-dir", c["corpus"], "--split", "nope", "--out-dir",
                                       f"{c['tmp']}/o"], "nope.tsv: manifest not found", ["o"]),
    ("dump-short-clip", lambda c, b: ["dump", "mfcc", "--tsv-dir", b["short"], "--split", "train", "--out-dir",
                                      f"{c['tmp']}/o"], "train.tsv:2", ["o"]),
    ("dump-hubert-short-clip", lambda c, b: ["dump", "hubert", "--ckpt", c["ckpt"], "--layer", "2", "--tsv-dir",
                                             b["short"], "--split", "train", "--out-dir", f"{c['tmp']}/o"],
     "train.tsv:2", ["o"]),
    ("dump-hubert-mfcc-option", lambda c, b: ["dump", "mfcc", "--tsv-dir", c["corpus"], "--split", "valid",
                                              "--out-dir", f"{c['tmp']}/o", "--layer", "3"], "unrecognized", ["o"]),
    ("dump-hubert-no-layer", lambda c, b: ["dump", "hubert", "--ckpt", c["ckpt"], "--tsv-dir", c["corpus"],
                                           "--split", "valid", "--out-dir", f"{c['tmp']}/o"], "--layer", ["o"]),
    ("dump-hubert-layer-0", lambda c, b: ["dump", "hubert", "--ckpt", c["ckpt"], "--layer", "0", "--tsv-dir",
                                          c["corpus"], "--split", "valid", "--out-dir", f"{c['tmp']}/o"],
     ">= 1", ["o"]),
    ("dump-hubert-layer-too-high", lambda c, b: ["dump", "hubert", "--ckpt", c["ckpt"], "--layer", "99",
                                                 "--tsv-dir", c["corpus"], "--split", "valid", "--out-dir",
                                                 f"{c['tmp']}/o"], "out of range", ["o"]),
    ("dump-hubert-layer-from-missing", lambda c, b: ["dump", "hubert", "--ckpt", c["ckpt"], "--layer-from",
                                                     f"{c['tmp']}/none.json", "--tsv-dir", c["corpus"], "--split",
                                                     "valid", "--out-dir", f"{c['tmp']}/o"],
     "layer choice not found", ["o"]),
    ("dump-hubert-layer-from-another-checkpoint", lambda c, b: ["dump", "hubert", "--ckpt", c["ckpt"], "--layer-from",
                                                                b["other_choice"], "--tsv-dir", c["corpus"], "--split",
                                                                "valid", "--out-dir", f"{c['tmp']}/o"],
     "other_choice.json: layer 2 was chosen for another checkpoint (/elsewhere/checkpoint_best.pt)", ["o"]),
    ("dump-hubert-ckpt-list", lambda c, b: ["dump", "hubert", "--ckpt", b["list_pt"], "--layer", "2", "--tsv-dir",
                                            c["corpus"], "--split", "valid", "--out-dir", f"{c['tmp']}/o"],
     "list.pt: not a fairseq checkpoint", ["o"]),
    ("dump-hubert-ckpt-none", lambda c, b: ["dump", "hubert", "--ckpt", b["none_pt"], "--layer", "2", "--tsv-dir",
                                            c["corpus"], "--split", "valid", "--out-dir", f"{c['tmp']}/o"],
     "none.pt: not a fairseq checkpoint", ["o"]),
    ("dump-hubert-ckpt-garbage", lambda c, b: ["dump", "hubert", "--ckpt", b["garbage"], "--layer", "2",
                                               "--tsv-dir", c["corpus"], "--split", "valid", "--out-dir",
                                               f"{c['tmp']}/o"], "garbage.bin: not a fairseq checkpoint", ["o"]),
    *[(f"kmeans-{name}", (lambda extra: lambda c, b: ["kmeans", "--feat-dir", c["feat"], "--split", "valid",
                                                      "--out", f"{c['tmp']}/km.bin", *extra])(extra), text,
       ["km.bin"]) for name, extra, text in [
        ("k-1", ["--k", "1"], "--k: must be an integer >= 2"),
        ("k-text", ["--k", "a"], "--k: must be an integer"),
        ("k-too-many", ["--k", "100000"], "larger than the number of sampled frames"),
        ("percent-2", ["--k", "5", "--percent", "2"], "--percent: must be a fraction in (0, 1]"),
        ("percent-50", ["--k", "5", "--percent", "50"], "--percent"),
        ("percent-0", ["--k", "5", "--percent", "0"], "--percent"),
        ("max-iter-0", ["--k", "5", "--max-iter", "0"], "--max-iter"),
        ("chunk-frames-0", ["--k", "5", "--streamed", "--chunk-frames", "0"], "--chunk-frames"),
        ("nshard-0", ["--k", "5", "--nshard", "0"], "--nshard")]],
    *[(f"kmeans-{name}", (lambda key: lambda c, b: ["kmeans", "--feat-dir", b[key], "--split", "valid", "--k", "5",
                                                    "--out", f"{c['tmp']}/km.bin"])(key), text, ["km.bin"])
      for name, key, text in [
        ("empty-npy", "empty_npy", "valid_0_1.npy: not a readable .npy"),
        ("len-sum", "len_sum", "valid_0_1.len: frame counts sum"),
        ("len-negative", "len_negative", "valid_0_1.len:1: frame count must be >= 1"),
        ("nan", "nan", "utterance 2: features contain NaN or inf (frame 6 of the utterance)")]],
    ("kmeans-out-under-file", lambda c, b: ["kmeans", "--feat-dir", c["feat"], "--split", "valid", "--k", "5",
                                            "--out", f"{b['under_file']}/km.bin"], "cannot create output", []),
    ("kmeans-out-is-dir", lambda c, b: ["kmeans", "--feat-dir", c["feat"], "--split", "valid", "--k", "5",
                                        "--out", str(c["tmp"])], "not a directory", []),
    ("label-nshard-0", lambda c, b: ["label", "--feat-dir", c["feat"], "--split", "valid", "--nshard", "0",
                                     "--km", c["km"], "--out-dir", f"{c['tmp']}/lab"], "--nshard", ["lab"]),
    ("label-km-garbage", lambda c, b: ["label", "--feat-dir", c["feat"], "--split", "valid", "--km", b["garbage"],
                                       "--out-dir", f"{c['tmp']}/lab"], "not a joblib k-means file", ["lab"]),
    ("label-dim", lambda c, b: ["label", "--feat-dir", b["dim"], "--split", "valid", "--km", c["km"],
                                "--out-dir", f"{c['tmp']}/lab"], "features have 13 dims", ["lab"]),
    ("label-nan", lambda c, b: ["label", "--feat-dir", b["nan"], "--split", "valid", "--km", c["km"],
                                "--out-dir", f"{c['tmp']}/lab"],
     "valid_0_1.npy: utterance 2: features contain NaN or inf (frame 6 of the utterance)", ["lab"]),
    ("label-name-path", lambda c, b: ["label", "--feat-dir", c["feat"], "--split", "valid", "--km", c["km"],
                                      "--out-dir", f"{c['tmp']}/lab", "--name", "../x"], "--name", ["x", "lab/dict.x.txt"]),
    ("quality-swapped", lambda c, b: ["quality", "--km", f"{c['corpus']}/valid.phn", "--phn", f"{c['lab']}/valid.km"],
     "valid.phn:1: ", []),
    ("label-km-is-dir", lambda c, b: ["label", "--feat-dir", c["feat"], "--split", "valid", "--km", c["corpus"],
                                      "--out-dir", f"{c['tmp']}/lab"], "a directory, where the k-means file belongs",
     ["lab"]),
    ("cluster-quality-layers-without-ckpt", lambda c, b: ["cluster-quality", "--data", c["corpus"], "--k", "5",
                                                          "--layers", "1"], "--layers: a checkpoint's layers", []),
    ("quality-rate-0", lambda c, b: ["quality", "--km", f"{c['lab']}/valid.km", "--phn", f"{c['corpus']}/valid.phn",
                                     "--km-rate", "0"], "--km-rate: must be a frame rate", []),
    ("quality-wrong-rate", lambda c, b: ["quality", "--km", f"{c['lab']}/valid.km", "--phn",
                                         f"{c['corpus']}/valid.phn", "--km-rate", "50"], "wrong --km-rate", []),
    ("quality-other-utterances", lambda c, b: ["quality", "--km", b["shuffled_km"], "--phn",
                                               f"{c['corpus']}/valid.phn"], "not of the same utterances", []),
    ("quality-line-count", lambda c, b: ["quality", "--km", f"{c['lab']}/valid.km", "--phn",
                                         f"{c['corpus']}/train.phn"], "lines but", []),
    ("quality-json-under-file", lambda c, b: ["quality", "--km", f"{c['lab']}/valid.km", "--phn",
                                              f"{c['corpus']}/valid.phn", "--json", f"{b['under_file']}/q.json"],
     "cannot create output", []),
    *[(f"iterate-{name}", (lambda text: lambda c, b: ["iterate", "--schedule", schedule(c, text), "--work-dir",
                                                      f"{c['tmp']}/w", "--data", c["corpus"]])(text), err, ["w"])
      for name, text, err in [
        ("yaml-syntax", "iterations: [\n  - {targets: \n", "not a readable YAML schedule"),
        ("not-a-mapping", "- 1\n- 2\n", "expected a mapping"),
        ("unknown-init", GOOD_ITERS.replace("max_update", "intit: scratch\n    max_update"),
         "iterations[0].intit: unknown key (did you mean init?)"),
        ("unknown-reset", GOOD_ITERS.replace("max_update", "reset_top_layer: 1\n    max_update"),
         "did you mean reset_top_layers?"),
        ("unknown-percent", GOOD_ITERS.replace("k: 10}", "k: 10, precent: 0.5}"), "did you mean percent?"),
        ("string-bool", "keep_features: 'perhaps'\n" + GOOD_ITERS, "keep_features: expected true or false"),
        ("k-type", GOOD_ITERS.replace("k: 10", "k: ten"), "targets[0].k: expected an integer"),
        ("name-path", GOOD_ITERS.replace("- targets", "- name: ../../evil\n    targets"), "names files"),
        ("target-name-path", GOOD_ITERS.replace("k: 10}", "k: 10, name: a/b}"), "names files"),
        ("nshard-too-many", "nshard: 1000\n" + GOOD_ITERS, "nshard: 1000 shards"),
        ("hydra-override", "overrides: [optimization.max_updat=5]\n" + GOOD_ITERS,
         "did you mean optimization.max_update?"),
        ("model-option", "overrides: [model.encoder_layerz=3]\n" + GOOD_ITERS, "did you mean model.encoder_layers?"),
        ("percent", GOOD_ITERS.replace("k: 10}", "k: 10, percent: 50}"), "a fraction in (0, 1]"),
        ("iterations-type", "iterations: 3\n", "expected a list")]],
    ("iterate-cli-override", lambda c, b: ["iterate", "--schedule", schedule(c, GOOD_ITERS), "--work-dir",
                                           f"{c['tmp']}/w", "--data", c["corpus"], "common.seeed=3"],
     "did you mean common.seed?", ["w"]),
    ("choose-layer-candidate", lambda c, b: ["choose-layer", "--ckpt", c["ckpt"], "--data", c["corpus"], "--k", "5",
                                             "--candidates", "9", "--json", f"{c['tmp']}/c.json"],
     "out of range", ["c.json"]),
    ("choose-layer-candidates-text", lambda c, b: ["choose-layer", "--ckpt", c["ckpt"], "--data", c["corpus"],
                                                   "--k", "5", "--candidates", "a"], "--candidates", []),
    ("choose-layer-train-utt", lambda c, b: ["choose-layer", "--ckpt", c["ckpt"], "--data", c["corpus"], "--k", "5",
                                             "--train-utterances", "0"], "--train-utterances", []),
    ("init-continue-no-dict", lambda c, b: ["init-continue", "--prev", c["ckpt"], "--label-dir", b["nodict"],
                                            "--out", f"{c['tmp']}/init.pt"], "dict.km.txt: label dictionary not found",
     ["init.pt"]),
    ("init-continue-model-key", lambda c, b: ["init-continue", "--prev", c["ckpt"], "--label-dir", c["lab"],
                                              "--out", f"{c['tmp']}/init.pt", "model.encoder_layerz=3"],
     "did you mean model.encoder_layers?", ["init.pt"]),
    ("init-continue-reset", lambda c, b: ["init-continue", "--prev", c["ckpt"], "--label-dir", c["lab"],
                                          "--out", f"{c['tmp']}/init.pt", "--reset-top-layers", "-1"],
     "--reset-top-layers", ["init.pt"]),
    ("probe-max-utt", lambda c, b: ["probe", "--ckpt", c["ckpt"], "--data", c["corpus"], "--out", f"{c['tmp']}/p",
                                    "--max-utterances", "0"], "--max-utterances", ["p"]),
    ("probe-k", lambda c, b: ["probe", "--ckpt", c["ckpt"], "--data", c["corpus"], "--out", f"{c['tmp']}/p",
                              "--k", "1"], "--k", ["p"]),
    ("decode-max-utt", lambda c, b: ["decode", "--ckpt", c["ckpt"], "--data", c["corpus"], "--split", "valid",
                                     "--max-utterances", "0"], "--max-utterances", []),
    ("decode-pretrained", lambda c, b: ["decode", "--ckpt", c["ckpt"], "--data", c["corpus"], "--split", "valid",
                                        "--out", f"{c['tmp']}/d"], "not a self-contained fine-tuned", ["d"]),
    ("sweep-ks-text", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "a",
                                    "--work-dir", f"{c['tmp']}/s"], "--ks", ["s"]),
    ("sweep-ks-duplicate", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "0,0",
                                         "--work-dir", f"{c['tmp']}/s"], "duplicate", ["s"]),
    ("sweep-ks-too-deep", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "0,9",
                                        "--work-dir", f"{c['tmp']}/s"], "6 transformer layers", ["s"]),
    ("sweep-no-dict", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", b["no_ltr_dict"], "--ks", "0",
                                    "--work-dir", f"{c['tmp']}/s"], "dict.ltr.txt", ["s"]),
    *[(f"sweep-{name}", (lambda o: lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "0",
                                                 "--work-dir", f"{c['tmp']}/s", o])(o), text, ["s"])
      for name, o, text in [
        ("mask-prob", "model.mask_prob=1.5", "model.mask_prob: 1.5 is not a probability in [0, 1]"),
        ("lr-negative", "optimization.lr=[-1]", "optimization.lr: -1.0 is not a positive learning rate"),
        ("max-update-negative", "optimization.max_update=-3", "optimization.max_update: -3; give at least 1"),
        ("restore-file", "checkpoint.restore_file=/x.pt", "the sweep sets checkpoint.restore_file"),
        ("continue-once", "checkpoint.continue_once=/x.pt", "the sweep sets checkpoint.continue_once"),
        ("finetune-from", "checkpoint.finetune_from_model=/x.pt", "the sweep sets checkpoint.finetune_from_model"),
        ("run-dir", "hydra.run.dir=/x", "hydra.run.dir: where each run writes (its directory, logs, tensorboard) is "
                                        "set by the driver"),
        ("log-file", "hydra.job_logging.handlers.file.filename=/x.json", "hydra.job_logging.handlers.file.filename: "
                                                                          "where each run writes"),
        ("label-dir", "task.label_dir=/x", "the sweep sets task.label_dir"),
        ("no-weights", "model.no_pretrained_weights=true", "the sweep sets model.no_pretrained_weights")]],
    *[(f"iterate-{name}", (lambda o: lambda c, b: ["iterate", "--schedule", schedule(c, GOOD_ITERS), "--work-dir",
                                                   f"{c['tmp']}/w", "--data", c["corpus"], "--dry-run", o])(o),
       text, ["w"])
      for name, o, text in [
        ("lr-zero", "optimization.lr=[0]", "optimization.lr: 0.0 is not a positive learning rate"),
        ("restore-file", "checkpoint.restore_file=/x.pt", "checkpoint.restore_file is set by the schedule"),
        ("continue-once", "checkpoint.continue_once=/x.pt", "checkpoint.continue_once is set by the schedule"),
        ("run-dir", "hydra.run.dir=/x", "hydra.run.dir: where each run writes"),
        ("tensorboard", "common.tensorboard_logdir=/x", "common.tensorboard_logdir: where each run writes")]],
    ("iterate-interpolated-work-dir", lambda c, b: ["iterate", "--schedule", schedule(c, GOOD_ITERS), "--work-dir",
                                                    f"{c['tmp']}/w${{common.seed}}", "--data", c["corpus"]],
     "hydra overrides cannot carry this path (it contains $ { })", ["w${common.seed}", "w1"]),
    ("sweep-restart-twice", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "0",
                                          "--work-dir", f"{c['tmp']}/s", "--restart", "0", "--restart", "0"],
     "--restart given twice; give it once", ["s"]),
    ("sweep-override", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "0",
                                     "--work-dir", f"{c['tmp']}/s", "optimization.max_updat=3"],
     "did you mean optimization.max_update?", ["s"]),
    ("sweep-max-tokens", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "0",
                                       "--work-dir", f"{c['tmp']}/s", "dataset.max_tokens=1000"],
     "reset-sweep: dataset.max_tokens=1000 is smaller than a training utterance", ["s"]),
    ("sweep-group-override", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "0",
                                           "--work-dir", f"{c['tmp']}/s", "model={reset_top_layers:2}"],
     "a whole group sets model.no_pretrained_weights, model.reset_mode, model.reset_top_layers, "
     "model.w2v_args, model.w2v_path", ["s"]),
    ("sweep-mask-length", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "0",
                                        "--work-dir", f"{c['tmp']}/s", "model.mask_length=400"],
     "reset-sweep: model.mask_length=400 frames is too long for the shortest", ["s"]),
    ("sweep-one-update", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "0",
                                       "--work-dir", f"{c['tmp']}/s", "optimization.max_update=1"],
     "optimization.max_update=1 is too few for lr_scheduler tri_stage", ["s"]),
    ("launch-nodes", lambda c, b: ["launch", "--schedule", "standard_toy", "--work-dir", f"{c['tmp']}/w",
                                   "--data", c["corpus"], "--nodes", "0"], "--nodes", ["w"]),
    ("launch-port", lambda c, b: ["launch", "--schedule", "standard_toy", "--work-dir", f"{c['tmp']}/w",
                                  "--data", c["corpus"], "--port", "70000"], "--port", ["w"]),
    ("export-missing", lambda c, b: ["export-stock", "--ckpt", f"{c['tmp']}/nope.pt", "--out", f"{c['tmp']}/e.pt"],
     "nope.pt: checkpoint not found", ["e.pt"]),
    ("spm-vocab", lambda c, b: ["spm", "--data", c["corpus"], "--vocab-size", "1"], "--vocab-size", []),
    ("librispeech-root", lambda c, b: ["librispeech", "--root", f"{c['tmp']}/nope", "--out", f"{c['tmp']}/ls"],
     "LibriSpeech root not found", ["ls"]),
    ("unknown-command", lambda c, b: ["frobnicate"], "invalid choice", []),
    ("study-pack-an-iterate-work-dir", lambda c, b: ["study-pack", b["junk_records"], f"{c['tmp']}/pk"],
     "not a study's work dir", ["pk"]),
    ("init-continue-one-label", lambda c, b: ["init-continue", "--prev", c["ckpt"], "--label-dir", b["one_dict"],
                                              "--out", f"{c['tmp']}/init.pt"], "1 label(s): a target needs K >= 2",
     ["init.pt"]),
    ("probe-short-spk", lambda c, b: ["probe", "--ckpt", c["ckpt"], "--data", b["short_spk"], "--out",
                                      f"{c['tmp']}/p", "--max-utterances", "8"],
     "valid.spk: 3 lines but the probe reads", []),
    ("report-junk-records", lambda c, b: ["report", b["junk_records"]], "not iteration records as iterate writes them",
     ["junkwork/report.html"]),
    ("iterate-non-ascii-work-dir", lambda c, b: ["iterate", "--schedule", schedule(c, GOOD_ITERS), "--work-dir",
                                                 f"{c['tmp']}/wörk", "--data", c["corpus"]],
     "hydra overrides cannot carry this path (it contains ö)", ["wörk"]),
    ("launch-comma-work-dir", lambda c, b: ["launch", "--schedule", schedule(c, GOOD_ITERS), "--work-dir",
                                            f"{c['tmp']}/a,b", "--data", c["corpus"], "--slurm", f"{c['tmp']}/sl"],
     "--work-dir", ["a,b", "sl"]),
    ("iterate-comma-data", lambda c, b: ["iterate", "--schedule", schedule(c, GOOD_ITERS), "--work-dir",
                                         f"{c['tmp']}/wc", "--data", b["comma_data"]],
     "da,ta: hydra overrides cannot carry this path (it contains ,)", ["wc"]),
    ("sweep-comma-data", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", b["comma_data"], "--ks", "0",
                                       "--work-dir", f"{c['tmp']}/swc"],
     "da,ta: hydra overrides cannot carry this path (it contains ,)", ["swc"]),
    ("sweep-comma-ckpt", lambda c, b: ["reset-sweep", "--ckpt", b["comma_ckpt"], "--data", c["corpus"], "--ks", "0",
                                       "--work-dir", f"{c['tmp']}/swc"], "hydra overrides cannot carry this path", ["swc"]),
    ("sweep-non-ascii-work-dir", lambda c, b: ["reset-sweep", "--ckpt", c["ckpt"], "--data", c["corpus"], "--ks", "0",
                                               "--work-dir", f"{c['tmp']}/swëep"], "it contains ë", ["swëep"]),
    # found by a hostile review
    ("dump-split-path", lambda c, b: ["dump", "mfcc", "--tsv-dir", c["corpus"], "--split", "../x/valid", "--out-dir",
                                      f"{c['tmp']}/o"], "--split", ["o"]),
    ("dump-binary-manifest", lambda c, b: ["dump", "mfcc", "--tsv-dir", b["bin_manifest"], "--split", "train",
                                           "--out-dir", f"{c['tmp']}/o"], "not UTF-8", ["o"]),
    ("dump-device", lambda c, b: ["dump", "hubert", "--ckpt", c["ckpt"], "--layer", "2", "--tsv-dir", c["corpus"],
                                  "--split", "valid", "--out-dir", f"{c['tmp']}/o", "--device", "bogus"], "--device",
     ["o"]),
    ("dump-device-cuda-99", lambda c, b: ["dump", "hubert", "--ckpt", c["ckpt"], "--layer", "2", "--tsv-dir",
                                          c["corpus"], "--split", "valid", "--out-dir", f"{c['tmp']}/o", "--device",
                                          "cuda:99"], "--device", ["o"]),
    ("dump-user-dir", lambda c, b: ["dump", "hubert", "--ckpt", c["ckpt"], "--layer", "2", "--tsv-dir", c["corpus"],
                                    "--split", "valid", "--out-dir", f"{c['tmp']}/o", "--user-dir", "/nonexistent"],
     "/nonexistent", ["o"]),
    ("dump-ckpt-shape", lambda c, b: ["dump", "hubert", "--ckpt", b["shape_pt"], "--layer", "2", "--tsv-dir",
                                      c["corpus"], "--split", "valid", "--out-dir", f"{c['tmp']}/o"],
     "does not match its own config", ["o"]),
    ("kmeans-seed-negative", lambda c, b: ["kmeans", "--feat-dir", c["feat"], "--split", "valid", "--k", "5",
                                           "--out", f"{c['tmp']}/km.bin", "--seed", "-1"], "--seed", ["km.bin"]),
    ("kmeans-seed-huge", lambda c, b: ["kmeans", "--feat-dir", c["feat"], "--split", "valid", "--k", "5",
                                       "--out", f"{c['tmp']}/km.bin", "--seed", str(2 ** 40)], "--seed", ["km.bin"]),
    ("kmeans-out-empty", lambda c, b: ["kmeans", "--feat-dir", c["feat"], "--split", "valid", "--k", "5",
                                       "--out", ""], "--out", []),
    ("kmeans-out-slash", lambda c, b: ["kmeans", "--feat-dir", c["feat"], "--split", "valid", "--k", "5",
                                       "--out", f"{c['tmp']}/newdir/"], "--out", ["newdir"]),
    ("kmeans-out-proc", lambda c, b: ["kmeans", "--feat-dir", c["feat"], "--split", "valid", "--k", "5",
                                      "--out", "/proc/km.bin"], "/proc", []),
    ("quality-tiny-rate", lambda c, b: ["quality", "--km", f"{c['lab']}/valid.km", "--phn", f"{c['corpus']}/valid.phn",
                                        "--km-rate", "1e-300"], "--km-rate", []),
    *[(f"iterate-{name}", (lambda text: lambda c, b: ["iterate", "--schedule", schedule(c, text), "--work-dir",
                                                      f"{c['tmp']}/w", "--data", c["corpus"]])(text), err, ["w"])
      for name, text, err in [
        ("owned-override", "overrides: [task.label_rate=50]\n" + GOOD_ITERS, "use targets[].source"),
        ("owned-save-dir", "overrides: [checkpoint.save_dir=/tmp/x]\n" + GOOD_ITERS, "checkpoint.save_dir is set"),
        ("name-records", GOOD_ITERS.replace("- targets", "- name: records.json\n    targets"), "names files"),
        ("interpolation", "seed: ${nope}\n" + GOOD_ITERS, "nope"),
        ("seed-huge", f"seed: {2 ** 40}\n" + GOOD_ITERS, "seed: must be <="),
        ("k-above-frames", GOOD_ITERS.replace("k: 10", "k: 100000"), "frames"),
        ("no-layers", "overrides: [model.encoder_layers=0]\n" + GOOD_ITERS, "at least one layer"),
        ("group-override", "overrides: ['task={labels: [zz]}']\n" + GOOD_ITERS, "task: a whole group sets"),
        ("empty-override", "overrides: ['']\n" + GOOD_ITERS, "overrides[0]: an empty override"),
        ("null-override", "overrides: [null]\n" + GOOD_ITERS, "overrides[0]: expected a string, got null"),
        ("name-number", "name: 010\n" + GOOD_ITERS, "name: expected a string, got 8 (quote it"),
        ("duplicate-key", "seed: 1\nseed: 2\n" + GOOD_ITERS, ":2: not a readable YAML schedule (found duplicate "
         "key seed)"),
        ("group-no-equals", "overrides: [task]\n" + GOOD_ITERS, "'task': expected KEY=VALUE"),
        ("mask-prob", "overrides: [model.mask_prob=1.5]\n" + GOOD_ITERS, "model.mask_prob: 1.5 is not a probability"),
        ("mask-length-0", "overrides: [model.mask_length=0]\n" + GOOD_ITERS, "model.mask_length=0: masked spans"),
        ("max-tokens-0", "overrides: [dataset.max_tokens=0]\n" + GOOD_ITERS, "dataset.max_tokens=0: must be >= 1"),
        ("crop-too-short", "overrides: [task.max_sample_size=100]\n" + GOOD_ITERS,
         "after cropping to task.max_sample_size=100"),
        ("mask-length", "overrides: [model.mask_length=400]\n" + GOOD_ITERS,
         "model.mask_length=400 frames is too long for the shortest train utterance"),
        ("max-tokens", "overrides: [dataset.max_tokens=1000]\n" + GOOD_ITERS,
         "dataset.max_tokens=1000 is smaller than a training utterance"),
        ("none-kept", "overrides: [task.min_sample_size=10000000]\n" + GOOD_ITERS, "no training utterance is kept"),
        ("update-freq-0", "overrides: ['optimization.update_freq=[0]']\n" + GOOD_ITERS,
         "optimization.update_freq[0]=0: must be >= 1"),
        ("no-save", "overrides: [checkpoint.no_save=true]\n" + GOOD_ITERS, "checkpoint.no_save is set by the schedule"),
        ("max-epoch", "overrides: [optimization.max_epoch=1]\n" + GOOD_ITERS, "optimization.max_epoch is set by the"),
        ("dropout", "overrides: [model.dropout=-0.1]\n" + GOOD_ITERS, "model.dropout: -0.1 is not a probability"),
        ("iteration-seed", GOOD_ITERS + "    overrides: [common.seed=7]\n", "iterations[0].overrides[0]: the seed is"),
        ("max-update-huge", GOOD_ITERS.replace("max_update: 5", "max_update: 1180591620717411303424"),
         "iterations[0].max_update: must be <= 1000000000"),
        ("interpolation-field", GOOD_ITERS.replace("max_update: 5", "max_update: ${nope}"),
         "iterations[0].max_update: Interpolation key 'nope' not found")]],
    ("init-continue-not-model", lambda c, b: ["init-continue", "--prev", c["ckpt"], "--label-dir", c["lab"],
                                              "--out", f"{c['tmp']}/init.pt", "foo=bar"], "model.KEY=VALUE",
     ["init.pt"]),
    ("init-continue-text-dict", lambda c, b: ["init-continue", "--prev", c["ckpt"], "--label-dir", b["text_dict"],
                                              "--out", f"{c['tmp']}/init.pt"], "not a fairseq dictionary", ["init.pt"]),
    ("init-continue-ckpt-shape", lambda c, b: ["init-continue", "--prev", b["shape_pt"], "--label-dir", c["lab"],
                                               "--out", f"{c['tmp']}/init.pt"], "do not fit", ["init.pt"]),
    ("init-continue-new-size", lambda c, b: ["init-continue", "--prev", c["ckpt"], "--label-dir", c["lab"],
                                             "--out", f"{c['tmp']}/init.pt", "model.encoder_embed_dim=64"],
     "a continued iteration keeps the architecture", ["init.pt"]),
    ("init-continue-bad-value", lambda c, b: ["init-continue", "--prev", c["ckpt"], "--label-dir", c["lab"],
                                              "--out", f"{c['tmp']}/init.pt", "model.encoder_layers=abc"],
     "does not build", ["init.pt"]),
    ("export-ckpt-shape", lambda c, b: ["export-stock", "--ckpt", b["shape_pt"], "--out", f"{c['tmp']}/e.pt"],
     "does not match its own config", ["e.pt"]),
    ("export-out-dir", lambda c, b: ["export-stock", "--ckpt", c["ckpt"], "--out", str(c["tmp"])], "--out", []),
    ("spm-name-tsv", lambda c, b: ["spm", "--data", c["corpus"], "--vocab-size", "30", "--name", "tsv"], "taken", []),
    ("spm-name-path", lambda c, b: ["spm", "--data", c["corpus"], "--vocab-size", "30", "--name", "../evil"],
     "--name", []),
    ("spm-too-small", lambda c, b: ["spm", "--data", c["corpus"], "--vocab-size", "2", "--name", "tiny"],
     "sentencepiece cannot train", []),
    ("launch-time", lambda c, b: ["launch", "--schedule", "standard_toy", "--work-dir", f"{c['tmp']}/w",
                                  "--data", c["corpus"], "--slurm", f"{c['tmp']}/sl", "--time", "abc"], "--time",
     ["w", "sl"]),
    ("corpus-voices-empty", lambda c, b: ["toy-corpus", f"{c['tmp']}/tc", "--voices", ""], "--voices", ["tc"]),
    ("corpus-out-empty", lambda c, b: ["toy-corpus", "", "--utterances", "10"], "must not be empty", []),
    ("corpus-over-other-settings", lambda c, b: ["toy-corpus", c["corpus"], "--utterances", "10"],
     "corpus.json: this corpus was built with seed 3, now 0", []),
    ("corpus-over-foreign-data", lambda c, b: ["toy-corpus", b["few_wrd"], "--utterances", "10"],
     "holds train.tsv but no corpus.json: not a corpus this tool built", []),
    # audio headers are checked before any work: a truncated file late in the split fails first
    ("dump-truncated-late", lambda c, b: ["dump", "mfcc", "--tsv-dir", b["truncated"], "--split", "valid",
                                          "--out-dir", f"{c['tmp']}/o"], "last.wav: has", ["o"]),
    ("probe-truncated-late", lambda c, b: ["probe", "--ckpt", c["ckpt"], "--data", b["truncated"], "--out",
                                           f"{c['tmp']}/p"], "last.wav: has", ["p"]),
    ("dump-directory-in-the-way", lambda c, b: ["dump", "mfcc", "--tsv-dir", c["corpus"], "--split", "valid",
                                                "--out-dir", b["clash"]], "a directory is in the way",
     ["clash/valid_0_1.npy"]),
    ("spm-short-transcripts", lambda c, b: ["spm", "--data", b["few_wrd"], "--vocab-size", "30"],
     "transcripts have", ["few/spm30.model", "few/train.spm30"]),
    ("spm-vocab-too-large", lambda c, b: ["spm", "--data", c["corpus"], "--vocab-size", "5000", "--name", "huge"],
     "sentencepiece cannot train", []),
    ("init-continue-label-rate", lambda c, b: ["init-continue", "--prev", c["ckpt"], "--label-dir", c["lab"],
                                               "--out", f"{c['tmp']}/init.pt", "model.label_rate=-5"],
     "model.label_rate must be a positive", ["init.pt"]),
    ("init-continue-negative-count", lambda c, b: ["init-continue", "--prev", c["ckpt"], "--label-dir",
                                                   b["neg_dict"], "--out", f"{c['tmp']}/init.pt"],
     "dict.km.txt:3: count -1", ["init.pt"]),
    ("dump-seed-without-sample", lambda c, b: ["dump", "mfcc", "--tsv-dir", c["corpus"], "--split", "valid",
                                               "--out-dir", f"{c['tmp']}/dseed", "--seed", "5"],
     "--seed: only with --sample", ["dseed"]),
    ("spm-units-too-few", lambda c, b: ["spm", "--data", b["few_spm"], "--vocab-size", "12", "--model-type", "char"],
     "--vocab-size 12: char units that leave", []),
    ("librispeech-short-clip", lambda c, b: ["librispeech", "--root", b["ls_short"], "--out", f"{c['tmp']}/ls"],
     "1-2-0000.flac: 300 samples, fewer than the 400", ["ls"]),
    ("phone-labels-odd-phone", lambda c, b: ["phone-labels", "--data", b["odd_phone"], "--out-dir", f"{c['tmp']}/pl"],
     "valid.phn:1: phone 'QQQ' is not in", ["pl"]),
    ("librispeech-cut-flac", lambda c, b: ["librispeech", "--root", b["ls_cut"], "--out", f"{c['tmp']}/ls"],
     "1-2-0000.flac: cut short: its header says 48000 samples", ["ls"]),
    ("librispeech-two-transcript-lines", lambda c, b: ["librispeech", "--root", b["ls_twice"], "--out",
                                                       f"{c['tmp']}/ls"],
     "1-2.trans.txt:2: a second transcript line for 1-2-0000", ["ls"]),
    ("librispeech-empty-libri-light", lambda c, b: ["librispeech", "--root", b["ls_root"], "--libri-light",
                                                    b["empty_ll"], "--out", f"{c['tmp']}/ls"], "(1h, 9h)", ["ls"]),
    ("iterate-owned-model-label-rate", lambda c, b: ["iterate", "--schedule", schedule(
        c, "overrides: [model.label_rate=-5]\n" + GOOD_ITERS), "--work-dir", f"{c['tmp']}/w", "--data", c["corpus"]],
     "model.label_rate is set by the schedule", ["w"]),
    ("iterate-truncated-audio", lambda c, b: ["iterate", "--schedule", schedule(c, GOOD_ITERS), "--work-dir",
                                              f"{c['tmp']}/w", "--data", b["truncated"]], "last.wav: has",
     ["w"]),
]


@pytest.fixture(scope="module")
def ctx(corpus, mfcc_labels, stock_checkpoint, tmp_path_factory):
    c = {"tmp": tmp_path_factory.mktemp("bad"), "corpus": corpus, "feat": mfcc_labels["feat"],
         "lab": mfcc_labels["lab"], "km": mfcc_labels["km"], "ckpt": stock_checkpoint}
    return c, _files(c)


@pytest.mark.parametrize("argv,expect,absent", [pytest.param(a, e, x, id=i) for i, a, e, x in CASES])
def test_bad_input_is_one_line_exit_2(ctx, capsys, argv, expect, absent):
    c, b = ctx
    code = main(argv(c, b))
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert expect in lines[0], lines[0]
    for rel in absent:
        assert not os.path.exists(os.path.join(c["tmp"], rel)), f"{rel} left behind"
    assert not [f for f in os.listdir(c["tmp"]) if ".partial-" in f]


def test_the_process_says_one_line_too(ctx):
    """The installed command (not just main()): exit 2, one stderr line, no traceback."""
    c, b = ctx
    r = subprocess.run([os.path.join(BIN, "ae-hubert"), "kmeans", "--feat-dir", b["len_sum"], "--split", "valid",
                        "--k", "5", "--out", f"{c['tmp']}/km.bin"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_quality_infers_the_label_rate(mfcc_labels, corpus, capsys):
    """100 Hz MFCC labels without --km-rate score as with --km-rate 100 (not as 50 Hz labels)."""
    from ae_hubert.clustering.quality import label_quality

    km, phn = os.path.join(mfcc_labels["lab"], "valid.km"), os.path.join(corpus, "valid.phn")
    inferred = label_quality(km, phn)
    assert inferred["km_rate"] == 100
    assert inferred["pnmi"] == pytest.approx(label_quality(km, phn, km_rate=100)["pnmi"])


def test_a_wrong_phone_rate_is_named_as_such(mfcc_labels, corpus, capsys):
    """50 Hz phones declared at 100 Hz: the phone lines are checked against the manifest beside them,
    and the error names --phn-rate (not the labels' rate it would otherwise fail to infer)."""
    km, phn = os.path.join(mfcc_labels["lab"], "valid.km"), os.path.join(corpus, "valid.phn")
    assert main(["quality", "--km", km, "--phn", phn, "--phn-rate", "100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{phn}:1:" in err[0] and "wrong --phn-rate? (50 Hz fits)" in err[0], err


@pytest.mark.parametrize("cmd", ["toy-corpus", "dump mfcc", "dump hubert", "kmeans", "label", "quality", "iterate",
                                 "choose-layer", "init-continue", "probe", "decode", "spm", "reset-sweep", "merge-labels",
                                 "export-stock", "launch", "demo", "librispeech", "study-corpus", "cluster-quality",
                                 "study"])
def test_every_help_shows_defaults_and_explains_every_option(cmd, capsys):
    with pytest.raises(SystemExit):
        main([*cmd.split(), "--help"])
    out = capsys.readouterr().out
    import re

    options = re.findall(r"^  (-[-\w]+)(?:[ ,][^\n]*)?$", out, flags=re.M)
    assert options
    if cmd == "dump mfcc":
        assert "--layer" not in out and "--ckpt" not in out  # kind-specific options only where they apply
    if cmd == "kmeans":
        assert "(default: -1)" in out and "(default: 100)" in out
    blocks = re.split(r"\n(?=  -)", out.split("options:", 1)[1])
    for block in blocks[1:]:
        assert len(" ".join(block.split())) > len(block.split()[0]) + 8, f"option without help: {block!r}"


def _own_inputs(c, d):
    """Copies of the shared inputs a command may be pointed at (so a failure cannot spoil the fixtures)."""
    import shutil as sh

    data = d / "data"
    data.mkdir()
    for f in os.listdir(c["corpus"]):
        if os.path.isfile(os.path.join(c["corpus"], f)):
            sh.copy(os.path.join(c["corpus"], f), data / f)  # manifests keep their absolute audio root
    feat, lab = d / "feat", d / "lab"
    sh.copytree(c["feat"], feat)
    sh.copytree(c["lab"], lab)
    sh.copy(c["km"], d / "km.bin")
    sh.copy(c["ckpt"], d / "ckpt.pt")
    (d / "work").mkdir()
    (d / "work" / "records.json").write_text("[]\n")
    (d / "work" / ".stages").mkdir()
    (d / "work" / ".stages" / "iter1.train.json").write_text('{"result": {}}\n')
    (d / "work" / "iter1" / "checkpoints").mkdir(parents=True)
    sh.copy(c["ckpt"], d / "work" / "iter1" / "checkpoints" / "checkpoint_best.pt")
    os.symlink(feat / "valid_0_1.npy", d / "link.npy")
    os.symlink(data / "train.tsv", d / "tsv_link.bin")
    wav = d / "audio.wav"
    shutil.copy(next(os.path.join(c["corpus"], "wav", f) for f in sorted(os.listdir(os.path.join(c["corpus"], "wav")))),
                wav)
    return {"data": str(data), "feat": str(feat), "lab": str(lab), "km": str(d / "km.bin"), "ckpt": str(d / "ckpt.pt"),
            "work": str(d / "work"), "link": str(d / "link.npy"), "wav": str(wav)}


OUTPUT_IS_INPUT = [
    ("kmeans-out-links-to-a-manifest", lambda o: ["kmeans", "--feat-dir", o["feat"], "--split", "valid", "--k", "5",
                                                  "--out", os.path.join(os.path.dirname(o["data"]), "tsv_link.bin")],
     "/data (a data directory)"),
    # files the loop made, which no command but their maker rewrites (common/outputs.loop_product)
    ("kmeans-over-a-label-set", lambda o: ["kmeans", "--feat-dir", o["feat"], "--split", "valid", "--k", "5", "--out",
                                           os.path.join(o["lab"], "train.km")], "a file of a label set"),
    ("quality-over-a-stage-marker", lambda o: ["quality", "--km", os.path.join(o["lab"], "valid.km"), "--phn",
                                               os.path.join(o["data"], "valid.phn"), "--json",
                                               os.path.join(o["work"], ".stages", "iter1.train.json")],
     "a work dir's record of its steps"),
    ("export-over-a-run-checkpoint", lambda o: ["export-stock", "--ckpt", o["ckpt"], "--out",
                                                os.path.join(o["work"], "iter1", "checkpoints", "checkpoint_best.pt")],
     "a training run's checkpoint"),
    ("kmeans-out-is-a-shard", lambda o: ["kmeans", "--feat-dir", o["feat"], "--split", "valid", "--k", "5", "--out",
                                         os.path.join(o["feat"], "valid_0_1.npy")], "--feat-dir"),
    ("kmeans-out-links-to-a-shard", lambda o: ["kmeans", "--feat-dir", o["feat"], "--split", "valid", "--k", "5",
                                               "--out", o["link"]], "--feat-dir"),
    ("label-name-tsv", lambda o: ["label", "--tsv-dir", o["data"], "--split", "valid", "--km", o["km"], "--out-dir",
                                  o["data"], "--name", "tsv"], "--tsv-dir"),
    ("label-name-phn", lambda o: ["label", "--feat-dir", o["feat"], "--split", "valid", "--km", o["km"], "--out-dir",
                                  o["data"], "--name", "phn"], "data directory"),
    ("label-over-the-km", lambda o: ["label", "--feat-dir", o["feat"], "--split", "valid", "--km",
                                     os.path.join(o["lab"], "valid.km"), "--out-dir", o["lab"]], "--km"),
    ("merge-labels-name-ltr", lambda o: ["merge-labels", "--label-dir", o["data"], "--split", "valid", "--nshard", "1",
                                         "--name", "ltr"], "data directory"),
    ("quality-json-is-km", lambda o: ["quality", "--km", os.path.join(o["lab"], "valid.km"), "--phn",
                                      os.path.join(o["data"], "valid.phn"), "--json",
                                      os.path.join(o["lab"], "valid.km")], "--km"),
    ("choose-layer-json-is-ckpt", lambda o: ["choose-layer", "--ckpt", o["ckpt"], "--data", o["data"], "--k", "4",
                                             "--json", o["ckpt"]], "--ckpt"),
    ("cluster-quality-json-is-phn", lambda o: ["cluster-quality", "--data", o["data"], "--k", "4", "--json",
                                               os.path.join(o["data"], "valid.phn")], "--data"),
    ("init-continue-out-is-prev", lambda o: ["init-continue", "--prev", o["ckpt"], "--label-dir", o["lab"], "--out",
                                             o["ckpt"]], "--prev"),
    ("init-continue-out-is-dict", lambda o: ["init-continue", "--prev", o["ckpt"], "--label-dir", o["lab"], "--out",
                                             os.path.join(o["lab"], "dict.km.txt")], "--label-dir"),
    ("export-stock-out-is-ckpt", lambda o: ["export-stock", "--ckpt", o["ckpt"], "--out", o["ckpt"]], "--ckpt"),
    ("report-out-is-records", lambda o: ["report", o["work"], "--out", os.path.join(o["work"], "records.json")],
     "WORK_DIR"),
    ("phone-labels-into-the-data", lambda o: ["phone-labels", "--data", o["data"], "--out-dir", o["data"],
                                              "--name", "phn"], "--data"),
    ("report-out-is-a-dict", lambda o: ["report", o["work"], "--out", os.path.join(o["data"], "dict.ltr.txt")],
     "data directory"),
    ("label-name-wrdspan", lambda o: ["label", "--tsv-dir", o["data"], "--split", "valid", "--km", o["km"],
                                      "--out-dir", o["data"], "--name", "wrdspan"], "data directory"),
    ("quality-json-is-the-labels-dict", lambda o: ["quality", "--km", os.path.join(o["lab"], "valid.km"), "--phn",
                                                   os.path.join(o["data"], "valid.phn"), "--json",
                                                   os.path.join(o["lab"], "dict.km.txt")], "label set .km that --km"),
    ("quality-json-is-the-other-split", lambda o: ["quality", "--km", os.path.join(o["lab"], "valid.km"), "--phn",
                                                   os.path.join(o["data"], "valid.phn"), "--json",
                                                   os.path.join(o["lab"], "train.km")], "label set .km that --km"),
    ("init-continue-out-is-labels", lambda o: ["init-continue", "--prev", o["ckpt"], "--label-dir", o["lab"], "--out",
                                               os.path.join(o["lab"], "train.km")], "--label-dir"),
    ("quality-json-is-corpus-json", lambda o: ["quality", "--km", os.path.join(o["lab"], "valid.km"), "--phn",
                                               os.path.join(o["data"], "valid.phn"), "--json",
                                               os.path.join(o["data"], "corpus.json")], "data directory"),
    ("choose-layer-json-is-corpus-json", lambda o: ["choose-layer", "--ckpt", o["ckpt"], "--data", o["data"], "--k", "4",
                                                    "--json", os.path.join(o["data"], "corpus.json")], "--data"),
    ("quality-json-is-audio", lambda o: ["quality", "--km", os.path.join(o["lab"], "valid.km"), "--phn",
                                         os.path.join(o["data"], "valid.phn"), "--json", o["wav"]], "data directory"),
]


def test_label_commands_rewrite_their_own_label_set(ctx, tmp_path):
    """The label-set rule (quality --json cannot land on another split's labels) leaves the commands
    that make labels free to rerun over their own set: merge-labels, label."""
    c, _ = ctx
    o = _own_inputs(c, tmp_path)
    km = os.path.join(o["lab"], "valid.km")
    for r, part in enumerate((open(km).readlines()[:2], open(km).readlines()[2:])):
        with open(os.path.join(o["lab"], f"valid_{r}_2.km"), "w") as f:
            f.writelines(part)
    before = open(km).read()
    for _ in range(2):
        assert main(["merge-labels", "--label-dir", o["lab"], "--split", "valid", "--nshard", "2"]) == 0
        assert open(km).read() == before
    assert main(["label", "--feat-dir", o["feat"], "--split", "valid", "--km", o["km"], "--out-dir", o["lab"]]) == 0


@pytest.mark.parametrize("argv,names", [pytest.param(a, n, id=i) for i, a, n in OUTPUT_IS_INPUT])
def test_no_output_is_an_input(ctx, tmp_path, capsys, argv, names):
    """An output aimed at one of the command's inputs (by its real path), or at a data directory's
    manifest, transcript or phone labels: one line naming both, exit 2, every input byte-identical."""
    import hashlib

    c, _ = ctx
    o = _own_inputs(c, tmp_path)

    def tree():
        return {os.path.join(r, f): hashlib.sha1(open(os.path.join(r, f), "rb").read()).hexdigest()
                for r, _, fs in os.walk(tmp_path) for f in fs}

    before = tree()
    assert main(argv(o)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("would overwrite an input" in err[0] or "would replace a file of the data" in err[0]
                              or "would overwrite a" in err[0])
    assert names in err[0], err[0]
    assert tree() == before


@pytest.mark.parametrize("what", ["manifest", "len", "shard-labels", "transcripts", "bom"])
def test_a_text_input_that_is_not_utf8_is_named(ctx, tmp_path, capsys, what):
    """UTF-16 or binary where UTF-8 text belongs: the error names the file (and line), not just a byte."""
    c, _ = ctx
    if what == "manifest":
        d = tmp_path / "d"
        d.mkdir()
        (d / "valid.tsv").write_bytes("/root\nx.wav\t400\n".encode("utf-16"))
        argv, bad = ["dump", "mfcc", "--tsv-dir", str(d), "--split", "valid", "--out-dir", str(tmp_path / "o")], \
            d / "valid.tsv"
    elif what == "len":
        d = tmp_path / "f"
        shutil.copytree(c["feat"], d)
        (d / "valid_0_1.len").write_bytes(b"12\n\xff\xfe\n")
        argv, bad = ["kmeans", "--feat-dir", str(d), "--split", "valid", "--k", "5", "--out",
                     str(tmp_path / "km.bin")], d / "valid_0_1.len"
    elif what == "shard-labels":
        d = tmp_path / "l"
        d.mkdir()
        (d / "valid_0_2.km").write_text("1 2 3\n")
        (d / "valid_1_2.km").write_bytes(b"4 5\n\x00\xff\x00")
        argv, bad = ["merge-labels", "--label-dir", str(d), "--split", "valid", "--nshard", "2"], d / "valid_1_2.km"
    elif what == "bom":  # UTF-8 behind a byte-order mark (a Windows editor's save): line 1 named, not line 2
        d = tmp_path / "b"
        d.mkdir()
        (d / "valid.tsv").write_bytes(b"\xef\xbb\xbf" + open(os.path.join(c["corpus"], "valid.tsv"), "rb").read())
        argv, bad = ["dump", "mfcc", "--tsv-dir", str(d), "--split", "valid", "--out-dir", str(tmp_path / "o")], \
            d / "valid.tsv"
    else:
        d = tmp_path / "w"
        d.mkdir()
        for f in ("train.tsv", "valid.tsv"):
            shutil.copy(os.path.join(c["corpus"], f), d / f)
        (d / "train.wrd").write_bytes("A B\n".encode("utf-16"))
        argv, bad = ["spm", "--data", str(d), "--vocab-size", "30", "--name", "sp"], d / "train.wrd"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{bad}:" in err[0], err
    assert (f"{bad}:1: starts with a UTF-8 byte-order mark" if what == "bom" else "not UTF-8 text") in err[0], err


@pytest.mark.parametrize("shard, message", [
    ("1 2\n\n3\n", "valid_1_2.km:2: an empty line"),
    ("1 2\n3 x\n", "valid_1_2.km:2: label 'x' is not a cluster id"),
    ("1 -2\n", "valid_1_2.km:1: label '-2' is not a cluster id"),
    ("1 2.5\n", "valid_1_2.km:1: label '2.5' is not a cluster id"),
    ("1 12\n", "valid_1_2.km:1: label '12' is not a cluster id in 0..11 (dict.km.txt)"),
])
def test_merge_labels_refuses_what_is_not_a_label_line(tmp_path, capsys, shard, message):
    (tmp_path / "valid_0_2.km").write_text("0 1 2\n")
    (tmp_path / "valid_1_2.km").write_text(shard)
    (tmp_path / "dict.km.txt").write_text("".join(f"{i} 1\n" for i in range(12)))
    assert main(["merge-labels", "--label-dir", str(tmp_path), "--split", "valid", "--nshard", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "valid.km").exists()


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("fill, message", [(0.25, "the k-means sample has 2 distinct frames, fewer than k=5: k <= 2"),
                                           (3e19, "k-means overflowed"),
                                           (float("nan"), "valid_0_1.npy: utterance 2: features contain NaN")])
def test_kmeans_refuses_a_fit_that_is_no_clustering(tmp_path, capsys, fill, message, streamed):
    """Frames that cannot give K clusters (two distinct ones for k=5), values whose squared
    distances overflow, NaN in the second utterance: refused naming the features, in memory and
    streamed alike, no k-means file written."""
    x = np.full((60, 4), 0.25 if fill != fill else fill, dtype=np.float32)
    x[::2] *= 2
    if fill == 3e19:  # every frame distinct, every squared distance beyond float32
        x *= 1 + np.random.default_rng(0).random((60, 4), dtype=np.float32)
    if fill != fill:
        x[31:] = np.random.default_rng(0).standard_normal((29, 4))
        x[40, 1] = np.nan
    np.save(tmp_path / "valid_0_1.npy", x)
    (tmp_path / "valid_0_1.len").write_text("30\n30\n")
    out = tmp_path / "km.bin"
    assert main(["kmeans", "--feat-dir", str(tmp_path), "--split", "valid", "--k", "5", "--out", str(out),
                 *(["--streamed"] if streamed else [])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(tmp_path) in err[0], err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_fp16_training_without_a_gpu_is_refused_before_any_work(ctx, tmp_path, capsys):
    """fairseq's fp16 optimizer needs CUDA: on a machine without one, iterate refuses before the
    sidecars (--dry-run and launch still write the commands, for a GPU machine to run)."""
    c, _ = ctx
    sched = tmp_path / "fp16.yaml"
    sched.write_text("overrides: [common.fp16=true]\n" + GOOD_ITERS)
    w = tmp_path / "w"
    assert main(["iterate", "--schedule", str(sched), "--work-dir", str(w), "--data", c["corpus"]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "iter1: common.fp16=true trains only on a GPU" in err[0] and not w.exists()
    assert main(["iterate", "--schedule", str(sched), "--work-dir", str(w), "--data", c["corpus"], "--dry-run"]) == 0


def test_a_directory_where_a_driver_writes_its_summary_is_refused_before_any_work(ctx, tmp_path, capsys):
    """iterate writes records.json and report.html when its run ends: a directory in their place is
    refused before the first step, not after the run."""
    c, _ = ctx
    sched = tmp_path / "s.yaml"
    sched.write_text(GOOD_ITERS)
    w = tmp_path / "w"
    (w / ".stages").mkdir(parents=True)  # an iterate work dir (a new one holding report.html is refused as such)
    (w / ".stages" / "kind").write_text("iterate\n")
    (w / "report.html").mkdir()
    assert main(["iterate", "--schedule", str(sched), "--work-dir", str(w), "--data", c["corpus"]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "report.html: a directory is in the way" in err[0], err
    assert not [f for f in os.listdir(w / ".stages") if f.endswith(".json")]
