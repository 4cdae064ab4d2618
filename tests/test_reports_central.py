"""Reports over the central database, on SQLite and PostgreSQL, agree with a kiosk's own.

The golden scenario (tests/fixtures/reports: a night shift over both DST changes in two
zones, a holiday, missing punches, double punches, punches outside any window, events
from unsynchronised clocks) is logged into a real kiosk database, and the kiosk's log is
pushed to the central database the way the sync agent pushes it: ``to_wire`` events in
``EventBatch`` bodies through ``CentralStore.ingest``. Every report made from either
source must be the same, byte for byte as JSON.
"""

from __future__ import annotations

import socket
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from clockface.errors import CentralStoreError, CentralValueError, ReportError
from kiosk.store import KioskStore
from reports.central_source import read_central_database
from reports.columns import micros
from reports.compute import compute_attendance, event_bounds
from reports.exporters import render
from reports.model import AttendanceEvent
from reports.sources import ReportInput
from reports.tables import REPORTS, build_report
from sync.protocol import WireEvent
from tests.helpers.central_reports import (
    KIOSK,
    empty_database,
    fill_central,
    open_central,
    push,
)
from tests.helpers.postgres import PostgresCluster, postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.report_stores import central_store, read_central, read_kiosk
from tests.helpers.scenario import FIRST, LAST, scenario_book, scenario_people, write_scenario

ODD_ID = "sep\x1farated"  # holds the separator the fast read puts between person ids
RESTING = "dan"  # deactivated: still in the roster, so still in the reports


def _wire(
    pid: str, direction: str, at: datetime, seq: int, synced: bool | None, log: str = "log-1"
) -> WireEvent:
    return WireEvent(
        event_id=uuid.uuid4(), log_id=log, seq=seq, person_id=pid,
        direction="in" if direction == "in" else "out", utc=at, tz="Europe/Berlin",
        distance=0.3, margin=0.2, frames=3, software_version="test", clock_synced=synced,
    )  # fmt: skip


@pytest.fixture(scope="module")
def kiosk_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden scenario in a kiosk database, with every clock_synced value."""
    path = tmp_path_factory.mktemp("kiosk") / "kiosk.db"
    with KioskStore.open(path, kiosk_id=KIOSK, actor="test", clock_status=lambda: None) as store:
        write_scenario(store, every_clock_flag=True)
        store.set_active(RESTING, False)
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def central_db(
    request: pytest.FixtureRequest, kiosk_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The same scenario, synced into a central database."""
    for database in empty_database(request.param, tmp_path_factory.mktemp("central"), request):
        fill_central(database, kiosk_db)
        yield database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_central(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new central database with one site and kiosks k1 and k2."""
    for database in empty_database(request.param, tmp_path, request):
        with open_central(database) as central:
            central.add_site("hq", "Europe/Berlin")
            central.create_kiosk("k1", "hq")
            central.create_kiosk("k2", "hq")
        yield database


def _reports(source: ReportInput) -> dict[str, bytes]:
    attendance = compute_attendance(source.events, source.people, scenario_book(), FIRST, LAST)
    return {kind: render(build_report(kind, attendance), "json") for kind in REPORTS}


def _stored(database: str) -> list[AttendanceEvent]:
    """Every event as the store's own (row by row) read gives it."""
    with open_central(database) as central:
        events, more = central.events(limit=100_000)
    assert not more
    return [
        AttendanceEvent(str(e.event_id), e.person_id, "in" if e.direction == "in" else "out",
                        e.utc, e.tz, e.clock_synced, e.kiosk)
        for e in events
    ]  # fmt: skip


# --------------------------------------------------------------------- same reports
def test_every_report_from_the_central_database_is_the_kiosks(
    kiosk_db: Path, central_db: str
) -> None:
    kiosk = read_kiosk(kiosk_db, FIRST, LAST)
    central = read_central(central_db, FIRST, LAST)
    assert sorted(central.people, key=lambda p: p.person_id) == sorted(
        kiosk.people, key=lambda p: p.person_id
    )
    assert RESTING in {p.person_id for p in central.people}
    assert len(central.events) == len(kiosk.events) > 0
    mine, theirs = _reports(central), _reports(kiosk)
    for kind in REPORTS:
        assert mine[kind] == theirs[kind], kind
    # The scenario's mess is in there, so the comparison covers it.
    anomalies = mine["anomalies"].decode()
    for kind in ("double_punch", "missing_departure", "outside_window", "clock_unsynced"):
        assert kind in anomalies, kind


def test_events_and_their_details_are_the_stored_ones(central_db: str) -> None:
    stored = _stored(central_db)
    read = read_central(central_db)
    assert len(read.events) == len(stored)
    by_id = {e.event_id: e for e in stored}
    assert sorted(e.event_id for e in read.events) == sorted(by_id)
    for event in read.events:
        assert event == by_id[event.event_id]
    assert {e.clock_synced for e in stored} == {True, False, None}
    assert {e.kiosk_id for e in stored} == {KIOSK}


def test_a_range_reads_the_events_its_reports_can_need(central_db: str) -> None:
    first, last = date(2024, 3, 30), date(2024, 4, 2)
    lo, hi = event_bounds(first, last)
    read = read_central(central_db, first, last)
    expected = sorted(micros(e.utc) for e in _stored(central_db) if lo <= e.utc < hi)
    assert 0 < len(expected) < len(_stored(central_db))
    assert sorted(read.events.utc_us.tolist()) == expected
    empty = read_central(central_db, date(1999, 1, 1), date(1999, 1, 31))
    assert len(empty.events) == 0
    assert len(empty.people) == len(scenario_people())


# --------------------------------------------------------------------- awkward events
def test_person_ids_holding_the_separator_are_read_row_by_row(empty_central: str) -> None:
    at = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
    with open_central(empty_central) as central:  # the roster refuses such an id; ingest not
        push(central, "k1", [
            _wire(ODD_ID, "in", at, 1, None),
            _wire("plain", "out", at + timedelta(minutes=1), 2, True),
            _wire(ODD_ID, "in", at + timedelta(minutes=2), 3, False),
        ])  # fmt: skip
    read = read_central(empty_central, date(2024, 5, 6), date(2024, 5, 6))
    order = sorted(range(len(read.events)), key=lambda i: int(read.events.utc_us[i]))
    events = [read.events.event(i) for i in order]
    assert [e.person_id for e in events] == [ODD_ID, "plain", ODD_ID]
    assert [e.direction for e in events] == ["in", "out", "in"]
    assert [e.clock_synced for e in events] == [None, True, False]
    assert [e.utc for e in events] == [at + timedelta(minutes=n) for n in range(3)]
    assert read.people == ()


def test_twins_get_their_own_details_and_a_late_twin_is_refused(empty_central: str) -> None:
    """Two kiosks stamp the same person going in at the same microsecond: equal in every
    column a report reads, told apart by event id in the details."""
    at = datetime(2024, 5, 6, 7, 0, 0, 123456, tzinfo=UTC)
    one, late = _wire("ada", "in", at, 1, True), _wire("ada", "in", at, 3, True)
    two = _wire("ada", "in", at, 1, True, log="log-2")
    with open_central(empty_central) as central:
        push(central, "k1", [one, _wire("ada", "out", at + timedelta(hours=8), 2, True)])
        push(central, "k2", [two])
    with central_store(empty_central) as store:  # details are read while it is open
        first = read_central_database(store)
        second = read_central_database(store)
        twins = [i for i in range(len(first.events)) if first.events.inward[i]]
        assert len(twins) == 2
        # Asked one at a time, in either order, the twins get the same, distinct details.
        forward = [first.events.detail(i) for i in twins]
        backward = [second.events.detail(i) for i in reversed(twins)][::-1]
        assert forward == backward
        assert {d[0] for d in forward} == {str(one.event_id), str(two.event_id)}
        assert {d[2] for d in forward} == {"k1", "k2"}
        third = read_central_database(store)
        with open_central(empty_central) as central:
            push(central, "k1", [late])  # a third twin, after the read
        with pytest.raises(CentralStoreError, match="arrived while the report read them"):
            third.events.detail(twins[0])
    assert len(read_central(empty_central).events) == 4


def test_an_unknown_time_zone_in_the_database_is_a_report_error(tmp_path: Path) -> None:
    database = str(tmp_path / "central.db")
    with open_central(database) as central:
        central.add_site("hq", "Europe/Berlin")
        central.create_kiosk("k1", "hq")
        push(central, "k1", [_wire("ada", "in", datetime(2024, 5, 6, 7, tzinfo=UTC), 1, True)])
    with sqlite3.connect(database) as conn:  # written behind the service's back
        conn.execute("UPDATE events SET tz = 'Mars/Olympus_Mons'")
    conn.close()
    with central_store(database) as store:
        read = read_central_database(store)  # the details, time zone included, come later
        with pytest.raises(ReportError, match="unknown time zone 'Mars/Olympus_Mons'"):
            read.events.event(0)


def test_the_web_pages_url_of_a_sqlite_database_is_read(kiosk_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "central.db"
    fill_central(str(path), kiosk_db)
    with open_central(str(path)) as central:
        url = central.engine.url.render_as_string(hide_password=False)
    assert url.startswith("sqlite+pysqlite:///")
    assert len(read_central(url, FIRST, LAST).events) == len(read_central(path, FIRST, LAST).events)


# --------------------------------------------------------------------- refusals
def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(err.value)
    assert text and "\n" not in text and "Traceback" not in text
    return text


def test_a_missing_file_a_folder_or_an_empty_file_is_refused_and_never_created(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nope" / "central.db"
    with pytest.raises(ReportError, match="no such file") as err:
        read_central(missing, FIRST, LAST)
    assert "--central-db" in _one_line(err)
    assert not missing.exists() and not missing.parent.exists()
    with pytest.raises(ReportError, match="a folder"):
        read_central(tmp_path, FIRST, LAST)
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(ReportError, match="an empty file"):
        read_central(empty, FIRST, LAST)
    assert empty.stat().st_size == 0


def test_a_file_that_is_not_a_central_database_is_refused(kiosk_db: Path, tmp_path: Path) -> None:
    size = kiosk_db.stat().st_size
    with pytest.raises(CentralStoreError, match="not a clockface central database") as err:
        read_central(kiosk_db, FIRST, LAST)
    _one_line(err)
    assert kiosk_db.stat().st_size == size
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"these are not the tables you are looking for" * 100)
    with pytest.raises(CentralStoreError, match="not a SQLite database") as err:
        read_central(garbage)
    _one_line(err)


def test_an_unreachable_postgresql_or_an_unknown_url_is_one_line() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://clockface:s3cret@127.0.0.1:{port}/central"
    with pytest.raises(CentralStoreError, match="check that PostgreSQL runs") as err:
        read_central(url, FIRST, LAST)
    assert "s3cret" not in _one_line(err)
    with pytest.raises(CentralValueError, match="unsupported database") as refused:
        read_central("mysql://db/central")
    _one_line(refused)


def test_dates_are_both_given_or_neither(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="both"):
        read_central(tmp_path / "central.db", FIRST, None)
    assert not (tmp_path / "central.db").exists()
