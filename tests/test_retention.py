"""Retention: people deactivated longer than the configured period are purged; consent
withdrawal erases. Real SQLite files, ``clockface enroll`` in this process."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from central.store import CentralStore
from clockface.cli import main
from clockface.consent import Consent
from clockface.errors import StoreValueError
from kiosk.store import Expired, KioskStore
from tests.helpers.cli import ok
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.template_keys import template_key_file  # noqa: F401
from tests.helpers.templates import vectors

LONG_AGO = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)


class Clock:
    """A clock that stays where the test sets it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def run(
    db: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> Result:
    runner = CliRunner(env={"CLOCKFACE_DB": str(db), **(env or {})})
    return runner.invoke(main, ["enroll", *args], input=input)


def templates(db: Path) -> dict[str, int]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT person_id, count(*) FROM templates GROUP BY person_id")
        return dict(rows.fetchall())


@pytest.fixture
def roster(tmp_path: Path) -> Callable[[datetime], Path]:
    """A kiosk database: e1 deactivated at ``old``, e2 deactivated 10 days before the real
    now, e3 active; each with consent and templates."""

    def make(old: datetime) -> Path:
        db = tmp_path / "kiosk.db"
        clock = Clock(old)
        with KioskStore.open(db, actor="hr-admin", clock=clock) as store:
            for i, pid in enumerate(("e1", "e2", "e3")):
                consent = Consent(f"CF-{pid}", "v1", old)
                store.enroll(pid, f"Person {i}", None, vectors(2, i), consent=consent)
            store.set_active("e1", False)
            clock.now = datetime.now(UTC) - timedelta(days=10)
            store.set_active("e2", False)
        return db

    return make


def test_a_dry_run_lists_who_and_when_and_changes_nothing(
    roster: Callable[[datetime], Path],
) -> None:
    db = roster(LONG_AGO)
    before = db.read_bytes()
    out = ok(run(db, "purge", "--dry-run"))
    assert out.splitlines() == [
        "would erase e1: deactivated 2024-03-04 08:00:00 UTC, 2 templates",
        "1 person deactivated over 365 days: nothing changed (dry run)",
    ]
    assert db.read_bytes() == before
    # A shorter period from the configuration (here its environment variable) reaches e2.
    out = ok(run(db, "purge", "--dry-run", env={"CLOCKFACE_KIOSK_RETENTION_DAYS": "5"}))
    assert "would erase e2: deactivated " in out and "2 people deactivated over 5 days" in out


def test_purge_erases_the_expired_and_audits_each(roster: Callable[[datetime], Path]) -> None:
    db = roster(LONG_AGO)
    out = ok(run(db, "purge"))
    assert "erased e1: deactivated 2024-03-04 08:00:00 UTC, 2 templates" in out
    assert templates(db) == {"e2": 2, "e3": 2}
    with KioskStore.open(db) as store:
        assert [p.person_id for p in store.people()] == ["e2", "e3"]
        (entry,) = [e for e in store.audit_log("e1") if e.action == "retention_purge"]
        assert entry.detail == (
            "erased with 2 templates, deactivated 2024-03-04T08:00:00.000000Z, retention 365 days"
        )
        assert store.lawful_bases("e1") == (Consent("CF-e1", "v1", LONG_AGO),)  # kept
    assert "Person 0" not in db.read_bytes().decode("latin-1")  # secure_delete, checkpointed
    assert ok(run(db, "purge")) == "nobody deactivated over 365 days: nothing to purge\n"


def test_the_library_counts_from_its_clock_and_refuses_a_bad_period(
    roster: Callable[[datetime], Path],
) -> None:
    db = roster(LONG_AGO)
    with KioskStore.open(db) as store:
        at = LONG_AGO + timedelta(days=365)
        assert store.expired(365, now=at) == []  # exactly 365 days: not yet
        assert store.expired(365, now=at + timedelta(seconds=1)) == [Expired("e1", LONG_AGO, 2)]
        for bad in (0, -1, True):
            with pytest.raises(StoreValueError, match="retention_days"):
                store.expired(bad)
        store.set_active("e1", True)  # reactivated: no longer counts
        assert [p.person_id for p in store.purge(1)] == ["e2"]  # 10 days ago, by the OS clock
        assert [p.person_id for p in store.people()] == ["e1", "e3"]


def test_withdrawing_consent_erases_the_person(roster: Callable[[datetime], Path]) -> None:
    db = roster(LONG_AGO)
    result = run(db, "consent", "withdraw", "e3", input="n\n")
    assert result.exit_code == 1 and templates(db)["e3"] == 2
    out = ok(run(db, "consent", "withdraw", "e3", "--yes"))
    assert "consent withdrawn: erased e3" in out and "2 face templates deleted" in out
    assert "e3" not in templates(db)
    with KioskStore.open(db) as store:
        assert [e.action for e in store.audit_log("e3")][-1] == "remove"
        assert store.lawful_bases("e3")  # proof of what was agreed stays


# --------------------------------------------------------------------- the central roster
@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh central database of each kind: a SQLite path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_the_central_purge_is_an_erasure_every_kiosk_confirms(database: str) -> None:
    clock = Clock(LONG_AGO)
    with CentralStore.open(database, actor="hr-admin", clock=clock) as store:
        store.add_site("HQ", "Europe/Paris")
        store.create_kiosk("door-1", "HQ")
        for i, pid in enumerate(("e1", "e2")):
            store.enroll(pid, f"Person {i}", None, vectors(2, i))
        store.set_active("e1", False)
        store.set_active("e2", False)
        store.set_active("e2", True)
    db = Path("unused.db")
    out = ok(run(db, "purge", "--dry-run", "--central-db", database))
    assert out.splitlines() == [
        "would erase e1: deactivated 2024-03-04 08:00:00 UTC, 2 templates",
        "1 person deactivated over 365 days: nothing changed (dry run)",
    ]
    out = ok(
        run(db, "purge", "--central-db", database, env={"CLOCKFACE_CENTRAL_RETENTION_DAYS": "30"})
    )
    assert "erased e1: deactivated 2024-03-04 08:00:00 UTC, 2 templates" in out
    assert "over 30 days" in out
    with CentralStore.open(database) as store:
        assert [p.person_id for p in store.people()] == ["e2"]
        (erasure,) = store.erasures()
        assert (erasure.person_id, erasure.confirmed, erasure.pending) == ("e1", (), ("door-1",))
        (entry,) = [e for e in store.audit_log("e1") if e.action == "retention_purge"]
        assert entry.actor != "" and "Person" not in (entry.detail or "")
        assert store.expired(365) == []
    one = run(
        db, "purge", "--server", "https://central.example", env={"CLOCKFACE_ADMIN_TOKEN": "x"}
    )
    assert one.exit_code == 1 and "--central-db" in one.stderr


def test_step_5_dates_central_deactivations(database: str) -> None:
    with CentralStore.open(database, actor="hr-admin", clock=Clock(LONG_AGO)) as store:
        store.enroll("e1", "Ada", None, vectors(1))
        store.set_active("e1", False)
        assert store.expired(1, now=LONG_AGO + timedelta(days=2)) == [Expired("e1", LONG_AGO, 1)]
        with pytest.raises(StoreValueError, match="retention_days"):
            store.purge(0)
