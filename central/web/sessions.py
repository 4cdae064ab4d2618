"""Signed-in browsers: a random cookie, only its SHA-256 stored, and when it stops working.

- :meth:`Sessions.start` makes a session for a supervisor who has just signed in: a
  fresh 32-byte random token for the cookie (never one the browser brought, so a token
  planted before sign-in is worth nothing), and a form token (CSRF) that every POST of
  the session must carry. The database keeps the token's SHA-256 only: a copy of the
  database signs nobody in.
- :meth:`Sessions.find` answers the session of a cookie, or None when it is unknown,
  idle for longer than the policy's ``idle``, older than its absolute ``lifetime``, or
  its supervisor's account is disabled; a session found is marked seen now. A dead
  session's row is deleted when it is met.
- :meth:`Sessions.end` (sign-out) deletes the row; :func:`end_sessions` ends every
  session of one supervisor (disabled, new password, ``supervisor sign-out``).

"Now" is the store's clock (:meth:`CentralStore.now`), so tests move it at will.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from central.store import CentralStore
from central.web import db

TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a session lives: ``idle`` since its last request, ``lifetime`` in all."""

    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class WebSession:
    """A live session (never its token)."""

    supervisor_id: int
    supervisor: str
    csrf_token: str
    created_utc: datetime
    last_seen_utc: datetime
    expires_utc: datetime


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just started: ``token`` goes into the cookie, once."""

    token: str
    session: WebSession

    def __repr__(self) -> str:  # never show the token in a traceback or log
        return f"NewSession(supervisor={self.session.supervisor!r})"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def end_sessions(conn: sa.Connection, supervisor_id: int) -> int:
    """Delete every session of a supervisor (inside the caller's transaction)."""
    result = conn.execute(
        sa.delete(db.SESSIONS).where(db.SESSIONS.c.supervisor_id == supervisor_id)
    )
    return int(result.rowcount or 0)


class Sessions:
    """The web sessions of a central database."""

    def __init__(self, store: CentralStore, policy: SessionPolicy | None = None) -> None:
        self._store = store
        self.policy = policy or SessionPolicy()

    def start(self, supervisor_id: int, supervisor: str) -> NewSession:
        """A new session for a supervisor who has just proved their password; sessions
        past their time (anyone's) are cleared out on the way."""
        now = self._store.now()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        csrf = secrets.token_urlsafe(TOKEN_BYTES)
        expires = now + self.policy.lifetime
        t = db.SESSIONS
        with db.writing(self._store, "starting a web session") as conn:
            conn.execute(
                sa.delete(t).where(
                    (t.c.expires_utc <= db.stamp(now))
                    | (t.c.last_seen_utc <= db.stamp(now - self.policy.idle))
                )
            )
            conn.execute(
                sa.insert(t).values(
                    token_sha256=token_hash(token),
                    supervisor_id=supervisor_id,
                    csrf_token=csrf,
                    created_utc=db.stamp(now),
                    last_seen_utc=db.stamp(now),
                    expires_utc=db.stamp(expires),
                )
            )
        return NewSession(token, WebSession(supervisor_id, supervisor, csrf, now, now, expires))

    def find(self, token: str | None) -> WebSession | None:
        """The live session of a cookie's token (marked seen now), or None."""
        if token is None or not _TOKEN.match(token):
            return None
        now = self._store.now()
        t, s = db.SESSIONS, db.SUPERVISORS
        key = token_hash(token)
        with db.writing(self._store, "checking a web session") as conn:
            row = conn.execute(
                sa.select(t, s.c.name, s.c.disabled_utc)
                .join(s, s.c.id == t.c.supervisor_id)
                .where(t.c.token_sha256 == key)
            ).first()
            if row is None:
                return None
            last_seen = _when(row.last_seen_utc)
            expires = _when(row.expires_utc)
            if (
                row.disabled_utc is not None
                or now >= expires
                or now - last_seen >= self.policy.idle
            ):
                conn.execute(sa.delete(t).where(t.c.token_sha256 == key))
                return None
            conn.execute(
                sa.update(t).where(t.c.token_sha256 == key).values(last_seen_utc=db.stamp(now))
            )
        return WebSession(
            int(row.supervisor_id), row.name, row.csrf_token, _when(row.created_utc), now, expires
        )

    def end(self, token: str | None, *, client: str = "") -> WebSession | None:
        """Sign out: delete the session of ``token`` (audited); None when there was none."""
        found = self.find(token)
        if found is None or token is None:
            return None
        now = self._store.now()
        with db.writing(self._store, "ending a web session") as conn:
            conn.execute(
                sa.delete(db.SESSIONS).where(db.SESSIONS.c.token_sha256 == token_hash(token))
            )
            db.audit(conn, now, found.supervisor, "logout", found.supervisor, _from(client))
        return found

    def count(self, supervisor_id: int) -> int:
        """How many sessions of a supervisor are stored (live or not yet cleared out)."""
        t = db.SESSIONS
        with db.reading(self._store, "counting web sessions") as conn:
            found = conn.execute(
                sa.select(sa.func.count()).where(t.c.supervisor_id == supervisor_id)
            ).scalar_one()
        return int(found)


def _when(text: str) -> datetime:
    found = db.parse(text)
    assert found is not None
    return found


def _from(client: str) -> str | None:
    return f"from {client}" if client else None
