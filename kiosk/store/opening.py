"""Opening a kiosk database: check the file is ours, configure and migrate it, or refuse in
one line."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlite_utils import Database

from clockface.errors import (
    StoreError,
)
from clockface.template_key import (
    KeySource,
)
from kiosk import migrations


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
