import json
import os

import pytest
import numpy as np
import soundfile as sf

from ae_hubert.common.manifest import read_manifest
from ae_hubert.corpus import phones
from ae_hubert.common.letters import letters_to_words, words_to_letters
from ae_hubert.corpus.toy_corpus import build


def test_manifests_and_labels_line_up(corpus):
    check_corpus_files(corpus)


def check_corpus_files(corpus):
    """Every split's audio, manifest and label files agree line by line (shared with the study corpus)."""
    for split in ("train", "valid", "test"):
        m = read_manifest(os.path.join(corpus, f"{split}.tsv"))
        assert os.path.isabs(m.root)
        lines = {ext: open(os.path.join(corpus, f"{split}.{ext}")).read().splitlines()
                 for ext in ("wrd", "ltr", "phn", "spk", "wrdspan")}
        for ext, ls in lines.items():
            assert len(ls) == len(m), ext
        for i, e in enumerate(m.entries):
            wav, sr = sf.read(e.path, dtype="int16")
            assert sr == 16000 and wav.ndim == 1 and len(wav) == e.nsamples
            frames = lines["phn"][i].split()
            assert len(frames) == (e.nsamples - 400) // 320 + 1
            assert set(frames) <= set(phones.PHONE_SET)
            assert lines["ltr"][i] == words_to_letters(lines["wrd"][i])
            spans = [tok.rsplit(":", 2) for tok in lines["wrdspan"][i].split()]
            assert [w for w, _, _ in spans] == lines["wrd"][i].split()
            times = [(float(a), float(b)) for _, a, b in spans]
            assert all(0 <= a < b <= e.nsamples / 16000 + 1e-3 for a, b in times)
            assert all(times[k][1] <= times[k + 1][0] + 1e-6 for k in range(len(times) - 1))


def test_letters_format():
    assert words_to_letters("keep a going") == "K E E P | A | G O I N G |"
    assert letters_to_words("K E E P | A | G O I N G |") == ["KEEP", "A", "GOING"]


def test_speech_frames_are_mostly_not_silence(corpus):
    phn = open(os.path.join(corpus, "train.phn")).read().split()
    sil = sum(p == "sil" for p in phn) / len(phn)
    assert 0.05 < sil < 0.5
    assert len(set(phn)) > 25  # most of the phone set is used


def test_both_synthesisers_and_dictionary(corpus):
    spk = open(os.path.join(corpus, "train.spk")).read().split()
    assert {s.split(":")[0] for s in spk} == {"flite", "espeak"}
    symbols = [line.split()[0] for line in open(os.path.join(corpus, "dict.ltr.txt"))]
    assert "|" in symbols and len(symbols) == len(set(symbols))
    ltr = {c for line in open(os.path.join(corpus, "train.ltr")) for c in line.split()}
    assert ltr <= set(symbols)


@pytest.mark.slow
def test_deterministic_for_a_seed(tmp_path):
    a = build(str(tmp_path / "a"), utterances=12, seed=5, workers=1)
    b = build(str(tmp_path / "b"), utterances=12, seed=5, workers=2)
    assert a["splits"] == b["splits"]
    for name in sorted(os.listdir(tmp_path / "a" / "wav")):
        assert (tmp_path / "a" / "wav" / name).read_bytes() == (tmp_path / "b" / "wav" / name).read_bytes()
    for f in ("train.phn", "train.wrdspan", "test.ltr", "dict.ltr.txt"):
        assert (tmp_path / "a" / f).read_text() == (tmp_path / "b" / f).read_text()
    c = build(str(tmp_path / "c"), utterances=12, seed=6, workers=2)
    assert (tmp_path / "c" / "train.wrd").read_text() != (tmp_path / "a" / "train.wrd").read_text() or \
        c["splits"] != a["splits"]


def test_frame_labels_take_the_phone_at_the_frame_centre():
    segs = [(0.0, 0.1, "sil"), (0.1, 0.2, "ah"), (0.2, 0.3, "b")]
    labs = phones.frame_labels(segs, 4800)  # 0.3 s -> 14 frames
    assert len(labs) == 14
    centres = [(320 * i + 200) / 16000 for i in range(14)]
    expect = ["sil" if t < 0.1 else "ah" if t < 0.2 else "b" if t < 0.3 else "sil" for t in centres]
    assert labs == expect
    assert np.isclose(phones.n_frames(190800), 596)


def test_a_build_over_an_older_or_broken_summary_is_checked(tmp_path):
    """Summaries written before builds recorded their settings still refuse another build; a summary
    that is not one is one line, not a traceback."""
    from ae_hubert.common.errors import AeHubertError
    from ae_hubert.corpus.corpus_files import check_corpus_dir

    toy = {"corpus": "toy", "seed": 0, "utterances": 400, "voices": ["flite:kal"]}
    summary = tmp_path / "corpus.json"
    summary.write_text(json.dumps({"kind": "study", "seed": 0, "utterances": 400, "vocabulary_size": 3000}))
    with pytest.raises(AeHubertError, match="built with corpus 'study', now 'toy'"):
        check_corpus_dir(str(tmp_path), toy)
    with pytest.raises(AeHubertError, match="built with vocabulary 3000, now 50"):
        check_corpus_dir(str(tmp_path), {"corpus": "study", "seed": 0, "utterances": 400, "vocabulary": 50})
    summary.write_text(json.dumps({"seed": 0, "utterances": 400, "voices": ["flite:rms"]}))
    with pytest.raises(AeHubertError, match=r"built with voices \['flite:rms'\]"):
        check_corpus_dir(str(tmp_path), toy)
    check_corpus_dir(str(tmp_path), {**toy, "voices": ["flite:rms"]})  # the same build: goes on
    for text in ('{"build": 5}', "[1]", "not json"):
        summary.write_text(text)
        with pytest.raises(AeHubertError, match="corpus.json: not a corpus summary"):
            check_corpus_dir(str(tmp_path), toy)
