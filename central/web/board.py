"""Today's board: per site, who is in, who is late, who has not arrived, who is off.

Worked out with the report code itself (:func:`reports.compute.compute_attendance`, at
one site, over the site's yesterday and today in its own time zone), so its numbers are
the CLI's numbers for today:

- **Late**: today's shifts whose first arrival came after start + grace, with the
  minutes late as the late report counts them.
- **Not arrived**: today's shifts with no arrival, once start + grace has passed.
- **Expected**: today's shifts with no arrival yet, before start + grace.
- **In now**: people whose latest punch so far, of today's shift or of yesterday's
  whose punch window still holds now (a night shift), is an arrival.
- **Off**: people whose schedule puts them at the site today, but it is a holiday there
  or a day off of theirs.

"Now" is given (the store's clock), never read here, so the board is a pure function
of its input and tests do not depend on the time of day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from reports.columns import EventColumns, instant, micros
from reports.compute import Selection, compute_attendance
from reports.model import PersonInfo
from reports.schedules import Occurrence, ScheduleBook, Site


@dataclass(frozen=True, slots=True)
class Arrived:
    """Someone who arrived: ``at`` local time at the site; ``late_minutes`` if late."""

    person: PersonInfo
    shift: str
    at: datetime
    late_minutes: int | None


@dataclass(frozen=True, slots=True)
class Awaited:
    """Someone scheduled today who has not arrived: ``start`` local time at the site."""

    person: PersonInfo
    shift: str
    start: datetime
    late_after: datetime


@dataclass(frozen=True, slots=True)
class Away:
    """Someone off today: ``why`` is "holiday" or "day off"."""

    person: PersonInfo
    shift: str
    why: str


@dataclass(frozen=True, slots=True)
class SiteBoard:
    """One site's board; local times are naive wall-clock times at the site."""

    site: str
    timezone: str
    today: date
    local_now: datetime
    in_now: tuple[Arrived, ...]
    late: tuple[Arrived, ...]
    not_arrived: tuple[Awaited, ...]
    expected: tuple[Awaited, ...]
    off: tuple[Away, ...]
    scheduled: int
    """Shifts at the site today (holidays and days off not counted)."""


@dataclass(frozen=True, slots=True)
class Board:
    now: datetime
    sites: tuple[SiteBoard, ...]


def days_needed(book: ScheduleBook, now: datetime) -> tuple[date, date]:
    """The shift dates a board at ``now`` reads: every site's yesterday to its today."""
    todays = [now.astimezone(site.zone).date() for site in book.sites.values()]
    if not todays:
        today = now.date()
        return today, today
    return min(todays) - timedelta(days=1), max(todays)


def build_board(
    events: EventColumns, people: Iterable[PersonInfo], book: ScheduleBook, now: datetime
) -> Board:
    """The board at ``now`` (timezone-aware) from the events and people a report reads."""
    roster = tuple(people)
    return Board(
        now,
        tuple(
            _site_board(events, roster, book, site, now)
            for site in sorted(book.sites.values(), key=lambda s: s.name)
        ),
    )


def _site_board(
    events: EventColumns,
    people: tuple[PersonInfo, ...],
    book: ScheduleBook,
    site: Site,
    now: datetime,
) -> SiteBoard:
    local_now = now.astimezone(site.zone)
    today = local_now.date()
    attendance = compute_attendance(
        events, people, book, today - timedelta(days=1), today, selection=Selection(site=site.name)
    )
    table = attendance.shifts
    now_us = micros(now)
    latest: dict[str, tuple[int, Arrived | None]] = {}  # person id: (time, in since)
    late: list[Arrived] = []
    not_arrived: list[Awaited] = []
    expected: list[Awaited] = []
    scheduled = 0
    for s in range(len(table)):
        occurrence: Occurrence = table.occurrences[s]
        person = table.people[int(table.person[s])]
        text = occurrence.shift.text
        punches = [
            int(i)
            for i in table.owned[table.owned_from[s] : table.owned_from[s + 1]]
            if table.events.utc_us[i] <= now_us
        ]
        arrival = int(table.arrival[s])
        if punches and (occurrence.day == today or now <= occurrence.window_end):
            last = int(table.events.utc_us[punches[-1]])
            if last >= latest.get(person.person_id, (-1, None))[0]:
                since = occurrence.local(instant(last))
                inward = bool(table.events.inward[punches[-1]])
                latest[person.person_id] = (
                    last,
                    Arrived(person, text, since, None) if inward else None,
                )
        if occurrence.day != today:
            continue
        scheduled += 1
        if arrival >= 0:
            minutes = int(table.late[s])
            if minutes >= 0:
                at = occurrence.local(instant(int(table.events.utc_us[arrival])))
                late.append(Arrived(person, text, at, minutes))
            continue
        waiting = Awaited(
            person,
            text,
            occurrence.local(occurrence.start),
            occurrence.local(occurrence.late_after),
        )
        (not_arrived if now > occurrence.late_after else expected).append(waiting)
    in_now = [arrived for _, arrived in latest.values() if arrived is not None]
    off = []
    for person in sorted(people, key=lambda p: p.person_id):
        plan = book.plan(person, today)
        shift = plan.shift
        if shift is not None and shift.site == site.name and plan.status in ("holiday", "day_off"):
            off.append(Away(person, shift.text, plan.status.replace("_", " ")))
    return SiteBoard(
        site=site.name,
        timezone=site.timezone,
        today=today,
        local_now=local_now.replace(tzinfo=None, microsecond=0),
        in_now=tuple(sorted(in_now, key=lambda a: (a.person.name, a.person.person_id))),
        late=tuple(sorted(late, key=lambda a: (a.at, a.person.person_id))),
        not_arrived=tuple(sorted(not_arrived, key=lambda a: (a.start, a.person.person_id))),
        expected=tuple(sorted(expected, key=lambda a: (a.start, a.person.person_id))),
        off=tuple(off),
        scheduled=scheduled,
    )
