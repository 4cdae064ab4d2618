"""The central HTTP API for the tests that speak to it.

A running service with a kiosk token and an admin token, the bodies a kiosk posts, and
the one-line problem every refusal answers with.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import numpy as np

from central.config import CentralConfig
from central.store import CentralStore
from recognition.gallery import EMBEDDING_DIM
from sync.protocol import encode_template
from tests.helpers.fakes import T0
from tests.helpers.server import serving


class Service:
    """A running service, a kiosk token and an admin token."""

    def __init__(self, store: CentralStore, base: str) -> None:
        self.store = store
        self.base = base
        store.add_site("HQ", "Europe/Paris")
        self.kiosk_token = store.create_kiosk("door-1", "HQ").token
        self.admin_token = store.create_admin("hr")
        self.http = httpx.Client(base_url=base, timeout=30)

    def kiosk(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.kiosk_token}"}

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


@contextmanager
def service(database: str, config: CentralConfig | None = None) -> Iterator[Service]:
    with CentralStore.open(database, actor="tests") as store, serving(store, config) as base:
        svc = Service(store, base)
        try:
            yield svc
        finally:
            svc.http.close()


def event(seq: int, *, log: str = "log-a", **change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "log_id": log,
        "seq": seq,
        "person_id": "p1",
        "direction": "in",
        "utc": (T0 + timedelta(minutes=seq)).isoformat(),
        "tz": "Europe/Paris",
        "distance": 0.3,
        "margin": None,
        "frames": 3,
        "software_version": "0.1.0",
        "clock_synced": True,
    }
    body.update(change)
    return body


def batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"sent_utc": T0.isoformat(), "events": list(events)}


def template(seed: int) -> str:
    x = np.random.default_rng(seed).standard_normal(EMBEDDING_DIM)
    return encode_template(x / np.linalg.norm(x))


def one_line_problem(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    assert "\n" not in body["detail"] and "Traceback" not in body["detail"]
    detail: str = body["detail"]
    return detail
