"""The tamper-evident chain of a kiosk's event log: the one definition both sides use.

Every event of a kiosk log carries ``chain``, 64 lowercase hex digits:

    chain(1)  = SHA-256( genesis(log_id) || canonical(event 1) )
    chain(n)  = SHA-256( chain(n - 1)    || canonical(event n) )
    genesis(log_id) = SHA-256( b"clockface/chain/1/genesis" || 0x00 || UTF-8(log_id) )

where ``||`` joins bytes and a previous chain counts as its 32 raw bytes. An event that
is edited no longer matches its own chain; an event inserted or deleted breaks the link
of the event after it. The kiosk computes the chain as it records each event
(``KioskStore.append_event``, inside the insert's transaction); ``clockface kiosk
verify-log`` walks it (:func:`verify_events`); the central service recomputes it as each
kiosk log's events become contiguous (``CentralStore.ingest``). Nothing here is secret:
anyone with write access to the whole log can recompute every chain after it, so the
chain proves that what the central service (or any earlier copy) holds was not changed
afterwards, and that a log is whole, not who wrote it.

``canonical(event)`` is the bytes ``b"clockface/event/1"``, a 0x00 byte, then these 13
fields in this order, each one tagged value:

    event_id (text: the lowercase hyphenated UUID), log_id (text), seq (integer),
    kiosk_id (text: the kiosk database's own id), person_id (text), direction (text:
    "in" or "out"), utc (text: ISO 8601 UTC with microseconds and Z, as stored:
    2024-05-01T07:57:03.120000Z), tz (text: the IANA zone), distance (double), margin
    (double, or null when infinite: nobody else was in the gallery), frames (integer),
    software_version (text), clock_synced (true, false or null)

    text     b"S" + the UTF-8 byte length as 4 bytes big-endian + the UTF-8 bytes
    integer  b"I" + 8 bytes big-endian two's complement
    double   b"D" + IEEE 754 binary64, 8 bytes big-endian (-0.0 is written as 0.0;
             NaN and infinities are refused)
    null     b"N"        true  b"T"        false  b"F"

Every value is either fixed-width or length-prefixed, so no two different events encode
to the same bytes. Change the encoding only together with the version in both domain
strings.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NamedTuple

GENESIS_DOMAIN = b"clockface/chain/1/genesis\x00"
EVENT_DOMAIN = b"clockface/event/1\x00"
CHAIN_HEX_DIGITS = 64
CHAIN_PATTERN = r"^[0-9a-f]{64}$"  # for pydantic; in Python, fullmatch (no newline after)

_CHAIN = re.compile(CHAIN_PATTERN)
_INT = struct.Struct(">q")
_DOUBLE = struct.Struct(">d")
_LENGTH = struct.Struct(">I")
_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_INFINITIES = (math.inf, -math.inf)
_FLAGS = {None: b"N", True: b"T", False: b"F"}


class EventFields(NamedTuple):
    """The immutable fields of one event, as the chain covers them (a named tuple: the
    service builds one per event it ingests, so it must be cheap).

    ``utc`` is the stored text (ISO 8601 UTC, microseconds, Z); :meth:`make` takes a
    datetime instead. ``margin`` None or infinite: nobody else was in the gallery.
    """

    event_id: str
    log_id: str
    seq: int
    kiosk_id: str
    person_id: str
    direction: str
    utc: str
    tz: str
    distance: float
    margin: float | None
    frames: int
    software_version: str
    clock_synced: bool | None

    @classmethod
    def make(
        cls,
        *,
        event_id: str | uuid.UUID,
        log_id: str,
        seq: int,
        kiosk_id: str,
        person_id: str,
        direction: str,
        utc: datetime | str,
        tz: str,
        distance: float,
        margin: float | None,
        frames: int,
        software_version: str,
        clock_synced: bool | None,
    ) -> EventFields:
        """The fields from the values as either side holds them (a UUID object, a
        datetime)."""
        return cls(
            event_id=str(event_id),
            log_id=log_id,
            seq=seq,
            kiosk_id=kiosk_id,
            person_id=person_id,
            direction=direction,
            utc=utc if isinstance(utc, str) else utc_text(utc),
            tz=tz,
            distance=distance,
            margin=margin,
            frames=frames,
            software_version=software_version,
            clock_synced=clock_synced,
        )


def utc_text(moment: datetime) -> str:
    """A time as the chain covers it: ISO 8601 UTC, microseconds, Z (as
    :func:`clockface.values.iso_utc` stores it; this module imports nothing heavy)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # "2024-05-01T07:57:03.120000+00:00": years are always 4 digits in isoformat.
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def _text(value: str) -> bytes:
    if type(value) is not str:
        raise ValueError(f"a chained text field must be text, not {value!r}")
    raw = value.encode("utf-8")
    return b"S" + _LENGTH.pack(len(raw)) + raw


def _integer(value: int) -> bytes:
    if type(value) is not int:
        raise ValueError(f"a chained integer field must be a whole number, not {value!r}")
    try:
        return b"I" + _INT.pack(value)
    except struct.error:
        raise ValueError(f"a chained integer must fit 64 bits, not {value!r}") from None


def _double(value: float) -> bytes:
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"a chained number must be a number, not {value!r}")
        value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a chained number must be finite, not {value!r}")
    return b"D" + _DOUBLE.pack(value + 0.0)  # -0.0 + 0.0 is 0.0


def _flag(value: bool | None) -> bytes:
    if value is None:
        return b"N"
    if not isinstance(value, bool):
        raise ValueError(f"clock_synced must be true, false or null, not {value!r}")
    return b"T" if value else b"F"


def canonical(fields: EventFields) -> bytes:
    """The event's bytes as the chain hashes them (see the module doc). Raises
    ValueError for a value the encoding cannot hold (a NaN, a seq that is not whole)."""
    (event_id, log_id, seq, kiosk_id, person_id, direction, utc, tz, distance, margin, frames,
     version, synced) = fields  # fmt: skip
    if not (
        type(event_id) is str
        and type(log_id) is str
        and type(seq) is int
        and type(kiosk_id) is str
        and type(person_id) is str
        and type(direction) is str
        and type(utc) is str
        and type(tz) is str
        and type(distance) is float
        and (margin is None or type(margin) is float)
        and type(frames) is int
        and type(version) is str
        and (synced is None or type(synced) is bool)
        and _UUID.match(event_id)
        and -(2**63) <= seq < 2**63
        and -(2**63) <= frames < 2**63
        and math.isfinite(distance)
        and (margin is None or not math.isnan(margin))
    ):
        return _canonical_checked(fields)
    if not _UTC.match(utc):
        raise ValueError(f"utc must be ISO 8601 UTC with microseconds and Z, not {utc!r}")
    # The same bytes as _canonical_checked, in one struct.pack: the layout depends only on
    # the texts' lengths and whether there is a margin, and repeats from event to event.
    e, lg, k, p = event_id.encode(), log_id.encode(), kiosk_id.encode(), person_id.encode()
    d, u, z, v = direction.encode(), utc.encode(), tz.encode(), version.encode()
    bare = margin is None or margin in _INFINITIES
    key = (len(e), len(lg), len(k), len(p), len(d), len(u), len(z), len(v), bare)
    layout = _LAYOUTS.get(key) or _layout(key)
    flag = _FLAGS[synced]
    if bare:
        return layout.pack(
            EVENT_DOMAIN, b"S", len(e), e, b"S", len(lg), lg, b"I", seq, b"S", len(k), k,
            b"S", len(p), p, b"S", len(d), d, b"S", len(u), u, b"S", len(z), z,
            b"D", distance + 0.0, b"N", b"I", frames, b"S", len(v), v, flag,
        )  # fmt: skip
    return layout.pack(
        EVENT_DOMAIN, b"S", len(e), e, b"S", len(lg), lg, b"I", seq, b"S", len(k), k,
        b"S", len(p), p, b"S", len(d), d, b"S", len(u), u, b"S", len(z), z,
        b"D", distance + 0.0, b"D", margin + 0.0, b"I", frames, b"S", len(v), v, flag,  # type: ignore[operator]
    )  # fmt: skip


_LAYOUTS: dict[tuple[int | bool, ...], struct.Struct] = {}


def _layout(key: tuple[int | bool, ...]) -> struct.Struct:
    """The struct layout of an encoding whose texts have these lengths."""
    e, lg, k, p, d, u, z, v, bare = key
    margin = "c" if bare else "cd"
    layout = struct.Struct(
        f">{len(EVENT_DOMAIN)}s" f"cI{e}s" f"cI{lg}s" "cq" f"cI{k}s" f"cI{p}s" f"cI{d}s"
        f"cI{u}s" f"cI{z}s" "cd" f"{margin}" "cq" f"cI{v}s" "c"
    )  # fmt: skip
    if len(_LAYOUTS) >= 1024:
        _LAYOUTS.clear()
    _LAYOUTS[key] = layout
    return layout


def _canonical_checked(fields: EventFields) -> bytes:
    """:func:`canonical` for values of other types (an int distance, an uppercase UUID),
    each checked and converted, or refused with the reason."""
    (event_id, log_id, seq, kiosk_id, person_id, direction, utc, tz, distance, margin, frames,
     version, synced) = fields  # fmt: skip
    if not isinstance(utc, str) or not _UTC.match(utc):
        raise ValueError(f"utc must be ISO 8601 UTC with microseconds and Z, not {utc!r}")
    if not isinstance(event_id, str) or not _UUID.match(event_id):
        event_id = str(uuid.UUID(str(event_id)))  # another spelling of a UUID, or refused
    return b"".join(
        (
            EVENT_DOMAIN,
            _text(event_id),
            _text(log_id),
            _integer(seq),
            _text(kiosk_id),
            _text(person_id),
            _text(direction),
            _text(utc),
            _text(tz),
            _double(distance),
            b"N" if margin is None or margin in _INFINITIES else _double(margin),
            _integer(frames),
            _text(version),
            _flag(synced),
        )
    )


def genesis(log_id: str) -> str:
    """The chain value "before" event 1 of the log ``log_id``."""
    return hashlib.sha256(GENESIS_DOMAIN + log_id.encode("utf-8")).hexdigest()


def is_chain(value: object) -> bool:
    """Whether ``value`` is a chain value: 64 lowercase hex digits."""
    return isinstance(value, str) and _CHAIN.fullmatch(value) is not None


def link(previous: str, fields: EventFields) -> str:
    """The chain of the event ``fields`` following an event whose chain is ``previous``
    (for seq 1: :func:`genesis` of the log)."""
    if not is_chain(previous):
        raise ValueError("the previous chain must be 64 lowercase hex digits")
    return hashlib.sha256(bytes.fromhex(previous) + canonical(fields)).hexdigest()


# --------------------------------------------------------------------- a whole log
ProblemKind = Literal["gap", "seq", "unchained", "mismatch"]


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """One thing wrong with a log, at ``seq``: a gap (``seq`` is the first missing one),
    a seq out of order or not whole, an event with no chain, an event whose chain does
    not follow (it was edited, or an event before it was inserted or deleted)."""

    seq: float
    kind: ProblemKind
    message: str


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What walking a log found: how many events, the last seq, the problems."""

    events: int
    last_seq: float
    problems: tuple[ChainProblem, ...]

    @property
    def intact(self) -> bool:
        return not self.problems


def _seq_text(seq: object) -> str:
    if isinstance(seq, float) and seq.is_integer():
        return str(int(seq))
    return str(seq)


def verify_events(log_id: str, events: Iterable[tuple[EventFields, str | None]]) -> ChainCheck:
    """Walk a whole log from seq 1: ``events`` are (fields, stored chain) in seq order.

    Each problem is reported once, where it is: after an edited event the walk goes on
    from its stored chain, so one edit is one problem; a row whose seq is not a whole
    number is reported and skipped. Deleting the newest events leaves no trace in the
    log itself: compare the count with a copy (the central service's) for that.
    """
    problems: list[ChainProblem] = []
    previous: str | None = genesis(log_id)
    expected = 1
    count = 0
    last: float = 0
    for fields, chain in events:
        count += 1
        seq: object = fields.seq
        if isinstance(seq, float) and seq.is_integer():
            seq = int(seq)
            fields = fields._replace(seq=seq)
        if isinstance(seq, bool) or not isinstance(seq, int):
            problems.append(
                ChainProblem(
                    _as_float(seq),
                    "seq",
                    f"seq {_seq_text(seq)}: not a whole number: a row inserted outside clockface",
                )
            )
            continue
        last = seq
        if seq > expected:
            missing = f"seq {expected}" if seq == expected + 1 else f"seqs {expected}-{seq - 1}"
            where = (
                f"the log starts at seq {seq}"
                if expected == 1
                else (f"seq {seq} follows seq {expected - 1}")
            )
            problems.append(
                ChainProblem(
                    expected,
                    "gap",
                    f"{missing}: missing ({where}): "
                    f"{'a row was' if seq == expected + 1 else 'rows were'} deleted",
                )
            )
        elif seq < expected:
            problems.append(
                ChainProblem(seq, "seq", f"seq {seq}: out of order after seq {expected - 1}")
            )
        expected = max(expected, seq + 1)
        if not is_chain(chain):
            problems.append(
                ChainProblem(
                    seq,
                    "unchained",
                    f"seq {seq}: {'no chain' if chain is None else 'a malformed chain'}: "
                    "a row written outside clockface, or its chain overwritten",
                )
            )
            previous = None
            continue
        assert chain is not None
        if previous is not None:
            try:
                expected_chain: str | None = link(previous, fields)
            except (ValueError, TypeError):  # a value no clockface event can hold
                expected_chain = None
            if expected_chain != chain:
                problems.append(
                    ChainProblem(
                        seq,
                        "mismatch",
                        f"seq {seq}: hash mismatch: the event was edited, or a row before it "
                        "was inserted or deleted",
                    )
                )
        previous = chain
    return ChainCheck(count, last, tuple(problems))


def _as_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def chained(
    log_id: str, events: Iterable[EventFields], previous: str | None = None
) -> Iterator[str]:
    """The chain of each event in turn, from ``previous`` (default: the log's genesis)."""
    head = genesis(log_id) if previous is None else previous
    for fields in events:
        head = link(head, fields)
        yield head
