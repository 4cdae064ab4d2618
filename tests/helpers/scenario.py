"""The golden scenario of tests/fixtures/reports: its events, people and schedules.

tests/test_reports_golden.py describes the scenario and checks every report over it to
the minute; the report, export, source and verification tests reuse it.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

from reports.model import AttendanceEvent, PersonInfo
from reports.schedule_files import load_schedules
from reports.schedules import ScheduleBook

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reports"
GOLDEN = FIXTURES / "golden"
FIRST, LAST = date(2024, 3, 1), date(2024, 11, 30)  # the days the scenario covers


def scenario_events() -> list[AttendanceEvent]:
    text = (FIXTURES / "events.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    events = []
    for row in csv.DictReader(lines):
        synced = row["clock_synced"]
        events.append(
            AttendanceEvent(
                event_id=row["event_id"],
                person_id=row["person_id"],
                direction="in" if row["direction"] == "in" else "out",
                utc=datetime.fromisoformat(row["time"]),
                tz=row["tz"],
                clock_synced=None if not synced else synced == "true",
                kiosk_id="k1",
            )
        )
    return events


def scenario_people() -> list[PersonInfo]:
    with (FIXTURES / "people.csv").open(encoding="utf-8", newline="") as file:
        return [PersonInfo(r["person_id"], r["name"], r["team"]) for r in csv.DictReader(file)]


def scenario_book() -> ScheduleBook:
    return load_schedules(FIXTURES / "schedules.toml")
