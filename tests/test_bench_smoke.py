"""The benchmarks run end to end on tiny sizes; their timings are never asserted."""

from __future__ import annotations

import pytest

from bench import encoding, matcher, pipeline, roster_import, walkby
from tests.helpers.shared_faces import faces_dir


def test_matcher_bench_runs_and_cross_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert matcher.main(["--sizes", "64,2000", "--threads", "1", "--budget", "0.001"]) == 0
    out = capsys.readouterr().out
    assert out.count("nearest distances agree with face_distance") == 2
    for words in ("single probe / FAISS flat", "memory floor", "cheaper per probe", "KiB per 1k"):
        assert words in out


def test_matcher_bench_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        matcher.main(["--sizes", "ten"])
    assert err.value.code == 2
    assert "comma-separated whole numbers" in capsys.readouterr().err


def test_pipeline_bench_runs_both_pipelines(capsys: pytest.CaptureFixture[str]) -> None:
    faces_dir()
    assert pipeline.main(["--rounds", "1", "--people", "20", "--frames", "30"]) == 0
    out = capsys.readouterr().out
    for words in ("baseline recipe at 1/2 scale", "clockface kiosk", "the frames per second"):
        assert words in out


def test_encoding_bench_runs_both_encoders_and_they_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    faces_dir()
    assert encoding.main(["--rounds", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("baseline:", "clockface:"))]
    assert len(rows) == 3 and "dlib-bin" in rows[0]
    for row in rows[1:]:
        assert float(row.split()[-1]) < 1e-5  # the largest component difference from dlib's


def test_walkby_bench_runs_every_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    faces_dir()
    args = ["--quick", "--ks", "1", "--people", "20", "--rounds", "1", "--scenes"]
    assert walkby.main([*args, "quick-720p-66-normal"]) == 0
    out = capsys.readouterr().out
    for words in ("K = 1", "clockface", "hog-kiosk", "recipe", "logged once per round"):
        assert words in out


def test_roster_import_bench_runs_both_imports(capsys: pytest.CaptureFixture[str]) -> None:
    roster_import.main(["--people", "12", "--templates", "2", "--rounds", "1"])
    out = capsys.readouterr().out
    assert "12 people, 2 templates each" in out
    for words in ("baseline: one POST /v1/admin/people each", "clockface: POST /v1/admin/roster"):
        assert words in out


def _dies(code: int, queue: object) -> None:
    raise SystemExit(code)


def test_a_bench_child_that_dies_stops_the_bench_at_once() -> None:
    """Not a wait for the queue's two hours: the child's exit status, in one line."""
    from bench.child import run_in_child

    with pytest.raises(RuntimeError, match=r"_dies stopped without an answer \(exit status 3\)"):
        run_in_child(_dies, 3, timeout=60)
