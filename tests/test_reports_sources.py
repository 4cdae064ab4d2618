"""Reading report input from a real kiosk SQLite file, and the columns it becomes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clockface.errors import ReportError
from kiosk.store import KioskStore
from reports.columns import EventColumns, micros, parse_utc
from reports.compute import compute_attendance, event_bounds
from reports.model import AttendanceEvent, PersonInfo, from_store_event
from reports.schedules import ScheduleBook
from reports.tables import REPORTS, build_report
from tests.helpers.report_stores import read_kiosk
from tests.helpers.scenario import (
    FIRST,
    LAST,
    scenario_book,
    scenario_events,
    scenario_people,
    write_scenario,
)

ODD_ID = "sep\x1farated"  # holds the separator the fast read puts between values


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
        max_size=20,
    )
)
def test_parse_utc_reads_stored_times_exactly(moments: list[datetime]) -> None:
    aware = [m.replace(tzinfo=UTC) for m in moments]
    parsed = parse_utc("".join(_iso(m) for m in aware), len(aware))
    assert parsed.tolist() == [micros(m) for m in aware]


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01 07:57:03.120000Z",  # a space for the T
        "2024-05-01T07:57:03.120000+",  # no Z
        "2024-13-01T07:57:03.120000Z",  # month 13
        "2024-05-01T24:00:00.000000Z",
        "2024-05-01T07:5x:03.120000Z",
        "2024-05-01T07:57:03Z",  # no microseconds: the wrong width
    ],
)
def test_parse_utc_refuses_anything_else(text: str) -> None:
    with pytest.raises(ReportError, match="ISO UTC times"):
        parse_utc(text, 1)


@pytest.fixture(scope="module")
def kiosk_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden scenario, with every clock_synced value and an awkward person id."""
    path = tmp_path_factory.mktemp("kiosk") / "kiosk.db"
    # A probe that does not know: clock_synced=None is then stored as NULL.
    with KioskStore.open(path, kiosk_id="k1", actor="test", clock_status=lambda: None) as store:
        write_scenario(store, every_clock_flag=True)
    return path


def _objects(path: Path) -> tuple[list[PersonInfo], list[AttendanceEvent]]:
    with KioskStore.open(path) as store:
        people = [PersonInfo(p.person_id, p.name, p.team) for p in store.people()]
        return people, [from_store_event(e) for e in store.events()]


def test_range_read_gives_the_reports_of_every_event(kiosk_db: Path) -> None:
    people, objects = _objects(kiosk_db)
    book = scenario_book()
    source = read_kiosk(kiosk_db, FIRST, LAST)
    assert sorted(p.person_id for p in source.people) == sorted(p.person_id for p in people)
    lo, hi = event_bounds(FIRST, LAST)
    assert len(source.events) == sum(lo <= e.utc < hi for e in objects)
    fast = compute_attendance(source.events, source.people, book, FIRST, LAST)
    plain = compute_attendance(objects, people, book, FIRST, LAST)
    for kind in REPORTS:
        assert build_report(kind, fast).table == build_report(kind, plain).table, kind
    assert build_report("late", fast).anomalies == build_report("late", plain).anomalies
    # Events become objects with every field of the stored ones.
    by_id = {e.event_id: e for e in objects}
    for day in fast.days:
        for event in day.events:
            assert event == by_id[event.event_id]
    kinds = {a.kind for a in fast.anomalies}
    assert "clock_unsynced" in kinds
    assert {e.clock_synced for e in objects} == {True, False, None}


def test_whole_log_read_and_the_row_by_row_fallback(kiosk_db: Path, tmp_path: Path) -> None:
    _, objects = _objects(kiosk_db)
    whole = read_kiosk(kiosk_db)
    assert sorted(e.event_id for e in whole.events) == sorted(e.event_id for e in objects)
    odd = tmp_path / "odd.db"
    moment = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
    with KioskStore.open(odd, kiosk_id="k2", actor="test", clock_status=lambda: None) as store:
        # An id the roster's grammar refuses today (clockface.roster) but events carry
        # as sent, and a database of the older rules may hold.
        for n, who in enumerate([ODD_ID, "plain", ODD_ID]):
            store.append_event(
                who, "in" if n % 2 == 0 else "out", utc=moment + timedelta(minutes=n),
                tz="Europe/Berlin", distance=0.3, margin=0.2, frames=3, software_version="t",
                clock_synced=[None, True, False][n],
            )  # fmt: skip
    read = read_kiosk(odd, date(2024, 5, 6), date(2024, 5, 6))
    assert list(read.events.person_id) == [ODD_ID, "plain", ODD_ID]
    assert [e.direction for e in read.events] == ["in", "out", "in"]
    assert [e.clock_synced for e in read.events] == [None, True, False]
    assert read.events.utc_us.tolist() == [micros(moment + timedelta(minutes=n)) for n in range(3)]


def test_an_empty_range_and_bad_arguments(kiosk_db: Path, tmp_path: Path) -> None:
    empty = read_kiosk(kiosk_db, date(1999, 1, 1), date(1999, 1, 31))
    assert len(empty.events) == 0
    result = compute_attendance(empty.events, empty.people, scenario_book(), FIRST, FIRST)
    assert all(d.absent for d in result.days)
    with pytest.raises(ReportError, match="both"):
        read_kiosk(kiosk_db, FIRST, None)
    with pytest.raises(ReportError, match="no such file"):
        read_kiosk(tmp_path / "missing.db", FIRST, LAST)
    assert not (tmp_path / "missing.db").exists()


def test_columns_from_objects_give_back_the_same_objects() -> None:
    events = scenario_events()
    columns = EventColumns.from_events(events)
    assert len(columns) == len(events)
    assert all(columns.event(i) is e for i, e in enumerate(events))
    assert columns.inward.tolist() == [e.direction == "in" for e in events]
    codes, ids = columns.person_codes()
    assert [ids[c] for c in codes.tolist()] == [e.person_id for e in events]
    with pytest.raises(ReportError, match="lengths"):
        EventColumns(["a"], [True, False], [1], [1], lambda indices: [])
    assert np.array_equal(columns.synced, [-1 if e.clock_synced is None else int(e.clock_synced)
                                           for e in events])  # fmt: skip


def test_book_plans_over_a_range_are_its_day_by_day_plans() -> None:
    book: ScheduleBook = scenario_book()
    first, last = date(2024, 3, 25), date(2024, 4, 5)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    for person in scenario_people():
        assert book.plans(person, first, last) == [book.plan(person, d) for d in days]
    # Team mates without patterns of their own share one calendar, worked out once.
    one, two = PersonInfo("x1", "X1", "nights"), PersonInfo("x2", "X2", "nights")
    assert book.pattern_plans(one, first, last) is book.pattern_plans(two, first, last)


def test_aggregated_columns_are_parsed_or_refused() -> None:
    from reports.sources import SEPARATOR, parse_aggregates, range_bounds

    times = ["2024-05-01T07:57:03.120000Z", "2024-05-01T16:02:00.000001Z"]
    parsed = parse_aggregates(2, "".join(times), "34", SEPARATOR.join(["ada", "bob"]))
    assert parsed is not None
    assert parsed.person_id == ["ada", "bob"]
    assert parsed.inward.tolist() == [True, False]
    assert parsed.synced.tolist() == [1, -1]
    assert parsed.utc_us.tolist() == [micros(datetime.fromisoformat(t)) for t in times]
    # A person id holding the separator: the caller reads row by row instead.
    assert parse_aggregates(2, "".join(times), "34", SEPARATOR.join(["a", "b", "c"])) is None
    with pytest.raises(ReportError, match="not valid"):
        parse_aggregates(2, "".join(times), "39", SEPARATOR.join(["ada", "bob"]))
    assert range_bounds(None, None) is None
    assert range_bounds(date(2024, 3, 1), date(2024, 3, 31)) == (
        "2024-02-28T00:00:00.000000Z",
        "2024-04-03T00:00:00.000000Z",
    )
