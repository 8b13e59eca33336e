"""The study corpus: voice-disjoint splits, its files line up, variability present, deterministic."""
import json
import os

import numpy as np
import pytest
import soundfile as sf

from ae_hubert.common.errors import AeHubertError
from ae_hubert.common.manifest import read_manifest
from ae_hubert.corpus import acoustics
from ae_hubert.corpus.study_corpus import VOICES, build
from test_corpus import check_corpus_files


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("study") / "c")
    build(out, utterances=40, seed=1, vocabulary=150, workers=2)
    return out


def test_files_line_up(study):
    check_corpus_files(study)


def test_valid_and_test_voices_never_speak_in_train(study):
    spk = {s: set(open(os.path.join(study, f"{s}.spk")).read().split()) for s in ("train", "valid", "test")}
    assert not spk["train"] & spk["valid"] and not spk["train"] & spk["test"] and not spk["valid"] & spk["test"]

    def timbre(voice):  # what makes a speaker: the espeak variant or the flite voice, not the accent
        kind, _, name = voice.partition(":")
        return name.split("+")[-1] if kind == "espeak" else name

    for split, (variants, flites) in VOICES.items():
        assert {timbre(v) for v in spk[split]} <= set(variants) | set(flites)
    assert len({v.split(":")[0] for v in spk["train"]}) == 2  # both synthesisers


def test_words_come_from_the_vocabulary_and_variability_is_present(study):
    summary = json.load(open(os.path.join(study, "corpus.json")))
    vocab = {w.upper() for w in summary["vocabulary"]}
    assert len(vocab) == 150
    words = open(os.path.join(study, "train.wrd")).read().split()
    assert set(words) <= vocab and len(set(words)) > 60
    assert 0.2 < summary["reverberant_share"] < 0.8 and 0.5 < summary["noisy_share"] < 1.0
    m = read_manifest(os.path.join(study, "train.tsv"))
    peaks = [np.abs(sf.read(e.path, dtype="float32")[0]).max() for e in m.entries]
    assert max(peaks) / min(peaks) > 3  # levels vary


def test_deterministic_for_any_workers(study, tmp_path):
    again = str(tmp_path / "c")
    build(again, utterances=40, seed=1, vocabulary=150, workers=1)
    for name in ["train.phn", "valid.wrdspan", "test.spk", "dict.ltr.txt"] + \
            [f"wav/{f}" for f in sorted(os.listdir(os.path.join(study, "wav")))]:
        assert open(os.path.join(study, name), "rb").read() == open(os.path.join(again, name), "rb").read(), name


def test_room_responses_keep_the_timing():
    """The direct sound starts each response (labels stay exact), located by geometry: in some rooms
    coinciding reflections are louder than the direct sound, so the largest sample would be wrong."""
    rirs = acoustics.room_impulse_responses(4, seed=0)
    for h in rirs:
        a = np.abs(h)
        assert a[0] >= a[1] and a[0] > 0.3 * a.max()  # the direct arrival, comparable to any reflection
        assert abs(float((h ** 2).sum()) - 1) < 1e-4
    assert any(np.argmax(np.abs(h)) > 10 for h in rirs)  # a later reflection outweighs it in these rooms
    x = np.zeros(16000, np.float32)
    x[8000] = 1.0
    y = acoustics.reverberate(x, rirs[0])
    assert len(y) == len(x) and np.argmax(np.abs(y[:8002])) == 8000  # where the sound was


def test_noise_at_the_asked_snr_in_the_speech_band():
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(0)
    speech = np.sin(np.arange(32000) / 5.0).astype(np.float32)  # 509 Hz
    band = butter(4, [100, 4000], btype="bandpass", fs=16000, output="sos")
    for beta in (0.0, 1.0, 2.0):  # brown noise too: its power must not sit below the speech band
        noise = acoustics.add_noise(speech, 10.0, beta, rng) - speech
        assert abs(10 * np.log10(np.mean(speech ** 2) / np.mean(noise ** 2)) - 10.0) < 0.5
        in_band = np.mean(sosfiltfilt(band, noise) ** 2) / np.mean(noise ** 2)
        assert in_band > 0.3, (beta, in_band)


def test_missing_parts_fail_in_one_line_before_anything_is_written(tmp_path, monkeypatch):
    from ae_hubert.common.errors import AeHubertError
    from ae_hubert.corpus import flite, lexicon

    out = tmp_path / "c"

    def no_wordfreq(*a, **k):
        raise ImportError("No module named 'wordfreq'", name="wordfreq")

    monkeypatch.setattr(lexicon, "study_vocabulary", no_wordfreq)
    with pytest.raises(AeHubertError, match=r"needs wordfreq: pip install 'ae_hubert\[study\]'"):
        build(str(out), utterances=30, vocabulary=50)
    monkeypatch.setattr(lexicon, "study_vocabulary", lambda n, a: (["yes"] * n, np.ones(n)))

    def no_flite(*a, **k):
        raise RuntimeError("flite not found; apt-get install flite")

    monkeypatch.setattr(flite, "word_prons", no_flite)
    with pytest.raises(AeHubertError, match="flite not found"):
        build(str(out), utterances=30, vocabulary=50)
    assert not out.exists()


def _fails(jobs):  # module level: the worker pool pickles it by name
    raise RuntimeError("killed half way")


def test_a_rebuild_is_the_same_build_or_refused(study, tmp_path, monkeypatch):
    """Over an earlier build only the same settings go on (and a stopped rebuild stays known as one);
    other settings are refused with the corpus intact; stale audio goes, no summary while rebuilding."""
    import shutil

    from ae_hubert.corpus import study_corpus

    out = tmp_path / "c"
    shutil.copytree(study, out)
    (out / "wav" / "utt09999.wav").write_bytes(b"stale")
    summary = (out / "corpus.json").read_bytes()
    with pytest.raises(AeHubertError, match="corpus.json: this corpus was built with utterances 40, now 30"):
        build(str(out), utterances=30, seed=1, vocabulary=150, workers=1)
    assert (out / "corpus.json").read_bytes() == summary
    monkeypatch.setattr(study_corpus, "_synth_chunk", _fails)
    with pytest.raises(RuntimeError):
        build(str(out), utterances=40, seed=1, vocabulary=150, workers=1)
    assert not (out / "corpus.json").exists()  # a stopped rebuild does not look complete...
    with pytest.raises(AeHubertError, match=r"\.corpus-building\.json: this corpus was built with seed 1, now 2"):
        build(str(out), utterances=40, seed=2, vocabulary=150, workers=1)  # ...but is still known as this build
    monkeypatch.undo()
    build(str(out), utterances=40, seed=1, vocabulary=150, workers=1)
    assert sorted(os.listdir(out / "wav")) == sorted(os.listdir(os.path.join(study, "wav")))  # the stale file is gone
    assert (out / "corpus.json").exists() and not (out / ".corpus-building.json").exists()
    for f in ("train.wrd", "valid.phn", "test.wrdspan"):
        assert (out / f).read_text() == open(os.path.join(study, f)).read()


def test_phone_sequences_merge_repeats_within_words_only(tmp_path, capsys):
    """Frame phones -> the phones said: repeats merged inside a word, not across words, silence
    dropped; a frame belongs to the word whose span holds its centre (320 i + 200 samples)."""
    from ae_hubert.corpus.phone_sequences import utterance_phones, write_phone_sequences

    frames = "sil sil s s ih ih s s s t t sil".split()  # 12 frames, centres 0.0125 + 0.02 i
    # "this" over frames 2-8 (ending on an s), "stop" over 8-10: the two s's stay two
    assert utterance_phones(frames, [(0.04, 0.165), (0.165, 0.23)]) == ["s", "ih", "s", "s", "t"]
    assert utterance_phones(frames, [(0.04, 0.23)]) == ["s", "ih", "s", "t"]  # one word: merged
    for split in ("train", "valid"):
        (tmp_path / f"{split}.phn").write_text(" ".join(frames) + "\n")
        (tmp_path / f"{split}.wrdspan").write_text("THIS:0.040:0.165 STOP:0.165:0.230\n")
    assert write_phone_sequences(str(tmp_path), ("train", "valid")) == {"train": 5, "valid": 5}
    assert (tmp_path / "train.phnseq").read_text() == "s ih s s t\n"
    assert (tmp_path / "dict.phnseq.txt").read_text() == "s 3\nih 1\nt 1\n"
    (tmp_path / "valid.wrdspan").write_text("THIS:0.040\n")
    with pytest.raises(AeHubertError, match=r"valid.wrdspan:1: bad word span 'THIS:0.040'"):
        write_phone_sequences(str(tmp_path), ("train", "valid"))
    (tmp_path / "valid.wrdspan").write_text("A:0.0:0.02\n")  # only silence inside
    with pytest.raises(AeHubertError, match=r"valid.phn:1: no phone inside the utterance's word spans"):
        write_phone_sequences(str(tmp_path), ("train", "valid"))
