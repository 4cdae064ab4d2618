"""The golden scenario synced into a central database, as the sync agent would.

A central database of either kind (a SQLite path or a PostgreSQL URL: ``empty_database``
needs the ``postgres_cluster`` fixture where the kind is PostgreSQL), the store opened on a
fixed clock, a kiosk's wire events pushed in accepted batches, and a kiosk database's
roster and whole log copied in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from central.store import CentralStore
from kiosk.store import KioskStore
from sync.agent import to_wire
from sync.protocol import MAX_BATCH_EVENTS, EventBatch, WireEvent
from tests.helpers.postgres import PostgresCluster

KIOSK = "k1"
SENT = datetime(2024, 12, 1, 12, 0, tzinfo=UTC)


def _fixed() -> datetime:
    return SENT


def open_central(database: str) -> CentralStore:
    return CentralStore.open(database, actor="test", clock=_fixed)


def push(central: CentralStore, kiosk: str, events: Iterable[WireEvent]) -> None:
    """As the sync agent does: batches of wire events, each answered "accepted"."""
    wire = list(events)
    for a in range(0, len(wire), MAX_BATCH_EVENTS):
        answer = central.ingest(
            kiosk, EventBatch(sent_utc=SENT, events=wire[a : a + MAX_BATCH_EVENTS])
        )
        assert {r.status for r in answer.results} == {"accepted"}


def fill_central(database: str, kiosk_db: Path) -> None:
    """The kiosk's roster and its whole log, in the central database."""
    with open_central(database) as central, KioskStore.open(kiosk_db) as kiosk:
        central.add_site("hq", "Europe/Berlin")
        central.create_kiosk(KIOSK, "hq")
        for person in kiosk.people():
            central.add_person(person.person_id, person.name, person.team)
            if not person.active:
                central.set_active(person.person_id, False)
        push(central, KIOSK, (to_wire(e, kiosk.log_id) for e in kiosk.events()))


def empty_database(kind: str, folder: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty central database of this kind: a SQLite path, or a PostgreSQL URL."""
    if kind == "sqlite":
        yield str(folder / "central.db")
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    name = cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)
