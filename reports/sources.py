"""Where report input comes from: today a kiosk's own SQLite database.

The report logic never imports a store; this module is the one edge that does (lazily),
turning a kiosk database's roster and event log into :class:`~reports.model.PersonInfo`
records and :class:`~reports.columns.EventColumns`.

Events are read straight from the ``events`` table, and only those a report of the
asked range can need (``utc >= ? AND utc < ?``: the table has an index on ``utc``, and
times are fixed-width ISO text, so text order is time order). Two things make a year
of events quick to read:

- **A string per column, not a tuple per row.** The query returns each column as one
  ``group_concat`` string (every aggregate of one query walks the same rows in the same
  order, so the columns line up); Python splits it, or numpy reads it as bytes. Half a
  million rows through the sqlite3 module one tuple at a time cost several times more.
- **Details later.** Event id, time zone and kiosk are needed only for the few events a
  report shows (anomalies, a shift someone opens): they are read afterwards, by
  ``seq``, for just those events.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from clockface.errors import ReportError, StoreError
from reports.columns import Detail, EventColumns, IntArray, parse_utc
from reports.compute import event_bounds
from reports.model import PersonInfo, from_store_person, zone

_SEPARATOR = "\x1f"  # ASCII unit separator: between the values of a text column
_DETAIL_BATCH = 500  # seqs per detail query (SQLite allows 999 parameters at the least)


@dataclass(frozen=True, slots=True)
class ReportInput:
    people: tuple[PersonInfo, ...]
    events: EventColumns


def read_kiosk_database(
    path: str | os.PathLike[str], first: date | None = None, last: date | None = None
) -> ReportInput:
    """Everyone in a kiosk database's roster (active or not) and its events.

    With ``first`` and ``last`` (shift dates), only the events a report of that range
    can need (:func:`~reports.compute.event_bounds`); without, every event. The file
    must exist: a report never creates an empty database by a typo. Raises ReportError
    for a missing file, StoreError for one that cannot be read.
    """
    from kiosk.store import KioskStore

    where = Path(path)
    if not where.is_file():
        what = "a folder" if where.is_dir() else "no such file"
        raise ReportError(
            f"kiosk database {str(where)!r}: {what}; give the kiosk's database with --db"
        )
    if (first is None) != (last is None):
        raise ReportError("give both first and last dates, or neither")
    # The store checks the file is a kiosk database and brings its schema up to date;
    # the events are then read on a second, read-only connection while it is open.
    with KioskStore.open(where) as store:
        people = tuple(from_store_person(p) for p in store.people())
        bounds = None
        if first is not None and last is not None:
            lo, hi = event_bounds(first, last)
            bounds = (_iso(lo), _iso(hi))
        events = _read_events(where, bounds)
    return ReportInput(people, events)


def _read_events(where: Path, bounds: tuple[str, str] | None) -> EventColumns:
    sql = (
        "SELECT count(*), group_concat(utc, ''),"
        " group_concat((direction = 'in') + 2 * coalesce(clock_synced, 2), ''),"
        " group_concat(person_id, ?), group_concat(seq, ',') FROM events"
    )
    params: list[str] = [_SEPARATOR]
    with _connect(where) as conn:
        try:
            if bounds is not None:
                sql += " WHERE utc >= ? AND utc < ?"
                params += bounds
            count, utc, flags, people, seqs = conn.execute(sql, params).fetchone()
        except sqlite3.Error as err:
            raise StoreError(f"{where}: reading events failed: {err}") from err
    if not count:
        return EventColumns([], [], [], [], _Details(where, np.empty(0, dtype=np.int64)))
    person_ids = people.split(_SEPARATOR)
    if len(person_ids) != count:  # a person id holding the separator: read row by row
        return _read_rows(where, bounds)
    # One digit per event: 1 for "in", plus 2 x clock_synced (0, 1, or 2 for NULL).
    digit = np.frombuffer(flags.encode("ascii"), dtype=np.uint8) - ord("0")
    synced = digit // 2
    return EventColumns(
        person_ids,
        digit % 2 == 1,
        parse_utc(utc, count),
        np.where(synced == 2, -1, synced).astype(np.int8),
        _Details(where, np.fromstring(seqs, dtype=np.int64, sep=",")),
    )


def _read_rows(where: Path, bounds: tuple[str, str] | None) -> EventColumns:
    sql = "SELECT person_id, direction = 'in', utc, coalesce(clock_synced, -1), seq FROM events"
    if bounds is not None:
        sql += " WHERE utc >= ? AND utc < ?"
    with _connect(where) as conn:
        try:
            rows = conn.execute(sql, bounds or ()).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"{where}: reading events failed: {err}") from err
    people, inward, utc, synced, seqs = zip(*rows, strict=True)
    return EventColumns(
        list(people),
        inward,
        parse_utc("".join(utc), len(rows)),
        synced,
        _Details(where, np.array(seqs, dtype=np.int64)),
    )


class _Details:
    """Event id, time zone and kiosk of events, read by ``seq`` when first asked for."""

    def __init__(self, where: Path, seqs: IntArray) -> None:
        self._where = where
        self._seqs = seqs

    def __call__(self, indices: Sequence[int]) -> list[Detail]:
        seqs = [int(self._seqs[i]) for i in indices]
        found: dict[int, Detail] = {}
        with _connect(self._where) as conn:
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


class _connect:
    """A read-only connection to an existing database (never creates one)."""

    def __init__(self, where: Path) -> None:
        try:
            self._conn = sqlite3.connect(f"{where.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as err:
            raise StoreError(f"{where}: cannot open: {err}") from err

    def __enter__(self) -> sqlite3.Connection:
        return self._conn

    def __exit__(self, *exc: object) -> None:
        self._conn.close()


def _iso(moment: datetime) -> str:
    """As the kiosk stores times: ``2024-05-01T07:57:03.120000Z``."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
