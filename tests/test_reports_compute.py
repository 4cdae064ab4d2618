"""Attendance computation: pairing punches, owning shifts, filters, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clockface.errors import ReportError
from reports.anomalies import pair_punches
from reports.compute import Selection, compute_attendance
from reports.model import AttendanceEvent, PersonInfo
from reports.schedules import ScheduleBook, Shift, Site

_ids = count()
CHICAGO = Site("chicago", "America/Chicago")
BERLIN = Site("berlin", "Europe/Berlin")


def punch(
    person: str, direction: str, when: datetime, tz: str = "America/Chicago"
) -> AttendanceEvent:
    return AttendanceEvent(f"e{next(_ids)}", person, "in" if direction == "in" else "out", when, tz)


def local(y: int, m: int, d: int, hh: int, mm: int, tz: str = "America/Chicago") -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo(tz))


def day_shift(**fields: object) -> Shift:
    base: dict[str, object] = {
        "site": "chicago",
        "weekdays": frozenset(range(7)),
        "start": time(9),
        "end": time(17),
        "team": "ops",
        "grace_late": 5,
        "grace_early": 5,
    }
    base.update(fields)
    return Shift(**base)  # type: ignore[arg-type]


ANN = PersonInfo("ann", "Ann", "ops")
D = date(2024, 5, 6)


def test_pairing_periods_and_anomalies() -> None:
    t = local(2024, 5, 6, 9, 0)
    events = [
        punch("ann", "in", t),
        punch("ann", "out", t + timedelta(hours=3)),
        punch("ann", "in", t + timedelta(hours=4)),
        punch("ann", "out", t + timedelta(hours=8)),
    ]
    result = pair_punches(events, "ann", D)
    assert [(b - a) for a, b in result.periods] == [timedelta(hours=3), timedelta(hours=4)]
    assert result.anomalies == () and result.departure == events[-1]

    runs = [
        punch("ann", "out", t - timedelta(minutes=30)),
        punch("ann", "in", t),
        punch("ann", "in", t + timedelta(minutes=1)),
        punch("ann", "out", t + timedelta(hours=8)),
        punch("ann", "out", t + timedelta(hours=8, minutes=5)),
    ]
    result = pair_punches(list(reversed(runs)), "ann", D)  # order does not matter
    assert result.periods == ((runs[1].utc, runs[4].utc),)
    assert [a.kind for a in result.anomalies] == ["missing_arrival", "double_punch", "double_punch"]
    assert result.arrival == runs[1] and result.departure == runs[4]

    open_end = pair_punches(
        [runs[1], runs[3], punch("ann", "in", t + timedelta(hours=9))], "ann", D
    )
    assert [a.kind for a in open_end.anomalies] == ["missing_departure"]
    assert open_end.departure is None and len(open_end.periods) == 1


def test_overlapping_windows_arrival_to_the_next_shift_departure_to_the_last() -> None:
    night = day_shift(weekdays=frozenset({0}), start=time(22), end=time(6))
    morning = day_shift(weekdays=frozenset({1}), start=time(7), end=time(15))
    book = ScheduleBook.build([CHICAGO], [night, morning])
    events = [
        punch("ann", "in", local(2024, 5, 6, 21, 55)),
        punch("ann", "out", local(2024, 5, 7, 6, 30)),  # in both windows: the night's end
        punch("ann", "in", local(2024, 5, 7, 6, 40)),  # in both windows: the morning's start
        punch("ann", "out", local(2024, 5, 7, 15, 0)),
    ]
    result = compute_attendance(events, [ANN], book, D, D + timedelta(days=1))
    monday, tuesday = result.days
    assert [e.event_id for e in monday.events] == [events[0].event_id, events[1].event_id]
    assert monday.worked_minutes == 8 * 60 + 35 and monday.early_minutes is None
    assert tuesday.worked_minutes == 8 * 60 + 20 and tuesday.late_minutes is None
    assert result.anomalies == ()


def test_range_edges_the_night_before_owns_its_punches() -> None:
    night = day_shift(start=time(22), end=time(6))
    book = ScheduleBook.build([CHICAGO], [night])
    events = [
        punch("ann", "in", local(2024, 5, 5, 22, 0)),  # Sunday's shift, before the range
        punch("ann", "out", local(2024, 5, 6, 6, 0)),
        punch("ann", "in", local(2024, 5, 6, 22, 30)),
        punch("ann", "out", local(2024, 5, 7, 6, 0)),
    ]
    result = compute_attendance(events, [ANN], book, D, D)
    (monday,) = result.days
    assert monday.late_minutes == 30 and monday.worked_minutes == 450
    assert result.anomalies == ()  # the Sunday punches are no anomaly of this range


def test_selection_by_person_team_and_site() -> None:
    book = ScheduleBook.build(
        [CHICAGO, BERLIN],
        [day_shift(), day_shift(team="eu", site="berlin")],
    )
    people = [ANN, PersonInfo("bo", "Bo", "ops"), PersonInfo("eva", "Eva", "eu")]
    events = [punch("zed", "in", local(2024, 5, 6, 9, 0))]

    def who(selection: Selection) -> list[str]:
        result = compute_attendance(events, people, book, D, D, selection=selection)
        return [s.person.person_id for s in result.people]

    assert who(Selection()) == ["ann", "bo", "eva"]
    assert who(Selection(person_id="bo")) == ["bo"]
    assert who(Selection(team="ops")) == ["ann", "bo"]
    assert who(Selection(site="berlin")) == ["eva"]
    assert who(Selection(team="ops", site="berlin")) == []
    everyone = compute_attendance(events, people, book, D, D)
    assert [a.kind for a in everyone.anomalies].count("unknown_person") == 1
    only_team = compute_attendance(events, people, book, D, D, selection=Selection(team="ops"))
    assert "unknown_person" not in [a.kind for a in only_team.anomalies]


def test_progress_is_called_once_per_person_and_a_backwards_range_refused() -> None:
    book = ScheduleBook.build([CHICAGO], [day_shift()])
    calls: list[int] = []
    compute_attendance([], [ANN, PersonInfo("bo", "Bo")], book, D, D, progress=calls.append)
    assert calls == [1, 1]
    with pytest.raises(ReportError, match="runs backwards"):
        compute_attendance([], [ANN], book, D, D - timedelta(days=1))


def test_event_records_refuse_naive_times_and_bad_values() -> None:
    with pytest.raises(ReportError, match="timezone-aware"):
        AttendanceEvent("x", "ann", "in", datetime(2024, 5, 6, 9))
    with pytest.raises(ReportError, match="direction"):
        AttendanceEvent("x", "ann", "sideways", datetime.now(UTC))  # type: ignore[arg-type]
    with pytest.raises(ReportError, match="unknown time zone"):
        AttendanceEvent("x", "ann", "in", datetime.now(UTC), "Nowhere/Land")
    event = AttendanceEvent("x", "ann", "in", local(2024, 5, 6, 9, 0))
    assert event.utc.tzinfo is UTC and event.utc.hour == 14


# --------------------------------------------------------------------- properties
ZONES = ["America/Chicago", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    day=st.dates(min_value=date(2023, 1, 1), max_value=date(2025, 12, 31)),
    start_minute=st.integers(0, 24 * 60 - 1),
    length=st.integers(30, 16 * 60),
    grace=st.integers(0, 30),
    offsets=st.lists(st.integers(-120 * 60, 20 * 3600), min_size=0, max_size=8),
    directions=st.lists(st.sampled_from(["in", "out"]), min_size=8, max_size=8),
)
def test_properties_of_one_shift(
    zone: str,
    day: date,
    start_minute: int,
    length: int,
    grace: int,
    offsets: list[int],
    directions: list[str],
) -> None:
    start = time(start_minute // 60, start_minute % 60)
    end_minute = (start_minute + length) % (24 * 60)
    shift = Shift(
        site="s",
        weekdays=frozenset(range(7)),
        start=start,
        end=time(end_minute // 60, end_minute % 60),
        team="ops",
        grace_late=min(grace, length),
        grace_early=min(grace, length),
    )
    book = ScheduleBook.build([Site("s", zone)], [shift])
    plan = book.plan(ANN, day)
    assert plan.occurrence is not None
    occ = plan.occurrence
    # A clock change moves a shift's real length by at most an hour.
    assert abs(occ.scheduled_minutes - length) <= 60
    events = [
        punch("ann", directions[i], occ.start + timedelta(seconds=s), zone)
        for i, s in enumerate(offsets)
    ]
    # One arrival exactly at start + grace: never late.
    events.append(punch("ann", "in", occ.late_after, zone))
    result = compute_attendance(events, [ANN], book, day, day)
    (shift_day,) = result.days
    assert shift_day.worked_minutes >= 0
    window = occ.window_end - occ.window_start
    assert shift_day.worked_minutes <= window // timedelta(minutes=1)
    arrival = shift_day.arrival
    assert arrival is not None
    if arrival.utc <= occ.late_after:
        assert shift_day.late_minutes is None
    else:
        assert shift_day.late_minutes is not None and shift_day.late_minutes >= 1
        assert shift_day.late_minutes * 60 >= (arrival.utc - occ.start).total_seconds()
    if shift_day.early_minutes is not None:
        assert shift_day.early_minutes >= 1
    # Every event is either in the shift or listed as an anomaly: none dropped.
    listed = {a.event.event_id for a in result.anomalies if a.event is not None}
    owned = {e.event_id for e in shift_day.events}
    for event in events:
        local_day = event.local_time.date()
        if event.event_id not in owned and local_day == day:
            assert event.event_id in listed


@settings(max_examples=100, deadline=None)
@given(seconds=st.integers(0, 3 * 3600), grace=st.integers(0, 60))
def test_late_minutes_round_up_from_the_start(seconds: int, grace: int) -> None:
    book = ScheduleBook.build([CHICAGO], [day_shift(grace_late=grace)])
    start = local(2024, 5, 6, 9, 0)
    arrive = punch("ann", "in", start + timedelta(seconds=seconds))
    (shift_day,) = compute_attendance([arrive], [ANN], book, D, D).days
    if seconds <= grace * 60:
        assert shift_day.late_minutes is None
    else:
        assert shift_day.late_minutes == -(-seconds // 60)
