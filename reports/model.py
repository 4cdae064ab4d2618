"""What reports read: attendance events and people, whatever store they come from.

Reports are pure functions over these two records. A kiosk database, the central service
or a test builds them; :func:`from_store_event` and :func:`from_store_person` convert
anything shaped like the kiosk store's ``Event`` and ``Person`` (duck-typed, so this
package imports no store).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clockface.errors import ReportError
from clockface.events import Direction


@dataclass(frozen=True, slots=True)
class AttendanceEvent:
    """One punch: a person seen going in or out at an instant.

    ``utc`` is timezone-aware (normalised to UTC); ``tz`` is the kiosk's IANA zone;
    ``clock_synced`` is False when the kiosk's clock was known not to be synchronised,
    None when the kiosk did not say.
    """

    event_id: str
    person_id: str
    direction: Direction
    utc: datetime
    tz: str = "UTC"
    clock_synced: bool | None = None
    kiosk_id: str | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("in", "out"):
            raise ReportError(
                f"event {self.event_id!r}: direction must be 'in' or 'out', not {self.direction!r}"
            )
        if not isinstance(self.utc, datetime) or self.utc.utcoffset() is None:
            raise ReportError(
                f"event {self.event_id!r}: utc must be a timezone-aware datetime, not {self.utc!r}"
            )
        if self.utc.tzinfo is not UTC:
            object.__setattr__(self, "utc", self.utc.astimezone(UTC))
        zone(self.tz, f"event {self.event_id!r}")

    @property
    def local_time(self) -> datetime:
        """The wall-clock time at the kiosk, in its zone."""
        return self.utc.astimezone(zone(self.tz))


@dataclass(frozen=True, slots=True)
class PersonInfo:
    """Someone a report is about. ``site`` is where they work when no schedule says."""

    person_id: str
    name: str
    team: str | None = None
    site: str | None = None


class StoredEvent(Protocol):
    """The fields of ``kiosk.store.Event`` a report needs."""

    @property
    def event_id(self) -> str: ...

    @property
    def person_id(self) -> str: ...

    @property
    def direction(self) -> Direction: ...

    @property
    def utc(self) -> datetime: ...

    @property
    def tz(self) -> str: ...

    @property
    def kiosk_id(self) -> str: ...


class StoredPerson(Protocol):
    """The fields of ``kiosk.store.Person`` a report needs."""

    @property
    def person_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def team(self) -> str | None: ...


def from_store_event(event: StoredEvent) -> AttendanceEvent:
    """An event of a kiosk (or central) store as a report reads it.

    ``clock_synced`` is read when the record has it (None otherwise).
    """
    synced = getattr(event, "clock_synced", None)
    return AttendanceEvent(
        event_id=event.event_id,
        person_id=event.person_id,
        direction=event.direction,
        utc=event.utc,
        tz=event.tz,
        clock_synced=None if synced is None else bool(synced),
        kiosk_id=event.kiosk_id,
    )


def from_store_person(person: StoredPerson, site: str | None = None) -> PersonInfo:
    """A roster entry as a report reads it."""
    return PersonInfo(person.person_id, person.name, person.team, site)


def zone(name: str, where: str = "") -> ZoneInfo:
    """The IANA zone ``name``, or a ReportError naming ``where`` it came from."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as err:
        prefix = f"{where}: " if where else ""
        raise ReportError(
            f"{prefix}unknown time zone {name!r}: give an IANA name such as 'Europe/Berlin'"
        ) from err
