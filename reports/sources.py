"""Where report input comes from: a kiosk's own SQLite database (here), or the central
database (:mod:`reports.central_source`).

The report logic never imports a store; the sources are the one edge that does (lazily),
turning a database's roster and event log into :class:`~reports.model.PersonInfo`
records and :class:`~reports.columns.EventColumns`.

Events are read straight from the ``events`` table, and only those a report of the
asked range can need (``utc >= ? AND utc < ?``: the table has an index on ``utc``, and
times are fixed-width ISO text, so text order is time order). Two things make a year
of events quick to read, in both sources:

- **A string per column, not a tuple per row.** The query returns each column as one
  aggregated string (``group_concat``; ``string_agg`` on PostgreSQL): the aggregates of
  one query take the same rows in the same order, so the columns line up. Python splits
  the strings, or numpy reads them as bytes (:func:`parse_aggregates`). Half a million
  rows through the sqlite3 module one tuple at a time cost several times more.
- **Details later.** Event id, time zone and kiosk are needed only for the few events a
  report shows (anomalies, a shift someone opens): they are read afterwards for just
  those events (here by ``seq``).

``clockface report verify`` reads a report's events again **as of its chain heads**
(:class:`AsOf`): of each log the report recorded a head for, the events up to that seq;
of any other log, none. Only verify asks for that: a normal report's query is as above.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from clockface.chain import ChainCheck
from clockface.errors import ReportError, StoreError
from clockface.values import iso_utc
from reports.columns import BoolArray, Detail, EventColumns, EventDetails, IntArray, parse_utc
from reports.compute import event_bounds
from reports.model import PersonInfo, StoredPerson, from_store_person, zone

SEPARATOR = "\x1f"
"""ASCII unit separator: between the values of an aggregated text column."""
_DETAIL_BATCH = 500  # seqs per detail query (SQLite allows 999 parameters at the least)

SyncedArray = npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class ReportInput:
    people: tuple[PersonInfo, ...]
    events: EventColumns


@dataclass(frozen=True, slots=True)
class AsOf:
    """The events a verified report could have seen (``clockface report verify``).

    ``through``: per log id, the highest seq (the report's recorded chain head): that
    log's events up to it. Events of a log not named here are left out. A central
    database may add ``received_before`` (an ISO UTC time with microseconds, as stored):
    also the events not covered by ``through`` that the service received before then
    (events the report may have read although no chain head covers them).
    """

    through: Mapping[str, int] = field(default_factory=dict)
    received_before: str | None = None


@dataclass(frozen=True, slots=True)
class EventCounts:
    """Events in a report's range now: all, those an :class:`AsOf` covers, and (central)
    of the others, those received before the report was made (``None``: not known)."""

    total: int
    covered: int
    received_before: int | None = None

    @property
    def uncovered(self) -> int:
        return self.total - self.covered


@dataclass(frozen=True, slots=True)
class EventArrays:
    """The columns every report reads, before they are joined to their details.

    ``synced`` is 1 / 0 whether the kiosk clock was synchronised, -1 not known.
    """

    person_id: list[str]
    inward: BoolArray
    utc_us: IntArray
    synced: SyncedArray

    @classmethod
    def empty(cls) -> EventArrays:
        return cls(
            [],
            np.empty(0, dtype=np.bool_),
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=np.int8),
        )

    def __len__(self) -> int:
        return len(self.person_id)

    def columns(self, details: EventDetails) -> EventColumns:
        return EventColumns(self.person_id, self.inward, self.utc_us, self.synced, details)


def range_bounds(first: date | None, last: date | None) -> tuple[str, str] | None:
    """The stored-time bounds (from, before) of the events a report of shift dates
    ``first``..``last`` can need (:func:`~reports.compute.event_bounds`); None for
    every event. Both dates or neither, else ReportError."""
    if (first is None) != (last is None):
        raise ReportError("give both first and last dates, or neither")
    if first is None or last is None:
        return None
    lo, hi = event_bounds(first, last)
    return iso_utc(lo), iso_utc(hi)


def parse_aggregates(count: int, utc: str, flags: str, people: str) -> EventArrays | None:
    """``count`` events from three aggregated strings: ``utc`` the stored times one after
    another, ``flags`` one digit per event (1 for "in", plus 2 x clock_synced: 0, 1, or
    2 for NULL), ``people`` the person ids joined by :data:`SEPARATOR`.

    None when a person id holds the separator (the split does not give ``count`` ids):
    read those events row by row instead (:func:`arrays_from_rows`).
    """
    person_ids = people.split(SEPARATOR)
    if len(person_ids) != count:
        return None
    digit = np.frombuffer(flags.encode("ascii"), dtype=np.uint8) - np.uint8(ord("0"))
    if len(digit) != count or (digit > 5).any():
        raise ReportError("stored events have a direction or clock flag that is not valid")
    synced = digit // 2
    return EventArrays(
        person_ids,
        digit % 2 == 1,
        parse_utc(utc, count),
        np.where(synced == 2, -1, synced).astype(np.int8),
    )


def arrays_from_rows(rows: Iterable[tuple[str, object, str, object]]) -> EventArrays:
    """Events from rows of (person id, inward, stored time, synced as 1, 0 or -1)."""
    found = list(rows)
    if not found:
        return EventArrays.empty()
    people, inward, utc, synced = zip(*found, strict=True)
    return EventArrays(
        list(people),
        np.array([bool(i) for i in inward], dtype=np.bool_),
        parse_utc("".join(utc), len(found)),
        np.array([int(s) for s in synced], dtype=np.int8),
    )


# --------------------------------------------------------------------- the kiosk
class CheckedChain(Protocol):
    @property
    def chain(self) -> ChainCheck: ...


class OpenKiosk(Protocol):
    """An open kiosk store (:class:`kiosk.store.KioskStore` is one, opened without
    creating a file): it has checked that the file is a kiosk database and brought its
    schema up to date. The report code reads its events on read-only connections of its
    own (the file's ``path``), so they can be read after the store is closed."""

    @property
    def path(self) -> Path: ...

    @property
    def log_id(self) -> str: ...

    @property
    def actor(self) -> str: ...

    def people(self) -> Sequence[StoredPerson]: ...

    def verify_chain(self) -> CheckedChain: ...


def read_kiosk_database(
    store: OpenKiosk,
    first: date | None = None,
    last: date | None = None,
    *,
    as_of: AsOf | None = None,
) -> ReportInput:
    """Everyone in an open kiosk store's roster (active or not) and its events.

    With ``first`` and ``last`` (shift dates), only the events a report of that range
    can need (:func:`~reports.compute.event_bounds`); without, every event. With
    ``as_of`` (``clockface report verify``), only the events of this database's log up
    to the seq it gives that log (none if it names another log). Raises StoreError for
    a file that cannot be read.
    """
    bounds = range_bounds(first, last)
    people = tuple(from_store_person(p) for p in store.people())
    through = None if as_of is None else as_of.through.get(store.log_id, 0)
    return ReportInput(people, _read_events(store.path, bounds, through))


def check_kiosk_file(path: str | os.PathLike[str]) -> Path:
    """The path of an existing kiosk database file, else ReportError (never created)."""
    where = Path(path)
    if not where.is_file():
        what = "a folder" if where.is_dir() else "no such file"
        raise ReportError(
            f"kiosk database {str(where)!r}: {what}; give the kiosk's database with --db"
        )
    return where


def count_kiosk_events(store: OpenKiosk, first: date, last: date, as_of: AsOf) -> EventCounts:
    """The events of a kiosk database in a report's range now, and how many ``as_of``
    covers (this database's log up to the seq it gives; a kiosk records no receipt)."""
    bounds = range_bounds(first, last)
    assert bounds is not None
    through = as_of.through.get(store.log_id, 0)
    with read_only(store.path) as conn:
        try:
            total, covered = conn.execute(
                "SELECT count(*), coalesce(sum(seq <= ?), 0) FROM events"
                " WHERE utc >= ? AND utc < ?",
                (through, *bounds),
            ).fetchone()
        except sqlite3.Error as err:
            raise StoreError(f"{store.path}: reading events failed: {err}") from err
    return EventCounts(int(total), int(covered))


def _filter(bounds: tuple[str, str] | None, through: int | None) -> tuple[str, list[object]]:
    """The WHERE clause (with its parameters) of a range and a seq bound, or none."""
    terms: list[str] = []
    params: list[object] = []
    if bounds is not None:
        terms.append("utc >= ? AND utc < ?")
        params += bounds
    if through is not None:
        terms.append("seq <= ?")
        params.append(through)
    return (" WHERE " + " AND ".join(terms) if terms else ""), params


def _read_events(
    where: Path, bounds: tuple[str, str] | None, through: int | None = None
) -> EventColumns:
    sql = (
        "SELECT count(*), group_concat(utc, ''),"
        " group_concat((direction = 'in') + 2 * coalesce(clock_synced, 2), ''),"
        " group_concat(person_id, ?), group_concat(seq, ',') FROM events"
    )
    clause, params = _filter(bounds, through)
    with read_only(where) as conn:
        try:
            count, utc, flags, people, seqs = conn.execute(
                sql + clause, [SEPARATOR, *params]
            ).fetchone()
        except sqlite3.Error as err:
            raise StoreError(f"{where}: reading events failed: {err}") from err
    if not count:
        return EventArrays.empty().columns(_Details(where, np.empty(0, dtype=np.int64)))
    arrays = parse_aggregates(count, utc, flags, people)
    if arrays is None:  # a person id holding the separator: read row by row
        return _read_rows(where, bounds, through)
    return arrays.columns(_Details(where, np.fromstring(seqs, dtype=np.int64, sep=",")))


def _read_rows(
    where: Path, bounds: tuple[str, str] | None, through: int | None = None
) -> EventColumns:
    sql = "SELECT person_id, direction = 'in', utc, coalesce(clock_synced, -1), seq FROM events"
    clause, params = _filter(bounds, through)
    with read_only(where) as conn:
        try:
            rows = conn.execute(sql + clause, params).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"{where}: reading events failed: {err}") from err
    arrays = arrays_from_rows(row[:4] for row in rows)
    return arrays.columns(_Details(where, np.array([row[4] for row in rows], dtype=np.int64)))


class _Details:
    """Event id, time zone and kiosk of events, read by ``seq`` when first asked for."""

    def __init__(self, where: Path, seqs: IntArray) -> None:
        self._where = where
        self._seqs = seqs

    def __call__(self, indices: Sequence[int]) -> list[Detail]:
        seqs = [int(self._seqs[i]) for i in indices]
        found: dict[int, Detail] = {}
        with read_only(self._where) as conn:
            for a in range(0, len(seqs), _DETAIL_BATCH):
                batch = seqs[a : a + _DETAIL_BATCH]
                marks = ", ".join("?" * len(batch))
                try:
                    rows = conn.execute(
                        f"SELECT seq, event_id, tz, kiosk_id FROM events WHERE seq IN ({marks})",
                        batch,
                    ).fetchall()
                except sqlite3.Error as err:
                    raise StoreError(f"{self._where}: reading events failed: {err}") from err
                for seq, event_id, tz, kiosk_id in rows:
                    found[seq] = (event_id, tz, kiosk_id)
        missing = [s for s in seqs if s not in found]
        if missing:
            raise StoreError(
                f"{self._where}: event seq {missing[0]} is gone from the database "
                "(events are never deleted: is this the same file?)"
            )
        for _, tz, _ in found.values():
            zone(tz, f"{self._where}")
        return [found[s] for s in seqs]


@contextmanager
def read_only(where: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to an existing kiosk database (never creates one), closed
    after."""
    try:
        conn = sqlite3.connect(f"{where.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise StoreError(f"{where}: cannot open: {err}") from err
    try:
        yield conn
    finally:
        conn.close()
