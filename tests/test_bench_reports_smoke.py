"""bench/reports.py runs end to end at a tiny size; its timings are never asserted."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bench import reports


def test_reports_bench_runs_checks_and_prints_its_verdicts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--people", "12", "--days", "60", "--month", "2024-02", "--rounds", "1"]
    assert reports.main(argv) == 0
    out = capsys.readouterr().out
    assert "sqlite  late, 2024-01-01 to 2024-02-29: both give the same" in out
    assert "sqlite  summary, 2024-02: both give the same 12 rows" in out
    for words in ("best of 1, seconds", "clockface", "baseline", "ratio", "under 2 s", "10x"):
        assert words in out
    assert out.rstrip().splitlines()[-1].startswith("targets ")


def test_reports_bench_scenario_is_seeded_and_messy() -> None:
    a = reports.make_scenario(40, date(2024, 1, 1), 30, seed=3)
    b = reports.make_scenario(40, date(2024, 1, 1), 30, seed=3)
    assert a.events == b.events and a.people == b.people
    directions = [e.direction for e in a.events]
    assert 20 * 40 < len(a.events) < 50 * 40  # about two punches per shift
    assert directions.count("in") > directions.count("out")  # breaks, double punches...
    assert any(e.clock_synced is False for e in a.events)
    assert [e.utc for e in a.events] == sorted(e.utc for e in a.events)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--people", "0"], "at least 1"),
        (["--month", "2024-13"], "is not YYYY-MM"),
        (["--days", "20", "--month", "2024-02"], "not within"),
        (["--databases", "oracle"], "unknown database"),
    ],
)
def test_reports_bench_refuses_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as err:
        reports.main(argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_reports_bench_database_is_one_kiosk_store_reads(tmp_path: Path) -> None:
    from argparse import Namespace

    from kiosk.store import KioskStore
    from reports.model import from_store_event

    scenario = reports.make_scenario(8, date(2024, 3, 1), 10, seed=1)
    source = reports.SOURCES["sqlite"](tmp_path, Namespace(person_index=True))
    source.fill(scenario)
    try:
        with KioskStore.open(tmp_path / "kiosk.db") as store:
            stored = [from_store_event(e) for e in store.events()]
            assert [p.person_id for p in store.people()] == [p.person_id for p in scenario.people]
        assert stored == list(scenario.events)
        one = scenario.events[0]
        assert source.events_between(one.person_id, one.utc, one.utc) == [one]
    finally:
        source.close()
