"""The kiosk store: schema steps, roster, erasure, gallery, the append-only event outbox.

Every test gets a fresh database file under tmp_path. Tampering is tried through a
second, plain sqlite3 connection, as another tool on the kiosk would.
"""

from __future__ import annotations

import getpass
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from clockface.errors import (
    ClockfaceError,
    DuplicatePersonError,
    RosterManagedError,
    RosterRuleError,
    StoreError,
    StoreValueError,
    UnknownPersonError,
)
from clockface.roster import NewPerson
from clockface.template_key import SEALED_BYTES, load_key_file
from hardware.clock import FakeClockStatus, clock_state
from kiosk import migrations
from kiosk.store import Event, EventLog, KioskStore, Roster
from recognition.gallery import EMBEDDING_DIM
from sync.protocol import GalleryDelta, WireErasure, WirePerson, encode_template
from sync.roster_delta import plan_gallery
from tests.helpers.fakes import T0, FakeClock

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "clockface" / "kiosk.db"


@pytest.fixture
def store(path: Path) -> Iterator[KioskStore]:
    with KioskStore.open(path, kiosk_id="kiosk-1", actor="hr-admin", clock=FakeClock()) as s:
        yield s


def raw(path: Path) -> closing[sqlite3.Connection]:
    """A plain sqlite3 connection in autocommit mode, as another tool would open."""
    return closing(sqlite3.connect(path, isolation_level=None))


def unit(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    x = rng.standard_normal((n, EMBEDDING_DIM))
    out: npt.NDArray[np.float64] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def append(
    store: KioskStore,
    person_id: str = "e1",
    direction: str = "in",
    *,
    utc: datetime = T0,
    tz: str = "Europe/Paris",
) -> Event:
    return store.append_event(
        person_id,
        "in" if direction == "in" else "out",
        utc=utc,
        tz=tz,
        distance=0.31,
        margin=0.22,
        frames=4,
        software_version="0.1.0",
    )


# --------------------------------------------------------------------- opening
def test_open_creates_folder_file_and_sets_pragmas(store: KioskStore, path: Path) -> None:
    assert path.is_file()
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert conn.execute("PRAGMA secure_delete").fetchone() == (1,)
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (5000,)
    assert conn.execute("PRAGMA user_version").fetchone() == (migrations.latest_version(),)
    assert conn.execute("PRAGMA application_id").fetchone() == (migrations.APPLICATION_ID,)


def test_store_implements_both_interfaces(store: KioskStore) -> None:
    roster: Roster = store  # checked by mypy
    log: EventLog = store
    assert roster.roster_version() == 0
    assert log.backlog() == 0


def test_reopening_applies_no_step_twice_and_keeps_data(path: Path) -> None:
    with KioskStore.open(path) as first:
        first.add_person("e1", "Ada Lovelace")
        kiosk_id = first.kiosk_id
    for _ in range(2):
        with KioskStore.open(path) as again:
            assert again.kiosk_id == kiosk_id
            assert [p.person_id for p in again.people()] == ["e1"]
            assert again.roster_version() == 1
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (migrations.latest_version(),)
        assert conn.execute("SELECT version, name FROM migrations").fetchall() == [
            (m.version, m.name) for m in migrations.MIGRATIONS
        ]
        assert conn.execute("SELECT count(*) FROM settings WHERE key = 'kiosk_id'").fetchone() == (
            1,
        )


def test_migration_steps_are_numbered_in_order() -> None:
    assert [m.version for m in migrations.MIGRATIONS] == list(
        range(1, len(migrations.MIGRATIONS) + 1)
    )
    assert all(m.name for m in migrations.MIGRATIONS)


def test_a_failing_step_leaves_the_previous_version(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    KioskStore.open(path).close()

    def broken(db: Database) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("disk on fire")

    newest = migrations.latest_version()
    step = migrations.Migration(newest + 1, "broken step", broken)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, step))
    with pytest.raises(StoreError, match=rf"schema step {newest + 1} \(broken step\) failed: disk"):
        KioskStore.open(path)
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (newest,)
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        assert "half_done" not in tables
    monkeypatch.undo()
    KioskStore.open(path).close()


def test_a_newer_schema_is_refused_and_left_alone(path: Path) -> None:
    KioskStore.open(path).close()
    with raw(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError) as caught:
        KioskStore.open(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "schema version 99 is newer" in message
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (99,)


def test_a_garbage_file_is_one_line_store_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    garbage = np.random.default_rng(1).bytes(8192)
    path.write_bytes(garbage)
    with pytest.raises(StoreError) as caught:
        KioskStore.open(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "not a SQLite database, or corrupt" in message
    assert path.read_bytes() == garbage  # nothing written to it


def test_another_applications_database_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with raw(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="some other application"):
        KioskStore.open(path)


def test_a_folder_in_place_of_the_file_is_store_error(path: Path) -> None:
    path.mkdir(parents=True)
    with pytest.raises(StoreError, match="cannot open"):
        KioskStore.open(path)


def test_kiosk_id_is_generated_once_or_kept_and_checked(tmp_path: Path) -> None:
    with KioskStore.open(tmp_path / "a.db") as a:
        assert uuid.UUID(a.kiosk_id).version == 4
    with KioskStore.open(tmp_path / "b.db", kiosk_id="hall-east") as b:
        assert b.kiosk_id == "hall-east"
    with KioskStore.open(tmp_path / "b.db") as b:
        assert b.kiosk_id == "hall-east"
    with pytest.raises(StoreError, match="belongs to kiosk 'hall-east', not 'hall-west'"):
        KioskStore.open(tmp_path / "b.db", kiosk_id="hall-west")
    with pytest.raises(StoreValueError):
        KioskStore.open(tmp_path / "c.db", kiosk_id="")


def test_a_closed_store_raises_store_error(path: Path) -> None:
    s = KioskStore.open(path)
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.backlog()


# --------------------------------------------------------------------- failing writes
def test_a_read_only_database_is_store_error_and_changes_nothing(store: KioskStore) -> None:
    store._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError, match="readonly"):
        store.add_person("e1", "Ada")
    with pytest.raises(StoreError):
        append(store)
    store._conn.execute("PRAGMA query_only = OFF")
    assert store.people() == []
    assert store.roster_version() == 0
    assert store.backlog() == 0


def test_a_full_disk_is_store_error_and_leaves_nothing_half_written(
    store: KioskStore, path: Path
) -> None:
    store.add_person("e1", "Ada")
    store.add_templates("e1", unit(np.random.default_rng(2), 1))
    (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError, match=r"full.*free some disk space"):
        store.add_templates("e1", unit(np.random.default_rng(3), 99))
    assert store.get_person("e1").template_count == 1
    assert store.roster_version() == 2
    assert [a.action for a in store.audit_log()] == ["add", "add_templates"]
    with raw(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# --------------------------------------------------------------------- roster
def test_roster_add_get_update_deactivate(store: KioskStore) -> None:
    added = store.add_person("e1", "Ada Lovelace", team="engines")
    assert added.person_id == "e1"
    assert added.name == "Ada Lovelace"
    assert added.team == "engines"
    assert added.active
    assert added.template_count == 0
    assert added.created_utc == added.updated_utc > T0  # from the injected clock
    assert store.get_person("e1") == added
    store.add_person("e2", "Charles Babbage")
    assert store.get_person("e2").team is None

    renamed = store.update_person("e1", name="Ada King")
    assert (renamed.name, renamed.team) == ("Ada King", "engines")
    assert renamed.updated_utc > renamed.created_utc
    assert store.update_person("e1", team="").team is None  # "" clears the team
    assert store.update_person("e1", team="looms").team == "looms"

    assert not store.set_active("e2", False).active
    assert [p.person_id for p in store.people()] == ["e1", "e2"]
    assert [p.person_id for p in store.people(active_only=True)] == ["e1"]
    assert store.set_active("e2", True).active


@pytest.mark.parametrize(
    "bad", ["", "  ", " e1", "e1 ", None, 7, "hr/007", "a b", "-e1", "é1", "x" * 65, "e1\n"]
)
def test_bad_person_ids_are_refused(store: KioskStore, bad: object) -> None:
    with pytest.raises(RosterRuleError, match="a person id is 1 to 64 letters") as caught:
        store.add_person(bad, "Ada")  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ClockfaceError)
    assert store.people() == []


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_bad_names_are_refused(store: KioskStore, bad: object) -> None:
    with pytest.raises(StoreValueError, match="a name must"):
        store.add_person("e1", bad)  # type: ignore[arg-type]
    store.add_person("e1", "Ada")
    with pytest.raises(StoreValueError, match="a name must"):
        store.update_person("e1", name="")


def test_duplicate_and_unknown_people(store: KioskStore) -> None:
    store.add_person("e1", "Ada")
    with pytest.raises(DuplicatePersonError, match="'e1' is already in the roster"):
        store.add_person("e1", "Someone Else")
    assert store.get_person("e1").name == "Ada"
    for call in (
        lambda: store.get_person("nobody"),
        lambda: store.update_person("nobody", name="X"),
        lambda: store.set_active("nobody", False),
        lambda: store.add_templates("nobody", np.full(EMBEDDING_DIM, 0.125)),
        lambda: store.templates("nobody"),
        lambda: store.remove_person("nobody"),
    ):
        with pytest.raises(UnknownPersonError) as caught:
            call()
        assert isinstance(caught.value, LookupError)
        assert str(caught.value) == "no person 'nobody' in the roster"  # no KeyError quotes
    with pytest.raises(StoreValueError, match="nothing to update"):
        store.update_person("e1")


def test_templates_round_trip_as_little_endian_float32(store: KioskStore, path: Path) -> None:
    store.add_person("e1", "Ada")
    rng = np.random.default_rng(4)
    first = unit(rng, 3)  # float64 in, float32 stored
    one = unit(rng, 1)[0].astype(np.float32)  # a single (128,) template
    assert store.add_templates("e1", first) == 3
    assert store.add_templates("e1", one) == 1
    got = store.templates("e1")
    assert got.dtype == np.float32
    assert got.shape == (4, EMBEDDING_DIM)
    np.testing.assert_array_equal(got, np.vstack([first.astype(np.float32), one]))
    assert store.get_person("e1").template_count == 4
    with raw(path) as conn:
        blobs = [b for (b,) in conn.execute("SELECT embedding FROM templates ORDER BY id")]
    # Sealed at rest (clockface.template_key), under the key beside the database.
    key = load_key_file(path.with_name(path.name + ".key"))
    assert key.open("e1", blobs[0]) == first[0].astype("<f4").tobytes()
    assert all(len(b) == SEALED_BYTES for b in blobs)
    store.add_person("e2", "Charles")
    assert store.templates("e2").shape == (0, EMBEDDING_DIM)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((2, 127)), "shape"),
        (np.zeros((0, EMBEDDING_DIM)), "shape"),
        (np.zeros((2, 2, EMBEDDING_DIM)), "shape"),
        (np.full((1, EMBEDDING_DIM), np.nan), "NaN or infinite"),
        (np.full((1, EMBEDDING_DIM), np.inf), "NaN or infinite"),
        (np.full((1, EMBEDDING_DIM), 1e300), "NaN or infinite"),  # overflows float32
        (np.full((1, EMBEDDING_DIM), 1e38), r"norm 1.13e\+39, outside"),  # fits float32
        (np.zeros((1, EMBEDDING_DIM)), "all zeros"),
        (np.ones((1, EMBEDDING_DIM)), "norm 11.3, outside 0.7 to 2.8"),
        (np.full((1, EMBEDDING_DIM), 0.01), "norm 0.113, outside"),
        (np.array([["x"] * EMBEDDING_DIM]), "numbers"),
    ],
)
def test_bad_templates_are_refused(store: KioskStore, bad: npt.ArrayLike, match: str) -> None:
    store.add_person("e1", "Ada")
    with pytest.raises(StoreValueError, match=match):
        store.add_templates("e1", bad)
    assert store.get_person("e1").template_count == 0
    assert store.roster_version() == 1


def test_erasure_removes_person_and_templates_keeps_events_and_an_audit_entry(
    store: KioskStore, path: Path
) -> None:
    rng = np.random.default_rng(5)
    templates = unit(rng, 3).astype(np.float32)
    store.add_person("e1", "Zebedee Quarrington", team="night shift")
    store.add_templates("e1", templates)
    store.update_person("e1", name="Zebedee Q. Quarrington")
    store.add_person("e2", "Bob")
    store.add_templates("e2", unit(rng, 1))
    append(store, "e1")

    assert store.remove_person("e1") == 3
    with pytest.raises(UnknownPersonError):
        store.get_person("e1")
    assert [p.person_id for p in store.people()] == ["e2"]
    assert store.get_person("e2").template_count == 1
    assert [e.person_id for e in store.events()] == ["e1"]  # attendance history stays

    entries = store.audit_log("e1")
    assert [e.action for e in entries] == ["add", "add_templates", "update", "remove"]
    assert entries[-1].detail == "erased with 3 templates"
    assert {e.actor for e in entries} == {"hr-admin"}
    with raw(path) as conn:
        assert conn.execute("SELECT count(*) FROM templates WHERE person_id = 'e1'").fetchone() == (
            0,
        )
        audit_rows = conn.execute("SELECT * FROM audit").fetchall()
    assert all(not isinstance(v, bytes) for row in audit_rows for v in row)
    assert "Zebedee" not in repr(audit_rows)
    # Nothing of the erased person lingers in the file or its write-ahead log.
    on_disk = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.is_file())
    assert b"Zebedee" not in on_disk
    assert b"night shift" not in on_disk
    for template in templates:
        assert template.astype("<f4").tobytes()[:64] not in on_disk


def test_load_gallery_holds_active_people_only_and_matches(store: KioskStore) -> None:
    rng = np.random.default_rng(6)
    templates = {pid: unit(rng, 2) for pid in ("e1", "e2", "e3")}
    for pid, t in templates.items():
        store.add_person(pid, f"Person {pid}")
        store.add_templates(pid, t)
    store.set_active("e2", False)

    gallery = store.load_gallery(threshold=0.52, margin=0.10)
    assert sorted(gallery.people) == ["e1", "e3"]
    assert len(gallery) == 4
    np.testing.assert_array_equal(gallery.templates_of("e3"), templates["e3"].astype(np.float32))
    probe = templates["e1"][1] + 0.01 * unit(rng, 1)[0]
    assert gallery.match_one(probe).person_id == "e1"
    assert gallery.match_one(templates["e2"][0]).person_id is None  # deactivated: unknown

    store.remove_person("e1")
    store.set_active("e3", False)
    empty = store.load_gallery(threshold=0.52, margin=0.10)
    assert len(empty) == 0


def test_roster_version_moves_on_every_change_only(store: KioskStore) -> None:
    versions = [store.roster_version()]

    def changed() -> None:
        versions.append(store.roster_version())
        assert versions[-1] == versions[-2] + 1

    def unchanged() -> None:
        assert store.roster_version() == versions[-1]

    store.add_person("e1", "Ada")
    changed()
    store.add_templates("e1", np.full(EMBEDDING_DIM, 0.125))
    changed()
    store.update_person("e1", name="Ada King")
    changed()
    store.update_person("e1", name="Ada King")  # the same name: no change
    unchanged()
    store.set_active("e1", False)
    changed()
    store.set_active("e1", False)
    unchanged()
    with pytest.raises(DuplicatePersonError):
        store.add_person("e1", "Ada")
    unchanged()
    append(store, "e1")  # events are not the roster
    unchanged()
    store.remove_person("e1")
    changed()


def test_audit_log_records_who_did_what(store: KioskStore, path: Path) -> None:
    store.add_person("e1", "Ada", team="engines")
    store.update_person("e1", name="Ada King", team="looms")
    store.set_active("e1", False)
    store.set_active("e1", True)
    store.add_templates("e1", np.full((2, EMBEDDING_DIM), 0.125))
    store.remove_person("e1")
    entries = store.audit_log()
    assert [(e.action, e.person_id, e.detail) for e in entries] == [
        ("add", "e1", None),
        ("update", "e1", "changed name, team"),
        ("deactivate", "e1", None),
        ("reactivate", "e1", None),
        ("add_templates", "e1", "2 added"),
        ("remove", "e1", "erased with 2 templates"),
    ]
    assert all(e.actor == "hr-admin" for e in entries)
    assert [e.at_utc for e in entries] == sorted(e.at_utc for e in entries)
    assert store.audit_log("someone else") == []
    with raw(path) as conn:
        for sql in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)


def test_the_default_actor_is_the_os_user(tmp_path: Path) -> None:
    with KioskStore.open(tmp_path / "k.db") as s:
        s.add_person("e1", "Ada")
        assert s.actor == getpass.getuser()
        assert s.audit_log()[0].actor == getpass.getuser()


# --------------------------------------------------------------------- events
def test_append_event_returns_what_is_stored(store: KioskStore) -> None:
    chicago = ZoneInfo("America/Chicago")
    first = store.append_event(
        "e1",
        "in",
        utc=datetime(2024, 3, 4, 8, 57, 3, 120000, tzinfo=chicago),  # aware, not UTC
        tz="America/Chicago",
        distance=np.float32(0.25),  # type: ignore[arg-type]
        margin=float("inf"),  # a gallery of one person
        frames=np.int64(5),  # type: ignore[arg-type]
        software_version="0.1.0",
    )
    second = append(store, "e2", "out")
    assert first.utc.tzinfo is UTC
    assert first.utc == datetime(2024, 3, 4, 14, 57, 3, 120000, tzinfo=UTC)
    assert first.local_time.hour == 8
    assert (first.seq, second.seq) == (1, 2)
    assert first.kiosk_id == "kiosk-1"
    assert uuid.UUID(first.event_id).version == 4
    assert store.events() == [first, second]
    assert store.last_event("e1") == first
    assert store.last_event("nobody") is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"direction": "sideways"}, "direction must be 'in' or 'out'"),
        ({"person_id": ""}, "a person id must"),
        ({"utc": datetime(2024, 3, 4, 8, 0)}, "timezone-aware"),
        ({"tz": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"tz": "../etc/passwd"}, "unknown time zone"),
        ({"tz": ""}, "IANA time zone"),
        ({"distance": float("nan")}, "distance must be"),
        ({"distance": -0.1}, "distance must be"),
        ({"distance": float("inf")}, "distance must be"),
        ({"margin": float("nan")}, "margin must be"),
        ({"frames": 0}, "frames must be"),
        ({"frames": True}, "frames must be"),
        ({"frames": 2.0}, "frames must be"),
        ({"software_version": ""}, "software version must be"),
    ],
)
def test_bad_events_are_refused(store: KioskStore, change: dict[str, object], match: str) -> None:
    fields: dict[str, object] = {
        "person_id": "e1",
        "direction": "in",
        "utc": T0,
        "tz": "Europe/Paris",
        "distance": 0.3,
        "margin": 0.2,
        "frames": 3,
        "software_version": "0.1.0",
    }
    fields.update(change)
    with pytest.raises(StoreValueError, match=match):
        store.append_event(**fields)  # type: ignore[arg-type]
    assert store.backlog() == 0
    assert store.events() == []


def test_events_by_local_day_and_person(store: KioskStore) -> None:
    # 03:00 UTC on the 5th is 21:00 on the 4th in Chicago (CST, UTC-6).
    late = append(
        store, "e1", "out", utc=datetime(2024, 3, 5, 3, 0, tzinfo=UTC), tz="America/Chicago"
    )
    # 20:00 UTC on the 4th is 05:00 on the 5th in Tokyo.
    early = append(store, "e2", "in", utc=datetime(2024, 3, 4, 20, 0, tzinfo=UTC), tz="Asia/Tokyo")
    noon = append(store, "e1", "in", utc=datetime(2024, 3, 4, 12, 0, tzinfo=UTC), tz="UTC")
    far = append(store, "e1", "in", utc=datetime(2024, 3, 9, 12, 0, tzinfo=UTC), tz="UTC")

    assert store.events(day=date(2024, 3, 4)) == [late, noon]
    assert store.events(day=date(2024, 3, 5)) == [early]
    assert store.events(day=date(2024, 3, 4), person_id="e1") == [late, noon]
    assert store.events(person_id="e1") == [late, noon, far]
    assert store.events(day=date(2024, 3, 6)) == []
    # The day read in one zone for every event:
    assert store.events(day=date(2024, 3, 5), tz="UTC") == [late]
    assert store.events(day=date(2024, 3, 4), tz="UTC") == [early, noon]
    assert store.events(day=date.min) == []
    assert store.events(day=date.max) == []
    with pytest.raises(StoreValueError, match="give day= too"):
        store.events(tz="UTC")
    with pytest.raises(StoreValueError, match="unknown time zone"):
        store.events(day=date(2024, 3, 4), tz="Nowhere/Special")


def test_last_event_is_the_highest_seq_even_if_the_clock_went_back(store: KioskStore) -> None:
    append(store, "e1", "in", utc=T0)
    later_but_earlier_clock = append(store, "e1", "out", utc=T0 - timedelta(minutes=5))
    assert store.last_event("e1") == later_but_earlier_clock


def test_events_are_append_only_in_the_database(store: KioskStore, path: Path) -> None:
    event = append(store, "e1")
    with raw(path) as conn:
        for sql in (
            "UPDATE events SET person_id = 'e2'",
            "UPDATE events SET seq = 7",
            "UPDATE events SET utc = '2020-01-01T00:00:00.000000Z'",
            "UPDATE events SET distance = 0.0",
            "DELETE FROM events",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
        # A gap in seq, or a second row with a used id (even through REPLACE), is refused.
        insert = (
            "INSERT {} INTO events (event_id, seq, kiosk_id, person_id, direction, utc, tz,"
            " distance, margin, frames, software_version)"
            " VALUES (?, ?, 'k', 'e9', 'in', '2024-01-01T00:00:00.000000Z', 'UTC', 0, 0, 1, 'x')"
        )
        with pytest.raises(sqlite3.IntegrityError, match="seq must be the next one"):
            conn.execute(insert.format(""), [str(uuid.uuid4()), 3])
        with pytest.raises(sqlite3.IntegrityError, match="seq must be the next one"):
            conn.execute(insert.format("OR REPLACE"), [event.event_id, 2])
        # acked_utc may go from NULL to a time, once.
        conn.execute("UPDATE events SET acked_utc = '2024-03-04T09:00:00.000000Z'")
        for sql in (
            "UPDATE events SET acked_utc = '2024-03-04T10:00:00.000000Z'",
            "UPDATE events SET acked_utc = NULL",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="only acked_utc may be set, once"):
                conn.execute(sql)
    assert store.events()[0].acked_utc == datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    assert store.events()[0].person_id == "e1"


def test_outbox_pending_mark_acked_backlog(store: KioskStore) -> None:
    ids = [append(store, f"e{i}", utc=T0 + timedelta(minutes=i)).event_id for i in range(5)]
    assert store.backlog() == 5
    assert [e.seq for e in store.pending(2)] == [1, 2]
    at = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)
    assert store.mark_acked(ids[:2], at) == 2
    assert store.backlog() == 3
    assert [e.event_id for e in store.pending(10)] == ids[2:]
    assert store.mark_acked([ids[0], ids[1], ids[1]], at + timedelta(hours=1)) == 0  # repeated
    assert store.events()[0].acked_utc == at  # the first acknowledgement stays

    with pytest.raises(StoreValueError, match="1 of 2 event ids are not in this store"):
        store.mark_acked([ids[2], "no-such-event"], at)
    assert store.backlog() == 3  # the whole batch was refused
    with pytest.raises(StoreValueError, match="timezone-aware"):
        store.mark_acked(ids[2:], datetime(2024, 3, 4, 9, 30))
    with pytest.raises(StoreValueError, match="limit"):
        store.pending(0)
    assert store.mark_acked([], at) == 0
    assert store.mark_acked(ids, at) == 3
    assert store.backlog() == 0
    assert store.pending() == []


def test_the_kiosk_and_the_sync_agent_share_one_file(path: Path) -> None:
    with KioskStore.open(path) as kiosk, KioskStore.open(path) as agent:
        assert agent.kiosk_id == kiosk.kiosk_id
        first = append(kiosk, "e1")
        assert agent.pending() == [first]
        assert agent.mark_acked([first.event_id], T0) == 1
        second = append(kiosk, "e2")
        assert second.seq == 2
        assert kiosk.backlog() == 1
        agent.add_person("e1", "Ada")
        assert kiosk.roster_version() == 1


# --------------------------------------------------------------------- durability
_CHILD = """
import sys
from datetime import UTC, datetime
from kiosk.store import KioskStore

store = KioskStore.open(sys.argv[1], actor="child")
i = 0
while True:
    event = store.append_event(
        f"e{i % 7}", "in" if i % 2 == 0 else "out", utc=datetime.now(UTC),
        tz="Europe/Paris", distance=0.3, margin=0.2, frames=3, software_version="test",
    )
    print(event.event_id, event.seq, flush=True)
    i += 1
"""


def _run_and_kill(path: Path, after: int) -> dict[str, int]:
    """Start a child appending events, SIGKILL it after ``after`` lines; what it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        printed: list[str] = []
        while len(printed) < after:
            line = proc.stdout.readline()
            if not line:
                break
            printed.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        rest, errors = proc.communicate()
    finally:
        watchdog.cancel()
    assert len(printed) == after, errors
    assert proc.returncode == -signal.SIGKILL
    complete = [line for line in (printed + rest.splitlines(keepends=True)) if line.endswith("\n")]
    return {event_id: int(seq) for event_id, seq in (line.split() for line in complete)}


@pytest.mark.slow
def test_events_survive_sigkill(path: Path) -> None:
    KioskStore.open(path).close()
    committed: dict[str, int] = {}
    for after in (25, 60, 5):
        committed |= _run_and_kill(path, after)
        with raw(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        with KioskStore.open(path) as reopened:
            stored = {e.event_id: e.seq for e in reopened.events()}
            assert sorted(stored.values()) == list(range(1, len(stored) + 1))
            assert committed.items() <= stored.items()
            assert reopened.backlog() == len(stored)
    assert len(committed) >= 90


# --------------------------------------------------------------------- properties
# An operation is an int (append that many events) or a list of indexes (acknowledge the
# events appended at those positions, where they exist).
_operations = st.lists(
    st.one_of(st.integers(1, 3), st.lists(st.integers(0, 30), max_size=6)), max_size=12
)


@settings(max_examples=50, deadline=None)
@given(_operations)
def test_random_appends_and_acks_keep_seq_contiguous_and_backlog_right(
    operations: list[int | list[int]],
) -> None:
    with tempfile.TemporaryDirectory() as folder, KioskStore.open(Path(folder) / "k.db") as s:
        appended: list[str] = []
        acked: set[str] = set()
        at = T0
        for op in operations:
            at += timedelta(seconds=1)
            if isinstance(op, int):
                for _ in range(op):
                    appended.append(append(s, utc=at).event_id)
            else:
                ids = [appended[i] for i in op if i < len(appended)]
                assert s.mark_acked(ids, at) == len(set(ids) - acked)
                acked.update(ids)
            assert s.backlog() == len(appended) - len(acked)
        events = s.events()
        assert [e.seq for e in events] == list(range(1, len(appended) + 1))
        assert [e.event_id for e in events] == appended
        assert [e.event_id for e in s.pending(100)] == [i for i in appended if i not in acked]
        assert {e.event_id for e in events if e.acked_utc is not None} == acked


def test_a_new_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """It holds biometric templates; its write-ahead log gets the same permissions."""
    path = tmp_path / "kiosk.db"
    with KioskStore.open(path) as store:
        store.add_person("ada", "Ada")
        store.add_templates("ada", np.full(EMBEDDING_DIM, 0.125, dtype=np.float32))
        for file in (path, Path(f"{path}-wal")):
            assert file.exists() and file.stat().st_mode & 0o777 == 0o600, file


# --------------------------------------------------------------------- schema v2: sync
def _v1_database(path: Path) -> list[str]:
    """A kiosk database as clockface made it before schema 2, with two events in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    with raw(path) as conn:
        db = Database(conn)
        migrations.migrate(
            db,
            where=str(path),
            applied_utc="2024-01-01T00:00:00.000000Z",
            steps=migrations.MIGRATIONS[:1],
        )
        conn.execute("INSERT INTO settings (key, value) VALUES ('kiosk_id', 'old-kiosk')")
        for seq, event_id in enumerate(ids, 1):
            conn.execute(
                "INSERT INTO events (event_id, seq, kiosk_id, person_id, direction, utc, tz,"
                " distance, margin, frames, software_version)"
                " VALUES (?, ?, 'old-kiosk', 'e1', 'in', '2024-01-01T08:00:00.000000Z',"
                " 'UTC', 0.3, 0.2, 3, '0.0.9')",
                [event_id, seq],
            )
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    return ids


def test_a_v1_database_migrates_and_old_events_keep_null_clock_synced(path: Path) -> None:
    ids = _v1_database(path)
    with KioskStore.open(path, clock_status=FakeClockStatus("synchronised")) as store:
        assert store.kiosk_id == "old-kiosk"
        assert uuid.UUID(store.log_id).version == 4
        old = store.events()
        assert [e.event_id for e in old] == ids
        assert [e.clock_synced for e in old] == [None, None]
        assert store.pending() == old
        new = append(store, "e2")
        assert (new.seq, new.clock_synced) == (3, True)
        assert store.sync_state().central_url is None
        assert store.sync_state().gallery_version == 0
        log_id = store.log_id
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (migrations.latest_version(),)
        assert [v for (v,) in conn.execute("SELECT version FROM migrations")] == list(
            range(1, migrations.latest_version() + 1)
        )
        assert conn.execute("SELECT clock_synced FROM events ORDER BY seq").fetchall() == [
            (None,),
            (None,),
            (1,),
        ]
    with KioskStore.open(path) as again:
        assert again.log_id == log_id  # generated once


def test_clock_synced_is_immutable_like_the_rest_of_an_event(store: KioskStore, path: Path) -> None:
    store.append_event(
        "e1",
        "in",
        utc=T0,
        tz="UTC",
        distance=0.3,
        margin=0.2,
        frames=2,
        software_version="0.1.0",
        clock_synced=True,
    )
    with raw(path) as conn:
        for sql in (
            "UPDATE events SET clock_synced = 0",
            "UPDATE events SET clock_synced = NULL",
            "UPDATE events SET clock_synced = 0, acked_utc = '2024-03-04T09:00:00.000000Z'",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute(
                "INSERT INTO events (event_id, seq, kiosk_id, person_id, direction, utc, tz,"
                " distance, margin, frames, software_version, clock_synced)"
                " VALUES ('x', 2, 'k', 'e9', 'in', '2024-01-01T00:00:00.000000Z', 'UTC', 0, 0,"
                " 1, 'x', 7)"
            )
        conn.execute("UPDATE events SET acked_utc = '2024-03-04T09:00:00.000000Z'")


def test_append_event_records_the_clock_state(path: Path) -> None:
    probe = FakeClockStatus("unsynchronised")
    with KioskStore.open(path, clock_status=probe) as store:
        assert append(store).clock_synced is False
        probe.state = "synchronised"
        assert append(store).clock_synced is True
        probe.state = "unknown"
        assert append(store).clock_synced is None
        calls = probe.calls
        told = store.append_event(
            "e1",
            "out",
            utc=T0,
            tz="UTC",
            distance=0.3,
            margin=0.2,
            frames=2,
            software_version="0.1.0",
            clock_synced=True,
        )
        assert told.clock_synced is True
        assert probe.calls == calls  # told: not asked
        assert [e.clock_synced for e in store.events()] == [False, True, None, True]
        with pytest.raises(StoreValueError, match="clock_synced must be"):
            store.append_event(
                "e1",
                "in",
                utc=T0,
                tz="UTC",
                distance=0.3,
                margin=0.2,
                frames=2,
                software_version="0.1.0",
                clock_synced=1,  # type: ignore[arg-type]
            )


def test_a_failing_clock_probe_never_loses_an_event(path: Path) -> None:
    def broken() -> bool:
        raise OSError("no adjtimex here")

    with KioskStore.open(path, clock_status=broken) as store:
        assert append(store).clock_synced is None
        assert store.backlog() == 1


def test_the_default_clock_probe_asks_the_kernel(store: KioskStore) -> None:
    assert append(store).clock_synced == {"synchronised": True, "unsynchronised": False}.get(
        clock_state()
    )


# --------------------------------------------------------------------- parking
def test_parked_events_leave_the_outbox_untouched_until_unparked(
    store: KioskStore, path: Path
) -> None:
    events = [append(store, f"e{i}", utc=T0 + timedelta(minutes=i)) for i in range(4)]
    with raw(path) as conn:
        before = conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
    reasons = {events[1].event_id: "refused (422):\n bad  seq", events[2].event_id: "conflict"}
    assert store.park(reasons, T0) == 2
    assert store.park({events[1].event_id: "again"}) == 0  # the first reason stays
    assert [e.seq for e in store.pending()] == [1, 4]
    assert store.backlog() == 2
    assert store.parked_count() == 2
    parked = store.parked()
    assert [(p.event, p.reason, p.parked_utc) for p in parked] == [
        (events[1], "refused (422): bad seq", T0),
        (events[2], "conflict", T0),
    ]
    assert [p.event.seq for p in store.parked(limit=1)] == [2]
    with raw(path) as conn:
        assert conn.execute("SELECT * FROM events ORDER BY seq").fetchall() == before
        with pytest.raises(sqlite3.IntegrityError):  # a parked row must name a real event
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("INSERT INTO parked VALUES ('nope', '2024-01-01T00:00:00.000000Z', 'x')")

    assert store.unpark([events[1].event_id]) == 1
    assert [e.seq for e in store.pending()] == [1, 2, 4]
    # An acknowledgement (a late answer) takes an event out of the parked list too.
    assert store.mark_acked([events[2].event_id], T0) == 1
    assert store.parked_count() == 0
    assert store.park({events[2].event_id: "too late"}) == 0  # acknowledged: not parked
    assert store.unpark() == 0
    with pytest.raises(StoreValueError, match="not in this store; nothing was parked"):
        store.park({events[0].event_id: "x", "no-such-event": "y"})
    assert store.parked_count() == 0


def test_acked_through_stops_at_the_first_unacknowledged_event(store: KioskStore) -> None:
    assert store.acked_through() == 0
    ids = [append(store, f"e{i}").event_id for i in range(5)]
    store.mark_acked([ids[0], ids[1], ids[3]], T0)
    assert store.acked_through() == 2
    store.mark_acked(ids, T0)
    assert store.acked_through() == 5


def test_sync_state_records_success_errors_and_skew(store: KioskStore) -> None:
    store.record_sync_success(T0)
    store.record_sync_error("connect failed:\n  refused", T0 + timedelta(minutes=1))
    store.record_clock_skew(-2.5, False)
    state = store.sync_state()
    assert state.last_success_utc == T0
    assert state.last_error_utc == T0 + timedelta(minutes=1)
    assert state.last_error == "connect failed: refused"
    assert (state.clock_skew_seconds, state.clock_flagged) == (-2.5, False)
    with pytest.raises(StoreValueError):
        store.record_clock_skew(float("nan"), True)


# --------------------------------------------------------------------- central roster
CENTRAL = "https://central.example.org"


def _person(pid: str, version: int, seed: int, n: int = 2, **kw: object) -> WirePerson:
    templates = [encode_template(t) for t in unit(np.random.default_rng(seed), n)]
    fields: dict[str, object] = {"name": f"Person {pid}", "team": None, "active": True}
    fields["templates"] = templates
    fields.update(kw)
    return WirePerson(person_id=pid, version=version, **fields)  # type: ignore[arg-type]


def _page(
    since: int,
    version: int,
    people: list[WirePerson] | None = None,
    erasures: list[WireErasure] | None = None,
    *,
    more: bool = False,
) -> GalleryDelta:
    return GalleryDelta(
        since=since, version=version, more=more, people=people or [], erasures=erasures or []
    )


def test_apply_gallery_adds_replaces_and_erases_in_version_order(
    store: KioskStore, path: Path
) -> None:
    first = store.apply_gallery(
        plan_gallery(
            [
                _page(0, 2, [_person("ada", 1, 1, team="engines")], more=True),
                _page(2, 3, [_person("bob", 3, 2, n=1, name="Zebedee Quarrington")]),
            ]
        ),
        central_url=CENTRAL,
    )
    assert (first.version, first.added, first.replaced, first.erased) == (3, 2, 0, 0)
    assert store.managed_by() == CENTRAL
    assert store.sync_state().gallery_version == 3
    assert store.get_person("ada").team == "engines"
    np.testing.assert_array_equal(
        store.templates("ada"), unit(np.random.default_rng(1), 2).astype(np.float32)
    )
    version = store.roster_version()

    # bob is erased (v5) after a change (v4); carl is erased (v6) then enrolled again (v7).
    second = store.apply_gallery(
        plan_gallery(
            [
                _page(
                    3,
                    7,
                    [
                        _person("carl", 7, 3),
                        _person("bob", 4, 9),
                        _person("ada", 6, 4, n=1, active=False),
                    ],
                    [
                        WireErasure(person_id="bob", version=5),
                        WireErasure(person_id="carl", version=6),
                    ],
                )
            ]
        ),
        central_url=CENTRAL,
    )
    assert (second.added, second.replaced, second.erased) == (1, 2, 2)
    assert store.roster_version() > version
    assert [p.person_id for p in store.people()] == ["ada", "carl"]
    ada = store.get_person("ada")
    assert (ada.active, ada.template_count) == (False, 1)
    bob = store.audit_log("bob")
    assert [(e.action, e.actor) for e in bob] == [
        ("add", "central"),
        ("update", "central"),
        ("remove", "central"),
    ]
    assert bob[-1].detail == "erased by the central service (version 5) with 2 templates"
    assert store.audit_log("carl")[0].detail == (
        "erased by the central service (version 6); not held"
    )
    with raw(path) as conn:
        assert conn.execute(
            "SELECT count(*) FROM templates WHERE person_id = 'bob'"
        ).fetchone() == (0,)
    on_disk = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.is_file())
    assert b"Zebedee" not in on_disk
    for template in unit(np.random.default_rng(9), 2):
        assert template.astype("<f4").tobytes()[:64] not in on_disk


@pytest.mark.parametrize(
    ("pages", "match"),
    [
        ([], "no pages"),
        ([_page(1, 2)], "start after version 1, but this kiosk holds version 0"),
        ([_page(0, 2, more=True)], "the last page says more follow"),
        ([_page(0, 2), _page(2, 3)], "page 1 says no more follow"),
        ([_page(0, 2, more=True), _page(1, 3)], "page 2 starts after version 1, not 2"),
        ([_page(0, 2, [_person("ada", 3, 1)])], "outside page 1"),
        ([_page(0, 2, [_person("ada", 1, 1), _person(" bob", 2, 2)])], "a person id is"),
        (
            [_page(0, 2, [_person("ada", 1, 1), _person("hr/007", 2, 2)])],
            "a person id is 1 to 64 letters.*not 'hr/007'.*enroll check-roster",
        ),
        (
            [_page(0, 2, [_person("ada", 1, 1, templates=[encode_template(np.zeros(128))])])],
            "person 'ada': the template is all zeros",
        ),
        ([_page(0, 2, [_person("ada", 1, 1), _person("bob", 2, 2, name=" Bob")])], "a name"),
        (
            [_page(0, 3, [_person("ada", 1, 1)], more=True), _page(3, 3, [_person("x", 3, 2)])],
            "outside page 2",
        ),
        (
            [_page(0, 2, [_person("ada", 2, 1)], [WireErasure(person_id="ada", version=2)])],
            "changes twice at version 2",
        ),
    ],
)
def test_an_invalid_delta_applies_nothing(
    store: KioskStore, path: Path, pages: list[GalleryDelta], match: str
) -> None:
    store.enroll("local", "Local", None, unit(np.random.default_rng(1), 1))
    with raw(path) as conn:
        before = (
            conn.execute("SELECT * FROM people").fetchall(),
            conn.execute("SELECT * FROM audit").fetchall(),
        )
    version = store.roster_version()
    with pytest.raises(StoreValueError, match=match) as caught:
        store.apply_gallery(plan_gallery(pages), central_url=CENTRAL)
    assert "\n" not in str(caught.value)
    assert store.roster_version() == version
    assert store.sync_state().gallery_version == 0
    assert store.managed_by() is None
    with raw(path) as conn:
        after = (
            conn.execute("SELECT * FROM people").fetchall(),
            conn.execute("SELECT * FROM audit").fetchall(),
        )
    assert after == before


def test_a_failure_midway_through_apply_rolls_everything_back(store: KioskStore) -> None:
    store.apply_gallery(plan_gallery([_page(0, 1, [_person("ada", 1, 1)])]), central_url=CENTRAL)
    version = store.roster_version()
    (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [_person(f"p{i}", 2 + i, i, n=50) for i in range(20)]
    with pytest.raises(StoreError, match="full"):
        store.apply_gallery(
            plan_gallery([_page(1, 22, big, [WireErasure(person_id="ada", version=22)])]),
            central_url=CENTRAL,
        )
    assert [p.person_id for p in store.people()] == ["ada"]
    assert store.roster_version() == version
    assert store.sync_state().gallery_version == 1


def test_a_managed_roster_refuses_local_changes_until_detached(store: KioskStore) -> None:
    store.enroll("ada", "Ada", None, np.full(EMBEDDING_DIM, 0.125))
    store.attach(CENTRAL)
    store.attach(CENTRAL)  # again: no change
    template = np.full(EMBEDDING_DIM, 0.125)
    for call in (
        lambda: store.add_person("bob", "Bob"),
        lambda: store.update_person("ada", name="Ada King"),
        lambda: store.set_active("ada", False),
        lambda: store.add_templates("ada", template),
        lambda: store.remove_person("ada"),
        lambda: store.enroll("bob", "Bob", None, template),
        lambda: store.enroll_many([NewPerson("bob", "Bob", None, template)]),
    ):
        with pytest.raises(RosterManagedError) as caught:
            call()
        assert isinstance(caught.value, StoreError)
        assert str(caught.value) == (
            f"this kiosk's roster is managed by the central service at {CENTRAL}: enroll "
            "there (or `clockface sync detach` to manage it here)"
        )
    assert [p.name for p in store.people()] == ["Ada"]  # reads still work
    assert store.templates("ada").shape == (1, EMBEDDING_DIM)
    assert append(store, "ada").seq == 1  # and events are recorded

    with pytest.raises(StoreError, match="attached to the central service at https://central"):
        store.attach("https://elsewhere.example.org")
    with pytest.raises(StoreError, match="run `clockface sync detach` first"):
        store.apply_gallery(
            plan_gallery([_page(0, 0)]), central_url="https://elsewhere.example.org"
        )
    assert store.managed_by() == CENTRAL

    assert store.detach() == CENTRAL
    assert store.detach() is None
    assert store.sync_state().gallery_version == 0
    assert store.update_person("ada", name="Ada King").name == "Ada King"


def test_a_full_roster_from_version_0_replaces_the_local_one(store: KioskStore) -> None:
    store.enroll("local", "Local", None, np.full(EMBEDDING_DIM, 0.125))
    update = store.apply_gallery(
        plan_gallery([_page(0, 1, [_person("ada", 1, 1)])]), central_url=CENTRAL
    )
    assert (update.added, update.dropped) == (1, 1)
    assert [p.person_id for p in store.people()] == ["ada"]
    assert store.audit_log("local")[-1].detail == (
        "not in the central roster (version 1): erased with 1 templates"
    )
    # Later deltas are changes only: nobody else is dropped.
    assert store.apply_gallery(plan_gallery([_page(1, 1)]), central_url=CENTRAL).changed is False
    assert [p.person_id for p in store.people()] == ["ada"]


def test_confirm_gallery_never_goes_past_what_is_applied(store: KioskStore) -> None:
    store.apply_gallery(plan_gallery([_page(0, 4)]), central_url=CENTRAL)
    store.confirm_gallery(4)
    assert store.sync_state().confirmed_version == 4
    store.confirm_gallery(9)
    assert store.sync_state().confirmed_version == 4


def test_kiosk_schedule_tables_match_the_shared_definitions(path: Path) -> None:
    """Kiosk schema 3 writes the schedule tables out as SQLite DDL; their columns must be
    those of clockface.schedule_tables, which reports.schedule_store queries."""
    from clockface import schedule_tables

    KioskStore.open(path).close()
    with raw(path) as conn:
        for table in schedule_tables.tables().sorted_tables:
            found = [
                (name, not notnull or bool(pk))
                for _, name, _, notnull, _, pk in conn.execute(f"PRAGMA table_info({table.name})")
            ]
            wanted = [(c.name, bool(c.nullable) or c.primary_key) for c in table.columns]
            assert found == wanted, table.name
