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

Syncing with the central service (schema version 2; the agent is ``sync/agent.py``):

- Each event records whether the kiosk's clock was synchronised when it was stamped
  (``clock_synced``; asked of ``hardware.clock`` unless the caller says).
- ``pending()`` is the outbox minus the *parked* events: those the central service
  refused for good, kept with the reason until an operator sends them again
  (``unpark``). Parking writes a row beside the event, never the event itself.
- ``apply_gallery`` applies the central service's roster changes in one transaction, and
  *attaches* the kiosk to that service: from then on the roster is managed there, and the
  local roster writes (``add_person`` ... ``remove_person``, ``enroll_many``) raise
  :class:`~clockface.errors.RosterManagedError` until ``detach``.
- ``sync_state()`` holds what ``clockface sync status`` shows: the attached service, the
  gallery version, the last success and the last error.

The tamper-evident chain (schema version 4, :mod:`clockface.chain`): every event carries
``chain``, SHA-256 over the previous event's chain and its own immutable fields, computed
by ``append_event`` in the insert's transaction and immutable afterwards (trigger).
``verify_chain`` walks the whole log and names each edited, inserted or deleted row by
its seq (``clockface kiosk verify-log``); the sync agent sends the chain along, and the
central service checks it too.

Templates sealed at rest (schema version 5, :mod:`clockface.template_key`): each template
is AES-256-GCM sealed under a key kept outside the database (``key_file``, the systemd
credential ``template-key``, ``$CLOCKFACE_TEMPLATE_KEY_FILE``, else ``<db>.key`` made on
first use), bound to its person id. The key is read only when templates are, so events
and sync state work without it; a key that did not seal the templates there is refused
with one line before it reads or seals any. ``rotate_key`` re-seals all of them in one
transaction. The sync wire carries templates in plaintext over its own connection
(TLS): ``apply_gallery`` seals them here under this kiosk's key.

The privacy lifecycle (schema version 6): an enrollment carries the person's consent
record or another legal basis the operator declared (``lawful_bases``, append-only, kept
after an erasure, audited as ``consent`` / ``legal_basis``); ``deactivated_utc`` dates each
deactivation, and ``purge`` erases everyone deactivated longer than the retention period
(audited as ``retention_purge``; ``expired`` lists them without changing anything).
``rotate_key``, ``detach`` and ``unpark`` (``clockface sync detach`` and
``retry-parked``) are audited with an empty person id (:data:`KIOSK_SUBJECT`).

A store is one connection: use it from one thread; give each process its own.
"""

from __future__ import annotations

import math
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, get_args
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlite_utils import Database

from clockface import chain
from clockface.chain import ChainCheck
from clockface.closing import Closing
from clockface.errors import (
    DuplicatePersonError,
    RosterManagedError,
    StoreError,
    StoreValueError,
    UnknownPersonError,
)
from clockface.roster import (
    EnrollsOne,
    NewPerson,
    check_known_id,
    check_label,
    check_new_people,
    check_person_id,
    check_team,
    check_template_count,
    check_templates,
)
from clockface.template_key import (
    KeySource,
    TemplateKey,
    check_key_id,
    key_source,
    load_key_file,
)
from clockface.values import (
    as_utc,
    check_number,
    check_signed,
    check_text,
    day_window,
    from_blobs,
    iso_utc,
    one_line,
    os_user,
    parse_utc,
    system_clock,
    zone_info,
)
from hardware.clock import clock_synced as _clock_synced
from kiosk import migrations
from recognition.gallery import Gallery

Direction = Literal["in", "out"]
AuditAction = Literal[
    "add", "update", "deactivate", "reactivate", "add_templates", "remove", "retention_purge"
]
FloatArray = npt.NDArray[np.float32]

DEFAULT_BUSY_TIMEOUT_S = 5.0
CENTRAL_ACTOR = "central"  # the audit log's actor for changes from the central service
KIOSK_SUBJECT = ""  # the audit log's person id for a change to the kiosk, not to a person
_MAX_SYNC_ERROR = 500  # characters of the last sync error kept
_UNKNOWN_PREVIOUS = "0" * chain.CHAIN_HEX_DIGITS  # after a row with no chain (never by clockface)


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
class Event:
    """One attendance event. ``acked_utc`` is None until the central service has it;
    ``clock_synced`` says whether the kiosk's clock was synchronised when it stamped it
    (None: not known)."""

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
    clock_synced: bool | None = None  # None: recorded before the kiosk checked its clock
    chain: str | None = None  # clockface.chain: this event's link; None only outside clockface

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


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent record: the signed form's reference and the privacy notice's version."""

    reference: str
    notice_version: str
    at_utc: datetime


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """A legal basis other than consent the operator declared for keeping templates
    (``basis``, e.g. ``employment-contract``; ``note``: where it is written down)."""

    basis: str
    note: str
    at_utc: datetime


LawfulBasis = Consent | LegalBasis  # why a person's templates may be kept

# The legal bases an operator may declare (``legal_basis`` in kiosk.toml and central.toml):
# "consent" asks each person's consent record at enrollment; the others need a note
# saying where that basis is written down (GDPR Art. 6(1) and 9(2)).
LEGAL_BASES = (
    "consent",
    "employment-contract",
    "legal-obligation",
    "public-task",
    "vital-interests",
)
DEFAULT_RETENTION_DAYS = 365  # templates of deactivated people are purged after this
MAX_RETENTION_DAYS = 1095  # three years: the longest retention period accepted


@dataclass(frozen=True, slots=True)
class Expired:
    """Someone deactivated longer than the retention period: erased by a purge."""

    person_id: str
    deactivated_utc: datetime
    template_count: int


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """An event the central service refused for good, out of the outbox until retried."""

    event: Event
    parked_utc: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class SyncState:
    """Where this kiosk stands with the central service (``clockface sync status``).

    ``central_url`` is None while the roster is managed locally. ``gallery_version`` is
    the central roster version applied here; ``confirmed_version`` the one the service
    has been told about (its erasure receipt). ``clock_skew_seconds`` is the service's
    clock minus the kiosk's at the last push (positive: the kiosk is behind).
    """

    central_url: str | None
    attached_utc: datetime | None
    gallery_version: int
    confirmed_version: int
    last_success_utc: datetime | None
    last_error_utc: datetime | None
    last_error: str | None
    clock_skew_seconds: float | None
    clock_flagged: bool | None


@dataclass(frozen=True, slots=True)
class GalleryUpdate:
    """What one ``apply_gallery`` did: people added, people replaced (name, team, active
    and every template), erasures applied (including of ids not held here), people
    dropped because a full roster (``since`` 0) no longer holds them."""

    version: int
    added: int
    replaced: int
    erased: int
    dropped: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.erased or self.dropped)


@dataclass(frozen=True, slots=True)
class LogCheck:
    """What :meth:`KioskStore.verify_chain` found: the chain walk and which of the
    triggers that keep the log append-only are missing."""

    chain: ChainCheck
    missing_triggers: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return self.chain.intact and not self.missing_triggers

    def lines(self) -> list[str]:
        """What ``clockface kiosk verify-log`` prints: one line when intact, else one
        line per problem."""
        if self.intact:
            return [
                f"{self.chain.events} event{'' if self.chain.events == 1 else 's'}, "
                f"chain intact through seq {self.chain.last_seq:g}"
            ]
        out = [problem.message for problem in self.chain.problems]
        if self.missing_triggers:
            out.append(
                "the triggers that keep events append-only are missing "
                f"({', '.join(self.missing_triggers)}): the file was edited outside clockface"
            )
        return out


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
        clock_synced: bool | None = None,
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
_EXPIRED_SELECT = """
    SELECT p.person_id, p.deactivated_utc,
           (SELECT count(*) FROM templates t WHERE t.person_id = p.person_id)
    FROM people p WHERE p.active = 0 AND p.deactivated_utc < ?
    ORDER BY p.deactivated_utc, p.person_id
"""
_EVENT_COLUMNS = (
    "event_id, seq, kiosk_id, person_id, direction, utc, tz, distance, margin, frames, "
    "software_version, acked_utc, clock_synced, chain"
)
_NOT_PARKED = "NOT EXISTS (SELECT 1 FROM parked WHERE parked.event_id = events.event_id)"
_SYNC_STATE_COLUMNS = (
    "central_url, attached_utc, gallery_version, confirmed_version, last_success_utc, "
    "last_error_utc, last_error, clock_skew_seconds, clock_flagged"
)


class KioskStore(Closing, EnrollsOne[Person, LawfulBasis]):
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
        clock_status: Callable[[], bool | None] = _clock_synced,
        log_id: str = "",
        keys: KeySource | None = None,
    ) -> None:
        """Use ``KioskStore.open``: this takes a database that is already migrated."""
        self._keys = keys or key_source(None, database=path)
        self._db = db
        self._conn = db.conn
        self._path = path
        self._kiosk_id = kiosk_id
        self._actor = actor
        self._clock = clock
        self._clock_status = clock_status
        self._log_id = log_id
        self.created = False
        """Whether :meth:`open` created this database (it did not exist, or was empty)."""

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        kiosk_id: str | None = None,
        actor: str | None = None,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        clock: Callable[[], datetime] | None = None,
        clock_status: Callable[[], bool | None] | None = None,
        key_file: str | Path | None = None,
        create: bool = True,
    ) -> KioskStore:
        """Open the kiosk database at ``path``, creating it (and its folder) if needed.

        ``create=False``: the database must exist already; a missing path, a folder or
        an empty (0-byte) file is refused with :class:`StoreError` in one line, and
        nothing is created (a mistyped ``--db`` must not become a new kiosk). Only the
        commands that start a kiosk (``kiosk run``, ``enroll add``) create one, and they
        say so: :attr:`created` tells them.

        Applies any pending schema steps. ``kiosk_id`` is stored the first time (a uuid4
        if not given) and must match afterwards. ``actor`` is who the audit log names
        for changes through this store (default: the OS user). ``clock`` returns the
        current time, timezone-aware (default: the system clock). ``clock_status`` says
        whether that clock is synchronised, True / False / None for not known (default:
        :func:`hardware.clock.clock_synced`, which asks the kernel); ``append_event``
        asks it for every event unless told.

        ``key_file``: the key that seals the templates at rest (:mod:`clockface.template_key`
        gives where it is looked for when not given; the default, ``<path>.key``, is
        created on first use). It is read only when templates are read or written, so
        events and sync state need no key.
        """
        where = Path(path)
        if kiosk_id is not None:
            kiosk_id = check_text(kiosk_id, "a kiosk id")
        actor = check_text(actor if actor is not None else os_user(), "an actor")
        if not (busy_timeout_s >= 0 and math.isfinite(busy_timeout_s)):
            raise StoreValueError(f"busy_timeout_s must be zero or more, not {busy_timeout_s!r}")
        now = clock or system_clock
        try:
            existing = where.stat().st_size > 0
        except OSError:
            existing = False
        if not create:
            _check_existing(where)
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"{where}: cannot create its folder: {err.strerror or err}; "
                "check the path and its permissions"
            ) from err
        _create_private(where)
        keys = key_source(key_file, database=where)
        try:
            conn = sqlite3.connect(where, timeout=busy_timeout_s, isolation_level=None)
        except sqlite3.Error as err:
            raise StoreError(f"{where}: cannot open: {_explain(err)}") from err
        try:
            db = Database(conn, execute_plugins=False)
            kid, log_id = _prepare(db, where, kiosk_id, busy_timeout_s, iso_utc(now()), keys)
        except BaseException as err:
            conn.close()
            if isinstance(err, sqlite3.Error):
                raise StoreError(f"{where}: cannot open: {_explain(err)}") from err
            raise
        store = cls(
            db,
            path=where,
            kiosk_id=kid,
            actor=actor,
            clock=now,
            clock_status=clock_status or _clock_synced,
            log_id=log_id,
            keys=keys,
        )
        store.created = not existing
        return store

    # ----------------------------------------------------------------- lifecycle
    @property
    def path(self) -> Path:
        return self._path

    @property
    def kiosk_id(self) -> str:
        return self._kiosk_id

    @property
    def log_id(self) -> str:
        """This database's own id, generated once: the wire protocol's ``log_id``."""
        return self._log_id

    @property
    def template_key_file(self) -> Path | None:
        """Where the key that seals this database's templates is looked for."""
        return self._keys.path

    @property
    def actor(self) -> str:
        """Who the audit log names for changes made through this store."""
        return self._actor

    def close(self) -> None:
        """Close the database; closing twice is harmless."""
        self._conn.close()

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
        pid = check_person_id(person_id)
        name = check_label(name, "a name")
        team = check_team(team)
        now = self._now()
        with self._roster_writing("adding a person"):
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
        pid = check_known_id(person_id)
        if name is None and team is None:
            raise StoreValueError("nothing to update: give name= or team=")
        new_name = None if name is None else check_label(name, "a name")
        new_team = None if team is None else check_team(team)
        now = self._now()
        with self._roster_writing("updating a person"):
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
        pid = check_known_id(person_id)
        if not isinstance(active, bool):
            raise StoreValueError(f"active must be True or False, not {active!r}")
        now = self._now()
        with self._roster_writing("changing whether a person is active"):
            old = self._require(pid)
            if old.active == active:
                return old
            self._db.execute(
                "UPDATE people SET active = ?, updated_utc = ?, deactivated_utc = ?"
                " WHERE person_id = ?",
                [int(active), now, None if active else now, pid],
            )
            self._changed("reactivate" if active else "deactivate", pid, None, now)
            person = self._require(pid)
        return person

    def add_templates(self, person_id: str, embeddings: npt.ArrayLike) -> int:
        """Store face templates (shape (128,) or (k, 128)) as float32; returns how many."""
        pid = check_known_id(person_id)
        rows = check_templates(embeddings)
        now = self._now()
        with self._roster_writing("adding templates"):
            check_template_count(pid, self._require(pid).template_count + len(rows))
            key = self._template_key()
            self._conn.executemany(
                "INSERT INTO templates (person_id, embedding, created_utc) VALUES (?, ?, ?)",
                ((pid, key.seal(pid, row.tobytes()), now) for row in rows),
            )
            self._changed("add_templates", pid, f"{len(rows)} added", now)
        return len(rows)

    def enroll_many(
        self,
        people: Iterable[NewPerson],
        *,
        replace: bool = False,
        consents: Mapping[str, LawfulBasis] | None = None,
    ) -> list[Person]:
        """Add people with their templates in one transaction: all of them or none.

        An id the roster already holds raises DuplicatePersonError, writing nothing,
        unless ``replace``: then that person is erased first (templates included, with a
        ``remove`` audit entry) and added anew. Each addition is audited as ``add``, then
        ``add_templates`` (when there are templates) and ``deactivate`` (when inactive).
        ``consents``: each person's consent record or other legal basis, by person id,
        stored with them (audited as ``consent`` or ``legal_basis``).
        """
        checked = check_new_people(people)
        ids = [person.person_id for person in checked]
        for pid, given in (consents or {}).items():
            if pid not in ids:
                raise StoreValueError(f"a consent for {pid!r}, who is not being enrolled")
            _check_lawful_basis(given)
        now = self._now()
        erased = False
        with self._roster_writing("enrolling people"):
            for pid, name, team, rows, active in (
                (p.person_id, p.name, p.team, p.templates, p.active) for p in checked
            ):
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
                    "INSERT INTO people (person_id, name, team, active, created_utc, updated_utc,"
                    " deactivated_utc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [pid, name, team, int(active), now, now, None if active else now],
                )
                self._changed("add", pid, None, now)
                if len(rows):
                    key = self._template_key()
                    self._conn.executemany(
                        "INSERT INTO templates (person_id, embedding, created_utc)"
                        " VALUES (?, ?, ?)",
                        ((pid, key.seal(pid, row.tobytes()), now) for row in rows),
                    )
                    self._changed("add_templates", pid, f"{len(rows)} added", now)
                if not active:
                    self._changed("deactivate", pid, None, now)
                recorded = (consents or {}).get(pid)
                if recorded is not None:
                    self._insert_lawful_basis(pid, recorded, now)
            added = [self._require(pid) for pid in ids]
        if erased:
            with self._reading("checkpointing after an erasure"):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return added

    def remove_person(self, person_id: str) -> int:
        """Erase someone: the person and every template, leaving an audit entry with the id.

        Returns how many templates were erased. Their attendance events stay.
        """
        pid = check_known_id(person_id)
        now = self._now()
        with self._roster_writing("erasing a person"):
            count = self._require(pid).template_count
            self._db.execute("DELETE FROM people WHERE person_id = ?", [pid])
            self._changed("remove", pid, f"erased with {count} templates", now)
        # Move the erased pages out of the write-ahead log into the (zeroed) main file.
        # Best effort: a reader elsewhere may hold the log; it is truncated next time.
        with self._reading("checkpointing after an erasure"):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return count

    def expired(self, retention_days: int, now: datetime | None = None) -> list[Expired]:
        """The people deactivated more than ``retention_days`` before ``now`` (default:
        the store's clock), longest deactivated first: what :meth:`purge` erases."""
        cutoff = iso_utc(self._cutoff(retention_days, now))
        with self._reading("reading who is past the retention period"):
            rows = self._all(_EXPIRED_SELECT, [cutoff])
        return [Expired(pid, parse_utc(at), int(count)) for pid, at, count in rows]

    def purge(self, retention_days: int, now: datetime | None = None) -> list[Expired]:
        """Erase (as :meth:`remove_person`: the person and every template) everyone
        deactivated more than ``retention_days`` before ``now``, in one transaction, each
        with a ``retention_purge`` audit entry. Returns who was erased."""
        cutoff = iso_utc(self._cutoff(retention_days, now))
        stamp = self._now()
        with self._roster_writing("purging people past the retention period"):
            rows = self._all(_EXPIRED_SELECT, [cutoff])
            gone = [Expired(pid, parse_utc(at), int(count)) for pid, at, count in rows]
            for person in gone:
                self._db.execute("DELETE FROM people WHERE person_id = ?", [person.person_id])
                self._changed(
                    "retention_purge",
                    person.person_id,
                    f"erased with {person.template_count} templates, deactivated "
                    f"{iso_utc(person.deactivated_utc)}, retention {retention_days} days",
                    stamp,
                )
        if gone:
            with self._reading("checkpointing after an erasure"):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return gone

    def _cutoff(self, retention_days: int, now: datetime | None) -> datetime:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise StoreValueError(f"retention_days must be a whole number, not {retention_days!r}")
        if retention_days < 1:
            raise StoreValueError(f"retention_days must be 1 or more, not {retention_days}")
        at = as_utc(now if now is not None else self._clock(), "now")
        return at - timedelta(days=retention_days)

    def get_person(self, person_id: str) -> Person:
        pid = check_known_id(person_id)
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
        pid = check_known_id(person_id)
        with self._reading("reading templates"):
            self._require(pid)
            rows = self._all(
                "SELECT embedding FROM templates WHERE person_id = ? ORDER BY id", [pid]
            )
            key = self._template_key() if rows else None
        if key is None:
            return from_blobs([])
        return from_blobs([key.open(pid, blob) for (blob,) in rows])

    def load_gallery(self, *, threshold: float, margin: float) -> Gallery:
        """A Gallery of the templates of the active people (read in one statement)."""
        gallery = Gallery(threshold=threshold, margin=margin)
        with self._reading("loading the gallery"):
            rows = self._all(
                "SELECT t.person_id, t.embedding FROM templates t"
                " JOIN people p ON p.person_id = t.person_id"
                " WHERE p.active = 1 ORDER BY t.id"
            )
            key = self._template_key() if rows else None
        if key is not None:
            gallery.add_many([pid for pid, _ in rows], from_blobs(key.open_many(rows)))
        return gallery

    def record_consent(self, person_id: str, consent: LawfulBasis) -> None:
        """Record the consent (or another legal basis) of someone already enrolled, such
        as a person enrolled before one was asked; audited."""
        pid = check_known_id(person_id)
        _check_lawful_basis(consent)
        now = self._now()
        with self._roster_writing("recording consent"):
            self._require(pid)
            self._insert_lawful_basis(pid, consent, now)

    def lawful_bases(self, person_id: str) -> tuple[LawfulBasis, ...]:
        """A person id's consent records and other legal bases, oldest first (kept after
        an erasure)."""
        pid = check_known_id(person_id)
        with self._reading("reading consent records"):
            rows = self._all(
                "SELECT basis, reference, notice_version, note, at_utc FROM lawful_bases"
                " WHERE person_id = ? ORDER BY id",
                [pid],
            )
        return tuple(_lawful_basis(row) for row in rows)

    def without_lawful_basis(self) -> set[str]:
        """The ids of the people in the roster with no consent record or other legal basis
        (people enrolled before they were recorded)."""
        with self._reading("reading consent records"):
            rows = self._all(
                "SELECT person_id FROM people p WHERE NOT EXISTS"
                " (SELECT 1 FROM lawful_bases b WHERE b.person_id = p.person_id)"
            )
        return {pid for (pid,) in rows}

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
                at_utc=parse_utc(row[1]),
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
        clock_synced: bool | None = None,
    ) -> Event:
        """Record one event: committed (and synced to disk) before this returns.

        ``seq`` is the next number of this kiosk's sequence. The person need not be in
        the roster any more: the event is a fact about the moment it was seen.
        ``clock_synced`` None asks the store's clock probe; a probe that fails records
        "not known" (None) rather than losing the event.
        """
        pid = check_text(person_id, "a person id")
        if direction not in get_args(Direction):
            raise StoreValueError(f"direction must be 'in' or 'out', not {direction!r}")
        at = as_utc(utc, "utc")
        zone_info(tz)
        distance = check_number(distance, "distance", allow_inf=False)
        margin = check_number(margin, "margin", allow_inf=True)  # inf: a one-person gallery
        if isinstance(frames, bool) or not isinstance(frames, int | np.integer) or frames < 1:
            raise StoreValueError(f"frames must be a whole number of at least 1, not {frames!r}")
        version = check_text(software_version, "a software version")
        if clock_synced is not None and not isinstance(clock_synced, bool):
            raise StoreValueError(f"clock_synced must be True, False or None, not {clock_synced!r}")
        synced = self._probe_clock() if clock_synced is None else clock_synced
        event_id = str(uuid.uuid4())
        with self._writing("recording an event"):
            last = self._all("SELECT seq, chain FROM events ORDER BY seq DESC LIMIT 1")
            seq, previous = (1, chain.genesis(self._log_id)) if not last else last[0]
            if last:
                seq = int(seq) + 1
                if not chain.is_chain(previous):
                    # The log was written outside clockface (verify-log names the row):
                    # still record the event, linked from a known value, never lose it.
                    previous = _UNKNOWN_PREVIOUS
            fields = chain.EventFields(
                event_id=event_id,
                log_id=self._log_id,
                seq=seq,
                kiosk_id=self._kiosk_id,
                person_id=pid,
                direction=direction,
                utc=iso_utc(at),
                tz=tz,
                distance=distance,
                margin=margin,
                frames=int(frames),
                software_version=version,
                clock_synced=synced,
            )
            link = chain.link(previous, fields)
            self._db.execute(
                f"INSERT INTO events ({_EVENT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                [
                    event_id,
                    seq,
                    self._kiosk_id,
                    pid,
                    direction,
                    fields.utc,
                    tz,
                    distance,
                    margin,
                    int(frames),
                    version,
                    None if synced is None else int(synced),
                    link,
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
            clock_synced=synced,
            chain=link,
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
            zone = zone_info(tz)
        if day is not None:
            # Every zone is within a day of UTC: fetch three UTC days, then decide exactly.
            lo, hi = day_window(day)
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
        """The outbox: up to ``limit`` events not yet acknowledged nor parked, by seq."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        with self._reading("reading the outbox"):
            rows = self._all(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE acked_utc IS NULL AND {_NOT_PARKED}"
                " ORDER BY seq LIMIT ?",
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
            check_text(event_id, "an event id")
        at = iso_utc(as_utc(at_utc, "at_utc"))
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
                    self._db.execute("DELETE FROM parked WHERE event_id = ?", [event_id])
                elif not self._all("SELECT 1 FROM events WHERE event_id = ?", [event_id]):
                    unknown.append(event_id)
            if unknown:
                raise StoreValueError(
                    f"{len(unknown)} of {len(ids)} event ids are not in this store "
                    f"(first: {unknown[0]!r}); nothing was marked"
                )
        return newly

    def backlog(self) -> int:
        """How many events wait to be sent to the central service (parked ones aside:
        :meth:`parked_count`)."""
        with self._reading("reading the outbox"):
            (count,) = self._one(
                f"SELECT count(*) FROM events WHERE acked_utc IS NULL AND {_NOT_PARKED}"
            )
        return int(count)

    def verify_chain(self) -> LogCheck:
        """Walk the whole event log and check its chain (:mod:`clockface.chain`).

        Reads the rows as they are in the file, whoever wrote them, in seq order, and
        names each problem at its seq: an edited event (its chain no longer matches), an
        inserted or deleted one (a gap or a seq out of place, and the next event's chain
        does not follow). Also says whether the triggers that keep the log append-only
        are still there (someone who edits the file by hand drops them first).
        """
        with self._reading("checking the event log"):
            (log_id,) = self._one("SELECT value FROM settings WHERE key = 'log_id'")
            present = {
                name
                for (name,) in self._all(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
                )
            }
            cursor = self._conn.execute(
                "SELECT event_id, seq, kiosk_id, person_id, direction, utc, tz, distance,"
                " margin, frames, software_version, clock_synced, chain FROM events ORDER BY seq"
            )
            check = chain.verify_events(str(log_id), (_chained_row(row, log_id) for row in cursor))
        missing = tuple(name for name in migrations.EVENT_TRIGGERS if name not in present)
        return LogCheck(check, missing)

    # ----------------------------------------------------------------- sync
    def acked_through(self) -> int:
        """The highest seq up to which every event is acknowledged (0: none yet).

        The central service's ``high_water_seq`` for this log should not be below it.
        """
        with self._reading("reading the outbox"):
            (first_open,) = self._one("SELECT min(seq) FROM events WHERE acked_utc IS NULL")
            if first_open is not None:
                return int(first_open) - 1
            (last,) = self._one("SELECT coalesce(max(seq), 0) FROM events")
        return int(last)

    def park(self, reasons: Mapping[str, str], at_utc: datetime | None = None) -> int:
        """Take events out of the outbox with the reason the central service gave.

        ``reasons`` maps event ids to one line each. Returns how many were newly parked:
        an event already parked keeps its first reason, an acknowledged one is skipped.
        An id this store does not hold refuses the whole call. The events themselves are
        not touched.
        """
        checked = {
            check_text(event_id, "an event id"): one_line(reason, "a reason")
            for event_id, reason in reasons.items()
        }
        at = self._now() if at_utc is None else iso_utc(as_utc(at_utc, "at_utc"))
        newly = 0
        with self._writing("parking events"):
            for event_id, reason in checked.items():
                row = self._all("SELECT acked_utc FROM events WHERE event_id = ?", [event_id])
                if not row:
                    raise StoreValueError(
                        f"event {event_id!r} is not in this store; nothing was parked"
                    )
                if row[0][0] is not None:
                    continue
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO parked (event_id, parked_utc, reason) VALUES (?, ?, ?)",
                    [event_id, at, reason],
                )
                newly += cursor.rowcount
        return newly

    def parked(self, limit: int | None = None) -> list[ParkedEvent]:
        """The parked events, by seq (the first ``limit`` of them, if given)."""
        sql = (
            f"SELECT {', '.join('e.' + c.strip() for c in _EVENT_COLUMNS.split(','))},"
            " p.parked_utc, p.reason FROM parked p JOIN events e ON e.event_id = p.event_id"
            " ORDER BY e.seq"
        )
        params: list[Any] = []
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise StoreValueError(f"limit must be a whole number of at least 1, not {limit!r}")
            sql += " LIMIT ?"
            params.append(limit)
        with self._reading("reading the parked events"):
            rows = self._all(sql, params)
        return [
            ParkedEvent(event=_event(row[:-2]), parked_utc=parse_utc(row[-2]), reason=row[-1])
            for row in rows
        ]

    def parked_count(self) -> int:
        with self._reading("reading the parked events"):
            (count,) = self._one("SELECT count(*) FROM parked")
        return int(count)

    def unpark(self, event_ids: Iterable[str] | None = None) -> int:
        """Put parked events (all of them, by default) back in the outbox; returns how
        many. Audited (``retry_parked``) when any were."""
        with self._writing("un-parking events"):
            if event_ids is None:
                count = int(self._db.execute("DELETE FROM parked").rowcount)
            else:
                count = 0
                for event_id in dict.fromkeys(event_ids):
                    cursor = self._db.execute("DELETE FROM parked WHERE event_id = ?", [event_id])
                    count += cursor.rowcount
            if count:
                self._audit_kiosk(
                    "retry_parked", f"{count} event{'' if count == 1 else 's'} back in the outbox"
                )
        return count

    def sync_state(self) -> SyncState:
        with self._reading("reading the sync state"):
            row = self._one(f"SELECT {_SYNC_STATE_COLUMNS} FROM sync_state WHERE id = 1")
        (url, attached, version, confirmed, success, error_at, error, skew, flagged) = row
        return SyncState(
            central_url=url,
            attached_utc=None if attached is None else parse_utc(attached),
            gallery_version=int(version),
            confirmed_version=int(confirmed),
            last_success_utc=None if success is None else parse_utc(success),
            last_error_utc=None if error_at is None else parse_utc(error_at),
            last_error=error,
            clock_skew_seconds=None if skew is None else float(skew),
            clock_flagged=None if flagged is None else bool(flagged),
        )

    def managed_by(self) -> str | None:
        """The URL of the central service managing this kiosk's roster; None: managed here."""
        with self._reading("reading the sync state"):
            (url,) = self._one("SELECT central_url FROM sync_state WHERE id = 1")
        return None if url is None else str(url)

    def attach(self, central_url: str) -> None:
        """Hand the roster to the central service at ``central_url``: local roster writes
        are refused from now on (:meth:`detach` undoes it). Attaching again to the same
        URL changes nothing; to another is refused."""
        url = check_text(central_url, "a central service URL")
        with self._writing("attaching to the central service"):
            self._attach(url, self._now())

    def detach(self) -> str | None:
        """Return the roster to local management; returns the URL it was attached to.

        The people and templates stay as they are; the gallery version goes back to 0, so
        attaching again fetches the central service's whole roster, which then replaces
        the local one.
        """
        with self._writing("detaching from the central service"):
            (url,) = self._one("SELECT central_url FROM sync_state WHERE id = 1")
            self._db.execute(
                "UPDATE sync_state SET central_url = NULL, attached_utc = NULL,"
                " gallery_version = 0, confirmed_version = 0 WHERE id = 1"
            )
            if url is not None:
                self._audit_kiosk("sync_detach", f"from {url}")
        return None if url is None else str(url)

    def record_sync_success(self, at_utc: datetime | None = None) -> None:
        """A sync round went through: everything pending was sent, the roster is current."""
        at = self._now() if at_utc is None else iso_utc(as_utc(at_utc, "at_utc"))
        with self._writing("recording a sync success"):
            self._db.execute("UPDATE sync_state SET last_success_utc = ? WHERE id = 1", [at])

    def record_sync_error(self, message: str, at_utc: datetime | None = None) -> None:
        """A sync round (or one try of it) failed: keep one line saying why."""
        line = one_line(message, "a sync error")[:_MAX_SYNC_ERROR]
        at = self._now() if at_utc is None else iso_utc(as_utc(at_utc, "at_utc"))
        with self._writing("recording a sync error"):
            self._db.execute(
                "UPDATE sync_state SET last_error_utc = ?, last_error = ? WHERE id = 1",
                [at, line],
            )

    def record_clock_skew(self, seconds: float, flagged: bool) -> None:
        """What the central service said of this kiosk's clock at the last push."""
        skew = check_signed(seconds, "the clock skew")
        with self._writing("recording the clock skew"):
            self._db.execute(
                "UPDATE sync_state SET clock_skew_seconds = ?, clock_flagged = ? WHERE id = 1",
                [skew, int(bool(flagged))],
            )

    def confirm_gallery(self, version: int) -> None:
        """The central service has been told this kiosk holds ``version`` (its erasure
        receipt); a later round need not tell it again."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise StoreValueError(f"a gallery version is a whole number >= 0, not {version!r}")
        with self._writing("recording the confirmed gallery version"):
            self._db.execute(
                "UPDATE sync_state SET confirmed_version = ? WHERE id = 1 AND gallery_version >= ?",
                [version, version],
            )

    def apply_gallery(self, plan: GalleryPlan, *, central_url: str) -> GalleryUpdate:
        """Apply the central service's roster changes, all pages, in one transaction.

        ``plan`` holds the answers to ``GET /v1/gallery`` checked and decoded by
        :func:`sync.roster_delta.plan_gallery` (the pages in order: the first starts at
        the version this kiosk holds, each next one where the previous ended, the last
        says no more follow). Erasures and person states are applied in version order: an
        erasure removes the person and every template (audited as ``remove``); a person
        state replaces name, team, active and all templates (``add`` or ``update``). The
        audit actor is ``central``. A delta from version 0 is the whole central roster:
        people held here that it does not hold are removed too (``dropped``).

        The kiosk is attached to ``central_url`` (refused if attached to another), the
        applied version stored, and the roster version moves when anything changed, so a
        running kiosk reloads its gallery. Anything invalid: nothing is applied and a
        one-line StoreValueError says what.
        """
        url = check_text(central_url, "a central service URL")
        now = self._now()
        added = replaced = erased = dropped = 0
        with self._writing("applying the central roster"):
            (held,) = self._one("SELECT gallery_version FROM sync_state WHERE id = 1")
            # A delta from 0 is the whole roster: it replaces any version held (the
            # service's database was restored from an older backup, say).
            if plan.since not in (0, int(held)):
                raise StoreValueError(
                    f"the roster changes start after version {plan.since}, but this kiosk "
                    f"holds version {held}; nothing was applied"
                )
            self._attach(url, now)
            for step in plan.steps:
                old = self._find(step.person_id)
                if isinstance(step, GalleryErase):
                    if old is not None:
                        self._db.execute("DELETE FROM people WHERE person_id = ?", [step.person_id])
                        detail = (
                            f"erased by the central service (version {step.version}) "
                            f"with {old.template_count} templates"
                        )
                    else:
                        detail = f"erased by the central service (version {step.version}); not held"
                    self._changed("remove", step.person_id, detail, now, actor=CENTRAL_ACTOR)
                    erased += 1
                    continue
                if old is None:
                    self._db.execute(
                        "INSERT INTO people (person_id, name, team, active, created_utc,"
                        " updated_utc) VALUES (?, ?, ?, ?, ?, ?)",
                        [step.person_id, step.name, step.team, int(step.active), now, now],
                    )
                    action: AuditAction = "add"
                    added += 1
                else:
                    self._db.execute(
                        "UPDATE people SET name = ?, team = ?, active = ?, updated_utc = ?"
                        " WHERE person_id = ?",
                        [step.name, step.team, int(step.active), now, step.person_id],
                    )
                    self._db.execute("DELETE FROM templates WHERE person_id = ?", [step.person_id])
                    action = "update"
                    replaced += 1
                key = self._template_key()
                self._conn.executemany(
                    "INSERT INTO templates (person_id, embedding, created_utc) VALUES (?, ?, ?)",
                    (
                        (step.person_id, key.seal(step.person_id, row.tobytes()), now)
                        for row in step.templates
                    ),
                )
                self._changed(
                    action,
                    step.person_id,
                    f"from the central service (version {step.version}): "
                    f"{len(step.templates)} templates, {'active' if step.active else 'inactive'}",
                    now,
                    actor=CENTRAL_ACTOR,
                )
            if plan.since == 0:
                for (pid,) in self._all("SELECT person_id FROM people ORDER BY person_id"):
                    if pid in plan.kept:
                        continue
                    count = self._require(pid).template_count
                    self._db.execute("DELETE FROM people WHERE person_id = ?", [pid])
                    self._changed(
                        "remove",
                        pid,
                        f"not in the central roster (version {plan.version}): "
                        f"erased with {count} templates",
                        now,
                        actor=CENTRAL_ACTOR,
                    )
                    dropped += 1
            self._db.execute(
                "UPDATE sync_state SET gallery_version = ? WHERE id = 1", [plan.version]
            )
        update = GalleryUpdate(plan.version, added, replaced, erased, dropped)
        if update.changed:
            # Replaced and erased templates: out of the write-ahead log, as remove_person.
            with self._reading("checkpointing after an erasure"):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return update

    # ----------------------------------------------------------------- internals
    def _probe_clock(self) -> bool | None:
        """The clock probe's answer; None (not known) if it fails: never lose an event."""
        try:
            answer = self._clock_status()
        except Exception:
            return None
        return answer if isinstance(answer, bool) else None

    def _attach(self, url: str, now: str) -> None:
        """Within a write: attach to ``url``, or refuse if attached to another."""
        (held,) = self._one("SELECT central_url FROM sync_state WHERE id = 1")
        if held is None:
            self._db.execute(
                "UPDATE sync_state SET central_url = ?, attached_utc = ? WHERE id = 1", [url, now]
            )
        elif held != url:
            raise StoreError(
                f"{self._path}: this kiosk is attached to the central service at {held}, "
                f"not {url}; run `clockface sync detach` first to change services"
            )

    def rotate_key(self, new_key_file: str | Path) -> int:
        """Re-seal every template under the key in ``new_key_file`` in one transaction
        (any failure changes nothing); returns how many. The old key file is left as it
        is, for the operator to destroy; open the store with the new key from now on."""
        new = load_key_file(new_key_file)
        with self._writing("rotating the template key"):
            rows = self._all("SELECT id, person_id, embedding FROM templates ORDER BY id")
            old = self._template_key() if rows else None
            resealed = [
                (new.seal(pid, old.open(pid, blob)), i) for i, pid, blob in rows if old is not None
            ]
            self._conn.executemany("UPDATE templates SET embedding = ? WHERE id = ?", resealed)
            self._db.execute(
                "INSERT INTO settings (key, value) VALUES ('template_key_id', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [new.key_id.hex()],
            )
            self._audit_kiosk(
                "rotate_template_key",
                f"key id {new.key_id.hex()}, {len(resealed)} templates resealed",
            )
        self._keys = KeySource(new.path, create_if_missing=False)
        with self._reading("checkpointing after a key rotation"):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return len(resealed)

    def _template_key(self) -> TemplateKey:
        """The key, within a read or a transaction; a missing default key is created only
        while the database holds no templates."""
        held = self._all("SELECT substr(embedding, 2, 8) FROM templates LIMIT 1")
        key = self._keys.get(may_create=not held)
        if held:
            check_key_id(key, bytes(held[0][0]))
        return key

    @contextmanager
    def _roster_writing(self, doing: str) -> Iterator[None]:
        """A local roster change: refused while the central service manages the roster."""
        with self._writing(doing):
            (url,) = self._one("SELECT central_url FROM sync_state WHERE id = 1")
            if url is not None:
                raise RosterManagedError(
                    f"this kiosk's roster is managed by the central service at {url}: "
                    "enroll there (or `clockface sync detach` to manage it here)"
                )
            yield

    def _now(self) -> str:
        return iso_utc(as_utc(self._clock(), "the clock's time"))

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

    def _changed(
        self,
        action: AuditAction,
        pid: str,
        detail: str | None,
        now: str,
        *,
        actor: str | None = None,
    ) -> None:
        """Within a roster change: its audit entry, and the roster version moves."""
        self._db.execute(
            "INSERT INTO audit (at_utc, actor, action, person_id, detail) VALUES (?, ?, ?, ?, ?)",
            [now, actor or self._actor, action, pid, detail],
        )
        self._db.execute(
            "UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'roster_version'"
        )

    def audit_read(self, action: str, detail: str) -> None:
        """An audit entry for a read that hands out biometric data in bulk (a roster
        export with every template): who, when, how much."""
        with self._writing("auditing a read"):
            self._audit_kiosk(action, detail)

    def _audit_kiosk(self, action: str, detail: str) -> None:
        """Within a write: an audit entry about the kiosk, not one person (its person id
        is empty, :data:`KIOSK_SUBJECT`)."""
        self._db.execute(
            "INSERT INTO audit (at_utc, actor, action, person_id, detail) VALUES (?, ?, ?, ?, ?)",
            [self._now(), self._actor, action, KIOSK_SUBJECT, detail],
        )

    def _insert_lawful_basis(self, pid: str, given: LawfulBasis, now: str) -> None:
        """Within a roster change: store a consent record or legal basis, audited."""
        if isinstance(given, Consent):
            values = ["consent", given.reference, given.notice_version, None]
            action, detail = "consent", f"notice {given.notice_version}"
        else:
            values = [given.basis, None, None, given.note]
            action, detail = "legal_basis", given.basis
        self._db.execute(
            "INSERT INTO lawful_bases (person_id, basis, reference, notice_version, note, at_utc)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [pid, *values, iso_utc(given.at_utc)],
        )
        self._db.execute(
            "INSERT INTO audit (at_utc, actor, action, person_id, detail) VALUES (?, ?, ?, ?, ?)",
            [now, self._actor, action, pid, detail],
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


# --------------------------------------------------------------------- central roster
@dataclass(frozen=True, slots=True)
class GalleryErase:
    """The central service erased ``person_id`` at ``version``."""

    person_id: str
    version: int


@dataclass(frozen=True, slots=True)
class GalleryPut:
    """A person's whole state at ``version``: name, team, active and every template."""

    person_id: str
    name: str
    team: str | None
    active: bool
    templates: npt.NDArray[Any]  # (k, 128) little-endian float32, k >= 0
    version: int


@dataclass(frozen=True, slots=True)
class GalleryPlan:
    """The central roster's changes from ``since`` to ``version``, checked and decoded
    (by :func:`sync.roster_delta.plan_gallery` from the wire format's pages), in version
    order: what :meth:`KioskStore.apply_gallery` applies."""

    since: int
    version: int
    steps: list[GalleryErase | GalleryPut]  # in version order
    kept: frozenset[str]  # the person ids held once every step is applied


# --------------------------------------------------------------------- opening
def _prepare(
    db: Database,
    where: Path,
    kiosk_id: str | None,
    busy_timeout_s: float,
    now: str,
    keys: KeySource,
) -> tuple[str, str]:
    """Check, configure and migrate a freshly connected database; returns the kiosk id
    and the log id."""
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
    migrations.migrate(
        db, where=str(where), applied_utc=now, steps=migrations.with_template_key(keys.get)
    )
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
        (log_id,) = conn.execute("SELECT value FROM settings WHERE key = 'log_id'").fetchone()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return str(stored), str(log_id)


def _check_existing(where: Path) -> None:
    """Refuse, in one line, a path that holds no kiosk database yet."""
    if where.is_dir():
        raise StoreError(f"{where} is a folder, not a kiosk database: check --db")
    try:
        size = where.stat().st_size
    except FileNotFoundError:
        raise StoreError(f"no kiosk database at {where}: check --db") from None
    except OSError as err:
        raise StoreError(f"{where}: cannot read: {err.strerror or err}") from err
    if size == 0:
        raise StoreError(f"{where} is an empty file, not a kiosk database: check --db")


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


def _check_lawful_basis(given: object) -> None:
    if isinstance(given, Consent):
        check_text(given.reference, "a consent reference")
        check_text(given.notice_version, "a notice version")
    elif isinstance(given, LegalBasis):
        check_text(given.basis, "a legal basis")
        check_text(given.note, "a legal basis note")
        if given.basis == "consent":
            raise StoreValueError("a legal basis of consent is a Consent record")
    else:
        raise StoreValueError(
            f"a consent must be a Consent or LegalBasis, not {type(given).__name__}"
        )
    as_utc(given.at_utc, "the consent's time")


def _lawful_basis(row: tuple[Any, ...]) -> LawfulBasis:
    basis, reference, notice_version, note, at = row
    if basis == "consent":
        return Consent(reference, notice_version, parse_utc(at))
    return LegalBasis(basis, note, parse_utc(at))


def _person(row: tuple[Any, ...]) -> Person:
    pid, name, team, active, count, created, updated = row
    return Person(
        person_id=pid,
        name=name,
        team=team,
        active=bool(active),
        template_count=int(count),
        created_utc=parse_utc(created),
        updated_utc=parse_utc(updated),
    )


def _event(row: tuple[Any, ...]) -> Event:
    (event_id, seq, kiosk_id, pid, direction, utc, tz, distance, margin, frames, version, acked) = (
        row[:12]
    )
    synced, link = row[12], row[13]
    return Event(
        event_id=event_id,
        seq=int(seq),
        kiosk_id=kiosk_id,
        person_id=pid,
        direction=direction,
        utc=parse_utc(utc),
        tz=tz,
        distance=float(distance),
        margin=float(margin),
        frames=int(frames),
        software_version=version,
        acked_utc=None if acked is None else parse_utc(acked),
        clock_synced=None if synced is None else bool(synced),
        chain=link,
    )


def _chained_row(row: tuple[Any, ...], log_id: str) -> tuple[chain.EventFields, str | None]:
    """A row of the events table as the chain covers it, values as stored."""
    (event_id, seq, kiosk_id, pid, direction, utc, tz, distance, margin, frames) = row[:10]
    version, synced, link = row[10:]
    return (
        chain.EventFields(
            event_id=event_id,
            log_id=log_id,
            seq=seq,
            kiosk_id=kiosk_id,
            person_id=pid,
            direction=direction,
            utc=utc,
            tz=tz,
            distance=distance,
            margin=margin,
            frames=frames,
            software_version=version,
            clock_synced=None if synced is None else bool(synced),
        ),
        link,
    )
