"""Every admin write command leaves an audit entry naming who and what, and never a name,
a template or a token. Each command is driven once through the CLI on real SQLite files.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from clockface.cli import main
from clockface.consent import Consent
from clockface.values import os_user
from kiosk.store import KioskStore
from tests.helpers.cli import succeeds
from tests.helpers.template_keys import template_key_file  # noqa: F401
from tests.helpers.templates import vectors

ACTOR = os_user()
NAMES = ("Ada Lovelace", "Bob Byron", "Cy Young", "Renamed Person")
LONG_AGO = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)


def rows(db: Path, sql: str) -> list[tuple[str, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return [tuple(str(v) for v in row) for row in conn.execute(sql).fetchall()]


def check_clean(entries: list[tuple[str, ...]], secrets: list[str]) -> None:
    """No name of a person, no printed token or key in any audit row."""
    text = "\n".join(" ".join(entry) for entry in entries)
    for word in (*NAMES, *secrets):
        assert word not in text, word


# --------------------------------------------------------------------- the kiosk
@pytest.fixture
def kiosk_db(tmp_path: Path) -> Path:
    db = tmp_path / "kiosk.db"
    with KioskStore.open(db, actor="setup", clock=lambda: LONG_AGO) as store:
        for i, (pid, name) in enumerate((("e1", NAMES[0]), ("e2", NAMES[1]), ("e3", NAMES[2]))):
            store.enroll(pid, name, None, vectors(2, i), consent=Consent(f"CF-{i}", "1", LONG_AGO))
        store.set_active("e3", False)  # long ago: past the retention period
    return db


KIOSK_COMMANDS = [
    (("enroll", "update", "e1", "--name", NAMES[3]), "update"),
    (("enroll", "deactivate", "e1"), "deactivate"),
    (("enroll", "reactivate", "e1"), "reactivate"),
    (("enroll", "remove", "e2", "--yes"), "remove"),
    (("enroll", "consent", "withdraw", "e1", "--yes"), "remove"),
    (("enroll", "purge"), "retention_purge"),
]


def test_each_kiosk_roster_command_leaves_one_entry(kiosk_db: Path, tmp_path: Path) -> None:
    seen = len(rows(kiosk_db, "SELECT id FROM audit"))
    for args, action in KIOSK_COMMANDS:
        succeeds(*args, "--db", str(kiosk_db))
        entries = rows(kiosk_db, "SELECT actor, action, person_id, detail FROM audit ORDER BY id")
        new = entries[seen:]
        assert [(e[0], e[1]) for e in new] == [(ACTOR, action)], (args, new)
        seen = len(entries)
    # The roster file round trip: each person added back is audited.
    roster = tmp_path / "roster.json"
    other = tmp_path / "other.db"
    with KioskStore.open(other, actor="setup") as store:
        store.enroll("e9", NAMES[0], None, vectors(1, 9))
    succeeds("enroll", "export", str(roster), "--db", str(other))
    consent = ("--consent-ref", "CF-{id}", "--notice-version", "1")
    succeeds("enroll", "import-roster", str(roster), *consent, "--db", str(kiosk_db))
    entries = rows(kiosk_db, "SELECT actor, action, person_id, detail FROM audit ORDER BY id")
    assert [(e[0], e[1], e[2]) for e in entries[seen:]] == [
        (ACTOR, "add", "e9"),
        (ACTOR, "add_templates", "e9"),
        (ACTOR, "consent", "e9"),
    ]
    seen = len(entries)
    key = tmp_path / "new.key"
    succeeds("kiosk", "rotate-key", "--db", str(kiosk_db), "--new-key-file", str(key))
    entries = rows(kiosk_db, "SELECT actor, action, person_id, detail FROM audit ORDER BY id")
    ((actor, action, subject, detail),) = entries[seen:]
    assert (actor, action, subject) == (ACTOR, "rotate_template_key", "")
    assert "1 templates resealed" in detail
    check_clean(entries, [key.read_bytes().hex()])


def test_the_kiosk_sync_commands_that_change_it_leave_an_entry(kiosk_db: Path) -> None:
    url = "https://attendance.example.org"
    with KioskStore.open(kiosk_db, clock=lambda: LONG_AGO) as store:
        for _ in range(2):
            store.append_event(
                "e1", "in", utc=LONG_AGO, tz="Europe/Berlin", distance=0.3, margin=0.2,
                frames=2, software_version="test",
            )  # fmt: skip
        store.park({store.events()[0].event_id: "refused by the service"})
        store.attach(url)
    seen = len(rows(kiosk_db, "SELECT id FROM audit"))
    succeeds("sync", "retry-parked", "--db", str(kiosk_db))
    succeeds("sync", "retry-parked", "--db", str(kiosk_db))  # nothing parked: nothing audited
    succeeds("sync", "detach", "--db", str(kiosk_db))
    succeeds("sync", "detach", "--db", str(kiosk_db))  # not attached: nothing audited
    entries = rows(kiosk_db, "SELECT actor, action, person_id, detail FROM audit ORDER BY id")
    assert entries[seen:] == [
        (ACTOR, "retry_parked", "", "1 event back in the outbox"),
        (ACTOR, "sync_detach", "", f"from {url}"),
    ]


def test_a_roster_export_is_audited_before_it_is_written(kiosk_db: Path, tmp_path: Path) -> None:
    """The file holds every template: who wrote it, when and where is on record; a
    refused export (the file exists) leaves no entry."""
    from central.store import CentralStore

    central_db = tmp_path / "central.db"
    with CentralStore.open(str(central_db), actor="setup") as store:
        store.enroll("c1", NAMES[0], None, vectors(2, 1))
    file = tmp_path / "roster.json"
    for db, option, sql, subject in (
        (kiosk_db, "--db", "SELECT actor, action, person_id, detail FROM audit ORDER BY id", ""),
        (central_db, "--central-db",
         "SELECT actor, action, subject, detail FROM audit ORDER BY id", "roster"),
    ):  # fmt: skip
        seen = len(rows(db, sql))
        succeeds("enroll", "export", str(file), option, str(db), "--force")
        refused = CliRunner().invoke(main, ["enroll", "export", str(file), option, str(db)])
        assert refused.exit_code == 1 and "already exists" in refused.stderr
        entries = rows(db, sql)
        ((actor, action, who, detail),) = entries[seen:]
        assert (actor, action, who) == (ACTOR, "roster_export", subject)
        assert detail.endswith(f"to {file}") and "template" in detail
        check_clean(entries, [])


def test_a_kiosk_schedule_change_leaves_an_entry(kiosk_db: Path) -> None:
    seen = len(rows(kiosk_db, "SELECT id FROM audit"))
    succeeds(
        "schedule", "site", "add", "paris", "--timezone", "Europe/Paris", "--db", str(kiosk_db)
    )
    entries = rows(kiosk_db, "SELECT actor, action, person_id, detail FROM audit ORDER BY id")
    assert [(e[0], e[1], e[2]) for e in entries[seen:]] == [(ACTOR, "site_added", "site:paris")]


# --------------------------------------------------------------------- the central service
CENTRAL_COMMANDS: list[tuple[tuple[str, ...], str, str]] = [
    (("central", "site", "add", "HQ", "--timezone", "Europe/Paris"), "site", "add"),
    (("central", "kiosk", "add", "door-1", "--site", "HQ"), "kiosk", "add"),
    (("central", "kiosk", "rotate", "door-1"), "kiosk", "rotate"),
    (("central", "kiosk", "revoke", "door-1"), "kiosk", "revoke"),
    (("central", "admin", "add", "hr-laptop"), "admin", "add"),
    (("central", "admin", "revoke", "hr-laptop"), "admin", "revoke"),
]


def test_each_central_command_leaves_one_entry(tmp_path: Path) -> None:
    from central.store import CentralStore

    db = tmp_path / "central.db"
    with CentralStore.open(str(db), actor="setup", clock=lambda: LONG_AGO) as store:
        store.enroll("e1", NAMES[0], None, vectors(2, 1))
        store.enroll("e2", NAMES[1], None, vectors(1, 2))
        store.set_active("e2", False)
    seen = len(rows(db, "SELECT id FROM audit"))
    printed: list[str] = []
    sql = "SELECT actor, kind, action, subject, detail FROM audit ORDER BY id"
    for args, kind, action in CENTRAL_COMMANDS:
        printed.append(succeeds(*args, "--database", str(db)).stdout.strip())
        entries = rows(db, sql)
        assert [(e[0], e[1], e[2]) for e in entries[seen:]] == [(ACTOR, kind, action)], args
        seen = len(entries)
    roster = [
        (("enroll", "update", "e1", "--name", NAMES[3]), "update"),
        (("enroll", "deactivate", "e1"), "deactivate"),
        (("enroll", "reactivate", "e1"), "reactivate"),
        (("enroll", "purge"), "retention_purge"),
        (("enroll", "consent", "withdraw", "e1", "--yes"), "remove"),
    ]
    for args, action in roster:
        succeeds(*args, "--central-db", str(db))
        entries = rows(db, sql)
        assert [(e[0], e[1], e[2]) for e in entries[seen:]] == [(ACTOR, "person", action)], args
        seen = len(entries)
    key = tmp_path / "new.key"
    succeeds("central", "rotate-key", "--database", str(db), "--new-key-file", str(key))
    entries = rows(db, sql)
    assert [(e[0], e[1], e[2]) for e in entries[seen:]] == [(ACTOR, "admin", "rotate_template_key")]
    check_clean(entries, [*printed, key.read_bytes().hex()])
