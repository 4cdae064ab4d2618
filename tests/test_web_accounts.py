"""Supervisor accounts and web sessions on SQLite and PostgreSQL, and their CLI.

The store's clock is a settable one, so lock-outs and session expiry are tested by moving
time, never by waiting.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from central.store import CentralStore
from central.web import db
from central.web.accounts import REFUSED, Accounts, LoginPolicy
from central.web.passwords import (
    DEFAULT_COST,
    ScryptCost,
    dummy_verify,
    hash_password,
    needs_rehash,
    stored_cost,
    verify_password,
)
from central.web.sessions import SessionPolicy, Sessions
from clockface.cli import main
from clockface.errors import LoginRefusedError, SupervisorError, SupervisorNotFoundError
from tests.helpers.fakes import CHEAP_PASSWORDS, T0
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401

PASSWORD = "correct horse battery"
OTHER = "another long password"


class Clock:
    """A clock that stands still until moved."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database: str, clock: Clock) -> Iterator[CentralStore]:
    with CentralStore.open(database, actor="hr-admin", clock=clock) as opened:
        yield opened


@pytest.fixture
def accounts(store: CentralStore) -> Accounts:
    return Accounts(
        store,
        LoginPolicy(max_failed=5, lockout=timedelta(minutes=15)),
        password_cost=CHEAP_PASSWORDS,
    )


@pytest.fixture
def sessions(store: CentralStore) -> Sessions:
    return Sessions(store, SessionPolicy(idle=timedelta(minutes=30), lifetime=timedelta(hours=12)))


def audit_rows(store: CentralStore) -> list[tuple[str, str, str, str | None]]:
    return [
        (a.actor, a.action, a.subject, a.detail)
        for a in store.audit(limit=10_000)
        if a.kind == "supervisor"
    ]


def stored_text(store: CentralStore) -> str:
    """Every value of the supervisors', sessions' and audit tables, as one text."""
    with store.engine.connect() as conn:
        rows = [
            *conn.execute(sa.select(db.SUPERVISORS)).all(),
            *conn.execute(sa.select(db.SESSIONS)).all(),
            *conn.execute(sa.select(db.AUDIT)).all(),
        ]
    return "\n".join(repr(tuple(r)) for r in rows)


# --------------------------------------------------------------------- passwords
def test_password_hashes_carry_their_parameters_and_a_fresh_salt() -> None:
    """The service's default cost, for real: OWASP's minimum for scrypt."""
    assert (DEFAULT_COST.log_n, DEFAULT_COST.r, DEFAULT_COST.p) == (17, 8, 1)
    assert DEFAULT_COST.memory_bytes == 128 * 2**20
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("$scrypt$ln=17,r=8,p=1$") and second.startswith("$scrypt$ln=17,")
    assert stored_cost(first) == DEFAULT_COST and not needs_rehash(first)
    assert first != second and PASSWORD not in first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(OTHER, first)
    assert not verify_password(PASSWORD, first[:-2] + "AA")
    assert not verify_password(PASSWORD, "$scrypt$ln=40,r=8,p=1$AAAA$AAAA")  # refused, not run
    assert not verify_password(PASSWORD, "plain text")
    assert dummy_verify(PASSWORD) is False
    with pytest.raises(SupervisorError, match="at least 12 characters"):
        hash_password("short pass")


def test_a_weaker_stored_hash_needs_a_rehash_a_stronger_one_does_not() -> None:
    old = hash_password(PASSWORD, ScryptCost(log_n=10))
    assert old.startswith("$scrypt$ln=10,r=8,p=1$") and verify_password(PASSWORD, old)
    assert needs_rehash(old, ScryptCost(log_n=11)) and needs_rehash(old)
    assert needs_rehash(old, ScryptCost(log_n=10, r=9)) and needs_rehash(old, ScryptCost(10, 8, 2))
    assert not needs_rehash(old, ScryptCost(log_n=10)) and not needs_rehash(old, ScryptCost(9))
    assert needs_rehash("plain text") and stored_cost("$scrypt$ln=40,r=8,p=1$AAAA$AAAA") is None
    with pytest.raises(ValueError, match="out of range"):
        ScryptCost(log_n=21)


def test_sign_in_stores_a_stronger_hash_when_the_cost_grew(store: CentralStore) -> None:
    """An account made at an older cost: a wrong password or a refused sign-in leaves
    its hash alone; the first success replaces it (same password, new salt, the new
    cost) in the sign-in's transaction, audited; the next success keeps it."""
    Accounts(store, password_cost=ScryptCost(log_n=10)).add("ada", PASSWORD)
    grown = Accounts(
        store, LoginPolicy(max_failed=2, lockout=timedelta(minutes=15)),
        password_cost=ScryptCost(log_n=12),
    )  # fmt: skip

    def stored() -> str:
        with store.engine.connect() as conn:
            found: str = conn.execute(sa.select(db.SUPERVISORS.c.password_hash)).scalar_one()
        return found

    before = stored()
    with pytest.raises(LoginRefusedError):
        grown.login("ada", OTHER)
    grown.disable("ada")
    with pytest.raises(LoginRefusedError):
        grown.login("ada", PASSWORD)  # right, but disabled
    assert stored() == before
    grown.enable("ada")
    audited = len(audit_rows(store))
    assert grown.login("ada", PASSWORD).name == "ada"
    after = stored()
    assert after.startswith("$scrypt$ln=12,r=8,p=1$") and verify_password(PASSWORD, after)
    assert after.split("$")[3] != before.split("$")[3]  # a fresh salt
    assert audit_rows(store)[audited:] == [
        ("ada", "login", "ada", None),
        ("ada", "rehashed", "ada", "scrypt ln=10,r=8,p=1 -> ln=12,r=8,p=1"),
    ]
    assert grown.login("ada", PASSWORD).name == "ada"
    assert stored() == after
    assert [row[1] for row in audit_rows(store)[audited:]] == ["login", "rehashed", "login"]
    assert PASSWORD not in stored_text(store)


def test_a_hash_made_before_the_cost_grew_is_upgraded_to_the_default(
    store: CentralStore,
) -> None:
    """What happens to an account made before this release (scrypt N = 2**14) at its
    first sign-in with the service's defaults."""
    Accounts(store, password_cost=ScryptCost(log_n=14)).add("ada", PASSWORD)
    assert Accounts(store).login("ada", PASSWORD).name == "ada"
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(db.SUPERVISORS.c.password_hash)).scalar_one()
    assert str(stored).startswith("$scrypt$ln=17,r=8,p=1$") and not needs_rehash(str(stored))


# --------------------------------------------------------------------- accounts
def test_accounts_are_added_listed_and_refused_when_wrong(
    accounts: Accounts, store: CentralStore
) -> None:
    added = accounts.add("ada", PASSWORD)
    assert (added.name, added.disabled, added.failed_logins, added.last_login_utc) == (
        "ada", False, 0, None,
    )  # fmt: skip
    assert added.created_utc == T0
    accounts.add("<b>bob</b>", OTHER)
    assert [s.name for s in accounts.supervisors()] == ["<b>bob</b>", "ada"]
    with pytest.raises(SupervisorError, match="exists already"):
        accounts.add("ada", OTHER)
    with pytest.raises(SupervisorError, match="at least 12"):
        accounts.add("carol", "too short")
    for bad in ("", " ada", "x" * 65, "tab\there"):
        with pytest.raises(SupervisorError):
            accounts.add(bad, PASSWORD)
    with pytest.raises(SupervisorNotFoundError, match="no supervisor named 'nobody'"):
        accounts.disable("nobody")
    assert [s.name for s in accounts.supervisors()] == ["<b>bob</b>", "ada"]
    assert [(actor, action, subject) for actor, action, subject, _ in audit_rows(store)] == [
        ("hr-admin", "added", "ada"),
        ("hr-admin", "added", "<b>bob</b>"),
    ]
    assert PASSWORD not in stored_text(store) and OTHER not in stored_text(store)


def test_sign_in_right_wrong_and_unknown_are_audited_without_the_password(
    accounts: Accounts, store: CentralStore, clock: Clock
) -> None:
    accounts.add("ada", PASSWORD)
    clock.advance(minutes=1)
    signed = accounts.login("ada", PASSWORD, client="127.0.0.1")
    assert signed.last_login_utc == clock.now and signed.failed_logins == 0
    with pytest.raises(LoginRefusedError) as wrong:
        accounts.login("ada", OTHER, client="127.0.0.1")
    with pytest.raises(LoginRefusedError) as unknown:
        accounts.login("nobody", PASSWORD, client="127.0.0.1")
    assert str(wrong.value) == str(unknown.value) == REFUSED
    assert accounts.get("ada").failed_logins == 1
    assert audit_rows(store)[1:] == [
        ("ada", "login", "ada", "from 127.0.0.1"),
        ("web", "login_failed", "ada", "wrong password (1 in a row), from 127.0.0.1"),
        ("web", "login_failed", "(unknown name)", "from 127.0.0.1"),
    ]
    accounts.login("ada", PASSWORD)
    assert accounts.get("ada").failed_logins == 0  # a success clears the count
    assert PASSWORD not in stored_text(store) and OTHER not in stored_text(store)


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    accounts: Accounts, store: CentralStore, clock: Clock
) -> None:
    accounts.add("ada", PASSWORD)
    for _ in range(4):
        with pytest.raises(LoginRefusedError):
            accounts.login("ada", OTHER)
    assert not accounts.get("ada").locked(clock.now)
    with pytest.raises(LoginRefusedError):
        accounts.login("ada", OTHER)
    locked = accounts.get("ada")
    assert locked.locked(clock.now) and locked.locked_until_utc == clock.now + timedelta(minutes=15)
    clock.advance(minutes=14, seconds=59)
    with pytest.raises(LoginRefusedError):  # even the right password, while locked
        accounts.login("ada", PASSWORD)
    clock.advance(seconds=1)
    assert accounts.login("ada", PASSWORD).name == "ada"
    actions = [action for _, action, _, _ in audit_rows(store)]
    assert actions.count("locked") == 1 and actions[-1] == "login"
    assert any(d and "account locked until" in d for _, _, _, d in audit_rows(store))
    # enable lifts a lock at once
    for _ in range(5):
        with pytest.raises(LoginRefusedError):
            accounts.login("ada", OTHER)
    assert accounts.get("ada").locked(clock.now)
    accounts.enable("ada")
    assert accounts.login("ada", PASSWORD).failed_logins == 0


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end_at_once(
    accounts: Accounts, sessions: Sessions, store: CentralStore
) -> None:
    ada = accounts.add("ada", PASSWORD)
    started = sessions.start(ada.id, ada.name)
    assert sessions.find(started.token) is not None
    accounts.disable("ada")
    assert sessions.find(started.token) is None and sessions.count(ada.id) == 0
    with pytest.raises(LoginRefusedError):
        accounts.login("ada", PASSWORD)
    assert audit_rows(store)[-1][1:] == ("login_failed", "ada", "account disabled")
    accounts.enable("ada")
    assert accounts.login("ada", PASSWORD).name == "ada"


def test_a_disabled_flag_alone_stops_a_session(
    accounts: Accounts, sessions: Sessions, store: CentralStore
) -> None:
    """Even a session row left behind (by another process) stops with the account."""
    ada = accounts.add("ada", PASSWORD)
    started = sessions.start(ada.id, ada.name)
    with store.engine.begin() as conn:
        conn.execute(sa.update(db.SUPERVISORS).values(disabled_utc="2024-03-04T08:00:00.000000Z"))
    assert sessions.find(started.token) is None


def test_a_new_password_and_sign_out_end_sessions(
    accounts: Accounts, sessions: Sessions, store: CentralStore
) -> None:
    ada = accounts.add("ada", PASSWORD)
    one, two = sessions.start(ada.id, ada.name), sessions.start(ada.id, ada.name)
    assert accounts.sign_out("ada") == 2
    assert sessions.find(one.token) is None and sessions.find(two.token) is None
    three = sessions.start(ada.id, ada.name)
    accounts.set_password("ada", OTHER)
    assert sessions.find(three.token) is None
    with pytest.raises(LoginRefusedError):
        accounts.login("ada", PASSWORD)
    assert accounts.login("ada", OTHER).name == "ada"
    assert [a for _, a, _, _ in audit_rows(store)][1:4] == ["signed_out", "password_set",
                                                            "login_failed"]  # fmt: skip


# --------------------------------------------------------------------- sessions
def test_sessions_store_only_the_hash_and_expire_when_idle(
    accounts: Accounts, sessions: Sessions, store: CentralStore, clock: Clock
) -> None:
    ada = accounts.add("ada", PASSWORD)
    started = sessions.start(ada.id, ada.name)
    assert len(started.token) == 43 and started.token not in repr(started)
    text = stored_text(store)
    assert started.token not in text
    assert hashlib.sha256(started.token.encode()).hexdigest() in text
    found = sessions.find(started.token)
    assert found is not None and found.supervisor == "ada"
    assert found.csrf_token == started.session.csrf_token and len(found.csrf_token) == 43
    assert sessions.find(started.token[:-1] + ("A" if started.token[-1] != "A" else "B")) is None
    assert sessions.find("not a token") is None and sessions.find(None) is None
    clock.advance(minutes=29, seconds=59)
    assert sessions.find(started.token) is not None  # seen: the idle time starts again
    clock.advance(minutes=29, seconds=59)
    assert sessions.find(started.token) is not None
    clock.advance(minutes=30)
    assert sessions.find(started.token) is None
    assert sessions.count(ada.id) == 0  # the dead session's row is gone


def test_sessions_end_after_their_lifetime_however_busy(
    accounts: Accounts, sessions: Sessions, clock: Clock
) -> None:
    ada = accounts.add("ada", PASSWORD)
    started = sessions.start(ada.id, ada.name)
    for _ in range(12 * 3 - 1):
        clock.advance(minutes=20)
        assert sessions.find(started.token) is not None
    clock.advance(minutes=20)  # 12 hours after sign-in
    assert sessions.find(started.token) is None


def test_sign_out_deletes_the_session_and_is_audited(
    accounts: Accounts, sessions: Sessions, store: CentralStore, clock: Clock
) -> None:
    ada = accounts.add("ada", PASSWORD)
    started = sessions.start(ada.id, ada.name)
    other = sessions.start(ada.id, ada.name)
    ended = sessions.end(started.token, client="127.0.0.1")
    assert ended is not None and ended.supervisor == "ada"
    assert sessions.find(started.token) is None and sessions.find(other.token) is not None
    assert sessions.end(started.token) is None
    assert audit_rows(store)[-1] == ("ada", "logout", "ada", "from 127.0.0.1")
    clock.advance(hours=13)
    sessions.start(ada.id, ada.name)  # clears out sessions past their time
    assert sessions.count(ada.id) == 1


# --------------------------------------------------------------------- CLI
def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["central", "supervisor", *args], input=input)


def one_line_error(result: Result, words: str) -> None:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error") and words in lines[-1], result.output
    assert "Traceback" not in result.output


def test_the_supervisor_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = str(tmp_path / "central.db")
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    added = run("add", "ada", "--password-file", str(secret), "--database", db_path)
    assert added.exit_code == 0 and "supervisor 'ada' added" in added.output, added.output
    one_line_error(
        run("add", "ada", "--password-file", str(secret), "--database", db_path), "exists already"
    )
    short = tmp_path / "short.txt"
    short.write_text("short\n", encoding="utf-8")
    one_line_error(
        run("add", "bob", "--password-file", str(short), "--database", db_path), "at least 12"
    )
    one_line_error(run("add", "bob", "--database", db_path), "--password-file")  # no terminal
    one_line_error(
        run("add", "bob", "--password-file", str(tmp_path / "missing"), "--database", db_path),
        "cannot read the password file",
    )
    by_stdin = run("add", "carol", "--password-file", "-", "--database", db_path, input=OTHER)
    assert by_stdin.exit_code == 0, by_stdin.output

    monkeypatch.setattr("central.cli._stdin_is_terminal", lambda: True)
    mismatch = run("add", "bob", "--database", db_path, input=f"{PASSWORD}\n{OTHER}\n")
    assert mismatch.exit_code != 0 and "do not match" in mismatch.output.lower()
    asked = run("add", "bob", "--database", db_path, input=f"{OTHER}\n{OTHER}\n")
    assert asked.exit_code == 0 and "supervisor 'bob' added" in asked.output, asked.output
    assert OTHER not in asked.output

    with CentralStore.open(db_path, actor="t") as store:
        accounts = Accounts(store)
        assert accounts.login("bob", OTHER).name == "bob"
        assert accounts.login("carol", OTHER).name == "carol"
        for _ in range(5):
            with pytest.raises(LoginRefusedError):
                accounts.login("ada", OTHER)
        ada = accounts.get("ada")
        Sessions(store).start(ada.id, "ada")
    listed = run("list", "--database", db_path)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[-1] == "3 supervisors"
    assert lines[0].startswith("ada") and "LOCKED until" in lines[0] and "sessions 1" in lines[0]
    assert "active" in lines[1] and "last sign-in 20" in lines[1]

    assert "1 session ended" in run("sign-out", "ada", "--database", db_path).output
    assert "disabled" in run("disable", "bob", "--database", db_path).output
    assert "disabled 20" in run("list", "--database", db_path).output.splitlines()[1]
    assert run("enable", "bob", "--database", db_path).exit_code == 0
    assert "LOCKED" not in run("list", "--database", db_path).output.splitlines()[1]
    new = run("set-password", "ada", "--database", db_path, input=f"{PASSWORD}!\n{PASSWORD}!\n")
    assert new.exit_code == 0 and "new password set" in new.output
    assert "LOCKED" not in run("list", "--database", db_path).output.splitlines()[0]
    one_line_error(run("disable", "nobody", "--database", db_path), "no supervisor named")
    with sqlite3.connect(db_path) as conn:
        everything = "\n".join(
            repr(r) for t in ("supervisors", "audit") for r in conn.execute(f"SELECT * FROM {t}")
        )
    assert PASSWORD not in everything and OTHER not in everything


# --------------------------------------------------------------------- config
def test_the_web_keys_of_the_config(tmp_path: Path) -> None:
    import tomllib

    from central.config import default_file, load_config
    from clockface.errors import ConfigError

    defaults = tomllib.loads(default_file())["central"]
    assert (defaults["web_idle_minutes"], defaults["web_session_hours"]) == (30, 12)
    assert (defaults["web_max_failed_logins"], defaults["web_lockout_minutes"]) == (5, 15)
    assert defaults["web_secure_cookies"] is False
    config = tmp_path / "central.toml"
    config.write_text("[central]\nweb_idle_minutes = 10\nweb_secure_cookies = true\n")
    loaded = load_config(config, environ={"CLOCKFACE_CENTRAL_WEB_LOCKOUT_MINUTES": "60"})
    assert (loaded.web_idle_minutes, loaded.web_secure_cookies) == (10, True)
    assert loaded.web_lockout_minutes == 60
    with pytest.raises(ConfigError, match="web_max_failed_logins must be 1 to 100, not 0"):
        load_config(environ={"CLOCKFACE_CENTRAL_WEB_MAX_FAILED_LOGINS": "0"})
    with pytest.raises(ConfigError, match="must not exceed web_session_hours"):
        load_config(environ={"CLOCKFACE_CENTRAL_WEB_IDLE_MINUTES": "120",
                             "CLOCKFACE_CENTRAL_WEB_SESSION_HOURS": "1"})  # fmt: skip
