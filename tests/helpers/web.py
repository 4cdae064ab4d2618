"""The supervisors' web page for the tests that drive it.

A running service with a settable clock ("now" is Monday 4 March 2024, 10:30 in Berlin),
its sites, people, schedules and events filled by the real paths, and signing in.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from central.config import CentralConfig
from central.store import CentralStore
from central.web.accounts import Accounts
from tests.helpers.fakes import CHEAP_PASSWORDS
from tests.helpers.server import serving

NOW = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)  # Monday, 10:30 in Berlin
PASSWORD = "correct horse battery"
EVIL = "<script>alert(1)</script>"
SCHEDULES = """
[sites.HQ]
timezone = "Europe/Berlin"

[[shifts]]
team = "office"
site = "HQ"
days = "mon-fri"
start = "09:00"
end = "17:00"
grace_late = 5
grace_early = 5

[[shifts]]
team = "evening"
site = "HQ"
days = "mon-fri"
start = "14:00"
end = "22:00"
grace_late = 5

[[days_off]]
person = "dan"
from = 2024-03-04
note = "leave"
"""
PEOPLE = (
    ("ada", "Ada Lovelace", "office"),
    ("bob", "Bob Baker", "office"),
    ("carl", "Carl Chen", "office"),
    ("dan", "Dan Day", "office"),
    ("eve", EVIL, "office"),
    ("fay", "Fay Field", "evening"),
)
# (person, direction, UTC time): Berlin is UTC+1 in March.
EVENTS = (
    ("ada", "in", "2024-03-01T08:12:00"),  # Friday: 12 minutes late
    ("ada", "out", "2024-03-01T16:01:00"),
    ("bob", "in", "2024-03-01T07:58:00"),
    ("bob", "out", "2024-03-01T15:30:00"),  # 30 minutes early
    ("ada", "in", "2024-03-04T07:55:00"),  # today: on time, then left
    ("bob", "in", "2024-03-04T08:20:00"),  # today: 20 minutes late, in now
    ("eve", "in", "2024-03-04T08:03:00"),  # on time (within the grace), in now
    ("ada", "out", "2024-03-04T09:00:00"),
)


class Clock:
    """A clock that stands still until moved."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Site:
    """A running service over a store with a settable clock, and one supervisor."""

    store: CentralStore
    clock: Clock
    base: str
    database: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, follow_redirects=False)


@contextmanager
def running(database: str, config: CentralConfig | None = None) -> Iterator[Site]:
    clock = Clock()
    with (
        CentralStore.open(database, actor="tests", clock=clock) as store,
        serving(store, config or CentralConfig(database=database)) as base,
    ):
        Accounts(store, password_cost=CHEAP_PASSWORDS).add("ada", PASSWORD)
        yield Site(store, clock, base, database)


@dataclass
class Door:
    """The kiosk that :func:`fill` adds: its token, and its log's last seq and chain."""

    token: str
    seq: int = 0
    chain: str | None = None

    def post(self, base: str, events: tuple[tuple[str, str, str], ...]) -> None:
        """More events of this kiosk's log, chained on from the last."""
        self.chain = post_events(base, self.token, events, self.seq + 1, self.chain)
        self.seq += len(events)


def fill(site: Site) -> Door:
    """Sites, a kiosk, people, schedules and the kiosk's events, by the real paths."""
    from reports.schedule_files import parse_toml
    from reports.schedule_store import ScheduleStore

    store = site.store
    store.add_site("HQ", "Europe/Berlin")
    door = Door(store.create_kiosk("door-1", "HQ").token)
    for pid, name, team in PEOPLE:
        store.add_person(pid, name, team)
    with ScheduleStore.on_central(store.with_actor("tests")) as schedules:
        schedules.import_book(parse_toml(SCHEDULES), replace=False)
    door.post(site.base, EVENTS)
    return door


def post_events(
    base: str,
    token: str,
    events: tuple[tuple[str, str, str], ...],
    first_seq: int = 1,
    previous: str | None = None,
) -> str:
    """The events, replayed by a kiosk through ``POST /v1/events``: log ``door-1-log``
    from seq ``first_seq``, each chained (:mod:`clockface.chain`) on from ``previous``
    (default: the log's genesis). The last event's chain."""
    from clockface import chain

    wire: list[dict[str, Any]] = []
    links = []
    for seq, (pid, direction, at) in enumerate(events, start=first_seq):
        fields = chain.EventFields.make(
            event_id=uuid.uuid4(), log_id="door-1-log", seq=seq, kiosk_id="door-1-db",
            person_id=pid, direction=direction, utc=datetime.fromisoformat(f"{at}+00:00"),
            tz="Europe/Berlin", distance=0.3, margin=0.2, frames=3, software_version="0.1.0",
            clock_synced=True,
        )  # fmt: skip
        links.append(fields)
        wire.append({**fields._asdict(), "utc": f"{at}Z"})
    for event, link in zip(wire, chain.chained("door-1-log", links, previous), strict=True):
        event["chain"] = link
    body: dict[str, Any] = {"sent_utc": NOW.isoformat(), "events": wire}
    answer = httpx.post(
        f"{base}/v1/events", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert {r["status"] for r in answer.json()["results"]} == {"accepted"}
    return str(wire[-1]["chain"])


def login_token(client: httpx.Client) -> str:
    page = client.get("/login")
    assert page.status_code == 200, page.text
    found = re.search(r'name="login_token" value="([0-9a-f]{64})"', page.text)
    assert found, page.text
    return found.group(1)


def sign_in(client: httpx.Client, name: str = "ada", password: str = PASSWORD) -> httpx.Response:
    token = login_token(client)
    return client.post("/login", data={"name": name, "password": password, "login_token": token})


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([A-Za-z0-9_-]{43})"', page.text)
    assert found, page.text
    return found.group(1)
