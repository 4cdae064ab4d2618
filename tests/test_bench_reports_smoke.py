"""bench/reports.py runs end to end at a tiny size; its timings are never asserted."""

from __future__ import annotations

import os
from argparse import Namespace
from datetime import date
from pathlib import Path

import pytest

from bench import reports
from reports.model import AttendanceEvent
from tests.helpers.postgres import REQUIRE_ENV, find_bin_dir

DATABASES = ("sqlite", "central-sqlite", "central-postgresql")


def _postgres_or_skip() -> None:
    if find_bin_dir() is None:
        reason = "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires them")
        pytest.skip(reason)


def test_reports_bench_runs_checks_and_prints_its_verdicts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _postgres_or_skip()
    argv = ["--people", "12", "--days", "60", "--month", "2024-02", "--rounds", "1",
            "--databases", ",".join(DATABASES)]  # fmt: skip
    assert reports.main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in DATABASES:
        column = name.ljust(reports.NAME_WIDTH)
        assert f"{column} late, 2024-01-01 to 2024-02-29: both give the same" in out
        assert f"{column} summary, 2024-02: both give the same 12 rows" in out
        # One row of the table per database and report.
        assert sum(line.startswith(f"{column} late, ") and line.endswith("x") for line in lines)
        assert f"{name} summary, 2024-02: under 2 s " in out
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


@pytest.mark.parametrize("name", ["central-sqlite", "central-postgresql"])
def test_reports_bench_central_database_holds_what_ingest_would(name: str, tmp_path: Path) -> None:
    """The bulk-inserted events are the rows the central store reads back, each in the
    log of its site's kiosk, and the logs are complete."""
    from central.store import CentralStore

    if name == "central-postgresql":
        _postgres_or_skip()
    scenario = reports.make_scenario(8, date(2024, 3, 1), 10, seed=1)
    source = reports.SOURCES[name](tmp_path, Namespace(person_index=True))
    try:
        source.fill(scenario)
        assert isinstance(source, reports.CentralSource)
        with CentralStore.open(source.database) as store:
            stored, more = store.events(limit=10_000)
            assert [p.person_id for p in store.people()] == [p.person_id for p in scenario.people]
            kiosks = {k.name: k for k in store.kiosks()}
        assert not more
        doors = {"Europe/Berlin": "berlin-door", "America/Chicago": "chicago-door"}
        as_read = [
            AttendanceEvent(str(e.event_id), e.person_id, "in" if e.direction == "in" else "out",
                            e.utc, e.tz, e.clock_synced, reports.KIOSK_ID)
            for e in stored
        ]  # fmt: skip
        assert sorted(as_read, key=lambda e: e.event_id) == sorted(
            scenario.events, key=lambda e: e.event_id
        )
        assert all(e.kiosk == doors[e.tz] for e in stored)
        assert all(k.backlog == 0 for k in kiosks.values())
        for door in doors.values():
            seqs = sorted(e.seq for e in stored if e.kiosk == door)
            assert seqs == list(range(1, len(seqs) + 1))
        one = scenario.events[0]
        [found] = source.events_between(one.person_id, one.utc, one.utc)
        assert (found.event_id, found.utc, found.direction) == (
            one.event_id,
            one.utc,
            one.direction,
        )
        assert found.kiosk_id == doors[one.tz]
        read = source.read(date(2024, 3, 2), date(2024, 3, 8))
        assert 0 < len(read.events) < len(scenario.events)
    finally:
        source.close()
