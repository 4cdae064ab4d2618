"""bench/pi_factor.py: the CLI runs and prints K; factors() does its arithmetic.

Timings are never asserted: the smoke test checks only that the command runs.
"""

from __future__ import annotations

import math

import pytest

from bench.pi_factor import (
    BOARDS,
    ENCODE,
    PI4,
    PI5,
    PI5_SPEEDUPS,
    PUBLISHED,
    YUNET,
    PublishedFigure,
    PublishedSpeedup,
    factors,
    key,
    main,
    parse_key,
)
from tests.helpers.shared_faces import faces_dir


@pytest.mark.faces
def test_main_prints_the_table_and_both_k_lines(capsys: pytest.CaptureFixture[str]) -> None:
    faces_dir()
    assert main(["--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "yunet 320x320, 1 thread" in out
    assert "K(Pi 4) = " in out
    assert "K(Pi 5) = " in out


def test_factors_on_made_up_numbers() -> None:
    det320, det640 = key(YUNET, "320x320", 1), key(YUNET, "640x640", 1)
    all_cores, encode = key(YUNET, "320x320", None), key(ENCODE, "150x150", 1)
    measured = {det320: 5.0, det640: 20.0, all_cores: 4.0, encode: 100.0}
    published = (
        PublishedFigure(PI4, YUNET, "320x320", 1, 40.0, "a"),
        PublishedFigure(PI4, YUNET, "320x320", 1, 50.0, "a"),  # median of 3: 50
        PublishedFigure(PI4, YUNET, "320x320", 1, 90.0, "a"),
        PublishedFigure(PI4, YUNET, "640x640", 1, 320.0, "a"),  # ratio 16
        PublishedFigure(PI4, YUNET, "320x320", None, 400.0, "a"),  # all cores: not in K
        PublishedFigure(PI4, ENCODE, "150x150", 1, 1500.0, "b"),  # ratio 15
        PublishedFigure(PI5, YUNET, "640x640", 1, 80.0, "c"),  # the Pi 5's own: ratio 4
        PublishedFigure("x86", YUNET, "320x320", 1, 1.0, "d"),  # another board: ignored
    )
    speedups = (
        PublishedSpeedup("s", 1.0, 2.0, True, "e"),
        PublishedSpeedup("s", 1.0, 4.0, True, "e"),
        PublishedSpeedup("s", 1.0, 3.0, True, "e"),  # median of the measured: 3
        PublishedSpeedup("claim", 1.0, 100.0, False, "f"),  # a claim: left out
    )
    result = factors(measured, published, speedups)

    assert result.pi5_speedup == 3.0
    cells = {row.key: row.cells for row in result.rows}
    assert cells[det320][PI4].ratio == 10.0
    assert cells[det320][PI5].how == "derived"
    assert cells[det320][PI5].ms == pytest.approx(50.0 / 3)
    assert cells[det640][PI5].how == "published"
    assert cells[all_cores][PI4].ratio == 100.0

    assert result.detection[PI4] == pytest.approx(math.sqrt(10 * 16))  # 12.65
    assert result.encoding[PI4] == 15.0
    assert not result.encoding_is_proxy[PI4]
    assert result.k[PI4] == 15.0  # the larger of the two
    assert result.detection[PI5] == pytest.approx(math.sqrt(10 / 3 * 4))
    assert result.encoding[PI5] == pytest.approx(5.0)  # derived: 1500 / 3 / 100
    assert result.k[PI5] == pytest.approx(5.0)


def test_without_an_encoding_figure_the_detection_ratio_is_the_proxy() -> None:
    det, encode = key(YUNET, "320x320", 1), key(ENCODE, "150x150", 1)
    published = (PublishedFigure(PI4, YUNET, "320x320", 1, 60.0, "a"),)
    speedups = (PublishedSpeedup("s", 2.0, 4.0, True, "e"),)
    result = factors({det: 6.0, encode: 50.0}, published, speedups)

    assert result.encoding_is_proxy[PI4] and result.encoding_is_proxy[PI5]
    assert result.k[PI4] == result.detection[PI4] == result.encoding[PI4]
    assert result.k[PI4] == pytest.approx(10.0)
    assert result.k[PI5] == pytest.approx(5.0)
    proxy = next(row for row in result.rows if row.key == encode).cells[PI4]
    assert proxy.how == "proxy"
    assert proxy.ms == pytest.approx(500.0)


def test_factors_refuses_what_it_cannot_stand_on() -> None:
    det = key(YUNET, "320x320", 1)
    published = (PublishedFigure(PI4, YUNET, "320x320", 1, 60.0, "a"),)
    with pytest.raises(ValueError, match="single-thread YuNet"):
        factors({key(YUNET, "640x640", 1): 6.0}, published, PI5_SPEEDUPS)
    with pytest.raises(ValueError, match="positive"):
        factors({det: 0.0}, published, PI5_SPEEDUPS)
    with pytest.raises(ValueError, match="measured Pi 5 speedup"):
        factors({det: 6.0}, published, (PublishedSpeedup("claim", 1.0, 2.5, False, "f"),))


def test_keys_round_trip() -> None:
    for operation, size, threads in ((YUNET, "320x320", 1), (ENCODE, "150x150", 1)):
        assert parse_key(key(operation, size, threads)) == (operation, size, threads)
    assert parse_key(key(YUNET, "160x120", None)) == (YUNET, "160x120", None)
    assert parse_key(key(YUNET, "160x120", 4)) == (YUNET, "160x120", 4)
    with pytest.raises(ValueError):
        parse_key("yunet")


def test_the_published_figures_are_usable() -> None:
    """Every figure has a source and a positive time, and each board K is worked out for
    has a single-thread YuNet figure (the shipped tables give factors() what it needs)."""
    assert all(f.ms > 0 and f.source for f in PUBLISHED)
    assert all(s.pi4 > 0 and s.pi5 > 0 and s.source for s in PI5_SPEEDUPS)
    assert any(f.board == PI4 and f.operation == YUNET and f.threads == 1 for f in PUBLISHED)
    assert set(BOARDS) == {PI4, PI5}
