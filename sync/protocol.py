"""The wire protocol between kiosks and the central service (JSON over HTTP, version 1).

Both sides import these models: the central service (``central/``) validates requests
with them and publishes them in its OpenAPI spec; the kiosk's sync agent (``sync/``)
builds requests and reads answers with them. Every model refuses unknown fields.

Endpoints (all under ``/v1``; a kiosk authenticates with ``Authorization: Bearer <kiosk
token>``, an HR admin with an admin token):

- ``POST /v1/events`` (kiosk): an :class:`EventBatch`; answers :class:`IngestResponse`.
  Each event is accepted, or reported ``duplicate`` (same id, same content, already
  held) or ``conflict`` (same id or same log+seq, different content: never stored).
  A malformed batch is refused whole (422) and stores nothing.
- ``GET /v1/gallery?since=V&limit=N`` (kiosk): a :class:`GalleryDelta`, the roster
  changes after version V in version order; ``more`` says another page follows.
- ``GET /v1/logs/{log_id}`` (kiosk): a :class:`LogState`. The agent asks before it
  first sends a log's events, and after a conflict.
- ``POST /v1/gallery/applied`` (kiosk): :class:`GalleryApplied`, the version the kiosk
  now holds; the service records a receipt for every erasure up to it.

Conventions:

- Times are ISO 8601 with an offset; the service and the kiosk keep them in UTC.
- A template is 128 float32 little-endian (512 bytes), base64 (standard alphabet).
- ``margin`` is ``null`` when nobody else was in the gallery (the kiosk's ``inf``):
  JSON has no infinity.
- ``seq`` numbers events 1, 2, 3 ... within one kiosk log (``log_id``, the id the kiosk
  database generated once). The service answers with the highest seq up to which it
  holds every event of that log, so a gap is visible on both sides.
- ``chain`` (optional, 64 lowercase hex digits) is the event's link in its log's
  tamper-evident chain (:mod:`clockface.chain`), with ``kiosk_id``, the one field of the
  chain the rest of the event does not carry. The clockface sync agent always sends both.
  They are optional so that the protocol stays version 1 and a sender that does not
  chain (a test, a tool) is still heard: the service stores its events and flags the
  log "unchained", never "verified".
"""

from __future__ import annotations

import base64
import binascii
import math
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from clockface.chain import CHAIN_PATTERN
from clockface.events import Direction

PROTOCOL_VERSION = 1
EMBEDDING_BYTES = 128 * 4
MAX_BATCH_EVENTS = 1000
MAX_GALLERY_PAGE = 1000
# The service refuses request bodies larger than this with 413 before parsing them.
MAX_BODY_BYTES = 2 * 1024 * 1024

EventStatus = Literal["accepted", "duplicate", "conflict"]


def _utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC time
        raise ValueError("the time is out of range") from None


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone") from None
    return name


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _template(text: str) -> str:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a template must be standard base64") from None
    if len(raw) != EMBEDDING_BYTES:
        raise ValueError(f"a template is {EMBEDDING_BYTES} bytes, not {len(raw)}")
    if not np.isfinite(np.frombuffer(raw, dtype="<f4")).all():
        raise ValueError("a template must hold finite numbers")
    return text


UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]
ZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_zone)]
Identifier = Annotated[str, Field(min_length=1, max_length=200)]
Distance = Annotated[float, Field(ge=0.0), AfterValidator(_finite)]
# Numbers and flags must be JSON numbers and booleans: no "5" for 5, no false for 0.
Count = Annotated[int, Field(strict=True)]
Flag = Annotated[bool, Field(strict=True)]
Template = Annotated[str, Field(min_length=4, max_length=700), AfterValidator(_template)]
ChainHex = Annotated[str, Field(min_length=64, max_length=64, pattern=CHAIN_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------- events up
class LogStart(_Model):
    """Sent with seq 1 of a log that continues another log of the same kiosk database
    (the kiosk was re-provisioned, or restored from a backup): the service records it,
    so the new log reads as a continuation, not as tampering."""

    previous_log_id: Identifier
    previous_seq: Count = Field(
        ge=0, le=2**62, description="the last seq of the previous log that this one follows"
    )
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class WireEvent(_Model):
    """One attendance event as the kiosk recorded it."""

    event_id: uuid.UUID
    log_id: Identifier = Field(description="the kiosk database's own id; seq counts within it")
    seq: Count = Field(ge=1, le=2**62)
    person_id: Identifier
    direction: Direction
    utc: UtcTime
    tz: ZoneName
    distance: Distance
    margin: Distance | None = Field(description="null: nobody else was in the gallery")
    frames: Count = Field(ge=1, le=1_000_000)
    software_version: Identifier
    clock_synced: Flag | None = Field(
        description="false: the kiosk's clock was not synchronised when it stamped this "
        "event; null: not known (recorded before the kiosk checked)"
    )
    kiosk_id: Identifier | None = Field(
        default=None,
        description="the kiosk database's own kiosk id, as the chain covers it (the service "
        "files the event under the kiosk of the token, whatever this says); required with "
        "chain",
    )
    chain: ChainHex | None = Field(
        default=None,
        description="the event's link in its log's tamper-evident chain: SHA-256 (hex) over "
        "the previous event's chain and this event (clockface.chain). null: the kiosk does "
        "not chain its log; the service then flags the log as unchained, never verified",
    )

    log_start: LogStart | None = Field(
        default=None,
        description="with seq 1 only: the log this one continues (absent: a first log)",
    )

    @model_validator(mode="after")
    def _chain_needs_kiosk_id(self) -> WireEvent:
        if self.chain is not None and self.kiosk_id is None:
            raise ValueError("an event with a chain must carry its kiosk_id too")
        if self.log_start is not None and self.seq != 1:
            raise ValueError("log_start comes with seq 1 only")
        return self


class EventBatch(_Model):
    """Events pushed by one kiosk, in seq order (not required, but usual)."""

    sent_utc: UtcTime = Field(description="the kiosk's clock when it sent the batch")
    events: list[WireEvent] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


class EventResult(_Model):
    event_id: uuid.UUID
    status: EventStatus


class IngestResponse(_Model):
    """Per-event status, in the order sent, and what the service now holds of the log."""

    results: list[EventResult]
    high_water_seq: dict[str, int] = Field(
        description="per log_id in the batch: every event with seq up to this is held"
    )
    clock_skew_seconds: float = Field(
        description="the service's clock minus the kiosk's sent_utc (positive: kiosk behind)"
    )
    clock_flagged: bool = Field(description="the skew is beyond the service's bound")


class LogState(_Model):
    """``GET /v1/logs/{log_id}``: how the service holds one kiosk log, so a kiosk can
    tell that it was re-provisioned (the log is another kiosk's) or restored from a
    backup (the service holds an event there that the kiosk does not)."""

    log_id: Identifier
    owner: Literal["none", "you", "another kiosk"]
    high_water_seq: Count = Field(ge=0, description="every event up to this seq is held")
    event_id_at_high_water: uuid.UUID | None = Field(
        description="the id of the event held at high_water_seq (null: none held)"
    )


# ------------------------------------------------------------------------- gallery down
class WirePerson(_Model):
    """A person's whole current state (not a diff): replace what the kiosk holds.

    ``person_id`` and the templates are taken here as any store may hold them (people
    stored under older rules too), so that the service can always answer; the kiosk
    applies the roster's rules (:mod:`clockface.roster`) to each person it puts in its
    roster (:mod:`sync.roster_delta`)."""

    person_id: Identifier
    name: Annotated[str, Field(min_length=1, max_length=200)]
    team: Annotated[str, Field(min_length=1, max_length=200)] | None
    active: Flag
    templates: list[Template] = Field(max_length=100)
    version: Count = Field(ge=1)


class WireErasure(_Model):
    """A person erased on the service: the kiosk removes them and their templates."""

    person_id: Identifier
    version: Count = Field(ge=1)


class GalleryDelta(_Model):
    """Roster changes after ``since``, up to ``version``. Apply erasures and people in
    version order (a person erased then enrolled again has the higher version)."""

    since: Count = Field(ge=0)
    version: Count = Field(ge=0, description="the version the kiosk holds after applying this")
    more: Flag = Field(description="another page follows: ask again with since=version")
    people: list[WirePerson]
    erasures: list[WireErasure]


class GalleryApplied(_Model):
    version: Count = Field(ge=0)


class Problem(_Model):
    """Every error answer: one line a person can act on."""

    detail: str


# ------------------------------------------------------------------------- helpers
def encode_template(embedding: npt.ArrayLike) -> str:
    """One 128-d embedding as the wire's base64 of float32 little-endian."""
    array = np.asarray(embedding, dtype="<f4").reshape(-1)
    if array.shape != (128,):
        raise ValueError(f"a template has 128 numbers, not {array.size}")
    return base64.b64encode(array.tobytes()).decode("ascii")


def decode_template(text: str) -> npt.NDArray[np.float32]:
    """The wire's base64 back to a (128,) float32 array (native byte order)."""
    raw = base64.b64decode(_template(text), validate=True)
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def margin_to_wire(margin: float) -> float | None:
    return None if math.isinf(margin) else margin


def margin_from_wire(margin: float | None) -> float:
    return math.inf if margin is None else margin
