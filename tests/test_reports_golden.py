"""The golden scenario: every report over tests/fixtures/reports, checked to the minute.

The scenario (schedules.toml, events.csv, people.csv) holds a 22:00-06:00 night shift
over the spring-forward and fall-back nights in Europe/Berlin and America/Chicago, a
holiday, a day off, a person whose own pattern beats their team's, a missing punch-out,
a double punch, punches outside any window, an event from an unsynchronised clock, a
person with no schedule and one not in the roster. The expected reports are the CSV
files in golden/, generated once and checked by hand, minute by minute; the tests below
also assert the key numbers directly. Set CLOCKFACE_UPDATE_GOLDEN=1 to rewrite the golden
files after a deliberate change (and read the diff).
"""

from __future__ import annotations

import csv
import io
import os
from datetime import date

import pytest

from reports.compute import Attendance, ShiftDay, compute_attendance
from reports.exporters import render
from reports.tables import REPORTS, build_report
from tests.helpers.scenario import (
    FIRST,
    GOLDEN,
    LAST,
    scenario_book,
    scenario_events,
    scenario_people,
)


@pytest.fixture(scope="module")
def attendance() -> Attendance:
    return compute_attendance(scenario_events(), scenario_people(), scenario_book(), FIRST, LAST)


def golden_rows(kind: str) -> list[dict[str, str]]:
    with (GOLDEN / f"{kind}.csv").open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize("kind", list(REPORTS))
def test_report_matches_its_golden_file(attendance: Attendance, kind: str) -> None:
    data = render(build_report(kind, attendance), "csv")
    path = GOLDEN / f"{kind}.csv"
    if os.environ.get("CLOCKFACE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    got = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    assert got == golden_rows(kind)


def day(attendance: Attendance, person: str, when: date) -> ShiftDay:
    (found,) = [d for d in attendance.days if d.person.person_id == person and d.day == when]
    return found


def test_night_shift_over_spring_forward_is_an_hour_shorter(attendance: Attendance) -> None:
    # Berlin, Sat 30 March 2024: 22:00 CET to 06:00 CEST is 7 hours of real time.
    berlin = day(attendance, "ada", date(2024, 3, 30))
    assert berlin.occurrence.scheduled_minutes == 7 * 60
    assert berlin.worked_minutes == 7 * 60 + 5  # 21:55 CET to 06:00 CEST
    assert berlin.late_minutes is None and berlin.early_minutes is None
    # Chicago, Sat 9 March 2024: 22:00 CST to 06:00 CDT.
    chicago = day(attendance, "bob", date(2024, 3, 9))
    assert chicago.occurrence.scheduled_minutes == 7 * 60
    assert chicago.worked_minutes == 7 * 60 + 4  # 21:57 CST to 06:01 CDT


def test_night_shift_over_fall_back_is_an_hour_longer(attendance: Attendance) -> None:
    berlin = day(attendance, "ada", date(2024, 10, 26))
    assert berlin.occurrence.scheduled_minutes == 9 * 60
    assert berlin.worked_minutes == 9 * 60 + 5  # 21:58 CEST to 06:03 CET
    chicago = day(attendance, "bob", date(2024, 11, 2))
    assert chicago.occurrence.scheduled_minutes == 9 * 60
    assert chicago.late_minutes == 20  # 22:20 CDT, grace 10
    assert chicago.worked_minutes == 8 * 60 + 40  # 22:20 CDT to 06:00 CST
    assert chicago.early_minutes is None  # left at 06:00 CST, the end


def test_an_ordinary_night_is_late_and_early_to_the_minute(attendance: Attendance) -> None:
    night = day(attendance, "ada", date(2024, 3, 31))
    assert night.occurrence.scheduled_minutes == 8 * 60
    assert (night.late_minutes, night.early_minutes, night.worked_minutes) == (10, 10, 460)
    # The shift belongs to the day it starts, even though it ends on 1 April.
    assert night.departure is not None and night.departure.local_time.date() == date(2024, 4, 1)


def test_holiday_day_off_and_person_wins(attendance: Attendance) -> None:
    bob_days = {d.day for d in attendance.days if d.person.person_id == "bob"}
    assert date(2024, 7, 4) not in bob_days  # Independence Day at the Chicago site
    dan_days = {d.day: d for d in attendance.days if d.person.person_id == "dan"}
    assert set(dan_days) == {date(2024, 7, 1), date(2024, 7, 3), date(2024, 7, 5)}
    # Dan's own 10:00-18:00 beats his team's 09:00-17:00: 09:50 is early, not late.
    assert dan_days[date(2024, 7, 1)].occurrence.shift.text == "10:00-18:00"
    assert dan_days[date(2024, 7, 3)].late_minutes == 6
    assert dan_days[date(2024, 7, 5)].early_minutes is None  # 17:56, within 5 min grace


def test_exactly_at_start_plus_grace_is_on_time(attendance: Attendance) -> None:
    friday = day(attendance, "bob", date(2024, 7, 5))
    assert friday.arrival is not None and friday.late_minutes is None
    assert friday.worked_minutes == 0  # no punch-out: no hours, an anomaly instead


def test_every_anomaly_is_listed(attendance: Attendance) -> None:
    found = {
        (a.kind, a.person_id, a.event.event_id if a.event else None) for a in attendance.anomalies
    }
    assert found == {
        ("outside_window", "bob", "b3"),
        ("double_punch", "bob", "b9"),
        ("missing_departure", "bob", "b11"),
        ("outside_window", "bob", "b12"),
        ("no_schedule", "carol", None),
        ("clock_unsynced", "dan", "d3"),
        ("unknown_person", "erin", "e1"),
    }


def test_absent_only_on_a_scheduled_day_without_arrival(attendance: Attendance) -> None:
    absent = [(d.person.person_id, d.day) for d in attendance.days if d.absent]
    assert absent == [("ada", date(2024, 10, 27))]


def test_the_events_are_not_changed() -> None:
    events = scenario_events()
    before = list(events)
    compute_attendance(events, scenario_people(), scenario_book(), FIRST, LAST)
    assert events == before
