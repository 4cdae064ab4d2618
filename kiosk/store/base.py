"""The kiosk store's connection and what every part of it shares: opening, the lifecycle,
the transactions, the audit entries about the kiosk."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from sqlite_utils import Database

from clockface.closing import Closing
from clockface.database import explain
from clockface.errors import (
    StoreError,
    StoreValueError,
)
from clockface.template_key import (
    KeySource,
    key_source,
)
from clockface.values import (
    as_utc,
    check_text,
    iso_utc,
    os_user,
    system_clock,
)
from hardware.clock import clock_synced as _clock_synced
from kiosk.store.opening import _check_existing, _create_private, _prepare
from kiosk.store.records import DEFAULT_BUSY_TIMEOUT_S, KIOSK_SUBJECT


class StoreBase(Closing):
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
    ) -> Self:
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
            raise StoreError(f"{where}: cannot open: {explain(err)}") from err
        try:
            db = Database(conn, execute_plugins=False)
            kid, log_id = _prepare(db, where, kiosk_id, busy_timeout_s, iso_utc(now()), keys)
        except BaseException as err:
            conn.close()
            if isinstance(err, sqlite3.Error):
                raise StoreError(f"{where}: cannot open: {explain(err)}") from err
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

    # ----------------------------------------------------------------- internals
    def _probe_clock(self) -> bool | None:
        """The clock probe's answer; None (not known) if it fails: never lose an event."""
        try:
            answer = self._clock_status()
        except Exception:
            return None
        return answer if isinstance(answer, bool) else None

    def _now(self) -> str:
        return iso_utc(as_utc(self._clock(), "the clock's time"))

    def _one(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
        row: tuple[Any, ...] = self._db.execute(sql, params or []).fetchone()
        return row

    def _all(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._db.execute(sql, params or []).fetchall()
        return rows

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

    @contextmanager
    def _reading(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            raise StoreError(f"{self._path}: {doing} failed: {explain(err)}") from err

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
            raise StoreError(f"{self._path}: {doing} failed: {explain(err)}") from err
