"""Work schedules stored with the roster: in a kiosk's SQLite file or the central database.

The tables are :mod:`clockface.schedule_tables` (kiosk schema version 3, central version
2). :class:`ScheduleStore` reads them into a checked
:class:`~reports.schedules.ScheduleBook` (:meth:`ScheduleStore.book`; a shift's origin
is ``shift #ID``) and changes them:

- **Checked before commit.** Every change is one transaction. The schedules as they
  would be after it are built into a ScheduleBook first (an unknown site, two patterns
  of one person on one day, a bad time zone: the ScheduleError the file parser gives)
  and again from the rows written, before the commit; any refusal leaves every table as
  it was. On SQLite a write takes the write lock up front (``BEGIN IMMEDIATE``); on
  PostgreSQL writers of schedules take one transaction-level advisory lock, so two
  changes never check against the same old state.
- **Audited.** Every change leaves one entry in the database's ``audit`` table, naming
  the actor: central ``kind = "schedule"``, an action such as ``shift_added`` and a
  subject such as ``person:ada``, ``team:nights``, ``site:berlin`` or ``schedules`` (an
  import); a kiosk database keeps the subject in its ``person_id`` column. Notes (leave,
  sickness) never go into the audit log.
- **One zone per site name.** On the central database a schedule site named like a
  central site (where kiosks stand, ``sites``) must have its time zone, and takes it
  when added without one.
- **Export.** :meth:`ScheduleStore.export_toml` writes what is stored as a schedule file
  (:func:`to_toml`) that :func:`reports.schedule_files.parse_toml` reads back to the same
  book; holiday names and shift notes travel as comments.

Take one on an open store: :meth:`ScheduleStore.on_kiosk` (a kiosk store opened without
creating a file) or :meth:`ScheduleStore.on_central` (the central store: the schedules
use its engine); close it, or use it as a context manager. ``clockface schedule`` opens
the store (:func:`reports.cli.open_database`).
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from clockface import schedule_tables
from clockface.closing import Closing
from clockface.database import explain, sqlite_engine
from clockface.days import check_day
from clockface.errors import CentralStoreError, ScheduleError, StoreError, UnknownPersonError
from clockface.values import as_utc, iso_utc, system_clock
from reports import schedule_files
from reports.model import PersonInfo
from reports.schedules import WEEKDAYS, DayOff, ScheduleBook, Shift, Site

if TYPE_CHECKING:
    from reports.central_source import OpenCentral
    from reports.sources import OpenKiosk

StoreKind = Literal["kiosk", "central"]

DEFAULT_BUSY_TIMEOUT_S = 5.0
# pg_advisory_xact_lock key: "CLKS" (clockface schedules): one schedule writer at a time.
SCHEDULE_LOCK_KEY = 0x434C4B53
NEW_SHIFT = "the new shift"
"""A shift being added, as messages name it (it has no id yet)."""
_TIMEZONE_TEXT = 64
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# --------------------------------------------------------------------- what is stored
@dataclass(frozen=True, slots=True)
class Holiday:
    day: date
    name: str = ""


@dataclass(frozen=True, slots=True)
class StoredSite:
    name: str
    timezone: str
    holidays: tuple[Holiday, ...] = ()

    def site(self) -> Site:
        return Site(self.name, self.timezone, frozenset(h.day for h in self.holidays))


@dataclass(frozen=True, slots=True)
class StoredShift:
    """A stored shift pattern, its id, and the note stored with it (where it came from)."""

    id: int
    shift: Shift
    note: str = ""


@dataclass(frozen=True, slots=True)
class StoredDayOff:
    id: int
    day_off: DayOff


@dataclass(frozen=True, slots=True)
class StoredSchedules:
    """Every schedule row of a database, ordered: sites by name, shifts and days off by id."""

    sites: tuple[StoredSite, ...] = ()
    shifts: tuple[StoredShift, ...] = ()
    days_off: tuple[StoredDayOff, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.sites or self.shifts or self.days_off)

    def book(self, *, new_shift: int | None = None) -> ScheduleBook:
        """The checked book: ScheduleError for overlaps, unknown sites, bad values.
        ``new_shift``: the id messages call "the new shift"."""
        return ScheduleBook.build(
            (s.site() for s in self.sites),
            (
                dataclasses.replace(
                    s.shift, origin=NEW_SHIFT if s.id == new_shift else f"shift #{s.id}"
                )
                for s in self.shifts
            ),
            (d.day_off for d in self.days_off),
        )

    def counts(self) -> str:
        """``2 sites, 3 holidays, 6 shifts, 1 day off``."""
        holidays = sum(len(s.holidays) for s in self.sites)
        return ", ".join(
            (
                _plural(len(self.sites), "site"),
                _plural(holidays, "holiday"),
                _plural(len(self.shifts), "shift"),
                _plural(len(self.days_off), "day off", "days off"),
            )
        )


def stored_from_book(
    book: ScheduleBook, *, holiday_names: dict[tuple[str, date], str] | None = None
) -> StoredSchedules:
    """A book as rows (ids 1, 2, 3 ... in the book's order); a shift's note says where
    it was imported from (its origin). ``holiday_names``: names to keep, by (site, day)."""
    names = holiday_names or {}
    return StoredSchedules(
        tuple(
            StoredSite(
                s.name,
                s.timezone,
                tuple(Holiday(d, names.get((s.name, d), "")) for d in sorted(s.holidays)),
            )
            for s in sorted(book.sites.values(), key=lambda s: s.name)
        ),
        tuple(
            StoredShift(
                n, shift, _clip(f"imported from {_one_line(shift.origin)}") if shift.origin else ""
            )
            for n, shift in enumerate(book.shifts, start=1)
        ),
        tuple(StoredDayOff(n, off) for n, off in enumerate(book.days_off, start=1)),
    )


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What an import stored (or would have, in a dry run), and what it replaced."""

    stored: StoredSchedules
    replaced: StoredSchedules


def shift_from_fields(fields: Mapping[str, str], where: str = NEW_SHIFT) -> Shift:
    """A shift from text fields named as in a schedule file (person or team, site, days,
    start, end, grace_late ... from, until), read by the file parser's own code: the
    same checks, the same messages (``the new shift, start: '9am' is not a time HH:MM``)."""
    return schedule_files.shift_from_fields(fields, where)


def day_off_from_fields(fields: Mapping[str, str], where: str = "the new day off") -> DayOff:
    """Days off from text fields named as in a schedule file (person, from, until, note),
    read by the file parser's own code."""
    return schedule_files.day_off_from_fields(fields, where)


# --------------------------------------------------------------------- the store
class ScheduleStore(Closing):
    """The schedule tables of one database, kiosk or central, opened already by its own
    store: ``on_kiosk`` or ``on_central``; close it, or use it as a context manager."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        kind: StoreKind,
        where: str,
        actor: str,
        clock: Callable[[], datetime],
        owns_engine: bool,
    ) -> None:
        """Use ``on_kiosk`` or ``on_central``: this takes an engine on a migrated
        database (``owns_engine``: closing this store disposes of it)."""
        self._engine = engine
        self._owns_engine = owns_engine
        self._kind: StoreKind = kind
        self._where = where
        self._actor = actor
        self._clock = clock
        self._t = schedule_tables.tables().tables
        self._audit_table = sa.table(
            "audit",
            sa.column("at_utc"),
            sa.column("actor"),
            sa.column("kind"),
            sa.column("action"),
            sa.column("subject"),
            sa.column("person_id"),
            sa.column("detail"),
        )
        self._people = sa.table(
            "people", sa.column("person_id"), sa.column("name"), sa.column("team")
        )
        self._central_sites = sa.table("sites", sa.column("name"), sa.column("timezone"))

    @classmethod
    def on_kiosk(
        cls,
        store: OpenKiosk,
        *,
        clock: Callable[[], datetime] | None = None,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> ScheduleStore:
        """The schedules of an open kiosk store (which checked the file and brought it up
        to date), read and written on connections of their own (busy timeout, foreign
        keys on) that never create a file; audited as the store's actor."""
        engine = _kiosk_engine(store.path, busy_timeout_s)
        return cls(
            engine,
            kind="kiosk",
            where=str(store.path),
            actor=store.actor,
            clock=clock or system_clock,
            owns_engine=True,
        )

    @classmethod
    def on_central(cls, store: OpenCentral) -> ScheduleStore:
        """The schedules of an open central store, on its engine, with its actor and
        clock; closing this leaves the store open."""
        return cls(
            store.engine,
            kind="central",
            where=store.where,
            actor=store.actor,
            clock=store.now,
            owns_engine=False,
        )

    # ----------------------------------------------------------------- lifecycle
    @property
    def kind(self) -> StoreKind:
        return self._kind

    @property
    def where(self) -> str:
        """The database, for messages: a path, or a URL without its password."""
        return self._where

    @property
    def actor(self) -> str:
        return self._actor

    def close(self) -> None:
        """Close the connections (and the central store); closing twice is harmless."""
        if self._owns_engine:
            self._engine.dispose()

    def __repr__(self) -> str:
        return f"ScheduleStore({self._kind}, {self._where!r})"

    # ----------------------------------------------------------------- reading
    def stored(self) -> StoredSchedules:
        """Every schedule row, as stored."""
        with self._read("reading schedules") as conn:
            return self._load(conn)

    def book(self) -> ScheduleBook:
        """The stored schedules as a checked book; empty when nothing is stored."""
        return self.stored().book()

    def person(self, person_id: str) -> PersonInfo:
        """A person of the roster in the same database (for their team)."""
        people = self._people
        with self._read("reading the roster") as conn:
            row = conn.execute(
                sa.select(people.c.person_id, people.c.name, people.c.team).where(
                    people.c.person_id == person_id
                )
            ).first()
        if row is None:
            raise UnknownPersonError(f"no person {person_id!r} in the roster of {self._where}")
        return PersonInfo(row.person_id, row.name, row.team)

    def known_team(self, team: str) -> bool:
        """Whether anyone in the roster of the same database is in ``team``."""
        people = self._people
        with self._read("reading the roster") as conn:
            found = conn.execute(
                sa.select(people.c.person_id).where(people.c.team == team).limit(1)
            ).first()
        return found is not None

    def export_toml(self) -> str:
        """What is stored, as a TOML schedule file (see :func:`to_toml`)."""
        return to_toml(self.stored(), source=self._where)

    # ----------------------------------------------------------------- sites
    def add_site(self, name: str, timezone: str | None = None) -> StoredSite:
        """Add a site. Without ``timezone``, on the central database, the zone of the
        central site of that name."""
        _check_site_name(name)
        with self._write("adding a site") as conn:
            current = self._load(conn)
            if _find_site(current, name) is not None:
                raise ScheduleError(f"site {name!r} is already stored in {self._where}")
            central_zone = self._central_zone(conn, name)
            if timezone is None:
                if central_zone is None:
                    raise ScheduleError(f"site {name!r}: give its IANA time zone (--timezone), "
                        "such as 'Europe/Berlin'" + self._no_central_site)  # fmt: skip
                timezone = central_zone
            site = StoredSite(name, _check_zone(name, timezone))
            self._agree_with_central(conn, site)
            _check(dataclasses.replace(current, sites=(*current.sites, site)))
            now = self._now()
            conn.execute(
                sa.insert(self._t["schedule_sites"]).values(
                    name=name, timezone=site.timezone, created_utc=now, updated_utc=now
                )
            )
            self._verify(conn)
            self._audit(conn, "site_added", f"site:{name}", f"timezone {site.timezone}", now)
        return site

    def set_site_timezone(self, name: str, timezone: str) -> StoredSite:
        """Change a site's time zone (its shifts' times stay local times there)."""
        with self._write("changing a site's time zone") as conn:
            current = self._load(conn)
            old = self._require_site(current, name)
            site = dataclasses.replace(old, timezone=_check_zone(name, timezone))
            self._agree_with_central(conn, site)
            _check(
                dataclasses.replace(
                    current, sites=tuple(site if s is old else s for s in current.sites)
                )
            )
            now = self._now()
            table = self._t["schedule_sites"]
            conn.execute(
                sa.update(table)
                .where(table.c.name == name)
                .values(timezone=site.timezone, updated_utc=now)
            )
            self._verify(conn)
            self._audit(
                conn,
                "site_timezone_set",
                f"site:{name}",
                f"timezone {site.timezone} (was {old.timezone})",
                now,
            )
        return site

    def remove_site(self, name: str) -> int:
        """Remove a site and its holidays (how many, returned); refused while shift
        patterns use it."""
        with self._write("removing a site") as conn:
            current = self._load(conn)
            site = self._require_site(current, name)
            users = [s.id for s in current.shifts if s.shift.site == name]
            if users:
                ids = ", ".join(f"#{i}" for i in users[:10]) + (" ..." if len(users) > 10 else "")
                raise ScheduleError(
                    f"site {name!r} is used by {_plural(len(users), 'shift')} ({ids}): remove "
                    "them first (`clockface schedule shift remove ID`)"
                )
            holidays, sites = self._t["holidays"], self._t["schedule_sites"]
            conn.execute(sa.delete(holidays).where(holidays.c.site == name))
            conn.execute(sa.delete(sites).where(sites.c.name == name))
            self._verify(conn)
            count = len(site.holidays)
            self._audit(
                conn,
                "site_removed",
                f"site:{name}",
                f"with {_plural(count, 'holiday')}",
                self._now(),
            )
        return count

    # ----------------------------------------------------------------- holidays
    def add_holiday(self, site: str, day: date, name: str = "") -> Holiday:
        """A holiday at ``site``: no shift there that day."""
        holiday = Holiday(_check_day(day, "a holiday"), _text(name, "a holiday's name"))
        with self._write("adding a holiday") as conn:
            current = self._load(conn)
            stored = self._require_site(current, site)
            if any(h.day == day for h in stored.holidays):
                raise ScheduleError(f"site {site!r} already has a holiday on {day}")
            changed = dataclasses.replace(stored, holidays=(*stored.holidays, holiday))
            _check(
                dataclasses.replace(
                    current, sites=tuple(changed if s is stored else s for s in current.sites)
                )
            )
            conn.execute(
                sa.insert(self._t["holidays"]).values(
                    site=site, day=day.isoformat(), name=holiday.name
                )
            )
            self._verify(conn)
            self._audit(conn, "holiday_added", f"site:{site}", day.isoformat(), self._now())
        return holiday

    def remove_holiday(self, site: str, day: date) -> Holiday:
        """Remove a site's holiday; returns it."""
        with self._write("removing a holiday") as conn:
            current = self._load(conn)
            stored = self._require_site(current, site)
            found = next((h for h in stored.holidays if h.day == day), None)
            if found is None:
                raise ScheduleError(f"site {site!r} has no holiday on {day}")
            table = self._t["holidays"]
            conn.execute(
                sa.delete(table).where(table.c.site == site, table.c.day == day.isoformat())
            )
            self._verify(conn)
            self._audit(conn, "holiday_removed", f"site:{site}", day.isoformat(), self._now())
        return found

    # ----------------------------------------------------------------- shifts
    def add_shift(self, shift: Shift, *, note: str = "") -> int:
        """Store a shift pattern; returns its id. Refused when the person (or team)
        already has a shift on one of its weekdays and dates, or its site is unknown."""
        _check_shift(shift)
        note = _text(note, "a shift's note")
        with self._write("adding a shift") as conn:
            current = self._load(conn)
            _check(
                dataclasses.replace(current, shifts=(*current.shifts, StoredShift(0, shift))),
                new_shift=0,
            )
            now = self._now()
            result = conn.execute(
                sa.insert(self._t["shift_patterns"]).values(**_shift_row(shift, note, now))
            )
            new_id = _new_id(result)
            self._verify(conn, new_shift=new_id)
            self._audit(conn, "shift_added", _who(shift), f"#{new_id} {_describe(shift)}", now)
        return new_id

    def remove_shift(self, shift_id: int) -> StoredShift:
        """Remove a shift pattern by id; returns it."""
        with self._write("removing a shift") as conn:
            found = next((s for s in self._load(conn).shifts if s.id == shift_id), None)
            if found is None:
                raise ScheduleError(f"no shift #{shift_id} in {self._where}")
            table = self._t["shift_patterns"]
            conn.execute(sa.delete(table).where(table.c.id == shift_id))
            self._verify(conn)
            self._audit(
                conn,
                "shift_removed",
                _who(found.shift),
                f"#{shift_id} {_describe(found.shift)}",
                self._now(),
            )
        return found

    # ----------------------------------------------------------------- days off
    def add_day_off(self, off: DayOff) -> int:
        """Store days off of a person (first to last, inclusive); returns the id."""
        off = _check_day_off(off)
        with self._write("adding a day off") as conn:
            current = self._load(conn)
            _check(dataclasses.replace(current, days_off=(*current.days_off, StoredDayOff(0, off))))
            now = self._now()
            result = conn.execute(sa.insert(self._t["days_off"]).values(**_day_off_row(off, now)))
            new_id = _new_id(result)
            self._verify(conn)
            self._audit(
                conn, "day_off_added", f"person:{off.person_id}", f"#{new_id} {_span(off)}", now
            )
        return new_id

    def remove_day_off(self, day_off_id: int) -> StoredDayOff:
        """Remove days off by id; returns them."""
        with self._write("removing a day off") as conn:
            found = next((d for d in self._load(conn).days_off if d.id == day_off_id), None)
            if found is None:
                raise ScheduleError(f"no day off #{day_off_id} in {self._where}")
            table = self._t["days_off"]
            conn.execute(sa.delete(table).where(table.c.id == day_off_id))
            self._verify(conn)
            off = found.day_off
            self._audit(
                conn,
                "day_off_removed",
                f"person:{off.person_id}",
                f"#{day_off_id} {_span(off)}",
                self._now(),
            )
        return found

    # ----------------------------------------------------------------- all at once
    def import_book(
        self, book: ScheduleBook, *, replace: bool, dry_run: bool = False, source: str = ""
    ) -> ImportOutcome:
        """Store every site, holiday, shift and day off of ``book``, all or nothing.

        Without ``replace``, refused when anything is stored already; with it, what is
        stored is replaced in the same transaction (names of holidays kept on the same
        site and day stay). ``dry_run``: every check, then nothing kept. ``source``
        (a file name) goes into the audit entry.
        """
        for shift in book.shifts:
            _check_shift(shift)
        book = ScheduleBook.build(
            book.sites.values(), book.shifts, [_check_day_off(off) for off in book.days_off]
        )
        for given in book.sites.values():
            _check_site_name(given.name)
            _check_zone(given.name, given.timezone)
        with self._write("importing schedules", commit=not dry_run) as conn:
            current = self._load(conn)
            if not current.empty and not replace:
                raise ScheduleError(
                    f"schedules are already stored in {self._where} ({current.counts()}): "
                    "give --replace to replace them all, or change them one by one "
                    "(`clockface schedule --help`)"
                )
            names = {(s.name, h.day): h.name for s in current.sites for h in s.holidays}
            wanted = stored_from_book(book, holiday_names=names)
            for site in wanted.sites:
                self._agree_with_central(conn, site)
            now = self._now()
            t = self._t
            for table in ("days_off", "shift_patterns", "holidays", "schedule_sites"):
                conn.execute(sa.delete(t[table]))
            if wanted.sites:
                conn.execute(
                    sa.insert(t["schedule_sites"]),
                    [
                        {"name": s.name, "timezone": s.timezone, "created_utc": now,
                         "updated_utc": now}
                        for s in wanted.sites
                    ],
                )  # fmt: skip
            holidays = [
                {"site": s.name, "day": h.day.isoformat(), "name": h.name}
                for s in wanted.sites
                for h in s.holidays
            ]
            if holidays:
                conn.execute(sa.insert(t["holidays"]), holidays)
            for stored in wanted.shifts:  # one by one: ids in the book's order
                conn.execute(
                    sa.insert(t["shift_patterns"]).values(
                        **_shift_row(stored.shift, stored.note, now)
                    )
                )
            for off in wanted.days_off:
                conn.execute(sa.insert(t["days_off"]).values(**_day_off_row(off.day_off, now)))
            result = self._load(conn)
            result.book()
            action = "schedules_replaced" if not current.empty else "schedules_imported"
            detail = result.counts() + (f" from {_one_line(source)}" if source else "")
            self._audit(conn, action, "schedules", _clip(detail, 1000), now)
        return ImportOutcome(result, current)

    # ----------------------------------------------------------------- internals
    def _load(self, conn: sa.Connection) -> StoredSchedules:
        t = self._t
        sites, holidays = t["schedule_sites"], t["holidays"]
        shifts, days_off = t["shift_patterns"], t["days_off"]
        by_site: dict[str, list[Holiday]] = {}
        for row in conn.execute(
            sa.select(holidays.c.site, holidays.c.day, holidays.c.name).order_by(
                holidays.c.site, holidays.c.day
            )
        ):
            by_site.setdefault(row.site, []).append(
                Holiday(_read_day(row.day, f"holiday of site {row.site!r}"), row.name)
            )
        stored_sites = tuple(
            sorted(  # by code point, as in Python, whatever the database's collation
                (
                    StoredSite(row.name, row.timezone, tuple(by_site.get(row.name, ())))
                    for row in conn.execute(sa.select(sites.c.name, sites.c.timezone))
                ),
                key=lambda site: site.name,
            )
        )
        stored_shifts = tuple(
            _read_shift(row) for row in conn.execute(sa.select(shifts).order_by(shifts.c.id))
        )
        stored_days_off = tuple(
            StoredDayOff(
                int(row.id),
                DayOff(
                    row.person_id,
                    _read_day(row.first_day, f"day off #{row.id}"),
                    _read_day(row.last_day, f"day off #{row.id}"),
                    row.note,
                ),
            )
            for row in conn.execute(sa.select(days_off).order_by(days_off.c.id))
        )
        return StoredSchedules(stored_sites, stored_shifts, stored_days_off)

    def _verify(self, conn: sa.Connection, *, new_shift: int | None = None) -> None:
        """Build the book from the rows as written (before the commit)."""
        self._load(conn).book(new_shift=new_shift)

    def _require_site(self, current: StoredSchedules, name: str) -> StoredSite:
        site = _find_site(current, name)
        if site is None:
            known = ", ".join(s.name for s in current.sites) or "none"
            raise ScheduleError(f"no site {name!r} in {self._where} (sites: {known})")
        return site

    @property
    def _no_central_site(self) -> str:
        if self._kind != "central":
            return ""
        return " (no central site of that name to take it from)"

    def _central_zone(self, conn: sa.Connection, name: str) -> str | None:
        """The zone of the central site called ``name`` (central database only)."""
        if self._kind != "central":
            return None
        sites = self._central_sites
        zone: str | None = conn.execute(
            sa.select(sites.c.timezone).where(sites.c.name == name)
        ).scalar_one_or_none()
        return zone

    def _agree_with_central(self, conn: sa.Connection, site: StoredSite) -> None:
        zone = self._central_zone(conn, site.name)
        if zone is not None and zone != site.timezone:
            raise ScheduleError(
                f"site {site.name!r}: the central site of that name (where its kiosks "
                f"stand) is in {zone}, not {site.timezone}; give the same zone to both"
            )

    def _audit(self, conn: sa.Connection, action: str, subject: str, detail: str, now: str) -> None:
        subject = _clip(subject)
        audit = self._audit_table
        if self._kind == "central":
            values = {"kind": "schedule", "subject": subject}
        else:
            values = {"person_id": subject}
        conn.execute(
            sa.insert(audit).values(
                at_utc=now, actor=self._actor, action=action, detail=detail, **values
            )
        )

    def _now(self) -> str:
        return iso_utc(as_utc(self._clock(), "the clock's time"))

    def _fail(self, doing: str, err: sa.exc.SQLAlchemyError) -> StoreError:
        message = f"{self._where}: {doing} failed: {explain(err)}"
        return CentralStoreError(message) if self._kind == "central" else StoreError(message)

    @contextmanager
    def _read(self, doing: str) -> Iterator[sa.Connection]:
        """One read transaction: every statement sees the same data."""
        try:
            with self._engine.connect() as conn:
                options: dict[str, Any] = {"clockface_read": True}
                if conn.dialect.name == "postgresql":
                    options["isolation_level"] = "REPEATABLE READ"
                conn.execution_options(**options)
                with conn.begin():
                    yield conn
        except sa.exc.SQLAlchemyError as err:
            raise self._fail(doing, err) from err

    @contextmanager
    def _write(self, doing: str, *, commit: bool = True) -> Iterator[sa.Connection]:
        """One write transaction, committed at the end (``commit``), rolled back on any
        error; schedule writers one at a time."""
        try:
            with self._engine.connect() as conn:
                transaction = conn.begin()
                try:
                    if conn.dialect.name == "postgresql":
                        conn.execute(
                            sa.text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": SCHEDULE_LOCK_KEY},
                        )
                    yield conn
                except BaseException:
                    transaction.rollback()
                    raise
                if commit:
                    transaction.commit()
                else:
                    transaction.rollback()
        except sa.exc.SQLAlchemyError as err:
            raise self._fail(doing, err) from err


def _kiosk_engine(where: Path, busy_timeout_s: float) -> sa.Engine:
    """An engine on an existing kiosk database (``mode=rw``: never creates the file)."""
    uri = f"{where.resolve().as_uri()}?mode=rw"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(
            uri, uri=True, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )

    return sqlite_engine(
        sa.URL.create("sqlite+pysqlite", database=str(where)),
        where=str(where),
        busy_timeout_s=busy_timeout_s,
        error=StoreError,
        creator=connect,
    )


# --------------------------------------------------------------------- rows
def _shift_row(shift: Shift, note: str, now: str) -> dict[str, Any]:
    return {
        "person_id": shift.person_id,
        "team": shift.team,
        "site": shift.site,
        "weekdays": ",".join(WEEKDAYS[d] for d in sorted(shift.weekdays)),
        "start_time": _hhmm(shift.start),
        "end_time": _hhmm(shift.end),
        "grace_late": shift.grace_late,
        "grace_early": shift.grace_early,
        "window_before": shift.window_before,
        "window_after": shift.window_after,
        "valid_from": None if shift.valid_from is None else shift.valid_from.isoformat(),
        "valid_until": None if shift.valid_until is None else shift.valid_until.isoformat(),
        "note": note,
        "created_utc": now,
    }


def _read_shift(row: Any) -> StoredShift:
    where = f"shift #{row.id}"
    try:
        weekdays = frozenset(WEEKDAYS.index(d) for d in row.weekdays.split(","))
    except ValueError:
        raise ScheduleError(f"{where}: weekdays {row.weekdays!r} are not mon,tue,...") from None
    shift = Shift(
        site=row.site,
        weekdays=weekdays,
        start=_read_time(row.start_time, where),
        end=_read_time(row.end_time, where),
        person_id=row.person_id,
        team=row.team,
        grace_late=int(row.grace_late),
        grace_early=int(row.grace_early),
        window_before=int(row.window_before),
        window_after=int(row.window_after),
        valid_from=None if row.valid_from is None else _read_day(row.valid_from, where),
        valid_until=None if row.valid_until is None else _read_day(row.valid_until, where),
        origin=where,
    )
    return StoredShift(int(row.id), dataclasses.replace(shift, origin=""), row.note)


def _day_off_row(off: DayOff, now: str) -> dict[str, Any]:
    return {
        "person_id": off.person_id,
        "first_day": off.first.isoformat(),
        "last_day": off.last.isoformat(),
        "note": off.note,
        "created_utc": now,
    }


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _read_day(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ScheduleError(f"{where}: {text!r} is not a date YYYY-MM-DD") from None


def _read_time(text: str, where: str) -> time:
    if isinstance(text, str) and re.fullmatch(r"\d\d:\d\d", text):
        hours, minutes = int(text[:2]), int(text[3:])
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise ScheduleError(f"{where}: {text!r} is not a time HH:MM")


def _hhmm(moment: time) -> str:
    return f"{moment.hour:02}:{moment.minute:02}"


# --------------------------------------------------------------------- values
def _check(schedules: StoredSchedules, *, new_shift: int | None = None) -> None:
    """The schedules as they would be after a change: refused as the file parser would."""
    schedules.book(new_shift=new_shift)


def _find_site(current: StoredSchedules, name: str) -> StoredSite | None:
    return next((s for s in current.sites if s.name == name), None)


def _label(value: object, what: str, longest: int = schedule_tables.LABEL) -> str:
    """An id, team or site name: one line, no spaces around, not too long."""
    if not isinstance(value, str) or not value.strip():
        raise ScheduleError(f"{what} must be a non-empty text, not {value!r}")
    if value != value.strip():
        raise ScheduleError(f"{what} must not start or end with spaces: {value!r}")
    return _text(value, what, longest)


def _text(value: object, what: str, longest: int = schedule_tables.LABEL) -> str:
    """A name or note: one line, at most ``longest`` characters; spaces around dropped."""
    if not isinstance(value, str):
        raise ScheduleError(f"{what} must be a text, not {value!r}")
    value = value.strip()
    if any(c < " " or c == "\x7f" for c in value):
        raise ScheduleError(f"{what} must be one line of text, without control characters")
    if len(value) > longest:
        raise ScheduleError(f"{what} is longer than {longest} characters")
    return value


def _check_site_name(name: str) -> None:
    _label(name, "a site name", schedule_tables.SITE_NAME)


def _check_zone(site: str, timezone: object) -> str:
    if not isinstance(timezone, str) or len(timezone) > _TIMEZONE_TEXT:
        raise ScheduleError(f"site {site!r}: unknown time zone {timezone!r}")
    return Site(site, timezone).timezone


def _check_day(day: object, what: str) -> date:
    if not isinstance(day, date) or isinstance(day, datetime):
        raise ScheduleError(f"{what} must be a date, not {day!r}")
    try:
        return check_day(day)
    except ValueError as err:
        raise ScheduleError(f"{what}: {err}") from None


def _check_shift(shift: Shift) -> None:
    where = shift.origin or NEW_SHIFT
    if shift.person_id is not None:
        _label(shift.person_id, f"{where}: a person id")
    if shift.team is not None:
        _label(shift.team, f"{where}: a team")
    _label(shift.site, f"{where}: a site name", schedule_tables.SITE_NAME)
    for day, what in ((shift.valid_from, "from"), (shift.valid_until, "until")):
        if day is not None:
            _check_day(day, f"{where}: {what}")


def _check_day_off(off: DayOff) -> DayOff:
    """``off`` with its note's spaces around dropped (as a schedule file reads it)."""
    _label(off.person_id, "a day off's person id")
    _check_day(off.first, "a day off's first day")
    _check_day(off.last, "a day off's last day")
    return dataclasses.replace(off, note=_text(off.note, "a day off's note"))


def _who(shift: Shift) -> str:
    return f"person:{shift.person_id}" if shift.person_id is not None else f"team:{shift.team}"


def _describe(shift: Shift) -> str:
    """``mon-fri 09:00-17:00 at berlin``."""
    return f"{days_text(shift.weekdays)} {shift.text} at {shift.site}"


def _span(off: DayOff) -> str:
    return f"{off.first}" if off.first == off.last else f"{off.first} to {off.last}"


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _one_line(text: str) -> str:
    """``text`` fit for a one-line comment or message: control characters as spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _clip(text: str, longest: int = schedule_tables.LABEL) -> str:
    return text if len(text) <= longest else text[: longest - 3] + "..."


def days_text(weekdays: Iterable[int]) -> str:
    """Weekday numbers as ``mon-fri``, ``sat,sun`` or ``mon,wed-fri``: what a schedule
    file's ``days`` and ``--days`` read."""
    days = sorted(set(weekdays))
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{WEEKDAYS[run[0]]}-{WEEKDAYS[run[-1]]}")
        else:
            parts.extend(WEEKDAYS[d] for d in run)
    return ",".join(parts)


# --------------------------------------------------------------------- TOML
def to_toml(schedules: StoredSchedules, *, source: str = "") -> str:
    """A schedule file (:mod:`reports.schedule_files`) holding ``schedules``:
    ``parse_toml`` reads it back to the same sites, shifts and days off. Holiday names
    and shift notes are comments; every value is written out, defaults included."""
    lines = [
        "# clockface work schedules" + (f", exported from {_one_line(source)}" if source else "")
    ]
    lines += [
        "# Check it with `clockface schedule check FILE`; store it with",
        "# `clockface schedule import FILE --replace`.",
        "",
    ]
    for site in schedules.sites:
        lines.append(f"[sites.{_key(site.name)}]")
        lines.append(f"timezone = {_string(site.timezone)}")
        if site.holidays:
            lines.append("holidays = [")
            for holiday in site.holidays:
                comment = f"  # {_one_line(holiday.name)}" if _one_line(holiday.name) else ""
                lines.append(f"    {holiday.day.isoformat()},{comment}")
            lines.append("]")
        else:
            lines.append("holidays = []")
        lines.append("")
    for stored in schedules.shifts:
        shift = stored.shift
        note = _one_line(stored.note)
        lines.append(f"# shift #{stored.id}" + (f": {note}" if note else ""))
        lines.append("[[shifts]]")
        if shift.person_id is not None:
            lines.append(f"person = {_string(shift.person_id)}")
        else:
            lines.append(f"team = {_string(shift.team or '')}")
        lines += [
            f"site = {_string(shift.site)}",
            f'days = "{days_text(shift.weekdays)}"',
            f'start = "{_hhmm(shift.start)}"',
            f'end = "{_hhmm(shift.end)}"',
            f"grace_late = {shift.grace_late}",
            f"grace_early = {shift.grace_early}",
            f"window_before = {shift.window_before}",
            f"window_after = {shift.window_after}",
        ]
        if shift.valid_from is not None:
            lines.append(f"from = {shift.valid_from.isoformat()}")
        if shift.valid_until is not None:
            lines.append(f"until = {shift.valid_until.isoformat()}")
        lines.append("")
    for stored_off in schedules.days_off:
        off = stored_off.day_off
        lines += [
            f"# day off #{stored_off.id}",
            "[[days_off]]",
            f"person = {_string(off.person_id)}",
            f"from = {off.first.isoformat()}",
            f"until = {off.last.isoformat()}",
        ]
        if off.note:
            lines.append(f"note = {_string(off.note)}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _string(text: str) -> str:
    """A TOML basic string."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)
