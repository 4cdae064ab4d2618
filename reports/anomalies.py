"""What is odd about a person's punches: listed in every report, never dropped.

Kinds:

- ``missing_departure``: a shift's last punch is an arrival (the period stays open and
  counts no hours).
- ``missing_arrival``: a departure with no arrival before it in the shift.
- ``double_punch``: the same direction twice in a row within a shift window (the first
  arrival opens a period, the last departure of a run closes it).
- ``outside_window``: a punch in no shift's window, on a day the person has a schedule.
- ``clock_unsynced``: a punch stamped while the kiosk's clock was not synchronised (it
  still counts; its time may be wrong).
- ``no_schedule``: a person with no schedule on any day of the report.
- ``unknown_person``: punches of a person id the roster does not hold (erased, or a
  kiosk with an older roster).

:func:`pair_punches` turns one shift's punches into worked periods and anomalies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from reports.model import AttendanceEvent

AnomalyKind = Literal[
    "missing_departure",
    "missing_arrival",
    "double_punch",
    "outside_window",
    "clock_unsynced",
    "no_schedule",
    "unknown_person",
]


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One odd thing, about a person on a day (the shift's date), maybe about one event."""

    kind: AnomalyKind
    person_id: str
    day: date | None
    event: AttendanceEvent | None
    detail: str


@dataclass(frozen=True, slots=True)
class Punches:
    """One shift's punches read as worked periods."""

    periods: tuple[tuple[datetime, datetime], ...]
    arrival: AttendanceEvent | None
    """The first arrival."""
    departure: AttendanceEvent | None
    """The last departure, when no period is left open after it."""
    anomalies: tuple[Anomaly, ...]


def pair_punches(events: Sequence[AttendanceEvent], person_id: str, day: date) -> Punches:
    """Pair one shift's punches, in time order, into in→out periods.

    A run of arrivals opens a period at its first; a run of departures closes it at its
    last; the others in a run are double punches. A departure with nothing open is a
    missing arrival; a period still open at the end is a missing departure.
    """
    ordered = sorted(events, key=lambda e: (e.utc, e.event_id))
    periods: list[tuple[datetime, datetime]] = []
    anomalies: list[Anomaly] = []
    opened: AttendanceEvent | None = None
    closing: AttendanceEvent | None = None  # the latest departure of the current run
    previous: AttendanceEvent | None = None
    for event in ordered:
        if previous is not None and previous.direction == event.direction:
            anomalies.append(double_punch(person_id, day, event, previous))
        if event.direction == "in":
            if closing is not None and opened is not None:
                periods.append((opened.utc, closing.utc))
                opened = None
            closing = None
            if opened is None:
                opened = event
        else:
            if opened is None and closing is None:
                anomalies.append(missing_arrival(person_id, day, event))
            closing = event
        previous = event
    if opened is not None and closing is not None:
        periods.append((opened.utc, closing.utc))
        opened = None
    if opened is not None:
        anomalies.append(missing_departure(person_id, day, opened))
    arrival = next((e for e in ordered if e.direction == "in"), None)
    departure = closing if opened is None else None
    return Punches(tuple(periods), arrival, departure, tuple(anomalies))


def double_punch(
    person_id: str, day: date, event: AttendanceEvent, previous: AttendanceEvent
) -> Anomaly:
    """``event`` has the direction of the punch before it in its shift."""
    return Anomaly(
        "double_punch",
        person_id,
        day,
        event,
        f"{event.direction} again after the {event.direction} at {previous.local_time:%H:%M:%S}",
    )


def missing_arrival(person_id: str, day: date, event: AttendanceEvent) -> Anomaly:
    """``event``, a departure, is its shift's first punch."""
    return Anomaly("missing_arrival", person_id, day, event, "out with no in before it")


def missing_departure(person_id: str, day: date, opened: AttendanceEvent) -> Anomaly:
    """The period ``opened`` began is still open at the shift's last punch."""
    return Anomaly(
        "missing_departure",
        person_id,
        day,
        opened,
        f"in at {opened.local_time:%H:%M:%S} with no out after it",
    )
