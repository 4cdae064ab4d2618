"""Faults end to end: real processes, real databases, real loopback HTTP.

A real ``clockface central serve`` process over SQLite or PostgreSQL, a real kiosk
SQLite file written by this process, and a real ``clockface sync run`` process between
them. The faults are done to the processes for real: the service is down while the kiosk
logs, the sync agent is SIGKILLed while batches are in flight, the service is SIGKILLed
while it is committing batches. Afterwards every event the kiosk logged is on the service
exactly once (the same ids, one row each, the high-water seq at the last one) and the
kiosk has nothing left to send.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from central.store import CentralStore
from kiosk.store import KioskStore
from sync.agent import status_lines, to_wire
from sync.protocol import EventBatch, IngestResponse
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
SYNC_ENV = {
    "CLOCKFACE_SYNC_BATCH_SIZE": "50",
    "CLOCKFACE_SYNC_INTERVAL_SECONDS": "0.2",
    "CLOCKFACE_SYNC_BACKOFF_BASE_SECONDS": "0.05",
    "CLOCKFACE_SYNC_BACKOFF_CAP_SECONDS": "0.5",
    "CLOCKFACE_SYNC_TIMEOUT_SECONDS": "10",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def central_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clockface(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "clockface", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _wait(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Central:
    """``clockface central serve`` as a process that can be started, killed and restarted."""

    def __init__(self, database: str, tmp: Path) -> None:
        self.database = database
        self.env = {**os.environ, "CLOCKFACE_CENTRAL_DATABASE": database}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp / "central.log"
        with CentralStore.open(database) as store:
            store.add_site("hq", "Europe/Berlin")
            token = store.create_kiosk("door-1", "hq").token
        self.token_file = tmp / "kiosk-token"
        self.token_file.write_text(token + "\n")
        self.token_file.chmod(0o600)

    def start(self, preexec: Callable[[], None] | None = None) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "clockface", "central", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec,
            )
        _wait(self._healthy, "the central service to start", timeout=60)

    def _healthy(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.kill(signal.SIGTERM)

    def events(self) -> list[tuple[str, str, int]]:
        """(event id, log id, seq) of every event the service holds."""
        found: list[tuple[str, str, int]] = []
        with CentralStore.open(self.database) as store:
            after: uuid.UUID | None = None
            while True:
                page, more = store.events(after=after, limit=1000)
                found += [(str(e.event_id), e.log_id, e.seq) for e in page]
                if not more:
                    return found
                after = page[-1].event_id


class Agent:
    """``clockface sync run`` as a process."""

    def __init__(self, kiosk_db: Path, central: Central, tmp: Path) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "clockface",
            "sync",
            "run",
            "--db",
            str(kiosk_db),
            "--server",
            central.url,
            "--token-file",
            str(central.token_file),
        ]
        self.env = {**os.environ, **SYNC_ENV}
        self.env.pop("CLOCKFACE_DB", None)
        self.log = tmp / "agent.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def signal(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(30)
        self.process = None
        return code


@pytest.fixture
def setup(central_db: str, tmp_path: Path) -> Iterator[tuple[Central, Path]]:
    central = Central(central_db, tmp_path)
    try:
        yield central, tmp_path / "kiosk.db"
    finally:
        central.stop()


@pytest.fixture
def agent(setup: tuple[Central, Path], tmp_path: Path) -> Iterator[Agent]:
    central, kiosk_db = setup
    agent = Agent(kiosk_db, central, tmp_path)
    try:
        yield agent
    finally:
        if agent.process is not None:
            agent.signal(signal.SIGKILL)


def _log_events(path: Path, count: int, first: int = 0) -> list[str]:
    """Events as the kiosk loop records them: each committed on its own."""
    ids = []
    with KioskStore.open(path, clock_status=lambda: True) as store:
        for i in range(first, first + count):
            event = store.append_event(
                f"p{i % 37:02d}",
                "in" if i % 2 else "out",
                utc=T0 + timedelta(seconds=7 * i),
                tz="Europe/Berlin",
                distance=0.3,
                margin=0.2 if i % 5 else float("inf"),
                frames=3,
                software_version="test",
            )
            ids.append(event.event_id)
    return ids


def _backlog(path: Path) -> int:
    with KioskStore.open(path) as store:
        return store.backlog()


def _acked(path: Path) -> int:
    with KioskStore.open(path) as store:
        return sum(e.acked_utc is not None for e in store.events())


def _assert_exactly_once(central: Central, kiosk_db: Path, logged: list[str]) -> None:
    held = central.events()
    ids = [event_id for event_id, _, _ in held]
    assert len(ids) == len(set(ids)) == len(logged)
    assert set(ids) == set(logged)
    assert sorted(seq for _, _, seq in held) == list(range(1, len(logged) + 1))
    assert len({log_id for _, log_id, _ in held}) == 1
    with KioskStore.open(kiosk_db) as store:
        assert store.backlog() == 0 and store.parked_count() == 0
        assert all(e.acked_utc is not None for e in store.events())
        # Sending an acknowledged event again: a duplicate, and the service's high-water
        # seq for the log is the last seq logged (it holds every one before it).
        first, log_id = store.events()[0], store.log_id
    batch = EventBatch(sent_utc=datetime.now(UTC), events=[to_wire(first, log_id)])
    answer = httpx.post(
        f"{central.url}/v1/events",
        content=batch.model_dump_json(),
        headers={
            "Authorization": f"Bearer {central.token_file.read_text().strip()}",
            "Content-Type": "application/json",
        },
    )
    reply = IngestResponse.model_validate_json(answer.content)
    assert [r.status for r in reply.results] == ["duplicate"]
    assert reply.high_water_seq == {log_id: len(logged)}
    with CentralStore.open(central.database) as store:
        assert [k.backlog for k in store.kiosks()] == [0]


def test_service_down_while_the_kiosk_logs_1000_events_then_back(
    setup: tuple[Central, Path], agent: Agent
) -> None:
    central, kiosk_db = setup
    _log_events(kiosk_db, 1)  # the database exists before the agent opens it
    agent.start()  # nothing listens on the service's port yet: the agent backs off
    logged = _log_events(kiosk_db, 999, first=1)
    assert _backlog(kiosk_db) == 1000
    central.start()
    _wait(lambda: _backlog(kiosk_db) == 0, "the backlog to drain")
    assert agent.signal(signal.SIGTERM) == 0
    log = agent.log.read_text()
    assert "could not be reached" in log  # it really did try while the service was down
    first = _events_of(kiosk_db)[0]
    _assert_exactly_once(central, kiosk_db, [first, *logged])
    with KioskStore.open(kiosk_db) as store:
        assert store.events()[0].event_id == first


def _events_of(path: Path) -> list[str]:
    with KioskStore.open(path) as store:
        return [e.event_id for e in store.events()]


def test_sync_agent_killed_mid_batch_loses_and_duplicates_nothing(
    setup: tuple[Central, Path], agent: Agent
) -> None:
    central, kiosk_db = setup
    logged = _log_events(kiosk_db, 1000)
    central.start()
    agent.env["CLOCKFACE_SYNC_BATCH_SIZE"] = "10"  # many batches to land a kill in
    kills = 0
    for target in (150, 400, 700):
        agent.start()
        _wait(lambda t=target: _acked(kiosk_db) >= t, f"{target} events acknowledged")  # type: ignore[misc]
        assert agent.signal(signal.SIGKILL) == -signal.SIGKILL
        kills += 1
        assert _backlog(kiosk_db) > 0, "killed after the end: the test proves nothing"
    agent.start()
    _wait(lambda: _backlog(kiosk_db) == 0, "the backlog to drain")
    assert agent.signal(signal.SIGTERM) == 0
    assert kills == 3
    _assert_exactly_once(central, kiosk_db, logged)


def test_service_killed_while_committing_batches_loses_and_duplicates_nothing(
    setup: tuple[Central, Path], agent: Agent
) -> None:
    central, kiosk_db = setup
    logged = _log_events(kiosk_db, 1000)
    central.start()
    agent.env["CLOCKFACE_SYNC_BATCH_SIZE"] = "10"  # many commits to land a kill in
    agent.start()
    for target in (150, 400, 700):
        _wait(lambda t=target: _acked(kiosk_db) >= t, f"{target} events acknowledged")  # type: ignore[misc]
        central.kill(signal.SIGKILL)
        assert _backlog(kiosk_db) > 0, "killed after the end: the test proves nothing"
        central.start()
    _wait(lambda: _backlog(kiosk_db) == 0, "the backlog to drain")
    assert agent.signal(signal.SIGTERM) == 0
    _assert_exactly_once(central, kiosk_db, logged)


def test_a_restored_service_behind_the_kiosk_gives_it_the_whole_roster_again(
    setup: tuple[Central, Path], tmp_path: Path
) -> None:
    """The service's database is restored from an older backup: the kiosk holds a roster
    version the service has not reached. The agent takes the whole roster again."""
    central, kiosk_db = setup
    _log_events(kiosk_db, 1)
    with CentralStore.open(central.database) as store:
        for i in range(3):
            store.add_person(f"p{i}", f"Person {i}")
        behind = store.roster_version()
        store.add_person("later", "Enrolled after the backup")
        store.remove_person("p2")
    central.start()
    once = ["sync", "once", "--db", str(kiosk_db), "--server", central.url]
    once += ["--token-file", str(central.token_file)]
    _clockface(*once, env={**os.environ, **SYNC_ENV})
    with KioskStore.open(kiosk_db) as kiosk:
        assert {p.person_id for p in kiosk.people()} == {"p0", "p1", "later"}
        assert kiosk.sync_state().gallery_version > behind
    # "Restore a backup": a service whose roster is at an older version than the kiosk's.
    central.kill(signal.SIGTERM)
    (tmp_path / "restored").mkdir()
    restored = Central(str(tmp_path / "restored" / "central.db"), tmp_path / "restored")
    with CentralStore.open(restored.database) as store:
        store.add_person("p0", "Person 0")
    restored.port, restored.url = central.port, central.url
    restored.start()
    try:
        once[-1] = str(restored.token_file)
        _clockface(*once, env={**os.environ, **SYNC_ENV})
        with KioskStore.open(kiosk_db) as kiosk:
            assert {p.person_id for p in kiosk.people()} == {"p0"}
            assert kiosk.sync_state().gallery_version == 1
    finally:
        restored.stop()


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a live kiosk database, as a backup tool takes one."""
    for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        stale.unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _log_while(path: Path, count: int, first: int, running: Agent) -> list[str]:
    """Events logged one at a time while the agent is sending (events keep coming)."""
    ids = []
    for i in range(first, first + count):
        ids += _log_events(path, 1, first=i)
        assert running.process is not None and running.process.poll() is None
        time.sleep(0.02)
    return ids


def test_a_kiosk_restored_from_an_older_copy_delivers_every_new_event_once(
    setup: tuple[Central, Path], agent: Agent, tmp_path: Path
) -> None:
    """The kiosk's SD card is replaced and its database restored from an older copy
    while people keep passing: the copy's seqs after the backup are already on the
    service under other events. The agent notices (the service holds an event there the
    copy does not), moves the events not yet delivered to a new log that names the old
    one, and every genuine event ends on the service exactly once; no chain reads as
    broken, and both sides record why the log changed."""
    central, kiosk_db = setup
    central.start()
    before = _log_events(kiosk_db, 30)
    agent.start()
    _wait(lambda: _backlog(kiosk_db) == 0, "the first events to be delivered")
    # The backup: 30 delivered, 5 logged but not sent yet (the agent is stopped).
    assert agent.signal(signal.SIGTERM) == 0
    before += _log_events(kiosk_db, 5, first=30)
    backup = tmp_path / "backup.db"
    _copy_database(kiosk_db, backup)
    # Life goes on after the backup: 40 more events, all delivered.
    agent.start()
    before += _log_while(kiosk_db, 40, 35, agent)
    _wait(lambda: _backlog(kiosk_db) == 0, "the events after the backup to be delivered")
    assert agent.signal(signal.SIGTERM) == 0
    # The card dies; the copy goes back in. The kiosk logs on at once, and the agent
    # runs while events keep coming.
    _copy_database(backup, kiosk_db)
    after = _log_events(kiosk_db, 12, first=1000)
    agent.start()
    after += _log_while(kiosk_db, 25, 1012, agent)
    _wait(lambda: _backlog(kiosk_db) == 0, "the events after the restore to be delivered")
    assert agent.signal(signal.SIGTERM) == 0

    held = central.events()
    ids = [event_id for event_id, _, _ in held]
    assert len(ids) == len(set(ids)), "an event is held twice"
    assert set(ids) == set(before) | set(after), "an event was lost, or one not logged held"
    with KioskStore.open(kiosk_db) as store:
        assert store.backlog() == 0 and store.parked_count() == 0
        (segment,) = store.log_segments()
        assert segment.previous_log_id == store.log_id
        assert "restored from a backup" in segment.reason
        assert any(a.action == "new_log" for a in store.audit_log())
        assert store.verify_chain().intact
    logs = {log_id: sorted(seq for _, log, seq in held if log == log_id) for log_id in {
        log for _, log, _ in held
    }}  # fmt: skip
    assert sorted(map(len, logs.values())) == [len(after), len(before)]
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in logs.values())
    with CentralStore.open(central.database) as store:
        chains = {log.log_id: log for log in store.chain_logs()}
        assert all(log.state == "verified" for log in chains.values()), [
            log.describe() for log in chains.values()
        ]
        new = chains[segment.log_id]
        assert new.previous_log_id == segment.previous_log_id
        # The copy held 35 events (30 delivered, 5 the service got later): the new log
        # follows them; the service keeps all 75 of the old log.
        assert new.previous_seq == 35 == segment.previous_seq
        continues = new.continues()
        assert continues is not None and "restored from a backup" in continues
        assert f"holds seq {len(before)} of log" in continues
    assert "may have lost events" not in agent.log.read_text()


def test_a_re_provisioned_kiosk_sends_its_events_under_a_new_log(
    setup: tuple[Central, Path], tmp_path: Path
) -> None:
    """The service's advice for a kiosk whose token is lost: revoke it and add a new
    kiosk. The same kiosk database then sends its events under the new token: the log
    belongs to the revoked kiosk, so the agent continues in a new log, and no event is
    parked (before, every one was a conflict, parked for good)."""
    central, kiosk_db = setup
    central.start()
    first = _log_events(kiosk_db, 20)
    once = ["sync", "once", "--db", str(kiosk_db), "--server", central.url]
    env = {**os.environ, **SYNC_ENV}
    env.pop("CLOCKFACE_DB", None)
    _clockface(*once, "--token-file", str(central.token_file), env=env)
    pending = _log_events(kiosk_db, 15, first=20)
    with CentralStore.open(central.database) as store:
        store.revoke_kiosk("door-1")
        token = store.create_kiosk("door-1b", "hq").token
    new_token = tmp_path / "new-token"
    new_token.write_text(token + "\n")
    new_token.chmod(0o600)
    out = _clockface(*once, "--token-file", str(new_token), env=env)
    assert "15 acknowledged" in out or "15 sent" in out, out
    held = central.events()
    assert sorted(event_id for event_id, _, _ in held) == sorted(first + pending)
    with KioskStore.open(kiosk_db) as store:
        assert store.backlog() == 0 and store.parked_count() == 0
        (segment,) = store.log_segments()
        assert "re-provisioned" in segment.reason and segment.previous_seq == 20
        status = "\n".join(status_lines(store, datetime.now(UTC)))
    assert segment.log_id in status and "re-provisioned" in status
    with CentralStore.open(central.database) as store:
        by_kiosk = {(log.kiosk, log.log_id) for log in store.chain_logs()}
        assert by_kiosk == {("door-1", segment.previous_log_id), ("door-1b", segment.log_id)}
        assert all(log.state == "verified" for log in store.chain_logs())


def _ignore_file_size_signal() -> None:
    # Over RLIMIT_FSIZE a write fails with EFBIG, and the kernel also sends SIGXFSZ, whose
    # default action kills the process: ignored, as a full disk sends no signal.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_service_whose_disk_takes_no_more_writes_is_not_ready(tmp_path: Path) -> None:
    """The service's disk stops taking writes (here: the process's file-size limit
    drops to one byte, so every write to its database files fails, as on a full
    disk). /readyz answers 503 at once; /healthz still 200 (the database answers
    reads); the kiosks' events are refused with 503 and nothing is half-written; once
    writes work again the service is ready and takes them."""
    central = Central(str(tmp_path / "central.db"), tmp_path)
    central.start(preexec=_ignore_file_size_signal)
    try:
        assert central.process is not None
        pid = central.process.pid
        assert httpx.get(f"{central.url}/readyz", timeout=10).status_code == 200
        kiosk_db = tmp_path / "kiosk.db"
        logged = _log_events(kiosk_db, 20)
        headers = {"Authorization": f"Bearer {central.token_file.read_text().strip()}"}
        with KioskStore.open(kiosk_db) as store:
            batch = EventBatch(
                sent_utc=datetime.now(UTC),
                events=[to_wire(e, store.log_id) for e in store.events()],
            )
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
        try:
            ready = httpx.get(f"{central.url}/readyz", timeout=10)
            assert (ready.status_code, ready.json()) == (503, {"status": "unavailable"})
            assert httpx.get(f"{central.url}/healthz", timeout=10).status_code == 200
            refused = httpx.post(
                f"{central.url}/v1/events",
                content=batch.model_dump_json(),
                headers={**headers, "Content-Type": "application/json"},
                timeout=10,
            )
            assert refused.status_code == 503, refused.text
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
        assert httpx.get(f"{central.url}/readyz", timeout=10).status_code == 200
        taken = httpx.post(
            f"{central.url}/v1/events",
            content=batch.model_dump_json(),
            headers={**headers, "Content-Type": "application/json"},
            timeout=10,
        )
        reply = IngestResponse.model_validate_json(taken.content)
        assert [r.status for r in reply.results] == ["accepted"] * len(logged)
    finally:
        central.stop()
