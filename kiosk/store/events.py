"""The kiosk's event log: append-only events, their chain, and the continuation logs they
are sent under."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from clockface import chain
from clockface.errors import (
    StoreValueError,
)
from clockface.events import DIRECTIONS, Direction
from clockface.values import (
    as_utc,
    check_number,
    check_text,
    day_window,
    iso_utc,
    one_line,
    parse_utc,
    zone_info,
)
from kiosk import migrations
from kiosk.store.base import StoreBase
from kiosk.store.records import (
    _UNKNOWN_PREVIOUS,
    Event,
    LogCheck,
    LogSegment,
    WireIdentity,
)
from kiosk.store.rows import (
    _CHAINED_COLUMNS,
    _EVENT_COLUMNS,
    _NOT_PARKED,
    _SEGMENT_COLUMNS,
    _chained_row,
    _event,
    _segment,
    _segment_bounds,
    _segment_of,
)


class EventsMixin(StoreBase):
    """The append-only event log, its chain, and its continuation logs."""

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
    ) -> Event:
        """Record one event: committed (and synced to disk) before this returns.

        ``seq`` is the next number of this kiosk's sequence. The person need not be in
        the roster any more: the event is a fact about the moment it was seen.
        ``clock_synced`` None asks the store's clock probe; a probe that fails records
        "not known" (None) rather than losing the event.
        """
        pid = check_text(person_id, "a person id")
        if direction not in DIRECTIONS:
            raise StoreValueError(f"direction must be 'in' or 'out', not {direction!r}")
        at = as_utc(utc, "utc")
        zone_info(tz)
        distance = check_number(distance, "distance", allow_inf=False)
        margin = check_number(margin, "margin", allow_inf=True)  # inf: a one-person gallery
        if isinstance(frames, bool) or not isinstance(frames, int | np.integer) or frames < 1:
            raise StoreValueError(f"frames must be a whole number of at least 1, not {frames!r}")
        version = check_text(software_version, "a software version")
        if clock_synced is not None and not isinstance(clock_synced, bool):
            raise StoreValueError(f"clock_synced must be True, False or None, not {clock_synced!r}")
        synced = self._probe_clock() if clock_synced is None else clock_synced
        event_id = str(uuid.uuid4())
        with self._writing("recording an event"):
            last = self._all("SELECT seq, chain FROM events ORDER BY seq DESC LIMIT 1")
            seq, previous = (1, chain.genesis(self._log_id)) if not last else last[0]
            if last:
                seq = int(seq) + 1
                if not chain.is_chain(previous):
                    # The log was written outside clockface (verify-log names the row):
                    # still record the event, linked from a known value, never lose it.
                    previous = _UNKNOWN_PREVIOUS
            fields = chain.EventFields(
                event_id=event_id,
                log_id=self._log_id,
                seq=seq,
                kiosk_id=self._kiosk_id,
                person_id=pid,
                direction=direction,
                utc=iso_utc(at),
                tz=tz,
                distance=distance,
                margin=margin,
                frames=int(frames),
                software_version=version,
                clock_synced=synced,
            )
            link = chain.link(previous, fields)
            self._db.execute(
                f"INSERT INTO events ({_EVENT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                [
                    event_id,
                    seq,
                    self._kiosk_id,
                    pid,
                    direction,
                    fields.utc,
                    tz,
                    distance,
                    margin,
                    int(frames),
                    version,
                    None if synced is None else int(synced),
                    link,
                ],
            )
            self._link_on_the_wire(fields)
        return Event(
            event_id=event_id,
            seq=int(seq),
            kiosk_id=self._kiosk_id,
            person_id=pid,
            direction=direction,
            utc=at,
            tz=tz,
            distance=distance,
            margin=margin,
            frames=int(frames),
            software_version=version,
            acked_utc=None,
            clock_synced=synced,
            chain=link,
        )

    def _link_on_the_wire(self, fields: chain.EventFields) -> None:
        """Inside an append's transaction: the new event's link in the current
        continuation log's chain, if the kiosk has one."""
        current = self._all("SELECT log_id, first_seq FROM log_segments ORDER BY id DESC LIMIT 1")
        if not current:
            return
        log_id, first = str(current[0][0]), int(current[0][1])
        seq = int(fields.seq)
        previous = chain.genesis(log_id)
        if seq > first:
            row = self._all(
                "SELECT chain FROM wire_links WHERE log_id = ? AND seq = ?", [log_id, seq - 1]
            )
            previous = str(row[0][0]) if row else _UNKNOWN_PREVIOUS
        link = chain.link(previous, fields._replace(log_id=log_id, seq=seq - first + 1))
        self._db.execute(
            "INSERT INTO wire_links (log_id, seq, chain) VALUES (?, ?, ?)", [log_id, seq, link]
        )

    def events(
        self, *, day: date | None = None, person_id: str | None = None, tz: str | None = None
    ) -> list[Event]:
        """Events by seq, optionally of one person and of one local day.

        ``day`` is the calendar day in each event's own zone (an event at 03:00 UTC in
        America/Chicago belongs to the day before); ``tz`` reads the day in that zone
        instead.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if person_id is not None:
            clauses.append("person_id = ?")
            params.append(person_id)
        zone: ZoneInfo | None = None
        if tz is not None:
            if day is None:
                raise StoreValueError("tz= says in which zone day= is read: give day= too")
            zone = zone_info(tz)
        if day is not None:
            # Every zone is within a day of UTC: fetch three UTC days, then decide exactly.
            lo, hi = day_window(day)
            clauses.append("utc >= ? AND utc < ?")
            params += [lo, hi]
        sql = f"SELECT {_EVENT_COLUMNS} FROM events"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self._reading("reading events"):
            rows = self._all(sql + " ORDER BY seq", params)
        found = [_event(row) for row in rows]
        if day is not None:
            found = [e for e in found if e.utc.astimezone(zone or ZoneInfo(e.tz)).date() == day]
        return found

    def last_event(self, person_id: str) -> Event | None:
        """The person's most recently recorded event (highest seq), if any."""
        with self._reading("reading events"):
            rows = self._all(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE person_id = ?"
                " ORDER BY seq DESC LIMIT 1",
                [person_id],
            )
        return _event(rows[0]) if rows else None

    def pending(self, limit: int = 100) -> list[Event]:
        """The outbox: up to ``limit`` events not yet acknowledged nor parked, by seq."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        with self._reading("reading the outbox"):
            rows = self._all(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE acked_utc IS NULL AND {_NOT_PARKED}"
                " ORDER BY seq LIMIT ?",
                [limit],
            )
        return [_event(row) for row in rows]

    def mark_acked(self, event_ids: Iterable[str], at_utc: datetime) -> int:
        """Mark events acknowledged by the central service; returns how many were new.

        Already acknowledged ids are skipped (an ack can be repeated). An id this store
        does not hold refuses the whole batch: it means the caller is confused.
        """
        ids = list(dict.fromkeys(event_ids))
        for event_id in ids:
            check_text(event_id, "an event id")
        at = iso_utc(as_utc(at_utc, "at_utc"))
        newly = 0
        with self._writing("marking events acknowledged"):
            unknown: list[str] = []
            for event_id in ids:
                cursor = self._db.execute(
                    "UPDATE events SET acked_utc = ? WHERE event_id = ? AND acked_utc IS NULL",
                    [at, event_id],
                )
                if cursor.rowcount:
                    newly += 1
                    self._db.execute("DELETE FROM parked WHERE event_id = ?", [event_id])
                elif not self._all("SELECT 1 FROM events WHERE event_id = ?", [event_id]):
                    unknown.append(event_id)
            if unknown:
                raise StoreValueError(
                    f"{len(unknown)} of {len(ids)} event ids are not in this store "
                    f"(first: {unknown[0]!r}); nothing was marked"
                )
        return newly

    def backlog(self) -> int:
        """How many events wait to be sent to the central service (parked ones aside:
        :meth:`parked_count`)."""
        with self._reading("reading the outbox"):
            (count,) = self._one(
                f"SELECT count(*) FROM events WHERE acked_utc IS NULL AND {_NOT_PARKED}"
            )
        return int(count)

    def verify_chain(self) -> LogCheck:
        """Walk the whole event log and check its chain (:mod:`clockface.chain`).

        Reads the rows as they are in the file, whoever wrote them, in seq order, and
        names each problem at its seq: an edited event (its chain no longer matches), an
        inserted or deleted one (a gap or a seq out of place, and the next event's chain
        does not follow). Also says whether the triggers that keep the log append-only
        are still there (someone who edits the file by hand drops them first).
        """
        with self._reading("checking the event log"):
            (log_id,) = self._one("SELECT value FROM settings WHERE key = 'log_id'")
            present = {
                name
                for (name,) in self._all(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
                )
            }
            cursor = self._conn.execute(f"SELECT {_CHAINED_COLUMNS} FROM events ORDER BY seq")
            check = chain.verify_events(str(log_id), (_chained_row(row, log_id) for row in cursor))
        missing = tuple(name for name in migrations.EVENT_TRIGGERS if name not in present)
        return LogCheck(check, missing)

    # ----------------------------------------------------------------- continuation logs
    def log_segments(self) -> list[LogSegment]:
        """The continuation logs, oldest first (none for a kiosk never re-provisioned
        nor restored)."""
        with self._reading("reading the log segments"):
            rows = self._all(f"SELECT {_SEGMENT_COLUMNS} FROM log_segments ORDER BY id")
        return [_segment(row) for row in rows]

    def current_log(self) -> tuple[str, int]:
        """The log new events are sent under, and the local seq it starts at."""
        segments = self.log_segments()
        return (segments[-1].log_id, segments[-1].first_seq) if segments else (self._log_id, 1)

    def wire_identities(self, events: Iterable[Event]) -> list[WireIdentity]:
        """How each event is sent (its log, seq and chain there), in the order given."""
        segments = self.log_segments()
        wanted = list(events)
        links: dict[tuple[str, int], str] = {}
        if segments and wanted:
            seqs = sorted({e.seq for e in wanted if e.seq >= segments[0].first_seq})
            with self._reading("reading the wire links"):
                for start in range(0, len(seqs), 500):
                    chunk = seqs[start : start + 500]
                    marks = ", ".join("?" * len(chunk))
                    for log_id, seq, link in self._all(
                        f"SELECT log_id, seq, chain FROM wire_links WHERE seq IN ({marks})", chunk
                    ):
                        links[(str(log_id), int(seq))] = str(link)
        out: list[WireIdentity] = []
        for event in wanted:
            segment = _segment_of(segments, event.seq)
            if segment is None:
                out.append(WireIdentity(self._log_id, event.seq, event.chain))
                continue
            seq = event.seq - segment.first_seq + 1
            out.append(
                WireIdentity(
                    segment.log_id,
                    seq,
                    links.get((segment.log_id, event.seq)),
                    segment if seq == 1 else None,
                )
            )
        return out

    def event_at(self, log_id: str, seq: int) -> Event | None:
        """The event sent as ``seq`` of ``log_id`` (None: this kiosk holds none there)."""
        segments = self.log_segments()
        bounds = _segment_bounds(self._log_id, segments)
        if log_id not in bounds or seq < 1:
            return None
        first, end = bounds[log_id]
        local = first + seq - 1
        if end is not None and local >= end:
            return None
        with self._reading("reading events"):
            rows = self._all(f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq = ?", [local])
        return _event(rows[0]) if rows else None

    def start_log(self, reason: str, at_utc: datetime | None = None) -> LogSegment:
        """Send every event not yet acknowledged (parked ones too, which go back in the
        outbox), and every event recorded from now on, under a new log that continues
        the current one: the way out when the central service files the current log
        under another kiosk (this kiosk was re-provisioned) or holds events of it this
        database does not (it was restored from a backup). The events and their local
        chain are not touched; each moved event gets its link in the new log's chain.
        Audited (``new_log``)."""
        why = one_line(reason, "a reason")
        at = self._now() if at_utc is None else iso_utc(as_utc(at_utc, "at_utc"))
        log_id = str(uuid.uuid4())
        with self._writing("starting a new log"):
            segments = [
                _segment(row)
                for row in self._all(f"SELECT {_SEGMENT_COLUMNS} FROM log_segments ORDER BY id")
            ]
            previous, previous_first = (
                (segments[-1].log_id, segments[-1].first_seq) if segments else (self._log_id, 1)
            )
            (first_open,) = self._one("SELECT min(seq) FROM events WHERE acked_utc IS NULL")
            if first_open is None:
                (last,) = self._one("SELECT coalesce(max(seq), 0) FROM events")
                first_open = int(last) + 1
            first = max(int(first_open), previous_first)
            self._db.execute(
                f"INSERT INTO log_segments ({_SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                [log_id, first, previous, first - previous_first, why, at],
            )
            link = chain.genesis(log_id)
            cursor = self._conn.execute(
                f"SELECT {_CHAINED_COLUMNS} FROM events WHERE seq >= ? ORDER BY seq", [first]
            )
            for row in cursor.fetchall():
                fields, _ = _chained_row(row, log_id)
                link = chain.link(link, fields._replace(seq=int(fields.seq) - first + 1))
                self._db.execute(
                    "INSERT INTO wire_links (log_id, seq, chain) VALUES (?, ?, ?)",
                    [log_id, int(fields.seq), link],
                )
            moved = self._db.execute(
                "DELETE FROM parked WHERE event_id IN (SELECT event_id FROM events WHERE seq >= ?)",
                [first],
            ).rowcount
            segment = LogSegment(
                log_id, first, previous, first - previous_first, why, parse_utc(at)
            )
            detail = segment.describe()
            if moved:
                detail += f"; {moved} parked event{'' if moved == 1 else 's'} back in the outbox"
            self._audit_kiosk("new_log", detail)
        return segment
