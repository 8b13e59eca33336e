"""``study-rerun``'s comparison: what counts as the same figure (the reruns themselves are in the
miniature study, tests/test_study.py)."""
from __future__ import annotations

import math

from ae_hubert.study.rerun import _recorded_root, _relative, differences


def test_numbers_must_be_equal_times_are_not_results():
    original = {"train": {"loss": 3.278, "wall": 965.0}, "train_seconds": 4021.2, "layers": {"6": {"input_r2": 0.5}},
                "targets": [{"seconds": 0.6, "pnmi": float("nan"), "source": "phones"}]}
    same = {"train": {"loss": 3.278, "wall": 12.0}, "train_seconds": 9.0, "layers": {"6": {"input_r2": 0.5}},
            "targets": [{"seconds": 3.0, "pnmi": math.nan, "source": "phones"}]}
    assert differences(original, same) == []  # wall-clock times differ; NaN is NaN
    assert differences({**original, "wall_seconds_this_run": 3.0}, same) == []  # an earlier version's record
    moved = {**same, "layers": {"6": {"input_r2": 0.5 + 1e-12}}}
    assert differences(original, moved) == [("layers.6.input_r2", 0.5, 0.5 + 1e-12)]
    assert differences(original, moved, tolerance=1e-9) == []  # relative: 2e-12
    assert differences({"inertia": 445892416.0}, {"inertia": 445892416.5}, tolerance=1e-5) == []
    assert differences({"updates": 2000}, {"updates": 2001}, tolerance=0.1) == [("updates", 2000, 2001)]
    renamed = {**same, "targets": [{"seconds": 3.0, "pnmi": math.nan, "source": "mfcc"}]}
    assert differences(original, renamed, tolerance=1.0) == [("targets.0.source", "phones", "mfcc")]
    fewer = {k: v for k, v in same.items() if k != "layers"}
    assert differences(original, fewer) == [("layers", {"6": {"input_r2": 0.5}}, "(absent)")]
    assert differences({"x": [1, 2]}, {"x": [1, 2, 3]}) == [("x", [1, 2], [1, 2, 3])]
    assert differences({"x": True}, {"x": 1}) == [("x", True, 1)]  # a flag is not a number


def test_paths_compare_by_their_place_in_the_work_dir(tmp_path):
    a, b = str(tmp_path / "original"), str(tmp_path / "again")
    record = {"checkpoint": f"{a}/runs/r/s1/iter1/checkpoints/checkpoint_last.pt", "overrides": [f"x={a}/labels"]}
    moved = {"checkpoint": f"{b}/runs/r/s1/iter1/checkpoints/checkpoint_last.pt", "overrides": [f"x={b}/labels"]}
    assert differences(_relative(record, [a]), _relative(moved, [b])) == []
    elsewhere = {**moved, "checkpoint": f"{b}/runs/r/s2/iter1/checkpoints/checkpoint_last.pt"}
    assert len(differences(_relative(record, [a]), _relative(elsewhere, [b]))) == 1
    packed = {"checkpoint": "@WORK_DIR@/runs/r/s1/iter1/checkpoints/checkpoint_last.pt",
              "overrides": ["x=@WORK_DIR@/labels"]}
    assert differences(_relative(packed, [a]), _relative(moved, [b])) == []  # a results copy's placeholders
    beside = {**record, "overrides": [f"x={a}2/labels"]}  # another dir whose name starts like the work dir's
    assert differences(_relative(beside, [a]), _relative(moved, [b])) == [("overrides.0", f"x={a}2/labels",
                                                                            "x=@WORK_DIR@/labels")]
    # a work dir moved since it ran: its records name the old place, read from their checkpoints
    old = {"runs/r/s1/iter1/record.json": {"checkpoint": "/gone/W/runs/r/s1/iter1/checkpoints/checkpoint_last.pt"}}
    assert _recorded_root(old, "r", 1) == ["/gone/W"]
    assert _recorded_root(old, "r", 2) == [] and _recorded_root({"x": {"checkpoint": "@WORK_DIR@/x"}}, "r", 1) == []


def test_what_cannot_be_compared_is_refused_before_any_work(tmp_path, capsys):
    import json
    import os

    from ae_hubert.cli import main

    results, again = tmp_path / "results", str(tmp_path / "again")
    results.mkdir()
    args = [str(results), "--run", "study_h0_phones", "--seed", "1", "--work-dir", again]

    def refused(*extra) -> str:
        assert main(["study-rerun", *args, *extra]) == 2
        assert not os.path.exists(again)
        return capsys.readouterr().err

    assert f"{results}/study.json: unreadable" in refused()
    (results / "study.json").write_text(json.dumps({"study": "study_cpu", "k": 100, "seeds": [1]}))
    assert "not a run the study probed over updates; it has: none (no probed_runs.json)" in refused()
    (results / "probed_runs.json").write_text(json.dumps({"runs": ["runs/study_h1", "runs/study_h0_phones"]}))
    assert "no iteration record of study_h0_phones seed 1 to compare with (under runs/study_h0_phones/s1)" in refused()
    assert "no iteration record of study_h0_phones seed 2" in refused("--seed", "2")
    (results / "runs" / "study_h0_phones" / "s1" / "iter1").mkdir(parents=True)
    (results / "runs" / "study_h0_phones" / "s1" / "iter1" / "record.json").write_text("{}")
    assert "no probe of study_h0_phones seed 1 to compare with (under .stages)" in refused()
    (results / ".stages").mkdir()
    (results / ".stages" / "s1.study_h0_phones.iter1.probe.500.json").write_text('{"seconds": 1}')
    assert "s1.study_h0_phones.iter1.probe.500.json: a probe marker without its result" in refused()
    (results / "study.json").write_text("[1]")
    assert "study.json: not a JSON dict" in refused()
    (results / "study.json").write_text(json.dumps({"k": 100}))
    assert "names no study config ('study'); pass --config" in refused()
    (results / "study.json").write_text(json.dumps({"study": "study_cpu", "measure": [1]}))
    assert "'measure' is not a mapping" in refused()
    (results / "study.json").write_text(json.dumps({"study": "study_cpu", "k": 50, "seeds": [1]}))
    assert "k is 50, the study config" in refused()
    assert "--tolerance: must be a number >= 0" in refused("--tolerance", "-1")
