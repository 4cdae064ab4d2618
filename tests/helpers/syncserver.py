"""A scripted central service for the sync agent's tests: protocol v1's three kiosk
endpoints, in memory, on a real socket on 127.0.0.1, with faults on demand.

    with ScriptedCentral() as central:            # listening on central.url
        central.fail_next(3, 500)                 # the next 3 requests get 500
        central.down(); central.up()              # connection refused, then back (same port)
        central.drop_next(1)                      # store a batch, then hang up unanswered
        central.max_body = 20_000                 # 413 above that many bytes
        central.poisoned.add(event_id)            # 422 for any batch holding that event
        central.fail_next(1, 429, retry_after="7")

What it holds: ``events`` (by event id, each stored once: a repeat is ``duplicate``, the
same id or log+seq with other content is ``conflict``), ``accepted`` (how many times
each id was accepted: never more than once), ``batches`` (the event ids of every batch
it parsed), ``requests`` (method and path of every request), ``applied`` (the versions
kiosks confirmed). The roster is ``put_person`` / ``erase``, each change taking the next
version; ``GET /v1/gallery`` answers the latest change of each person after ``since``.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter, deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import numpy.typing as npt
import pydantic

from sync.protocol import (
    MAX_GALLERY_PAGE,
    EventBatch,
    EventResult,
    EventStatus,
    GalleryApplied,
    GalleryDelta,
    IngestResponse,
    LogState,
    Problem,
    WireErasure,
    WireEvent,
    WirePerson,
    encode_template,
)

TOKEN = "kiosk-token-for-tests"


class _Fault:
    def __init__(self, status: int, retry_after: str | None) -> None:
        self.status = status
        self.retry_after = retry_after


class ScriptedCentral:
    """See the module doc. Start it with ``with`` (or ``up()``); ``url`` is its address."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.events: dict[str, WireEvent] = {}
        self.by_seq: dict[tuple[str, int], str] = {}
        self.accepted: Counter[str] = Counter()
        self.batches: list[list[str]] = []
        self.requests: list[tuple[str, str]] = []
        self.applied: list[int] = []
        self.poisoned: set[str] = set()
        self.max_body: int | None = None
        self.clock_skew_seconds = 0.0
        self.foreign_logs: set[str] = set()  # logs filed under another kiosk
        self._faults: deque[_Fault] = deque()
        self._drops = 0
        self._version = 0
        self._roster: dict[str, WirePerson | WireErasure] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def up(self) -> None:
        """Listen (again, on the same port once it has one)."""
        assert self._server is None, "already up"
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.central = self  # type: ignore[attr-defined]
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop listening: connections are refused until ``up()``."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._server = None

    def __enter__(self) -> Self:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    # ----------------------------------------------------------------- faults
    def fail_next(self, count: int, status: int, *, retry_after: str | None = None) -> None:
        """The next ``count`` requests (any endpoint) get ``status`` and nothing is done."""
        with self.lock:
            self._faults.extend(_Fault(status, retry_after) for _ in range(count))

    def drop_next(self, count: int = 1) -> None:
        """The next ``count`` event batches are stored, then the connection is closed
        without an answer."""
        with self.lock:
            self._drops += count

    # ----------------------------------------------------------------- roster
    def put_person(
        self,
        person_id: str,
        name: str,
        templates: npt.ArrayLike,
        *,
        team: str | None = None,
        active: bool = True,
    ) -> int:
        """Enroll or replace someone; returns the roster version of the change."""
        rows = np.asarray(templates, dtype=np.float32).reshape(-1, 128)
        with self.lock:
            self._version += 1
            self._roster[person_id] = WirePerson(
                person_id=person_id,
                name=name,
                team=team,
                active=active,
                templates=[encode_template(row) for row in rows],
                version=self._version,
            )
            return self._version

    def erase(self, person_id: str) -> int:
        with self.lock:
            self._version += 1
            self._roster[person_id] = WireErasure(person_id=person_id, version=self._version)
            return self._version

    @property
    def version(self) -> int:
        return self._version

    def delta(self, since: int, limit: int) -> GalleryDelta:
        with self.lock:
            changes = sorted(
                (c for c in self._roster.values() if c.version > since), key=lambda c: c.version
            )
            page, more = changes[:limit], len(changes) > limit
            version = page[-1].version if more else max(self._version, since)
            return GalleryDelta(
                since=since,
                version=version,
                more=more,
                people=[c for c in page if isinstance(c, WirePerson)],
                erasures=[c for c in page if isinstance(c, WireErasure)],
            )

    # ----------------------------------------------------------------- events
    def high_water(self, log_id: str) -> int:
        seq = 0
        while (log_id, seq + 1) in self.by_seq:
            seq += 1
        return seq

    def ingest(self, batch: EventBatch) -> IngestResponse:
        results = []
        with self.lock:
            for event in batch.events:
                key = str(event.event_id)
                status: EventStatus
                held = self.events.get(key)
                if held is not None:
                    status = "duplicate" if held == event else "conflict"
                elif (event.log_id, event.seq) in self.by_seq:
                    status = "conflict"
                else:
                    self.events[key] = event
                    self.by_seq[(event.log_id, event.seq)] = key
                    self.accepted[key] += 1
                    status = "accepted"
                results.append(EventResult(event_id=event.event_id, status=status))
            logs = {event.log_id for event in batch.events}
            return IngestResponse(
                results=results,
                high_water_seq={log: self.high_water(log) for log in logs},
                clock_skew_seconds=self.clock_skew_seconds,
                clock_flagged=abs(self.clock_skew_seconds) > 60,
            )

    def log_state(self, log_id: str) -> LogState:
        with self.lock:
            if log_id in self.foreign_logs:
                return LogState(
                    log_id=log_id,
                    owner="another kiosk",
                    high_water_seq=0,
                    event_id_at_high_water=None,
                )
            held = self.high_water(log_id)
            known = any(log == log_id for log, _ in self.by_seq)
            return LogState(
                log_id=log_id,
                owner="you" if known else "none",
                high_water_seq=held,
                event_id_at_high_water=uuid.UUID(self.by_seq[(log_id, held)]) if held else None,
            )

    def plant(self, event: WireEvent) -> None:
        """Hold an event as if a kiosk had sent it (to make conflicts)."""
        with self.lock:
            self.events[str(event.event_id)] = event
            self.by_seq[(event.log_id, event.seq)] = str(event.event_id)


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    @property
    def central(self) -> ScriptedCentral:
        central: ScriptedCentral = self.server.central  # type: ignore[attr-defined]
        return central

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _answer(self, status: int, model: pydantic.BaseModel | None, **headers: str) -> None:
        body = b"" if model is None else model.model_dump_json().encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _problem(self, status: int, detail: str, **headers: str) -> None:
        self._answer(status, Problem(detail=detail), **headers)

    def _serve(self, method: str) -> None:
        central = self.central
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with central.lock:
            central.requests.append((method, parts.path))
            fault = central._faults.popleft() if central._faults else None
        if fault is not None:
            extra = {} if fault.retry_after is None else {"Retry_After": fault.retry_after}
            self._problem(fault.status, f"scripted failure {fault.status}", **extra)
            return
        if self.headers.get("Authorization") != f"Bearer {central.token}":
            self._problem(401, "unknown or missing kiosk token")
            return
        route = (method, parts.path)
        if route == ("POST", "/v1/events"):
            self._events(body)
        elif method == "GET" and parts.path.startswith("/v1/logs/"):
            self._answer(200, central.log_state(unquote(parts.path.removeprefix("/v1/logs/"))))
        elif route == ("GET", "/v1/gallery"):
            query = parse_qs(parts.query)
            try:
                since = int(query["since"][0])
                limit = int(query.get("limit", [str(MAX_GALLERY_PAGE)])[0])
            except (KeyError, ValueError):
                self._problem(422, "since must be a whole number")
                return
            self._answer(200, central.delta(since, min(limit, MAX_GALLERY_PAGE)))
        elif route == ("POST", "/v1/gallery/applied"):
            try:
                applied = GalleryApplied.model_validate_json(body)
            except pydantic.ValidationError:
                self._problem(422, "not a GalleryApplied")
                return
            with central.lock:
                central.applied.append(applied.version)
            self._answer(204, None)
        else:
            self._problem(404, f"no route {method} {parts.path}")

    def _events(self, body: bytes) -> None:
        central = self.central
        if central.max_body is not None and len(body) > central.max_body:
            self._problem(413, f"request body over {central.max_body} bytes")
            return
        try:
            batch = EventBatch.model_validate_json(body)
        except pydantic.ValidationError as err:
            self._problem(422, f"malformed batch: {err.error_count()} errors")
            return
        ids = [str(e.event_id) for e in batch.events]
        poisoned = [i for i in ids if i in central.poisoned]
        if poisoned:
            self._problem(422, f"event {poisoned[0]} is malformed")
            return
        with central.lock:
            central.batches.append(ids)
            drop = central._drops > 0
            if drop:
                central._drops -= 1
        answer = central.ingest(batch)
        if drop:
            self.close_connection = True  # stored, never answered
            return
        self._answer(200, answer)


def wire_event(log_id: str, seq: int, person_id: str = "e1") -> WireEvent:
    """A valid event for planting on the server."""
    return WireEvent(
        event_id=uuid.uuid4(),
        log_id=log_id,
        seq=seq,
        person_id=person_id,
        direction="in",
        utc=datetime(2024, 3, 4, 8, 0, tzinfo=UTC),
        tz="UTC",
        distance=0.3,
        margin=0.2,
        frames=3,
        software_version="other",
        clock_synced=True,
    )
