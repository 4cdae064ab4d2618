"""The golden scenario of tests/fixtures/reports: its events, people and schedules.

tests/test_reports_golden.py describes the scenario and checks every report over it to
the minute; the report, export, source and verification tests reuse it.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from reports.model import AttendanceEvent, PersonInfo
from reports.schedule_files import load_schedules
from reports.schedules import ScheduleBook

if TYPE_CHECKING:
    from kiosk.store import KioskStore

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


def write_scenario(store: KioskStore, *, every_clock_flag: bool = False) -> None:
    """The scenario's people, then its events in time order, into a kiosk store.

    With ``every_clock_flag`` an event that carries no clock_synced of its own is stored
    with True, False and None in turn (open the store with ``clock_status=lambda: None``
    so that None is stored as NULL); without, the store's own clock probe decides."""
    for person in scenario_people():
        store.add_person(person.person_id, person.name, person.team)
    flags = [True, False, None]
    for n, event in enumerate(sorted(scenario_events(), key=lambda e: e.utc)):
        synced = None  # the store's probe
        if every_clock_flag:
            synced = event.clock_synced if event.clock_synced is not None else flags[n % 3]
        store.append_event(
            event.person_id,
            event.direction,
            utc=event.utc,
            tz=event.tz,
            distance=0.3,
            margin=0.2,
            frames=3,
            software_version="test",
            clock_synced=synced,
        )
