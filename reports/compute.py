"""Attendance against schedules: each person's shifts over a date range, with their punches.

:func:`compute_attendance` is the one pass every report reads: for each person and each
date of the range (the date a shift starts), the planned shift, the punches inside its
window, arrival, departure, minutes late or early, and hours worked, plus every anomaly.
Events are only read, never changed.

- A punch belongs to the shift whose window holds it; where two windows overlap, an
  arrival goes to the shift whose start is nearer and a departure to the one whose end
  is nearer (a tie goes to the earlier shift).
- Late: the first arrival is after start + grace_late; minutes late are counted from
  the start, rounded up (09:07:10 for 09:00 is 8). An arrival exactly at start + grace
  is on time.
- Early: the last departure is before end - grace_early; minutes early counted to the
  end, rounded up.
- Hours: the sum of the in→out periods (UTC differences), in whole minutes rounded down.
- Absent: a shift (not a holiday, not a day off) with no arrival.

:func:`shift_day` applies these rules to one shift's punches, one object at a time.
:func:`compute_attendance` applies the same rules to every shift of every person at
once, on numpy arrays (see "How it is fast" below); the tests hold the two, and the
implementation before the arrays, to the same answers.

How it is fast (a year of 1,000 people is half a million events and a quarter of a
million shifts; one Python object or loop step per event or shift costs seconds):

1. Events arrive as columns (:class:`~reports.columns.EventColumns`), times as int64
   microseconds: comparisons and differences are exact integer arithmetic on arrays.
2. Plans are worked out once per set of patterns (a team), not per person
   (:meth:`~reports.schedules.ScheduleBook.pattern_plans`), as arrays over the dates:
   window start and end, start, end, late-after and early-before instants.
3. Ownership: a shift's punch window lies within the UTC days from the day before its
   date to two days after, so each punch has at most a handful of candidate dates
   around its own UTC date; each candidate is one vectorised pass over all punches.
4. Pairing: with the owned punches sorted by (shift, time), runs of the same direction,
   each shift's first arrival and last departure, and the worked periods are all found
   with array shifts and cumulative sums.
5. Objects only where a report shows something: an anomaly's event, or a
   :class:`ShiftDay` when someone asks (:meth:`ShiftTable.day`, ``Attendance.days``).
   The pairing anomalies (double punches, a leading out, a trailing in) come from the
   same flags as the numbers, worded by the functions
   :func:`~reports.anomalies.pair_punches` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property

import numpy as np
import numpy.typing as npt

from clockface.errors import ReportError
from reports.anomalies import (
    Anomaly,
    double_punch,
    missing_arrival,
    missing_departure,
    pair_punches,
)
from reports.columns import (
    DAY_US,
    MINUTE_US,
    BoolArray,
    EventColumns,
    IntArray,
    as_columns,
    micros,
)
from reports.model import AttendanceEvent, PersonInfo
from reports.schedules import DayPlan, Occurrence, ScheduleBook

MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_NEVER = np.iinfo(np.int64).max
_HOUR_US = 3_600_000_000
# Which dates can own a punch, around the punch's own UTC date D: a shift on date d starts
# at d 00:00 local or later, at most 14 hours ahead of UTC, less a window of at most 12
# hours, so its window opens on UTC day d-1 or later; it ends before d+2 00:00 local, at
# most 12 hours behind UTC, plus a window of at most 12 hours, so before UTC day d+3.
# Hence d is within D-2..D+1; one more day each side costs little and fears no zone.
_CANDIDATE_OFFSETS = range(-3, 3)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which people a report covers: all, or one person, a team, a site (combined: all hold)."""

    person_id: str | None = None
    team: str | None = None
    site: str | None = None

    @property
    def everyone(self) -> bool:
        return self.person_id is None and self.team is None and self.site is None

    def wants(self, person: PersonInfo) -> bool:
        return (self.person_id is None or person.person_id == self.person_id) and (
            self.team is None or person.team == self.team
        )


@dataclass(frozen=True, slots=True)
class ShiftDay:
    """One scheduled shift of one person, and what their punches say about it."""

    person: PersonInfo
    occurrence: Occurrence
    events: tuple[AttendanceEvent, ...]
    arrival: AttendanceEvent | None
    departure: AttendanceEvent | None
    late_minutes: int | None
    """Minutes after the start, when late; None when on time or absent."""
    early_minutes: int | None
    """Minutes before the end, when early; None when not early or unknown."""
    worked_minutes: int

    @property
    def day(self) -> date:
        return self.occurrence.day

    @property
    def absent(self) -> bool:
        return self.arrival is None


@dataclass(frozen=True, slots=True)
class PersonSummary:
    """One person over the whole range."""

    person: PersonInfo
    days: tuple[ShiftDay, ...]
    unscheduled_days: int
    """Dates of the range on which no pattern applies to the person."""


@dataclass(frozen=True, eq=False)
class ShiftTable:
    """Every reported shift as columns, person by person (in ``people`` order), by date.

    For shift ``s``: ``person[s]`` indexes ``people``; ``arrival[s]`` and
    ``departure[s]`` index ``events`` (-1: none); ``late[s]`` and ``early[s]`` are
    minutes (-1: not late, not early); ``worked[s]`` minutes. ``unscheduled[p]``: the
    dates of the range on which no pattern applies to person ``p``.
    """

    people: tuple[PersonInfo, ...]
    unscheduled: tuple[int, ...]
    occurrences: tuple[Occurrence, ...]
    person: IntArray
    arrival: IntArray
    departure: IntArray
    late: IntArray
    early: IntArray
    worked: IntArray
    events: EventColumns
    owned: IntArray
    """Event indexes of every reported shift's punches, shift by shift, in time order."""
    owned_from: IntArray
    """Shift ``s``'s punches are ``owned[owned_from[s]:owned_from[s + 1]]``."""

    def __len__(self) -> int:
        return len(self.occurrences)

    def utc(self, event: int) -> datetime:
        """The instant of event ``event`` (an index of ``events``)."""
        return _EPOCH + timedelta(microseconds=int(self.events.utc_us[event]))

    def day(self, s: int) -> ShiftDay:
        """Shift ``s`` as an object, with its events."""
        events = self.events
        mine = self.owned[self.owned_from[s] : self.owned_from[s + 1]]
        events.prefetch(mine.tolist())
        arrival, departure = int(self.arrival[s]), int(self.departure[s])
        late, early = int(self.late[s]), int(self.early[s])
        return ShiftDay(
            person=self.people[int(self.person[s])],
            occurrence=self.occurrences[s],
            events=tuple(events.event(i) for i in mine.tolist()),
            arrival=None if arrival < 0 else events.event(arrival),
            departure=None if departure < 0 else events.event(departure),
            late_minutes=None if late < 0 else late,
            early_minutes=None if early < 0 else early,
            worked_minutes=int(self.worked[s]),
        )

    def shifts_of(self, p: int) -> range:
        """The shifts of person ``p`` (an index of ``people``)."""
        lo, hi = np.searchsorted(self.person, [p, p + 1])
        return range(int(lo), int(hi))


@dataclass(frozen=True, eq=False)
class Attendance:
    """Everyone's shifts over ``first``..``last`` (inclusive), and every anomaly.

    ``shifts`` holds the numbers as columns; ``people`` and ``days`` make objects of them
    (every shift of the range: for a big range, the tables read ``shifts``).
    """

    first: date
    last: date
    shifts: ShiftTable
    anomalies: tuple[Anomaly, ...]

    @cached_property
    def people(self) -> tuple[PersonSummary, ...]:
        table = self.shifts
        table.events.prefetch(table.owned.tolist())  # one read for every shift's events
        return tuple(
            PersonSummary(person, tuple(table.day(s) for s in table.shifts_of(p)), unscheduled)
            for p, (person, unscheduled) in enumerate(
                zip(table.people, table.unscheduled, strict=True)
            )
        )

    @property
    def days(self) -> tuple[ShiftDay, ...]:
        return tuple(d for p in self.people for d in p.days)


def event_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The UTC instants (from, before) within which any punch of shifts ``first``..``last``
    lies, the night before included: what a source needs to read."""
    return (
        datetime.combine(first - timedelta(days=2), time(), UTC),
        datetime.combine(last + timedelta(days=3), time(), UTC),
    )


def shift_day(
    person: PersonInfo, occurrence: Occurrence, events: Sequence[AttendanceEvent]
) -> ShiftDay:
    """One shift from the punches it owns, one at a time: the rules, written plainly."""
    ordered = tuple(sorted(events, key=lambda e: (e.utc, e.event_id)))
    punches = pair_punches(ordered, person.person_id, occurrence.day)
    arrival, departure = punches.arrival, punches.departure
    late = None
    if arrival is not None and arrival.utc > occurrence.late_after:
        late = _ceil_minutes(arrival.utc - occurrence.start)
    early = None
    if departure is not None and departure.utc < occurrence.early_before:
        early = _ceil_minutes(occurrence.end - departure.utc)
    worked = sum((b - a for a, b in punches.periods), timedelta())
    return ShiftDay(
        person=person,
        occurrence=occurrence,
        events=ordered,
        arrival=arrival,
        departure=departure,
        late_minutes=late,
        early_minutes=early,
        worked_minutes=max(0, worked // MINUTE),
    )


def compute_attendance(
    events: Iterable[AttendanceEvent] | EventColumns,
    people: Iterable[PersonInfo],
    book: ScheduleBook,
    first: date,
    last: date,
    *,
    selection: Selection = Selection(),
    progress: Callable[[int], None] | None = None,
) -> Attendance:
    """Everyone's attendance from ``first`` to ``last`` (shift dates, inclusive).

    ``events`` may hold more than the range (they are bounded here); ``progress`` is
    called with 1 after each person.
    """
    if first > last:
        raise ReportError(f"the range runs backwards: from {first} to {last}")
    columns = as_columns(events)
    roster = {p.person_id: p for p in people}
    chosen = sorted((p for p in roster.values() if selection.wants(p)), key=lambda p: p.person_id)
    calendar = _Calendar.build(chosen, book, first, last, selection.site)
    lo, hi = (micros(t) for t in event_bounds(first, last))
    codes, ids = columns.person_codes()
    number = {p.person_id: i for i, p in enumerate(chosen)}
    who = np.array([number.get(pid, -1) for pid in ids], dtype=np.int64)[codes]
    utc = columns.utc_us
    bounded = (utc >= lo) & (utc < hi)
    punches = _Punches.sort(columns, np.flatnonzero(bounded & (who >= 0)), who)
    owner = calendar.owners(punches)
    shifts, odd = _pair(punches, owner, calendar, columns)

    anomalies = _anomalies(chosen, calendar, punches, owner, odd, columns, progress)
    if selection.everyone or (
        selection.person_id is not None and selection.person_id not in roster
    ):
        anomalies.extend(
            _unknown_people(columns, codes, ids, roster, bounded, selection, first, last)
        )
    return Attendance(first, last, shifts, tuple(anomalies))


# --------------------------------------------------------------------- calendars
@dataclass(frozen=True, eq=False)
class _Calendar:
    """Every chosen person's plans over the dates ``first - 1`` .. ``last + 1`` (index 0
    is the day before the range: its night shift can own the range's first punches).

    People who share patterns share a *calendar row* (``row_of[p]``): its instants
    (microseconds) and occurrences are stored once per row, flattened, at ``row * dates
    + d`` (see :meth:`row_cells`). Per person, flattened at ``p * dates + d`` (a
    *cell*): ``has``, a shift that day (not a rest day, holiday or day off), and
    ``reported``, a shift of the range (at the site asked for, if any).
    """

    people: tuple[PersonInfo, ...]
    first: date
    dates: int
    days_in_range: int
    row_of: IntArray
    occurrence: npt.NDArray[np.object_]
    """Each row's Occurrence on each date (None: no shift), an object array."""
    window_start: IntArray
    window_end: IntArray
    start: IntArray
    end: IntArray
    late_after: IntArray
    early_before: IntArray
    has: BoolArray
    reported: BoolArray
    included: list[bool]
    """People the report covers (a site filter leaves out people with nothing there)."""
    unscheduled: list[int]

    @classmethod
    def build(
        cls, people: Sequence[PersonInfo], book: ScheduleBook, first: date, last: date,
        site: str | None,
    ) -> _Calendar:  # fmt: skip
        lo, hi = first - timedelta(days=1), last + timedelta(days=1)
        dates = (hi - lo).days + 1
        rows: dict[int, tuple[int, tuple[DayPlan, ...], _PlanArrays]] = {}
        row_of: list[int] = []
        included: list[bool] = []
        unscheduled: list[int] = []
        has = np.zeros(len(people) * dates, dtype=np.bool_)
        at_site = np.zeros(len(people) * dates, dtype=np.bool_)
        for p, person in enumerate(people):
            plans = book.pattern_plans(person, lo, hi)
            # Everyone sharing patterns gets the very same tuple: one row for them all.
            entry = rows.get(id(plans))
            if entry is None:
                entry = rows[id(plans)] = (len(rows), plans, _PlanArrays.of(plans, site))
            row_number, _, row = entry
            row_of.append(row_number)
            mine = has[p * dates : (p + 1) * dates]
            mine[:] = row.has
            for off in book.days_off_of(person.person_id):
                mine[max(0, (off.first - lo).days) : max(0, (off.last - lo).days + 1)] = False
            at_site[p * dates : (p + 1) * dates] = row.at_wanted_site
            unscheduled.append(row.unscheduled)
            included.append(
                site is None or row.at_site or (row.unscheduled > 0 and person.site == site)
            )
        ordered = [row for _, _, row in sorted(rows.values(), key=lambda e: e[0])]

        def stack(name: str) -> IntArray:
            if not ordered:
                return np.empty(0, dtype=np.int64)
            return np.concatenate([getattr(r, name) for r in ordered])

        occurrences = np.empty(len(ordered) * dates, dtype=object)
        occurrences[:] = [o for r in ordered for o in r.occurrence]
        in_dates = np.zeros(dates, dtype=np.bool_)
        in_dates[1:-1] = True
        # A shift at another site is not reported, but still owns its punches (``has``).
        reported = (
            has
            & at_site
            & np.tile(in_dates, len(people))
            & np.repeat(np.array(included, dtype=np.bool_), dates)
        )
        return cls(
            tuple(people), lo, dates, dates - 2, np.array(row_of, dtype=np.int64), occurrences,
            stack("window_start"), stack("window_end"), stack("start"), stack("end"),
            stack("late_after"), stack("early_before"), has, reported, included, unscheduled,
        )  # fmt: skip

    def row_cells(self, cells: IntArray) -> IntArray:
        """Where the calendar row holds each person cell's date."""
        result: IntArray = self.row_of[cells // self.dates] * self.dates + cells % self.dates
        return result

    def date_of(self, cell: int) -> date:
        return self.first + timedelta(days=cell % self.dates)

    def owners(self, punches: _Punches) -> IntArray:
        """The calendar cell of the shift each punch belongs to, or -1."""
        n = len(punches.index)
        best = np.full(n, -1, dtype=np.int64)
        best_gap = np.full(n, _NEVER, dtype=np.int64)
        if n == 0:
            return best
        first_day = self.first.toordinal() - _EPOCH_DAY
        utc_day = punches.utc // DAY_US - first_day
        # Earlier dates first; a strictly smaller gap wins, so a tie stays with the earlier.
        for offset in _CANDIDATE_OFFSETS:
            d = utc_day + offset
            valid = (d >= 0) & (d < self.dates)
            clipped = np.clip(d, 0, self.dates - 1)
            cell = punches.person * self.dates + clipped
            row = self.row_of[punches.person] * self.dates + clipped
            at = punches.utc
            holds = (
                valid
                & self.has[cell]
                & (self.window_start[row] <= at)
                & (at <= self.window_end[row])
            )
            anchor = np.where(punches.inward, self.start[row], self.end[row])
            gap = np.abs(at - anchor)
            better = holds & (gap < best_gap)
            best = np.where(better, cell, best)
            best_gap = np.where(better, gap, best_gap)
        return best


@dataclass(frozen=True, eq=False)
class _PlanArrays:
    """One calendar row (the plans of one set of patterns) as arrays."""

    occurrence: list[Occurrence | None]
    has: BoolArray
    window_start: IntArray
    window_end: IntArray
    start: IntArray
    end: IntArray
    late_after: IntArray
    early_before: IntArray
    at_wanted_site: BoolArray
    unscheduled: int
    at_site: bool

    @classmethod
    def of(cls, plans: Sequence[DayPlan], site: str | None) -> _PlanArrays:
        occurrences = [p.occurrence for p in plans]
        # Two conversions per shift; the other instants are whole minutes away from them,
        # as Occurrence.at makes them.
        start = np.array([0 if o is None else micros(o.start) for o in occurrences], np.int64)
        end = np.array([0 if o is None else micros(o.end) for o in occurrences], np.int64)

        def minutes(name: str) -> IntArray:
            return MINUTE_US * np.array(
                [0 if o is None else getattr(o.shift, name) for o in occurrences], np.int64
            )

        in_range = plans[1:-1]
        return cls(
            occurrence=occurrences,
            has=np.array([o is not None for o in occurrences], dtype=np.bool_),
            window_start=start - minutes("window_before"),
            window_end=end + minutes("window_after"),
            start=start,
            end=end,
            late_after=start + minutes("grace_late"),
            early_before=end - minutes("grace_early"),
            at_wanted_site=np.array(
                [site is None or (o is not None and o.shift.site == site) for o in occurrences],
                dtype=np.bool_,
            ),
            unscheduled=sum(p.status == "no_schedule" for p in in_range),
            at_site=site is not None
            and any(p.shift is not None and p.shift.site == site for p in in_range),
        )


# --------------------------------------------------------------------- punches
@dataclass(frozen=True, eq=False)
class _Punches:
    """The punches a report looks at, sorted by (person, time, event id).

    ``index`` are event indexes; ``person`` indexes the chosen people.
    """

    index: IntArray
    person: IntArray
    utc: IntArray
    inward: BoolArray

    @classmethod
    def sort(cls, columns: EventColumns, index: IntArray, who: IntArray) -> _Punches:
        person, utc = who[index], columns.utc_us[index]
        if len(index):
            # One int64 key, person then time (times relative to the earliest fit in 46
            # bits for over two years), sorts faster than a lexsort of the two.
            span = int(utc.max() - utc.min()) if len(utc) else 0
            if span < 1 << 46 and len(who) and int(who.max()) < 1 << 16:
                order = np.argsort((person << 46) + (utc - utc.min()), kind="stable")
            else:
                order = np.lexsort((utc, person))
            index, person, utc = index[order], person[order], utc[order]
        # Punches of one person at the very same microsecond: order them by event id, as
        # sorting objects by (utc, event_id) does. Rare, so done in Python.
        same = np.flatnonzero((person[1:] == person[:-1]) & (utc[1:] == utc[:-1]))
        if len(same):
            columns.prefetch(np.unique(np.concatenate([index[same], index[same + 1]])).tolist())
            starts = same[np.concatenate(([True], same[1:] != same[:-1] + 1))]
            for a in starts.tolist():
                b = a + 1
                while b < len(index) and person[b] == person[a] and utc[b] == utc[a]:
                    b += 1
                index[a:b] = sorted(index[a:b].tolist(), key=columns.event_id)
        return cls(index, person, utc, columns.inward[index])


@dataclass(frozen=True, eq=False)
class _OddPunches:
    """The pairing anomalies of the reported shifts (what :func:`pair_punches` finds),
    by person, shift and time: ``kind`` 0 a double punch (of ``event`` after
    ``previous``), 1 a missing arrival, 2 a missing departure (``event`` opened the
    period); ``cell`` is the shift's calendar cell."""

    cell: IntArray
    kind: IntArray
    event: IntArray
    previous: IntArray


def _pair(
    punches: _Punches, owner: IntArray, calendar: _Calendar, columns: EventColumns
) -> tuple[ShiftTable, _OddPunches]:
    """Every reported shift's numbers, and its punches that do not simply alternate
    in, out, in, out."""
    owned = np.flatnonzero(owner >= 0)
    owned = owned[np.argsort(owner[owned], kind="stable")]  # by shift, still in time order
    cell = owner[owned]
    at = punches.utc[owned]
    inward = punches.inward[owned]
    event = punches.index[owned]
    n = len(owned)
    cells = len(calendar.has)
    arrival = np.full(cells, -1, dtype=np.int64)
    departure = np.full(cells, -1, dtype=np.int64)
    worked_us = np.zeros(cells, dtype=np.int64)
    odd = _OddPunches(*(np.empty(0, dtype=np.int64) for _ in range(4)))
    if n:
        first = np.ones(n, dtype=np.bool_)  # first punch of its shift
        first[1:] = cell[1:] != cell[:-1]
        last = np.ones(n, dtype=np.bool_)
        last[:-1] = cell[1:] != cell[:-1]
        run_start = first.copy()
        run_start[1:] |= inward[1:] != inward[:-1]
        run_end = last.copy()
        run_end[:-1] |= inward[1:] != inward[:-1]
        # pair_punches: a run of arrivals opens a period at its first, the run of
        # departures after it closes it at its last.
        starts = np.flatnonzero(run_start)
        run_of = np.cumsum(run_start) - 1
        closes = np.flatnonzero(run_end & ~inward & ~first[starts[run_of]])
        opens = starts[run_of[closes] - 1]
        np.add.at(worked_us, cell[closes], at[closes] - at[opens])
        # The first arrival of each shift.
        ins = np.flatnonzero(inward)
        if len(ins):
            first_in = ins[np.concatenate(([True], cell[ins[1:]] != cell[ins[:-1]]))]
            arrival[cell[first_in]] = event[first_in]
        # The last departure counts when the shift ends on one (no period left open).
        ends_out = np.flatnonzero(last & ~inward)
        departure[cell[ends_out]] = event[ends_out]
        # Anything but in, out, in, out...: a double punch, a leading out, a trailing in.
        twice = np.zeros(n, dtype=np.bool_)
        twice[1:] = ~first[1:] & (inward[1:] == inward[:-1])
        shown = calendar.reported[cell]
        doubles = np.flatnonzero(twice & shown)
        no_arrival = np.flatnonzero(first & ~inward & shown)
        still_open = np.flatnonzero(last & inward & shown)
        where = np.concatenate([doubles, no_arrival, still_open])
        # pair_punches' order within a shift: by punch, a missing departure last.
        order = np.lexsort((np.repeat([0, 0, 1], [len(doubles), len(no_arrival),
                                                 len(still_open)]), where))  # fmt: skip
        odd = _OddPunches(
            cell=cell[where][order],
            kind=np.repeat([0, 1, 2], [len(doubles), len(no_arrival), len(still_open)])[order],
            event=event[np.concatenate([doubles, no_arrival, starts[run_of[still_open]]])][order],
            previous=np.concatenate(
                [event[doubles - 1], np.full(len(no_arrival) + len(still_open), -1)]
            )[order],
        )

    report = np.flatnonzero(calendar.reported)
    row = calendar.row_cells(report)
    stamp = np.append(columns.utc_us, 0)  # stamp[-1] == 0: the time of "no event"
    start = calendar.start[row]
    end = calendar.end[row]
    arrived = arrival[report]
    left = departure[report]
    arrival_at = stamp[arrived]
    leaving_at = stamp[left]
    is_late = (arrived >= 0) & (arrival_at > calendar.late_after[row])
    is_early = (left >= 0) & (leaving_at < calendar.early_before[row])
    # Minutes rounded up, as -(-x // m): floor division of exact microseconds.
    late = np.where(is_late, -((start - arrival_at) // MINUTE_US), -1)
    early = np.where(is_early, -((leaving_at - end) // MINUTE_US), -1)
    # The reported shifts' punches, shift by shift (both are sorted by calendar cell).
    keep = np.flatnonzero(calendar.reported[cell]) if n else np.empty(0, dtype=np.int64)
    bounds = np.searchsorted(cell[keep], report, side="left")
    person = report // calendar.dates
    table = ShiftTable(
        people=tuple(
            q for q, wanted in zip(calendar.people, calendar.included, strict=True) if wanted
        ),
        unscheduled=tuple(
            u for u, wanted in zip(calendar.unscheduled, calendar.included, strict=True) if wanted
        ),
        occurrences=tuple(calendar.occurrence[row].tolist()),
        person=(np.cumsum(calendar.included) - 1)[person] if len(report) else person,
        arrival=arrived,
        departure=left,
        late=late,
        early=early,
        worked=np.maximum(0, worked_us[report] // MINUTE_US),
        events=columns,
        owned=event[keep],
        owned_from=np.append(bounds, len(keep)),
    )
    return table, odd


def _anomalies(
    chosen: Sequence[PersonInfo],
    calendar: _Calendar,
    punches: _Punches,
    owner: IntArray,
    odd: _OddPunches,
    columns: EventColumns,
    progress: Callable[[int], None] | None,
) -> list[Anomaly]:
    """Every reported person's anomalies, person by person, in the order the plain
    per-person pass makes them: punch by punch (outside any window, unsynchronised
    clock), then shift by shift (pairing), then "no schedule"; then sorted by date,
    instant and kind."""
    found = _event_anomalies(punches, owner, calendar, columns)
    columns.prefetch(np.concatenate([odd.event, odd.previous[odd.previous >= 0]]).tolist())
    odd_from = np.searchsorted(odd.cell // calendar.dates, np.arange(len(chosen) + 1)).tolist()
    first = calendar.first + timedelta(days=1)
    last = calendar.first + timedelta(days=calendar.dates - 2)
    anomalies: list[Anomaly] = []
    for p, person in enumerate(chosen):
        if calendar.included[p]:
            pid = person.person_id
            mine = found.get(p, [])
            for k in range(odd_from[p], odd_from[p + 1]):
                day = calendar.date_of(int(odd.cell[k]))
                event = columns.event(int(odd.event[k]))
                if odd.kind[k] == 0:
                    previous = columns.event(int(odd.previous[k]))
                    mine.append(double_punch(pid, day, event, previous))
                elif odd.kind[k] == 1:
                    mine.append(missing_arrival(pid, day, event))
                else:
                    mine.append(missing_departure(pid, day, event))
            if calendar.unscheduled[p] == calendar.days_in_range:
                mine.append(
                    Anomaly(
                        "no_schedule",
                        pid,
                        None,
                        None,
                        f"no shift pattern for this person or team {first} to {last}",
                    )
                )
            mine.sort(key=_anomaly_order)
            anomalies.extend(mine)
        if progress is not None:
            progress(1)
    return anomalies


def _event_anomalies(
    punches: _Punches, owner: IntArray, calendar: _Calendar, columns: EventColumns
) -> dict[int, list[Anomaly]]:
    """Per person, the punches in no shift's window and those stamped while the kiosk
    clock was not synchronised, in time order."""
    scheduled = np.array(
        [u < calendar.days_in_range for u in calendar.unscheduled] or [False], dtype=np.bool_
    )
    included = np.array(calendar.included or [False], dtype=np.bool_)
    synced = columns.synced[punches.index]
    first = calendar.first + timedelta(days=1)
    last = calendar.first + timedelta(days=calendar.dates - 2)
    # Only a punch within these instants can fall on a local date of the range: zones are
    # at most 14 hours ahead of UTC and 12 behind (an hour more each way, for safety).
    near = (punches.utc >= micros(datetime.combine(first, time(), UTC)) - 15 * _HOUR_US) & (
        punches.utc < micros(datetime.combine(last, time(), UTC)) + DAY_US + 13 * _HOUR_US
    )
    date_index = owner % calendar.dates
    in_range = (owner >= 0) & (date_index >= 1) & (date_index <= calendar.dates - 2)
    stray = (owner < 0) & scheduled[punches.person]
    unsynced = synced == 0
    look = np.flatnonzero(
        ((stray & near) | (unsynced & (in_range | ((owner < 0) & near)))) & included[punches.person]
    )
    columns.prefetch(punches.index[look].tolist())
    found: dict[int, list[Anomaly]] = {}
    for k in look.tolist():
        p = int(punches.person[k])
        event = columns.event(int(punches.index[k]))
        pid = event.person_id
        mine = found.setdefault(p, [])
        cell = int(owner[k])
        local = event.local_time
        if stray[k] and first <= local.date() <= last:
            mine.append(
                Anomaly(
                    "outside_window",
                    pid,
                    local.date(),
                    event,
                    f"{event.direction} at {local:%Y-%m-%d %H:%M:%S} is in no shift's punch window",
                )
            )
        if unsynced[k]:
            owner_day = calendar.date_of(cell) if cell >= 0 else local.date()
            if first <= owner_day <= last:
                mine.append(
                    Anomaly(
                        "clock_unsynced",
                        pid,
                        owner_day,
                        event,
                        f"{event.direction} at {local:%Y-%m-%d %H:%M:%S} was stamped "
                        "while the kiosk clock was not synchronised",
                    )
                )
    return found


def _unknown_people(
    columns: EventColumns,
    codes: npt.NDArray[np.intp],
    ids: list[str],
    roster: dict[str, PersonInfo],
    bounded: BoolArray,
    selection: Selection,
    first: date,
    last: date,
) -> list[Anomaly]:
    """One anomaly per person id not in the roster with punches in the range."""
    unknown = np.array([pid not in roster for pid in ids] or [False], dtype=np.bool_)
    if selection.person_id is not None:
        unknown &= np.array([pid == selection.person_id for pid in ids] or [False])
    theirs = np.flatnonzero(bounded & unknown[codes]) if len(codes) else np.empty(0, np.int64)
    columns.prefetch(theirs.tolist())
    by_person: dict[str, list[AttendanceEvent]] = {}
    for i in theirs.tolist():
        event = columns.event(i)
        if first <= event.local_time.date() <= last:
            by_person.setdefault(event.person_id, []).append(event)
    anomalies = []
    for pid in sorted(by_person):
        events = sorted(by_person[pid], key=lambda e: e.utc)
        anomalies.append(
            Anomaly(
                "unknown_person",
                pid,
                events[0].local_time.date(),
                events[0],
                f"{len(events)} punch{'' if len(events) == 1 else 'es'} of a person id "
                "not in the roster",
            )
        )
    return anomalies


def _ceil_minutes(delta: timedelta) -> int:
    return -(-delta // MINUTE)


def _anomaly_order(anomaly: Anomaly) -> tuple[date, datetime, str]:
    when = anomaly.event.utc if anomaly.event is not None else _EPOCH
    return (anomaly.day or date.min, when, anomaly.kind)
