"""Where the central database is and how to reach it: :func:`resolve_database` reads a
file path or a URL, and the engine builders set SQLite up (through
:func:`clockface.database.sqlite_engine`: WAL, ``synchronous=FULL``, writes that take the
lock up front) and PostgreSQL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from clockface.database import sqlite_engine
from clockface.errors import CentralStoreError, CentralValueError

DEFAULT_BUSY_TIMEOUT_S = 5.0
DEFAULT_CLOCK_SKEW_SECONDS = 120.0
DEFAULT_CONNECT_TIMEOUT_S = 10


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
    return sqlite_engine(
        target.url,
        where=target.describe(),
        busy_timeout_s=busy_timeout_s,
        error=CentralStoreError,
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
        pool_size=8,
        max_overflow=8,
    )


def _postgres_engine(target: DatabaseTarget) -> sa.Engine:
    return sa.create_engine(target.url, pool_size=8, max_overflow=8, pool_pre_ping=True)
