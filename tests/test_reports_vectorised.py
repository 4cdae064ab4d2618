"""The vectorised report core gives the answers of the plain one, to the microsecond.

``reference_attendance`` and ``reference_tables`` below are the report logic as it was
written before the arrays (reports/compute.py and reports/tables.py, one Python object
and loop step per event and shift), kept here as the oracle. Hypothesis builds random
schedules (night shifts, overlapping punch windows, clock changes, holidays, days off,
people with patterns of their own, dates they hold from and until), random punches
(ties to the microsecond, unknown people, unsynchronised clocks, stray punches) and
random selections; everything :func:`compute_attendance` and every table says must match.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clockface.errors import ScheduleError
from reports.anomalies import Anomaly, Punches, pair_punches
from reports.compute import Attendance, Selection, compute_attendance
from reports.model import AttendanceEvent, PersonInfo
from reports.schedules import MAX_WINDOW, DayOff, DayPlan, Occurrence, ScheduleBook, Shift, Site
from reports.tables import REPORTS, Cell, build_report

MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LONGEST_WINDOW = timedelta(hours=24, minutes=2 * MAX_WINDOW)


# --------------------------------------------------------------------- the reference
@dataclass(frozen=True)
class RefDay:
    person: PersonInfo
    occurrence: Occurrence
    events: tuple[AttendanceEvent, ...]
    arrival: AttendanceEvent | None
    departure: AttendanceEvent | None
    late_minutes: int | None
    early_minutes: int | None
    worked_minutes: int

    @property
    def day(self) -> date:
        return self.occurrence.day

    @property
    def absent(self) -> bool:
        return self.arrival is None


@dataclass(frozen=True)
class RefSummary:
    person: PersonInfo
    days: tuple[RefDay, ...]
    unscheduled_days: int


@dataclass(frozen=True)
class RefAttendance:
    first: date
    last: date
    people: tuple[RefSummary, ...]
    anomalies: tuple[Anomaly, ...]

    @property
    def days(self) -> tuple[RefDay, ...]:
        return tuple(d for p in self.people for d in p.days)


def reference_attendance(
    events: Sequence[AttendanceEvent],
    people: Sequence[PersonInfo],
    book: ScheduleBook,
    first: date,
    last: date,
    selection: Selection,
) -> RefAttendance:
    roster = {p.person_id: p for p in people}
    chosen = [p for p in roster.values() if selection.wants(p)]
    chosen.sort(key=lambda p: p.person_id)
    by_person: dict[str, list[AttendanceEvent]] = {}
    lo = datetime.combine(first - timedelta(days=2), time(), UTC)
    hi = datetime.combine(last + timedelta(days=3), time(), UTC)
    for event in events:
        if lo <= event.utc < hi:
            by_person.setdefault(event.person_id, []).append(event)
    summaries: list[RefSummary] = []
    anomalies: list[Anomaly] = []
    for person in chosen:
        summary, found = _ref_person(
            person, by_person.get(person.person_id, []), book, first, last, selection.site
        )
        if summary is not None:
            summaries.append(summary)
            anomalies.extend(found)
    if selection.everyone or (
        selection.person_id is not None and selection.person_id not in roster
    ):
        for pid in sorted(set(by_person) - set(roster)):
            if selection.person_id not in (None, pid):
                continue
            theirs = [e for e in by_person[pid] if first <= e.local_time.date() <= last]
            if theirs:
                theirs.sort(key=lambda e: e.utc)
                anomalies.append(
                    Anomaly(
                        "unknown_person",
                        pid,
                        theirs[0].local_time.date(),
                        theirs[0],
                        f"{len(theirs)} punch{'' if len(theirs) == 1 else 'es'} of a person id "
                        "not in the roster",
                    )
                )
    return RefAttendance(first, last, tuple(summaries), tuple(anomalies))


def _ref_person(
    person: PersonInfo,
    events: list[AttendanceEvent],
    book: ScheduleBook,
    first: date,
    last: date,
    site: str | None,
) -> tuple[RefSummary | None, list[Anomaly]]:
    plans: list[DayPlan] = []
    day = first - timedelta(days=1)
    while day <= last + timedelta(days=1):
        plans.append(book.plan(person, day))
        day += timedelta(days=1)
    in_range = [p for p in plans if first <= p.day <= last]
    unscheduled = sum(p.status == "no_schedule" for p in in_range)
    if site is not None:
        at_site = any(p.shift is not None and p.shift.site == site for p in in_range)
        if not at_site and not (unscheduled and person.site == site):
            return None, []
    occurrences = [p.occurrence for p in plans if p.occurrence is not None]
    assigned: list[list[AttendanceEvent]] = [[] for _ in occurrences]
    anomalies: list[Anomaly] = []
    events = sorted(events, key=lambda e: (e.utc, e.event_id))
    for event in events:
        index = _ref_owner(occurrences, event)
        if index is not None:
            assigned[index].append(event)
        elif first <= event.local_time.date() <= last and unscheduled < len(in_range):
            anomalies.append(
                Anomaly(
                    "outside_window",
                    person.person_id,
                    event.local_time.date(),
                    event,
                    f"{event.direction} at {event.local_time:%Y-%m-%d %H:%M:%S} is in no "
                    "shift's punch window",
                )
            )
        if event.clock_synced is not False:
            continue
        owner_day = occurrences[index].day if index is not None else event.local_time.date()
        if first <= owner_day <= last:
            anomalies.append(
                Anomaly(
                    "clock_unsynced",
                    person.person_id,
                    owner_day,
                    event,
                    f"{event.direction} at {event.local_time:%Y-%m-%d %H:%M:%S} was stamped "
                    "while the kiosk clock was not synchronised",
                )
            )
    days: list[RefDay] = []
    for occurrence, theirs in zip(occurrences, assigned, strict=True):
        if not first <= occurrence.day <= last:
            continue
        if site is not None and occurrence.shift.site != site:
            continue
        punches = pair_punches(theirs, person.person_id, occurrence.day)
        anomalies.extend(punches.anomalies)
        days.append(_ref_day(person, occurrence, tuple(theirs), punches))
    if unscheduled == len(in_range):
        anomalies.append(
            Anomaly(
                "no_schedule",
                person.person_id,
                None,
                None,
                f"no shift pattern for this person or team {first} to {last}",
            )
        )
    anomalies.sort(key=_ref_anomaly_order)
    return RefSummary(person, tuple(days), unscheduled), anomalies


def _ref_owner(occurrences: list[Occurrence], event: AttendanceEvent) -> int | None:
    at = event.utc
    starts = [o.window_start for o in occurrences]
    best: int | None = None
    best_gap: timedelta | None = None
    j = bisect.bisect_right(starts, at) - 1
    while j >= 0 and starts[j] >= at - _LONGEST_WINDOW:
        occurrence = occurrences[j]
        if occurrence.holds(at):
            anchor = occurrence.start if event.direction == "in" else occurrence.end
            gap = abs(at - anchor)
            if best_gap is None or gap <= best_gap:
                best, best_gap = j, gap
        j -= 1
    return best


def _ref_day(
    person: PersonInfo, occurrence: Occurrence, events: tuple[AttendanceEvent, ...], p: Punches
) -> RefDay:
    arrival, departure = p.arrival, p.departure
    late = None
    if arrival is not None and arrival.utc > occurrence.late_after:
        late = -(-(arrival.utc - occurrence.start) // MINUTE)
    early = None
    if departure is not None and departure.utc < occurrence.early_before:
        early = -(-(occurrence.end - departure.utc) // MINUTE)
    worked = sum((b - a for a, b in p.periods), timedelta())
    return RefDay(person, occurrence, events, arrival, departure, late, early,
                  max(0, worked // MINUTE))  # fmt: skip


def _ref_anomaly_order(anomaly: Anomaly) -> tuple[date, datetime, str]:
    when = anomaly.event.utc if anomaly.event is not None else _EPOCH
    return (anomaly.day or date.min, when, anomaly.kind)


def reference_tables(attendance: RefAttendance) -> dict[str, list[tuple[Cell, ...]]]:
    """The rows of every report, as the object-based tables made them."""

    def cells(d: RefDay) -> tuple[Cell, ...]:
        o = d.occurrence
        return (o.day, d.person.person_id, d.person.name, d.person.team, o.site.name,
                o.shift.text)  # fmt: skip

    by_date = sorted(attendance.days, key=lambda d: (d.day, d.person.person_id))
    late = [
        (*cells(d), d.occurrence.local(d.occurrence.start), d.occurrence.local(d.arrival.utc),
         d.late_minutes)
        for d in by_date if d.late_minutes is not None and d.arrival is not None
    ]  # fmt: skip
    early = [
        (*cells(d), d.occurrence.local(d.occurrence.end), d.occurrence.local(d.departure.utc),
         d.early_minutes)
        for d in by_date if d.early_minutes is not None and d.departure is not None
    ]  # fmt: skip
    absent = [(*cells(d), d.occurrence.local(d.occurrence.start)) for d in by_date if d.absent]
    hours: list[tuple[Cell, ...]] = []
    summary: list[tuple[Cell, ...]] = []
    total = (attendance.last - attendance.first).days + 1
    for s in attendance.people:
        names = sorted({d.occurrence.site.name for d in s.days})
        sites = "/".join(names) if names else s.person.site
        worked = sum(d.worked_minutes for d in s.days)
        if s.days:
            for d in s.days:
                hours.append((*cells(d), d.occurrence.scheduled_minutes, d.worked_minutes,
                              round(d.worked_minutes / 60, 2)))  # fmt: skip
            scheduled = sum(d.occurrence.scheduled_minutes for d in s.days)
            hours.append((None, s.person.person_id, s.person.name, s.person.team, sites,
                          "total", scheduled, worked, round(worked / 60, 2)))  # fmt: skip
        lates = [d.late_minutes for d in s.days if d.late_minutes is not None]
        earlies = [d.early_minutes for d in s.days if d.early_minutes is not None]
        note = None
        if s.unscheduled_days >= total:
            note = "no schedule"
        elif s.unscheduled_days:
            note = f"no schedule on {s.unscheduled_days} of {total} days"
        summary.append((
            s.person.person_id, s.person.name, s.person.team, sites, len(s.days),
            sum(not d.absent for d in s.days), len(lates), sum(lates), len(earlies),
            sum(earlies), sum(d.absent for d in s.days), worked, round(worked / 60, 2), note,
        ))  # fmt: skip
    roster = {s.person.person_id: s.person for s in attendance.people}
    anomalies: list[tuple[Cell, ...]] = []
    for a in attendance.anomalies:
        who = roster.get(a.person_id)
        e = a.event
        anomalies.append((
            a.day, a.person_id, None if who is None else who.name,
            None if who is None else who.team, a.kind, None if e is None else e.direction,
            None if e is None else e.local_time.replace(tzinfo=None, microsecond=0),
            None if e is None else e.tz, None if e is None else e.event_id, a.detail,
        ))  # fmt: skip
    return {"late": late, "early": early, "absent": absent, "hours": hours,
            "summary": summary, "anomalies": anomalies}  # fmt: skip


# --------------------------------------------------------------------- comparing
def same_attendance(fast: Attendance, slow: RefAttendance) -> None:
    def view(days: Sequence[object]) -> list[tuple[object, ...]]:
        return [
            (d.person.person_id, d.day, d.occurrence, [e.event_id for e in d.events],  # type: ignore[attr-defined]
             d.arrival, d.departure, d.late_minutes, d.early_minutes, d.worked_minutes)  # type: ignore[attr-defined]
            for d in days
        ]  # fmt: skip

    assert [(s.person, s.unscheduled_days) for s in fast.people] == [
        (s.person, s.unscheduled_days) for s in slow.people
    ]
    for a, b in zip(fast.people, slow.people, strict=True):
        assert view(a.days) == view(b.days)
    assert fast.anomalies == slow.anomalies
    expected = reference_tables(slow)
    for kind in REPORTS:
        assert list(build_report(kind, fast).table.rows) == expected[kind], kind


SITES = [
    Site("berlin", "Europe/Berlin", frozenset({date(2024, 3, 29), date(2024, 10, 28)})),
    Site("chicago", "America/Chicago", frozenset({date(2024, 11, 4)})),
    Site("howe", "Australia/Lord_Howe"),
    Site("kolkata", "Asia/Kolkata"),
]
ZONES = [s.timezone for s in SITES]
STARTS = [date(2024, 3, 8), date(2024, 3, 27), date(2024, 10, 24), date(2024, 11, 1)]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[object, ...]:
    base = draw(st.sampled_from(STARTS))
    first = base + timedelta(days=draw(st.integers(0, 3)))
    last = first + timedelta(days=draw(st.integers(0, 6)))
    owners = draw(
        st.lists(st.sampled_from(["t:a", "t:b", "p:ann", "p:bo"]), min_size=1, max_size=4)
    )
    shifts = []
    for i, owner in enumerate(owners):
        kind, name = owner.split(":")
        valid_from = draw(st.none() | st.just(first + timedelta(days=draw(st.integers(-2, 4)))))
        valid_until = draw(st.none() | st.just(last + timedelta(days=draw(st.integers(-4, 2)))))
        if valid_from and valid_until and valid_from > valid_until:
            valid_from, valid_until = valid_until, valid_from
        start = draw(st.integers(0, 24 * 60 - 1))
        end = (start + draw(st.integers(1, 24 * 60 - 1))) % (24 * 60)
        length = (end - start) % (24 * 60)
        shifts.append(
            Shift(
                site=draw(st.sampled_from(SITES)).name,
                weekdays=draw(
                    st.sampled_from([frozenset(range(7)), frozenset(range(5))])
                    | st.frozensets(st.integers(0, 6), min_size=1)
                ),
                start=time(start // 60, start % 60),
                end=time(end // 60, end % 60),
                person_id=name if kind == "p" else None,
                team=name if kind == "t" else None,
                grace_late=draw(st.integers(0, min(30, length))),
                grace_early=draw(st.integers(0, min(30, length))),
                window_before=draw(st.sampled_from([0, 30, 120, 600, MAX_WINDOW])),
                window_after=draw(st.sampled_from([0, 60, 240, MAX_WINDOW])),
                valid_from=valid_from,
                valid_until=valid_until,
                origin=f"shift {i}",
            )
        )
    days_off = [
        DayOff(pid, first + timedelta(days=a), first + timedelta(days=a + n))
        for pid, a, n in draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["ann", "bo", "cy"]), st.integers(-1, 6), st.integers(0, 2)
                ),
                max_size=2,
            )
        )
    ]
    people = [
        PersonInfo("ann", "Ann", "a"),
        PersonInfo("bo", "Bo", draw(st.sampled_from(["a", "b", None]))),
        PersonInfo("cy", "Cy", "b", draw(st.sampled_from([None, "berlin"]))),
        PersonInfo("di", "Di", None, "chicago"),
    ][: draw(st.integers(1, 4))]
    origin = datetime.combine(first, time(), UTC) - timedelta(days=3)
    span = (last - first).days + 7
    zones = {site.name: ZoneInfo(site.timezone) for site in SITES}
    events: list[AttendanceEvent] = []
    for n in range(draw(st.integers(0, 40))):
        mode = draw(st.sampled_from(["near", "near", "near", "again", "anywhere"]))
        if mode == "near" and shifts:  # around a shift's start or end, on some date
            shift = draw(st.sampled_from(shifts))
            day = first + timedelta(days=draw(st.integers(-2, (last - first).days + 2)))
            anchor = draw(st.sampled_from([shift.start, shift.end]))
            local = datetime.combine(day, anchor, zones[shift.site])
            at = local.astimezone(UTC) + timedelta(seconds=draw(st.integers(-4 * 3600, 4 * 3600)))
        elif mode == "again" and events:  # the very same instant as an earlier punch
            at = draw(st.sampled_from(events)).utc
        else:
            at = origin + timedelta(seconds=draw(st.integers(0, span * 86400)))
        events.append(
            AttendanceEvent(
                f"e{draw(st.integers(0, 99)):02}-{n}",
                draw(st.sampled_from(["ann", "ann", "bo", "cy", "di", "ghost"])),
                draw(st.sampled_from(["in", "out"])),
                at,
                draw(st.sampled_from(ZONES)),
                draw(st.sampled_from([True, True, False, None])),
                "k1",
            )
        )
    selection = draw(
        st.sampled_from(
            [
                Selection(),
                Selection(person_id="ann"),
                Selection(person_id="ghost"),
                Selection(team="a"),
                Selection(site="berlin"),
                Selection(site="chicago"),
                Selection(team="b", site="berlin"),
            ]
        )
    )
    return shifts, days_off, people, events, first, last, selection


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_vectorised_core_agrees_with_the_plain_one(scenario: tuple[object, ...]) -> None:
    shifts, days_off, people, events, first, last, selection = scenario
    try:
        book = ScheduleBook.build(SITES, shifts, days_off)  # type: ignore[arg-type]
    except ScheduleError:
        return  # overlapping patterns: refused, as they should be
    args = (events, people, book, first, last)
    fast = compute_attendance(*args, selection=selection)  # type: ignore[arg-type]
    slow = reference_attendance(*args, selection)  # type: ignore[arg-type]
    same_attendance(fast, slow)
