"""The kiosk store's records and constants: what its methods take and give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from clockface import chain
from clockface.chain import ChainCheck
from clockface.events import Direction

AuditAction = Literal[
    "add", "update", "deactivate", "reactivate", "add_templates", "remove", "retention_purge"
]
FloatArray = npt.NDArray[np.float32]

DEFAULT_BUSY_TIMEOUT_S = 5.0
CENTRAL_ACTOR = "central"  # the audit log's actor for changes from the central service
KIOSK_SUBJECT = ""  # the audit log's person id for a change to the kiosk, not to a person
_MAX_SYNC_ERROR = 500  # characters of the last sync error kept
_UNKNOWN_PREVIOUS = "0" * chain.CHAIN_HEX_DIGITS  # after a row with no chain (never by clockface)


# --------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class Person:
    """One person of the roster; ``template_count`` is how many face templates they have."""

    person_id: str
    name: str
    team: str | None
    active: bool
    template_count: int
    created_utc: datetime
    updated_utc: datetime


@dataclass(frozen=True, slots=True)
class Event:
    """One attendance event. ``acked_utc`` is None until the central service has it;
    ``clock_synced`` says whether the kiosk's clock was synchronised when it stamped it
    (None: not known)."""

    event_id: str
    seq: int
    kiosk_id: str
    person_id: str
    direction: Direction
    utc: datetime
    tz: str
    distance: float
    margin: float
    frames: int
    software_version: str
    acked_utc: datetime | None
    clock_synced: bool | None = None  # None: recorded before the kiosk checked its clock
    chain: str | None = None  # clockface.chain: this event's link; None only outside clockface

    @property
    def local_time(self) -> datetime:
        """The wall-clock time at the kiosk, in its zone."""
        return self.utc.astimezone(ZoneInfo(self.tz))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who changed which person, when, and how; never names, embeddings or photos."""

    id: int
    at_utc: datetime
    actor: str
    action: str
    person_id: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class Expired:
    """Someone deactivated longer than the retention period: erased by a purge."""

    person_id: str
    deactivated_utc: datetime
    template_count: int


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """An event the central service refused for good, out of the outbox until retried."""

    event: Event
    parked_utc: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class SyncState:
    """Where this kiosk stands with the central service (``clockface sync status``).

    ``central_url`` is None while the roster is managed locally. ``gallery_version`` is
    the central roster version applied here; ``confirmed_version`` the one the service
    has been told about (its erasure receipt). ``clock_skew_seconds`` is the service's
    clock minus the kiosk's at the last push (positive: the kiosk is behind).
    """

    central_url: str | None
    attached_utc: datetime | None
    gallery_version: int
    confirmed_version: int
    last_success_utc: datetime | None
    last_error_utc: datetime | None
    last_error: str | None
    clock_skew_seconds: float | None
    clock_flagged: bool | None


@dataclass(frozen=True, slots=True)
class GalleryUpdate:
    """What one ``apply_gallery`` did: people added, people replaced (name, team, active
    and every template), erasures applied (including of ids not held here), people
    dropped because a full roster (``since`` 0) no longer holds them."""

    version: int
    added: int
    replaced: int
    erased: int
    dropped: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.erased or self.dropped)


@dataclass(frozen=True, slots=True)
class LogCheck:
    """What :meth:`KioskStore.verify_chain` found: the chain walk and which of the
    triggers that keep the log append-only are missing."""

    chain: ChainCheck
    missing_triggers: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return self.chain.intact and not self.missing_triggers

    def lines(self) -> list[str]:
        """What ``clockface kiosk verify-log`` prints: one line when intact, else one
        line per problem."""
        if self.intact:
            return [
                f"{self.chain.events} event{'' if self.chain.events == 1 else 's'}, "
                f"chain intact through seq {self.chain.last_seq:g}"
            ]
        out = [problem.message for problem in self.chain.problems]
        if self.missing_triggers:
            out.append(
                "the triggers that keep events append-only are missing "
                f"({', '.join(self.missing_triggers)}): the file was edited outside clockface"
            )
        return out


@dataclass(frozen=True, slots=True)
class LogSegment:
    """A continuation log (schema version 7): the events from local seq ``first_seq`` on
    are sent to the central service under ``log_id``, numbered from 1 there. It
    continues ``previous_log_id``, of which the service keeps seqs up to
    ``previous_seq``; ``reason`` says why (re-provisioned, restored from a backup)."""

    log_id: str
    first_seq: int
    previous_log_id: str
    previous_seq: int
    reason: str
    started_utc: datetime

    def describe(self) -> str:
        return (
            f"log {self.log_id} continues log {self.previous_log_id} after its seq "
            f"{self.previous_seq} (from this kiosk's seq {self.first_seq}): {self.reason}"
        )


@dataclass(frozen=True, slots=True)
class WireIdentity:
    """How one event is sent: its log, its seq and chain in that log, and the segment it
    starts (its seq there is 1) if any."""

    log_id: str
    seq: int
    chain: str | None
    starts: LogSegment | None = None


# --------------------------------------------------------------------- central roster
@dataclass(frozen=True, slots=True)
class GalleryErase:
    """The central service erased ``person_id`` at ``version``."""

    person_id: str
    version: int


@dataclass(frozen=True, slots=True)
class GalleryPut:
    """A person's whole state at ``version``: name, team, active and every template."""

    person_id: str
    name: str
    team: str | None
    active: bool
    templates: npt.NDArray[Any]  # (k, 128) little-endian float32, k >= 0
    version: int


@dataclass(frozen=True, slots=True)
class GalleryPlan:
    """The central roster's changes from ``since`` to ``version``, checked and decoded
    (by :func:`sync.roster_delta.plan_gallery` from the wire format's pages), in version
    order: what :meth:`KioskStore.apply_gallery` applies."""

    since: int
    version: int
    steps: list[GalleryErase | GalleryPut]  # in version order
    kept: frozenset[str]  # the person ids held once every step is applied
