"""The central database's schema, as numbered steps applied in order (SQLite or PostgreSQL).

Each step runs inside the one transaction that opens the database and is recorded in the
``central_migrations`` table, so a database is always at exactly one version: a failed
step leaves the previous version untouched (both SQLite and PostgreSQL roll DDL back).
Two processes opening one database together migrate it once: SQLite takes its write lock
up front (``BEGIN IMMEDIATE``), PostgreSQL a transaction-level advisory lock.

Add a step by appending a ``Migration`` with the next number; never edit a released one.
When a later step changes a table, change :func:`current_tables` (what the store queries)
and write the step as DDL of its own; step 1 keeps creating version 1's tables from
:func:`_v1_tables`. A database whose version is above the newest step here belongs to a
newer clockface and is refused, never written.

Times are text, ISO 8601 UTC with microseconds and a ``Z``
(``2024-05-01T07:57:03.120000Z``), the same in both databases: fixed width, so text order
is time order.

The schema of version 1:

- ``meta(key, value)``: ``roster_version``, the roster's one global counter. Every roster
  change (a person added, updated, given templates, deactivated, reactivated, erased)
  takes the next number in its own transaction; a person row carries the number of its
  last change, an erasure its own. Kiosks ask for changes after the number they hold.
- ``sites``, ``kiosks``: where kiosks stand (an IANA zone per site); per kiosk its last
  contact, clock skew and the roster version it last reported applied.
- ``tokens``: kiosk and admin credentials, only the SHA-256 of each secret.
- ``people``, ``templates`` (512-byte float32 little-endian blobs, deleted with their
  person), ``consents`` (kept after an erasure: proof of what was agreed, with no name).
- ``erasures`` (one row per erasure, by roster version) and ``erasure_receipts`` (which
  kiosk confirmed holding a version at or after it).
- ``events``: attendance as kiosks recorded it, unique by ``event_id`` and by
  ``(log_id, seq)``, indexed by time. Lean on purpose, as every batch writes hundreds:
  no foreign key to ``kiosks`` (a kiosk row is never deleted, only revoked; the store
  takes the kiosk from its token) and no index by person (add one when reports need
  it). ``kiosk_logs`` tracks per kiosk log the highest seq up to which every event is
  held (``contiguous_seq``) and the highest seen (``max_seq``).
- ``audit``: who did what, when. Never names of people, templates or tokens.

Version 2 (schedules and the supervisors' web page):

- ``schedule_sites``, ``holidays``, ``shift_patterns``, ``days_off``: work schedules,
  stored with the roster (:mod:`clockface.schedule_tables`, the same tables a kiosk
  database has).
- ``supervisors``: web page accounts: a unique name, the password's hash (scrypt, with
  its parameters and salt in the text), when it was set, disabled or not, and failed
  logins with a lock-out time.
- ``web_sessions``: signed-in browsers, by the SHA-256 of the session cookie (never the
  cookie itself), with the form token that guards their POSTs, when they were last seen
  and when they expire at the latest.

Version 3 (the kiosk logs' tamper-evident chain, :mod:`clockface.chain`):

- ``events.chain``: the chain value the kiosk sent with the event (NULL: it sent none),
  ``events.recorded_kiosk_id``: the kiosk database's own id, which the chain covers (the
  event belongs to ``events.kiosk_id``, the kiosk of the token, whatever it says).
- ``kiosk_logs.chain_seq``: every event of the log up to this seq has had its chain
  checked (it follows ``contiguous_seq``); ``chain_head``: the chain of event
  ``chain_seq`` (NULL there: unknown, the event came without one);
  ``chain_break_seq``: the first seq whose chain does not follow from the event before
  it and the event itself (NULL: none); ``unchained_seq``: the first seq that came with
  no chain (NULL: none). A break is kept, never cleared: it is evidence.
- Events stored before version 3 have no chain: a log that held some is marked unchained
  from seq 1 (checked as far as ``contiguous_seq``), so it never reads "verified".

Version 4 (templates sealed at rest, :mod:`clockface.template_key`):

- ``templates.embedding`` holds a sealed template: AES-256-GCM under a key kept outside
  the database (549 bytes: version byte 1, key id, nonce, ciphertext and tag), bound to
  its row's person id. No DDL: the step seals the templates already there, in place,
  with the key the store was opened with (needed only when there are templates). The
  key id is in every blob's header (``meta`` holds integers only).

Version 5 (retention):

- ``people.deactivated_utc``: when a deactivated person was deactivated (NULL while
  active), the clock of the retention period (``clockface enroll purge``). For people
  already deactivated it is taken from their last ``deactivate`` audit entry, else their
  ``updated_utc``.

Version 6 (a legal basis other than consent):

- ``legal_bases``: per person, a legal basis other than consent that the operator
  declared (``legal_basis`` in central.toml, e.g. ``employment-contract``) with its
  ``note`` (where that basis is written down), when it applied (``at_utc``), when and by
  whom it was recorded. Kept after an erasure, like ``consents``: proof of why the
  templates were held, with no name. A person's lawful bases are their consents and
  these together.

Version 7 (continuation logs):

- ``kiosk_logs.previous_log_id``, ``previous_seq``, ``start_reason``: a log a kiosk
  started to continue another (it was re-provisioned, or restored from a backup), as
  the first event of the new log said (``WireEvent.log_start``); NULL for a first log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from clockface import schedule_tables
from clockface.errors import CentralStoreError
from clockface.template_key import TemplateKey

MIGRATIONS_TABLE = "central_migrations"
# pg_advisory_xact_lock key: "CLKC" (clockface central), so two servers migrate once.
ADVISORY_LOCK_KEY = 0x434C4B43
TIME_TEXT = 27  # len("2024-05-01T07:57:03.120000Z")
CHAIN_TEXT = 64  # clockface.chain: SHA-256 as lowercase hex


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: ``apply`` runs inside the opening transaction."""

    version: int
    name: str
    apply: Callable[[sa.Connection], None]


def _time(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(TIME_TEXT), nullable=nullable)


def _v1_tables(metadata: sa.MetaData) -> None:
    """Version 1's tables, defined on ``metadata``."""
    sa.Table(
        MIGRATIONS_TABLE,
        metadata,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        _time("applied_utc"),
    )
    sa.Table(
        "meta",
        metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    sa.Table(
        "sites",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        _time("created_utc"),
    )
    sa.Table(
        "kiosks",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("site_id", sa.Integer, sa.ForeignKey("sites.id"), nullable=False),
        _time("created_utc"),
        _time("revoked_utc", nullable=True),
        _time("last_seen_utc", nullable=True),
        sa.Column("clock_skew_seconds", sa.Double, nullable=True),
        sa.Column("clock_flagged", sa.Boolean, nullable=False, default=False),
        sa.Column("gallery_version", sa.BigInteger, nullable=True),
        _time("gallery_applied_utc", nullable=True),
    )
    sa.Table(
        "tokens",
        metadata,
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("kiosk_id", sa.Integer, sa.ForeignKey("kiosks.id"), nullable=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        _time("created_utc"),
        _time("revoked_utc", nullable=True),
        sa.CheckConstraint("kind IN ('kiosk', 'admin')", name="tokens_kind"),
        sa.CheckConstraint(
            "(kind = 'kiosk') = (kiosk_id IS NOT NULL)", name="tokens_kiosk_has_kiosk"
        ),
        sa.Index("tokens_owner", "kind", "owner"),
    )
    sa.Table(
        "people",
        metadata,
        sa.Column("person_id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        _time("created_utc"),
        _time("updated_utc"),
        sa.Column("version", sa.BigInteger, nullable=False, unique=True),
    )
    sa.Table(
        "templates",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "person_id",
            sa.String(200),
            sa.ForeignKey("people.person_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        _time("created_utc"),
    )
    sa.Table(
        "consents",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.String(200), nullable=False, index=True),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("notice_version", sa.String(100), nullable=False),
        _time("at_utc"),
        _time("recorded_utc"),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    sa.Table(
        "erasures",
        metadata,
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("person_id", sa.String(200), nullable=False, index=True),
        _time("at_utc"),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    sa.Table(
        "erasure_receipts",
        metadata,
        sa.Column(
            "erasure_version",
            sa.BigInteger,
            sa.ForeignKey("erasures.version"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column(
            "kiosk_id",
            sa.Integer,
            sa.ForeignKey("kiosks.id"),
            primary_key=True,
            autoincrement=False,
        ),
        _time("at_utc"),
    )
    sa.Table(
        "events",
        metadata,
        sa.Column("event_id", sa.Uuid(as_uuid=True), primary_key=True),
        sa.Column("kiosk_id", sa.Integer, nullable=False),
        sa.Column("log_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        _time("utc"),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("distance", sa.Double, nullable=False),
        sa.Column("margin", sa.Double, nullable=True),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("software_version", sa.String(200), nullable=False),
        sa.Column("clock_synced", sa.Boolean, nullable=True),
        _time("received_utc"),
        sa.UniqueConstraint("log_id", "seq", name="events_log_seq"),
        sa.CheckConstraint("direction IN ('in', 'out')", name="events_direction"),
        sa.Index("events_utc", "utc", "event_id"),
    )
    sa.Table(
        "kiosk_logs",
        metadata,
        sa.Column("log_id", sa.String(200), primary_key=True),
        sa.Column("kiosk_id", sa.Integer, sa.ForeignKey("kiosks.id"), nullable=False, index=True),
        sa.Column("contiguous_seq", sa.BigInteger, nullable=False),
        sa.Column("max_seq", sa.BigInteger, nullable=False),
    )
    sa.Table(
        "audit",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        _time("at_utc"),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Index("audit_subject", "kind", "subject"),
    )


def _v1(conn: sa.Connection) -> None:
    metadata = sa.MetaData()
    _v1_tables(metadata)
    metadata.create_all(conn)
    meta = metadata.tables["meta"]
    conn.execute(sa.insert(meta).values(key="roster_version", value=0))


def _v2_tables(metadata: sa.MetaData) -> None:
    """Version 2's new tables, defined on ``metadata`` (beside version 1's)."""
    schedule_tables.define(metadata)
    sa.Table(
        "supervisors",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        _time("password_set_utc"),
        _time("created_utc"),
        _time("disabled_utc", nullable=True),
        sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
        _time("locked_until_utc", nullable=True),
        _time("last_login_utc", nullable=True),
    )
    sa.Table(
        "web_sessions",
        metadata,
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column(
            "supervisor_id",
            sa.Integer,
            sa.ForeignKey("supervisors.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        _time("created_utc"),
        _time("last_seen_utc"),
        _time("expires_utc"),
    )


def _v2(conn: sa.Connection) -> None:
    metadata = sa.MetaData()
    _v1_tables(metadata)
    _v2_tables(metadata)
    for name in (
        "schedule_sites", "holidays", "shift_patterns", "days_off", "supervisors", "web_sessions"
    ):  # fmt: skip
        metadata.tables[name].create(conn)


def _v3_columns(metadata: sa.MetaData) -> None:
    """Version 3's new columns, added to version 1's tables on ``metadata``."""
    events, logs = metadata.tables["events"], metadata.tables["kiosk_logs"]
    events.append_column(sa.Column("chain", sa.String(CHAIN_TEXT), nullable=True))
    events.append_column(sa.Column("recorded_kiosk_id", sa.String(200), nullable=True))
    logs.append_column(
        sa.Column("chain_seq", sa.BigInteger, nullable=False, server_default=sa.text("0"))
    )
    logs.append_column(sa.Column("chain_head", sa.String(CHAIN_TEXT), nullable=True))
    logs.append_column(sa.Column("chain_break_seq", sa.BigInteger, nullable=True))
    logs.append_column(sa.Column("unchained_seq", sa.BigInteger, nullable=True))


def _v3(conn: sa.Connection) -> None:
    for statement in (
        f"ALTER TABLE events ADD COLUMN chain VARCHAR({CHAIN_TEXT})",
        "ALTER TABLE events ADD COLUMN recorded_kiosk_id VARCHAR(200)",
        "ALTER TABLE kiosk_logs ADD COLUMN chain_seq BIGINT NOT NULL DEFAULT 0",
        f"ALTER TABLE kiosk_logs ADD COLUMN chain_head VARCHAR({CHAIN_TEXT})",
        "ALTER TABLE kiosk_logs ADD COLUMN chain_break_seq BIGINT",
        "ALTER TABLE kiosk_logs ADD COLUMN unchained_seq BIGINT",
        # Events held before version 3 came without a chain: such a log is unchained
        # from seq 1, and checked (as far as it can be) up to its contiguous seq.
        "UPDATE kiosk_logs SET chain_seq = contiguous_seq, unchained_seq = 1"
        " WHERE contiguous_seq > 0",
    ):
        conn.execute(sa.text(statement))


def _v5_columns(metadata: sa.MetaData) -> None:
    """Version 5's new column, added to version 1's people on ``metadata``."""
    metadata.tables["people"].append_column(_time("deactivated_utc", nullable=True))


def _v5(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"ALTER TABLE people ADD COLUMN deactivated_utc VARCHAR({TIME_TEXT})"))
    conn.execute(
        sa.text(
            "UPDATE people SET deactivated_utc = coalesce("
            " (SELECT max(a.at_utc) FROM audit a WHERE a.kind = 'person'"
            " AND a.subject = people.person_id AND a.action = 'deactivate'),"
            " updated_utc) WHERE NOT active"
        )
    )


def _v6_tables(metadata: sa.MetaData) -> sa.Table:
    """Version 6's new table, on ``metadata``."""
    return sa.Table(
        "legal_bases",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.String(200), nullable=False, index=True),
        sa.Column("basis", sa.String(40), nullable=False),
        sa.Column("note", sa.String(1000), nullable=False),
        _time("at_utc"),
        _time("recorded_utc"),
        sa.Column("actor", sa.String(200), nullable=False),
    )


def _v6(conn: sa.Connection) -> None:
    _v6_tables(sa.MetaData()).create(conn)


def _v7_columns(metadata: sa.MetaData) -> None:
    """Version 7's new columns, added to version 1's kiosk_logs on ``metadata``."""
    logs = metadata.tables["kiosk_logs"]
    logs.append_column(sa.Column("previous_log_id", sa.String(200), nullable=True))
    logs.append_column(sa.Column("previous_seq", sa.BigInteger, nullable=True))
    logs.append_column(sa.Column("start_reason", sa.String(500), nullable=True))


def _v7(conn: sa.Connection) -> None:
    for statement in (
        "ALTER TABLE kiosk_logs ADD COLUMN previous_log_id VARCHAR(200)",
        "ALTER TABLE kiosk_logs ADD COLUMN previous_seq BIGINT",
        "ALTER TABLE kiosk_logs ADD COLUMN start_reason VARCHAR(500)",
    ):
        conn.execute(sa.text(statement))


def _v4_sealing(key: Callable[[], TemplateKey] | None) -> Callable[[sa.Connection], None]:
    """Step 4 with the key that seals the templates already there (None: refuse if any)."""

    def apply(conn: sa.Connection) -> None:
        rows = conn.execute(
            sa.text("SELECT id, person_id, embedding FROM templates ORDER BY id")
        ).all()
        if not rows:
            return
        if key is None:
            raise CentralStoreError("sealing the templates needs the template key")
        sealer = key()
        conn.execute(
            sa.text("UPDATE templates SET embedding = :blob WHERE id = :id"),
            [{"id": i, "blob": sealer.seal(pid, bytes(blob))} for i, pid, blob in rows],
        )

    return apply


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sites, kiosks, tokens, roster, erasures, events, audit", _v1),
    Migration(2, "schedules, supervisors, web sessions", _v2),
    Migration(3, "the kiosk logs' tamper-evident chain: events.chain, kiosk_logs.chain_*", _v3),
    Migration(4, "templates sealed with AES-256-GCM, the key outside", _v4_sealing(None)),
    Migration(5, "people.deactivated_utc: the clock of the retention period", _v5),
    Migration(6, "legal_bases: a legal basis other than consent, per person", _v6),
    Migration(7, "kiosk_logs.previous_*: a log that continues another", _v7),
)


def with_template_key(key: Callable[[], TemplateKey]) -> tuple[Migration, ...]:
    """:data:`MIGRATIONS` with step 4 sealing existing templates under ``key()`` (called
    only when there are templates to seal)."""
    return tuple(
        Migration(m.version, m.name, _v4_sealing(key)) if m.version == 4 else m for m in MIGRATIONS
    )


def current_tables() -> sa.MetaData:
    """The tables of the newest schema version, for the store's queries."""
    metadata = sa.MetaData()
    _v1_tables(metadata)
    _v2_tables(metadata)
    _v3_columns(metadata)
    _v5_columns(metadata)
    _v6_tables(metadata)
    _v7_columns(metadata)
    return metadata


def latest_version(steps: tuple[Migration, ...] = MIGRATIONS) -> int:
    return steps[-1].version if steps else 0


def migrate(
    conn: sa.Connection, *, where: str, applied_utc: str, steps: tuple[Migration, ...]
) -> int:
    """Bring the database up to the newest step; returns the version it was at.

    Runs inside the caller's transaction on ``conn`` (SQLite: begun IMMEDIATE), which
    the caller commits. Raises CentralStoreError (naming ``where``) for a database of a
    newer schema, of some other application, or a step that fails.
    """
    if [m.version for m in steps] != list(range(1, len(steps) + 1)):
        raise ValueError("migration steps must be numbered 1, 2, 3 ... in order")
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    newest = latest_version(steps)
    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names())
    if MIGRATIONS_TABLE in names:
        found = conn.execute(sa.text(f"SELECT max(version) FROM {MIGRATIONS_TABLE}")).scalar()
        found = int(found or 0)
    elif names:
        raise CentralStoreError(
            f"{where}: a database of some other application, not a clockface central "
            "database; choose another database"
        )
    else:
        found = 0
    if found > newest:
        raise CentralStoreError(
            f"{where}: schema version {found} is newer than this clockface knows "
            f"({newest}); upgrade clockface, or open a copy made by this version"
        )
    for step in steps[found:]:
        try:
            step.apply(conn)
        except sa.exc.SQLAlchemyError as err:
            raise CentralStoreError(
                f"{where}: schema step {step.version} ({step.name}) failed: "
                f"{' '.join(str(err.orig if isinstance(err, sa.exc.DBAPIError) else err).split())}"
            ) from err
        conn.execute(
            sa.text(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name, applied_utc)"
                " VALUES (:version, :name, :at)"
            ),
            {"version": step.version, "name": step.name, "at": applied_utc},
        )
    return found
