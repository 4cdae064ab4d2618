"""The sync agent against a scripted central service on loopback (tests/helpers/syncserver.py),
and against httpx.MockTransport for answers no honest server gives.

Every test uses a real SQLite file and a real socket; sleeps are recorded, not slept
(except in the one test of the run loop, where they are tiny)."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from clockface import chain
from clockface.errors import (
    RosterManagedError,
    StoreValueError,
    SyncAuthError,
    SyncError,
    SyncProtocolError,
    SyncUnavailableError,
)
from hardware.clock import FakeClockStatus
from kiosk.store import Event, KioskStore
from recognition.gallery import EMBEDDING_DIM
from sync.agent import Backoff, SyncAgent, ago, status_lines, to_wire
from sync.client import parse_retry_after
from sync.protocol import IngestResponse
from tests.helpers.fakes import T0
from tests.helpers.syncserver import TOKEN, ScriptedCentral, wire_event


class RecordingRandom(random.Random):
    """A seeded Random that records the bounds every ``uniform`` was asked for."""

    def __init__(self, seed: int = 7) -> None:
        super().__init__(seed)
        self.bounds: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.bounds.append((a, b))
        return super().uniform(a, b)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KioskStore]:
    with KioskStore.open(
        tmp_path / "kiosk.db", kiosk_id="hall", actor="test", clock_status=FakeClockStatus()
    ) as s:
        yield s


@pytest.fixture
def central() -> Iterator[ScriptedCentral]:
    with ScriptedCentral() as c:
        yield c


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


class Harness:
    def __init__(self, store: KioskStore, central: ScriptedCentral, http: httpx.Client) -> None:
        self.store = store
        self.central = central
        self.http = http
        self.sleeps: list[float] = []
        self.rng = RecordingRandom()

    def agent(self, **kw: Any) -> SyncAgent:
        options: dict[str, Any] = {
            "server": self.central.url,
            "token": TOKEN,
            "backoff": Backoff(1.0, 30.0, self.rng),
            "sleep": self.sleeps.append,
            "clock": lambda: datetime.now(UTC),
        }
        options.update(kw)
        return SyncAgent(self.store, self.http, **options)


@pytest.fixture
def h(store: KioskStore, central: ScriptedCentral, http: httpx.Client) -> Harness:
    return Harness(store, central, http)


def log_events(store: KioskStore, count: int, start: int = 0) -> list[Event]:
    return [
        store.append_event(
            f"e{(start + i) % 13}",
            "in" if i % 2 == 0 else "out",
            utc=T0 + timedelta(seconds=start + i),
            tz="Europe/Paris",
            distance=0.3,
            margin=float("inf") if i % 5 == 0 else 0.2,
            frames=3,
            software_version="0.1.0",
        )
        for i in range(count)
    ]


def unit(seed: int, n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    x = np.random.default_rng(seed).standard_normal((n, EMBEDDING_DIM)).astype(np.float32)
    out: np.ndarray[Any, np.dtype[np.float32]] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


# --------------------------------------------------------------------- events up
def test_a_thousand_events_logged_while_down_arrive_exactly_once(h: Harness) -> None:
    h.central.down()
    events = log_events(h.store, 1000)
    agent = h.agent()
    with pytest.raises(SyncUnavailableError, match="could not be reached"):
        agent.run_once()
    assert len(h.sleeps) == 2  # three tries, two waits
    assert h.store.backlog() == 1000
    state = h.store.sync_state()
    assert state.last_error is not None and "Connection refused" in state.last_error
    assert state.last_success_utc is None

    h.central.up()
    report = agent.run_once()
    assert (report.push.sent, report.push.acked, report.push.parked) == (1000, 1000, 0)
    assert h.store.backlog() == 0
    assert all(e.acked_utc is not None for e in h.store.events())
    ids = [e.event_id for e in events]
    assert set(h.central.events) == set(ids)
    assert set(h.central.accepted.values()) == {1}
    assert [len(b) for b in h.central.batches] == [500, 500]
    assert h.central.high_water(h.store.log_id) == 1000
    held = h.central.events[ids[0]]
    assert (held.seq, held.margin, held.clock_synced) == (1, None, True)  # inf: null on the wire
    assert h.store.sync_state().last_success_utc is not None


def test_the_run_loop_waits_out_an_outage_and_stops_on_the_event(
    store: KioskStore, central: ScriptedCentral, http: httpx.Client
) -> None:
    central.down()
    log_events(store, 300)
    stop = threading.Event()

    def sync_process() -> None:  # its own connection to the file, as `sync run` has
        with KioskStore.open(store.path, actor="sync") as own:
            agent = SyncAgent(
                own,
                http,
                server=central.url,
                token=TOKEN,
                batch_size=100,
                backoff=Backoff(0.01, 0.05),
                attempts=None,
                stop=stop,
            )
            agent.run(interval=0.02)

    runner = threading.Thread(target=sync_process)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while store.sync_state().last_error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        central.up()
        log_events(store, 50, start=300)  # the kiosk keeps logging meanwhile
        while (store.backlog() or len(central.events) < 350) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
    assert store.backlog() == 0
    assert len(central.events) == 350
    assert set(central.accepted.values()) == {1}


def test_an_answer_lost_on_the_way_is_resent_and_acked_once(h: Harness) -> None:
    events = log_events(h.store, 40)
    h.central.drop_next(1)
    report = h.agent().run_once()
    assert len(h.central.batches) == 2  # stored and hung up on, then sent again
    assert h.central.batches[0] == h.central.batches[1]
    assert set(h.central.accepted.values()) == {1}
    assert (report.push.acked, report.push.duplicates) == (40, 40)
    assert h.store.backlog() == 0
    assert set(h.central.events) == {e.event_id for e in events}
    assert len(h.sleeps) == 1


def test_5xx_is_retried_with_growing_full_jitter(h: Harness) -> None:
    log_events(h.store, 3)
    h.central.fail_next(4, 500)
    h.agent(attempts=None).run_once()
    assert h.rng.bounds == [(0.0, 1.0), (0.0, 2.0), (0.0, 4.0), (0.0, 8.0)]
    assert len(h.sleeps) == 4
    assert all(0 <= s <= b for s, (_, b) in zip(h.sleeps, h.rng.bounds, strict=True))
    assert len(set(h.sleeps)) == 4  # jittered, not fixed steps
    assert h.store.backlog() == 0


def test_backoff_is_capped_and_retry_after_is_a_minimum() -> None:
    rng = RecordingRandom()
    backoff = Backoff(1.0, 30.0, rng)
    assert [backoff.bound(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.bound(10_000) == 30  # no overflow
    for n in range(50):
        assert 0 <= backoff.delay(n) <= 30
    assert backoff.delay(0, retry_after=7.0) == 7.0
    assert backoff.delay(0, retry_after=0.0) <= 1.0
    assert backoff.delay(0, retry_after=86_400_000_000.0) == 30.0  # capped
    assert backoff.delay(0, retry_after=math.inf) == 30.0


def test_retry_after_in_seconds_and_as_a_date_are_honoured(h: Harness) -> None:
    log_events(h.store, 2)
    now = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=25), usegmt=True)  # under the cap, 30
    h.central.fail_next(1, 429, retry_after="7")
    h.central.fail_next(1, 503, retry_after=later)
    h.central.fail_next(1, 408)
    h.agent(clock=lambda: now, attempts=4).run_once()
    assert h.sleeps[0] == 7.0
    assert h.sleeps[1] == 25.0
    assert 0 <= h.sleeps[2] <= 4.0
    assert h.store.backlog() == 0


@pytest.mark.parametrize("retry_after", ["86400000000", "Fri, 31 Dec 9999 23:59:59 GMT", "9" * 400])
def test_a_huge_retry_after_waits_the_longest_backoff_and_says_so(
    h: Harness, retry_after: str, caplog: pytest.LogCaptureFixture
) -> None:
    log_events(h.store, 2)
    h.central.fail_next(1, 503, retry_after=retry_after)
    with caplog.at_level(logging.WARNING, logger="clockface.sync"):
        h.agent(attempts=3).run_once()
    assert h.sleeps == [30.0]  # the backoff's cap, then the retry went through
    assert h.store.backlog() == 0
    assert "the central service asked to wait" in caplog.text
    assert "waiting 30 s, the longest backoff" in caplog.text


def test_parse_retry_after() -> None:
    now = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Mon, 04 Mar 2024 09:01:30 GMT", now) == 90.0
    assert parse_retry_after("Mon, 04 Mar 2024 08:00:00 GMT", now) == 0.0  # past: now
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("9" * 400, now) == math.inf


def test_413_halves_the_batch_until_it_fits(h: Harness) -> None:
    log_events(h.store, 300)
    h.central.max_body = 30_000  # about 80 events
    agent = h.agent(batch_size=300)
    report = agent.run_once()
    assert report.push.acked == 300
    assert h.store.backlog() == 0
    assert set(h.central.accepted.values()) == {1}
    assert len(h.central.events) == 300
    assert agent.batch_size < 100
    assert max(len(b) for b in h.central.batches) <= agent.batch_size
    assert h.sleeps == []  # too large is not "try later"


def test_a_refused_token_stops_the_round_parks_nothing(h: Harness) -> None:
    log_events(h.store, 5)
    with pytest.raises(SyncAuthError) as caught:
        h.agent(token="stolen-or-revoked").run_once()
    message = str(caught.value)
    assert message.startswith("the central service refused this kiosk's token (401)")
    assert "stolen" not in message
    assert "\n" not in message
    assert h.sleeps == []
    assert h.store.backlog() == 5
    assert h.store.parked_count() == 0
    assert h.central.events == {}
    assert h.store.sync_state().last_error == message


def test_a_poisoned_event_is_found_by_bisection_and_parked_alone(h: Harness) -> None:
    events = log_events(h.store, 20)
    bad = events[6]
    h.central.poisoned.add(bad.event_id)
    report = h.agent().run_once()
    assert (report.push.sent, report.push.acked, report.push.parked) == (20, 19, 1)
    assert set(h.central.events) == {e.event_id for e in events} - {bad.event_id}
    (parked,) = h.store.parked()
    assert parked.event == h.store.events()[6]
    assert parked.reason.startswith("refused by the central service (422)")
    assert h.store.backlog() == 0
    assert h.store.events()[6].acked_utc is None  # parking never touches the event

    sent_before = len(h.central.batches)
    h.agent().run_once()
    assert len(h.central.batches) == sent_before  # parked: not sent again

    assert h.store.unpark() == 1
    h.central.poisoned.clear()
    report = h.agent().run_once()
    assert (report.push.sent, report.push.acked) == (1, 1)
    assert h.central.batches[-1] == [bad.event_id]
    assert h.store.parked_count() == 0
    assert h.store.backlog() == 0


def test_a_conflict_is_parked_and_the_rest_acked(h: Harness) -> None:
    h.central.plant(wire_event(h.store.log_id, 2))  # another event holds seq 2 of this log
    events = log_events(h.store, 4)
    report = h.agent().run_once()
    assert (report.push.acked, report.push.parked) == (3, 1)
    (parked,) = h.store.parked()
    assert parked.event.event_id == events[1].event_id
    assert parked.reason.startswith("conflict")
    assert [e.acked_utc is not None for e in h.store.events()] == [True, False, True, True]


def test_a_log_filed_under_another_kiosk_continues_in_a_new_log(h: Harness) -> None:
    """Re-provisioned: the service files this database's log under another kiosk. The
    events not yet acknowledged go under a new log whose seq 1 names the old one."""
    log_events(h.store, 3)
    h.agent().run_once()
    h.central.foreign_logs.add(h.store.log_id)  # revoked, then added again as a new kiosk
    moved = log_events(h.store, 4, start=3)
    report = h.agent().run_once()
    assert (report.push.acked, report.push.parked) == (4, 0)
    (segment,) = h.store.log_segments()
    assert (segment.previous_log_id, segment.previous_seq, segment.first_seq) == (
        h.store.log_id,
        3,
        4,
    )
    sent = [h.central.events[e.event_id] for e in moved]
    assert [(w.log_id, w.seq) for w in sent] == [(segment.log_id, i) for i in range(1, 5)]
    start = sent[0].log_start
    assert start is not None and "re-provisioned" in start.reason
    assert all(w.log_start is None for w in sent[1:])
    # The new log's chain is whole from its own genesis, as the service checks it.
    check = chain.verify_events(
        segment.log_id,
        (
            (chain.EventFields.make(**w.model_dump(exclude={"chain", "log_start"})), w.chain)
            for w in sent
        ),
    )
    assert check.intact, check.problems
    # Events recorded from now on go under the new log, chained on from the moved ones.
    later = log_events(h.store, 2, start=7)
    h.agent().run_once()
    assert [h.central.events[e.event_id].seq for e in later] == [5, 6]
    assert h.store.acked_through(segment.log_id) == 6 and h.store.acked_through(h.store.log_id) == 3
    assert h.store.verify_chain().intact  # the local chain is untouched
    assert [a.action for a in h.store.audit_log()].count("new_log") == 1


def test_a_copy_restored_from_a_backup_continues_in_a_new_log(h: Harness) -> None:
    """The service holds seqs of this log the database does not (restored from an older
    copy): what it holds identically is acknowledged, the rest moves to a new log, and
    no event is parked or sent twice."""
    log_events(h.store, 3)
    h.agent().run_once()
    # The "lost" events 4..6 are on the service, sent from the copy before it was lost.
    for seq in (4, 5, 6):
        h.central.plant(wire_event(h.store.log_id, seq))
    new = log_events(h.store, 5, start=3)  # seqs 4..8 again, other events
    report = h.agent().run_once()
    assert (report.push.acked, report.push.parked) == (5, 0)
    (segment,) = h.store.log_segments()
    assert (segment.first_seq, segment.previous_seq) == (4, 3)
    assert "restored from a backup" in segment.reason and "holds seq 6" in segment.reason
    assert [
        (h.central.events[e.event_id].log_id, h.central.events[e.event_id].seq) for e in new
    ] == [(segment.log_id, i) for i in range(1, 6)]
    assert h.central.high_water(h.store.log_id) == 6  # the old log is left as it was


def test_an_event_id_held_elsewhere_is_parked_without_a_new_log(h: Harness) -> None:
    """A conflict that is not about the log (another event holds this event's id) is
    parked as before: a new log would not help."""
    (event,) = log_events(h.store, 1)
    h.central.plant(
        wire_event("another-log", 1).model_copy(update={"event_id": uuid.UUID(event.event_id)})
    )
    report = h.agent().run_once()
    assert report.push.parked == 1
    h.agent().run_once()
    assert h.store.log_segments() == [] and h.store.parked_count() == 1


def test_the_service_losing_acked_events_is_warned_about(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    log_events(h.store, 5)
    h.agent().run_once()
    assert h.store.acked_through() == 5
    with h.central.lock:  # the service loses seq 3
        del h.central.by_seq[(h.store.log_id, 3)]
    log_events(h.store, 1, start=5)
    with caplog.at_level(logging.WARNING, logger="clockface.sync"):
        h.agent().run_once()
    assert "only up to seq 2" in caplog.text
    assert "up to seq 6" in caplog.text


def test_clock_skew_is_recorded(h: Harness) -> None:
    log_events(h.store, 1)
    h.central.clock_skew_seconds = 95.0
    h.agent().run_once()
    state = h.store.sync_state()
    assert (state.clock_skew_seconds, state.clock_flagged) == (95.0, True)
    lines = status_lines(h.store, datetime.now(UTC))
    assert "clock skew: 95.0 s behind the central service (flagged by the service)" in lines


# --------------------------------------------------------------------- roster down
def test_the_roster_comes_down_in_pages_and_is_confirmed(h: Harness) -> None:
    h.central.put_person("ada", "Ada Lovelace", unit(1, 2), team="engines")
    h.central.put_person("bob", "Bob", unit(2, 1))
    h.central.put_person("cy", "Cy", unit(3, 3), active=False)
    before = h.store.roster_version()
    report = h.agent(page_size=2).run_once()
    assert report.pull is not None
    assert (report.pull.pages, report.pull.version, report.pull.confirmed) == (2, 3, True)
    assert [p.person_id for p in h.store.people()] == ["ada", "bob", "cy"]
    assert [p.person_id for p in h.store.people(active_only=True)] == ["ada", "bob"]
    assert h.store.get_person("ada").team == "engines"
    np.testing.assert_array_equal(h.store.templates("cy"), unit(3, 3))
    assert h.store.roster_version() > before
    assert h.central.applied == [3]
    assert {e.actor for e in h.store.audit_log()} == {"central"}
    assert h.store.managed_by() == h.central.url
    with pytest.raises(RosterManagedError, match=r"managed by the central service at http://"):
        h.store.add_person("dee", "Dee")

    # An update replaces everything, an erasure removes the person and templates.
    h.central.put_person("ada", "Ada King", unit(4, 1), team=None, active=False)
    h.central.erase("bob")
    report = h.agent().run_once()
    assert report.pull is not None and report.pull.update.replaced == 1
    ada = h.store.get_person("ada")
    assert (ada.name, ada.team, ada.active, ada.template_count) == ("Ada King", None, False, 1)
    np.testing.assert_array_equal(h.store.templates("ada"), unit(4, 1))
    assert [p.person_id for p in h.store.people()] == ["ada", "cy"]
    assert h.store.audit_log("bob")[-1].detail == (
        "erased by the central service (version 5) with 1 templates"
    )
    assert h.central.applied == [3, 5]

    # Nothing new: nothing changes, and the service is not told again.
    version = h.store.roster_version()
    report = h.agent().run_once()
    assert report.pull is not None and not report.pull.update.changed
    assert not report.pull.confirmed
    assert h.store.roster_version() == version
    assert h.central.applied == [3, 5]


def test_a_failed_confirmation_is_sent_next_round(h: Harness) -> None:
    h.central.put_person("ada", "Ada", unit(1, 1))
    h.central.erase("ghost")
    with h.central.lock:
        pass
    # The GET answers, the POST /v1/gallery/applied fails on every try.
    agent = h.agent(attempts=1)
    real = agent._client.confirm_gallery

    def refuse(version: int) -> None:
        raise SyncUnavailableError("down")

    agent._client.confirm_gallery = refuse  # type: ignore[method-assign]
    with pytest.raises(SyncUnavailableError):
        agent.run_once()
    assert h.store.sync_state().gallery_version == 2  # applied ...
    assert h.store.sync_state().confirmed_version == 0  # ... not yet confirmed
    agent._client.confirm_gallery = real  # type: ignore[method-assign]
    agent.run_once()
    assert h.central.applied == [2]
    assert h.store.sync_state().confirmed_version == 2


def test_a_kiosk_attached_elsewhere_sends_nothing(h: Harness) -> None:
    log_events(h.store, 2)
    h.store.attach("https://other.example.org")
    with pytest.raises(SyncError, match=r"attached to the central service at https://other"):
        h.agent().run_once()
    assert h.central.requests == []
    assert h.store.detach() == "https://other.example.org"
    h.agent().run_once()
    assert h.store.backlog() == 0


def test_a_first_full_roster_replaces_local_people(h: Harness) -> None:
    h.store.enroll("local", "Local Only", None, unit(9, 1))
    h.store.enroll("ada", "Ada (local)", None, unit(8, 1))
    h.central.put_person("ada", "Ada", unit(1, 1))
    report = h.agent().run_once()
    assert report.pull is not None
    assert (report.pull.update.replaced, report.pull.update.dropped) == (1, 1)
    assert [p.person_id for p in h.store.people()] == ["ada"]
    assert h.store.audit_log("local")[-1].detail is not None
    assert "not in the central roster" in str(h.store.audit_log("local")[-1].detail)


# --------------------------------------------------------------------- odd answers
def _mock_agent(
    store: KioskStore, handler: Callable[[httpx.Request], httpx.Response], **kw: Any
) -> tuple[SyncAgent, httpx.Client]:
    def routed(request: httpx.Request) -> httpx.Response:
        # These tests script odd answers to the push and the pull; the log check before
        # the first push is answered as a service too old to have it would answer.
        if request.method == "GET" and request.url.path.startswith("/v1/logs/"):
            return httpx.Response(404, json={"detail": "Not Found"})
        return handler(request)

    client = httpx.Client(transport=httpx.MockTransport(routed))
    agent = SyncAgent(
        store, client, server="https://central.test", token=TOKEN, sleep=lambda s: None, **kw
    )
    return agent, client


def test_an_answer_for_other_events_marks_nothing(store: KioskStore) -> None:
    log_events(store, 3)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        answer = IngestResponse(
            results=[], high_water_seq={}, clock_skew_seconds=0.0, clock_flagged=False
        )
        return httpx.Response(200, content=answer.model_dump_json())

    agent, client = _mock_agent(store, handler)
    with client, pytest.raises(SyncProtocolError, match="nothing was marked"):
        agent.run_once()
    assert store.backlog() == 3


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(200, content=b"<html>proxy</html>"), "not a valid IngestResponse"),
        (
            httpx.Response(301, headers={"Location": "https://new.test/"}),
            "set server to that URL",
        ),
    ],
)
def test_answers_outside_the_protocol_are_one_line_errors(
    store: KioskStore, response: httpx.Response, match: str
) -> None:
    log_events(store, 2)
    agent, client = _mock_agent(store, lambda request: response)
    with client, pytest.raises(SyncProtocolError, match=match) as caught:
        agent.run_once()
    assert "\n" not in str(caught.value)
    assert store.backlog() == 2


def test_a_timeout_is_retried(store: KioskStore) -> None:
    log_events(store, 1)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        if request.url.path == "/v1/events":
            event = store.pending(1)[0]
            body = {
                "results": [{"event_id": event.event_id, "status": "accepted"}],
                "high_water_seq": {store.log_id: 1},
                "clock_skew_seconds": 0.0,
                "clock_flagged": False,
            }
            return httpx.Response(200, json=body)
        if request.url.path == "/v1/gallery":
            body = {"since": 0, "version": 0, "more": False, "people": [], "erasures": []}
            return httpx.Response(200, json=body)
        return httpx.Response(204)

    agent, client = _mock_agent(store, handler)
    with client:
        agent.run_once()
    assert calls == ["/v1/events", "/v1/events", "/v1/gallery", "/v1/gallery/applied"]
    assert store.backlog() == 0


def test_an_event_the_protocol_cannot_carry_is_parked(store: KioskStore) -> None:
    store.append_event(
        "x" * 300,  # longer than the protocol's person ids
        "in",
        utc=T0,
        tz="UTC",
        distance=0.3,
        margin=0.2,
        frames=1,
        software_version="0.1.0",
    )
    agent, client = _mock_agent(store, lambda request: httpx.Response(500))
    with client:
        report = agent.push()
    assert (report.sent, report.parked) == (0, 1)
    assert store.parked()[0].reason.startswith("cannot be sent: person_id")


def test_to_wire_keeps_every_field(store: KioskStore) -> None:
    (event,) = log_events(store, 1)
    wire = to_wire(event, store.log_id)
    assert str(wire.event_id) == event.event_id
    assert (wire.seq, wire.person_id, wire.direction, wire.tz) == (1, "e0", "in", "Europe/Paris")
    assert wire.utc == event.utc
    assert wire.margin is None
    assert wire.clock_synced is True


# --------------------------------------------------------------------- status
def test_status_lines_in_plain_words(h: Harness) -> None:
    now = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    log_events(h.store, 3)
    h.store.record_sync_success(now - timedelta(minutes=3))
    h.store.record_sync_error("the central service could not be reached", now - timedelta(hours=2))
    h.store.park({h.store.events()[0].event_id: "refused (422): bad"}, now - timedelta(seconds=30))
    lines = status_lines(h.store, now, clock="unsynchronised")
    text = "\n".join(lines)
    assert "central service: none attached" in text
    assert "backlog: 2 events waiting to be sent" in text
    assert "parked: 1 event refused by the central service" in text
    assert "seq 1" in text and "parked 30 seconds ago: refused (422): bad" in text
    assert "last success: 3 minutes ago (2024-03-04 08:57:00 UTC)" in text
    assert "last error: 2 hours ago" in text and "(a success since)" in text
    assert "clock: NOT synchronised" in text


def test_status_says_first_that_parked_events_are_not_delivered(h: Harness) -> None:
    now = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    log_events(h.store, 20)
    h.store.park({e.event_id: "refused (409): conflict" for e in h.store.events()}, now)
    lines = status_lines(h.store, now)
    assert lines[0].startswith("NOT DELIVERED: 20 events parked (refused by the central service)")
    assert "backlog: none waiting to be sent, but the parked events are not delivered" in lines
    assert not any("every event is with the central service" in line for line in lines)
    h.store.unpark()
    h.agent().run_once()
    lines = status_lines(h.store, now)
    assert not any("NOT DELIVERED" in line for line in lines)
    assert "backlog: none, every event is with the central service" in lines


def test_ago() -> None:
    now = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    assert ago(now, now) == "just now"
    assert ago(now - timedelta(seconds=61), now) == "1 minute ago"
    assert ago(now - timedelta(hours=5, minutes=59), now) == "5 hours ago"
    assert ago(now - timedelta(days=2), now) == "2 days ago"
    assert ago(now + timedelta(minutes=1), now).startswith("in the future")


def test_park_refuses_unknown_events(store: KioskStore) -> None:
    with pytest.raises(StoreValueError, match="not in this store"):
        store.park({"no-such-event": "why"})
