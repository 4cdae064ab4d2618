"""The central store on SQLite and on PostgreSQL: the same tests over both.

SQLite is a fresh file under tmp_path; PostgreSQL a fresh database in a throwaway
cluster (tests/helpers/postgres.py), skipped when PostgreSQL is not installed (unless
CLOCKFACE_REQUIRE_POSTGRES=1).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa

from central import migrations
from central.store import CentralStore, Consent, Principal, resolve_database
from clockface.errors import (
    AuthenticationError,
    CentralConflictError,
    CentralNotFoundError,
    CentralStoreError,
    CentralValueError,
    DuplicatePersonError,
    StoreValueError,
    UnknownPersonError,
)
from clockface.roster import NewPerson
from kiosk.store import Person, Roster
from recognition.gallery import EMBEDDING_DIM
from sync.protocol import EventBatch, GalleryDelta, WireEvent, decode_template
from tests.helpers.fakes import T0, FakeClock
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.template_keys import template_key_file  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind: a SQLite path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "var" / "central.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(database: str) -> Iterator[CentralStore]:
    with CentralStore.open(database, actor="hr-admin", clock=FakeClock()) as s:
        yield s


@pytest.fixture
def kiosk(store: CentralStore) -> Principal:
    store.add_site("HQ", "Europe/Paris")
    return store.authenticate(store.create_kiosk("door-1", "HQ").token)


def unit(seed: int, n: int = 1) -> npt.NDArray[np.float32]:
    x = np.random.default_rng(seed).standard_normal((n, EMBEDDING_DIM))
    out: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def wire(
    seq: int, *, log: str = "log-a", event_id: uuid.UUID | None = None, **change: Any
) -> WireEvent:
    fields: dict[str, Any] = {
        "event_id": event_id or uuid.uuid4(),
        "log_id": log,
        "seq": seq,
        "person_id": "p1",
        "direction": "in",
        "utc": T0 + timedelta(minutes=seq),
        "tz": "Europe/Paris",
        "distance": 0.31,
        "margin": 0.2,
        "frames": 4,
        "software_version": "0.1.0",
        "clock_synced": True,
    }
    fields.update(change)
    return WireEvent(**fields)


def batch(*events: WireEvent, sent: datetime = T0) -> EventBatch:
    return EventBatch(sent_utc=sent, events=list(events))


def statuses(store: CentralStore, kiosk: Principal | str, *events: WireEvent) -> list[str]:
    return [r.status for r in store.ingest(kiosk, batch(*events)).results]


def raw_scalar(store: CentralStore, sql: str) -> Any:
    engine = sa.create_engine(resolve_database(_url_of(store)).url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def _url_of(store: CentralStore) -> str:
    return store._target.url.render_as_string(hide_password=False)


# --------------------------------------------------------------------- opening
def test_a_fresh_database_is_migrated_and_reopening_applies_nothing_twice(database: str) -> None:
    with CentralStore.open(database, actor="a") as store:
        assert store.schema_version() == migrations.latest_version()
        assert store.roster_version() == 0
        store.add_site("HQ", "Europe/Paris")
    with CentralStore.open(database, actor="a") as store:
        assert [s.name for s in store.sites()] == ["HQ"]
        assert raw_scalar(store, "SELECT count(*) FROM central_migrations") == len(
            migrations.MIGRATIONS
        )


def test_two_openers_at_once_migrate_once(database: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def open_one() -> None:
        try:
            start.wait()
            CentralStore.open(database, actor="a").close()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with CentralStore.open(database, actor="a") as store:
        assert raw_scalar(store, "SELECT count(*) FROM central_migrations") == len(
            migrations.MIGRATIONS
        )


def test_a_newer_schema_is_refused_and_left_alone(database: str) -> None:
    with CentralStore.open(database, actor="a") as store:
        engine = sa.create_engine(resolve_database(_url_of(store)).url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO central_migrations (version, name, applied_utc)"
                    " VALUES (99, 'future', '2030-01-01T00:00:00.000000Z')"
                )
            )
        engine.dispose()
    with pytest.raises(CentralStoreError, match="schema version 99 is newer") as caught:
        CentralStore.open(database, actor="a")
    assert "\n" not in str(caught.value)


def test_a_database_of_another_application_is_refused(database: str) -> None:
    target = resolve_database(database)
    if target.path is not None:
        target.path.parent.mkdir(parents=True)
    engine = sa.create_engine(target.url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(CentralStoreError, match="some other application"):
        CentralStore.open(database, actor="a")


def test_sqlite_file_is_private_in_wal_mode_and_keys_are_enforced(tmp_path: Path) -> None:
    path = tmp_path / "new" / "central.db"
    with CentralStore.open(path, actor="a") as store:
        store.add_site("HQ", "UTC")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


def test_an_erasure_leaves_no_template_in_the_sqlite_files(tmp_path: Path) -> None:
    path = tmp_path / "central.db"
    marker = np.full((1, EMBEDDING_DIM), 0.123456789, dtype=np.float32)
    with CentralStore.open(path, actor="a") as store:
        store.enroll("p1", "Ada", None, marker)
        with sqlite3.connect(path) as conn:
            (sealed,) = conn.execute("SELECT embedding FROM templates").fetchone()
        conn.close()

        def holding(data: bytes) -> list[str]:
            files = [p for p in tmp_path.iterdir() if p.name.startswith("central.db")]
            return [p.name for p in files if data in p.read_bytes()]

        assert holding(marker.tobytes()[:64]) == []  # sealed at rest: never in plaintext
        assert holding(sealed)  # the search finds the sealed template while it is enrolled
        store.remove_person("p1")
        assert holding(sealed) == []


def test_a_garbage_sqlite_file_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "central.db"
    path.write_bytes(b"not a database at all, just some text " * 200)
    with pytest.raises(CentralStoreError, match="not a SQLite database") as caught:
        CentralStore.open(path, actor="a")
    assert "\n" not in str(caught.value)


def test_unreachable_postgresql_is_one_line_without_the_password() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://clockface:s3cret-pw@127.0.0.1:{port}/central?connect_timeout=2"
    with pytest.raises(CentralStoreError) as caught:
        CentralStore.open(url, actor="a")
    message = str(caught.value)
    assert "\n" not in message and "s3cret-pw" not in message
    assert f"127.0.0.1:{port}" in message and "PostgreSQL" in message


def test_database_arguments_are_resolved() -> None:
    assert resolve_database("data/central.db").path == Path("data/central.db")
    assert resolve_database("sqlite:///x.db").path == Path("x.db")
    pg = resolve_database("postgresql://u:pw@db.example:5433/att")
    assert pg.path is None and pg.url.drivername == "postgresql+psycopg"
    assert pg.url.port == 5433 and "pw" not in pg.describe()
    assert resolve_database("postgresql+psycopg://u@h/d").url.drivername == "postgresql+psycopg"
    for bad in ("mysql://u@h/d", "postgresql+psycopg2://u@h/d", "  "):
        with pytest.raises(CentralValueError):
            resolve_database(bad)


# --------------------------------------------------------------------- sites, kiosks, tokens
def test_sites_and_kiosks(store: CentralStore) -> None:
    store.add_site("HQ", "Europe/Paris")
    with pytest.raises(CentralConflictError, match="already exists"):
        store.add_site("HQ", "UTC")
    with pytest.raises(CentralValueError, match="unknown time zone"):
        store.add_site("Moon", "Moon/Base")
    with pytest.raises(CentralNotFoundError, match="no site 'Annex'"):
        store.create_kiosk("door-2", "Annex")
    issued = store.create_kiosk("door-1", "HQ")
    assert "cfk_" not in repr(issued)
    with pytest.raises(CentralConflictError, match="already exists"):
        store.create_kiosk("door-1", "HQ")
    with pytest.raises(CentralValueError, match="letters, digits"):
        store.create_kiosk("door 1", "HQ")
    (k,) = store.kiosks()
    assert (k.name, k.site, k.revoked, k.last_seen_utc, k.backlog) == (
        "door-1",
        "HQ",
        False,
        None,
        0,
    )
    assert [(s.name, s.timezone) for s in store.sites()] == [("HQ", "Europe/Paris")]


def test_tokens_verify_and_only_their_hash_is_stored(store: CentralStore) -> None:
    store.add_site("HQ", "UTC")
    token = store.create_kiosk("door-1", "HQ").token
    assert token.startswith("cfk_")
    who = store.authenticate(token)
    assert (who.kind, who.name) == ("kiosk", "door-1") and who.kiosk_id is not None
    secret = token.rsplit("_", 1)[1] if token.count("_") == 2 else token.split("_", 2)[2]
    assert raw_scalar(store, f"SELECT count(*) FROM tokens WHERE secret_sha256 = '{secret}'") == 0
    stored = raw_scalar(store, "SELECT secret_sha256 FROM tokens")
    assert secret not in str(stored) and len(stored) == 64

    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (wrong, "cfk_0000000000000000_" + "A" * 43, "Bearer nonsense", "", token + "x"):
        with pytest.raises(AuthenticationError):
            store.authenticate(bad)
    admin = store.create_admin("hr-laptop")
    assert admin.startswith("cfa_") and store.authenticate(admin).kind == "admin"
    with pytest.raises(AuthenticationError):  # the kind is part of the token
        store.authenticate("cfk_" + admin[4:])


def test_rotate_revokes_the_old_token_in_the_same_step(store: CentralStore) -> None:
    store.add_site("HQ", "UTC")
    old = store.create_kiosk("door-1", "HQ").token
    new = store.rotate_kiosk_token("door-1")
    assert new != old and store.authenticate(new).name == "door-1"
    with pytest.raises(AuthenticationError, match="revoked"):
        store.authenticate(old)
    with pytest.raises(CentralNotFoundError):
        store.rotate_kiosk_token("door-9")


def test_a_revoked_kiosk_and_a_revoked_admin_are_refused(store: CentralStore) -> None:
    store.add_site("HQ", "UTC")
    token = store.create_kiosk("door-1", "HQ").token
    assert store.revoke_kiosk("door-1").revoked
    with pytest.raises(AuthenticationError, match="revoked"):
        store.authenticate(token)
    with pytest.raises(CentralValueError, match="revoked"):
        store.rotate_kiosk_token("door-1")
    admin = store.create_admin("hr")
    with pytest.raises(CentralConflictError):
        store.create_admin("hr")
    assert store.revoke_admin("hr") == 1
    with pytest.raises(AuthenticationError, match="revoked"):
        store.authenticate(admin)
    assert store.authenticate(store.create_admin("hr")).name == "hr"  # a new one after revoking
    assert [a.revoked_utc is None for a in store.admins()] == [False, True]
    with pytest.raises(CentralNotFoundError):
        store.revoke_admin("nobody")


# --------------------------------------------------------------------- ingest
def test_ingest_accepts_then_reports_duplicates(store: CentralStore, kiosk: Principal) -> None:
    events = [wire(1), wire(2), wire(3, margin=None, clock_synced=None)]
    response = store.ingest(kiosk, batch(*events))
    assert [r.status for r in response.results] == ["accepted"] * 3
    assert [r.event_id for r in response.results] == [e.event_id for e in events]
    assert response.high_water_seq == {"log-a": 3}
    again = store.ingest(kiosk, batch(*events))
    assert [r.status for r in again.results] == ["duplicate"] * 3
    assert again.high_water_seq == {"log-a": 3}
    found, more = store.events()
    assert not more and [e.event_id for e in found] == [e.event_id for e in events]
    third = found[2]
    assert (third.kiosk, third.margin, third.clock_synced, third.utc) == (
        "door-1",
        None,
        None,
        events[2].utc,
    )


def test_numbers_and_times_come_back_exactly_so_a_resend_is_a_duplicate(
    store: CentralStore, kiosk: Principal
) -> None:
    rng = np.random.default_rng(7)
    events = [
        wire(
            seq,
            distance=float(rng.random()) / 3,
            margin=float(rng.random()) * 1e-7 if seq % 2 else 1e300,
            utc=T0 + timedelta(microseconds=int(rng.integers(1, 10**12))),
            person_id="p-\u00e9\u4e2d\U0001f600",
        )
        for seq in range(1, 21)
    ]
    assert statuses(store, kiosk, *events) == ["accepted"] * 20
    assert statuses(store, kiosk, *events) == ["duplicate"] * 20
    held, _ = store.events(limit=100)
    assert {(e.distance, e.margin, e.utc, e.person_id) for e in held} == {
        (e.distance, e.margin, e.utc, e.person_id) for e in events
    }


def test_same_id_with_other_content_is_a_conflict_and_stores_nothing(
    store: CentralStore, kiosk: Principal
) -> None:
    first = wire(1)
    assert statuses(store, kiosk, first) == ["accepted"]
    changed = [
        first.model_copy(update={"person_id": "p2"}),
        first.model_copy(update={"distance": 0.32}),
        first.model_copy(update={"clock_synced": False}),
        first.model_copy(update={"utc": first.utc + timedelta(microseconds=1)}),
    ]
    assert statuses(store, kiosk, *changed) == ["conflict"] * 4
    (held,), _ = store.events()
    assert (held.person_id, held.distance, held.clock_synced) == ("p1", 0.31, True)
    assert [a.action for a in store.audit() if a.kind == "ingest"] == ["conflict"]


def test_another_event_on_a_held_log_and_seq_is_a_conflict(
    store: CentralStore, kiosk: Principal
) -> None:
    assert statuses(store, kiosk, wire(1), wire(2)) == ["accepted"] * 2
    assert statuses(store, kiosk, wire(2), wire(3)) == ["conflict", "accepted"]
    # within one batch: the first of two events on one seq wins; a repeated id is a duplicate
    twin = wire(4)
    assert statuses(store, kiosk, twin, wire(4), twin) == ["accepted", "conflict", "duplicate"]
    assert store.event_count() == 4


def test_the_same_event_from_another_kiosk_is_a_conflict(
    store: CentralStore, kiosk: Principal
) -> None:
    other = store.authenticate(store.create_kiosk("door-2", "HQ").token)
    event = wire(1)
    assert statuses(store, kiosk, event) == ["accepted"]
    assert statuses(store, other, event) == ["conflict"]  # a log belongs to one kiosk
    response = store.ingest(other, batch(wire(1, log="log-b")))
    assert response.high_water_seq == {"log-b": 1}


def test_out_of_order_batches_and_the_contiguous_high_water(
    store: CentralStore, kiosk: Principal
) -> None:
    events = {seq: wire(seq) for seq in range(1, 11)}
    first = store.ingest(kiosk, batch(events[4], events[5], events[6]))
    assert first.high_water_seq == {"log-a": 0}  # 1..3 missing: a gap is visible
    assert store.get_kiosk("door-1").backlog == 6
    second = store.ingest(kiosk, batch(events[2], events[1], events[9], wire(1, log="log-b")))
    assert second.high_water_seq == {"log-a": 2, "log-b": 1}
    third = store.ingest(kiosk, batch(events[3]))
    assert third.high_water_seq == {"log-a": 6}
    assert store.get_kiosk("door-1").backlog == 3  # 9 held, 7 and 8 not
    assert store.ingest(kiosk, batch(events[8], events[7])).high_water_seq == {"log-a": 9}
    assert store.ingest(kiosk, batch(events[10])).high_water_seq == {"log-a": 10}
    assert store.get_kiosk("door-1").backlog == 0


def test_a_long_run_advances_past_one_chunk(store: CentralStore, kiosk: Principal) -> None:
    later = [wire(seq) for seq in range(2, 1203)]
    for start in range(0, len(later), 1000):
        assert store.ingest(kiosk, batch(*later[start : start + 1000])).high_water_seq == {
            "log-a": 0
        }
    assert store.ingest(kiosk, batch(wire(1))).high_water_seq == {"log-a": 1202}


def test_clock_skew_is_measured_and_flagged(store: CentralStore, kiosk: Principal) -> None:
    ok = store.ingest(kiosk, batch(wire(1), sent=T0))
    assert 0 < ok.clock_skew_seconds < 60 and not ok.clock_flagged
    behind = store.ingest(kiosk, batch(wire(2), sent=T0 - timedelta(hours=1)))
    assert behind.clock_flagged and behind.clock_skew_seconds > 3600
    ahead = store.ingest(kiosk, batch(wire(3), sent=T0 + timedelta(hours=1)))
    assert ahead.clock_flagged and ahead.clock_skew_seconds < -3000
    info = store.get_kiosk("door-1")
    assert info.clock_flagged and info.clock_skew_seconds == ahead.clock_skew_seconds
    assert info.last_seen_utc is not None and info.last_seen_utc > T0


def test_ingest_by_kiosk_name_and_refusals(store: CentralStore, kiosk: Principal) -> None:
    assert statuses(store, "door-1", wire(1)) == ["accepted"]
    with pytest.raises(CentralNotFoundError):
        store.ingest("door-9", batch(wire(2)))
    admin = store.authenticate(store.create_admin("hr"))
    with pytest.raises(CentralValueError, match="only a kiosk"):
        store.ingest(admin, batch(wire(2)))
    assert store.event_count() == 1


def test_events_are_listed_by_time_in_pages(store: CentralStore, kiosk: Principal) -> None:
    events = [wire(seq, utc=T0 + timedelta(minutes=seq // 2)) for seq in range(1, 8)]
    store.ingest(kiosk, batch(*events))
    seen: list[uuid.UUID] = []
    after = None
    while True:
        page, more = store.events(limit=3, after=after)
        seen += [e.event_id for e in page]
        if not more:
            break
        after = page[-1].event_id
    expected = sorted(events, key=lambda e: (e.utc, e.event_id))
    assert seen == [e.event_id for e in expected]
    window, _ = store.events(
        since_utc=T0 + timedelta(minutes=1), until_utc=T0 + timedelta(minutes=3)
    )
    assert {e.seq for e in window} == {2, 3, 4, 5}


# --------------------------------------------------------------------- gallery deltas
def delta_ids(delta: GalleryDelta) -> list[tuple[str, str, int]]:
    changes = [("person", p.person_id, p.version) for p in delta.people]
    changes += [("erasure", e.person_id, e.version) for e in delta.erasures]
    return sorted(changes, key=lambda c: c[2])


def test_gallery_deltas_carry_adds_updates_deactivations_and_erasures(store: CentralStore) -> None:
    empty = store.gallery_delta(0)
    assert (empty.version, empty.more, empty.people, empty.erasures) == (0, False, [], [])
    store.enroll("p1", "Ada", "ops", unit(1, 2))
    store.enroll("p2", "Bob", None, unit(2))
    first = store.gallery_delta(0)
    assert delta_ids(first) == [("person", "p1", 1), ("person", "p2", 2)]
    ada = first.people[0]
    assert (ada.name, ada.team, ada.active) == ("Ada", "ops", True)
    assert np.array_equal(np.stack([decode_template(t) for t in ada.templates]), unit(1, 2))
    assert first.version == 2 and store.roster_version() == 2

    store.update_person("p1", team="")
    store.set_active("p2", False)
    store.add_templates("p1", unit(3))
    store.remove_person("p2")
    later = store.gallery_delta(2)
    assert delta_ids(later) == [("person", "p1", 5), ("erasure", "p2", 6)]
    (p1,) = later.people
    assert p1.team is None and len(p1.templates) == 3
    assert later.version == 6 and not later.more
    assert store.gallery_delta(6).people == [] and store.gallery_delta(6).version == 6

    deactivated = store.gallery_delta(3)  # a kiosk that saw p2 deactivated, then erased
    assert delta_ids(deactivated) == [("person", "p1", 5), ("erasure", "p2", 6)]


def test_reenrolling_after_an_erasure_comes_after_it(store: CentralStore) -> None:
    store.enroll("p1", "Ada", None, unit(1))
    store.remove_person("p1")
    store.enroll("p1", "Ada Lovelace", None, unit(2))
    delta = store.gallery_delta(0)
    assert delta_ids(delta) == [("erasure", "p1", 2), ("person", "p1", 3)]
    assert delta.people[0].name == "Ada Lovelace"
    replaced = store.enroll_many([NewPerson("p1", "Ada L.", None, unit(4))], replace=True)
    assert replaced[0].name == "Ada L."
    assert delta_ids(store.gallery_delta(3)) == [("erasure", "p1", 4), ("person", "p1", 5)]


def test_gallery_pages_follow_the_limit(store: CentralStore) -> None:
    for i in range(5):
        store.enroll(f"p{i}", f"Person {i}", None, unit(i))
    store.remove_person("p1")
    store.remove_person("p3")  # versions: p0 1, p2 3, p4 5, erasures 6, 7
    seen: list[tuple[str, str, int]] = []
    since = 0
    pages = 0
    while True:
        page = store.gallery_delta(since, limit=2)
        pages += 1
        seen += delta_ids(page)
        assert page.since == since and page.version >= since
        if not page.more:
            break
        since = page.version
    assert pages == 3
    assert seen == [
        ("person", "p0", 1),
        ("person", "p2", 3),
        ("person", "p4", 5),
        ("erasure", "p1", 6),
        ("erasure", "p3", 7),
    ]
    with pytest.raises(CentralConflictError, match="ahead"):
        store.gallery_delta(99)
    with pytest.raises(CentralValueError):
        store.gallery_delta(0, limit=0)


def test_erasure_receipts_record_which_kiosks_confirmed(
    store: CentralStore, kiosk: Principal
) -> None:
    store.create_kiosk("door-2", "HQ")
    store.enroll("p1", "Ada", None, unit(1))
    store.enroll("p2", "Bob", None, unit(2))
    store.remove_person("p1")  # version 3
    store.remove_person("p2")  # version 4
    assert store.gallery_applied(kiosk, 3) == 1
    assert store.gallery_applied(kiosk, 3) == 0  # a repeat records nothing new
    first, second = store.erasures()
    assert (first.person_id, first.confirmed, first.pending) == ("p1", ("door-1",), ("door-2",))
    assert (second.confirmed, second.pending) == ((), ("door-1", "door-2"))
    assert store.gallery_applied("door-2", 4) == 2
    assert store.gallery_applied(kiosk, 4) == 1
    assert all(e.pending == () for e in store.erasures())
    assert store.get_kiosk("door-1").gallery_version == 4
    with pytest.raises(CentralValueError, match="does not exist yet"):
        store.gallery_applied(kiosk, 5)
    store.revoke_kiosk("door-2")
    store.enroll("p3", "Cy", None, unit(3))
    store.remove_person("p3")
    assert store.erasures()[-1].pending == ("door-1",)  # revoked kiosks are not waited for


def test_full_gallery_holds_everyone_with_templates(store: CentralStore) -> None:
    store.enroll("p1", "Ada", None, unit(1, 2))
    store.enroll_many([NewPerson("p2", "Bob", None, unit(2), active=False)])
    store.enroll("p3", "Cy", None, unit(3))
    store.remove_person("p3")
    everyone = store.full_gallery()
    assert [(p.person_id, p.active, len(p.templates)) for p in everyone.people] == [
        ("p1", True, 2),
        ("p2", False, 1),
    ]
    assert everyone.version == store.roster_version() and everyone.erasures == []


# --------------------------------------------------------------------- roster methods
def test_the_central_store_is_a_roster(store: CentralStore) -> None:
    roster: Roster = store
    assert isinstance(roster.add_person("p1", "Ada"), Person)


def test_roster_add_update_deactivate_and_versions(store: CentralStore) -> None:
    person = store.add_person("p1", "Ada", "ops")
    assert (person.name, person.team, person.active, person.template_count) == (
        "Ada",
        "ops",
        True,
        0,
    )
    assert store.roster_version() == 1
    assert store.update_person("p1", name="Ada") == person  # no change: no new version
    assert store.roster_version() == 1
    updated = store.update_person("p1", name="Ada L.", team="")
    assert (updated.name, updated.team) == ("Ada L.", None) and store.roster_version() == 2
    assert updated.updated_utc > person.updated_utc
    assert not store.set_active("p1", False).active
    assert store.set_active("p1", False).active is False and store.roster_version() == 3
    assert store.people(active_only=True) == [] and len(store.people()) == 1
    assert store.add_templates("p1", unit(1, 3)) == 3
    assert store.get_person("p1").template_count == 3 and store.roster_version() == 4
    assert store.person_record("p1").version == 4
    with pytest.raises(StoreValueError, match="nothing to update"):
        store.update_person("p1")


def test_roster_refusals(store: CentralStore) -> None:
    store.add_person("p1", "Ada")
    with pytest.raises(DuplicatePersonError):
        store.add_person("p1", "Ada")
    with pytest.raises(DuplicatePersonError):
        store.enroll("p1", "Ada", None, unit(1))
    for call in (
        lambda: store.get_person("nobody"),
        lambda: store.set_active("nobody", False),
        lambda: store.add_templates("nobody", unit(1)),
        lambda: store.remove_person("nobody"),
        lambda: store.templates("nobody"),
    ):
        with pytest.raises(UnknownPersonError):
            call()
    for bad in ("", " p", "x" * 201, "a\nb"):
        with pytest.raises(StoreValueError):
            store.add_person(bad, "Name")
    with pytest.raises(StoreValueError, match="at least one template"):
        store.enroll("p2", "Bob", None, np.empty((0, EMBEDDING_DIM)))
    with pytest.raises(StoreValueError, match="NaN"):
        store.add_templates("p1", np.full(EMBEDDING_DIM, np.nan))
    with pytest.raises(StoreValueError, match="at most 100"):
        store.add_templates("p1", unit(1, 101))
    with pytest.raises(StoreValueError, match="given twice"):
        store.enroll_many(
            [NewPerson("p3", "C", None, unit(1)), NewPerson("p3", "C", None, unit(2))]
        )
    assert [p.person_id for p in store.people()] == ["p1"] and store.roster_version() == 1


def test_enroll_many_is_all_or_nothing(store: CentralStore) -> None:
    store.enroll("p2", "Bob", None, unit(2))
    with pytest.raises(DuplicatePersonError):
        store.enroll_many(
            [NewPerson("p1", "Ada", None, unit(1)), NewPerson("p2", "Bob", None, unit(2))]
        )
    assert [p.person_id for p in store.people()] == ["p2"] and store.roster_version() == 1
    added = store.enroll_many(
        [NewPerson("p1", "Ada", None, unit(1)), NewPerson("p3", "Cy", "x", np.empty((0, 128)))],
        consents={"p1": Consent("form-17", "2024-01", T0)},
    )
    assert [(p.person_id, p.template_count) for p in added] == [("p1", 1), ("p3", 0)]
    record = store.person_record("p1")
    assert record.consents == (Consent("form-17", "2024-01", T0),)
    assert store.roster_version() == 3


def test_templates_gallery_and_erasure(store: CentralStore) -> None:
    store.enroll("p1", "Ada", None, unit(1, 2))
    store.enroll("p2", "Bob", None, unit(2))
    store.enroll_many([NewPerson("p3", "Cy", None, unit(3), active=False)])
    assert np.array_equal(store.templates("p1"), unit(1, 2))
    gallery = store.load_gallery(threshold=0.5, margin=0.1)
    assert len(gallery) == 3  # p3 is inactive
    match = gallery.match_one(unit(2)[0])
    assert match.person_id == "p2"
    assert store.remove_person("p1") == 2
    erased = store.erase_person("p2")
    assert (erased.person_id, erased.templates, erased.version) == ("p2", 1, 5)
    assert [p.person_id for p in store.people()] == ["p3"]
    assert raw_scalar(store, "SELECT count(*) FROM templates") == 1
    assert [e.person_id for e in store.erasures()] == ["p1", "p2"]


def test_the_audit_log_names_who_and_never_the_names(store: CentralStore) -> None:
    store.enroll("p1", "Ada Secretname", "ops", unit(1), consent=Consent("f-1", "v1", T0))
    store.update_person("p1", name="Ada Othername")
    store.set_active("p1", False)
    store.with_actor("laptop-admin").remove_person("p1")
    trail = store.audit_log("p1")
    assert [e.action for e in trail] == [
        "add",
        "add_templates",
        "consent",
        "update",
        "deactivate",
        "remove",
    ]
    assert [e.actor for e in trail][-2:] == ["hr-admin", "laptop-admin"]
    assert trail[3].detail == "changed name"
    text = " ".join(str(a) for a in store.audit())
    assert "Secretname" not in text and "Othername" not in text
    assert store.audit_log("nobody") == []


def test_ready_means_a_committed_write_and_room_on_the_disk(
    store: CentralStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``check_ready`` (``/readyz``) commits a write each time: the count goes up. On
    SQLite a disk with less than READY_MIN_FREE_BYTES free is not ready either."""
    from central import store as central_store

    store.check_ready()
    store.check_ready()
    meta = store._t["meta"]
    with store._read("test") as conn:
        count = conn.execute(
            sa.select(meta.c.value).where(meta.c.key == central_store.READY_PROBE)
        ).scalar_one()
    assert count == 2
    assert store.roster_version() == 0  # the probe leaves the roster's version alone
    if store.sqlite_path is None:
        return
    full = central_store.READY_MIN_FREE_BYTES - 1
    usage = shutil.disk_usage(store.sqlite_path.parent)._replace(free=full)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage)
    with pytest.raises(CentralStoreError, match=r"only \d+ KiB free on the database's disk"):
        store.check_ready()
