"""The kiosk store's two interfaces: the roster and the event log (``KioskStore`` is both;
the sync agent and the central service hold the same things their own way)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Protocol

import numpy.typing as npt

from clockface.events import Direction
from kiosk.store.records import AuditEntry, Event, FloatArray, Person
from recognition.gallery import Gallery


# --------------------------------------------------------------------- interfaces
class Roster(Protocol):
    """People and their face templates, with an audit log and a version that moves."""

    def roster_version(self) -> int: ...

    def add_person(self, person_id: str, name: str, team: str | None = None) -> Person: ...

    def update_person(
        self, person_id: str, *, name: str | None = None, team: str | None = None
    ) -> Person: ...

    def set_active(self, person_id: str, active: bool) -> Person: ...

    def add_templates(self, person_id: str, embeddings: npt.ArrayLike) -> int: ...

    def remove_person(self, person_id: str) -> int: ...

    def get_person(self, person_id: str) -> Person: ...

    def people(self, *, active_only: bool = False) -> list[Person]: ...

    def templates(self, person_id: str) -> FloatArray: ...

    def load_gallery(self, *, threshold: float, margin: float) -> Gallery: ...

    def audit_log(self, person_id: str | None = None) -> list[AuditEntry]: ...


class EventLog(Protocol):
    """Attendance events, append-only; the unacknowledged ones are the sync outbox."""

    def append_event(
        self,
        person_id: str,
        direction: Direction,
        *,
        utc: datetime,
        tz: str,
        distance: float,
        margin: float,
        frames: int,
        software_version: str,
        clock_synced: bool | None = None,
    ) -> Event: ...

    def events(
        self, *, day: date | None = None, person_id: str | None = None, tz: str | None = None
    ) -> list[Event]: ...

    def last_event(self, person_id: str) -> Event | None: ...

    def pending(self, limit: int = 100) -> list[Event]: ...

    def mark_acked(self, event_ids: Iterable[str], at_utc: datetime) -> int: ...

    def backlog(self) -> int: ...
