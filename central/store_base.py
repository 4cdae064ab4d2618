"""What every part of :class:`central.store.CentralStore` shares: :class:`StoreBase`
declares the attributes the store's constructor sets and holds the internals the parts
use (transactions, the clock, the audit log, the roster counter, the template key).

- **Transactions.** Every change is one transaction, committed before the method
  returns; an error rolls all of it back. On SQLite a write takes the write lock up
  front (``BEGIN IMMEDIATE``, WAL, ``synchronous=FULL``, a busy timeout), reads run in
  a deferred transaction (a snapshot). On PostgreSQL rows that serialise writers are
  locked (the roster counter, the kiosk log being advanced) and reads that must agree
  with themselves run ``REPEATABLE READ``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from central.store_engine import DatabaseTarget
from central.store_records import AuditKind, Principal
from central.store_values import _known_name
from clockface.database import explain
from clockface.errors import CentralNotFoundError, CentralStoreError, CentralValueError
from clockface.template_key import KeySource, TemplateKey, check_key_id
from clockface.values import as_utc, iso_utc


class StoreBase:
    """The attributes :class:`central.store.CentralStore` sets, and the internals its
    parts share. Not used on its own."""

    _keys: KeySource
    _engine: sa.Engine
    _target: DatabaseTarget
    _actor: str
    _clock: Callable[[], datetime]
    _skew_bound: float
    _t: Mapping[str, sa.Table]

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._target.dialect

    @property
    def where(self) -> str:
        """The database, for messages: a path, or a URL without its password."""
        return self._target.describe()

    def _now(self) -> str:
        return iso_utc(as_utc(self._clock(), "the clock's time"))

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that offers ``on_conflict_do_nothing`` in this dialect."""
        if self.dialect == "postgresql":
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)

    def _version(self, conn: sa.Connection, *, lock: bool = False) -> int:
        meta = self._t["meta"]
        query = sa.select(meta.c.value).where(meta.c.key == "roster_version")
        if lock:
            query = query.with_for_update()
        return int(conn.execute(query).scalar_one())

    def _checkpoint(self) -> None:
        """SQLite: move erased pages out of the write-ahead log (best effort)."""
        if self.dialect != "sqlite":
            return
        try:
            with self._engine.connect() as conn:  # outside any transaction (autocommit)
                driver = conn.connection.driver_connection
                if driver is not None:
                    driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except (sa.exc.SQLAlchemyError, sqlite3.Error):
            pass

    def _audit(
        self,
        conn: sa.Connection,
        kind: AuditKind,
        action: str,
        subject: str,
        detail: str | None,
        now: str,
    ) -> None:
        conn.execute(
            sa.insert(self._t["audit"]).values(
                at_utc=now,
                actor=self._actor,
                kind=kind,
                action=action,
                subject=subject,
                detail=detail,
            )
        )

    def _ingest_kiosk(self, conn: sa.Connection, kiosk: Principal | str) -> tuple[int, str]:
        kiosks = self._t["kiosks"]
        if isinstance(kiosk, Principal):
            if kiosk.kind != "kiosk" or kiosk.kiosk_id is None:
                raise CentralValueError("only a kiosk sends events")
            return kiosk.kiosk_id, kiosk.name
        kiosk = _known_name(kiosk, "kiosk")
        row = conn.execute(
            sa.select(kiosks.c.id, kiosks.c.revoked_utc).where(kiosks.c.name == kiosk)
        ).first()
        if row is None:
            raise CentralNotFoundError(f"no kiosk {kiosk!r}")
        if row.revoked_utc is not None:
            raise CentralValueError(f"kiosk {kiosk!r} is revoked")
        return int(row.id), kiosk

    @contextmanager
    def _write(self, doing: str, *, what: str = "") -> Iterator[sa.Connection]:
        """One write transaction, committed at the end, rolled back on any error."""
        try:
            with self._engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as err:
            raise CentralStoreError(
                f"{self.where}: {what or doing + ' failed'}: {explain(err)}"
            ) from err

    @contextmanager
    def _read(self, doing: str, *, snapshot: bool = False) -> Iterator[sa.Connection]:
        """One read-only transaction; ``snapshot``: every statement sees the same data."""
        try:
            with self._engine.connect() as conn:
                options: dict[str, Any] = {"clockface_read": True}
                if snapshot and self.dialect == "postgresql":
                    options["isolation_level"] = "REPEATABLE READ"
                conn.execution_options(**options)
                with conn.begin():
                    yield conn
        except sa.exc.SQLAlchemyError as err:
            raise CentralStoreError(f"{self.where}: {doing} failed: {explain(err)}") from err

    def _template_key(self, conn: sa.Connection) -> TemplateKey:
        """The key, within a transaction on ``conn``; a missing default key is created only
        while the database holds no templates, and a key that did not seal the templates
        there is refused before it seals any more."""
        templates = self._t["templates"]
        held = conn.execute(sa.select(templates.c.embedding).limit(1)).scalar()
        key = self._keys.get(may_create=held is None)
        if held is not None:
            check_key_id(key, bytes(held)[1:9])
        return key
