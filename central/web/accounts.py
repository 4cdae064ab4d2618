"""Supervisor accounts: add, list, disable, enable, new password, sign out, and sign-in.

- A name is 1 to 64 printable characters without spaces at either end; a password at
  least :data:`~central.web.passwords.MIN_LENGTH` characters, stored as a scrypt hash.
- **Sign-in** (:meth:`Accounts.login`) checks the password outside any transaction
  (scrypt takes a while), then, in one transaction, re-reads the account and records
  the outcome. An unknown name gets the same work (a dummy scrypt) and the same answer
  as a wrong password. A wrong password counts; the ``max_failed``-th in a row locks the
  account for ``lockout`` (the count starts again). While locked, or disabled, even the
  right password is refused. A success clears the count, and stores a new hash of the
  password when the stored one is weaker than the accounts' ``password_cost`` (made
  before the defaults grew), in the same transaction, audited as ``rehashed``. Every
  refusal is one
  :class:`~clockface.errors.LoginRefusedError` with the same words; which reason it was
  goes to the audit log only.
- **Disabling** an account, or giving it a new password, ends its sessions at once;
  enabling it (or a new password) also lifts a lock.
- Every change and every sign-in (success or failure) is an audit row of kind
  ``supervisor``; never a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from central.store import CentralStore
from central.web import db
from central.web.passwords import (
    DEFAULT_COST,
    ScryptCost,
    dummy_verify,
    hash_password,
    needs_rehash,
    stored_cost,
    verify_password,
)
from central.web.sessions import end_sessions
from clockface.errors import LoginRefusedError, SupervisorError, SupervisorNotFoundError

MAX_NAME = 64
REFUSED = "wrong name or password, or the account is locked or disabled"


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """``max_failed`` wrong passwords in a row lock an account for ``lockout``."""

    max_failed: int = 5
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Supervisor:
    """A supervisor account (never its password hash)."""

    id: int
    name: str
    created_utc: datetime
    password_set_utc: datetime
    disabled_utc: datetime | None
    failed_logins: int
    locked_until_utc: datetime | None
    last_login_utc: datetime | None

    @property
    def disabled(self) -> bool:
        return self.disabled_utc is not None

    def locked(self, now: datetime) -> bool:
        """Whether the account is locked at ``now``."""
        return self.locked_until_utc is not None and now < self.locked_until_utc


def check_name(name: object) -> str:
    """A supervisor name, or SupervisorError saying what is wrong with it."""
    if not isinstance(name, str) or not name.strip():
        raise SupervisorError("a supervisor name must not be empty")
    if name != name.strip():
        raise SupervisorError(f"a supervisor name must not start or end with spaces: {name!r}")
    if len(name) > MAX_NAME:
        raise SupervisorError(f"a supervisor name is at most {MAX_NAME} characters")
    if not name.isprintable():
        raise SupervisorError(f"a supervisor name must be printable characters: {name!r}")
    return name


class Accounts:
    """The supervisor accounts of a central database; changes are audited as the
    store's actor (``store.with_actor(...)`` to name someone else). ``password_cost``:
    what new password hashes cost (the default everywhere but in tests that make many
    accounts)."""

    def __init__(
        self,
        store: CentralStore,
        policy: LoginPolicy | None = None,
        *,
        password_cost: ScryptCost = DEFAULT_COST,
    ) -> None:
        self._store = store
        self.policy = policy or LoginPolicy()
        self.password_cost = password_cost

    # ----------------------------------------------------------------- reading
    def supervisors(self) -> list[Supervisor]:
        """Every account, by name."""
        t = db.SUPERVISORS
        with db.reading(self._store, "listing supervisors") as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.name)).all()
        return [_supervisor(r) for r in rows]

    def get(self, name: str) -> Supervisor:
        with db.reading(self._store, "reading a supervisor") as conn:
            return _supervisor(self._require(conn, name))

    # ----------------------------------------------------------------- changes
    def add(self, name: str, password: str) -> Supervisor:
        """A new account; SupervisorError when the name is taken or the password short."""
        check_name(name)
        hashed = hash_password(password, self.password_cost)
        now = self._store.now()
        t = db.SUPERVISORS
        with db.writing(self._store, "adding a supervisor") as conn:
            if self._find(conn, name) is not None:
                raise SupervisorError(f"a supervisor named {name!r} exists already")
            conn.execute(
                sa.insert(t).values(
                    name=name,
                    password_hash=hashed,
                    password_set_utc=db.stamp(now),
                    created_utc=db.stamp(now),
                    disabled_utc=None,
                    failed_logins=0,
                    locked_until_utc=None,
                    last_login_utc=None,
                )
            )
            db.audit(conn, now, self._store.actor, "added", name)
            return _supervisor(self._require(conn, name))

    def disable(self, name: str) -> Supervisor:
        """Disable an account: it cannot sign in, and its sessions end now."""
        now = self._store.now()
        with db.writing(self._store, "disabling a supervisor") as conn:
            row = self._require(conn, name, lock=True)
            if row.disabled_utc is None:
                self._set(conn, row.id, disabled_utc=db.stamp(now))
            ended = end_sessions(conn, row.id)
            db.audit(conn, now, self._store.actor, "disabled", name, _ended(ended))
            return _supervisor(self._require(conn, name))

    def enable(self, name: str) -> Supervisor:
        """Enable an account again, and lift a lock-out."""
        now = self._store.now()
        with db.writing(self._store, "enabling a supervisor") as conn:
            row = self._require(conn, name, lock=True)
            self._set(conn, row.id, disabled_utc=None, failed_logins=0, locked_until_utc=None)
            db.audit(conn, now, self._store.actor, "enabled", name)
            return _supervisor(self._require(conn, name))

    def set_password(self, name: str, password: str) -> Supervisor:
        """A new password: the account's sessions end and a lock-out is lifted."""
        hashed = hash_password(password, self.password_cost)
        now = self._store.now()
        with db.writing(self._store, "setting a supervisor's password") as conn:
            row = self._require(conn, name, lock=True)
            self._set(
                conn, row.id, password_hash=hashed, password_set_utc=db.stamp(now),
                failed_logins=0, locked_until_utc=None,
            )  # fmt: skip
            ended = end_sessions(conn, row.id)
            db.audit(conn, now, self._store.actor, "password_set", name, _ended(ended))
            return _supervisor(self._require(conn, name))

    def sign_out(self, name: str) -> int:
        """End every session of an account; returns how many there were."""
        now = self._store.now()
        with db.writing(self._store, "signing a supervisor out") as conn:
            row = self._require(conn, name, lock=True)
            ended = end_sessions(conn, row.id)
            db.audit(conn, now, self._store.actor, "signed_out", name, _ended(ended))
        return ended

    # ----------------------------------------------------------------- sign-in
    def login(self, name: str, password: str, *, client: str = "") -> Supervisor:
        """The account, when ``password`` is its password and it may sign in now;
        LoginRefusedError (always the same words) otherwise. Audited either way."""
        where = f"from {client}" if client else None
        try:
            check_name(name)
        except SupervisorError:
            name = ""
        with db.reading(self._store, "signing in") as conn:
            found = self._find(conn, name) if name else None
        if found is None:
            dummy_verify(password, self.password_cost)
            now = self._store.now()
            with db.writing(self._store, "recording a sign-in") as conn:
                db.audit(conn, now, "web", "login_failed", "(unknown name)", where)
            raise LoginRefusedError(REFUSED)
        right = verify_password(password, found.password_hash)
        # A hash made before the cost grew is replaced, if this sign-in succeeds; made
        # here, outside the transaction, as scrypt takes a while.
        rehashed = None
        if right and needs_rehash(found.password_hash, self.password_cost):
            rehashed = hash_password(password, self.password_cost)
        now = self._store.now()
        refused: str | None = None
        with db.writing(self._store, "recording a sign-in") as conn:
            row = self._find(conn, name, lock=True)
            if row is None:
                refused = "account removed"
            elif row.disabled_utc is not None:
                refused = "account disabled"
            elif row.locked_until_utc is not None and now < _when(row.locked_until_utc):
                refused = f"account locked until {row.locked_until_utc}"
            elif not right or row.password_hash != found.password_hash:
                failures = int(row.failed_logins) + 1
                refused = f"wrong password ({failures} in a row)"
                if failures >= self.policy.max_failed:
                    until = db.stamp(now + self.policy.lockout)
                    self._set(conn, row.id, failed_logins=0, locked_until_utc=until)
                    db.audit(conn, now, "web", "locked", name, f"{failures} wrong passwords "
                             f"in a row; locked until {until}")  # fmt: skip
                else:
                    self._set(conn, row.id, failed_logins=failures)
            else:
                self._set(
                    conn, row.id, failed_logins=0, locked_until_utc=None,
                    last_login_utc=db.stamp(now),
                )  # fmt: skip
                db.audit(conn, now, name, "login", name, where)
                if rehashed is not None:
                    self._set(conn, row.id, password_hash=rehashed)
                    old = stored_cost(row.password_hash)
                    db.audit(conn, now, name, "rehashed", name, "scrypt "
                             f"{old.phc() if old else 'unreadable'} -> "
                             f"{self.password_cost.phc()}")  # fmt: skip
            if refused is not None:
                detail = refused if where is None else f"{refused}, {where}"
                db.audit(conn, now, "web", "login_failed", name, detail)
        if refused is not None:
            raise LoginRefusedError(REFUSED)
        return self.get(name)

    # ----------------------------------------------------------------- internals
    def _find(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        query = sa.select(db.SUPERVISORS).where(db.SUPERVISORS.c.name == name)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return conn.execute(query).first()

    def _require(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        row = self._find(conn, name, lock=lock)
        if row is None:
            raise SupervisorNotFoundError(
                f"no supervisor named {name!r} (see `clockface central supervisor list`)"
            )
        return row

    def _set(self, conn: sa.Connection, supervisor_id: int, **values: Any) -> None:
        t = db.SUPERVISORS
        conn.execute(sa.update(t).where(t.c.id == supervisor_id).values(**values))


def _supervisor(row: Any) -> Supervisor:
    return Supervisor(
        id=int(row.id),
        name=row.name,
        created_utc=_when(row.created_utc),
        password_set_utc=_when(row.password_set_utc),
        disabled_utc=db.parse(row.disabled_utc),
        failed_logins=int(row.failed_logins),
        locked_until_utc=db.parse(row.locked_until_utc),
        last_login_utc=db.parse(row.last_login_utc),
    )


def _when(text: str) -> datetime:
    found = db.parse(text)
    assert found is not None
    return found


def _ended(count: int) -> str:
    return f"{count} session{'' if count == 1 else 's'} ended"
