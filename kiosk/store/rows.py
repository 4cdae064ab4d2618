"""How the kiosk store's rows read: the columns it selects, and each row as a record."""

from __future__ import annotations

from typing import Any

from clockface import chain
from clockface.consent import Consent, LawfulBasis, LegalBasis
from clockface.values import (
    parse_utc,
)
from kiosk.store.records import Event, LogSegment, Person

_PERSON_SELECT = """
    SELECT p.person_id, p.name, p.team, p.active,
           (SELECT count(*) FROM templates t WHERE t.person_id = p.person_id),
           p.created_utc, p.updated_utc
    FROM people p
"""
_EXPIRED_SELECT = """
    SELECT p.person_id, p.deactivated_utc,
           (SELECT count(*) FROM templates t WHERE t.person_id = p.person_id)
    FROM people p WHERE p.active = 0 AND p.deactivated_utc < ?
    ORDER BY p.deactivated_utc, p.person_id
"""
_EVENT_COLUMNS = (
    "event_id, seq, kiosk_id, person_id, direction, utc, tz, distance, margin, frames, "
    "software_version, acked_utc, clock_synced, chain"
)
_CHAINED_COLUMNS = (
    "event_id, seq, kiosk_id, person_id, direction, utc, tz, distance, margin, frames,"
    " software_version, clock_synced, chain"
)
_SEGMENT_COLUMNS = "log_id, first_seq, previous_log_id, previous_seq, reason, started_utc"
_NOT_PARKED = "NOT EXISTS (SELECT 1 FROM parked WHERE parked.event_id = events.event_id)"
_SYNC_STATE_COLUMNS = (
    "central_url, attached_utc, gallery_version, confirmed_version, last_success_utc, "
    "last_error_utc, last_error, clock_skew_seconds, clock_flagged"
)


def _lawful_basis(row: tuple[Any, ...]) -> LawfulBasis:
    basis, reference, notice_version, note, at = row
    if basis == "consent":
        return Consent(reference, notice_version, parse_utc(at))
    return LegalBasis(basis, note, parse_utc(at))


def _person(row: tuple[Any, ...]) -> Person:
    pid, name, team, active, count, created, updated = row
    return Person(
        person_id=pid,
        name=name,
        team=team,
        active=bool(active),
        template_count=int(count),
        created_utc=parse_utc(created),
        updated_utc=parse_utc(updated),
    )


def _event(row: tuple[Any, ...]) -> Event:
    (event_id, seq, kiosk_id, pid, direction, utc, tz, distance, margin, frames, version, acked) = (
        row[:12]
    )
    synced, link = row[12], row[13]
    return Event(
        event_id=event_id,
        seq=int(seq),
        kiosk_id=kiosk_id,
        person_id=pid,
        direction=direction,
        utc=parse_utc(utc),
        tz=tz,
        distance=float(distance),
        margin=float(margin),
        frames=int(frames),
        software_version=version,
        acked_utc=None if acked is None else parse_utc(acked),
        clock_synced=None if synced is None else bool(synced),
        chain=link,
    )


def _chained_row(row: tuple[Any, ...], log_id: str) -> tuple[chain.EventFields, str | None]:
    """A row of the events table as the chain covers it, values as stored."""
    (event_id, seq, kiosk_id, pid, direction, utc, tz, distance, margin, frames) = row[:10]
    version, synced, link = row[10:]
    return (
        chain.EventFields(
            event_id=event_id,
            log_id=log_id,
            seq=seq,
            kiosk_id=kiosk_id,
            person_id=pid,
            direction=direction,
            utc=utc,
            tz=tz,
            distance=distance,
            margin=margin,
            frames=frames,
            software_version=version,
            clock_synced=None if synced is None else bool(synced),
        ),
        link,
    )


def _segment(row: tuple[Any, ...]) -> LogSegment:
    log_id, first, previous, previous_seq, reason, started = row
    return LogSegment(
        str(log_id), int(first), str(previous), int(previous_seq), str(reason), parse_utc(started)
    )


def _segment_of(segments: list[LogSegment], seq: int) -> LogSegment | None:
    """The continuation log a local seq is sent under (None: the kiosk's first log).
    Segments start at non-decreasing seqs; the later of two at one seq wins."""
    found = None
    for segment in segments:
        if segment.first_seq <= seq:
            found = segment
    return found


def _segment_bounds(
    first_log: str, segments: list[LogSegment]
) -> dict[str, tuple[int, int | None]]:
    """Per log id, the local seqs sent under it: from the first, up to (not including)
    the second (None: no end)."""
    starts = [(first_log, 1), *((s.log_id, s.first_seq) for s in segments)]
    bounds: dict[str, tuple[int, int | None]] = {}
    for i, (log_id, first) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else None
        bounds[log_id] = (first, end)
    return bounds
