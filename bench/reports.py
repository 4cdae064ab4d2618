"""Supervisors' reports over a year of events: clockface against a naive baseline.

    uv run python -m bench.reports              # 1,000 people, one year, on all three databases
    uv run python -m bench.reports --people 20 --days 31 --rounds 1   # a quick look
    uv run python -m bench.reports --databases central-postgresql

A seeded generator makes ``--people`` people in teams with shift patterns at two sites
(Europe/Berlin and America/Chicago, with holidays and both clock changes): day shifts,
early shifts, a late shift, night shifts that cross midnight, a weekend team, a few
people with patterns of their own, some with leave, a few with no schedule at all.
Each scheduled shift gets an arrival and a departure, with the mess real kiosks see:
people a little early or late, some very late, some leaving early, breaks (an out and
an in), absences, forgotten punch-outs, double punches, stray punches on rest days and
a few events stamped while the kiosk clock was not synchronised. About 500 events per
person per year.

The same roster and events go into each database (``--databases``):

- ``sqlite``: a real kiosk database (``KioskStore.open`` makes it and migrates it,
  ``enroll_many`` adds the roster); the events are inserted in seq order in one
  transaction, so the table's append-only triggers check every row, and the rows are
  exactly those ``KioskStore.events()`` reads.
- ``central-sqlite`` and ``central-postgresql``: the central service's database
  (``CentralStore.open`` makes and migrates it; its sites, one kiosk per site and the
  roster through the store's own methods). The events are **bulk-inserted directly**
  into its ``events`` table (one log per kiosk, seq in time order, and the matching
  ``kiosk_logs`` rows), not posted through ``CentralStore.ingest``: the rows are those
  ingest would store (``CentralStore.events()`` reads them back equal; the smoke test
  checks it), and half a million events through ingest would take minutes. PostgreSQL
  is a throwaway cluster the bench starts itself (:func:`tests.helpers.postgres.cluster`), then
  ``VACUUM ANALYZE``'d, as autovacuum would have done on a real server.

Then, for each database, in one process, interleaved, best of ``--rounds``:

- **clockface**: the source's range read, through the store opened once as the web page
  holds its own (:func:`reports.sources.read_kiosk_database`
  or :func:`reports.central_source.read_central_database`: one ``utc`` range query of
  aggregated columns), :func:`reports.compute.compute_attendance`, and
  :func:`reports.tables.build_report` (the report and its anomalies table): the late
  report over the whole range, and the summary over one month (``--month``).
- **baseline**: the naive way: for each person and each day, the day's plan, then one
  SQL query for that person's events in that shift's punch window, against the same
  database, then the same per-shift logic (:func:`reports.compute.shift_day`: pairing,
  late / early / worked minutes) and the same row functions
  (:func:`reports.tables.late_row`, :func:`reports.tables.summary_row`). Days without a
  shift need no query, and the baseline makes no anomalies table, both of which favour
  it. Neither schema has an index that serves "one person, a time range" (the kiosk's
  ``events_person`` is ``(person_id, seq)``, so each query would read all of that
  person's events; the central one has only ``events_utc (utc, event_id)``, so each
  query would read a day of everyone's events): by default the bench adds an index on
  ``(person_id, utc)`` to each database so that the baseline is an honest index seek
  per query (on PostgreSQL a prepared statement, over a kept connection).
  ``--schema-indexes-only`` measures it on the schemas as they are.

Both must give the same rows (checked before any timing). The targets (issue 5):
each report under 2 s, and at least 10x the baseline.

A source is a small class (:class:`Source`) that can fill a database with the generated
roster and events, read a range for clockface, and answer the baseline's per-shift
query, registered in ``SOURCES``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sqlite3
import sys
import tempfile
import time as clock
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from reports.compute import PersonSummary, ShiftDay, compute_attendance, shift_day
from reports.model import AttendanceEvent, PersonInfo, from_store_person
from reports.schedules import DayOff, Occurrence, ScheduleBook, Shift, Site
from reports.sources import ReportInput, read_kiosk_database
from reports.tables import Row, Totals, build_report, late_row, summary_row

TARGET_SECONDS = 2.0
TARGET_RATIO = 10.0
KIOSK_ID = "bench-kiosk"
SOFTWARE = "bench"

BERLIN_HOLIDAYS = ("2024-01-01", "2024-03-29", "2024-04-01", "2024-05-01", "2024-05-09",
                   "2024-05-20", "2024-10-03", "2024-12-25", "2024-12-26")  # fmt: skip
CHICAGO_HOLIDAYS = ("2024-01-01", "2024-05-27", "2024-07-04", "2024-09-02", "2024-11-28",
                    "2024-12-25")  # fmt: skip
SITES = (
    Site("berlin", "Europe/Berlin", frozenset(map(date.fromisoformat, BERLIN_HOLIDAYS))),
    Site("chicago", "America/Chicago", frozenset(map(date.fromisoformat, CHICAGO_HOLIDAYS))),
)


@dataclass(frozen=True)
class Team:
    name: str
    site: str
    days: frozenset[int]
    start: time
    end: time
    grace_late: int
    grace_early: int
    weight: int
    """How many people of every 100 are in this team."""


MON_FRI = frozenset(range(5))
TEAMS = (
    Team("berlin-day", "berlin", MON_FRI, time(8), time(16, 30), 5, 5, 24),
    Team("berlin-office", "berlin", MON_FRI, time(9), time(17, 30), 10, 5, 14),
    Team("berlin-early", "berlin", MON_FRI, time(6), time(14), 5, 5, 10),
    Team("berlin-night", "berlin", frozenset({6, 0, 1, 2, 3}), time(22), time(6), 5, 5, 8),
    Team("berlin-weekend", "berlin", frozenset({5, 6}), time(10), time(18), 5, 5, 4),
    Team("chicago-day", "chicago", MON_FRI, time(8, 30), time(17), 5, 5, 20),
    Team("chicago-late", "chicago", frozenset({1, 2, 3, 4, 5}), time(12), time(20, 30), 5, 5, 8),
    Team("chicago-night", "chicago", MON_FRI, time(22), time(6), 5, 5, 8),
    Team("", "", frozenset(), time(), time(), 0, 0, 4),  # no team, no schedule
)


@dataclass(frozen=True)
class Scenario:
    people: tuple[PersonInfo, ...]
    book: ScheduleBook
    events: tuple[AttendanceEvent, ...]
    """In time order; seq is the position plus one."""


def make_scenario(people: int, first: date, days: int, seed: int) -> Scenario:
    """A seeded roster, schedule book and event log; events cover ``first`` + ``days``."""
    rng = random.Random(seed)
    weights = [t.weight for t in TEAMS]
    roster: list[PersonInfo] = []
    shifts: list[Shift] = [
        Shift(t.site, t.days, t.start, t.end, team=t.name, grace_late=t.grace_late,
              grace_early=t.grace_early, origin=f"team {t.name}")
        for t in TEAMS if t.name
    ]  # fmt: skip
    days_off: list[DayOff] = []
    for i in range(people):
        pid = f"p{i:05}"
        team = rng.choices(TEAMS, weights)[0]
        roster.append(PersonInfo(pid, f"Person {i}", team.name or None))
        if team.name and team.start < team.end and rng.random() < 0.03:
            # A day worker with a pattern of their own from some date on (not a night
            # worker: the last night's window would overlap the first morning's).
            start = first + timedelta(days=rng.randrange(max(1, days)))
            shifts.append(
                Shift(team.site, frozenset({0, 1, 2, 3}), time(7), time(15, 30), person_id=pid,
                      grace_late=3, grace_early=3, valid_from=start, origin=f"person {pid}")
            )  # fmt: skip
        if rng.random() < 0.3:  # a week or two of leave
            start = first + timedelta(days=rng.randrange(max(1, days)))
            days_off.append(DayOff(pid, start, start + timedelta(days=rng.choice((6, 13)))))
    book = ScheduleBook.build(SITES, shifts, days_off)
    zones = {s.name: s.timezone for s in SITES}

    events: list[tuple[datetime, str, str, str, bool | None]] = []

    def add(at: datetime, pid: str, direction: str, tz: str) -> None:
        synced: bool | None = True
        roll = rng.random()
        if roll < 0.002:
            synced = False
        elif roll < 0.004:
            synced = None
        events.append((at, pid, direction, tz, synced))

    minute = timedelta(minutes=1)
    for person in roster:
        for n in range(-1, days + 1):  # a shift the day before can end in the range
            day = first + timedelta(days=n)
            plan = book.plan(person, day)
            occ = plan.occurrence
            if occ is None:
                if plan.status == "rest" and plan.shift is not None and rng.random() < 0.004:
                    at = datetime.combine(day, time(3), UTC) + rng.randrange(600) * minute
                    add(at, person.person_id, "in", zones[plan.shift.site])  # a stray punch
                continue
            if rng.random() < 0.03:  # absent
                continue
            _shift_events(rng, occ, person.person_id, add)
    events.sort(key=lambda e: e[0])
    records = tuple(
        AttendanceEvent(str(uuid.UUID(int=rng.getrandbits(128), version=4)), pid,
                        "in" if d == "in" else "out", at, tz, s, KIOSK_ID)
        for at, pid, d, tz, s in events
    )  # fmt: skip
    return Scenario(tuple(roster), book, records)


def _shift_events(
    rng: random.Random,
    occ: Occurrence,
    pid: str,
    add: Callable[[datetime, str, str, str], None],
) -> None:
    tz = occ.site.timezone
    second = timedelta(seconds=1)
    shift = occ.shift
    roll = rng.random()
    if roll < 0.08:  # late, beyond the grace
        arrive = occ.start + (shift.grace_late * 60 + rng.randrange(1, 50 * 60)) * second
    else:
        arrive = occ.start - rng.randrange(0, 25 * 60) * second
    add(arrive, pid, "in", tz)
    if rng.random() < 0.005:  # a double punch
        add(arrive + rng.randrange(5, 90) * second, pid, "in", tz)
    if rng.random() < 0.12:  # a break
        middle = arrive + (occ.end - arrive) / 2
        add(middle, pid, "out", tz)
        add(middle + rng.randrange(20 * 60, 45 * 60) * second, pid, "in", tz)
    if rng.random() < 0.006:  # forgot to punch out
        return
    if rng.random() < 0.05:  # early, beyond the grace
        leave = occ.end - (shift.grace_early * 60 + rng.randrange(1, 90 * 60)) * second
    else:
        leave = occ.end + rng.randrange(0, 30 * 60) * second
    add(leave, pid, "out", tz)


# --------------------------------------------------------------------- sources
class Source(Protocol):
    """A database the bench fills and both sides read."""

    name: str

    def fill(self, scenario: Scenario) -> None:
        """Store the scenario's roster and events, the way its real writers do."""

    def read(self, first: date, last: date) -> ReportInput:
        """clockface's read: the roster, and the events a report of first..last needs."""

    def people(self) -> tuple[PersonInfo, ...]:
        """The roster."""

    def events_between(self, person_id: str, lo: datetime, hi: datetime) -> list[AttendanceEvent]:
        """The baseline's query: one person's events from ``lo`` to ``hi`` (inclusive)."""

    def describe(self) -> str:
        """A line on how the baseline's query is served."""

    def close(self) -> None: ...


class SqliteSource:
    """A kiosk's SQLite database (kiosk.store.KioskStore's file).

    With ``person_index`` the bench adds an index on events (person_id, utc), which the
    kiosk schema lacks, so that the baseline's query is an index seek: a stronger
    baseline. Without it the query uses the schema's (person_id, seq) index and reads
    all of the person's events each time.
    """

    name = "sqlite"

    def __init__(self, folder: Path, *, person_index: bool) -> None:
        self.path = folder / "kiosk.db"
        self._person_index = person_index
        self._conn: sqlite3.Connection | None = None
        self._store: Any = None  # the KioskStore a report reads through, opened once

    def fill(self, scenario: Scenario) -> None:
        import numpy as np

        from clockface.roster import NewPerson
        from kiosk.store import KioskStore

        fixed = datetime(2024, 1, 1, tzinfo=UTC)
        with KioskStore.open(
            self.path, kiosk_id=KIOSK_ID, actor="bench", clock=lambda: fixed
        ) as store:
            none = np.empty((0, 128), dtype=np.float32)
            store.enroll_many(NewPerson(p.person_id, p.name, p.team, none) for p in scenario.people)
        rows = (
            (e.event_id, seq, KIOSK_ID, e.person_id, e.direction, _iso(e.utc), e.tz, 0.4, 0.2,
             3, SOFTWARE, None if e.clock_synced is None else int(e.clock_synced))
            for seq, e in enumerate(scenario.events, 1)
        )  # fmt: skip
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: the indexes stay in memory
            conn.execute("BEGIN IMMEDIATE")
            # In seq order, in one transaction: the append-only trigger checks every row.
            conn.executemany(
                "INSERT INTO events (event_id, seq, kiosk_id, person_id, direction, utc, tz,"
                " distance, margin, frames, software_version, acked_utc, clock_synced)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                rows,
            )
            if self._person_index:
                conn.execute("CREATE INDEX bench_person_utc ON events (person_id, utc)")
            conn.execute("COMMIT")
        finally:
            conn.close()

    def read(self, first: date, last: date) -> ReportInput:
        from kiosk.store import KioskStore

        if self._store is None:
            self._store = KioskStore.open(self.path, create=False)
        return read_kiosk_database(self._store, first, last)

    def people(self) -> tuple[PersonInfo, ...]:
        from kiosk.store import KioskStore

        with KioskStore.open(self.path) as store:
            return tuple(from_store_person(p) for p in store.people())

    def events_between(self, person_id: str, lo: datetime, hi: datetime) -> list[AttendanceEvent]:
        if self._conn is None:
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        rows = self._conn.execute(
            "SELECT event_id, direction, utc, tz, clock_synced, kiosk_id FROM events"
            " WHERE person_id = ? AND utc >= ? AND utc <= ?",
            (person_id, _iso(lo), _iso(hi)),
        ).fetchall()
        return [
            AttendanceEvent(event_id, person_id, "in" if direction == "in" else "out",
                            datetime.fromisoformat(utc), tz,
                            None if synced is None else bool(synced), kiosk_id)
            for event_id, direction, utc, tz, synced, kiosk_id in rows
        ]  # fmt: skip

    def describe(self) -> str:
        if self._person_index:
            return "baseline query served by an added (person_id, utc) index"
        return "baseline query served by the kiosk schema's (person_id, seq) index"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._store is not None:
            self._store.close()
            self._store = None


class CentralSource:
    """The central service's database: SQLite (a file) or PostgreSQL (a URL).

    Sites, kiosks and the roster through :class:`central.store.CentralStore`; the events
    bulk-inserted (:meth:`_insert_events`). With ``person_index`` an index on events
    (person_id, utc) for the baseline, which the central schema lacks.
    """

    name = "central"

    def __init__(self, *, person_index: bool) -> None:
        self._person_index = person_index
        self.database = ""
        self._store: Any = None  # the CentralStore a report reads through, opened once

    def fill(self, scenario: Scenario) -> None:
        import numpy as np

        from central.store import CentralStore
        from clockface.roster import NewPerson

        fixed = datetime(2024, 1, 1, tzinfo=UTC)
        with CentralStore.open(self.database, actor="bench", clock=lambda: fixed) as store:
            for site in SITES:
                store.add_site(site.name, site.timezone)
                store.create_kiosk(f"{site.name}-door", site.name)
            none = np.empty((0, 128), dtype=np.float32)
            store.enroll_many(NewPerson(p.person_id, p.name, p.team, none) for p in scenario.people)
        self._insert_events(scenario)

    def _rows(
        self, scenario: Scenario, kiosk_ids: dict[str, int]
    ) -> tuple[list[tuple[object, ...]], list[tuple[str, int, int, int]]]:
        """The events table's rows (columns as ``_EVENT_COLUMNS``) and kiosk_logs' rows:
        one log per kiosk (the kiosk of the event's site), seq in time order."""
        by_zone = {s.timezone: kiosk_ids[f"{s.name}-door"] for s in SITES}
        seqs = dict.fromkeys(by_zone.values(), 0)
        received = "2025-01-01T00:00:00.000000Z"
        rows: list[tuple[object, ...]] = []
        for e in scenario.events:
            kiosk = by_zone[e.tz]
            seqs[kiosk] += 1
            rows.append((e.event_id, kiosk, f"bench-log-{kiosk}", seqs[kiosk], e.person_id,
                         e.direction, _iso(e.utc), e.tz, 0.4, 0.2, 3, SOFTWARE, e.clock_synced,
                         received))  # fmt: skip
        logs = [(f"bench-log-{k}", k, n, n) for k, n in seqs.items() if n]
        return rows, logs

    def _insert_events(self, scenario: Scenario) -> None:
        raise NotImplementedError

    def read(self, first: date, last: date) -> ReportInput:
        from central.store import CentralStore
        from reports.central_source import read_central_database

        if self._store is None:  # as the service's web page holds its own, open
            self._store = CentralStore.open(self.database)
        return read_central_database(self._store, first, last)

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def people(self) -> tuple[PersonInfo, ...]:
        from central.store import CentralStore

        with CentralStore.open(self.database) as store:
            return tuple(from_store_person(p) for p in store.people())

    def events_between(self, person_id: str, lo: datetime, hi: datetime) -> list[AttendanceEvent]:
        return [
            AttendanceEvent(str(event_id), person_id, "in" if direction == "in" else "out",
                            datetime.fromisoformat(utc), tz,
                            None if synced is None else bool(synced), kiosk)
            for event_id, direction, utc, tz, synced, kiosk in self._query(
                person_id, _iso(lo), _iso(hi)
            )
        ]  # fmt: skip

    def _query(self, person_id: str, lo: str, hi: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def describe(self) -> str:
        if self._person_index:
            return "baseline query served by an added (person_id, utc) index"
        return "baseline query served by the central schema's events_utc (utc, event_id) index"

    def close(self) -> None: ...


_EVENT_COLUMNS = (
    "event_id, kiosk_id, log_id, seq, person_id, direction, utc, tz, distance, margin,"
    " frames, software_version, clock_synced, received_utc"
)
_BASELINE_QUERY = (
    "SELECT e.event_id, e.direction, e.utc, e.tz, e.clock_synced, k.name FROM events e"
    " JOIN kiosks k ON k.id = e.kiosk_id WHERE e.person_id = ? AND e.utc >= ? AND e.utc <= ?"
)


class CentralSqliteSource(CentralSource):
    """The central database in a SQLite file (the service's default)."""

    name = "central-sqlite"

    def __init__(self, folder: Path, *, person_index: bool) -> None:
        super().__init__(person_index=person_index)
        self.path = folder / "central.db"
        self.database = str(self.path)
        self._conn: sqlite3.Connection | None = None

    def _insert_events(self, scenario: Scenario) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            kiosks = dict(conn.execute("SELECT name, id FROM kiosks"))
            rows, logs = self._rows(scenario, kiosks)
            conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: the indexes stay in memory
            conn.execute("BEGIN IMMEDIATE")
            # SQLAlchemy's Uuid keeps 32 hex digits in SQLite, so do we.
            conn.executemany(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                ((str(r[0]).replace("-", ""), *r[1:]) for r in rows),
            )
            conn.executemany(
                "INSERT INTO kiosk_logs (log_id, kiosk_id, contiguous_seq, max_seq)"
                " VALUES (?, ?, ?, ?)",
                logs,
            )
            if self._person_index:
                conn.execute("CREATE INDEX bench_person_utc ON events (person_id, utc)")
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
        finally:
            conn.close()

    def _query(self, person_id: str, lo: str, hi: str) -> list[tuple[Any, ...]]:
        if self._conn is None:
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        rows = self._conn.execute(_BASELINE_QUERY, (person_id, lo, hi)).fetchall()
        return [(uuid.UUID(r[0]), *r[1:]) for r in rows]

    def close(self) -> None:
        self._close_store()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class CentralPostgresSource(CentralSource):
    """The central database on PostgreSQL: a throwaway cluster started by the bench,
    stopped by :meth:`close`."""

    name = "central-postgresql"

    def __init__(self, folder: Path, *, person_index: bool) -> None:
        super().__init__(person_index=person_index)
        self._folder = folder
        self._stack = contextlib.ExitStack()
        self._conn: Any = None

    def fill(self, scenario: Scenario) -> None:
        from tests.helpers.postgres import cluster

        try:
            started = self._stack.enter_context(cluster(self._folder / "pg"))
        except RuntimeError as err:
            raise SystemExit(f"{self.name}: {err}; or leave it out of --databases") from None
        self.database = started.url("bench")
        super().fill(scenario)

    def _conninfo(self) -> str:
        return self.database.replace("postgresql+psycopg://", "postgresql://", 1)

    def _insert_events(self, scenario: Scenario) -> None:
        import psycopg

        with psycopg.connect(self._conninfo()) as conn:
            kiosks: dict[str, int] = dict(conn.execute("SELECT name, id FROM kiosks").fetchall())
            rows, logs = self._rows(scenario, kiosks)
            with conn.cursor() as cursor:
                with cursor.copy(f"COPY events ({_EVENT_COLUMNS}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.executemany(
                    "INSERT INTO kiosk_logs (log_id, kiosk_id, contiguous_seq, max_seq)"
                    " VALUES (%s, %s, %s, %s)",
                    logs,
                )
                if self._person_index:
                    cursor.execute("CREATE INDEX bench_person_utc ON events (person_id, utc)")
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    def _query(self, person_id: str, lo: str, hi: str) -> list[tuple[Any, ...]]:
        import psycopg

        if self._conn is None:
            # Autocommit; psycopg prepares a statement it has run five times.
            self._conn = psycopg.connect(self._conninfo(), autocommit=True)
        rows: list[tuple[Any, ...]] = self._conn.execute(
            _BASELINE_QUERY.replace("?", "%s"), (person_id, lo, hi)
        ).fetchall()
        return rows

    def close(self) -> None:
        self._close_store()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._stack.close()


SOURCES: dict[str, Callable[[Path, argparse.Namespace], Source]] = {
    "sqlite": lambda folder, args: SqliteSource(folder, person_index=args.person_index),
    "central-sqlite": lambda folder, args: CentralSqliteSource(
        folder, person_index=args.person_index
    ),
    "central-postgresql": lambda folder, args: CentralPostgresSource(
        folder, person_index=args.person_index
    ),
}
NAME_WIDTH = max(map(len, SOURCES))


def _iso(moment: datetime) -> str:
    """As the stores keep times: ``2024-05-01T07:57:03.120000Z``."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# --------------------------------------------------------------------- the two sides
@dataclass(frozen=True)
class Job:
    """One report to time: ``kind`` over ``first``..``last``."""

    label: str
    kind: str
    first: date
    last: date


def fresh(book: ScheduleBook) -> ScheduleBook:
    """The book anew, with nothing worked out yet: as a report loads it from its file."""
    return ScheduleBook.build(book.sites.values(), book.shifts, book.days_off)


def clockface(source: Source, book: ScheduleBook, job: Job) -> list[Row]:
    """The report as ``clockface report`` makes it: range read, compute, tables."""
    book = fresh(book)
    data = source.read(job.first, job.last)
    attendance = compute_attendance(data.events, data.people, book, job.first, job.last)
    return list(build_report(job.kind, attendance).table.rows)


def baseline(source: Source, book: ScheduleBook, job: Job) -> list[Row]:
    """The naive way: for each person and each day, the day's plan, one query for the
    person's events in that shift's window, the per-shift rules, the same rows."""
    book = fresh(book)
    summaries: list[PersonSummary] = []
    for person in sorted(source.people(), key=lambda p: p.person_id):
        days: list[ShiftDay] = []
        unscheduled = 0
        day = job.first
        while day <= job.last:
            plan = book.plan(person, day)
            unscheduled += plan.status == "no_schedule"
            occurrence = plan.occurrence
            if occurrence is not None:
                events = source.events_between(
                    person.person_id, occurrence.window_start, occurrence.window_end
                )
                days.append(shift_day(person, occurrence, events))
            day += timedelta(days=1)
        summaries.append(PersonSummary(person, tuple(days), unscheduled))
    if job.kind == "late":
        late = sorted(
            (d for s in summaries for d in s.days if d.late_minutes is not None and d.arrival),
            key=lambda d: (d.day, d.person.person_id),
        )
        return [
            late_row(d.person, d.occurrence, d.arrival.utc, d.late_minutes)  # type: ignore[union-attr,arg-type]
            for d in late
        ]
    if job.kind == "summary":
        return [summary_row(s.person, Totals.of(s, job.first, job.last)) for s in summaries]
    raise SystemExit(f"the baseline makes late and summary reports, not {job.kind!r}")


# --------------------------------------------------------------------- timing
@dataclass
class Result:
    database: str
    job: Job
    rows: int
    clockface: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.clockface)

    @property
    def ratio(self) -> float:
        return min(self.baseline) / self.best


def _timed(run: Callable[[], list[Row]]) -> tuple[float, list[Row]]:
    start = clock.perf_counter()
    rows = run()
    return clock.perf_counter() - start, rows


def measure(source: Source, book: ScheduleBook, jobs: Sequence[Job], rounds: int) -> list[Result]:
    """Check that both sides agree, then time them, interleaved, ``rounds`` times."""
    results = []
    for job in jobs:
        seconds, fast = _timed(partial(clockface, source, book, job))
        slow_seconds, slow = _timed(partial(baseline, source, book, job))
        if fast != slow:
            first = next(
                (i for i, (a, b) in enumerate(zip(fast, slow, strict=False)) if a != b), -1
            )
            raise SystemExit(
                f"{source.name} {job.label}: clockface and the baseline disagree "
                f"({len(fast)} rows against {len(slow)}; first difference at row {first})"
            )
        print(f"{source.name:<{NAME_WIDTH}} {job.label}: both give the same {len(fast)} rows "
              f"(first runs {seconds:.2f} s and {slow_seconds:.2f} s)", flush=True)  # fmt: skip
        results.append(Result(source.name, job, len(fast)))
    for n in range(rounds):
        for result in results:
            result.clockface.append(_timed(partial(clockface, source, book, result.job))[0])
            result.baseline.append(_timed(partial(baseline, source, book, result.job))[0])
        print(f"{source.name:<{NAME_WIDTH}} round {n + 1} of {rounds} done", flush=True)
    return results


def report(results: Sequence[Result], rounds: int) -> bool:
    """Print the table and the verdicts; True when every target is met."""
    print()
    print(f"best of {rounds}, seconds (clockface: range read + compute + report and anomalies)")
    print(
        f"{'database':<{NAME_WIDTH}} {'report':<34} {'rows':>6} {'clockface':>10} "
        f"{'baseline':>10} "
        f"{'ratio':>8}"
    )
    met = True
    for r in results:
        print(f"{r.database:<{NAME_WIDTH}} {r.job.label:<34} {r.rows:>6} {r.best:>10.3f} "
              f"{min(r.baseline):>10.3f} {r.ratio:>7.1f}x")  # fmt: skip
    print()
    for r in results:
        fast = r.best < TARGET_SECONDS
        ratio = r.ratio >= TARGET_RATIO
        met = met and fast and ratio
        print(
            f"{r.database} {r.job.label}: under {TARGET_SECONDS:.0f} s "
            f"{'met' if fast else 'NOT met'} ({r.best:.2f} s); at least {TARGET_RATIO:.0f}x "
            f"the baseline {'met' if ratio else 'NOT met'} ({r.ratio:.1f}x)"
        )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--first", type=date.fromisoformat, default=date(2024, 1, 1),
                        help="first date of the year of events (default 2024-01-01)")  # fmt: skip
    parser.add_argument("--days", type=int, default=366, help="days of events (default 366)")
    parser.add_argument(
        "--month", default="2024-03", help="the summary's month, YYYY-MM (default 2024-03)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--databases", default=",".join(SOURCES), help=f"comma-separated, of: {', '.join(SOURCES)}"
    )
    parser.add_argument(
        "--schema-indexes-only", "--kiosk-indexes-only", dest="person_index",
        action="store_false",
        help="give the baseline no (person_id, utc) index: the schemas as they are",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.people < 1 or args.days < 1 or args.rounds < 1:
        parser.error("--people, --days and --rounds must be at least 1")
    try:
        month = date.fromisoformat(args.month + "-01")
    except ValueError:
        parser.error(f"--month {args.month!r} is not YYYY-MM")
    month_end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    year_last = args.first + timedelta(days=args.days - 1)
    if not (args.first <= month and month_end <= year_last):
        parser.error(f"--month {args.month} is not within the events' dates")
    wanted = [d.strip() for d in args.databases.split(",") if d.strip()]
    for name in wanted:
        if name not in SOURCES:
            parser.error(f"unknown database {name!r}: choose from {', '.join(SOURCES)}")
    jobs = [
        Job(f"late, {args.first} to {year_last}", "late", args.first, year_last),
        Job(f"summary, {month:%Y-%m}", "summary", month, month_end),
    ]
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min) at the start")
    started = clock.perf_counter()
    scenario = make_scenario(args.people, args.first, args.days, args.seed)
    print(f"generated {len(scenario.people)} people, {len(scenario.book.shifts)} shift "
          f"patterns, {len(scenario.events)} events in {clock.perf_counter() - started:.1f} s",
          flush=True)  # fmt: skip
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="clockface-bench-") as tmp:
        for name in wanted:
            folder = Path(tmp) / name
            folder.mkdir()
            source = SOURCES[name](folder, args)
            try:
                started = clock.perf_counter()
                source.fill(scenario)
                print(f"{name:<{NAME_WIDTH}} filled in {clock.perf_counter() - started:.1f} s;"
                      f" {source.describe()}", flush=True)  # fmt: skip
                results += measure(source, scenario.book, jobs, args.rounds)
            finally:
                source.close()
    met = report(results, args.rounds)
    print(f"targets {'met' if met else 'NOT all met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
