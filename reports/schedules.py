"""Work schedules: sites, weekly shift patterns, holidays and days off.

- A **site** has an IANA time zone and its holidays. Shift times are wall-clock times
  there: lateness is judged in that local time on the shift's date, while hours come
  from UTC differences (a night shift over a spring-forward change is an hour shorter).
- A **shift pattern** says on which weekdays someone works from ``start`` to ``end``
  (local), at which site, with grace minutes for late arrival and early departure and
  a punch window (minutes before the start and after the end in which a punch belongs to
  the shift). A shift whose end is not after its start crosses midnight and belongs to
  the day it starts. A pattern applies to one person or to a team, optionally between
  two dates (inclusive).
- **Person wins**: on a date where any pattern of the person is in force, only the
  person's patterns count (a weekday they lack is a rest day, not a team shift);
  otherwise the team's. Neither: the person has no schedule that day, and reports say
  so rather than guess.
- A **holiday** (of the shift's site, on the shift's date) or a **day off** (of the
  person) cancels that day's shift.

Local times that do not exist (in a spring-forward gap) are read with the offset before
the change, so 02:30 becomes 03:30; ambiguous ones (in a fall-back hour) are the first.
At most one shift per person per day: two patterns of one person, or of one team, whose
dates and weekdays overlap are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clockface.errors import ScheduleError
from reports.model import PersonInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WINDOW_BEFORE = 120
"""Minutes before a shift's start in which an arrival belongs to it, unless a pattern says."""
DEFAULT_WINDOW_AFTER = 240
"""Minutes after a shift's end in which a departure belongs to it, unless a pattern says."""
MAX_WINDOW = 12 * 60

DayStatus = Literal["shift", "rest", "holiday", "day_off", "no_schedule"]


@dataclass(frozen=True, slots=True)
class Site:
    """A place people work, with its IANA time zone and holidays."""

    name: str
    timezone: str
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip():
            raise ScheduleError(f"a site name must be a non-empty word, not {self.name!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as err:
            raise ScheduleError(
                f"site {self.name!r}: unknown time zone {self.timezone!r}: give an IANA "
                "name such as 'Europe/Berlin'"
            ) from err

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Shift:
    """A weekly shift pattern of one person (``person_id``) or one team (``team``).

    ``weekdays``: 0 = Monday ... 6 = Sunday. Grace and window values are minutes.
    ``origin`` says where the pattern came from (a file and line), for messages.
    """

    site: str
    weekdays: frozenset[int]
    start: time
    end: time
    person_id: str | None = None
    team: str | None = None
    grace_late: int = 0
    grace_early: int = 0
    window_before: int = DEFAULT_WINDOW_BEFORE
    window_after: int = DEFAULT_WINDOW_AFTER
    valid_from: date | None = None
    valid_until: date | None = None
    origin: str = ""

    def __post_init__(self) -> None:
        where = self.origin or "a shift pattern"
        if (self.person_id is None) == (self.team is None):
            raise ScheduleError(f"{where}: give exactly one of person and team")
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise ScheduleError(f"{where}: weekdays must be some of 0-6 (Monday-Sunday)")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is not None or value.second or value.microsecond:
                raise ScheduleError(f"{where}: {name} must be a local time HH:MM, not {value}")
        if self.start == self.end:
            raise ScheduleError(f"{where}: start and end are both {self.start:%H:%M}")
        length = self.nominal_minutes
        for name, limit in (("grace_late", length), ("grace_early", length)):
            _check_minutes(where, name, getattr(self, name), limit)
        for name in ("window_before", "window_after"):
            _check_minutes(where, name, getattr(self, name), MAX_WINDOW)
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_from > self.valid_until
        ):
            raise ScheduleError(
                f"{where}: from {self.valid_from} is after until {self.valid_until}"
            )

    @property
    def nominal_minutes(self) -> int:
        """Length on a day without a clock change."""
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        return (end - start) % (24 * 60)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    @property
    def text(self) -> str:
        """``22:00-06:00``."""
        a, b = self.start, self.end
        return f"{a.hour:02}:{a.minute:02}-{b.hour:02}:{b.minute:02}"

    def in_force(self, day: date) -> bool:
        """Whether the pattern's date range holds ``day`` (whatever the weekday)."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


@dataclass(frozen=True, slots=True)
class DayOff:
    """Days a person does not work (leave, sickness), ``first`` to ``last`` inclusive."""

    person_id: str
    first: date
    last: date
    note: str = ""

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ScheduleError(f"day off of {self.person_id!r}: {self.first} is after {self.last}")


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One shift on one date: its instants in UTC and the punch window around them.

    Make one with :meth:`at`; the same shift on the same date is one object, shared by
    everyone who works it.
    """

    shift: Shift
    site: Site
    day: date
    start: datetime
    end: datetime
    window_start: datetime
    window_end: datetime
    late_after: datetime
    """An arrival after this instant is late (one exactly at it is not)."""
    early_before: datetime
    """A departure before this instant is early (one exactly at it is not)."""

    @classmethod
    def at(cls, shift: Shift, site: Site, day: date) -> Occurrence:
        """The shift on ``day``: start and end are wall-clock times at the site."""
        zone = site.zone
        end_day = day + timedelta(days=1) if shift.crosses_midnight else day
        start = _to_utc(datetime.combine(day, shift.start), zone)
        end = _to_utc(datetime.combine(end_day, shift.end), zone)
        return cls(
            shift,
            site,
            day,
            start,
            end,
            window_start=start - timedelta(minutes=shift.window_before),
            window_end=end + timedelta(minutes=shift.window_after),
            late_after=start + timedelta(minutes=shift.grace_late),
            early_before=end - timedelta(minutes=shift.grace_early),
        )

    @property
    def scheduled_minutes(self) -> int:
        """Real minutes from start to end: 60 fewer or more over a clock change."""
        return (self.end - self.start) // timedelta(minutes=1)

    def local(self, moment: datetime) -> datetime:
        """``moment`` as a naive wall-clock time at the site, to the second."""
        return moment.astimezone(self.site.zone).replace(tzinfo=None, microsecond=0)

    def holds(self, moment: datetime) -> bool:
        return self.window_start <= moment <= self.window_end


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What a person's schedule says about one date."""

    day: date
    status: DayStatus
    shift: Shift | None = None
    occurrence: Occurrence | None = None


@dataclass
class ScheduleBook:
    """Every site, shift pattern and day off, checked together.

    Refuses a pattern at an unknown site, and two patterns of the same person (or team)
    whose date ranges and weekdays overlap.
    """

    sites: dict[str, Site]
    shifts: tuple[Shift, ...]
    days_off: tuple[DayOff, ...] = ()
    _by_person: dict[str, list[Shift]] = field(init=False, repr=False)
    _by_team: dict[str, list[Shift]] = field(init=False, repr=False)
    _off: dict[str, list[DayOff]] = field(init=False, repr=False)
    _plans: dict[tuple[str | None, str | None, date], DayPlan] = field(init=False, repr=False)
    _ranges: dict[tuple[str | None, str | None, date, date], tuple[DayPlan, ...]] = field(
        init=False, repr=False
    )

    @classmethod
    def build(
        cls, sites: Iterable[Site], shifts: Iterable[Shift], days_off: Iterable[DayOff] = ()
    ) -> ScheduleBook:
        by_name: dict[str, Site] = {}
        for site in sites:
            if site.name in by_name:
                raise ScheduleError(f"site {site.name!r} is defined twice")
            by_name[site.name] = site
        return cls(by_name, tuple(shifts), tuple(days_off))

    def __post_init__(self) -> None:
        self._by_person = {}
        self._by_team = {}
        self._off = {}
        self._plans = {}
        self._ranges = {}
        for shift in self.shifts:
            if shift.site not in self.sites:
                known = ", ".join(sorted(self.sites)) or "none"
                raise ScheduleError(
                    f"{shift.origin or 'a shift pattern'}: unknown site {shift.site!r} "
                    f"(sites: {known})"
                )
            if shift.person_id is not None:
                self._by_person.setdefault(shift.person_id, []).append(shift)
            else:
                assert shift.team is not None
                self._by_team.setdefault(shift.team, []).append(shift)
        for group in (*self._by_person.values(), *self._by_team.values()):
            _refuse_overlaps(group)
        for off in self.days_off:
            self._off.setdefault(off.person_id, []).append(off)

    def plan(self, person: PersonInfo, day: date) -> DayPlan:
        """The person's shift on ``day`` (the day it starts), or why there is none."""
        found = self._pattern_plan(self._own(person), person.team, day)
        if found.status == "shift" and self.off_on(person.person_id, day):
            return DayPlan(day, "day_off", found.shift)
        return found

    def plans(self, person: PersonInfo, first: date, last: date) -> list[DayPlan]:
        """:meth:`plan` for each date from ``first`` to ``last`` (inclusive)."""
        return [
            DayPlan(p.day, "day_off", p.shift)
            if p.status == "shift" and self.off_on(person.person_id, p.day)
            else p
            for p in self.pattern_plans(person, first, last)
        ]

    def pattern_plans(self, person: PersonInfo, first: date, last: date) -> tuple[DayPlan, ...]:
        """What the person's patterns say for each date ``first``..``last``, days off aside.

        Everyone who shares the same patterns (a team's members without patterns of their
        own) gets the very same tuple, worked out once: a report over a thousand people in
        ten teams plans ten calendars, not a thousand. Apply :meth:`off_on` for days off.
        """
        own = self._own(person)
        key = (own, person.team, first, last)
        found = self._ranges.get(key)
        if found is None:
            found = self._ranges[key] = tuple(
                self._pattern_plan(own, person.team, first + timedelta(days=n))
                for n in range((last - first).days + 1)
            )
        return found

    def days_off_of(self, person_id: str) -> tuple[DayOff, ...]:
        """The person's days off, as given."""
        return tuple(self._off.get(person_id, ()))

    def off_on(self, person_id: str, day: date) -> bool:
        """Whether ``day`` is a day off of the person."""
        return any(o.first <= day <= o.last for o in self._off.get(person_id, ()))

    def _own(self, person: PersonInfo) -> str | None:
        """The person's id when patterns of their own apply, else None (their team's do)."""
        return person.person_id if person.person_id in self._by_person else None

    def _pattern_plan(self, own: str | None, team: str | None, day: date) -> DayPlan:
        key = (own, team, day)
        found = self._plans.get(key)
        if found is None:  # shared by everyone of a team without patterns of their own
            found = self._plans[key] = self._plan(own, team, day)
        return found

    def _plan(self, person_id: str | None, team: str | None, day: date) -> DayPlan:
        patterns: list[Shift] = []
        if person_id is not None:
            patterns = [s for s in self._by_person[person_id] if s.in_force(day)]
            if not patterns:  # the team's plan that day, shared with the whole team
                return self._pattern_plan(None, team, day)
        elif team is not None:
            patterns = [s for s in self._by_team.get(team, ()) if s.in_force(day)]
        if not patterns:
            return DayPlan(day, "no_schedule")
        weekday = day.weekday()
        shift = next((s for s in patterns if weekday in s.weekdays), None)
        if shift is None:
            return DayPlan(day, "rest")
        site = self.sites[shift.site]
        if day in site.holidays:
            return DayPlan(day, "holiday", shift)
        return DayPlan(day, "shift", shift, Occurrence.at(shift, site, day))

    def has_any(self, person: PersonInfo) -> bool:
        """Whether any pattern names the person or their team."""
        return person.person_id in self._by_person or (
            person.team is not None and person.team in self._by_team
        )


def weekday_set(names: Sequence[str], where: str) -> frozenset[int]:
    """``["mon", "tue"]`` or ``["mon-fri"]`` as weekday numbers; ScheduleError naming ``where``."""
    days: set[int] = set()
    for raw in names:
        name = raw.strip().lower()
        if "-" in name:
            first, _, last = name.partition("-")
            a, b = _weekday(first, where), _weekday(last, where)
            if a > b:
                raise ScheduleError(f"{where}: weekday range {raw!r} runs backwards")
            days.update(range(a, b + 1))
        else:
            days.add(_weekday(name, where))
    if not days:
        raise ScheduleError(f"{where}: no weekdays given")
    return frozenset(days)


def _weekday(name: str, where: str) -> int:
    key = name.strip().lower()[:3]
    if key not in WEEKDAYS or len(name.strip()) < 3:
        raise ScheduleError(
            f"{where}: {name!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"
        )
    return WEEKDAYS.index(key)


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local time at ``zone`` as UTC; a time in a gap moves forward (fold=0)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _check_minutes(where: str, name: str, value: object, limit: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ScheduleError(
            f"{where}: {name} must be whole minutes from 0 to {limit}, not {value!r}"
        )


def _refuse_overlaps(shifts: list[Shift]) -> None:
    for i, a in enumerate(shifts):
        for b in shifts[i + 1 :]:
            lo = max(a.valid_from or date.min, b.valid_from or date.min)
            hi = min(a.valid_until or date.max, b.valid_until or date.max)
            if lo <= hi and a.weekdays & b.weekdays:
                who = f"person {a.person_id!r}" if a.person_id is not None else f"team {a.team!r}"
                raise ScheduleError(
                    f"{b.origin or 'a shift pattern'}: {who} already has a shift on these "
                    f"weekdays and dates ({a.origin or a.text}); give the patterns "
                    "different weekdays or from/until dates"
                )
