"""The kiosk's own database: the roster replica and the append-only event log.

Two small interfaces, so the sync agent and the central service can hold the same
things their own way:

- ``Roster``: people, their face templates, the audit log of changes to them, and a
  version number that moves on every change (a running kiosk compares it to reload its
  gallery cheaply).
- ``EventLog``: attendance events, append-only; the ones the central service has not
  acknowledged yet are the sync outbox.

``KioskStore`` implements both over one SQLite file (through sqlite-utils), schema in
``kiosk/migrations.py``. Every change is one ``BEGIN IMMEDIATE`` transaction, committed
before the method returns, with ``synchronous=FULL`` in WAL mode: an event that
``append_event`` returned survives the process being killed a moment later, and a
failure (a full disk, a read-only file) leaves nothing half-written. Every SQLite error
comes out as a one-line ``StoreError`` naming the file.

Times are stored as ISO 8601 UTC text with microseconds and a ``Z``
(``2024-05-01T07:57:03.120000Z``): fixed width, so text order is time order. An event
also carries the kiosk's IANA zone, which decides the local day it belongs to.

Erasure (``remove_person``) deletes the person and every template in one transaction and
leaves an audit entry that holds the id only. ``secure_delete`` is on, and the write-ahead
log is checkpointed after an erasure, so the erased bytes do not linger in the file.
Attendance events are kept: they are records the employer must keep, and carry the
person id only, never a name.

A store is one connection: use it from one thread; give each process its own.
"""

from __future__ import annotations

import getpass
import math
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
from sqlite_utils import Database

from clockface.errors import (
    DuplicatePersonError,
    StoreError,
    StoreValueError,
    UnknownPersonError,
)
from kiosk import migrations
from recognition.gallery import EMBEDDING_DIM, Gallery

Direction = Literal["in", "out"]
AuditAction = Literal["add", "update", "deactivate", "reactivate", "add_templates", "remove"]
FloatArray = npt.NDArray[np.float32]

DEFAULT_BUSY_TIMEOUT_S = 5.0
_TEMPLATE_BYTES = EMBEDDING_DIM * 4  # float32
_TEMPLATE_DTYPE = np.dtype("<f4")  # little-endian on disk, whatever the machine


# --------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class Person:
    """One person of the roster; ``template_count`` is how many face templates they have."""

    person_id: str
    name: str
    team: str | None
    active: bool
    template_count: int
    created_utc: datetime
    updated_utc: datetime


@dataclass(frozen=True, slots=True)
class NewPerson:
    """Someone to add together with their face templates (:meth:`KioskStore.enroll_many`).

    ``embeddings``: shape (k, 128) (or (128,) for one); k may be 0 only in a roster
    import of someone who had no templates.
    """

    person_id: str
    name: str
    team: str | None
    embeddings: npt.ArrayLike
    active: bool = True


@dataclass(frozen=True, slots=True)
class Event:
    """One attendance event. ``acked_utc`` is None until the central service has it."""

    event_id: str
    seq: int
    kiosk_id: str
    person_id: str
    direction: Direction
    utc: datetime
    tz: str
    distance: float
    margin: float
    frames: int
    software_version: str
    acked_utc: datetime | None

    @property
    def local_time(self) -> datetime:
        """The wall-clock time at the kiosk, in its zone."""
        return self.utc.astimezone(ZoneInfo(self.tz))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who changed which person, when, and how; never names, embeddings or photos."""

    id: int
    at_utc: datetime
    actor: str
    action: str
    person_id: str
    detail: str | None


# --------------------------------------------------------------------- interfaces
class Roster(Protocol):
    """People and their face templates, with an audit log and a version that moves."""

    def roster_version(self) -> int: ...

    def add_person(self, person_id: str, name: str, team: str | None = None) -> Person: ...

    def update_person(
        self, person_id: str, *, name: str | None = None, team: str | None = None
    ) -> Person: ...

    def set_active(self, person_id: str, active: bool) -> Person: ...

    def add_templates(self, person_id: str, embeddings: npt.ArrayLike) -> int: ...

    def remove_person(self, person_id: str) -> int: ...

    def get_person(self, person_id: str) -> Person: ...

    def people(self, *, active_only: bool = False) -> list[Person]: ...

    def templates(self, person_id: str) -> FloatArray: ...

    def load_gallery(self, *, threshold: float, margin: float) -> Gallery: ...

    def audit_log(self, person_id: str | None = None) -> list[AuditEntry]: ...


class EventLog(Protocol):
    """Attendance events, append-only; the unacknowledged ones are the sync outbox."""

    def append_event(
        self,
        person_id: str,
        direction: Direction,
        *,
        utc: datetime,
        tz: str,
        distance: float,
        margin: float,
        frames: int,
        software_version: str,
    ) -> Event: ...

    def events(
        self, *, day: date | None = None, person_id: str | None = None, tz: str | None = None
    ) -> list[Event]: ...

    def last_event(self, person_id: str) -> Event | None: ...

    def pending(self, limit: int = 100) -> list[Event]: ...

    def mark_acked(self, event_ids: Iterable[str], at_utc: datetime) -> int: ...

    def backlog(self) -> int: ...


# --------------------------------------------------------------------- the store
_PERSON_SELECT = """
    SELECT p.person_id, p.name, p.team, p.active,
           (SELECT count(*) FROM templates t WHERE t.person_id = p.person_id),
           p.created_utc, p.updated_utc
    FROM people p
"""
_EVENT_COLUMNS = (
    "event_id, seq, kiosk_id, person_id, direction, utc, tz, distance, margin, frames, "
    "software_version, acked_utc"
)


class KioskStore:
    """The roster replica and the event log of one kiosk, in one SQLite file.

    Open it with ``KioskStore.open(path)``; close it, or use it as a context manager.
    """

    def __init__(
        self,
        db: Database,
        *,
        path: Path,
        kiosk_id: str,
        actor: str,
        clock: Callable[[], datetime],
    ) -> None:
        """Use ``KioskStore.open``: this takes a database that is already migrated."""
        self._db = db
        self._conn = db.conn
        self._path = path
        self._kiosk_id = kiosk_id
        self._actor = actor
        self._clock = clock

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        kiosk_id: str | None = None,
        actor: str | None = None,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        clock: Callable[[], datetime] | None = None,
    ) -> KioskStore:
        """Open the kiosk database at ``path``, creating it (and its folder) if needed.

        Applies any pending schema steps. ``kiosk_id`` is stored the first time (a uuid4
        if not given) and must match afterwards. ``actor`` is who the audit log names
        for changes through this store (default: the OS user). ``clock`` returns the
        current time, timezone-aware (default: the system clock).
        """
        where = Path(path)
        if kiosk_id is not None:
            kiosk_id = _check_text(kiosk_id, "a kiosk id")
        actor = _check_text(actor if actor is not None else _os_user(), "an actor")
        if not (busy_timeout_s >= 0 and math.isfinite(busy_timeout_s)):
            raise StoreValueError(f"busy_timeout_s must be zero or more, not {busy_timeout_s!r}")
        now = clock or _system_clock
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"{where}: cannot create its folder: {err.strerror or err}; "
                "check the path and its permissions"
            ) from err
        _create_private(where)
        try:
            conn = sqlite3.connect(where, timeout=busy_timeout_s, isolation_level=None)
        except sqlite3.Error as err:
            raise StoreError(f"{where}: cannot open: {_explain(err)}") from err
        try:
            db = Database(conn, execute_plugins=False)
            kid = _prepare(db, where, kiosk_id, busy_timeout_s, _iso(now()))
        except BaseException as err:
            conn.close()
            if isinstance(err, sqlite3.Error):
                raise StoreError(f"{where}: cannot open: {_explain(err)}") from err
            raise
        return cls(db, path=where, kiosk_id=kid, actor=actor, clock=now)

    # ----------------------------------------------------------------- lifecycle
    @property
    def path(self) -> Path:
        return self._path

    @property
    def kiosk_id(self) -> str:
        return self._kiosk_id

    @property
    def actor(self) -> str:
        """Who the audit log names for changes made through this store."""
        return self._actor

    def close(self) -> None:
        """Close the database; closing twice is harmless."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KioskStore({str(self._path)!r}, kiosk_id={self._kiosk_id!r})"

    # ----------------------------------------------------------------- roster
    def roster_version(self) -> int:
        """A number that grows with every roster change: reload the gallery when it moves.

        Read it *before* ``load_gallery``: a change between the two then shows up as a
        newer version at the next look, never as a gallery silently out of date.
        """
        with self._reading("reading the roster version"):
            (value,) = self._one("SELECT value FROM settings WHERE key = 'roster_version'")
        return int(value)

    def add_person(self, person_id: str, name: str, team: str | None = None) -> Person:
        """Add someone to the roster, active, with no templates yet."""
        pid = _check_text(person_id, "a person id")
        name = _check_text(name, "a name")
        team = _check_team(team)
        now = self._now()
        with self._writing("adding a person"):
            if self._find(pid) is not None:
                raise DuplicatePersonError(
                    f"person {pid!r} is already in the roster; use update_person to change them"
                )
            self._db.execute(
                "INSERT INTO people (person_id, name, team, active, created_utc, updated_utc)"
                " VALUES (?, ?, ?, 1, ?, ?)",
                [pid, name, team, now, now],
            )
            self._changed("add", pid, None, now)
            person = self._require(pid)
        return person

    def update_person(
        self, person_id: str, *, name: str | None = None, team: str | None = None
    ) -> Person:
        """Change a name or team; None leaves a field as it is, ``team=""`` clears the team."""
        pid = _check_text(person_id, "a person id")
        if name is None and team is None:
            raise StoreValueError("nothing to update: give name= or team=")
        new_name = None if name is None else _check_text(name, "a name")
        new_team = None if team is None else _check_team(team)
        now = self._now()
        with self._writing("updating a person"):
            old = self._require(pid)
            changes: dict[str, str | None] = {}
            if new_name is not None and new_name != old.name:
                changes["name"] = new_name
            if team is not None and new_team != old.team:
                changes["team"] = new_team
            if not changes:
                return old
            assignments = ", ".join(f"{column} = ?" for column in changes)
            self._db.execute(
                f"UPDATE people SET {assignments}, updated_utc = ? WHERE person_id = ?",
                [*changes.values(), now, pid],
            )
            # The fields that changed, never their values: names must not outlive an erasure.
            self._changed("update", pid, "changed " + ", ".join(changes), now)
            person = self._require(pid)
        return person

    def set_active(self, person_id: str, active: bool) -> Person:
        """Deactivate (out of the gallery, kept in the roster) or reactivate someone."""
        pid = _check_text(person_id, "a person id")
        if not isinstance(active, bool):
            raise StoreValueError(f"active must be True or False, not {active!r}")
        now = self._now()
        with self._writing("changing whether a person is active"):
            old = self._require(pid)
            if old.active == active:
                return old
            self._db.execute(
                "UPDATE people SET active = ?, updated_utc = ? WHERE person_id = ?",
                [int(active), now, pid],
            )
            self._changed("reactivate" if active else "deactivate", pid, None, now)
            person = self._require(pid)
        return person

    def add_templates(self, person_id: str, embeddings: npt.ArrayLike) -> int:
        """Store face templates (shape (128,) or (k, 128)) as float32; returns how many."""
        pid = _check_text(person_id, "a person id")
        rows = _as_templates(embeddings)
        now = self._now()
        with self._writing("adding templates"):
            self._require(pid)
            self._conn.executemany(
                "INSERT INTO templates (person_id, embedding, created_utc) VALUES (?, ?, ?)",
                ((pid, row.tobytes(), now) for row in rows),
            )
            self._changed("add_templates", pid, f"{len(rows)} added", now)
        return len(rows)

    def enroll(
        self, person_id: str, name: str, team: str | None, embeddings: npt.ArrayLike
    ) -> Person:
        """Add someone with their face templates (at least one) in one transaction.

        Both or neither: a refused template or a failed write leaves no person behind.
        """
        if np.size(embeddings) == 0:
            raise StoreValueError(f"enroll needs at least one template for {person_id!r}")
        (person,) = self.enroll_many([NewPerson(person_id, name, team, embeddings)])
        return person

    def enroll_many(self, people: Iterable[NewPerson], *, replace: bool = False) -> list[Person]:
        """Add people with their templates in one transaction: all of them or none.

        An id the roster already holds raises DuplicatePersonError, writing nothing,
        unless ``replace``: then that person is erased first (templates included, with a
        ``remove`` audit entry) and added anew. Each addition is audited as ``add``, then
        ``add_templates`` (when there are templates) and ``deactivate`` (when inactive).
        """
        checked: list[tuple[str, str, str | None, npt.NDArray[Any], bool]] = []
        for new in people:
            pid = _check_text(new.person_id, "a person id")
            name = _check_text(new.name, "a name")
            team = _check_team(new.team)
            if not isinstance(new.active, bool):
                raise StoreValueError(f"active must be True or False, not {new.active!r}")
            shape = np.shape(new.embeddings)
            rows = (
                np.empty((0, EMBEDDING_DIM), dtype=_TEMPLATE_DTYPE)
                if shape == (0, EMBEDDING_DIM)
                else _as_templates(new.embeddings)
            )
            checked.append((pid, name, team, rows, new.active))
        ids = [pid for pid, *_ in checked]
        if len(set(ids)) != len(ids):
            twice = next(pid for pid in ids if ids.count(pid) > 1)
            raise StoreValueError(f"person {twice!r} is given twice; nothing was written")
        now = self._now()
        erased = False
        with self._writing("enrolling people"):
            for pid, name, team, rows, active in checked:
                old = self._find(pid)
                if old is not None:
                    if not replace:
                        raise DuplicatePersonError(
                            f"person {pid!r} is already in the roster; nothing was written"
                        )
                    self._db.execute("DELETE FROM people WHERE person_id = ?", [pid])
                    self._changed(
                        "remove", pid, f"erased with {old.template_count} templates, replaced", now
                    )
                    erased = True
                self._db.execute(
                    "INSERT INTO people (person_id, name, team, active, created_utc, updated_utc)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [pid, name, team, int(active), now, now],
                )
                self._changed("add", pid, None, now)
                if len(rows):
                    self._conn.executemany(
                        "INSERT INTO templates (person_id, embedding, created_utc)"
                        " VALUES (?, ?, ?)",
                        ((pid, row.tobytes(), now) for row in rows),
                    )
                    self._changed("add_templates", pid, f"{len(rows)} added", now)
                if not active:
                    self._changed("deactivate", pid, None, now)
            added = [self._require(pid) for pid in ids]
        if erased:
            with self._reading("checkpointing after an erasure"):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return added

    def remove_person(self, person_id: str) -> int:
        """Erase someone: the person and every template, leaving an audit entry with the id.

        Returns how many templates were erased. Their attendance events stay.
        """
        pid = _check_text(person_id, "a person id")
        now = self._now()
        with self._writing("erasing a person"):
            count = self._require(pid).template_count
            self._db.execute("DELETE FROM people WHERE person_id = ?", [pid])
            self._changed("remove", pid, f"erased with {count} templates", now)
        # Move the erased pages out of the write-ahead log into the (zeroed) main file.
        # Best effort: a reader elsewhere may hold the log; it is truncated next time.
        with self._reading("checkpointing after an erasure"):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return count

    def get_person(self, person_id: str) -> Person:
        pid = _check_text(person_id, "a person id")
        with self._reading("reading a person"):
            return self._require(pid)

    def people(self, *, active_only: bool = False) -> list[Person]:
        """Everyone in the roster (or the active only), by person id."""
        where = " WHERE p.active = 1" if active_only else ""
        with self._reading("reading the roster"):
            rows = self._all(_PERSON_SELECT + where + " ORDER BY p.person_id")
        return [_person(row) for row in rows]

    def templates(self, person_id: str) -> FloatArray:
        """One person's templates, shape (k, 128) float32, in the order they were added."""
        pid = _check_text(person_id, "a person id")
        with self._reading("reading templates"):
            self._require(pid)
            rows = self._all(
                "SELECT embedding FROM templates WHERE person_id = ? ORDER BY id", [pid]
            )
        return _from_blobs([blob for (blob,) in rows])

    def load_gallery(self, *, threshold: float, margin: float) -> Gallery:
        """A Gallery of the templates of the active people (read in one statement)."""
        gallery = Gallery(threshold=threshold, margin=margin)
        with self._reading("loading the gallery"):
            rows = self._all(
                "SELECT t.person_id, t.embedding FROM templates t"
                " JOIN people p ON p.person_id = t.person_id"
                " WHERE p.active = 1 ORDER BY t.id"
            )
        gallery.add_many([pid for pid, _ in rows], _from_blobs([blob for _, blob in rows]))
        return gallery

    def audit_log(self, person_id: str | None = None) -> list[AuditEntry]:
        """The audit entries (of one person id, if given), oldest first."""
        sql = "SELECT id, at_utc, actor, action, person_id, detail FROM audit"
        params: list[Any] = []
        if person_id is not None:
            sql += " WHERE person_id = ?"
            params.append(person_id)
        with self._reading("reading the audit log"):
            rows = self._all(sql + " ORDER BY id", params)
        return [
            AuditEntry(
                id=int(row[0]),
                at_utc=_parse_utc(row[1]),
                actor=row[2],
                action=row[3],
                person_id=row[4],
                detail=row[5],
            )
            for row in rows
        ]

    # ----------------------------------------------------------------- events
    def append_event(
        self,
        person_id: str,
        direction: Direction,
        *,
        utc: datetime,
        tz: str,
        distance: float,
        margin: float,
        frames: int,
        software_version: str,
    ) -> Event:
        """Record one event: committed (and synced to disk) before this returns.

        ``seq`` is the next number of this kiosk's sequence. The person need not be in
        the roster any more: the event is a fact about the moment it was seen.
        """
        pid = _check_text(person_id, "a person id")
        if direction not in get_args(Direction):
            raise StoreValueError(f"direction must be 'in' or 'out', not {direction!r}")
        at = _utc(utc, "utc")
        _zone(tz)
        distance = _check_number(distance, "distance", allow_inf=False)
        margin = _check_number(margin, "margin", allow_inf=True)  # inf: a one-person gallery
        if isinstance(frames, bool) or not isinstance(frames, int | np.integer) or frames < 1:
            raise StoreValueError(f"frames must be a whole number of at least 1, not {frames!r}")
        version = _check_text(software_version, "a software version")
        event_id = str(uuid.uuid4())
        with self._writing("recording an event"):
            (seq,) = self._one("SELECT coalesce(max(seq), 0) + 1 FROM events")
            self._db.execute(
                f"INSERT INTO events ({_EVENT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                [
                    event_id,
                    seq,
                    self._kiosk_id,
                    pid,
                    direction,
                    _iso(at),
                    tz,
                    distance,
                    margin,
                    int(frames),
                    version,
                ],
            )
        return Event(
            event_id=event_id,
            seq=int(seq),
            kiosk_id=self._kiosk_id,
            person_id=pid,
            direction=direction,
            utc=at,
            tz=tz,
            distance=distance,
            margin=margin,
            frames=int(frames),
            software_version=version,
            acked_utc=None,
        )

    def events(
        self, *, day: date | None = None, person_id: str | None = None, tz: str | None = None
    ) -> list[Event]:
        """Events by seq, optionally of one person and of one local day.

        ``day`` is the calendar day in each event's own zone (an event at 03:00 UTC in
        America/Chicago belongs to the day before); ``tz`` reads the day in that zone
        instead.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if person_id is not None:
            clauses.append("person_id = ?")
            params.append(person_id)
        zone: ZoneInfo | None = None
        if tz is not None:
            if day is None:
                raise StoreValueError("tz= says in which zone day= is read: give day= too")
            zone = _zone(tz)
        if day is not None:
            # Every zone is within a day of UTC: fetch three UTC days, then decide exactly.
            lo, hi = _day_window(day)
            clauses.append("utc >= ? AND utc < ?")
            params += [lo, hi]
        sql = f"SELECT {_EVENT_COLUMNS} FROM events"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self._reading("reading events"):
            rows = self._all(sql + " ORDER BY seq", params)
        found = [_event(row) for row in rows]
        if day is not None:
            found = [e for e in found if e.utc.astimezone(zone or ZoneInfo(e.tz)).date() == day]
        return found

    def last_event(self, person_id: str) -> Event | None:
        """The person's most recently recorded event (highest seq), if any."""
        with self._reading("reading events"):
            rows = self._all(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE person_id = ?"
                " ORDER BY seq DESC LIMIT 1",
                [person_id],
            )
        return _event(rows[0]) if rows else None

    def pending(self, limit: int = 100) -> list[Event]:
        """The outbox: up to ``limit`` events not yet acknowledged, by seq."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        with self._reading("reading the outbox"):
            rows = self._all(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE acked_utc IS NULL ORDER BY seq LIMIT ?",
                [limit],
            )
        return [_event(row) for row in rows]

    def mark_acked(self, event_ids: Iterable[str], at_utc: datetime) -> int:
        """Mark events acknowledged by the central service; returns how many were new.

        Already acknowledged ids are skipped (an ack can be repeated). An id this store
        does not hold refuses the whole batch: it means the caller is confused.
        """
        ids = list(dict.fromkeys(event_ids))
        for event_id in ids:
            _check_text(event_id, "an event id")
        at = _iso(_utc(at_utc, "at_utc"))
        newly = 0
        with self._writing("marking events acknowledged"):
            unknown: list[str] = []
            for event_id in ids:
                cursor = self._db.execute(
                    "UPDATE events SET acked_utc = ? WHERE event_id = ? AND acked_utc IS NULL",
                    [at, event_id],
                )
                if cursor.rowcount:
                    newly += 1
                elif not self._all("SELECT 1 FROM events WHERE event_id = ?", [event_id]):
                    unknown.append(event_id)
            if unknown:
                raise StoreValueError(
                    f"{len(unknown)} of {len(ids)} event ids are not in this store "
                    f"(first: {unknown[0]!r}); nothing was marked"
                )
        return newly

    def backlog(self) -> int:
        """How many events wait for the central service's acknowledgement."""
        with self._reading("reading the outbox"):
            (count,) = self._one("SELECT count(*) FROM events WHERE acked_utc IS NULL")
        return int(count)

    # ----------------------------------------------------------------- internals
    def _now(self) -> str:
        return _iso(_utc(self._clock(), "the clock's time"))

    def _one(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
        row: tuple[Any, ...] = self._db.execute(sql, params or []).fetchone()
        return row

    def _all(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._db.execute(sql, params or []).fetchall()
        return rows

    def _find(self, pid: str) -> Person | None:
        rows = self._all(_PERSON_SELECT + " WHERE p.person_id = ?", [pid])
        return _person(rows[0]) if rows else None

    def _require(self, pid: str) -> Person:
        person = self._find(pid)
        if person is None:
            raise UnknownPersonError(f"no person {pid!r} in the roster")
        return person

    def _changed(self, action: AuditAction, pid: str, detail: str | None, now: str) -> None:
        """Within a roster change: its audit entry, and the roster version moves."""
        self._db.execute(
            "INSERT INTO audit (at_utc, actor, action, person_id, detail) VALUES (?, ?, ?, ?, ?)",
            [now, self._actor, action, pid, detail],
        )
        self._db.execute(
            "UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'roster_version'"
        )

    @contextmanager
    def _reading(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            raise StoreError(f"{self._path}: {doing} failed: {_explain(err)}") from err

    @contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        """One write transaction, taking the write lock up front; rolled back on any error."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                conn.execute("COMMIT")
            except BaseException:
                # Keep the original error if ROLLBACK fails too; SQLite rolls back anyway.
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:
            raise StoreError(f"{self._path}: {doing} failed: {_explain(err)}") from err


# --------------------------------------------------------------------- opening
def _prepare(
    db: Database, where: Path, kiosk_id: str | None, busy_timeout_s: float, now: str
) -> str:
    """Check, configure and migrate a freshly connected database; returns the kiosk id."""
    conn = db.conn
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    # The header first, before anything is written: never touch a file we do not own.
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    (tables,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    if app_id != migrations.APPLICATION_ID and (app_id != 0 or tables):
        raise StoreError(
            f"{where}: a SQLite database of some other application, not a clockface kiosk "
            "database; choose another path"
        )
    newest = migrations.latest_version(migrations.MIGRATIONS)
    if version > newest:
        raise StoreError(
            f"{where}: schema version {version} is newer than this clockface knows "
            f"({newest}); upgrade clockface, or open a copy made by this version"
        )
    db.enable_wal()
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    if mode != "wal":
        raise StoreError(f"{where}: cannot switch to WAL mode (it stays {mode!r})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA secure_delete = ON")
    migrations.migrate(db, where=str(where), applied_utc=now, steps=migrations.MIGRATIONS)
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT value FROM settings WHERE key = 'kiosk_id'").fetchone()
        if row is None:
            stored = kiosk_id or str(uuid.uuid4())
            conn.execute("INSERT INTO settings (key, value) VALUES ('kiosk_id', ?)", [stored])
        else:
            stored = row[0]
            if kiosk_id is not None and kiosk_id != stored:
                raise StoreError(
                    f"{where}: this database belongs to kiosk {stored!r}, not {kiosk_id!r}; "
                    "open it without a kiosk id, or choose another path"
                )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return str(stored)


def _create_private(path: Path) -> None:
    """Create a new database file readable by its owner only: it holds biometric
    templates. SQLite gives its -wal and -shm files the same permissions."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as err:
        raise StoreError(
            f"{path}: cannot create: {err.strerror or err}; check the path and its permissions"
        ) from err


def _explain(err: sqlite3.Error) -> str:
    """One line for a person: what SQLite said, and what to do about the common cases."""
    name = getattr(err, "sqlite_errorname", "")
    message = " ".join(str(err).split()) or type(err).__name__
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or name.startswith("SQLITE_CORRUPT_"):
        return f"not a SQLite database, or corrupt ({message}); restore it or move it aside"
    if name.startswith("SQLITE_READONLY") or name in ("SQLITE_PERM", "SQLITE_CANTOPEN"):
        return f"{message}; check that the file and its folder are writable"
    if name == "SQLITE_FULL":
        return f"{message}; free some disk space"
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return f"{message}; another process holds the database too long"
    return message


# --------------------------------------------------------------------- values
def _system_clock() -> datetime:
    return datetime.now(UTC)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise StoreValueError(f"{what} must be a non-empty string, not {value!r}")
    if value != value.strip():
        raise StoreValueError(f"{what} must not start or end with spaces: {value!r}")
    return value


def _check_team(team: object) -> str | None:
    """A team name, or None; "" clears the team."""
    if team is None or team == "":
        return None
    return _check_text(team, "a team")


def _check_number(value: object, what: str, *, allow_inf: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise StoreValueError(f"{what} must be a number, not {value!r}")
    number = float(value)
    if math.isnan(number) or number < 0 or (math.isinf(number) and not allow_inf):
        raise StoreValueError(f"{what} must be a finite number of zero or more, not {number!r}")
    return number


def _zone(tz: object) -> ZoneInfo:
    if not isinstance(tz, str) or not tz:
        raise StoreValueError(f"tz must be an IANA time zone name, not {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise StoreValueError(
            f"unknown time zone {tz!r}: give an IANA name such as 'Europe/Paris'"
        ) from err


def _utc(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise StoreValueError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value.astimezone(UTC)


def _iso(moment: datetime) -> str:
    """ISO 8601 UTC, microseconds, Z: ``2024-05-01T07:57:03.120000Z``."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _day_window(day: date) -> tuple[str, str]:
    """UTC bounds, as stored text, that hold every instant of ``day`` in any zone.

    Zones lie between UTC-12 and UTC+14, so the day before to the day after will do.
    """
    try:
        lo = _iso(datetime.combine(day - timedelta(days=1), time(), UTC))
    except OverflowError:
        lo = ""
    try:
        hi = _iso(datetime.combine(day + timedelta(days=2), time(), UTC))
    except OverflowError:
        hi = "A"  # after every digit
    return lo, hi


def _as_templates(values: npt.ArrayLike) -> npt.NDArray[Any]:
    array = np.asarray(values)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != EMBEDDING_DIM or array.shape[0] == 0:
        raise StoreValueError(
            f"templates must have shape (k, {EMBEDDING_DIM}) with k >= 1, "
            f"not {tuple(np.shape(values))}"
        )
    if array.dtype.kind not in "fiu":
        raise StoreValueError(f"templates must be numbers, not {array.dtype}")
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, refused below
        out = np.ascontiguousarray(array, dtype=_TEMPLATE_DTYPE)
    if not np.isfinite(out).all():
        raise StoreValueError("templates contain NaN or infinite values")
    return out


def _from_blobs(blobs: list[bytes]) -> FloatArray:
    if any(len(blob) != _TEMPLATE_BYTES for blob in blobs):
        raise StoreError("a stored template is not 512 bytes: the database is damaged")
    flat = np.frombuffer(b"".join(blobs), dtype=_TEMPLATE_DTYPE)
    out: FloatArray = flat.reshape(-1, EMBEDDING_DIM).astype(np.float32)  # native, writable
    return out


def _person(row: tuple[Any, ...]) -> Person:
    pid, name, team, active, count, created, updated = row
    return Person(
        person_id=pid,
        name=name,
        team=team,
        active=bool(active),
        template_count=int(count),
        created_utc=_parse_utc(created),
        updated_utc=_parse_utc(updated),
    )


def _event(row: tuple[Any, ...]) -> Event:
    (event_id, seq, kiosk_id, pid, direction, utc, tz, distance, margin, frames, version, acked) = (
        row
    )
    return Event(
        event_id=event_id,
        seq=int(seq),
        kiosk_id=kiosk_id,
        person_id=pid,
        direction=direction,
        utc=_parse_utc(utc),
        tz=tz,
        distance=float(distance),
        margin=float(margin),
        frames=int(frames),
        software_version=version,
        acked_utc=None if acked is None else _parse_utc(acked),
    )
