"""The events kiosks send: :class:`IngestMixin` (ingest, the chain check, events and
kiosk logs read back) and the event rows it compares.

- **Ingest.** One transaction per batch; insert-or-ignore by event id (and by
  ``(log_id, seq)``), then each ignored event is told ``duplicate`` (the stored one is
  identical) or ``conflict`` (it differs, or another event holds its log+seq; nothing
  stored). Each kiosk log's ``contiguous_seq`` then advances as far as the seqs held
  are contiguous, and is the answer's ``high_water_seq``.
- **The chain** (:mod:`clockface.chain`). As a log's events become contiguous, each
  one's chain is recomputed from the one before it and compared with the chain the
  kiosk sent (from the batch itself, or read back when events came out of order). The
  first seq where it fails (``chain_break_seq``) and the first that came without a
  chain (``unchained_seq``) are kept in ``kiosk_logs``, a break is audited; neither
  stops ingest: the events are evidence. :meth:`IngestMixin.chain_logs` and
  ``KioskInfo.chain_state`` report it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from central.store_base import StoreBase
from central.store_records import LogChain, Principal, StoredEvent
from central.store_values import _known_name, _opt_int, _parse
from clockface import chain
from clockface.errors import CentralNotFoundError, CentralValueError
from clockface.values import as_utc, iso_utc
from sync.protocol import (
    EventBatch,
    EventResult,
    EventStatus,
    IngestResponse,
    LogState,
    WireEvent,
)

_SEQ_CHUNK = 1000


class IngestMixin(StoreBase):
    """Events in (``ingest``) and out (``events``), and the kiosk logs' chains."""

    def ingest(self, kiosk: Principal | str, batch: EventBatch) -> IngestResponse:
        """Store a kiosk's batch in one transaction; per-event status in the order sent.

        ``kiosk``: the authenticated kiosk (or its name, on the central host): the kiosk
        of every event, whatever the body says.
        """
        events, logs, kiosks = self._t["events"], self._t["kiosk_logs"], self._t["kiosks"]
        now_dt = as_utc(self._clock(), "the clock's time")
        now = iso_utc(now_dt)
        skew = (now_dt - batch.sent_utc).total_seconds()
        flagged = abs(skew) > self._skew_bound
        wire = batch.events
        for event in wire:
            if "\x00" in event.log_id + event.person_id + event.software_version + (
                event.kiosk_id or ""
            ):
                raise CentralValueError(
                    f"event {event.event_id}: text must not contain NUL characters; "
                    "nothing was stored"
                )
        with self._write("storing events") as conn:
            kiosk_id, kiosk_name = self._ingest_kiosk(conn, kiosk)
            log_ids = sorted({e.log_id for e in wire})
            ins = self._insert(logs).on_conflict_do_nothing()
            conn.execute(
                ins,
                [
                    {"log_id": log, "kiosk_id": kiosk_id, "contiguous_seq": 0, "max_seq": 0}
                    for log in log_ids
                ],
            )
            held = {
                r.log_id: r
                for r in conn.execute(
                    sa.select(logs)
                    .where(logs.c.log_id.in_(log_ids))
                    .order_by(logs.c.log_id)
                    .with_for_update()
                )
            }
            foreign = {log for log, r in held.items() if r.kiosk_id != kiosk_id}
            self._record_log_starts(conn, wire, held, foreign, kiosk_name, now)
            status: list[EventStatus | None] = [None] * len(wire)
            first_of: dict[uuid.UUID, int] = {}
            rows: list[dict[str, Any]] = []
            for i, event in enumerate(wire):
                if event.log_id in foreign:
                    status[i] = "conflict"
                elif event.event_id not in first_of:
                    first_of[event.event_id] = i
                    rows.append(_event_row(event, kiosk_id, now))
            inserted = self._insert_events(conn, rows)
            for event_id in inserted:
                status[first_of[event_id]] = "accepted"
            undecided = [i for i, s in enumerate(status) if s is None]
            if undecided:  # resent events, repeats within the batch, conflicts
                ids = list({wire[i].event_id for i in undecided})
                stored = {
                    r.event_id: _content(r)
                    for r in conn.execute(
                        sa.select(events).where(self._among(events.c.event_id, ids))
                    )
                }
                for i in undecided:
                    mine = _content(_event_row(wire[i], kiosk_id, now))
                    same = _same_event(stored.get(wire[i].event_id), mine)
                    status[i] = "duplicate" if same else "conflict"
            high_water: dict[str, int] = {}
            for log in log_ids:
                if log in foreign:
                    high_water[log] = 0
                    continue
                accepted = [
                    e.seq
                    for e, s in zip(wire, status, strict=True)
                    if e.log_id == log and s == "accepted"
                ]
                old = held[log]
                if old.max_seq == old.contiguous_seq:
                    # Nothing was held past the high water: the seqs after it are this
                    # batch's, no need to read them back.
                    contiguous = int(old.contiguous_seq)
                    for seq in sorted(accepted):
                        if seq != contiguous + 1:
                            break
                        contiguous += 1
                else:
                    contiguous = self._advance(conn, log, int(old.contiguous_seq))
                top = max([int(old.max_seq), contiguous, *accepted])
                values: dict[str, Any] = {"contiguous_seq": contiguous, "max_seq": top}
                if contiguous > old.chain_seq:
                    sent = {
                        row["seq"]: row
                        for row in rows
                        if row["log_id"] == log and row["event_id"] in inserted
                    }
                    values |= self._check_chain(conn, old, contiguous, sent, kiosk_name, now)
                conn.execute(sa.update(logs).where(logs.c.log_id == log).values(**values))
                high_water[log] = contiguous
            conn.execute(
                sa.update(kiosks)
                .where(kiosks.c.id == kiosk_id)
                .values(last_seen_utc=now, clock_skew_seconds=skew, clock_flagged=flagged)
            )
            conflicts = [wire[i].event_id for i, s in enumerate(status) if s == "conflict"]
            if conflicts:
                self._audit(
                    conn,
                    "ingest",
                    "conflict",
                    kiosk_name,
                    f"{len(conflicts)} conflicting events refused, first {conflicts[0]}",
                    now,
                )
        return IngestResponse(
            results=[
                EventResult(event_id=e.event_id, status=s or "conflict")
                for e, s in zip(wire, status, strict=True)
            ],
            high_water_seq=high_water,
            clock_skew_seconds=skew,
            clock_flagged=flagged,
        )

    def _record_log_starts(
        self,
        conn: sa.Connection,
        wire: Sequence[WireEvent],
        held: Mapping[str, Any],
        foreign: set[str],
        kiosk_name: str,
        now: str,
    ) -> None:
        """Record, once, which log a kiosk's new log continues (from its seq 1's
        ``log_start``): audited as ``log_continued``, never as a break."""
        logs = self._t["kiosk_logs"]
        for event in wire:
            start = event.log_start
            if start is None or event.log_id in foreign:
                continue
            if held[event.log_id].previous_log_id is not None:
                continue
            if "\x00" in start.previous_log_id + start.reason:
                raise CentralValueError(
                    f"event {event.event_id}: text must not contain NUL characters; "
                    "nothing was stored"
                )
            done = conn.execute(
                sa.update(logs)
                .where(logs.c.log_id == event.log_id, logs.c.previous_log_id.is_(None))
                .values(
                    previous_log_id=start.previous_log_id,
                    previous_seq=start.previous_seq,
                    start_reason=start.reason,
                )
            )
            if done.rowcount:
                detail = (
                    f"log {event.log_id} continues log {start.previous_log_id} after seq "
                    f"{start.previous_seq}: {start.reason}"
                )
                self._audit(conn, "ingest", "log_continued", kiosk_name, detail, now)

    def log_state(self, kiosk: Principal | str, log_id: str) -> LogState:
        """How the service holds one log, for the kiosk asking (``GET /v1/logs/{id}``)."""
        logs, events = self._t["kiosk_logs"], self._t["events"]
        with self._read("reading a kiosk log") as conn:
            kiosk_id, _ = self._ingest_kiosk(conn, kiosk)
            row = conn.execute(sa.select(logs).where(logs.c.log_id == log_id)).first()
            if row is None:
                return LogState(
                    log_id=log_id, owner="none", high_water_seq=0, event_id_at_high_water=None
                )
            if row.kiosk_id != kiosk_id:
                return LogState(
                    log_id=log_id,
                    owner="another kiosk",
                    high_water_seq=0,
                    event_id_at_high_water=None,
                )
            seq = int(row.contiguous_seq)
            at = (
                conn.execute(
                    sa.select(events.c.event_id).where(
                        events.c.log_id == log_id, events.c.seq == seq
                    )
                ).scalar()
                if seq
                else None
            )
        return LogState(
            log_id=log_id,
            owner="you",
            high_water_seq=seq,
            event_id_at_high_water=None if at is None else uuid.UUID(str(at)),
        )

    def _check_chain(
        self,
        conn: sa.Connection,
        log: Any,
        through: int,
        sent: Mapping[int, Mapping[str, Any]],
        kiosk_name: str,
        now: str,
    ) -> dict[str, Any]:
        """Check the chain of the log's events after ``log.chain_seq`` up to ``through``
        (all held); returns the ``kiosk_logs`` values to set. The first break and the
        first unchained event are kept, a break audited too; neither stops ingest."""
        after = int(log.chain_seq)
        previous: str | None = chain.genesis(log.log_id) if after == 0 else log.chain_head
        broken = None if log.chain_break_seq is None else int(log.chain_break_seq)
        unchained = None if log.unchained_seq is None else int(log.unchained_seq)
        first_break: int | None = None
        first_unchained: int | None = None
        for seq, fields, claimed in self._chain_events(conn, log.log_id, after, through, sent):
            if claimed is None:
                if unchained is None and first_unchained is None:
                    first_unchained = seq
            elif previous is not None and broken is None and first_break is None:
                try:
                    expected = None if fields is None else chain.link(previous, fields)
                except ValueError:
                    expected = None
                if expected != claimed:
                    first_break = seq
            previous = claimed
        values: dict[str, Any] = {"chain_seq": through, "chain_head": previous}
        if first_unchained is not None:
            values["unchained_seq"] = first_unchained
        if first_break is not None:
            values["chain_break_seq"] = first_break
            detail = f"log {log.log_id}: the chain breaks at seq {first_break}"
            self._audit(conn, "ingest", "chain_break", kiosk_name, detail, now)
        return values

    def _chain_events(
        self,
        conn: sa.Connection,
        log_id: str,
        after: int,
        through: int,
        sent: Mapping[int, Mapping[str, Any]],
    ) -> Iterator[tuple[int, chain.EventFields | None, str | None]]:
        """The log's events after seq ``after`` up to ``through``, in seq order, as
        (seq, chained fields, chain sent): from the batch just sent when it holds them all
        (the usual case), else read back. Fields are None when they cannot be chained
        (no ``kiosk_id`` came with the chain)."""
        if sum(1 for seq in sent if after < seq <= through) == through - after:
            for seq in range(after + 1, through + 1):
                row = sent[seq]
                yield seq, _chained_fields(row), row["chain"]
            return
        events = self._t["events"]
        while after < through:
            rows = conn.execute(
                sa.select(events)
                .where(events.c.log_id == log_id, events.c.seq > after, events.c.seq <= through)
                .order_by(events.c.seq)
                .limit(_SEQ_CHUNK)
            ).all()
            for r in rows:
                yield int(r.seq), _chained_fields(r._mapping), r.chain
            if not rows:
                return
            after = int(rows[-1].seq)

    def _advance(self, conn: sa.Connection, log_id: str, contiguous: int) -> int:
        """The highest seq up to which every event of the log is held, from ``contiguous``."""
        events = self._t["events"]
        while True:
            seqs = conn.execute(
                sa.select(events.c.seq)
                .where(events.c.log_id == log_id, events.c.seq > contiguous)
                .order_by(events.c.seq)
                .limit(_SEQ_CHUNK)
            ).scalars()
            count = 0
            for seq in seqs:
                if seq != contiguous + 1:
                    return contiguous
                contiguous += 1
                count += 1
            if count < _SEQ_CHUNK:
                return contiguous

    def events(
        self,
        *,
        since_utc: datetime | None = None,
        until_utc: datetime | None = None,
        after: uuid.UUID | None = None,
        limit: int = 1000,
    ) -> tuple[list[StoredEvent], bool]:
        """Events with ``since_utc <= utc < until_utc`` in (utc, event id) order, at most
        ``limit``, and whether more follow. ``after``: continue after that event (the last
        of the previous page)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise CentralValueError(f"limit must be a whole number of at least 1, not {limit!r}")
        events, kiosks = self._t["events"], self._t["kiosks"]
        query = sa.select(events, kiosks.c.name.label("kiosk_name")).join(
            kiosks, kiosks.c.id == events.c.kiosk_id
        )
        if since_utc is not None:
            query = query.where(events.c.utc >= iso_utc(as_utc(since_utc, "since_utc")))
        if until_utc is not None:
            query = query.where(events.c.utc < iso_utc(as_utc(until_utc, "until_utc")))
        with self._read("reading events", snapshot=True) as conn:
            if after is not None:
                at = conn.execute(
                    sa.select(events.c.utc).where(events.c.event_id == after)
                ).scalar()
                if at is None:
                    raise CentralNotFoundError(f"no event {after}")
                query = query.where(
                    sa.or_(
                        events.c.utc > at, sa.and_(events.c.utc == at, events.c.event_id > after)
                    )
                )
            rows = conn.execute(
                query.order_by(events.c.utc, events.c.event_id).limit(limit + 1)
            ).all()
        found = [
            StoredEvent(
                event_id=r.event_id,
                kiosk=r.kiosk_name,
                log_id=r.log_id,
                seq=int(r.seq),
                person_id=r.person_id,
                direction=r.direction,
                utc=_parse(r.utc),
                tz=r.tz,
                distance=float(r.distance),
                margin=None if r.margin is None else float(r.margin),
                frames=int(r.frames),
                software_version=r.software_version,
                clock_synced=r.clock_synced,
                received_utc=_parse(r.received_utc),
                chain=r.chain,
                recorded_kiosk_id=r.recorded_kiosk_id,
            )
            for r in rows[:limit]
        ]
        return found, len(rows) > limit

    def chain_logs(self, kiosk: str | None = None) -> list[LogChain]:
        """Every kiosk log's chain state (of one kiosk, if named), by kiosk then log id.

        :attr:`KioskInfo.chain_state` sums it up per kiosk (``kiosks()``)."""
        logs, kiosks = self._t["kiosk_logs"], self._t["kiosks"]
        query = sa.select(logs, kiosks.c.name.label("kiosk_name")).join(
            kiosks, kiosks.c.id == logs.c.kiosk_id
        )
        with self._read("reading the kiosk logs") as conn:
            if kiosk is not None:
                kiosk = _known_name(kiosk, "kiosk")
                known = conn.execute(sa.select(kiosks.c.id).where(kiosks.c.name == kiosk)).first()
                if known is None:
                    raise CentralNotFoundError(f"no kiosk {kiosk!r}")
                query = query.where(kiosks.c.name == kiosk)
            rows = conn.execute(query.order_by(kiosks.c.name, logs.c.log_id)).all()
        return [
            LogChain(
                kiosk=r.kiosk_name,
                log_id=r.log_id,
                contiguous_seq=int(r.contiguous_seq),
                max_seq=int(r.max_seq),
                chain_seq=int(r.chain_seq),
                chain_break_seq=_opt_int(r.chain_break_seq),
                unchained_seq=_opt_int(r.unchained_seq),
                previous_log_id=r.previous_log_id,
                previous_seq=_opt_int(r.previous_seq),
                start_reason=r.start_reason,
            )
            for r in rows
        ]

    def event_count(self) -> int:
        with self._read("counting events") as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(self._t["events"])).scalar_one()
            )

    def _insert_events(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
        """Insert-or-ignore (by event id, and by log+seq); returns the ids inserted.

        PostgreSQL: one ``INSERT ... SELECT FROM jsonb_populate_recordset(...)``, the
        batch as one JSON parameter (a multi-row VALUES of 7,000 placeholders, or 14
        arrays, cost more to build in Python than the insert takes). SQLite: an
        executemany with RETURNING.
        """
        if not rows:
            return set()
        events = self._t["events"]
        if self.dialect == "postgresql":
            names = list(rows[0])
            document = json.dumps(rows, default=str, allow_nan=False)
            source = (
                sa.func.jsonb_populate_recordset(
                    sa.literal_column("NULL::events"),
                    sa.cast(sa.bindparam("batch", document), pg_dialect.JSONB),
                )
                .table_valued(*names)
                .alias("batch")
            )
            stmt = (
                pg_dialect.insert(events)
                .from_select(names, sa.select(*[source.c[name] for name in names]))
                .on_conflict_do_nothing()
                .returning(events.c.event_id)
            )
            return set(conn.execute(stmt).scalars())
        stmt = sqlite_dialect.insert(events).on_conflict_do_nothing().returning(events.c.event_id)
        return set(conn.execute(stmt, rows).scalars())

    def _among(self, column: sa.Column[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
        """``column IN values``; on PostgreSQL one array parameter (``= ANY``), which
        stays fast for a thousand values."""
        if self.dialect == "postgresql":
            array = sa.bindparam(None, list(values), type_=pg_dialect.ARRAY(column.type))
            return column == sa.any_(array)
        return column.in_(list(values))


def _chained_fields(row: Mapping[Any, Any]) -> chain.EventFields | None:
    """An event row (as inserted, or read back) as the chain covers it; None when it
    cannot be chained (no kiosk id came with it)."""
    kiosk_id = row["recorded_kiosk_id"]
    if kiosk_id is None:
        return None
    margin, synced = row["margin"], row["clock_synced"]
    return chain.EventFields(
        str(row["event_id"]),
        row["log_id"],
        int(row["seq"]),
        kiosk_id,
        row["person_id"],
        row["direction"],
        row["utc"],
        row["tz"],
        float(row["distance"]),
        None if margin is None else float(margin),
        int(row["frames"]),
        row["software_version"],
        None if synced is None else bool(synced),
    )


def _event_row(event: WireEvent, kiosk_id: int, received: str) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "kiosk_id": kiosk_id,
        "log_id": event.log_id,
        "seq": event.seq,
        "person_id": event.person_id,
        "direction": event.direction,
        "utc": iso_utc(event.utc),
        "tz": event.tz,
        "distance": event.distance,
        "margin": event.margin,
        "frames": event.frames,
        "software_version": event.software_version,
        "clock_synced": event.clock_synced,
        "received_utc": received,
        "chain": event.chain,
        "recorded_kiosk_id": event.kiosk_id,
    }


_CONTENT = (
    "kiosk_id",
    "log_id",
    "seq",
    "person_id",
    "direction",
    "utc",
    "tz",
    "distance",
    "margin",
    "frames",
    "software_version",
    "clock_synced",
    "chain",
    "recorded_kiosk_id",
)


def _same_event(stored: tuple[Any, ...] | None, sent: tuple[Any, ...]) -> bool:
    """Whether an event sent again is the one held: the same content, and the same chain
    unless the one held came without any (a kiosk upgraded to chaining between sending
    it and hearing the answer: the service keeps what it first got)."""
    if stored is None:
        return False
    if stored == sent:
        return True
    return stored[-2] is None and stored[:-2] == sent[:-2]


def _content(row: Any) -> tuple[Any, ...]:
    """What must be equal for a resent event to be a duplicate (all but received_utc;
    the chain fields last)."""
    mapping: Mapping[str, Any] = row if isinstance(row, dict) else row._mapping
    out = []
    for key in _CONTENT:
        value = mapping[key]
        if key in ("distance", "margin") and value is not None:
            value = float(value)
        elif key in ("seq", "kiosk_id", "frames"):
            value = int(value)
        elif key == "clock_synced" and value is not None:
            value = bool(value)
        out.append(value)
    return tuple(out)
