"""The central attendance database: sites, kiosks, tokens, the roster, erasures, events.

One code path over SQLAlchemy Core for SQLite (a file, the default: zero set-up) and
PostgreSQL (``postgresql+psycopg://...``, or ``postgresql://...``, rewritten). Schema in
:mod:`central.migrations`, applied when the store opens.

:class:`CentralStore` is made of parts, a module each (import from here, not from them):

- :mod:`central.store_base`: the internals every part shares, and how transactions run.
- :mod:`central.store_access`: sites, kiosks and their tokens, admins, ``authenticate``.
- :mod:`central.store_ingest`: events from kiosks, the chain check, events read back.
- :mod:`central.store_roster`: people, templates, consent, erasure, retention; versions.
- :mod:`central.store_gallery`: the roster as kiosks receive it, and their receipts.
- :mod:`central.store_records`: the records the store returns.
- :mod:`central.store_engine`: the ``database`` argument, the engines, error messages.
- :mod:`central.store_values`: the checks of the values the store is given.

This module opens the store (creating and migrating the database) and holds its
lifecycle and ``rotate_key``.

- **Templates sealed at rest** (schema version 4, :mod:`clockface.template_key`):
  AES-256-GCM under a key outside the database (``key_file`` / the config's
  ``template_key_file``, the systemd credential ``template-key``,
  ``$CLOCKFACE_TEMPLATE_KEY_FILE``, else ``<file>.key`` beside a SQLite database, made on
  first use; PostgreSQL has no default). Read only when templates are, so events and
  reports need no key. The gallery sent to kiosks is opened by the store
  (:mod:`central.store_gallery`) and travels as plaintext base64 over the sync
  connection (its own trust boundary, TLS); each kiosk seals it under its own key.
  ``rotate_key`` re-seals every template in one transaction.
- **Errors.** Every database error comes out as one line: ``CentralStoreError`` (naming
  the database, never a password); refused values are ``CentralValueError`` (or the
  roster's ``StoreValueError`` / ``DuplicatePersonError`` / ``UnknownPersonError``).

The store is safe to share between threads (the HTTP server's threadpool): each call
takes a connection from the engine's pool.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from central import migrations
from central.store_access import AccessMixin
from central.store_engine import (
    DEFAULT_BUSY_TIMEOUT_S,
    DEFAULT_CLOCK_SKEW_SECONDS,
    DatabaseTarget,
    _create_private,
    _postgres_engine,
    _sqlite_engine,
    resolve_database,
)
from central.store_gallery import GalleryMixin
from central.store_ingest import IngestMixin
from central.store_records import (
    AdminInfo,
    AuditRecord,
    Erasure,
    ErasureStatus,
    EventRecord,
    IssuedKiosk,
    KioskInfo,
    LogChain,
    PersonRecord,
    Principal,
    Site,
    StoredEvent,
)
from central.store_roster import RosterMixin
from central.store_values import system_clock
from clockface.closing import Closing
from clockface.consent import Consent
from clockface.errors import CentralStoreError, CentralValueError
from clockface.template_key import KeySource, check_key_id, key_source, load_key_file
from clockface.values import as_utc, check_text, os_user

READY_PROBE = "ready_probe"  # the meta key check_ready counts up
READY_MIN_FREE_BYTES = 16 * 2**20
"""``check_ready`` fails when the SQLite database's disk has less free space than this."""


class CentralStore(IngestMixin, RosterMixin, GalleryMixin, AccessMixin, Closing):
    """The central database. Open it with ``CentralStore.open(database)``; close it,
    or use it as a context manager. :meth:`with_actor` gives a view that names another
    person in the audit log and shares the connections."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        target: DatabaseTarget,
        actor: str,
        clock: Callable[[], datetime],
        clock_skew_seconds: float,
        keys: KeySource | None = None,
    ) -> None:
        """Use ``CentralStore.open``: this takes an engine on a migrated database."""
        self._keys = keys or key_source(None, database=target.path)
        self._engine = engine
        self._target = target
        self._actor = actor
        self._clock = clock
        self._skew_bound = clock_skew_seconds
        self._t = migrations.current_tables().tables
        self._owner = True

    @classmethod
    def open(
        cls,
        database: str | os.PathLike[str],
        *,
        actor: str | None = None,
        clock: Callable[[], datetime] | None = None,
        clock_skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        key_file: str | os.PathLike[str] | None = None,
    ) -> CentralStore:
        """Open (and create, and migrate) the central database.

        ``database``: a SQLite file path (created with mode 0600, its folder too) or a
        ``postgresql://`` URL. ``actor``: who the audit log names (default: the OS user).
        ``clock``: the current time, timezone-aware. ``clock_skew_seconds``: a kiosk whose
        clock is off by more than this is flagged. ``key_file``: the key that seals the
        templates at rest (:mod:`clockface.template_key` gives where it is looked for when
        not given; for SQLite the default ``<database>.key`` is created on first use, for
        PostgreSQL there is no default). It is read only when templates are read, written
        or sealed by a schema step, so events and reports need no key.
        """
        target = resolve_database(database)
        actor = check_text(actor if actor is not None else os_user(), "an actor")
        if not (clock_skew_seconds > 0 and math.isfinite(clock_skew_seconds)):
            raise CentralValueError(
                f"clock_skew_seconds must be a positive number, not {clock_skew_seconds!r}"
            )
        if not (busy_timeout_s >= 0 and math.isfinite(busy_timeout_s)):
            raise CentralValueError(f"busy_timeout_s must be zero or more, not {busy_timeout_s!r}")
        now = clock or system_clock
        if target.path is not None:
            if target.path.is_dir():
                raise CentralStoreError(f"{target.path}: is a folder, not a database file")
            _create_private(target.path)
            engine = _sqlite_engine(target, busy_timeout_s)
        else:
            engine = _postgres_engine(target)
        keys = key_source(None if key_file is None else Path(key_file), database=target.path)
        store = cls(
            engine,
            target=target,
            actor=actor,
            clock=now,
            clock_skew_seconds=clock_skew_seconds,
            keys=keys,
        )
        # SQLite answers "database is locked" at once, without waiting out the busy
        # timeout, when processes opening a new file together race to switch it to WAL
        # (waiting could deadlock): try again until the busy timeout has passed.
        deadline = time.monotonic() + max(busy_timeout_s, 1.0)
        try:
            while True:
                try:
                    with store._write("opening", what="cannot open") as conn:
                        migrations.migrate(
                            conn,
                            where=target.describe(),
                            applied_utc=store._now(),
                            steps=migrations.with_template_key(keys.get),
                        )
                    break
                except CentralStoreError as err:
                    locked = isinstance(err.__cause__, sa.exc.OperationalError) and (
                        "locked" in str(err.__cause__.orig)
                    )
                    if target.path is None or not locked or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        except BaseException:
            engine.dispose()
            raise
        return store

    # ----------------------------------------------------------------- lifecycle

    @property
    def engine(self) -> sa.Engine:
        """The engine on the migrated database, for modules that keep tables of their own
        (schedules, supervisors' sessions); they write their own audit entries."""
        return self._engine

    @property
    def template_key_file(self) -> Path | None:
        """Where the key that seals the templates is looked for (None: PostgreSQL and no
        key given)."""
        return self._keys.path

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL."""
        return self._target.path

    @property
    def actor(self) -> str:
        return self._actor

    def with_actor(self, actor: str) -> CentralStore:
        """A view of this store that names ``actor`` in the audit log (same connections;
        closing the view does nothing)."""
        view = copy.copy(self)
        view._actor = check_text(actor, "an actor")
        view._owner = False
        return view

    def close(self) -> None:
        """Close every pooled connection; closing twice is harmless."""
        if self._owner:
            self._engine.dispose()

    def __repr__(self) -> str:
        return f"CentralStore({self.where!r})"

    def now(self) -> datetime:
        """The store's clock: the current time, in UTC."""
        return as_utc(self._clock(), "the clock's time")

    def ping(self) -> None:
        """Raise CentralStoreError unless the database answers."""
        with self._read("checking the database") as conn:
            conn.execute(sa.select(1)).scalar_one()

    def check_ready(self) -> None:
        """Raise StoreError unless the service can do its work: the template key opens
        the templates held (TemplateKeyError: missing, or another key), the database
        answers and takes a write (a committed count in ``meta``, ``ready_probe``, so a
        disk that is full or refuses writes fails it), and for SQLite the disk has at
        least :data:`READY_MIN_FREE_BYTES` free (a checkpoint needs room to grow the
        file)."""
        path = self._target.path
        if path is not None:
            try:
                free = shutil.disk_usage(path.parent).free
            except OSError as err:
                raise CentralStoreError(f"{self.where}: cannot read its disk: {err}") from err
            if free < READY_MIN_FREE_BYTES:
                raise CentralStoreError(
                    f"{self.where}: only {free // 1024} KiB free on the database's disk "
                    f"(at least {READY_MIN_FREE_BYTES // 2**20} MiB wanted); free some space"
                )
        meta, templates = self._t["meta"], self._t["templates"]
        with self._read("checking the template key") as conn:
            held = conn.execute(sa.select(templates.c.embedding).limit(1)).scalar()
        if held is not None:  # the key must open what is sealed (none is made here)
            check_key_id(self._keys.get(may_create=False), bytes(held)[1:9])
        with self._write("checking that the database takes writes") as conn:
            # A real change: SQLite skips writing a row set to what it holds.
            counted = conn.execute(
                sa.update(meta).where(meta.c.key == READY_PROBE).values(value=meta.c.value + 1)
            ).rowcount
            if not counted:
                conn.execute(
                    self._insert(meta).on_conflict_do_nothing(), {"key": READY_PROBE, "value": 1}
                )

    def schema_version(self) -> int:
        with self._read("reading the schema version") as conn:
            table = self._t[migrations.MIGRATIONS_TABLE]
            return int(conn.execute(sa.select(sa.func.max(table.c.version))).scalar_one())

    def rotate_key(self, new_key_file: str | os.PathLike[str]) -> int:
        """Re-seal every template under the key in ``new_key_file`` in one transaction
        (any failure changes nothing); returns how many. The old key file is left as it
        is, for the operator to destroy; open the store with the new key from now on."""
        new = load_key_file(Path(new_key_file))
        templates = self._t["templates"]
        with self._write("rotating the template key") as conn:
            rows = conn.execute(
                sa.select(templates.c.id, templates.c.person_id, templates.c.embedding)
                .order_by(templates.c.id)
                .with_for_update()
            ).all()
            if rows:
                old = self._template_key(conn)
                conn.execute(
                    sa.update(templates)
                    .where(templates.c.id == sa.bindparam("row_id"))
                    .values(embedding=sa.bindparam("blob")),
                    [
                        {"row_id": i, "blob": new.seal(pid, old.open(pid, bytes(blob)))}
                        for i, pid, blob in rows
                    ],
                )
            self._audit(
                conn,
                "admin",
                "rotate_template_key",
                f"key id {new.key_id.hex()}",
                f"{len(rows)} templates resealed",
                self._now(),
            )
        self._keys = KeySource(new.path, create_if_missing=False)
        self._checkpoint()
        return len(rows)


__all__ = [
    "AdminInfo",
    "AuditRecord",
    "CentralStore",
    "Consent",
    "DatabaseTarget",
    "Erasure",
    "ErasureStatus",
    "EventRecord",
    "IssuedKiosk",
    "KioskInfo",
    "LogChain",
    "PersonRecord",
    "Principal",
    "Site",
    "StoredEvent",
    "resolve_database",
]
