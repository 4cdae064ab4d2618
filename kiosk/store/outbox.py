"""The sync outbox: the events the central service has not acknowledged, and the parked
ones it refused."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from clockface.errors import (
    StoreValueError,
)
from clockface.values import (
    as_utc,
    check_text,
    iso_utc,
    one_line,
    parse_utc,
)
from kiosk.store.events import EventsMixin
from kiosk.store.records import ParkedEvent
from kiosk.store.rows import _EVENT_COLUMNS, _event, _segment_bounds


class OutboxMixin(EventsMixin):
    """What is left to send, what was acknowledged, what was parked."""

    def acked_through(self, log_id: str | None = None) -> int:
        """The highest seq of ``log_id`` (default: the current log) up to which every
        event sent under it is acknowledged (0: none yet).

        The central service's ``high_water_seq`` for that log should not be below it.
        """
        bounds = _segment_bounds(self._log_id, self.log_segments())
        log_id = self.current_log()[0] if log_id is None else log_id
        if log_id not in bounds:
            return 0
        first, end = bounds[log_id]
        top = "" if end is None else f" AND seq < {int(end)}"
        with self._reading("reading the outbox"):
            (first_open,) = self._one(
                f"SELECT min(seq) FROM events WHERE acked_utc IS NULL AND seq >= ?{top}", [first]
            )
            if first_open is not None:
                return int(first_open) - first
            (last,) = self._one(
                f"SELECT coalesce(max(seq), 0) FROM events WHERE seq >= ?{top}", [first]
            )
        return max(int(last) - first + 1, 0)

    def park(self, reasons: Mapping[str, str], at_utc: datetime | None = None) -> int:
        """Take events out of the outbox with the reason the central service gave.

        ``reasons`` maps event ids to one line each. Returns how many were newly parked:
        an event already parked keeps its first reason, an acknowledged one is skipped.
        An id this store does not hold refuses the whole call. The events themselves are
        not touched.
        """
        checked = {
            check_text(event_id, "an event id"): one_line(reason, "a reason")
            for event_id, reason in reasons.items()
        }
        at = self._now() if at_utc is None else iso_utc(as_utc(at_utc, "at_utc"))
        newly = 0
        with self._writing("parking events"):
            for event_id, reason in checked.items():
                row = self._all("SELECT acked_utc FROM events WHERE event_id = ?", [event_id])
                if not row:
                    raise StoreValueError(
                        f"event {event_id!r} is not in this store; nothing was parked"
                    )
                if row[0][0] is not None:
                    continue
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO parked (event_id, parked_utc, reason) VALUES (?, ?, ?)",
                    [event_id, at, reason],
                )
                newly += cursor.rowcount
        return newly

    def parked(self, limit: int | None = None) -> list[ParkedEvent]:
        """The parked events, by seq (the first ``limit`` of them, if given)."""
        sql = (
            f"SELECT {', '.join('e.' + c.strip() for c in _EVENT_COLUMNS.split(','))},"
            " p.parked_utc, p.reason FROM parked p JOIN events e ON e.event_id = p.event_id"
            " ORDER BY e.seq"
        )
        params: list[Any] = []
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise StoreValueError(f"limit must be a whole number of at least 1, not {limit!r}")
            sql += " LIMIT ?"
            params.append(limit)
        with self._reading("reading the parked events"):
            rows = self._all(sql, params)
        return [
            ParkedEvent(event=_event(row[:-2]), parked_utc=parse_utc(row[-2]), reason=row[-1])
            for row in rows
        ]

    def parked_count(self) -> int:
        with self._reading("reading the parked events"):
            (count,) = self._one("SELECT count(*) FROM parked")
        return int(count)

    def unpark(self, event_ids: Iterable[str] | None = None) -> int:
        """Put parked events (all of them, by default) back in the outbox; returns how
        many. Audited (``retry_parked``) when any were."""
        with self._writing("un-parking events"):
            if event_ids is None:
                count = int(self._db.execute("DELETE FROM parked").rowcount)
            else:
                count = 0
                for event_id in dict.fromkeys(event_ids):
                    cursor = self._db.execute("DELETE FROM parked WHERE event_id = ?", [event_id])
                    count += cursor.rowcount
            if count:
                self._audit_kiosk(
                    "retry_parked", f"{count} event{'' if count == 1 else 's'} back in the outbox"
                )
        return count
