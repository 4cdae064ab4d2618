"""The central attendance database: sites, kiosks, tokens, the roster, erasures, events.

One code path over SQLAlchemy Core for SQLite (a file, the default: zero set-up) and
PostgreSQL (``postgresql+psycopg://...``, or ``postgresql://...``, rewritten). Schema in
:mod:`central.migrations`, applied when the store opens.

- **Transactions.** Every change is one transaction, committed before the method
  returns; an error rolls all of it back. On SQLite a write takes the write lock up
  front (``BEGIN IMMEDIATE``, WAL, ``synchronous=FULL``, a busy timeout), reads run in
  a deferred transaction (a snapshot). On PostgreSQL rows that serialise writers are
  locked (the roster counter, the kiosk log being advanced) and reads that must agree
  with themselves run ``REPEATABLE READ``.
- **Roster versions.** One global counter (``meta.roster_version``). Every roster change
  takes the next number inside its transaction, and the counter row stays locked until
  commit, so versions commit in order and a kiosk asking for changes after version V
  never misses one. A person row carries the version of its last change, an erasure
  its own; :meth:`CentralStore.gallery_delta` merges both in version order.
- **Ingest.** One transaction per batch; insert-or-ignore by event id (and by
  ``(log_id, seq)``), then each ignored event is told ``duplicate`` (the stored one is
  identical) or ``conflict`` (it differs, or another event holds its log+seq; nothing
  stored). Each kiosk log's ``contiguous_seq`` then advances as far as the seqs held
  are contiguous, and is the answer's ``high_water_seq``.
- **The chain** (:mod:`clockface.chain`). As a log's events become contiguous, each
  one's chain is recomputed from the one before it and compared with the chain the
  kiosk sent (from the batch itself, or read back when events came out of order). The
  first seq where it fails (``chain_break_seq``) and the first that came without a
  chain (``unchained_seq``) are kept in ``kiosk_logs``, a break is audited; neither
  stops ingest: the events are evidence. :meth:`CentralStore.chain_logs` and
  ``KioskInfo.chain_state`` report it.
- **Roster methods** as :class:`kiosk.store.Roster` (same signatures, errors and return
  types), so enrollment can run against the central database; ``remove_person`` is an
  erasure that reaches every kiosk.
- **Templates sealed at rest** (schema version 4, :mod:`clockface.template_key`):
  AES-256-GCM under a key outside the database (``key_file`` / the config's
  ``template_key_file``, the systemd credential ``template-key``,
  ``$CLOCKFACE_TEMPLATE_KEY_FILE``, else ``<file>.key`` beside a SQLite database, made on
  first use; PostgreSQL has no default). Read only when templates are, so events and
  reports need no key. The gallery sent to kiosks is opened here and travels as
  plaintext base64 over the sync connection (its own trust boundary, TLS); each kiosk
  seals it under its own key. ``rotate_key`` re-seals every template in one transaction.
- **Errors.** Every database error comes out as one line: ``CentralStoreError`` (naming
  the database, never a password); refused values are ``CentralValueError`` (or the
  roster's ``StoreValueError`` / ``DuplicatePersonError`` / ``UnknownPersonError``).

The store is safe to share between threads (the HTTP server's threadpool): each call
takes a connection from the engine's pool.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from central import migrations, tokens
from clockface import chain
from clockface.closing import Closing
from clockface.errors import (
    AuthenticationError,
    CentralConflictError,
    CentralNotFoundError,
    CentralStoreError,
    CentralValueError,
    DuplicatePersonError,
    StoreValueError,
    UnknownPersonError,
)
from clockface.template_key import (
    KeySource,
    TemplateKey,
    check_key_id,
    key_source,
    load_key_file,
)
from clockface.values import (
    as_templates,
    as_utc,
    check_team,
    check_text,
    from_blobs,
    iso_utc,
    os_user,
)
from kiosk.store import (
    LEGAL_BASES,
    AuditEntry,
    Consent,
    Expired,
    LawfulBasis,
    LegalBasis,
    NewPerson,
    Person,
)
from recognition.gallery import EMBEDDING_DIM, Gallery
from sync.protocol import (
    MAX_GALLERY_PAGE,
    EventBatch,
    EventResult,
    EventStatus,
    GalleryDelta,
    IngestResponse,
    WireErasure,
    WireEvent,
    WirePerson,
)

FloatArray = npt.NDArray[np.float32]
AuditKind = Literal["person", "site", "kiosk", "admin", "ingest"]
ChainState = Literal["none", "verified", "unchained", "broken"]

DEFAULT_BUSY_TIMEOUT_S = 5.0
DEFAULT_CLOCK_SKEW_SECONDS = 120.0
DEFAULT_CONNECT_TIMEOUT_S = 10
MAX_TEMPLATES_PER_PERSON = 100  # sync.protocol.WirePerson carries at most this many
MAX_TEXT = 200  # sync.protocol's Identifier and names
TEMPLATE_DTYPE = np.dtype("<f4")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SEQ_CHUNK = 1000


# --------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class Site:
    name: str
    timezone: str
    created_utc: datetime


@dataclass(frozen=True, slots=True)
class KioskInfo:
    """A kiosk as the service sees it. ``backlog``: events it sent past a gap (max_seq
    minus contiguous_seq over its logs), a lower bound of what it still has to send."""

    name: str
    site: str
    created_utc: datetime
    revoked_utc: datetime | None
    last_seen_utc: datetime | None
    clock_skew_seconds: float | None
    clock_flagged: bool
    gallery_version: int | None
    backlog: int
    chain_state: ChainState = "none"
    chain_break_seq: int | None = None  # the lowest over the kiosk's logs
    unchained_seq: int | None = None  # the lowest over the kiosk's logs

    @property
    def revoked(self) -> bool:
        return self.revoked_utc is not None

    @property
    def chain_text(self) -> str:
        """The chain's state in a few words, for ``central kiosk list``."""
        return _chain_text(self.chain_state, self.chain_break_seq, self.unchained_seq, None)


@dataclass(frozen=True, slots=True)
class LogChain:
    """How one kiosk log's tamper-evident chain (:mod:`clockface.chain`) checks out.

    ``chain_seq``: every event up to this seq has had its chain checked (the service
    checks as events become contiguous, so it follows ``contiguous_seq``).
    ``chain_break_seq``: the first seq whose chain does not follow from the event before
    it and the event itself: that event, or one before it, differs from what the kiosk
    chained. ``unchained_seq``: the first seq that came without a chain (the events after
    it can be checked only from the next chained one on). Both are kept for good.
    """

    kiosk: str
    log_id: str
    contiguous_seq: int
    max_seq: int
    chain_seq: int
    chain_break_seq: int | None
    unchained_seq: int | None

    @property
    def state(self) -> ChainState:
        return _chain_state(self.chain_seq, self.chain_break_seq, self.unchained_seq)

    def describe(self) -> str:
        """The state in a few words: "verified through seq 120", "BROKEN at seq 57"."""
        return _chain_text(self.state, self.chain_break_seq, self.unchained_seq, self.chain_seq)


@dataclass(frozen=True, slots=True)
class IssuedKiosk:
    """A kiosk just added, and its token: show ``token`` once, store it nowhere."""

    kiosk: KioskInfo
    token: str

    def __repr__(self) -> str:
        return f"IssuedKiosk(kiosk={self.kiosk!r}, token=<hidden>)"


@dataclass(frozen=True, slots=True)
class AdminInfo:
    name: str
    token_id: str
    created_utc: datetime
    revoked_utc: datetime | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who presented a valid token: a kiosk (``kiosk_id`` set) or an admin."""

    kind: tokens.TokenKind
    name: str
    token_id: str
    kiosk_id: int | None = None


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """A person, the roster version of their last change, and their consent records
    (and any other legal basis recorded for them), oldest first."""

    person: Person
    version: int
    consents: tuple[LawfulBasis, ...]


@dataclass(frozen=True, slots=True)
class Erasure:
    """A person just erased: the erasure's roster version, how many templates went."""

    person_id: str
    version: int
    templates: int


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An attendance event as the service holds it (``margin`` None: nobody else near)."""

    event_id: uuid.UUID
    kiosk: str
    log_id: str
    seq: int
    person_id: str
    direction: str
    utc: datetime
    tz: str
    distance: float
    margin: float | None
    frames: int
    software_version: str
    clock_synced: bool | None
    received_utc: datetime
    chain: str | None = None  # as the kiosk sent it; None: it sent none
    recorded_kiosk_id: str | None = None  # the kiosk database's own id (chained)


@dataclass(frozen=True, slots=True)
class ErasureStatus:
    """An erasure and which (unrevoked) kiosks have confirmed holding a version past it."""

    version: int
    person_id: str
    at_utc: datetime
    actor: str
    confirmed: tuple[str, ...]
    pending: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at_utc: datetime
    actor: str
    kind: str
    action: str
    subject: str
    detail: str | None


# --------------------------------------------------------------------- opening
@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """Where a ``database`` argument points: a SQLAlchemy URL and how to name it."""

    url: sa.URL
    path: Path | None  # the SQLite file, None for PostgreSQL

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    def describe(self) -> str:
        """For messages and logs: the path, or the URL with no password."""
        if self.path is not None:
            return str(self.path)
        return self.url.render_as_string(hide_password=True)


def resolve_database(database: str | os.PathLike[str]) -> DatabaseTarget:
    """A plain path is a SQLite file; ``postgresql://`` and ``postgresql+psycopg://``
    URLs are PostgreSQL (through psycopg 3); ``sqlite:///PATH`` is accepted too."""
    text = os.fspath(database)
    if not text.strip():
        raise CentralValueError("the database is empty: give a file path or a postgresql:// URL")
    if "://" not in text:
        return DatabaseTarget(sa.URL.create("sqlite+pysqlite", database=text), Path(text))
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError:
        raise CentralValueError(
            "the database URL cannot be read; give postgresql://USER@HOST:PORT/NAME"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        url = url.set(drivername="postgresql+psycopg")
        if "connect_timeout" not in url.query:
            url = url.update_query_dict({"connect_timeout": str(DEFAULT_CONNECT_TIMEOUT_S)})
        return DatabaseTarget(url, None)
    if backend == "sqlite" and driver in ("", "pysqlite") and url.database:
        return DatabaseTarget(url.set(drivername="sqlite+pysqlite"), Path(url.database))
    raise CentralValueError(
        f"unsupported database {url.drivername!r}: give a SQLite file path or a "
        "postgresql:// URL (psycopg 3)"
    )


def _create_private(path: Path) -> None:
    """A new SQLite file readable by its owner only (it holds biometric templates)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as err:
        raise CentralStoreError(
            f"{path}: cannot create: {err.strerror or err}; check the path and its permissions"
        ) from err


def _sqlite_engine(target: DatabaseTarget, busy_timeout_s: float) -> sa.Engine:
    engine = sa.create_engine(
        target.url,
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
        pool_size=8,
        max_overflow=8,
    )

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling off: we emit BEGIN ourselves (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            (mode,) = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                raise CentralStoreError(
                    f"{target.describe()}: cannot switch to WAL mode (it stays {mode!r})"
                )
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA secure_delete = ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        reading = conn.get_execution_options().get("clockface_read", False)
        conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(target: DatabaseTarget) -> sa.Engine:
    return sa.create_engine(target.url, pool_size=8, max_overflow=8, pool_pre_ping=True)


def explain(err: BaseException) -> str:
    """One line for a person from a database error (no SQL, no parameters)."""
    orig = err.orig if isinstance(err, sa.exc.DBAPIError) else err
    message = " ".join(str(orig).split()) or type(orig).__name__
    name = getattr(orig, "sqlite_errorname", "")
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or name.startswith("SQLITE_CORRUPT_"):
        return f"not a SQLite database, or corrupt ({message}); restore it or move it aside"
    if name.startswith("SQLITE_READONLY") or name in ("SQLITE_PERM", "SQLITE_CANTOPEN"):
        return f"{message}; check that the file and its folder are writable"
    if name == "SQLITE_FULL":
        return f"{message}; free some disk space"
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return f"{message}; another process holds the database too long"
    if isinstance(err, sa.exc.OperationalError) and "connection" in message.lower():
        return f"{message[:300]}; check that PostgreSQL runs and the URL is right"
    return message[:300]


# --------------------------------------------------------------------- the store
class CentralStore(Closing):
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
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._target.dialect

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
    def where(self) -> str:
        """The database, for messages: a path, or a URL without its password."""
        return self._target.describe()

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

    def schema_version(self) -> int:
        with self._read("reading the schema version") as conn:
            table = self._t[migrations.MIGRATIONS_TABLE]
            return int(conn.execute(sa.select(sa.func.max(table.c.version))).scalar_one())

    # ----------------------------------------------------------------- sites
    def add_site(self, name: str, timezone: str) -> Site:
        """Add a site (where kiosks stand) with its IANA time zone."""
        name = _check_label(name, "a site name", 100)
        timezone = _check_zone(timezone)
        sites = self._t["sites"]
        now = self._now()
        with self._write("adding a site") as conn:
            if conn.execute(sa.select(sites.c.id).where(sites.c.name == name)).first():
                raise CentralConflictError(f"site {name!r} already exists")
            conn.execute(sa.insert(sites).values(name=name, timezone=timezone, created_utc=now))
            self._audit(conn, "site", "add", name, f"timezone {timezone}", now)
        return Site(name, timezone, _parse(now))

    def sites(self) -> list[Site]:
        sites = self._t["sites"]
        with self._read("reading sites") as conn:
            rows = conn.execute(
                sa.select(sites.c.name, sites.c.timezone, sites.c.created_utc).order_by(
                    sites.c.name
                )
            ).all()
        return [Site(r.name, r.timezone, _parse(r.created_utc)) for r in rows]

    # ----------------------------------------------------------------- kiosks and tokens
    def create_kiosk(self, name: str, site: str) -> IssuedKiosk:
        """Add a kiosk at ``site`` and make its token (returned once, stored hashed)."""
        name = _check_name(name, "a kiosk name")
        site = _check_label(site, "a site name", 100)
        sites, kiosks = self._t["sites"], self._t["kiosks"]
        now = self._now()
        token = tokens.new_token("kiosk")
        with self._write("adding a kiosk") as conn:
            site_id = conn.execute(sa.select(sites.c.id).where(sites.c.name == site)).scalar()
            if site_id is None:
                raise CentralNotFoundError(
                    f"no site {site!r}; add it first (clockface central site add)"
                )
            if conn.execute(sa.select(kiosks.c.id).where(kiosks.c.name == name)).first():
                raise CentralConflictError(f"kiosk {name!r} already exists; choose another name")
            kiosk_id = conn.execute(
                sa.insert(kiosks)
                .values(name=name, site_id=site_id, created_utc=now, clock_flagged=False)
                .returning(kiosks.c.id)
            ).scalar_one()
            self._insert_token(conn, token, name, kiosk_id, now)
            self._audit(conn, "kiosk", "add", name, f"site {site}, token {token.token_id}", now)
            info = self._kiosk_infos(conn, name)[0]
        return IssuedKiosk(info, token.text)

    def rotate_kiosk_token(self, name: str) -> str:
        """A new token for kiosk ``name``; its old tokens are revoked in the same
        transaction. Returns the new token's text (show it once)."""
        name = _known_name(name, "kiosk")
        kiosks, tok = self._t["kiosks"], self._t["tokens"]
        now = self._now()
        token = tokens.new_token("kiosk")
        with self._write("rotating a kiosk token") as conn:
            row = conn.execute(
                sa.select(kiosks.c.id, kiosks.c.revoked_utc).where(kiosks.c.name == name)
            ).first()
            if row is None:
                raise CentralNotFoundError(f"no kiosk {name!r}")
            if row.revoked_utc is not None:
                raise CentralValueError(
                    f"kiosk {name!r} is revoked; add a new kiosk instead of rotating its token"
                )
            conn.execute(
                sa.update(tok)
                .where(tok.c.kiosk_id == row.id, tok.c.revoked_utc.is_(None))
                .values(revoked_utc=now)
            )
            self._insert_token(conn, token, name, row.id, now)
            self._audit(conn, "kiosk", "rotate", name, f"new token {token.token_id}", now)
        return token.text

    def revoke_kiosk(self, name: str) -> KioskInfo:
        """Revoke kiosk ``name`` and every token of it: it gets 401 from now on."""
        name = _known_name(name, "kiosk")
        kiosks, tok = self._t["kiosks"], self._t["tokens"]
        now = self._now()
        with self._write("revoking a kiosk") as conn:
            row = conn.execute(
                sa.select(kiosks.c.id, kiosks.c.revoked_utc).where(kiosks.c.name == name)
            ).first()
            if row is None:
                raise CentralNotFoundError(f"no kiosk {name!r}")
            if row.revoked_utc is None:
                conn.execute(sa.update(kiosks).where(kiosks.c.id == row.id).values(revoked_utc=now))
                conn.execute(
                    sa.update(tok)
                    .where(tok.c.kiosk_id == row.id, tok.c.revoked_utc.is_(None))
                    .values(revoked_utc=now)
                )
                self._audit(conn, "kiosk", "revoke", name, None, now)
            return self._kiosk_infos(conn, name)[0]

    def kiosks(self) -> list[KioskInfo]:
        """Every kiosk (revoked ones too), by name."""
        with self._read("reading kiosks") as conn:
            return self._kiosk_infos(conn)

    def get_kiosk(self, name: str) -> KioskInfo:
        name = _known_name(name, "kiosk")
        with self._read("reading a kiosk") as conn:
            found = self._kiosk_infos(conn, name)
        if not found:
            raise CentralNotFoundError(f"no kiosk {name!r}")
        return found[0]

    def create_admin(self, name: str) -> str:
        """An admin token for ``name`` (an HR admin or a tool); returns its text, once."""
        name = _check_name(name, "an admin name")
        tok = self._t["tokens"]
        now = self._now()
        token = tokens.new_token("admin")
        with self._write("adding an admin") as conn:
            taken = conn.execute(
                sa.select(tok.c.token_id).where(
                    tok.c.kind == "admin", tok.c.owner == name, tok.c.revoked_utc.is_(None)
                )
            ).first()
            if taken:
                raise CentralConflictError(
                    f"admin {name!r} already has a valid token; revoke it first"
                )
            self._insert_token(conn, token, name, None, now)
            self._audit(conn, "admin", "add", name, f"token {token.token_id}", now)
        return token.text

    def admins(self) -> list[AdminInfo]:
        """Every admin token (revoked ones too), by name then age."""
        tok = self._t["tokens"]
        with self._read("reading admins") as conn:
            rows = conn.execute(
                sa.select(tok.c.owner, tok.c.token_id, tok.c.created_utc, tok.c.revoked_utc)
                .where(tok.c.kind == "admin")
                .order_by(tok.c.owner, tok.c.created_utc)
            ).all()
        return [
            AdminInfo(r.owner, r.token_id, _parse(r.created_utc), _parse_opt(r.revoked_utc))
            for r in rows
        ]

    def revoke_admin(self, name: str) -> int:
        """Revoke every valid token of admin ``name``; returns how many."""
        name = _known_name(name, "admin")
        tok = self._t["tokens"]
        now = self._now()
        with self._write("revoking an admin") as conn:
            known = conn.execute(
                sa.select(tok.c.token_id).where(tok.c.kind == "admin", tok.c.owner == name)
            ).first()
            if known is None:
                raise CentralNotFoundError(f"no admin {name!r}")
            count = conn.execute(
                sa.update(tok)
                .where(tok.c.kind == "admin", tok.c.owner == name, tok.c.revoked_utc.is_(None))
                .values(revoked_utc=now)
            ).rowcount
            if count:
                self._audit(conn, "admin", "revoke", name, f"{count} tokens", now)
        return int(count)

    def authenticate(self, token_text: str) -> Principal:
        """Who ``token_text`` belongs to; AuthenticationError for a malformed, unknown,
        wrong or revoked token (or the token of a revoked kiosk)."""
        presented = tokens.parse_token(token_text)
        tok, kiosks = self._t["tokens"], self._t["kiosks"]
        with self._read("checking a token") as conn:
            row = conn.execute(
                sa.select(
                    tok.c.kind,
                    tok.c.owner,
                    tok.c.kiosk_id,
                    tok.c.secret_sha256,
                    tok.c.revoked_utc,
                    kiosks.c.revoked_utc.label("kiosk_revoked_utc"),
                )
                .select_from(tok.outerjoin(kiosks, kiosks.c.id == tok.c.kiosk_id))
                .where(tok.c.token_id == presented.token_id)
            ).first()
        stored = None if row is None else row.secret_sha256
        if not tokens.secret_matches(presented.secret, stored) or row is None:
            raise AuthenticationError("unknown token")
        if row.kind != presented.kind:
            raise AuthenticationError("unknown token")
        if row.revoked_utc is not None or row.kiosk_revoked_utc is not None:
            raise AuthenticationError("this token has been revoked")
        return Principal(
            kind=presented.kind, name=row.owner, token_id=presented.token_id, kiosk_id=row.kiosk_id
        )

    # ----------------------------------------------------------------- ingest
    def ingest(self, kiosk: Principal | str, batch: EventBatch) -> IngestResponse:
        """Store a kiosk's batch in one transaction; per-event status in the order sent.

        ``kiosk``: the authenticated kiosk (or its name, on the central host): the kiosk
        of every event, whatever the body says.
        """
        events, logs, kiosks = self._t["events"], self._t["kiosk_logs"], self._t["kiosks"]
        now_dt = as_utc(self._clock(), "the clock's time")
        now = iso_utc(now_dt)
        skew = (now_dt - batch.sent_utc).total_seconds()
        flagged = abs(skew) > self._skew_bound
        wire = batch.events
        for event in wire:
            if "\x00" in event.log_id + event.person_id + event.software_version + (
                event.kiosk_id or ""
            ):
                raise CentralValueError(
                    f"event {event.event_id}: text must not contain NUL characters; "
                    "nothing was stored"
                )
        with self._write("storing events") as conn:
            kiosk_id, kiosk_name = self._ingest_kiosk(conn, kiosk)
            log_ids = sorted({e.log_id for e in wire})
            ins = self._insert(logs).on_conflict_do_nothing()
            conn.execute(
                ins,
                [
                    {"log_id": log, "kiosk_id": kiosk_id, "contiguous_seq": 0, "max_seq": 0}
                    for log in log_ids
                ],
            )
            held = {
                r.log_id: r
                for r in conn.execute(
                    sa.select(logs)
                    .where(logs.c.log_id.in_(log_ids))
                    .order_by(logs.c.log_id)
                    .with_for_update()
                )
            }
            foreign = {log for log, r in held.items() if r.kiosk_id != kiosk_id}
            status: list[EventStatus | None] = [None] * len(wire)
            first_of: dict[uuid.UUID, int] = {}
            rows: list[dict[str, Any]] = []
            for i, event in enumerate(wire):
                if event.log_id in foreign:
                    status[i] = "conflict"
                elif event.event_id not in first_of:
                    first_of[event.event_id] = i
                    rows.append(_event_row(event, kiosk_id, now))
            inserted = self._insert_events(conn, rows)
            for event_id in inserted:
                status[first_of[event_id]] = "accepted"
            undecided = [i for i, s in enumerate(status) if s is None]
            if undecided:  # resent events, repeats within the batch, conflicts
                ids = list({wire[i].event_id for i in undecided})
                stored = {
                    r.event_id: _content(r)
                    for r in conn.execute(
                        sa.select(events).where(self._among(events.c.event_id, ids))
                    )
                }
                for i in undecided:
                    mine = _content(_event_row(wire[i], kiosk_id, now))
                    same = _same_event(stored.get(wire[i].event_id), mine)
                    status[i] = "duplicate" if same else "conflict"
            high_water: dict[str, int] = {}
            for log in log_ids:
                if log in foreign:
                    high_water[log] = 0
                    continue
                accepted = [
                    e.seq
                    for e, s in zip(wire, status, strict=True)
                    if e.log_id == log and s == "accepted"
                ]
                old = held[log]
                if old.max_seq == old.contiguous_seq:
                    # Nothing was held past the high water: the seqs after it are this
                    # batch's, no need to read them back.
                    contiguous = int(old.contiguous_seq)
                    for seq in sorted(accepted):
                        if seq != contiguous + 1:
                            break
                        contiguous += 1
                else:
                    contiguous = self._advance(conn, log, int(old.contiguous_seq))
                top = max([int(old.max_seq), contiguous, *accepted])
                values: dict[str, Any] = {"contiguous_seq": contiguous, "max_seq": top}
                if contiguous > old.chain_seq:
                    sent = {
                        row["seq"]: row
                        for row in rows
                        if row["log_id"] == log and row["event_id"] in inserted
                    }
                    values |= self._check_chain(conn, old, contiguous, sent, kiosk_name, now)
                conn.execute(sa.update(logs).where(logs.c.log_id == log).values(**values))
                high_water[log] = contiguous
            conn.execute(
                sa.update(kiosks)
                .where(kiosks.c.id == kiosk_id)
                .values(last_seen_utc=now, clock_skew_seconds=skew, clock_flagged=flagged)
            )
            conflicts = [wire[i].event_id for i, s in enumerate(status) if s == "conflict"]
            if conflicts:
                self._audit(
                    conn,
                    "ingest",
                    "conflict",
                    kiosk_name,
                    f"{len(conflicts)} conflicting events refused, first {conflicts[0]}",
                    now,
                )
        return IngestResponse(
            results=[
                EventResult(event_id=e.event_id, status=s or "conflict")
                for e, s in zip(wire, status, strict=True)
            ],
            high_water_seq=high_water,
            clock_skew_seconds=skew,
            clock_flagged=flagged,
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

    def _check_chain(
        self,
        conn: sa.Connection,
        log: Any,
        through: int,
        sent: Mapping[int, Mapping[str, Any]],
        kiosk_name: str,
        now: str,
    ) -> dict[str, Any]:
        """Check the chain of the log's events after ``log.chain_seq`` up to ``through``
        (all held); returns the ``kiosk_logs`` values to set. The first break and the
        first unchained event are kept, a break audited too; neither stops ingest."""
        after = int(log.chain_seq)
        previous: str | None = chain.genesis(log.log_id) if after == 0 else log.chain_head
        broken = None if log.chain_break_seq is None else int(log.chain_break_seq)
        unchained = None if log.unchained_seq is None else int(log.unchained_seq)
        first_break: int | None = None
        first_unchained: int | None = None
        for seq, fields, claimed in self._chain_events(conn, log.log_id, after, through, sent):
            if claimed is None:
                if unchained is None and first_unchained is None:
                    first_unchained = seq
            elif previous is not None and broken is None and first_break is None:
                try:
                    expected = None if fields is None else chain.link(previous, fields)
                except ValueError:
                    expected = None
                if expected != claimed:
                    first_break = seq
            previous = claimed
        values: dict[str, Any] = {"chain_seq": through, "chain_head": previous}
        if first_unchained is not None:
            values["unchained_seq"] = first_unchained
        if first_break is not None:
            values["chain_break_seq"] = first_break
            detail = f"log {log.log_id}: the chain breaks at seq {first_break}"
            self._audit(conn, "ingest", "chain_break", kiosk_name, detail, now)
        return values

    def _chain_events(
        self,
        conn: sa.Connection,
        log_id: str,
        after: int,
        through: int,
        sent: Mapping[int, Mapping[str, Any]],
    ) -> Iterator[tuple[int, chain.EventFields | None, str | None]]:
        """The log's events after seq ``after`` up to ``through``, in seq order, as
        (seq, chained fields, chain sent): from the batch just sent when it holds them all
        (the usual case), else read back. Fields are None when they cannot be chained
        (no ``kiosk_id`` came with the chain)."""
        if sum(1 for seq in sent if after < seq <= through) == through - after:
            for seq in range(after + 1, through + 1):
                row = sent[seq]
                yield seq, _chained_fields(row), row["chain"]
            return
        events = self._t["events"]
        while after < through:
            rows = conn.execute(
                sa.select(events)
                .where(events.c.log_id == log_id, events.c.seq > after, events.c.seq <= through)
                .order_by(events.c.seq)
                .limit(_SEQ_CHUNK)
            ).all()
            for r in rows:
                yield int(r.seq), _chained_fields(r._mapping), r.chain
            if not rows:
                return
            after = int(rows[-1].seq)

    def _advance(self, conn: sa.Connection, log_id: str, contiguous: int) -> int:
        """The highest seq up to which every event of the log is held, from ``contiguous``."""
        events = self._t["events"]
        while True:
            seqs = conn.execute(
                sa.select(events.c.seq)
                .where(events.c.log_id == log_id, events.c.seq > contiguous)
                .order_by(events.c.seq)
                .limit(_SEQ_CHUNK)
            ).scalars()
            count = 0
            for seq in seqs:
                if seq != contiguous + 1:
                    return contiguous
                contiguous += 1
                count += 1
            if count < _SEQ_CHUNK:
                return contiguous

    def events(
        self,
        *,
        since_utc: datetime | None = None,
        until_utc: datetime | None = None,
        after: uuid.UUID | None = None,
        limit: int = 1000,
    ) -> tuple[list[StoredEvent], bool]:
        """Events with ``since_utc <= utc < until_utc`` in (utc, event id) order, at most
        ``limit``, and whether more follow. ``after``: continue after that event (the last
        of the previous page)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise CentralValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        events, kiosks = self._t["events"], self._t["kiosks"]
        query = sa.select(events, kiosks.c.name.label("kiosk_name")).join(
            kiosks, kiosks.c.id == events.c.kiosk_id
        )
        if since_utc is not None:
            query = query.where(events.c.utc >= iso_utc(as_utc(since_utc, "since_utc")))
        if until_utc is not None:
            query = query.where(events.c.utc < iso_utc(as_utc(until_utc, "until_utc")))
        with self._read("reading events", snapshot=True) as conn:
            if after is not None:
                at = conn.execute(
                    sa.select(events.c.utc).where(events.c.event_id == after)
                ).scalar()
                if at is None:
                    raise CentralNotFoundError(f"no event {after}")
                query = query.where(
                    sa.or_(
                        events.c.utc > at, sa.and_(events.c.utc == at, events.c.event_id > after)
                    )
                )
            rows = conn.execute(
                query.order_by(events.c.utc, events.c.event_id).limit(limit + 1)
            ).all()
        found = [
            StoredEvent(
                event_id=r.event_id,
                kiosk=r.kiosk_name,
                log_id=r.log_id,
                seq=int(r.seq),
                person_id=r.person_id,
                direction=r.direction,
                utc=_parse(r.utc),
                tz=r.tz,
                distance=float(r.distance),
                margin=None if r.margin is None else float(r.margin),
                frames=int(r.frames),
                software_version=r.software_version,
                clock_synced=r.clock_synced,
                received_utc=_parse(r.received_utc),
                chain=r.chain,
                recorded_kiosk_id=r.recorded_kiosk_id,
            )
            for r in rows[:limit]
        ]
        return found, len(rows) > limit

    def chain_logs(self, kiosk: str | None = None) -> list[LogChain]:
        """Every kiosk log's chain state (of one kiosk, if named), by kiosk then log id.

        :attr:`KioskInfo.chain_state` sums it up per kiosk (``kiosks()``)."""
        logs, kiosks = self._t["kiosk_logs"], self._t["kiosks"]
        query = sa.select(logs, kiosks.c.name.label("kiosk_name")).join(
            kiosks, kiosks.c.id == logs.c.kiosk_id
        )
        with self._read("reading the kiosk logs") as conn:
            if kiosk is not None:
                kiosk = _known_name(kiosk, "kiosk")
                known = conn.execute(sa.select(kiosks.c.id).where(kiosks.c.name == kiosk)).first()
                if known is None:
                    raise CentralNotFoundError(f"no kiosk {kiosk!r}")
                query = query.where(kiosks.c.name == kiosk)
            rows = conn.execute(query.order_by(kiosks.c.name, logs.c.log_id)).all()
        return [
            LogChain(
                kiosk=r.kiosk_name,
                log_id=r.log_id,
                contiguous_seq=int(r.contiguous_seq),
                max_seq=int(r.max_seq),
                chain_seq=int(r.chain_seq),
                chain_break_seq=_opt_int(r.chain_break_seq),
                unchained_seq=_opt_int(r.unchained_seq),
            )
            for r in rows
        ]

    def event_count(self) -> int:
        with self._read("counting events") as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(self._t["events"])).scalar_one()
            )

    # ----------------------------------------------------------------- gallery
    def gallery_delta(self, since: int, limit: int = MAX_GALLERY_PAGE) -> GalleryDelta:
        """Roster changes after version ``since``: people (their whole current state) and
        erasures, merged in version order, at most ``limit`` of them. ``version`` is the
        last version included when ``more``, else the current roster version."""
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise CentralValueError(f"since must be a whole number of zero or more, not {since!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise CentralValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        people, erasures = self._t["people"], self._t["erasures"]
        with self._read("reading roster changes", snapshot=True) as conn:
            current = self._version(conn)
            if since > current:
                raise CentralConflictError(
                    f"roster version {since} is ahead of the service's ({current}): the "
                    "kiosk's roster comes from another database; clear it and sync from 0"
                )
            changed = conn.execute(
                sa.select(people)
                .where(people.c.version > since)
                .order_by(people.c.version)
                .limit(limit + 1)
            ).all()
            erased = conn.execute(
                sa.select(erasures.c.version, erasures.c.person_id)
                .where(erasures.c.version > since)
                .order_by(erasures.c.version)
                .limit(limit + 1)
            ).all()
            merged: list[tuple[int, Any, bool]] = sorted(
                [(int(r.version), r, True) for r in changed]
                + [(int(r.version), r, False) for r in erased],
                key=lambda item: item[0],
            )
            page, more = merged[:limit], len(merged) > limit
            templates = self._wire_templates(conn, [r.person_id for _, r, is_p in page if is_p])
        return GalleryDelta(
            since=since,
            version=page[-1][0] if more else current,
            more=more,
            people=[
                WirePerson(
                    person_id=r.person_id,
                    name=r.name,
                    team=r.team,
                    active=bool(r.active),
                    templates=templates.get(r.person_id, []),
                    version=v,
                )
                for v, r, is_person in page
                if is_person
            ],
            erasures=[
                WireErasure(person_id=r.person_id, version=v)
                for v, r, is_person in page
                if not is_person
            ],
        )

    def audit_read(self, action: str, subject: str, detail: str) -> None:
        """An audit entry for a read that hands out biometric data in bulk (the whole
        gallery with its templates): who read it, when, and how much."""
        now = self._now()
        with self._write("auditing a read") as conn:
            self._audit(conn, "admin", action, subject, detail, now)

    def full_gallery(self) -> GalleryDelta:
        """Every current person with their templates (deactivated ones too), as a delta
        from version 0 without erasures: the HR laptop's duplicate-face check."""
        people = self._t["people"]
        with self._read("reading the roster", snapshot=True) as conn:
            current = self._version(conn)
            rows = conn.execute(sa.select(people).order_by(people.c.version)).all()
            templates = self._wire_templates(conn, [r.person_id for r in rows])
        return GalleryDelta(
            since=0,
            version=current,
            more=False,
            people=[
                WirePerson(
                    person_id=r.person_id,
                    name=r.name,
                    team=r.team,
                    active=bool(r.active),
                    templates=templates.get(r.person_id, []),
                    version=int(r.version),
                )
                for r in rows
            ],
            erasures=[],
        )

    def gallery_applied(self, kiosk: Principal | str, version: int) -> int:
        """A kiosk now holds roster ``version``: record it, and a receipt for every
        erasure up to it. Returns how many receipts are new."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise CentralValueError(
                f"version must be a whole number of zero or more, not {version!r}"
            )
        kiosks, erasures, receipts = (
            self._t["kiosks"],
            self._t["erasures"],
            self._t["erasure_receipts"],
        )
        now = self._now()
        with self._write("recording the kiosk's roster version") as conn:
            kiosk_id, _ = self._ingest_kiosk(conn, kiosk)
            current = self._version(conn, lock=False)
            if version > current:
                raise CentralValueError(
                    f"roster version {version} does not exist yet (the service is at {current})"
                )
            conn.execute(
                sa.update(kiosks)
                .where(kiosks.c.id == kiosk_id)
                .values(gallery_version=version, gallery_applied_utc=now, last_seen_utc=now)
            )
            select = sa.select(
                erasures.c.version, sa.literal(kiosk_id, sa.Integer), sa.literal(now, sa.String)
            ).where(erasures.c.version <= version)
            stmt = (
                self._insert(receipts)
                .from_select(["erasure_version", "kiosk_id", "at_utc"], select)
                .on_conflict_do_nothing()
                .returning(receipts.c.erasure_version)
            )
            return len(conn.execute(stmt).all())

    def touch_kiosk(self, kiosk: Principal) -> None:
        """Record that a kiosk was in contact now (a gallery poll)."""
        if kiosk.kiosk_id is None:
            return
        kiosks = self._t["kiosks"]
        with self._write("recording a kiosk's contact") as conn:
            conn.execute(
                sa.update(kiosks)
                .where(kiosks.c.id == kiosk.kiosk_id)
                .values(last_seen_utc=self._now())
            )

    def erasures(self) -> list[ErasureStatus]:
        """Every erasure, oldest first, with the kiosks that confirmed it and those (not
        revoked) that have not yet."""
        erasures, receipts, kiosks = (
            self._t["erasures"],
            self._t["erasure_receipts"],
            self._t["kiosks"],
        )
        with self._read("reading erasures", snapshot=True) as conn:
            rows = conn.execute(sa.select(erasures).order_by(erasures.c.version)).all()
            confirmed: dict[int, list[str]] = {}
            for version, name in conn.execute(
                sa.select(receipts.c.erasure_version, kiosks.c.name)
                .join(kiosks, kiosks.c.id == receipts.c.kiosk_id)
                .order_by(kiosks.c.name)
            ):
                confirmed.setdefault(int(version), []).append(name)
            live = [
                name
                for (name,) in conn.execute(
                    sa.select(kiosks.c.name)
                    .where(kiosks.c.revoked_utc.is_(None))
                    .order_by(kiosks.c.name)
                )
            ]
        out = []
        for r in rows:
            done = confirmed.get(int(r.version), [])
            out.append(
                ErasureStatus(
                    version=int(r.version),
                    person_id=r.person_id,
                    at_utc=_parse(r.at_utc),
                    actor=r.actor,
                    confirmed=tuple(done),
                    pending=tuple(name for name in live if name not in done),
                )
            )
        return out

    # ----------------------------------------------------------------- roster
    def roster_version(self) -> int:
        """The roster's version: moves with every roster change."""
        with self._read("reading the roster version") as conn:
            return self._version(conn)

    def add_person(self, person_id: str, name: str, team: str | None = None) -> Person:
        """Add someone to the roster, active, with no templates yet."""
        pid = _check_id(person_id)
        name = _check_label(name, "a name", MAX_TEXT)
        team = _team(team)
        now = self._now()
        with self._write("adding a person") as conn:
            if self._find(conn, pid) is not None:
                raise DuplicatePersonError(
                    f"person {pid!r} is already in the roster; use update_person to change them"
                )
            self._insert_person(conn, pid, name, team, active=True, now=now)
            return self._require(conn, pid)

    def _insert_person(
        self, conn: sa.Connection, pid: str, name: str, team: str | None, *, active: bool, now: str
    ) -> None:
        """A new person row at the next roster version, and its audit entry."""
        version = self._bump(conn)
        conn.execute(
            sa.insert(self._t["people"]).values(
                person_id=pid,
                name=name,
                team=team,
                active=active,
                created_utc=now,
                updated_utc=now,
                version=version,
                deactivated_utc=None if active else now,
            )
        )
        self._audit(conn, "person", "add", pid, None, now)

    def update_person(
        self, person_id: str, *, name: str | None = None, team: str | None = None
    ) -> Person:
        """Change a name or team; None leaves a field as it is, ``team=""`` clears the team."""
        pid = _check_id(person_id)
        if name is None and team is None:
            raise StoreValueError("nothing to update: give name= or team=")
        new_name = None if name is None else _check_label(name, "a name", MAX_TEXT)
        new_team = None if team is None else _team(team)
        people = self._t["people"]
        now = self._now()
        with self._write("updating a person") as conn:
            old = self._require(conn, pid)
            changes: dict[str, str | None] = {}
            if new_name is not None and new_name != old.name:
                changes["name"] = new_name
            if team is not None and new_team != old.team:
                changes["team"] = new_team
            if not changes:
                return old
            version = self._bump(conn)
            conn.execute(
                sa.update(people)
                .where(people.c.person_id == pid)
                .values(**changes, updated_utc=now, version=version)
            )
            # The fields that changed, never their values: names must not outlive an erasure.
            self._audit(conn, "person", "update", pid, "changed " + ", ".join(changes), now)
            return self._require(conn, pid)

    def set_active(self, person_id: str, active: bool) -> Person:
        """Deactivate (out of every kiosk's gallery, kept in the roster) or reactivate."""
        pid = _check_id(person_id)
        if not isinstance(active, bool):
            raise StoreValueError(f"active must be True or False, not {active!r}")
        people = self._t["people"]
        now = self._now()
        with self._write("changing whether a person is active") as conn:
            old = self._require(conn, pid)
            if old.active == active:
                return old
            version = self._bump(conn)
            conn.execute(
                sa.update(people)
                .where(people.c.person_id == pid)
                .values(
                    active=active,
                    updated_utc=now,
                    version=version,
                    deactivated_utc=None if active else now,
                )
            )
            self._audit(conn, "person", "reactivate" if active else "deactivate", pid, None, now)
            return self._require(conn, pid)

    def add_templates(self, person_id: str, embeddings: npt.ArrayLike) -> int:
        """Store face templates (shape (128,) or (k, 128)) as float32; returns how many."""
        pid = _check_id(person_id)
        rows = as_templates(embeddings)
        people, templates = self._t["people"], self._t["templates"]
        now = self._now()
        with self._write("adding templates") as conn:
            old = self._require(conn, pid)
            _check_template_count(pid, old.template_count + len(rows))
            version = self._bump(conn)
            key = self._template_key(conn)
            conn.execute(
                sa.insert(templates),
                [
                    {
                        "person_id": pid,
                        "embedding": key.seal(pid, row.tobytes()),
                        "created_utc": now,
                    }
                    for row in rows
                ],
            )
            conn.execute(
                sa.update(people)
                .where(people.c.person_id == pid)
                .values(updated_utc=now, version=version)
            )
            self._audit(conn, "person", "add_templates", pid, f"{len(rows)} added", now)
        return len(rows)

    def enroll(
        self,
        person_id: str,
        name: str,
        team: str | None,
        embeddings: npt.ArrayLike,
        *,
        consent: LawfulBasis | None = None,
    ) -> Person:
        """Add someone with their face templates (at least one) in one transaction, and
        their consent record (or other legal basis) if given. Both or neither."""
        if np.size(embeddings) == 0:
            raise StoreValueError(f"enroll needs at least one template for {person_id!r}")
        consents = None if consent is None else {person_id: consent}
        (person,) = self.enroll_many(
            [NewPerson(person_id, name, team, embeddings)], consents=consents
        )
        return person

    def enroll_many(
        self,
        people: Iterable[NewPerson],
        *,
        replace: bool = False,
        consents: Mapping[str, LawfulBasis] | None = None,
    ) -> list[Person]:
        """Add people with their templates in one transaction: all of them or none.

        An id the roster already holds raises DuplicatePersonError, writing nothing,
        unless ``replace``: then that person is erased first (an erasure every kiosk
        receives) and added anew. Each person takes one roster version. ``consents``:
        consent records (or other legal bases) by person id, stored with them. Which
        enrollments need one is the entry points' rule (the admin API, ``clockface
        enroll``), which know the configured legal basis; the store records what it is
        given.
        """
        checked: list[tuple[str, str, str | None, npt.NDArray[Any], bool]] = []
        for new in people:
            pid = _check_id(new.person_id)
            name = _check_label(new.name, "a name", MAX_TEXT)
            team = _team(new.team)
            if not isinstance(new.active, bool):
                raise StoreValueError(f"active must be True or False, not {new.active!r}")
            shape = np.shape(new.embeddings)
            rows = (
                np.empty((0, EMBEDDING_DIM), dtype=TEMPLATE_DTYPE)
                if shape == (0, EMBEDDING_DIM)
                else as_templates(new.embeddings)
            )
            _check_template_count(pid, len(rows))
            checked.append((pid, name, team, rows, new.active))
        ids = [pid for pid, *_ in checked]
        if len(set(ids)) != len(ids):
            twice = next(pid for pid in ids if ids.count(pid) > 1)
            raise StoreValueError(f"person {twice!r} is given twice; nothing was written")
        for pid, consent in (consents or {}).items():
            if pid not in ids:
                raise StoreValueError(f"a consent for {pid!r}, who is not being enrolled")
            _check_consent(consent)
        templates_t = self._t["templates"]
        now = self._now()
        erased = False
        with self._write("enrolling people") as conn:
            for pid, name, team, rows, active in checked:
                old = self._find(conn, pid)
                if old is not None:
                    if not replace:
                        raise DuplicatePersonError(
                            f"person {pid!r} is already in the roster; nothing was written"
                        )
                    self._erase(conn, pid, old.template_count, now, replaced=True)
                    erased = True
                self._insert_person(conn, pid, name, team, active=active, now=now)
                if len(rows):
                    key = self._template_key(conn)
                    conn.execute(
                        sa.insert(templates_t),
                        [
                            {
                                "person_id": pid,
                                "embedding": key.seal(pid, row.tobytes()),
                                "created_utc": now,
                            }
                            for row in rows
                        ],
                    )
                    self._audit(conn, "person", "add_templates", pid, f"{len(rows)} added", now)
                if not active:
                    self._audit(conn, "person", "deactivate", pid, None, now)
                given = (consents or {}).get(pid)
                if given is not None:
                    self._insert_consent(conn, pid, given, now)
            added = [self._require(conn, pid) for pid in ids]
        if erased:
            self._checkpoint()
        return added

    def record_consent(self, person_id: str, consent: LawfulBasis) -> None:
        """Record a person's consent (the signed form's reference, the notice version),
        or another legal basis, for someone already in the roster."""
        pid = _check_id(person_id)
        _check_consent(consent)
        now = self._now()
        with self._write("recording consent") as conn:
            self._require(conn, pid)
            self._insert_consent(conn, pid, consent, now)

    def remove_person(self, person_id: str) -> int:
        """Erase someone: the person and every template, an erasure that every kiosk
        receives (and confirms), and an audit entry with the id only. Returns how many
        templates were erased. Their attendance events and consent records stay."""
        return self.erase_person(person_id).templates

    def erase_person(self, person_id: str) -> Erasure:
        """As :meth:`remove_person`; returns the erasure's roster version too."""
        pid = _check_id(person_id)
        now = self._now()
        with self._write("erasing a person") as conn:
            count = self._require(conn, pid).template_count
            version = self._erase(conn, pid, count, now, replaced=False)
        self._checkpoint()
        return Erasure(person_id=pid, version=version, templates=count)

    def expired(self, retention_days: int, now: datetime | None = None) -> list[Expired]:
        """The people deactivated more than ``retention_days`` before ``now`` (default:
        the store's clock), longest deactivated first: what :meth:`purge` erases."""
        cutoff = self._retention_cutoff(retention_days, now)
        with self._read("reading who is past the retention period") as conn:
            return self._expired(conn, cutoff)

    def purge(self, retention_days: int, now: datetime | None = None) -> list[Expired]:
        """Erase everyone deactivated more than ``retention_days`` before ``now``, each as
        :meth:`erase_person` does (an erasure every kiosk receives and confirms, listed
        by ``central erasures``), with a ``retention_purge`` audit entry; one
        transaction. Returns who was erased."""
        cutoff = self._retention_cutoff(retention_days, now)
        stamp = self._now()
        with self._write("purging people past the retention period") as conn:
            gone = self._expired(conn, cutoff)
            for person in gone:
                detail = (
                    f"erased with {person.template_count} templates, deactivated "
                    f"{iso_utc(person.deactivated_utc)}, retention {retention_days} days"
                )
                self._erase(
                    conn,
                    person.person_id,
                    person.template_count,
                    stamp,
                    replaced=False,
                    action="retention_purge",
                    detail=detail,
                )
        if gone:
            self._checkpoint()
        return gone

    def _retention_cutoff(self, retention_days: int, now: datetime | None) -> str:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise StoreValueError(f"retention_days must be a whole number, not {retention_days!r}")
        if retention_days < 1:
            raise StoreValueError(f"retention_days must be 1 or more, not {retention_days}")
        at = as_utc(now if now is not None else self._clock(), "now")
        return iso_utc(at - timedelta(days=retention_days))

    def _expired(self, conn: sa.Connection, cutoff: str) -> list[Expired]:
        people, templates = self._t["people"], self._t["templates"]
        count = (
            sa.select(sa.func.count())
            .select_from(templates)
            .where(templates.c.person_id == people.c.person_id)
            .scalar_subquery()
        )
        rows = conn.execute(
            sa.select(people.c.person_id, people.c.deactivated_utc, count)
            .where(sa.not_(people.c.active), people.c.deactivated_utc < cutoff)
            .order_by(people.c.deactivated_utc, people.c.person_id)
        ).all()
        return [Expired(pid, _parse(at), int(n)) for pid, at, n in rows]

    def get_person(self, person_id: str) -> Person:
        pid = _check_id(person_id)
        with self._read("reading a person") as conn:
            return self._require(conn, pid)

    def person_record(self, person_id: str) -> PersonRecord:
        """A person with the version of their last change and their consent records."""
        pid = _check_id(person_id)
        people = self._t["people"]
        with self._read("reading a person", snapshot=True) as conn:
            person = self._require(conn, pid)
            version = conn.execute(
                sa.select(people.c.version).where(people.c.person_id == pid)
            ).scalar_one()
            bases = self._lawful_bases(conn, pid)
        return PersonRecord(person=person, version=int(version), consents=bases)

    def lawful_bases(self, person_id: str) -> tuple[LawfulBasis, ...]:
        """A person id's consent records and other legal bases, oldest first; kept after
        an erasure, so an erased id still shows why its templates were held."""
        pid = _check_id(person_id)
        with self._read("reading consent records", snapshot=True) as conn:
            return self._lawful_bases(conn, pid)

    def without_lawful_basis(self) -> set[str]:
        """The ids of the people in the roster with no consent record or other legal
        basis (enrolled before one was asked)."""
        people, consents, bases = self._t["people"], self._t["consents"], self._t["legal_bases"]
        query = sa.select(people.c.person_id).where(
            ~sa.exists().where(consents.c.person_id == people.c.person_id),
            ~sa.exists().where(bases.c.person_id == people.c.person_id),
        )
        with self._read("reading consent records") as conn:
            return {str(pid) for pid in conn.execute(query).scalars()}

    def people(self, *, active_only: bool = False) -> list[Person]:
        """Everyone in the roster (or the active only), by person id."""
        query = self._person_select()
        people = self._t["people"]
        if active_only:
            query = query.where(people.c.active.is_(True))
        with self._read("reading the roster") as conn:
            rows = conn.execute(query.order_by(people.c.person_id)).all()
        return [_person(r) for r in rows]

    def people_versions(self) -> dict[str, int]:
        """Each person id and the roster version of their last change."""
        people = self._t["people"]
        with self._read("reading the roster") as conn:
            rows = conn.execute(sa.select(people.c.person_id, people.c.version)).all()
        return {r.person_id: int(r.version) for r in rows}

    def templates(self, person_id: str) -> FloatArray:
        """One person's templates, shape (k, 128) float32, in the order they were added."""
        pid = _check_id(person_id)
        templates = self._t["templates"]
        with self._read("reading templates") as conn:
            self._require(conn, pid)
            blobs = (
                conn.execute(
                    sa.select(templates.c.embedding)
                    .where(templates.c.person_id == pid)
                    .order_by(templates.c.id)
                )
                .scalars()
                .all()
            )
            if not blobs:
                return from_blobs([])
            key = self._template_key(conn)
            return from_blobs([key.open(pid, bytes(b)) for b in blobs])

    def load_gallery(self, *, threshold: float, margin: float) -> Gallery:
        """A Gallery of the templates of the active people (read in one statement)."""
        gallery = Gallery(threshold=threshold, margin=margin)
        people, templates = self._t["people"], self._t["templates"]
        with self._read("loading the gallery") as conn:
            rows = conn.execute(
                sa.select(templates.c.person_id, templates.c.embedding)
                .join(people, people.c.person_id == templates.c.person_id)
                .where(people.c.active.is_(True))
                .order_by(templates.c.id)
            ).all()
            key = self._template_key(conn) if rows else None
        if key is not None:
            opened = [key.open(r[0], bytes(r[1])) for r in rows]
            gallery.add_many([r[0] for r in rows], from_blobs(opened))
        return gallery

    def audit_log(self, person_id: str | None = None) -> list[AuditEntry]:
        """The roster's audit entries (of one person id, if given), oldest first."""
        audit = self._t["audit"]
        query = sa.select(audit).where(audit.c.kind == "person")
        if person_id is not None:
            query = query.where(audit.c.subject == person_id)
        with self._read("reading the audit log") as conn:
            rows = conn.execute(query.order_by(audit.c.id)).all()
        return [
            AuditEntry(
                id=int(r.id),
                at_utc=_parse(r.at_utc),
                actor=r.actor,
                action=r.action,
                person_id=r.subject,
                detail=r.detail,
            )
            for r in rows
        ]

    def audit(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Every audit entry (people, sites, kiosks, admins, ingest conflicts) after
        ``after_id``, oldest first, at most ``limit``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise CentralValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        audit = self._t["audit"]
        with self._read("reading the audit log") as conn:
            rows = conn.execute(
                sa.select(audit).where(audit.c.id > after_id).order_by(audit.c.id).limit(limit)
            ).all()
        return [
            AuditRecord(int(r.id), _parse(r.at_utc), r.actor, r.kind, r.action, r.subject, r.detail)
            for r in rows
        ]

    # ----------------------------------------------------------------- internals
    def _now(self) -> str:
        return iso_utc(as_utc(self._clock(), "the clock's time"))

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that offers ``on_conflict_do_nothing`` in this dialect."""
        if self.dialect == "postgresql":
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)

    def _insert_events(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
        """Insert-or-ignore (by event id, and by log+seq); returns the ids inserted.

        PostgreSQL: one ``INSERT ... SELECT FROM jsonb_populate_recordset(...)``, the
        batch as one JSON parameter (a multi-row VALUES of 7,000 placeholders, or 14
        arrays, cost more to build in Python than the insert takes). SQLite: an
        executemany with RETURNING.
        """
        if not rows:
            return set()
        events = self._t["events"]
        if self.dialect == "postgresql":
            names = list(rows[0])
            document = json.dumps(rows, default=str, allow_nan=False)
            source = (
                sa.func.jsonb_populate_recordset(
                    sa.literal_column("NULL::events"),
                    sa.cast(sa.bindparam("batch", document), pg_dialect.JSONB),
                )
                .table_valued(*names)
                .alias("batch")
            )
            stmt = (
                pg_dialect.insert(events)
                .from_select(names, sa.select(*[source.c[name] for name in names]))
                .on_conflict_do_nothing()
                .returning(events.c.event_id)
            )
            return set(conn.execute(stmt).scalars())
        stmt = sqlite_dialect.insert(events).on_conflict_do_nothing().returning(events.c.event_id)
        return set(conn.execute(stmt, rows).scalars())

    def _among(self, column: sa.Column[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
        """``column IN values``; on PostgreSQL one array parameter (``= ANY``), which
        stays fast for a thousand values."""
        if self.dialect == "postgresql":
            array = sa.bindparam(None, list(values), type_=pg_dialect.ARRAY(column.type))
            return column == sa.any_(array)
        return column.in_(list(values))

    def _version(self, conn: sa.Connection, *, lock: bool = False) -> int:
        meta = self._t["meta"]
        query = sa.select(meta.c.value).where(meta.c.key == "roster_version")
        if lock:
            query = query.with_for_update()
        return int(conn.execute(query).scalar_one())

    def _bump(self, conn: sa.Connection) -> int:
        """The next roster version; the counter row stays locked until commit."""
        meta = self._t["meta"]
        return int(
            conn.execute(
                sa.update(meta)
                .where(meta.c.key == "roster_version")
                .values(value=meta.c.value + 1)
                .returning(meta.c.value)
            ).scalar_one()
        )

    def _erase(
        self,
        conn: sa.Connection,
        pid: str,
        count: int,
        now: str,
        *,
        replaced: bool,
        action: str = "remove",
        detail: str | None = None,
    ) -> int:
        people, erasures = self._t["people"], self._t["erasures"]
        version = self._bump(conn)
        conn.execute(sa.delete(people).where(people.c.person_id == pid))
        conn.execute(
            sa.insert(erasures).values(
                version=version, person_id=pid, at_utc=now, actor=self._actor
            )
        )
        if detail is None:
            detail = f"erased with {count} templates" + (", replaced" if replaced else "")
        self._audit(conn, "person", action, pid, detail, now)
        return version

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

    def _insert_token(
        self,
        conn: sa.Connection,
        token: tokens.NewToken,
        owner: str,
        kiosk_id: int | None,
        now: str,
    ) -> None:
        conn.execute(
            sa.insert(self._t["tokens"]).values(
                token_id=token.token_id,
                kind=token.kind,
                owner=owner,
                kiosk_id=kiosk_id,
                secret_sha256=token.secret_sha256,
                created_utc=now,
            )
        )

    def _lawful_bases(self, conn: sa.Connection, pid: str) -> tuple[LawfulBasis, ...]:
        consents, bases = self._t["consents"], self._t["legal_bases"]
        found: list[tuple[str, int, LawfulBasis]] = [
            (r.recorded_utc, r.id, Consent(r.reference, r.notice_version, _parse(r.at_utc)))
            for r in conn.execute(sa.select(consents).where(consents.c.person_id == pid))
        ]
        found += [
            (r.recorded_utc, r.id, LegalBasis(r.basis, r.note, _parse(r.at_utc)))
            for r in conn.execute(sa.select(bases).where(bases.c.person_id == pid))
        ]
        return tuple(record for *_, record in sorted(found, key=lambda f: (f[0], f[1])))

    def _insert_consent(
        self, conn: sa.Connection, pid: str, consent: LawfulBasis, now: str
    ) -> None:
        if isinstance(consent, LegalBasis):
            conn.execute(
                sa.insert(self._t["legal_bases"]).values(
                    person_id=pid,
                    basis=consent.basis,
                    note=consent.note,
                    at_utc=iso_utc(consent.at_utc),
                    recorded_utc=now,
                    actor=self._actor,
                )
            )
            self._audit(conn, "person", "legal_basis", pid, consent.basis, now)
            return
        conn.execute(
            sa.insert(self._t["consents"]).values(
                person_id=pid,
                reference=consent.reference,
                notice_version=consent.notice_version,
                at_utc=iso_utc(consent.at_utc),
                recorded_utc=now,
                actor=self._actor,
            )
        )
        self._audit(conn, "person", "consent", pid, f"notice {consent.notice_version}", now)

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

    def _person_select(self) -> sa.Select[Any]:
        people, templates = self._t["people"], self._t["templates"]
        count = (
            sa.select(sa.func.count())
            .where(templates.c.person_id == people.c.person_id)
            .scalar_subquery()
        )
        return sa.select(
            people.c.person_id,
            people.c.name,
            people.c.team,
            people.c.active,
            count.label("template_count"),
            people.c.created_utc,
            people.c.updated_utc,
        )

    def _find(self, conn: sa.Connection, pid: str) -> Person | None:
        people = self._t["people"]
        row = conn.execute(self._person_select().where(people.c.person_id == pid)).first()
        return None if row is None else _person(row)

    def _require(self, conn: sa.Connection, pid: str) -> Person:
        person = self._find(conn, pid)
        if person is None:
            raise UnknownPersonError(f"no person {pid!r} in the roster")
        return person

    def _wire_templates(self, conn: sa.Connection, ids: Sequence[str]) -> dict[str, list[str]]:
        templates = self._t["templates"]
        out: dict[str, list[str]] = {}
        key: TemplateKey | None = None
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            for pid, blob in conn.execute(
                sa.select(templates.c.person_id, templates.c.embedding)
                .where(templates.c.person_id.in_(chunk))
                .order_by(templates.c.id)
            ):
                # Opened here: the wire carries plaintext templates over the (TLS)
                # connection, and each kiosk seals them under its own key.
                key = key or self._template_key(conn)
                plain = key.open(pid, bytes(blob))
                out.setdefault(pid, []).append(base64.b64encode(plain).decode("ascii"))
        return out

    def _kiosk_infos(self, conn: sa.Connection, name: str | None = None) -> list[KioskInfo]:
        kiosks, sites, logs = self._t["kiosks"], self._t["sites"], self._t["kiosk_logs"]

        def over_logs(value: sa.ColumnElement[Any], label: str) -> sa.Label[Any]:
            return (
                sa.select(value)
                .where(logs.c.kiosk_id == kiosks.c.id)
                .scalar_subquery()
                .label(label)
            )

        query = sa.select(
            kiosks,
            sites.c.name.label("site_name"),
            over_logs(
                sa.func.coalesce(sa.func.sum(logs.c.max_seq - logs.c.contiguous_seq), 0), "backlog"
            ),
            over_logs(sa.func.coalesce(sa.func.max(logs.c.chain_seq), 0), "chain_checked"),
            over_logs(sa.func.min(logs.c.chain_break_seq), "chain_break"),
            over_logs(sa.func.min(logs.c.unchained_seq), "chain_unchained"),
        ).join(sites, sites.c.id == kiosks.c.site_id)
        if name is not None:
            query = query.where(kiosks.c.name == name)
        rows = conn.execute(query.order_by(kiosks.c.name)).all()
        return [
            KioskInfo(
                name=r.name,
                site=r.site_name,
                created_utc=_parse(r.created_utc),
                revoked_utc=_parse_opt(r.revoked_utc),
                last_seen_utc=_parse_opt(r.last_seen_utc),
                clock_skew_seconds=r.clock_skew_seconds,
                clock_flagged=bool(r.clock_flagged),
                gallery_version=None if r.gallery_version is None else int(r.gallery_version),
                backlog=int(r.backlog),
                chain_state=_chain_state(
                    int(r.chain_checked), _opt_int(r.chain_break), _opt_int(r.chain_unchained)
                ),
                chain_break_seq=_opt_int(r.chain_break),
                unchained_seq=_opt_int(r.chain_unchained),
            )
            for r in rows
        ]

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


# --------------------------------------------------------------------- values
def system_clock() -> datetime:
    return datetime.now(UTC)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _parse_opt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _check_id(value: object) -> str:
    return _check_label(value, "a person id", MAX_TEXT)


def _check_label(value: object, what: str, longest: int) -> str:
    text = check_text(value, what)
    if len(text) > longest:
        raise StoreValueError(f"{what} is at most {longest} characters, not {len(text)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise StoreValueError(f"{what} must not contain control characters: {text!r}")
    return text


def _team(team: object) -> str | None:
    checked = check_team(team)
    return None if checked is None else _check_label(checked, "a team", MAX_TEXT)


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise CentralValueError(
            f"{what} is 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or "
            f"digit), not {value!r}"
        )
    return value


def _known_name(value: object, what: str) -> str:
    """A kiosk or admin name to look up: one that cannot exist is not found."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise CentralNotFoundError(f"no {what} {value!r}")
    return value


def _check_zone(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise CentralValueError(f"a time zone must be an IANA name, not {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise CentralValueError(
            f"unknown time zone {value!r}: give an IANA name such as 'Europe/Paris'"
        ) from None
    return value


def _check_template_count(pid: str, count: int) -> None:
    if count > MAX_TEMPLATES_PER_PERSON:
        raise StoreValueError(
            f"person {pid!r} would have {count} templates; at most "
            f"{MAX_TEMPLATES_PER_PERSON} are kept per person"
        )


def _check_consent(consent: object) -> None:
    if isinstance(consent, LegalBasis):
        if consent.basis not in LEGAL_BASES or consent.basis == "consent":
            raise StoreValueError(
                f"a legal basis must be one of {', '.join(LEGAL_BASES[1:])}, not {consent.basis!r}"
            )
        _check_label(consent.note, "a legal basis note", 1000)
        as_utc(consent.at_utc, "the legal basis's time")
        return
    if not isinstance(consent, Consent):
        raise StoreValueError(
            f"a consent must be a Consent or LegalBasis, not {type(consent).__name__}"
        )
    _check_label(consent.reference, "a consent reference", MAX_TEXT)
    _check_label(consent.notice_version, "a notice version", 100)
    as_utc(consent.at_utc, "the consent's time")


def _person(row: Any) -> Person:
    return Person(
        person_id=row.person_id,
        name=row.name,
        team=row.team,
        active=bool(row.active),
        template_count=int(row.template_count),
        created_utc=_parse(row.created_utc),
        updated_utc=_parse(row.updated_utc),
    )


def _chained_fields(row: Mapping[Any, Any]) -> chain.EventFields | None:
    """An event row (as inserted, or read back) as the chain covers it; None when it
    cannot be chained (no kiosk id came with it)."""
    kiosk_id = row["recorded_kiosk_id"]
    if kiosk_id is None:
        return None
    margin, synced = row["margin"], row["clock_synced"]
    return chain.EventFields(
        str(row["event_id"]),
        row["log_id"],
        int(row["seq"]),
        kiosk_id,
        row["person_id"],
        row["direction"],
        row["utc"],
        row["tz"],
        float(row["distance"]),
        None if margin is None else float(margin),
        int(row["frames"]),
        row["software_version"],
        None if synced is None else bool(synced),
    )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _chain_state(checked: int, broken: int | None, unchained: int | None) -> ChainState:
    if broken is not None:
        return "broken"
    if unchained is not None:
        return "unchained"
    return "verified" if checked > 0 else "none"


def _chain_text(
    state: ChainState, broken: int | None, unchained: int | None, checked: int | None
) -> str:
    if state == "broken":
        return f"BROKEN at seq {broken}"
    if state == "unchained":
        return f"unchained from seq {unchained}"
    if state == "verified":
        return "verified" if checked is None else f"verified through seq {checked}"
    return "no events yet"


def _event_row(event: WireEvent, kiosk_id: int, received: str) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "kiosk_id": kiosk_id,
        "log_id": event.log_id,
        "seq": event.seq,
        "person_id": event.person_id,
        "direction": event.direction,
        "utc": iso_utc(event.utc),
        "tz": event.tz,
        "distance": event.distance,
        "margin": event.margin,
        "frames": event.frames,
        "software_version": event.software_version,
        "clock_synced": event.clock_synced,
        "received_utc": received,
        "chain": event.chain,
        "recorded_kiosk_id": event.kiosk_id,
    }


_CONTENT = (
    "kiosk_id",
    "log_id",
    "seq",
    "person_id",
    "direction",
    "utc",
    "tz",
    "distance",
    "margin",
    "frames",
    "software_version",
    "clock_synced",
    "chain",
    "recorded_kiosk_id",
)


def _same_event(stored: tuple[Any, ...] | None, sent: tuple[Any, ...]) -> bool:
    """Whether an event sent again is the one held: the same content, and the same chain
    unless the one held came without any (a kiosk upgraded to chaining between sending
    it and hearing the answer: the service keeps what it first got)."""
    if stored is None:
        return False
    if stored == sent:
        return True
    return stored[-2] is None and stored[:-2] == sent[:-2]


def _content(row: Any) -> tuple[Any, ...]:
    """What must be equal for a resent event to be a duplicate (all but received_utc;
    the chain fields last)."""
    mapping: Mapping[str, Any] = row if isinstance(row, dict) else row._mapping
    out = []
    for key in _CONTENT:
        value = mapping[key]
        if key in ("distance", "margin") and value is not None:
            value = float(value)
        elif key in ("seq", "kiosk_id", "frames"):
            value = int(value)
        elif key == "clock_synced" and value is not None:
            value = bool(value)
        out.append(value)
    return tuple(out)


__all__ = [
    "AdminInfo",
    "AuditRecord",
    "CentralStore",
    "Consent",
    "DatabaseTarget",
    "Erasure",
    "ErasureStatus",
    "IssuedKiosk",
    "KioskInfo",
    "LogChain",
    "PersonRecord",
    "Principal",
    "Site",
    "StoredEvent",
    "resolve_database",
]
