"""The central store's records: what :class:`central.store.CentralStore` returns
(frozen dataclasses) and the type aliases they use. :mod:`central.store` re-exports the
records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from central import tokens
from clockface.consent import LawfulBasis
from kiosk.store import Person

FloatArray = npt.NDArray[np.float32]
AuditKind = Literal["person", "site", "kiosk", "admin", "ingest"]
ChainState = Literal["none", "verified", "unchained", "broken"]


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    timezone: str
    created_utc: datetime


@dataclass(frozen=True, slots=True)
class KioskInfo:
    """A kiosk as the service sees it. ``backlog``: events it sent past a gap (max_seq
    minus contiguous_seq over its logs), a lower bound of what it still has to send."""

    name: str
    site: str
    created_utc: datetime
    revoked_utc: datetime | None
    last_seen_utc: datetime | None
    clock_skew_seconds: float | None
    clock_flagged: bool
    gallery_version: int | None
    backlog: int
    chain_state: ChainState = "none"
    chain_break_seq: int | None = None  # the lowest over the kiosk's logs
    unchained_seq: int | None = None  # the lowest over the kiosk's logs

    @property
    def revoked(self) -> bool:
        return self.revoked_utc is not None

    @property
    def chain_text(self) -> str:
        """The chain's state in a few words, for ``central kiosk list``."""
        return _chain_text(self.chain_state, self.chain_break_seq, self.unchained_seq, None)


@dataclass(frozen=True, slots=True)
class LogChain:
    """How one kiosk log's tamper-evident chain (:mod:`clockface.chain`) checks out.

    ``chain_seq``: every event up to this seq has had its chain checked (the service
    checks as events become contiguous, so it follows ``contiguous_seq``).
    ``chain_break_seq``: the first seq whose chain does not follow from the event before
    it and the event itself: that event, or one before it, differs from what the kiosk
    chained. ``unchained_seq``: the first seq that came without a chain (the events after
    it can be checked only from the next chained one on). Both are kept for good.
    """

    kiosk: str
    log_id: str
    contiguous_seq: int
    max_seq: int
    chain_seq: int
    chain_break_seq: int | None
    unchained_seq: int | None
    previous_log_id: str | None = None  # the log this one continues (None: a first log)
    previous_seq: int | None = None  # ... after this seq of it
    start_reason: str | None = None  # ... and why, as the kiosk said

    @property
    def state(self) -> ChainState:
        return _chain_state(self.chain_seq, self.chain_break_seq, self.unchained_seq)

    def continues(self) -> str | None:
        """ "continues log X after seq N: why", for a log a kiosk started to continue
        another (re-provisioned, restored from a backup); None for a first log."""
        if self.previous_log_id is None:
            return None
        return (
            f"continues log {self.previous_log_id} after seq {self.previous_seq}: "
            f"{self.start_reason}"
        )

    def describe(self) -> str:
        """The state in a few words: "verified through seq 120", "BROKEN at seq 57"."""
        return _chain_text(self.state, self.chain_break_seq, self.unchained_seq, self.chain_seq)


@dataclass(frozen=True, slots=True)
class IssuedKiosk:
    """A kiosk just added, and its token: show ``token`` once, store it nowhere."""

    kiosk: KioskInfo
    token: str

    def __repr__(self) -> str:
        return f"IssuedKiosk(kiosk={self.kiosk!r}, token=<hidden>)"


@dataclass(frozen=True, slots=True)
class AdminInfo:
    name: str
    token_id: str
    created_utc: datetime
    revoked_utc: datetime | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who presented a valid token: a kiosk (``kiosk_id`` set) or an admin."""

    kind: tokens.TokenKind
    name: str
    token_id: str
    kiosk_id: int | None = None


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """A person, the roster version of their last change, and their consent records
    (and any other legal basis recorded for them), oldest first."""

    person: Person
    version: int
    consents: tuple[LawfulBasis, ...]


@dataclass(frozen=True, slots=True)
class Erasure:
    """A person just erased: the erasure's roster version, how many templates went."""

    person_id: str
    version: int
    templates: int


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An attendance event as the service shows it (``margin`` None: nobody else near):
    also the answer model of ``GET /v1/admin/events``, so the fields are declared once."""

    event_id: uuid.UUID
    kiosk: str
    log_id: str
    seq: int
    person_id: str
    direction: str
    utc: datetime
    tz: str
    distance: float
    margin: float | None
    frames: int
    software_version: str
    clock_synced: bool | None
    received_utc: datetime


@dataclass(frozen=True, slots=True)
class StoredEvent(EventRecord):
    """An attendance event as the service holds it: what it shows, and its chain."""

    chain: str | None = None  # as the kiosk sent it; None: it sent none
    recorded_kiosk_id: str | None = None  # the kiosk database's own id (chained)

    def shown(self) -> EventRecord:
        """The event as the admin API shows it (the chain is the verifier's)."""
        return EventRecord(**{f.name: getattr(self, f.name) for f in fields(EventRecord)})


@dataclass(frozen=True, slots=True)
class ErasureStatus:
    """An erasure and which (unrevoked) kiosks have confirmed holding a version past it."""

    version: int
    person_id: str
    at_utc: datetime
    actor: str
    confirmed: tuple[str, ...]
    pending: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at_utc: datetime
    actor: str
    kind: str
    action: str
    subject: str
    detail: str | None


def _chain_state(checked: int, broken: int | None, unchained: int | None) -> ChainState:
    if broken is not None:
        return "broken"
    if unchained is not None:
        return "unchained"
    return "verified" if checked > 0 else "none"


def _chain_text(
    state: ChainState, broken: int | None, unchained: int | None, checked: int | None
) -> str:
    if state == "broken":
        return f"BROKEN at seq {broken}"
    if state == "unchained":
        return f"unchained from seq {unchained}"
    if state == "verified":
        return "verified" if checked is None else f"verified through seq {checked}"
    return "no events yet"
