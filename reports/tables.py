"""Reports as typed tables: what every exporter writes, so every format agrees.

A :class:`Table` is columns (a key, a header, a kind) and rows of plain values: text,
whole numbers, decimals, dates, local times and local date-times (naive, at the shift's
site, to the second). :func:`build_report` makes the main table of one report kind and
the table of anomalies that goes with every report.

Report kinds (``REPORTS``): late, early, absent, hours (per shift, then a total row per
person), summary (per person over the range) and anomalies.

The tables read the shifts as columns (``Attendance.shifts``): they pick the shifts a
report shows with array masks, sort them with numpy, add up the summary with
``bincount``, and make Python values only for the rows they write. The row functions
(:func:`late_row`, :func:`summary_row`, ...) are the one place each row's cells are made;
anything that has the same facts (the bench's naive baseline) can make the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Literal

import numpy as np
import numpy.typing as npt

from clockface.errors import ReportError
from reports.anomalies import Anomaly
from reports.compute import Attendance, PersonSummary, ShiftTable
from reports.model import PersonInfo
from reports.schedules import Occurrence

ColumnKind = Literal["text", "int", "float", "date", "time", "datetime"]
Cell = str | int | float | date | time | datetime | None


def text_of(cell: Cell, kind: str) -> str:
    """A cell as text, the way CSV and HTML show it ('' for nothing)."""
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, time):
        return cell.strftime("%H:%M")
    if isinstance(cell, float) or kind == "float":
        return f"{float(cell):.2f}"
    return str(cell)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    header: str
    kind: ColumnKind


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def records(self) -> list[dict[str, Cell]]:
        """Rows as dicts keyed by column key."""
        keys = [c.key for c in self.columns]
        return [dict(zip(keys, row, strict=True)) for row in self.rows]


@dataclass(frozen=True, slots=True)
class Report:
    """One report: its kind, range, main table and the anomalies of the same people."""

    kind: str
    first: date
    last: date
    table: Table
    anomalies: Table

    @property
    def title(self) -> str:
        return f"{self.table.title}, {self.first} to {self.last}"


_PERSON = (
    Column("person_id", "Person", "text"),
    Column("name", "Name", "text"),
    Column("team", "Team", "text"),
)
_SHIFT = (
    Column("date", "Date", "date"),
    *_PERSON,
    Column("site", "Site", "text"),
    Column("shift", "Shift", "text"),
)


@dataclass(frozen=True, slots=True)
class Totals:
    """One person's numbers over a range: a row of the summary."""

    days_scheduled: int
    days_present: int
    late_count: int
    late_minutes: int
    early_count: int
    early_minutes: int
    absent: int
    worked_minutes: int
    sites: str | None
    note: str | None

    @classmethod
    def of(cls, summary: PersonSummary, first: date, last: date) -> Totals:
        """Added up from the person's shifts, one by one."""
        days = summary.days
        late = [d.late_minutes for d in days if d.late_minutes is not None]
        early = [d.early_minutes for d in days if d.early_minutes is not None]
        names = sorted({d.occurrence.site.name for d in days})
        return cls(
            days_scheduled=len(days),
            days_present=sum(not d.absent for d in days),
            late_count=len(late),
            late_minutes=sum(late),
            early_count=len(early),
            early_minutes=sum(early),
            absent=sum(d.absent for d in days),
            worked_minutes=sum(d.worked_minutes for d in days),
            sites=_sites(names, summary.person),
            note=_note(summary.unscheduled_days, first, last),
        )


Row = tuple[Cell, ...]


def late_row(
    person: PersonInfo,
    occurrence: Occurrence,
    arrival: datetime,
    minutes: int,
    cells: CellCache | None = None,
) -> Row:
    """A row of the late report; ``arrival`` is the arrival's instant (UTC)."""
    cells = cells or CellCache()
    return (
        *cells.shift(person, occurrence),
        cells.local(occurrence, occurrence.start),
        occurrence.local(arrival),
        minutes,
    )


def early_row(
    person: PersonInfo,
    occurrence: Occurrence,
    departure: datetime,
    minutes: int,
    cells: CellCache | None = None,
) -> Row:
    """A row of the early report; ``departure`` is the departure's instant (UTC)."""
    cells = cells or CellCache()
    return (
        *cells.shift(person, occurrence),
        cells.local(occurrence, occurrence.end),
        occurrence.local(departure),
        minutes,
    )


def absent_row(person: PersonInfo, occurrence: Occurrence, cells: CellCache | None = None) -> Row:
    cells = cells or CellCache()
    return (*cells.shift(person, occurrence), cells.local(occurrence, occurrence.start))


def summary_row(person: PersonInfo, totals: Totals) -> Row:
    return (
        person.person_id,
        person.name,
        person.team,
        totals.sites,
        totals.days_scheduled,
        totals.days_present,
        totals.late_count,
        totals.late_minutes,
        totals.early_count,
        totals.early_minutes,
        totals.absent,
        totals.worked_minutes,
        _hours(totals.worked_minutes),
        totals.note,
    )


LATE_COLUMNS = (
    *_SHIFT,
    Column("scheduled_start", "Scheduled start", "datetime"),
    Column("arrival", "Arrival", "datetime"),
    Column("minutes_late", "Minutes late", "int"),
)
EARLY_COLUMNS = (
    *_SHIFT,
    Column("scheduled_end", "Scheduled end", "datetime"),
    Column("departure", "Departure", "datetime"),
    Column("minutes_early", "Minutes early", "int"),
)
ABSENT_COLUMNS = (*_SHIFT, Column("scheduled_start", "Scheduled start", "datetime"))
HOURS_COLUMNS = (
    *_SHIFT,
    Column("scheduled_minutes", "Scheduled minutes", "int"),
    Column("worked_minutes", "Worked minutes", "int"),
    Column("hours", "Hours", "float"),
)
SUMMARY_COLUMNS = (
    *_PERSON,
    Column("site", "Site", "text"),
    Column("days_scheduled", "Days scheduled", "int"),
    Column("days_present", "Days present", "int"),
    Column("late_count", "Late", "int"),
    Column("late_minutes", "Minutes late", "int"),
    Column("early_count", "Early", "int"),
    Column("early_minutes", "Minutes early", "int"),
    Column("absent", "Absent", "int"),
    Column("worked_minutes", "Worked minutes", "int"),
    Column("hours", "Hours", "float"),
    Column("note", "Note", "text"),
)

# The tables below read the shifts' columns (attendance.shifts) and make a row only for
# what they show: a year's late report looks at a quarter of a million shifts and
# writes a few thousand rows.


def late_table(attendance: Attendance) -> Table:
    t = attendance.shifts
    picked = _by_date(t, (t.late >= 0) & (t.arrival >= 0))
    cells = CellCache()
    rows = [late_row(*fields, cells) for fields in _picked(t, picked, t.arrival, t.late)]
    return Table("Late arrivals", LATE_COLUMNS, tuple(rows))


def early_table(attendance: Attendance) -> Table:
    t = attendance.shifts
    picked = _by_date(t, (t.early >= 0) & (t.departure >= 0))
    cells = CellCache()
    rows = [early_row(*fields, cells) for fields in _picked(t, picked, t.departure, t.early)]
    return Table("Early departures", EARLY_COLUMNS, tuple(rows))


def absent_table(attendance: Attendance) -> Table:
    t = attendance.shifts
    picked = _by_date(t, t.arrival < 0)
    cells = CellCache()
    rows = [
        absent_row(t.people[p], t.occurrences[s], cells)
        for s, p in zip(picked, t.person[picked].tolist(), strict=True)
    ]
    return Table("Absences", ABSENT_COLUMNS, tuple(rows))


def hours_table(attendance: Attendance) -> Table:
    """One row per shift, then per person a total row (no date, shift ``total``)."""
    t = attendance.shifts
    cells = CellCache()
    rows: list[Row] = []
    for p, person in enumerate(t.people):
        mine = t.shifts_of(p)
        if not mine:
            continue
        scheduled = worked = 0
        for s in mine:
            occurrence = t.occurrences[s]
            minutes = int(t.worked[s])
            rows.append(
                (
                    *cells.shift(person, occurrence),
                    occurrence.scheduled_minutes,
                    minutes,
                    _hours(minutes),
                )
            )
            scheduled += occurrence.scheduled_minutes
            worked += minutes
        names = sorted({t.occurrences[s].site.name for s in mine})
        rows.append(
            (
                None,
                person.person_id,
                person.name,
                person.team,
                _sites(names, person),
                "total",
                scheduled,
                worked,
                _hours(worked),
            )
        )
    return Table("Hours worked", HOURS_COLUMNS, tuple(rows))


def summary_table(attendance: Attendance) -> Table:
    t = attendance.shifts
    n = len(t.people)
    person = t.person

    def count(mask: npt.NDArray[np.bool_]) -> list[int]:
        found: list[int] = np.bincount(person[mask], minlength=n).tolist()
        return found

    def total(values: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> list[int]:
        # Float sums of whole minutes are exact (far below 2**53), and bincount is quick.
        sums = np.bincount(person[mask], weights=values[mask], minlength=n)
        found: list[int] = sums.astype(np.int64).tolist()
        return found

    every = np.ones(len(person), dtype=np.bool_)
    present, late, early = t.arrival >= 0, t.late >= 0, t.early >= 0
    days, days_present, absent = count(every), count(present), count(~present)
    late_count, late_minutes = count(late), total(t.late, late)
    early_count, early_minutes = count(early), total(t.early, early)
    worked = total(t.worked, every)
    sites: list[set[str]] = [set() for _ in range(n)]
    for p, occurrence in zip(person.tolist(), t.occurrences, strict=True):
        sites[p].add(occurrence.site.name)
    rows = [
        summary_row(
            someone,
            Totals(
                days[p],
                days_present[p],
                late_count[p],
                late_minutes[p],
                early_count[p],
                early_minutes[p],
                absent[p],
                worked[p],
                _sites(sorted(sites[p]), someone),
                _note(t.unscheduled[p], attendance.first, attendance.last),
            ),
        )
        for p, someone in enumerate(t.people)
    ]
    return Table("Summary", SUMMARY_COLUMNS, tuple(rows))


def anomalies_table(attendance: Attendance) -> Table:
    columns = (
        Column("date", "Date", "date"),
        *_PERSON,
        Column("kind", "Anomaly", "text"),
        Column("direction", "Direction", "text"),
        Column("local_time", "Local time", "datetime"),
        Column("tz", "Time zone", "text"),
        Column("event_id", "Event", "text"),
        Column("detail", "Detail", "text"),
    )
    people = {p.person_id: p for p in attendance.shifts.people}
    rows = [_anomaly_cells(a, people) for a in attendance.anomalies]
    return Table("Anomalies", columns, tuple(rows))


def _anomaly_cells(anomaly: Anomaly, people: dict[str, PersonInfo]) -> tuple[Cell, ...]:
    person = people.get(anomaly.person_id)
    name = None if person is None else person.name
    team = None if person is None else person.team
    event = anomaly.event
    return (
        anomaly.day,
        anomaly.person_id,
        name,
        team,
        anomaly.kind,
        None if event is None else event.direction,
        None if event is None else event.local_time.replace(tzinfo=None, microsecond=0),
        None if event is None else event.tz,
        None if event is None else event.event_id,
        anomaly.detail,
    )


REPORTS: dict[str, Callable[[Attendance], Table]] = {
    "late": late_table,
    "early": early_table,
    "absent": absent_table,
    "hours": hours_table,
    "summary": summary_table,
    "anomalies": anomalies_table,
}


def build_report(kind: str, attendance: Attendance) -> Report:
    """The report ``kind`` (a key of ``REPORTS``) over the attendance."""
    try:
        make = REPORTS[kind]
    except KeyError:
        raise ReportError(f"unknown report {kind!r}: choose one of {', '.join(REPORTS)}") from None
    return Report(
        kind, attendance.first, attendance.last, make(attendance), anomalies_table(attendance)
    )


class CellCache:
    """Cells that many rows share, made once per table: a team's members share one
    occurrence of a shift, so its text and local start are worked out once, not per row.

    Keyed by object id: use one cache for one table (the occurrences it sees stay alive
    while it is made), not across reports.
    """

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}
        self._locals: dict[tuple[int, datetime], datetime] = {}

    def shift(self, person: PersonInfo, occurrence: Occurrence) -> Row:
        text = self._texts.get(id(occurrence.shift))
        if text is None:
            text = self._texts[id(occurrence.shift)] = occurrence.shift.text
        return (occurrence.day, person.person_id, person.name, person.team,
                occurrence.site.name, text)  # fmt: skip

    def local(self, occurrence: Occurrence, moment: datetime) -> datetime:
        key = (id(occurrence), moment)
        found = self._locals.get(key)
        if found is None:
            found = self._locals[key] = occurrence.local(moment)
        return found


def _picked(
    table: ShiftTable, picked: list[int], event: npt.NDArray[np.int64],
    minutes: npt.NDArray[np.int64],
) -> Iterator[tuple[PersonInfo, Occurrence, datetime, int]]:  # fmt: skip
    """For the picked shifts: the person, the occurrence, the instant of ``event`` (an
    event index column), the ``minutes`` column. Instants are made by numpy in one go."""
    stamps = table.events.utc_us[event[picked]].astype("datetime64[us]").astype(object)
    people = table.person[picked].tolist()
    for s, p, stamp, n in zip(picked, people, stamps, minutes[picked].tolist(), strict=True):
        yield table.people[p], table.occurrences[s], stamp.replace(tzinfo=UTC), n


def _by_date(table: ShiftTable, mask: npt.NDArray[np.bool_]) -> list[int]:
    """The shifts ``mask`` picks, by date, then person id (people are in id order)."""
    picked = np.flatnonzero(mask)
    days = np.array([table.occurrences[s].day.toordinal() for s in picked.tolist()], dtype=np.int64)
    order = np.lexsort((table.person[picked], days))
    found: list[int] = picked[order].tolist()
    return found


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _sites(names: Sequence[str], person: PersonInfo) -> str | None:
    return "/".join(names) if names else person.site


def _note(unscheduled: int, first: date, last: date) -> str | None:
    total = (last - first).days + 1
    if unscheduled >= total:
        return "no schedule"
    if unscheduled:
        return f"no schedule on {unscheduled} of {total} days"
    return None
