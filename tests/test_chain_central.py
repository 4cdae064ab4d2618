"""The central service checks each kiosk log's tamper-evident chain as events arrive.

Real kiosk databases (chained by ``KioskStore.append_event``), tampered through a plain
sqlite3 connection with the triggers dropped; the real central store on SQLite and on
PostgreSQL (tests/helpers/postgres.py); and once end to end, the real sync agent pushing to the
real service on loopback.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from central import migrations
from central.app import _kiosk_out
from central.metrics import Metrics
from central.store import CentralStore, LogChain, Principal, resolve_database
from clockface import chain
from clockface.cli import main as cli_main
from kiosk import migrations as kiosk_migrations
from kiosk.store import Event, KioskStore
from sync.agent import SyncAgent, to_wire
from sync.protocol import EventBatch, WireEvent
from tests.helpers.fakes import T0, FakeClock
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.server import serving


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def central(database: str) -> Iterator[CentralStore]:
    with CentralStore.open(database, actor="tests", clock=FakeClock()) as store:
        yield store


@pytest.fixture
def door(central: CentralStore) -> Principal:
    central.add_site("HQ", "Europe/Paris")
    return central.authenticate(central.create_kiosk("door-1", "HQ").token)


@pytest.fixture
def kiosk(tmp_path: Path) -> Iterator[KioskStore]:
    with KioskStore.open(
        tmp_path / "kiosk.db", kiosk_id="door-1-db", clock_status=lambda: True
    ) as store:
        yield store


def record(store: KioskStore, n: int) -> list[Event]:
    first = len(store.events())
    return [
        store.append_event(
            f"p{i % 4}",
            "in" if i % 2 else "out",
            utc=T0 + timedelta(minutes=i, microseconds=i * 7),
            tz="Europe/Paris",
            distance=0.1 + 0.2 * (i % 3),  # not exact in binary: the wire must keep it
            margin=float("inf") if i % 5 == 0 else 0.3,
            frames=3,
            software_version="0.1.0",
            clock_synced=None if i % 7 == 0 else bool(i % 2),
        )
        for i in range(first, first + n)
    ]


def tamper(store: KioskStore, sql: str, params: list[Any] | None = None) -> None:
    """Edit the kiosk's file as someone with access would: triggers dropped first."""
    with closing(sqlite3.connect(store.path, isolation_level=None)) as conn:
        for name in kiosk_migrations.EVENT_TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute(sql, params or [])


def wire(store: KioskStore, first: int, last: int) -> list[WireEvent]:
    """The kiosk's events first..last as the agent sends them, through JSON and back."""
    events = [e for e in store.events() if first <= e.seq <= last]
    return [
        WireEvent.model_validate_json(to_wire(e, store.log_id).model_dump_json()) for e in events
    ]


def send(central: CentralStore, door: Principal, events: list[WireEvent]) -> list[str]:
    answer = central.ingest(door, EventBatch(sent_utc=T0, events=events))
    return [r.status for r in answer.results]


def only_log(central: CentralStore) -> LogChain:
    (log,) = central.chain_logs()
    return log


# --------------------------------------------------------------------- the wire
def test_the_wire_carries_the_chain_and_the_kiosk_id(kiosk: KioskStore) -> None:
    (event,) = record(kiosk, 1)
    sent = to_wire(event, kiosk.log_id)
    assert (sent.chain, sent.kiosk_id) == (event.chain, "door-1-db")
    body = sent.model_dump(mode="json")
    with pytest.raises(pydantic.ValidationError, match="kiosk_id"):
        WireEvent.model_validate({**body, "kiosk_id": None})
    for bad in ("AB" * 32, "ab" * 31, "zz" * 32, ""):
        with pytest.raises(pydantic.ValidationError):
            WireEvent.model_validate({**body, "chain": bad})
    unchained = WireEvent.model_validate({**body, "chain": None, "kiosk_id": None})
    assert unchained.chain is None
    del body["chain"], body["kiosk_id"]
    assert WireEvent.model_validate(body).chain is None  # optional: protocol version 1


# --------------------------------------------------------------------- the store
def test_a_clean_sync_verifies(central: CentralStore, door: Principal, kiosk: KioskStore) -> None:
    record(kiosk, 23)
    for first in range(1, 24, 10):
        assert set(send(central, door, wire(kiosk, first, first + 9))) == {"accepted"}
    log = only_log(central)
    assert (log.kiosk, log.log_id, log.contiguous_seq, log.chain_seq) == (
        "door-1",
        kiosk.log_id,
        23,
        23,
    )
    assert (log.state, log.chain_break_seq, log.unchained_seq) == ("verified", None, None)
    assert log.describe() == "verified through seq 23"
    (info,) = central.kiosks()
    assert (info.chain_state, info.chain_break_seq, info.chain_text) == (
        "verified",
        None,
        "verified",
    )
    held, _ = central.events(limit=100)
    mine = {e.event_id: e.chain for e in kiosk.events()}
    assert {str(e.event_id): e.chain for e in held} == mine
    assert {e.recorded_kiosk_id for e in held} == {"door-1-db"}
    text = Metrics().render(central)
    assert 'clockface_kiosk_chain_break{kiosk="door-1"} 0' in text
    assert 'clockface_kiosk_chain_unchained{kiosk="door-1"} 0' in text
    assert "clockface_kiosk_chain_break_seq{" not in text
    # Sending it all again changes nothing: duplicates.
    assert set(send(central, door, wire(kiosk, 1, 23))) == {"duplicate"}
    assert only_log(central) == log


def test_an_edited_event_is_flagged_at_its_seq_and_still_stored(
    database: str, central: CentralStore, door: Principal, kiosk: KioskStore
) -> None:
    record(kiosk, 12)
    send(central, door, wire(kiosk, 1, 6))
    tamper(kiosk, "UPDATE events SET person_id = 'mallory' WHERE seq = 9")
    assert send(central, door, wire(kiosk, 7, 12)) == ["accepted"] * 6
    log = only_log(central)
    assert (log.state, log.chain_break_seq, log.chain_seq) == ("broken", 9, 12)
    assert log.describe() == "BROKEN at seq 9"
    held, _ = central.events(limit=100)
    assert [e.person_id for e in held if e.seq == 9] == ["mallory"]  # evidence kept
    (info,) = central.kiosks()
    assert (info.chain_state, info.chain_break_seq, info.chain_text) == (
        "broken",
        9,
        "BROKEN at seq 9",
    )
    (audit,) = [a for a in central.audit() if a.action == "chain_break"]
    assert (audit.kind, audit.subject) == ("ingest", "door-1")
    assert audit.detail == f"log {kiosk.log_id}: the chain breaks at seq 9"
    text = Metrics().render(central)
    assert 'clockface_kiosk_chain_break{kiosk="door-1"} 1' in text
    assert 'clockface_kiosk_chain_break_seq{kiosk="door-1"} 9' in text
    # The operator sees it in `central kiosk list` and the admin API's kiosk list.
    listing = CliRunner().invoke(cli_main, ["central", "kiosk", "list", "--database", database])
    assert listing.exit_code == 0, listing.output
    assert "chain BROKEN at seq 9" in listing.output
    assert _kiosk_out(info).model_dump(include={"chain_state", "chain_break_seq"}) == {
        "chain_state": "broken",
        "chain_break_seq": 9,
    }
    # The break is kept: later, clean events do not clear it.
    record(kiosk, 3)
    send(central, door, wire(kiosk, 13, 15))
    assert (only_log(central).chain_break_seq, only_log(central).chain_seq) == (9, 15)
    assert len([a for a in central.audit() if a.action == "chain_break"]) == 1


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE events SET utc = '2024-03-04T07:00:00.000000Z' WHERE seq = 4",
        "UPDATE events SET distance = 0.05 WHERE seq = 4",
        "UPDATE events SET kiosk_id = 'door-2-db' WHERE seq = 4",
        "UPDATE events SET chain = '" + "ab" * 32 + "' WHERE seq = 4",
    ],
)
def test_each_kind_of_edit_is_flagged(
    central: CentralStore, door: Principal, kiosk: KioskStore, edit: str
) -> None:
    record(kiosk, 6)
    tamper(kiosk, edit)
    send(central, door, wire(kiosk, 1, 6))
    assert only_log(central).chain_break_seq == 4


def test_a_deleted_event_shows_as_a_gap_then_a_break(
    central: CentralStore, door: Principal, kiosk: KioskStore
) -> None:
    record(kiosk, 8)
    tamper(kiosk, "DELETE FROM events WHERE seq = 5")
    send(central, door, wire(kiosk, 1, 8))
    log = only_log(central)
    assert (log.contiguous_seq, log.max_seq, log.chain_seq, log.chain_break_seq) == (4, 8, 4, None)
    assert central.kiosks()[0].backlog == 4  # the gap shows
    # Renumbered to hide the gap: the service holds those events under their old seqs.
    tamper(kiosk, "UPDATE events SET seq = seq - 1 WHERE seq > 5")
    assert send(central, door, wire(kiosk, 5, 7)) == ["conflict"] * 3
    assert only_log(central) == log


def test_out_of_order_batches_verify_once_contiguous(
    central: CentralStore, door: Principal, kiosk: KioskStore
) -> None:
    record(kiosk, 30)
    send(central, door, wire(kiosk, 21, 30))
    send(central, door, wire(kiosk, 11, 15))
    log = only_log(central)
    assert (log.contiguous_seq, log.chain_seq, log.state) == (0, 0, "none")
    assert central.kiosks()[0].chain_state == "none"
    send(central, door, wire(kiosk, 1, 10))
    assert (only_log(central).chain_seq, only_log(central).state) == (15, "verified")
    send(central, door, wire(kiosk, 14, 22))  # some resent, 16-20 new: read back 21, 22
    log = only_log(central)
    assert (log.contiguous_seq, log.chain_seq, log.state) == (30, 30, "verified")


def test_an_edit_in_a_batch_held_past_a_gap_is_flagged_once_contiguous(
    central: CentralStore, door: Principal, kiosk: KioskStore
) -> None:
    record(kiosk, 20)
    tamper(kiosk, "UPDATE events SET direction = 'in', person_id = 'x' WHERE seq = 17")
    send(central, door, wire(kiosk, 11, 20))
    assert only_log(central).chain_break_seq is None  # not checkable yet
    send(central, door, wire(kiosk, 1, 10))
    log = only_log(central)
    assert (log.chain_seq, log.chain_break_seq) == (20, 17)


def test_events_without_a_chain_leave_the_log_unchained_never_verified(
    central: CentralStore, door: Principal, kiosk: KioskStore
) -> None:
    record(kiosk, 6)
    events = wire(kiosk, 1, 6)
    bare = [e.model_copy(update={"chain": None, "kiosk_id": None}) for e in events[:3]]
    send(central, door, bare)
    log = only_log(central)
    assert (log.state, log.unchained_seq, log.chain_seq) == ("unchained", 1, 3)
    assert log.describe() == "unchained from seq 1"
    send(central, door, events[3:])
    log = only_log(central)
    assert (log.state, log.unchained_seq, log.chain_break_seq) == ("unchained", 1, None)
    text = Metrics().render(central)
    assert 'clockface_kiosk_chain_unchained{kiosk="door-1"} 1' in text
    assert 'clockface_kiosk_chain_break{kiosk="door-1"} 0' in text
    assert not [a for a in central.audit() if a.action == "chain_break"]


def test_an_unchained_event_in_the_middle_is_named_and_the_rest_checked(
    central: CentralStore, door: Principal, kiosk: KioskStore
) -> None:
    record(kiosk, 10)
    events = wire(kiosk, 1, 10)
    events[4] = events[4].model_copy(update={"chain": None})
    events[7] = events[7].model_copy(update={"person_id": "x"})  # a break after the hole
    send(central, door, events)
    log = only_log(central)
    assert (log.unchained_seq, log.chain_break_seq, log.state) == (5, 8, "broken")


def test_an_event_resent_with_a_chain_after_the_kiosk_upgraded_is_a_duplicate(
    central: CentralStore, door: Principal, kiosk: KioskStore
) -> None:
    record(kiosk, 3)
    events = wire(kiosk, 1, 3)
    send(
        central, door, [e.model_copy(update={"chain": None, "kiosk_id": None}) for e in events[:2]]
    )
    assert send(central, door, events[:2]) == ["duplicate", "duplicate"]
    held = {e.seq: e.chain for e in central.events(limit=10)[0]}
    assert held == {1: None, 2: None}  # what it first got
    # Once held with a chain, another chain is another event.
    assert send(central, door, [events[2]]) == ["accepted"]
    assert send(central, door, [events[2].model_copy(update={"chain": "ab" * 32})]) == ["conflict"]


def test_two_kiosks_and_two_logs_are_checked_apart(
    central: CentralStore, door: Principal, kiosk: KioskStore, tmp_path: Path
) -> None:
    other = central.authenticate(central.create_kiosk("door-2", "HQ").token)
    with KioskStore.open(tmp_path / "two.db", kiosk_id="door-2-db") as second:
        record(kiosk, 5)
        record(second, 5)
        tamper(second, "UPDATE events SET frames = 9 WHERE seq = 2")
        send(central, door, wire(kiosk, 1, 5))
        send(central, other, wire(second, 1, 5))
        assert {(c.kiosk, c.state, c.chain_break_seq) for c in central.chain_logs()} == {
            ("door-1", "verified", None),
            ("door-2", "broken", 2),
        }
        (two,) = central.chain_logs("door-2")
        assert two.log_id == second.log_id
    states = {k.name: k.chain_state for k in central.kiosks()}
    assert states == {"door-1": "verified", "door-2": "broken"}


# --------------------------------------------------------------------- upgrading
def _v2_database(database: str) -> None:
    """A central database as clockface made it before schema 3, holding two logs: one
    whole from seq 1, one with a gap before its seq 2."""
    engine = sa.create_engine(resolve_database(database).url)
    v1 = sa.MetaData()
    migrations._v1_tables(v1)
    t = v1.tables
    at = "2024-01-01T00:00:00.000000Z"
    try:
        with engine.begin() as conn:
            migrations.migrate(conn, where="test", applied_utc=at, steps=migrations.MIGRATIONS[:2])
            conn.execute(
                sa.insert(t["sites"]).values(id=1, name="HQ", timezone="UTC", created_utc=at)
            )
            conn.execute(
                sa.insert(t["kiosks"]).values(
                    id=1, name="door-1", site_id=1, created_utc=at, clock_flagged=False
                )
            )
            for log, seq in (("whole", 1), ("whole", 2), ("gap", 2)):
                conn.execute(
                    sa.insert(t["events"]).values(
                        event_id=uuid.uuid4(), kiosk_id=1, log_id=log, seq=seq, person_id="p1",
                        direction="in", utc=at, tz="UTC", distance=0.3, margin=0.2, frames=3,
                        software_version="0.0.9", clock_synced=True, received_utc=at,
                    )
                )  # fmt: skip
            conn.execute(
                sa.insert(t["kiosk_logs"]),
                [
                    {"log_id": "whole", "kiosk_id": 1, "contiguous_seq": 2, "max_seq": 2},
                    {"log_id": "gap", "kiosk_id": 1, "contiguous_seq": 0, "max_seq": 2},
                ],
            )
    finally:
        engine.dispose()


def test_a_v2_database_marks_its_logs_unchained_and_never_verified(database: str) -> None:
    _v2_database(database)
    with CentralStore.open(database, actor="tests", clock=FakeClock()) as central:
        assert central.schema_version() == migrations.latest_version()
        logs = {c.log_id: c for c in central.chain_logs()}
        assert (logs["whole"].chain_seq, logs["whole"].unchained_seq) == (2, 1)
        assert (logs["gap"].chain_seq, logs["gap"].unchained_seq) == (0, None)
        assert central.kiosks()[0].chain_state == "unchained"
        door = central.authenticate(central.rotate_kiosk_token("door-1"))
        # The gap's seq 1 arrives, rightly chained: the old seq 2 is found unchained.
        first = WireEvent(
            event_id=uuid.uuid4(), log_id="gap", seq=1, person_id="p1", direction="out",
            utc=T0, tz="UTC", distance=0.3, margin=None, frames=3, software_version="0.1.0",
            clock_synced=True, kiosk_id="k",
        )  # fmt: skip
        fields = chain.EventFields.make(**first.model_dump(exclude={"chain", "log_start"}))
        first = first.model_copy(update={"chain": chain.link(chain.genesis("gap"), fields)})
        assert send(central, door, [first]) == ["accepted"]
        logs = {c.log_id: c for c in central.chain_logs()}
        assert (logs["gap"].chain_seq, logs["gap"].unchained_seq) == (2, 2)
        assert logs["gap"].chain_break_seq is None


# --------------------------------------------------------------------- end to end
def test_the_sync_agent_and_the_service_verify_a_kiosk_and_flag_a_tampered_one(
    database: str, kiosk: KioskStore
) -> None:
    with CentralStore.open(database, actor="tests") as central, serving(central) as base:
        central.add_site("HQ", "Europe/Paris")
        token = central.create_kiosk("door-1", "HQ").token
        with httpx.Client(timeout=30) as http:
            agent = SyncAgent(kiosk, http, server=base, token=token, batch_size=7, attempts=1)
            record(kiosk, 20)
            assert agent.run_once().push.acked == 20
            (log,) = central.chain_logs()
            assert (log.state, log.chain_seq) == ("verified", 20)
            metrics = http.get(f"{base}/metrics").text
            assert 'clockface_kiosk_chain_break{kiosk="door-1"} 0' in metrics

            record(kiosk, 10)
            tamper(kiosk, "UPDATE events SET person_id = 'mallory' WHERE seq = 26")
            report = agent.run_once().push
            assert (report.acked, report.parked) == (10, 0)  # evidence is kept
            (log,) = central.chain_logs()
            assert (log.state, log.chain_break_seq, log.chain_seq) == ("broken", 26, 30)
            metrics = http.get(f"{base}/metrics").text
            assert 'clockface_kiosk_chain_break{kiosk="door-1"} 1' in metrics
            assert 'clockface_kiosk_chain_break_seq{kiosk="door-1"} 26' in metrics
    # The kiosk's own check names the same seq.
    assert [p.seq for p in kiosk.verify_chain().chain.problems] == [26]
