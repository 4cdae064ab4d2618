"""One way to put SQLAlchemy on a SQLite file: the central store's database and the
schedule tables of a kiosk database both go through :func:`sqlite_engine`.

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
