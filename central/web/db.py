"""Transactions on the central database for the web page's own tables, and its audit rows.

The supervisors' tables (``supervisors``, ``web_sessions``) live in the central database
(:mod:`central.migrations`, version 2); this package queries them through the store's
public engine, as the store does its own: a write takes SQLite's write lock up front
(the engine begins ``IMMEDIATE``), a read runs in a plain deferred transaction, and any
database error comes out as one CentralStoreError line naming the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from central import migrations
from central.store import CentralStore
from clockface.database import explain
from clockface.errors import CentralStoreError
from clockface.values import iso_utc

AUDIT_KIND = "supervisor"
TABLES = migrations.current_tables().tables
SUPERVISORS = TABLES["supervisors"]
SESSIONS = TABLES["web_sessions"]
AUDIT = TABLES["audit"]


@contextmanager
def writing(store: CentralStore, doing: str) -> Iterator[sa.Connection]:
    """One write transaction, committed at the end, rolled back on any error."""
    try:
        with store.engine.begin() as conn:
            yield conn
    except sa.exc.SQLAlchemyError as err:
        raise CentralStoreError(f"{store.where}: {doing} failed: {explain(err)}") from err


@contextmanager
def reading(store: CentralStore, doing: str) -> Iterator[sa.Connection]:
    """One read-only transaction."""
    try:
        with store.engine.connect() as conn:
            conn.execution_options(clockface_read=True)
            with conn.begin():
                yield conn
    except sa.exc.SQLAlchemyError as err:
        raise CentralStoreError(f"{store.where}: {doing} failed: {explain(err)}") from err


def audit(
    conn: sa.Connection,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    detail: str | None = None,
) -> None:
    """An audit row of kind ``supervisor``: never a password, a token or a cookie."""
    conn.execute(
        sa.insert(AUDIT).values(
            at_utc=iso_utc(at),
            actor=actor[:200],
            kind=AUDIT_KIND,
            action=action,
            subject=subject[:200],
            detail=detail,
        )
    )


def stamp(moment: datetime) -> str:
    """A time as the central database stores it."""
    return iso_utc(moment)


def parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
