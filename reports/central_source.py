"""Report input from the central database: every kiosk's events, on SQLite or PostgreSQL.

:func:`read_central_database` gives what :func:`reports.sources.read_kiosk_database`
gives for one kiosk: everyone in the roster (``people``, active or not, with their team)
and the events a report of the asked range can need, as
:class:`~reports.columns.EventColumns`. It takes an open central store
(:class:`OpenCentral`: the web page's own, or the one ``clockface report --central-db``
opened, which checked that this is a central database of a schema this clockface knows
and brought an older one up to date; :func:`check_central_file` first refuses a SQLite
path that holds nothing, so a typo never creates one), and reads on the store's pooled
connections.

Reading a year of events (half a million) quickly, as the kiosk source does:

- **One aggregated string per column**, on a connection of its own (a read-only
  sqlite3 connection; a psycopg 3 connection in a read-only transaction): stored times
  one after another, one digit of direction and clock flag per event, person ids
  joined by a separator; numpy and ``str.split`` make the columns
  (:func:`reports.sources.parse_aggregates`). The columns line up because the
  aggregates of one query advance together, row by row, over the same rows. On
  PostgreSQL the transaction runs without parallel workers, so the rows go through one
  aggregation in one pass (``string_agg`` has no parallel combine step before version
  16, so a parallel plan would not help anyway). An ``ORDER BY`` inside each aggregate
  would promise the same order in words, but PostgreSQL 15 then sorts the rows once per
  aggregate: 3.8 s for a year, against 0.4 s without (measured on 512,294 events).
- **No key column.** The kiosk source reads ``seq`` to find an event's details later;
  here the only key is the event's UUID, and reading it for every event costs about
  as much again as the rest (0.3 s on PostgreSQL for a year). So the details of an
  event (event id as text, time zone, the kiosk's *name*) are looked up when a report
  asks for them, by what the columns already hold: its stored time, through the
  ``events_utc`` index, then person, direction and clock flag. Events are never
  deleted or changed, so each event is found again; two events equal in all of these
  (the same person, direction and instant to the microsecond) are told apart by event
  id, in the same order every time, and if such a twin arrived after the read, the
  details refuse (run the report again) rather than guess.
- Time zones are checked (an unknown one is a ReportError naming the database) when
  the details are read, as the kiosk source does.

``clockface report verify`` reads the events again as of a report's chain heads
(:class:`~reports.sources.AsOf`): one more condition in the same queries, ``seq <= CASE
log_id WHEN ... END`` (a log not named: none), with ``received_utc < ?`` as an
alternative when asked. Only verify asks; a normal report's queries are as above.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from clockface.errors import CentralStoreError, ReportError
from clockface.values import iso_utc
from reports.columns import Detail, EventColumns, IntArray, instant
from reports.model import StoredPerson, from_store_person, zone
from reports.sources import (
    SEPARATOR,
    AsOf,
    EventArrays,
    EventCounts,
    ReportInput,
    arrays_from_rows,
    parse_aggregates,
    range_bounds,
)

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy as sa


class OpenCentral(Protocol):
    """An open central store (:class:`central.store.CentralStore` is one): a report
    reads on its pooled connections, never opening the database again from a URL."""

    @property
    def where(self) -> str: ...

    @property
    def engine(self) -> sa.Engine: ...

    @property
    def sqlite_path(self) -> Path | None: ...

    @property
    def actor(self) -> str: ...

    def now(self) -> datetime: ...

    def people(self) -> Sequence[StoredPerson]: ...


_DETAIL_BATCH = 500  # stored times per detail query on SQLite (999 parameters at the least)

DetailRow = tuple[str, str, bool | int, int, object, str, str | None]
"""(utc, person_id, inward, synced as 1 / 0 / -1, event_id, tz, kiosk name)."""
Key = tuple[str, str, bool, int]
"""What the columns hold of an event: (stored time, person id, inward, synced)."""


def read_central_database(
    database: OpenCentral,
    first: date | None = None,
    last: date | None = None,
    *,
    as_of: AsOf | None = None,
) -> ReportInput:
    """Everyone in the central database's roster (active or not) and every kiosk's events.

    ``database``: an open central store (:class:`OpenCentral`). With ``first`` and
    ``last`` (shift dates), only the events a report of that range can need
    (:func:`~reports.compute.event_bounds`); without, every event. With ``as_of``
    (``clockface report verify``), only the events it covers. Details (event id, time
    zone, kiosk name) are read later, while the store is open, for the events a report
    shows. Raises ReportError for bad dates, CentralStoreError for a database that
    cannot be read.
    """
    bounds = range_bounds(first, last)
    with _opened(database, as_of) as (store, reader):
        people = tuple(from_store_person(p) for p in store.people())
        events = _read_events(reader, bounds)
    return ReportInput(people, events)


HeadRow = tuple[str, int, str]
"""A kiosk log's chain head as the service checked it: (log id, chain seq, chain)."""
LOG_COLUMNS = (
    "event_id, log_id, seq, recorded_kiosk_id, person_id, direction, utc, tz, distance,"
    " margin, frames, software_version, clock_synced, chain"
)
"""The columns of :func:`read_central_log`'s rows: the chained fields, then the chain."""


def read_central_heads(database: OpenCentral) -> list[HeadRow]:
    """The chain head of every kiosk log whose chain the service has checked
    (``kiosk_logs.chain_seq`` and ``chain_head``), by log id."""
    with _opened(database) as (_, reader):
        return [(str(a), int(b), str(c)) for a, b, c in reader.heads()]


def count_central_events(
    database: OpenCentral, first: date, last: date, as_of: AsOf
) -> EventCounts:
    """The events in a report's range now, how many ``as_of`` covers (its ``through``
    only), and how many of the others the service received before
    ``as_of.received_before`` (None when it gives no time)."""
    bounds = range_bounds(first, last)
    assert bounds is not None
    with _opened(database) as (_, reader):
        total, covered, before = reader.counts(bounds, as_of)
    return EventCounts(total, covered, before if as_of.received_before is not None else None)


def read_central_log(database: OpenCentral, log_id: str, through: int) -> list[tuple[Any, ...]]:
    """The events of one kiosk log up to seq ``through``, in seq order (``LOG_COLUMNS``)."""
    with _opened(database) as (_, reader):
        return reader.log(log_id, through)


@contextmanager
def _opened(store: OpenCentral, as_of: AsOf | None = None) -> Iterator[tuple[OpenCentral, _Reader]]:
    """A reader on the store's own pooled connections."""
    reader: _Reader
    if store.sqlite_path is not None:
        reader = _SqliteReader(store.where, as_of, store.engine)
    else:
        reader = _PostgresReader(store.where, as_of, store.engine)
    yield store, reader


def check_central_file(path: Path) -> None:
    """Refuse, with ReportError, a SQLite path that holds no central database yet (a
    report never creates one by a typo)."""
    if path.is_file() and path.stat().st_size > 0:
        return
    if path.is_dir():
        what = "a folder"
    elif path.is_file():
        what = "an empty file, not a clockface central database"
    else:
        what = "no such file"
    raise ReportError(
        f"central database {str(path)!r}: {what}; give the central database with "
        "--central-db (a file path or a postgresql:// URL)"
    )


def _read_events(reader: _Reader, bounds: tuple[str, str] | None) -> EventColumns:
    count, utc, flags, people = reader.aggregates(bounds)
    if not count:
        arrays = EventArrays.empty()
    else:
        parsed = parse_aggregates(count, utc or "", flags or "", people or "")
        # None: a person id holds the separator; read those events row by row.
        arrays = parsed if parsed is not None else arrays_from_rows(reader.rows(bounds))
    details = _Details(reader, arrays)
    return arrays.columns(details)


# --------------------------------------------------------------------- details
class _Details:
    """Event id, time zone and kiosk name of events, looked up when first asked for."""

    def __init__(self, reader: _Reader, arrays: EventArrays) -> None:
        self._reader = reader
        self._arrays = arrays
        self._by_time: IntArray | None = None  # event indices in time order, made on need

    def key(self, i: int) -> Key:
        a = self._arrays
        return (iso_utc(instant(int(a.utc_us[i]))), a.person_id[i], bool(a.inward[i]),
                int(a.synced[i]))  # fmt: skip

    def __call__(self, indices: Sequence[int]) -> list[Detail]:
        keys = [self.key(i) for i in indices]
        found: dict[Key, list[Detail]] = {}
        for utc, pid, inward, synced, event_id, tz, kiosk in self._reader.details(
            sorted({k[0] for k in keys})
        ):
            key = (utc, pid, bool(inward), int(synced))
            found.setdefault(key, []).append((self._event_id(event_id), tz, kiosk))
        result: list[Detail] = []
        for i, key in zip(indices, keys, strict=True):
            stored = found.get(key)
            if not stored:
                raise CentralStoreError(
                    f"{self._reader.where}: the event of {key[1]!r} at {key[0]} is gone from "
                    "the database (events are never deleted: is this the same database?)"
                )
            if len(stored) == 1:
                result.append(stored[0])
                continue
            # Twins: equal in every column read. The n-th of them in the columns is the
            # n-th by event id, when the database holds exactly as many.
            twins = self._twins(int(i), key)
            if len(twins) != len(stored):
                raise CentralStoreError(
                    f"{self._reader.where}: events of {key[1]!r} at {key[0]} arrived while "
                    "the report read them; make the report again"
                )
            stored.sort(key=lambda d: d[0])
            result.append(stored[twins.index(int(i))])
        for _, tz, _ in result:
            zone(tz, self._reader.where)
        return result

    def _twins(self, i: int, key: Key) -> list[int]:
        """The indices of the events the columns hold with this event's key, ascending."""
        a = self._arrays
        if self._by_time is None:
            self._by_time = np.argsort(a.utc_us, kind="stable")
        times = a.utc_us[self._by_time]
        lo, hi = np.searchsorted(times, [a.utc_us[i], a.utc_us[i] + 1])
        return sorted(int(j) for j in self._by_time[lo:hi] if self.key(int(j)) == key)

    def _event_id(self, value: object) -> str:
        """The event id as text, with dashes (SQLite holds 32 hex digits)."""
        try:
            return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError as err:
            raise CentralStoreError(
                f"{self._reader.where}: a stored event id is not a UUID: {value!r}"
            ) from err


# --------------------------------------------------------------------- readers
class _Reader:
    """The three queries of a source, on one dialect. ``where`` names the database;
    ``as_of`` (verify only) bounds every query to the events it covers."""

    where: str
    _mark: str  # the dialect's parameter mark
    _false: str  # and its false
    _as_of: AsOf | None

    def _covered(self, as_of: AsOf, prefix: str = "") -> tuple[str, list[object]]:
        """Whether an event is within ``as_of.through``: a condition never NULL."""
        if not as_of.through:
            return self._false, []
        mark = self._mark
        cases = " ".join(f"WHEN {mark} THEN {prefix}seq <= {mark}" for _ in as_of.through)
        params: list[object] = []
        for log_id, seq in sorted(as_of.through.items()):
            params += [log_id, int(seq)]
        return f"(CASE {prefix}log_id {cases} ELSE {self._false} END)", params

    def _where(self, bounds: tuple[str, str] | None, prefix: str = "") -> tuple[str, list[object]]:
        """`` WHERE`` the range and ``as_of`` (none: ``""``), with its parameters."""
        mark = self._mark
        terms: list[str] = []
        params: list[object] = []
        if bounds is not None:
            terms.append(f"{prefix}utc >= {mark} AND {prefix}utc < {mark}")
            params += bounds
        if self._as_of is not None:
            covered, more = self._covered(self._as_of, prefix)
            params += more
            if self._as_of.received_before is not None:
                covered = f"({covered} OR {prefix}received_utc < {mark})"
                params.append(self._as_of.received_before)
            terms.append(covered)
        return (" WHERE " + " AND ".join(terms) if terms else ""), params

    def counts(self, bounds: tuple[str, str], as_of: AsOf) -> tuple[int, int, int]:
        """Events in ``bounds``; of them, covered by ``as_of.through``; of the others,
        received before ``as_of.received_before`` (0 without it)."""
        mark = self._mark
        covered, params = self._covered(as_of)
        before = as_of.received_before or ""
        sql = (
            f"SELECT count(*), coalesce(sum(CASE WHEN {covered} THEN 1 ELSE 0 END), 0),"
            f" coalesce(sum(CASE WHEN {covered} THEN 0 WHEN received_utc < {mark} THEN 1"
            f" ELSE 0 END), 0) FROM events WHERE utc >= {mark} AND utc < {mark}"
        )
        row = self._one(sql, [*params, *params, before, *bounds])
        return int(row[0]), int(row[1]), int(row[2])

    def _one(self, sql: str, params: Sequence[object]) -> tuple[Any, ...]:
        raise NotImplementedError

    def aggregates(
        self, bounds: tuple[str, str] | None
    ) -> tuple[int, str | None, str | None, str | None]:
        """count(*), then the aggregated stored times, flags and person ids."""
        raise NotImplementedError

    def rows(self, bounds: tuple[str, str] | None) -> list[tuple[str, object, str, object]]:
        """(person id, inward, stored time, synced as 1 / 0 / -1), one row per event."""
        raise NotImplementedError

    def details(self, times: Sequence[str]) -> list[DetailRow]:
        """Every event stamped at one of these stored times, with its details."""
        raise NotImplementedError

    def heads(self) -> list[tuple[Any, ...]]:
        """(log id, chain seq, chain head) of each log checked so far."""
        raise NotImplementedError

    def log(self, log_id: str, through: int) -> list[tuple[Any, ...]]:
        """One log's events up to seq ``through``, in seq order (``LOG_COLUMNS``)."""
        raise NotImplementedError


_SQLITE_FLAGS = "(direction = 'in') + 2 * coalesce(clock_synced, 2)"
_SQLITE_DETAILS = (
    "SELECT e.utc, e.person_id, e.direction = 'in', coalesce(e.clock_synced, -1),"
    " e.event_id, e.tz, k.name FROM events e LEFT JOIN kiosks k ON k.id = e.kiosk_id"
    " WHERE e.utc IN ({marks})"
)


class _SqliteReader(_Reader):
    """The open store's sqlite3 connections."""

    _mark, _false = "?", "0"

    def __init__(self, where: str, as_of: AsOf | None, engine: sa.Engine) -> None:
        self.where = where
        self._as_of = as_of
        self._engine = engine

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One of the store's pooled connections, back to its pool after."""
        try:
            pooled = self._engine.raw_connection()
        except Exception as err:  # sqlalchemy wraps sqlite3's error
            raise CentralStoreError(f"{self.where}: cannot open: {_line(err)}") from err
        conn = pooled.driver_connection
        assert isinstance(conn, sqlite3.Connection)
        try:
            yield conn
        except sqlite3.Error as err:
            raise CentralStoreError(f"{self.where}: reading events failed: {err}") from err
        finally:
            pooled.close()

    def aggregates(
        self, bounds: tuple[str, str] | None
    ) -> tuple[int, str | None, str | None, str | None]:
        sql = (
            f"SELECT count(*), group_concat(utc, ''), group_concat({_SQLITE_FLAGS}, ''),"
            " group_concat(person_id, ?) FROM events"
        )
        clause, params = self._where(bounds)
        with self._reading() as conn:
            row = conn.execute(sql + clause, (SEPARATOR, *params)).fetchone()
        return int(row[0]), row[1], row[2], row[3]

    def rows(self, bounds: tuple[str, str] | None) -> list[tuple[str, object, str, object]]:
        sql = "SELECT person_id, direction = 'in', utc, coalesce(clock_synced, -1) FROM events"
        clause, params = self._where(bounds)
        with self._reading() as conn:
            return conn.execute(sql + clause, params).fetchall()

    def details(self, times: Sequence[str]) -> list[DetailRow]:
        found: list[DetailRow] = []
        with self._reading() as conn:
            for a in range(0, len(times), _DETAIL_BATCH):
                batch = list(times[a : a + _DETAIL_BATCH])
                marks = ", ".join("?" * len(batch))
                sql = _SQLITE_DETAILS.format(marks=marks)
                params: list[object] = list(batch)
                if self._as_of is not None:
                    clause, more = self._where(None, "e.")
                    sql += clause.replace(" WHERE ", " AND ", 1)
                    params += more
                found += conn.execute(sql, params).fetchall()
        return found

    def _one(self, sql: str, params: Sequence[object]) -> tuple[Any, ...]:
        with self._reading() as conn:
            row: tuple[Any, ...] = conn.execute(sql, params).fetchone()
        return row

    def heads(self) -> list[tuple[Any, ...]]:
        with self._reading() as conn:
            return conn.execute(_HEADS).fetchall()

    def log(self, log_id: str, through: int) -> list[tuple[Any, ...]]:
        with self._reading() as conn:
            return conn.execute(_LOG.format(mark="?"), (log_id, through)).fetchall()


_HEADS = (
    "SELECT log_id, chain_seq, chain_head FROM kiosk_logs"
    " WHERE chain_seq > 0 AND chain_head IS NOT NULL ORDER BY log_id"
)
_LOG = f"SELECT {LOG_COLUMNS} FROM events WHERE log_id = {{mark}} AND seq <= {{mark}} ORDER BY seq"


_PG_FLAGS = "((direction = 'in')::int + 2 * coalesce(clock_synced::int, 2))::text"
_PG_DETAILS = (
    "SELECT e.utc, e.person_id, e.direction = 'in', coalesce(e.clock_synced::int, -1),"
    " e.event_id, e.tz, k.name FROM events e LEFT JOIN kiosks k ON k.id = e.kiosk_id"
    " WHERE e.utc = ANY(%s)"
)


class _PostgresReader(_Reader):
    """The open store's psycopg 3 connections, in a read-only transaction each query."""

    _mark, _false = "%s", "false"

    def __init__(self, where: str, as_of: AsOf | None, engine: sa.Engine) -> None:
        self.where = where
        self._as_of = as_of
        self._engine = engine

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        """One of the store's pooled connections, in a read-only transaction rolled back
        before the connection goes back to the pool."""
        import psycopg

        try:
            pooled = self._engine.raw_connection()
        except Exception as err:  # sqlalchemy wraps psycopg's error
            raise CentralStoreError(
                f"{self.where}: cannot connect: {_line(err)}; check that PostgreSQL runs "
                "and the URL is right"
            ) from err
        conn = pooled.driver_connection
        assert isinstance(conn, psycopg.Connection)
        try:
            conn.execute("SET TRANSACTION READ ONLY")
            yield conn
        except psycopg.Error as err:
            raise CentralStoreError(f"{self.where}: reading events failed: {_line(err)}") from err
        finally:
            conn.rollback()
            pooled.close()

    def aggregates(
        self, bounds: tuple[str, str] | None
    ) -> tuple[int, str | None, str | None, str | None]:
        sql = (
            f"SELECT count(*), string_agg(utc, ''), string_agg({_PG_FLAGS}, ''),"
            " string_agg(person_id, %s) FROM events"
        )
        clause, params = self._where(bounds)
        with self._reading() as conn:
            # One serial pass: every aggregate takes the rows in the same order.
            conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            row = conn.execute(sql + clause, (SEPARATOR, *params)).fetchone()
        assert row is not None  # an aggregate query gives one row
        return int(row[0]), row[1], row[2], row[3]

    def rows(self, bounds: tuple[str, str] | None) -> list[tuple[str, object, str, object]]:
        sql = "SELECT person_id, direction = 'in', utc, coalesce(clock_synced::int, -1) FROM events"
        clause, params = self._where(bounds)
        with self._reading() as conn:
            return conn.execute(sql + clause, params).fetchall()

    def details(self, times: Sequence[str]) -> list[DetailRow]:
        sql = _PG_DETAILS
        params: list[object] = [list(times)]
        if self._as_of is not None:
            clause, more = self._where(None, "e.")
            sql += clause.replace(" WHERE ", " AND ", 1)
            params += more
        with self._reading() as conn:
            return conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[object]) -> tuple[Any, ...]:
        with self._reading() as conn:
            row = conn.execute(sql, params).fetchone()
        assert row is not None  # an aggregate query gives one row
        return tuple(row)

    def heads(self) -> list[tuple[Any, ...]]:
        with self._reading() as conn:
            return conn.execute(_HEADS).fetchall()

    def log(self, log_id: str, through: int) -> list[tuple[Any, ...]]:
        with self._reading() as conn:
            return conn.execute(_LOG.format(mark="%s"), (log_id, through)).fetchall()


def _line(err: BaseException) -> str:
    """A database error as one line for a person (no SQL, no parameters)."""
    return " ".join(str(err).split())[:300] or type(err).__name__
