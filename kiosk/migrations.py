"""The kiosk database's schema, as numbered steps applied in order.

Each step runs inside the one ``BEGIN IMMEDIATE`` transaction that also sets
``PRAGMA user_version`` to the step's number and records the step in the ``migrations``
table, so a database is always at exactly one version: a step that fails leaves the
previous version untouched. ``user_version`` is the authority (it lives in the file
header, and is read before anything else); the table is the human-readable history.

Add a step by appending a ``Migration`` with the next number; never edit a released one.
A database whose version is above the newest step here belongs to a newer clockface and
is refused, never written.

The schema of version 1:

- ``settings(key, value)``: ``kiosk_id`` (uuid4, generated once) and ``roster_version``
  (bumped in the same transaction as every roster change, so a running kiosk knows
  cheaply when to reload its gallery).
- ``people`` and ``templates``: the roster replica. A template is 128 float32
  little-endian (512 bytes); templates go with their person (``ON DELETE CASCADE``).
- ``audit``: who did what to which person id, when. Never names, embeddings or photos,
  so an erased person leaves nothing but their id. Append-only (triggers).
- ``events``: attendance, append-only, and the sync outbox (``acked_utc IS NULL``).
  Triggers refuse DELETE, any UPDATE but setting ``acked_utc`` once, and an INSERT whose
  ``seq`` is not the next one, so seqs are 1, 2, 3 ... with no gap, whoever writes.
  No foreign key to ``people``: attendance records outlive an erasure, and events carry
  the person id only, never the name.

Version 2 (syncing with the central service):

- ``events.clock_synced``: 1 / 0 whether the kiosk's clock was synchronised when it
  stamped the event; NULL for events recorded before version 2 (or when the kiosk could
  not tell). Immutable like the rest of the event (``events_no_update`` recreated).
- ``settings.log_id``: a uuid4 generated once per database file, the wire protocol's
  ``log_id`` (the kiosk id may be chosen by a person and reused; a log id never is).
- ``sync_state``: one row: the central service this kiosk is attached to (NULL: the
  roster is managed locally), the gallery version applied and the one the service has
  confirmed receiving, the last success and the last error, the clock skew the service
  last reported.
- ``parked``: events the central service refused for good, with the reason; they wait
  there, out of the outbox, until an operator sends them again. A row here never changes
  the event itself; un-parking deletes the row.

Version 3 (schedules stored with the roster):

- ``schedule_sites``, ``holidays``, ``shift_patterns``, ``days_off``: work schedules for
  the reports, the same tables as the central database's
  (:mod:`clockface.schedule_tables`), written out here as SQLite DDL with CHECKs.

Version 4 (the tamper-evident event log):

- ``events.chain``: 64 lowercase hex digits, SHA-256 over the previous event's chain (the
  log's genesis value for seq 1) and the event's immutable fields (:mod:`clockface.chain`
  defines it, for the kiosk and the central service alike). ``append_event`` computes it
  inside the insert's transaction. Immutable like the rest of the event
  (``events_no_update`` recreated to cover it).
- The step chains the events already there, in seq order, **as they stood at the
  upgrade**: the chain proves nothing about what happened to them before it. A row a
  step-3 database held in any state is chained as found.
Version 5 (templates sealed at rest, :mod:`clockface.template_key`):

- ``templates.embedding`` holds a sealed template: AES-256-GCM under a key kept outside
  the database, 549 bytes (version byte 1, key id, nonce, ciphertext and tag), bound to
  its row's person id. The table is rebuilt for its new CHECK; the step seals the
  templates already there with the key the store was opened with (the step needs it
  only when there are templates), and records its id as ``settings.template_key_id``.

Version 6 (the privacy lifecycle):

- ``lawful_bases``: why each person's templates may be kept: a consent record
  (``basis = 'consent'`` with the signed form's ``reference`` and the privacy notice's
  ``notice_version``) or another legal basis the operator declared (``basis`` with its
  ``note``), and when. Append-only (triggers) and kept after an erasure, as proof of
  what was agreed: no name, no foreign key to ``people``.
- ``people.deactivated_utc``: when a deactivated person was deactivated (NULL while
  active), the clock of the retention period. For people already deactivated it is
  taken from their last ``deactivate`` audit entry, else their ``updated_utc``.

Version 7 (continuation logs, for a kiosk re-provisioned on the central service or
restored from a backup):

- ``log_segments``: each row starts a new wire log (its own ``log_id``) at local
  ``first_seq``: the events from that seq on are sent to the central service under it,
  numbered 1, 2, 3 ... there. ``previous_log_id`` and ``previous_seq`` name the log it
  continues and the last seq of that log the service keeps; ``reason`` says why.
  The events table and its one local chain do not change: the local ``seq`` and
  ``chain`` stay what they were.
- ``wire_links``: the chain of each event under its continuation log (the chain the
  service checks), by ``(log_id, seq)`` with the local seq. Both tables are append-only
  (triggers).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlite_utils import Database

from clockface import chain
from clockface.errors import StoreError
from clockface.template_key import SEALED_BYTES, TemplateKey

# PRAGMA application_id: "CLKF". Marks the file as a clockface kiosk database, so a
# store never migrates some other application's SQLite file.
APPLICATION_ID = 0x434C4B46

# ISO 8601 UTC with microseconds and Z, fixed width so text order is time order.
_D = "[0-9]"
_UTC_GLOB = f"'{_D * 4}-{_D * 2}-{_D * 2}T{_D * 2}:{_D * 2}:{_D * 2}.{_D * 6}Z'"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: ``apply`` runs inside the step's transaction."""

    version: int
    name: str
    apply: Callable[[Database], None]


def _statements(*sql: str) -> Callable[[Database], None]:
    def apply(db: Database) -> None:
        for statement in sql:
            db.execute(statement)

    return apply


_V1 = _statements(
    f"PRAGMA application_id = {APPLICATION_ID}",
    """
    CREATE TABLE migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_utc TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
    "INSERT INTO settings (key, value) VALUES ('roster_version', '0')",
    f"""
    CREATE TABLE people (
        person_id TEXT PRIMARY KEY CHECK (length(person_id) > 0),
        name TEXT NOT NULL CHECK (length(name) > 0),
        team TEXT,
        active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
        created_utc TEXT NOT NULL CHECK (created_utc GLOB {_UTC_GLOB}),
        updated_utc TEXT NOT NULL CHECK (updated_utc GLOB {_UTC_GLOB})
    )
    """,
    f"""
    CREATE TABLE templates (
        id INTEGER PRIMARY KEY,
        person_id TEXT NOT NULL REFERENCES people (person_id) ON DELETE CASCADE,
        embedding BLOB NOT NULL
            CHECK (typeof(embedding) = 'blob' AND length(embedding) = 512),
        created_utc TEXT NOT NULL CHECK (created_utc GLOB {_UTC_GLOB})
    )
    """,
    "CREATE INDEX templates_person ON templates (person_id)",
    f"""
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at_utc TEXT NOT NULL CHECK (at_utc GLOB {_UTC_GLOB}),
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        person_id TEXT NOT NULL,
        detail TEXT
    )
    """,
    "CREATE INDEX audit_person ON audit (person_id)",
    """
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
    """,
    """
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
    """,
    f"""
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE CHECK (seq >= 1),
        kiosk_id TEXT NOT NULL,
        person_id TEXT NOT NULL CHECK (length(person_id) > 0),
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        utc TEXT NOT NULL CHECK (utc GLOB {_UTC_GLOB}),
        tz TEXT NOT NULL,
        distance REAL NOT NULL,
        margin REAL NOT NULL,
        frames INTEGER NOT NULL CHECK (frames >= 1),
        software_version TEXT NOT NULL,
        acked_utc TEXT CHECK (acked_utc IS NULL OR acked_utc GLOB {_UTC_GLOB})
    )
    """,
    "CREATE INDEX events_person ON events (person_id, seq)",
    "CREATE INDEX events_utc ON events (utc)",
    "CREATE INDEX events_pending ON events (seq) WHERE acked_utc IS NULL",
    """
    CREATE TRIGGER events_next_seq BEFORE INSERT ON events
    WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM events)
      OR EXISTS (SELECT 1 FROM events WHERE event_id = NEW.event_id)
    BEGIN SELECT RAISE(ABORT, 'events are append-only: seq must be the next one'); END
    """,
    """
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: they cannot be deleted'); END
    """,
    """
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    WHEN NEW.event_id IS NOT OLD.event_id
      OR NEW.seq IS NOT OLD.seq
      OR NEW.kiosk_id IS NOT OLD.kiosk_id
      OR NEW.person_id IS NOT OLD.person_id
      OR NEW.direction IS NOT OLD.direction
      OR NEW.utc IS NOT OLD.utc
      OR NEW.tz IS NOT OLD.tz
      OR NEW.distance IS NOT OLD.distance
      OR NEW.margin IS NOT OLD.margin
      OR NEW.frames IS NOT OLD.frames
      OR NEW.software_version IS NOT OLD.software_version
      OR OLD.acked_utc IS NOT NULL
      OR NEW.acked_utc IS NULL
    BEGIN
      SELECT RAISE(ABORT, 'events are append-only: only acked_utc may be set, once');
    END
    """,
)


_V2_SQL = _statements(
    """
    ALTER TABLE events ADD COLUMN clock_synced INTEGER
        CHECK (clock_synced IS NULL OR clock_synced IN (0, 1))
    """,
    "DROP TRIGGER events_no_update",
    """
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    WHEN NEW.event_id IS NOT OLD.event_id
      OR NEW.seq IS NOT OLD.seq
      OR NEW.kiosk_id IS NOT OLD.kiosk_id
      OR NEW.person_id IS NOT OLD.person_id
      OR NEW.direction IS NOT OLD.direction
      OR NEW.utc IS NOT OLD.utc
      OR NEW.tz IS NOT OLD.tz
      OR NEW.distance IS NOT OLD.distance
      OR NEW.margin IS NOT OLD.margin
      OR NEW.frames IS NOT OLD.frames
      OR NEW.software_version IS NOT OLD.software_version
      OR NEW.clock_synced IS NOT OLD.clock_synced
      OR OLD.acked_utc IS NOT NULL
      OR NEW.acked_utc IS NULL
    BEGIN
      SELECT RAISE(ABORT, 'events are append-only: only acked_utc may be set, once');
    END
    """,
    f"""
    CREATE TABLE sync_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        central_url TEXT CHECK (central_url IS NULL OR length(central_url) > 0),
        attached_utc TEXT CHECK (attached_utc IS NULL OR attached_utc GLOB {_UTC_GLOB}),
        gallery_version INTEGER NOT NULL DEFAULT 0 CHECK (gallery_version >= 0),
        confirmed_version INTEGER NOT NULL DEFAULT 0 CHECK (confirmed_version >= 0),
        last_success_utc TEXT
            CHECK (last_success_utc IS NULL OR last_success_utc GLOB {_UTC_GLOB}),
        last_error_utc TEXT CHECK (last_error_utc IS NULL OR last_error_utc GLOB {_UTC_GLOB}),
        last_error TEXT,
        clock_skew_seconds REAL,
        clock_flagged INTEGER CHECK (clock_flagged IS NULL OR clock_flagged IN (0, 1))
    )
    """,
    "INSERT INTO sync_state (id) VALUES (1)",
    f"""
    CREATE TABLE parked (
        event_id TEXT PRIMARY KEY REFERENCES events (event_id),
        parked_utc TEXT NOT NULL CHECK (parked_utc GLOB {_UTC_GLOB}),
        reason TEXT NOT NULL CHECK (length(reason) > 0)
    )
    """,
)


def _v2(db: Database) -> None:
    _V2_SQL(db)
    db.execute("INSERT INTO settings (key, value) VALUES ('log_id', ?)", [str(uuid.uuid4())])


_D10 = f"'{_D * 4}-{_D * 2}-{_D * 2}'"
_HHMM = f"'{_D * 2}:{_D * 2}'"

_V3 = _statements(
    f"""
    CREATE TABLE schedule_sites (
        name TEXT PRIMARY KEY CHECK (length(name) > 0),
        timezone TEXT NOT NULL CHECK (length(timezone) > 0),
        created_utc TEXT NOT NULL CHECK (created_utc GLOB {_UTC_GLOB}),
        updated_utc TEXT NOT NULL CHECK (updated_utc GLOB {_UTC_GLOB})
    )
    """,
    f"""
    CREATE TABLE holidays (
        site TEXT NOT NULL REFERENCES schedule_sites (name) ON DELETE CASCADE,
        day TEXT NOT NULL CHECK (day GLOB {_D10}),
        name TEXT NOT NULL,
        PRIMARY KEY (site, day)
    )
    """,
    f"""
    CREATE TABLE shift_patterns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id TEXT CHECK (person_id IS NULL OR length(person_id) > 0),
        team TEXT CHECK (team IS NULL OR length(team) > 0),
        site TEXT NOT NULL REFERENCES schedule_sites (name),
        weekdays TEXT NOT NULL CHECK (length(weekdays) >= 3),
        start_time TEXT NOT NULL CHECK (start_time GLOB {_HHMM}),
        end_time TEXT NOT NULL CHECK (end_time GLOB {_HHMM}),
        grace_late INTEGER NOT NULL CHECK (grace_late >= 0),
        grace_early INTEGER NOT NULL CHECK (grace_early >= 0),
        window_before INTEGER NOT NULL CHECK (window_before >= 0),
        window_after INTEGER NOT NULL CHECK (window_after >= 0),
        valid_from TEXT CHECK (valid_from IS NULL OR valid_from GLOB {_D10}),
        valid_until TEXT CHECK (valid_until IS NULL OR valid_until GLOB {_D10}),
        note TEXT NOT NULL,
        created_utc TEXT NOT NULL CHECK (created_utc GLOB {_UTC_GLOB}),
        CONSTRAINT shift_patterns_person_or_team CHECK ((person_id IS NULL) <> (team IS NULL))
    )
    """,
    "CREATE INDEX shift_patterns_person ON shift_patterns (person_id)",
    "CREATE INDEX shift_patterns_team ON shift_patterns (team)",
    f"""
    CREATE TABLE days_off (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id TEXT NOT NULL CHECK (length(person_id) > 0),
        first_day TEXT NOT NULL CHECK (first_day GLOB {_D10}),
        last_day TEXT NOT NULL CHECK (last_day GLOB {_D10}),
        note TEXT NOT NULL,
        created_utc TEXT NOT NULL CHECK (created_utc GLOB {_UTC_GLOB}),
        CONSTRAINT days_off_order CHECK (first_day <= last_day)
    )
    """,
    "CREATE INDEX days_off_person ON days_off (person_id)",
)


_V4_SQL = _statements(
    """
    ALTER TABLE events ADD COLUMN chain TEXT
        CHECK (chain IS NULL OR (length(chain) = 64 AND chain NOT GLOB '*[^0-9a-f]*'))
    """,
    "DROP TRIGGER events_no_update",
)

_V4_GUARD = _statements(
    """
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    WHEN NEW.event_id IS NOT OLD.event_id
      OR NEW.seq IS NOT OLD.seq
      OR NEW.kiosk_id IS NOT OLD.kiosk_id
      OR NEW.person_id IS NOT OLD.person_id
      OR NEW.direction IS NOT OLD.direction
      OR NEW.utc IS NOT OLD.utc
      OR NEW.tz IS NOT OLD.tz
      OR NEW.distance IS NOT OLD.distance
      OR NEW.margin IS NOT OLD.margin
      OR NEW.frames IS NOT OLD.frames
      OR NEW.software_version IS NOT OLD.software_version
      OR NEW.clock_synced IS NOT OLD.clock_synced
      OR NEW.chain IS NOT OLD.chain
      OR OLD.acked_utc IS NOT NULL
      OR NEW.acked_utc IS NULL
    BEGIN
      SELECT RAISE(ABORT, 'events are append-only: only acked_utc may be set, once');
    END
    """,
)

# The triggers that keep the event log append-only, as of the newest version.
EVENT_TRIGGERS = ("events_next_seq", "events_no_delete", "events_no_update")


def _v4(db: Database) -> None:
    """Add ``events.chain`` and chain the events already there, as they stand."""
    _V4_SQL(db)
    (log_id,) = db.execute("SELECT value FROM settings WHERE key = 'log_id'").fetchone()
    rows = db.execute(
        "SELECT event_id, seq, kiosk_id, person_id, direction, utc, tz, distance, margin,"
        " frames, software_version, clock_synced FROM events ORDER BY seq"
    ).fetchall()
    fields = (
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
        )
        for (event_id, seq, kiosk_id, pid, direction, utc, tz, distance, margin, frames, version,
             synced) in rows
    )  # fmt: skip
    links = list(chain.chained(log_id, fields))
    db.conn.executemany(
        "UPDATE events SET chain = ? WHERE seq = ?",
        zip(links, (row[1] for row in rows), strict=True),
    )
    _V4_GUARD(db)


def _v5_sealing(key: Callable[[], TemplateKey] | None) -> Callable[[Database], None]:
    """Step 5 with the key that seals the templates already there (None: refuse if any)."""

    def apply(db: Database) -> None:
        rows = db.execute(
            "SELECT id, person_id, embedding, created_utc FROM templates ORDER BY id"
        ).fetchall()
        if rows and key is None:
            raise StoreError("sealing the templates needs the template key")
        db.execute(
            f"""
            CREATE TABLE templates_v5 (
                id INTEGER PRIMARY KEY,
                person_id TEXT NOT NULL REFERENCES people (person_id) ON DELETE CASCADE,
                embedding BLOB NOT NULL
                    CHECK (typeof(embedding) = 'blob' AND length(embedding) = {SEALED_BYTES}
                           AND substr(embedding, 1, 1) = x'01'),
                created_utc TEXT NOT NULL CHECK (created_utc GLOB {_UTC_GLOB})
            )
            """
        )
        if rows:
            assert key is not None
            sealer = key()
            db.conn.executemany(
                "INSERT INTO templates_v5 (id, person_id, embedding, created_utc)"
                " VALUES (?, ?, ?, ?)",
                ((i, pid, sealer.seal(pid, bytes(blob)), utc) for i, pid, blob, utc in rows),
            )
            db.execute(
                "INSERT INTO settings (key, value) VALUES ('template_key_id', ?)",
                [sealer.key_id.hex()],
            )
        db.execute("DROP TABLE templates")
        db.execute("ALTER TABLE templates_v5 RENAME TO templates")
        db.execute("CREATE INDEX templates_person ON templates (person_id)")

    return apply


_V6 = _statements(
    f"""
    CREATE TABLE lawful_bases (
        id INTEGER PRIMARY KEY,
        person_id TEXT NOT NULL CHECK (length(person_id) > 0),
        basis TEXT NOT NULL CHECK (length(basis) > 0),
        reference TEXT,
        notice_version TEXT,
        note TEXT,
        at_utc TEXT NOT NULL CHECK (at_utc GLOB {_UTC_GLOB}),
        CHECK (
            (basis = 'consent' AND length(reference) > 0 AND length(notice_version) > 0
                AND note IS NULL)
            OR (basis <> 'consent' AND reference IS NULL AND notice_version IS NULL
                AND length(note) > 0)
        )
    )
    """,
    "CREATE INDEX lawful_bases_person ON lawful_bases (person_id)",
    """
    CREATE TRIGGER lawful_bases_no_update BEFORE UPDATE ON lawful_bases
    BEGIN SELECT RAISE(ABORT, 'lawful bases are append-only'); END
    """,
    """
    CREATE TRIGGER lawful_bases_no_delete BEFORE DELETE ON lawful_bases
    BEGIN SELECT RAISE(ABORT, 'lawful bases are append-only'); END
    """,
    f"""
    ALTER TABLE people ADD COLUMN deactivated_utc TEXT
        CHECK (deactivated_utc IS NULL OR deactivated_utc GLOB {_UTC_GLOB})
    """,
    """
    UPDATE people SET deactivated_utc = coalesce(
        (SELECT max(a.at_utc) FROM audit a
         WHERE a.person_id = people.person_id AND a.action = 'deactivate'),
        updated_utc)
    WHERE active = 0
    """,
)


_V7 = _statements(
    f"""
    CREATE TABLE log_segments (
        id INTEGER PRIMARY KEY,
        log_id TEXT NOT NULL UNIQUE CHECK (length(log_id) > 0),
        first_seq INTEGER NOT NULL CHECK (first_seq >= 1),
        previous_log_id TEXT NOT NULL CHECK (length(previous_log_id) > 0),
        previous_seq INTEGER NOT NULL CHECK (previous_seq >= 0),
        reason TEXT NOT NULL CHECK (length(reason) > 0),
        started_utc TEXT NOT NULL CHECK (started_utc GLOB {_UTC_GLOB})
    )
    """,
    """
    CREATE TABLE wire_links (
        log_id TEXT NOT NULL REFERENCES log_segments (log_id),
        seq INTEGER NOT NULL REFERENCES events (seq),
        chain TEXT NOT NULL CHECK (length(chain) = 64),
        PRIMARY KEY (log_id, seq)
    )
    """,
    """
    CREATE TRIGGER log_segments_no_change BEFORE UPDATE ON log_segments
    BEGIN SELECT RAISE(ABORT, 'log segments are append-only'); END
    """,
    """
    CREATE TRIGGER log_segments_no_delete BEFORE DELETE ON log_segments
    BEGIN SELECT RAISE(ABORT, 'log segments are append-only'); END
    """,
    """
    CREATE TRIGGER wire_links_no_change BEFORE UPDATE ON wire_links
    BEGIN SELECT RAISE(ABORT, 'wire links are append-only'); END
    """,
    """
    CREATE TRIGGER wire_links_no_delete BEFORE DELETE ON wire_links
    BEGIN SELECT RAISE(ABORT, 'wire links are append-only'); END
    """,
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "roster, templates, audit log, events outbox, settings", _V1),
    Migration(2, "events.clock_synced, sync state, parked events, log id", _v2),
    Migration(3, "schedules: sites, holidays, shift patterns, days off", _V3),
    Migration(4, "events.chain: the tamper-evident chain of the event log", _v4),
    Migration(5, "templates sealed with AES-256-GCM, the key outside", _v5_sealing(None)),
    Migration(6, "lawful bases (consent or another), people.deactivated_utc", _V6),
    Migration(7, "log segments and their wire links: continuation logs", _V7),
)


def with_template_key(key: Callable[[], TemplateKey]) -> tuple[Migration, ...]:
    """:data:`MIGRATIONS` with step 5 sealing existing templates under ``key()`` (called
    only when there are templates to seal)."""
    return tuple(
        Migration(m.version, m.name, _v5_sealing(key)) if m.version == 5 else m for m in MIGRATIONS
    )


def latest_version(steps: tuple[Migration, ...] = MIGRATIONS) -> int:
    return steps[-1].version if steps else 0


def migrate(db: Database, *, where: str, applied_utc: str, steps: tuple[Migration, ...]) -> int:
    """Bring the database up to the newest step; returns the version it was at.

    Runs in one ``BEGIN IMMEDIATE`` transaction, so two processes opening one file
    together migrate it once. Raises StoreError (naming ``where``) for a database of a
    newer schema or a step that fails; nothing of a failed run is kept.
    """
    if [m.version for m in steps] != list(range(1, len(steps) + 1)):
        raise ValueError("migration steps must be numbered 1, 2, 3 ... in order")
    newest = latest_version(steps)
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        (found,) = conn.execute("PRAGMA user_version").fetchone()
        if found > newest:
            raise StoreError(
                f"{where}: schema version {found} is newer than this clockface knows "
                f"({newest}); upgrade clockface, or open a copy made by this version"
            )
        for step in steps[found:]:
            try:
                step.apply(db)
            except Exception as err:
                raise StoreError(
                    f"{where}: schema step {step.version} ({step.name}) failed: {err}"
                ) from err
            db.execute(
                "INSERT INTO migrations (version, name, applied_utc) VALUES (?, ?, ?)",
                [step.version, step.name, applied_utc],
            )
            db.execute(f"PRAGMA user_version = {step.version:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return int(found)
