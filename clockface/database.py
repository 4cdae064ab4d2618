"""Our databases, the parts every store shares: a database error as one line for a
person (:func:`explain`: the kiosk store, the central store, the schedule tables), and
one way to put SQLAlchemy on a SQLite file (:func:`sqlite_engine`: the central store's
database and the schedule tables of a kiosk database).

Every connection gets the busy timeout, WAL mode (refused in one line if the file
cannot switch), ``synchronous = FULL`` (a committed change survives a power cut),
foreign keys and ``secure_delete`` (erased bytes are overwritten: templates are
biometric). pysqlite's own transaction handling is off: a transaction begins with
``BEGIN IMMEDIATE`` (the write lock up front, so two writers never deadlock), or a plain
``BEGIN`` on a connection given the execution option ``clockface_read=True``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from clockface.errors import ClockfaceError


def explain(err: BaseException) -> str:
    """One line for a person from a database error (no SQL, no parameters): what the
    database said, and what to do about the common cases."""
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


def sqlite_engine(
    url: sa.URL | str,
    *,
    where: str,
    busy_timeout_s: float,
    error: type[ClockfaceError],
    creator: Callable[[], sqlite3.Connection] | None = None,
    **options: Any,
) -> sa.Engine:
    """An engine on the SQLite database at ``url`` (``creator``: how to connect, when the
    URL cannot say it, e.g. ``mode=rw``); ``where`` names it in ``error``'s message."""
    if creator is not None:
        options["creator"] = creator
    engine = sa.create_engine(url, **options)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            (mode,) = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                raise error(f"{where}: cannot switch to WAL mode (it stays {mode!r})")
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
