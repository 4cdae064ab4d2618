"""The kiosk's sync agent: events up, roster down, whatever fails in between.

One round (:meth:`SyncAgent.run_once`):

1. **Push.** The outbox (``KioskStore.pending``: unacknowledged, not parked), oldest
   first, in batches of ``batch_size``, ``POST /v1/events``. Only once the answer is in
   are the events it reports ``accepted`` or ``duplicate`` marked acknowledged; a
   ``conflict`` is parked with the reason. Nothing is marked on any failure, so a batch
   whose answer was lost is sent again and comes back ``duplicate``: every event reaches
   the service once, and is acknowledged once.
2. **Pull.** ``GET /v1/gallery?since=<version held>`` page by page until ``more`` is
   false, then ``KioskStore.apply_gallery`` once (one transaction), then
   ``POST /v1/gallery/applied`` with the new version: the kiosk's erasure receipt.

Failures:

- network errors, 5xx, 408, 429: the same request again after
  ``uniform(0, min(cap, base * 2**n))`` seconds (full jitter; n counts the failures of
  that request), at least the ``Retry-After`` the service sent; up to ``attempts`` tries
  (None: until stopped, as ``sync run`` does);
- 413: the batch is halved and sent again (and later batches stay that small);
- another 4xx for a batch of several events: the batch is split in two and each half
  sent on its own, down to the events the service refuses alone, which are parked;
- 401 / 403, an answer the protocol does not allow, a store error: the round stops, the
  error is recorded for ``sync status``; nothing is parked.

:meth:`SyncAgent.run` repeats rounds until a ``threading.Event`` is set: ``interval``
seconds after a success, a growing jittered backoff after a failure. It stops between
requests, never between an answer and its acknowledgement.

Each event goes up with its ``chain`` and the kiosk id it was chained with
(:mod:`clockface.chain`), so the service can check the log was not changed on the way.

Logs carry counts, seqs and event ids; never tokens, names or templates.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import httpx
import pydantic

from clockface.errors import (
    ClockfaceError,
    StoreError,
    SyncError,
    SyncProtocolError,
    SyncRefusedError,
    SyncTooLargeError,
    SyncUnavailableError,
)
from kiosk.store import Event, GalleryUpdate, KioskStore, WireIdentity
from sync.client import CentralClient
from sync.protocol import (
    MAX_BATCH_EVENTS,
    MAX_GALLERY_PAGE,
    EventBatch,
    EventResult,
    GalleryDelta,
    IngestResponse,
    LogStart,
    WireEvent,
    margin_to_wire,
)
from sync.roster_delta import plan_gallery

log = logging.getLogger("clockface.sync")

T = TypeVar("T")

DEFAULT_BATCH_SIZE = 500
DEFAULT_INTERVAL_S = 10.0
ONCE_ATTEMPTS = 3  # tries per request in `sync once`
_MAX_EXPONENT = 62  # 2**n stays a float well inside range


class _Stopped(Exception):
    """The stop event was set while waiting to try again."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: the n-th retry (n = 0, 1, ...) waits
    ``uniform(0, min(cap, base * 2**n))`` seconds, and at least ``retry_after``, but
    never more than ``cap``: a service asking for days (or the year 9999) is retried
    after ``cap`` seconds, not never (and a wait that long would overflow the sleep)."""

    base: float = 1.0
    cap: float = 300.0
    rng: random.Random = field(default_factory=random.Random)

    def bound(self, failures: int) -> float:
        return min(self.cap, self.base * 2.0 ** min(max(failures, 0), _MAX_EXPONENT))

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        wait = self.rng.uniform(0.0, self.bound(failures))
        return wait if retry_after is None else max(wait, min(retry_after, self.cap))


@dataclass
class PushReport:
    """What one push did: events sent (counting each once), acknowledged (of which the
    service already held ``duplicates``), parked, and the requests it took."""

    sent: int = 0
    acked: int = 0
    duplicates: int = 0
    parked: int = 0
    requests: int = 0


@dataclass(frozen=True)
class PullReport:
    """The roster version now held, what applying it changed, and whether the service
    was told (it is told only when the version moved past what it last heard)."""

    version: int
    update: GalleryUpdate
    pages: int
    confirmed: bool


@dataclass(frozen=True)
class RoundReport:
    push: PushReport
    pull: PullReport | None  # None: stopped before the pull

    def summary(self) -> str:
        push = self.push
        words = [
            f"sent {push.sent} event{'' if push.sent == 1 else 's'}: {push.acked} acknowledged"
            + (f" ({push.duplicates} already held)" if push.duplicates else "")
            + (f", {push.parked} parked" if push.parked else "")
        ]
        if self.pull is not None:
            update = self.pull.update
            changes = f"{update.added} added, {update.replaced} updated, {update.erased} erased" + (
                f", {update.dropped} not in the central roster" if update.dropped else ""
            )
            words.append(f"roster version {self.pull.version} ({changes})")
        return "; ".join(words)


def to_wire(event: Event, log: str | WireIdentity) -> WireEvent:
    """An event of the store as the protocol sends it, under the kiosk's first log
    (``log`` its id) or as :meth:`KioskStore.wire_identities` says (raises pydantic's
    ValidationError for one the protocol cannot carry)."""
    identity = WireIdentity(log, event.seq, event.chain) if isinstance(log, str) else log
    starts = identity.starts
    return WireEvent(
        event_id=uuid.UUID(event.event_id),
        log_id=identity.log_id,
        seq=identity.seq,
        person_id=event.person_id,
        direction=event.direction,
        utc=event.utc,
        tz=event.tz,
        distance=event.distance,
        margin=margin_to_wire(event.margin),
        frames=event.frames,
        software_version=event.software_version,
        clock_synced=event.clock_synced,
        kiosk_id=event.kiosk_id,
        chain=identity.chain,
        log_start=None
        if starts is None
        else LogStart(
            previous_log_id=starts.previous_log_id,
            previous_seq=starts.previous_seq,
            reason=starts.reason,
        ),
    )


def _first_problem(err: Exception) -> str:
    if isinstance(err, pydantic.ValidationError) and err.error_count():
        first = err.errors()[0]
        location = ".".join(str(part) for part in first.get("loc", ()))
        return f"{location}: {first.get('msg', 'invalid')}" if location else first["msg"]
    return " ".join(str(err).split()) or type(err).__name__


class SyncAgent:
    """Syncs one kiosk store with the central service at ``server``.

    ``http`` is the transport (an ``httpx.Client``; its timeout is the caller's choice).
    ``attempts`` is how many times one request is tried before the round fails (None:
    until ``stop`` is set). ``sleep`` waits between tries (default: ``stop.wait`` when a
    stop event is given, else ``time.sleep``); ``clock`` is the time put on batches and
    acknowledgements. Both are injectable so tests run instantly and deterministically.
    """

    def __init__(
        self,
        store: KioskStore,
        http: httpx.Client,
        *,
        server: str,
        token: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        page_size: int = MAX_GALLERY_PAGE,
        backoff: Backoff | None = None,
        attempts: int | None = ONCE_ATTEMPTS,
        stop: threading.Event | None = None,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_EVENTS}, not {batch_size}")
        if not 1 <= page_size <= MAX_GALLERY_PAGE:
            raise ValueError(f"page_size must be 1 to {MAX_GALLERY_PAGE}, not {page_size}")
        if attempts is not None and attempts < 1:
            raise ValueError(f"attempts must be at least 1 (or None), not {attempts}")
        self._store = store
        self._clock = clock or (lambda: datetime.now(UTC))
        self._client = CentralClient(http, server, token, clock=self._clock)
        self._server = self._client.server
        self._batch_size = batch_size
        self._page_size = page_size
        self._backoff = backoff or Backoff()
        self._attempts = attempts
        self._stop = stop or threading.Event()
        self._log_checked = False
        if sleep is not None:
            self._sleep: Callable[[float], object] = sleep
        elif stop is not None:
            self._sleep = stop.wait
        else:
            self._sleep = time.sleep

    @property
    def server(self) -> str:
        return self._server

    @property
    def batch_size(self) -> int:
        """The batch size now (smaller than configured after a 413)."""
        return self._batch_size

    # ----------------------------------------------------------------- rounds
    def run_once(self) -> RoundReport:
        """One push of everything pending, then one pull. Records the outcome in the
        store (``sync status``) and raises a SyncError / StoreError if the round failed."""
        try:
            self._check_attachment()
            push = self.push()
            pull = None if self._stop.is_set() else self.pull()
        except ClockfaceError as err:
            self._note_error(str(err))
            raise
        self._store.record_sync_success(self._clock())
        return RoundReport(push, pull)

    def run(self, *, interval: float = DEFAULT_INTERVAL_S) -> None:
        """Rounds until the stop event is set: ``interval`` seconds after a success, a
        jittered backoff that grows with each failed round after a failure."""
        failures = 0
        while not self._stop.is_set():
            try:
                report = self.run_once()
            except _Stopped:
                break
            except ClockfaceError as err:
                wait = self._backoff.delay(failures)
                failures += 1
                log.error("sync failed: %s; next round in %.1f s", err, wait)
            else:
                failures = 0
                wait = interval
                if report.push.sent or (report.pull is not None and report.pull.update.changed):
                    log.info("%s", report.summary())
            if self._stop.is_set():
                break
            self._sleep(wait)
        log.info("sync stopped")

    def stop(self) -> None:
        self._stop.set()

    # ----------------------------------------------------------------- push
    def push(self) -> PushReport:
        """Send the whole outbox (as it is when each batch is read); see the module doc."""
        report = PushReport()
        if not self._log_checked:
            self._check_log(report)
        handled: set[str] = set()
        while not self._stop.is_set():
            events = self._store.pending(self._batch_size)
            if not events:
                break
            if any(event.event_id in handled for event in events):
                # Every event sent is acknowledged or parked: one still pending means the
                # answers make no progress. Stop rather than send it forever.
                raise SyncProtocolError(
                    "events sent in this round are still pending after the central "
                    "service's answer; stopping this round"
                )
            handled.update(event.event_id for event in events)
            wire: list[WireEvent] = []
            unsendable: dict[str, str] = {}
            for event, identity in zip(events, self._store.wire_identities(events), strict=True):
                try:
                    wire.append(to_wire(event, identity))
                except (pydantic.ValidationError, ValueError) as err:
                    unsendable[event.event_id] = f"cannot be sent: {_first_problem(err)}"
            if unsendable:
                report.parked += self._store.park(unsendable, self._clock())
                log.warning("parked %d events the protocol cannot carry", len(unsendable))
            report.sent += len(wire)
            if wire:
                self._send(wire, report)
        return report

    def _send(self, wire: Sequence[WireEvent], report: PushReport) -> None:
        """One batch, split in two on 413 (for good) or on a refusal (to find the bad
        events); a single refused event is parked."""
        try:
            answer = self._retrying(
                lambda: self._client.push_events(
                    EventBatch(sent_utc=self._clock(), events=list(wire))
                ),
                report,
            )
        except SyncTooLargeError as err:
            if len(wire) == 1:
                raise SyncError(
                    f"event seq {wire[0].seq} alone is refused as too large: {err}"
                ) from err
            half = (len(wire) + 1) // 2
            self._batch_size = min(self._batch_size, half)
            log.warning("batch too large (413): sending %d events at a time", half)
            self._send(wire[:half], report)
            self._send(wire[half:], report)
            return
        except SyncRefusedError as err:
            if len(wire) == 1:
                reason = f"refused by the central service ({err.status}): {err}"
                report.parked += self._store.park({str(wire[0].event_id): reason}, self._clock())
                log.warning("parked event seq %d (%s): %s", wire[0].seq, wire[0].event_id, err)
                return
            half = (len(wire) + 1) // 2
            log.warning("batch of %d refused (%d): splitting it", len(wire), err.status)
            self._send(wire[:half], report)
            self._send(wire[half:], report)
            return
        self._settle(wire, answer.results, report)
        self._check_high_water({w.log_id for w in wire}, answer.high_water_seq)
        self._store.record_clock_skew(answer.clock_skew_seconds, answer.clock_flagged)
        if answer.clock_flagged:
            log.warning(
                "the central service flags this kiosk's clock: %+.1f s from its own",
                -answer.clock_skew_seconds,
            )

    def _settle(
        self, wire: Sequence[WireEvent], results: Sequence[EventResult], report: PushReport
    ) -> None:
        """Acknowledge what the answer says the service holds, park the conflicts."""
        statuses = {str(result.event_id): result.status for result in results}
        sent = [str(w.event_id) for w in wire]
        if len(results) != len(sent) or set(statuses) != set(sent):
            raise SyncProtocolError(
                f"the central service answered for other events than the {len(sent)} sent; "
                "nothing was marked"
            )
        held = [e for e in sent if statuses[e] in ("accepted", "duplicate")]
        conflicts = [e for e in sent if statuses[e] == "conflict"]
        if held:
            self._store.mark_acked(held, self._clock())
        if conflicts:
            reason = (
                "conflict: the central service holds a different event under this event id or seq"
            )
            report.parked += self._store.park(dict.fromkeys(conflicts, reason), self._clock())
            log.warning("parked %d conflicting events, first %s", len(conflicts), conflicts[0])
            self._log_checked = False  # ask the service about the log again next round
        report.acked += len(held)
        report.duplicates += sum(1 for e in held if statuses[e] == "duplicate")

    def _check_high_water(self, sent: set[str], high_water: dict[str, int]) -> None:
        for log_id in sorted(sent):
            if log_id not in high_water:
                log.warning("the central service's answer has no high-water seq for log %s", log_id)
                continue
            through = self._store.acked_through(log_id)
            if high_water[log_id] < through:
                log.warning(
                    "the central service holds this kiosk's events only up to seq %d, yet "
                    "acknowledged every one up to seq %d: it may have lost events after %d",
                    high_water[log_id],
                    through,
                    high_water[log_id],
                )

    # ----------------------------------------------------------------- the log itself
    def _check_log(self, report: PushReport) -> None:
        """Before this agent first sends events, and after a round with conflicts: ask
        the service how it holds the current log. If it files the log under another
        kiosk (this kiosk was re-provisioned: revoked, then added again under a new
        name), or holds an event there this database does not (it was restored from a
        backup), the events not yet acknowledged move to a new log that names the old
        one (:meth:`KioskStore.start_log`), so each reaches the service once and no
        chain reads as broken. A service too old to answer is sent to as before."""
        if not self._store.backlog() and not self._store.parked_count():
            return  # nothing to send: asked when there is
        log_id, _ = self._store.current_log()
        try:
            state = self._retrying(partial(self._client.log_state, log_id), report)
        except SyncRefusedError as err:
            if err.status not in (404, 405):
                raise
            log.info("the central service does not report its logs (an older version): %s", err)
            self._log_checked = True
            return
        reason = None
        if state.owner == "another kiosk":
            reason = f"re-provisioned: the central service files log {log_id} under another kiosk"
        elif state.owner == "you" and state.high_water_seq:
            held = state.high_water_seq
            mine = self._store.event_at(log_id, held)
            if mine is None or uuid.UUID(mine.event_id) != state.event_id_at_high_water:
                self._acknowledge_held(log_id, held, report)
                reason = (
                    f"restored from a backup: the central service holds seq {held} of log "
                    f"{log_id}, and this database "
                    + ("does not" if mine is None else "holds another event there")
                )
        if reason is not None:
            segment = self._store.start_log(reason, self._clock())
            log.warning("new log: %s", segment.describe())
        self._log_checked = True

    def _push_batch(self, events: list[WireEvent]) -> IngestResponse:
        return self._client.push_events(EventBatch(sent_utc=self._clock(), events=events))

    def _acknowledge_held(self, log_id: str, held: int, report: PushReport) -> None:
        """Send the pending events of ``log_id`` up to seq ``held`` (the service holds
        every seq there, so each is a duplicate or a conflict): acknowledge the
        duplicates, stop at the first conflict. Nothing is parked."""
        while not self._stop.is_set():
            events = self._store.pending(self._batch_size)
            batch: list[WireEvent] = []
            for event, identity in zip(events, self._store.wire_identities(events), strict=True):
                if identity.log_id != log_id or identity.seq > held:
                    break
                batch.append(to_wire(event, identity))
            if not batch:
                return
            answer = self._retrying(partial(self._push_batch, batch), report)
            statuses = {str(r.event_id): r.status for r in answer.results}
            sent = [str(w.event_id) for w in batch]
            if set(statuses) != set(sent):
                raise SyncProtocolError(
                    f"the central service answered for other events than the {len(sent)} "
                    "sent; nothing was marked"
                )
            held_ids = []
            for event_id in sent:
                if statuses[event_id] == "conflict":
                    break
                held_ids.append(event_id)
            if held_ids:
                self._store.mark_acked(held_ids, self._clock())
                report.acked += len(held_ids)
                report.duplicates += len(held_ids)
            if len(held_ids) < len(sent):
                return

    # ----------------------------------------------------------------- pull
    def pull(self) -> PullReport:
        """Fetch every page of roster changes, apply them at once, confirm the version."""
        state = self._store.sync_state()
        since = state.gallery_version
        pages: list[GalleryDelta] = []
        scratch = PushReport()  # request counts of the pull are not reported
        while True:
            asked = since
            try:
                page = self._retrying(
                    partial(self._client.fetch_gallery, asked, self._page_size), scratch
                )
            except SyncRefusedError as err:
                if err.status != 409 or asked == 0 or pages:
                    raise
                # This kiosk holds a roster version the service has never reached (its
                # database was restored from a backup, or replaced): take the whole roster.
                log.warning(
                    "the central service is behind this kiosk's roster version %d: "
                    "fetching its whole roster again",
                    asked,
                )
                since = 0
                continue
            if page.since != asked:
                raise SyncProtocolError(
                    f"asked for roster changes after version {asked}, got them after {page.since}"
                )
            pages.append(page)
            if not page.more:
                break
            if page.version <= asked:
                raise SyncProtocolError(
                    f"the central service says more roster changes follow version {asked} "
                    "but gave none"
                )
            since = page.version
            if self._stop.is_set():
                raise _Stopped
        update = self._store.apply_gallery(plan_gallery(pages), central_url=self._server)
        confirmed = False
        if update.version > state.confirmed_version or state.central_url is None:
            self._retrying(lambda: self._client.confirm_gallery(update.version), scratch)
            self._store.confirm_gallery(update.version)
            confirmed = True
        if update.changed:
            log.info(
                "roster version %d applied: %d added, %d updated, %d erased, %d dropped",
                update.version,
                update.added,
                update.replaced,
                update.erased,
                update.dropped,
            )
        return PullReport(update.version, update, len(pages), confirmed)

    # ----------------------------------------------------------------- internals
    def _check_attachment(self) -> None:
        attached = self._store.managed_by()
        if attached is not None and attached != self._server:
            raise SyncError(
                f"this kiosk is attached to the central service at {attached}, but is "
                f"configured for {self._server}: fix server, or run `clockface sync detach` "
                "to move it"
            )

    def _retrying(self, call: Callable[[], T], report: PushReport) -> T:
        """``call()`` until it works, backing off while the service is unavailable."""
        failures = 0
        while True:
            if self._stop.is_set():
                raise _Stopped
            report.requests += 1
            try:
                return call()
            except SyncUnavailableError as err:
                failures += 1
                self._note_error(str(err))
                if self._attempts is not None and failures >= self._attempts:
                    raise
                wait = self._backoff.delay(failures - 1, err.retry_after)
                if err.retry_after is not None and err.retry_after > wait:
                    log.warning(
                        "the central service asked to wait %.0f s before trying again; "
                        "waiting %.0f s, the longest backoff",
                        err.retry_after,
                        wait,
                    )
                log.warning("%s; trying again in %.1f s", err, wait)
                self._sleep(wait)

    def _note_error(self, message: str) -> None:
        try:
            self._store.record_sync_error(message, self._clock())
        except StoreError as err:  # the store is failing too: say so, keep the first error
            log.error("cannot record the sync error: %s", err)


# --------------------------------------------------------------------- status
def ago(then: datetime, now: datetime) -> str:
    """``then`` in words relative to ``now``: "just now", "3 minutes ago", "2 days ago"."""
    seconds = (now - then).total_seconds()
    if seconds < -5:
        return "in the future (the clock was turned back?)"
    if seconds < 5:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"  # pragma: no cover - every positive number matched above


def _when(moment: datetime, now: datetime) -> str:
    return f"{ago(moment, now)} ({moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)"


def status_lines(store: KioskStore, now: datetime, *, clock: str | None = None) -> list[str]:
    """What ``clockface sync status`` prints: plain sentences, one per line.

    ``clock`` is the kiosk clock's state (``hardware.clock.clock_state()``), if known.
    """
    state = store.sync_state()
    backlog = store.backlog()
    parked = store.parked(limit=5)
    parked_count = store.parked_count()
    lines = []
    if parked_count:  # first: these events are not delivered, whatever follows
        lines.append(
            f"NOT DELIVERED: {parked_count} event{'' if parked_count == 1 else 's'} parked "
            "(refused by the central service): see parked, below"
        )
    if state.central_url is None:
        lines.append(
            "central service: none attached; the roster is managed here (clockface enroll)"
        )
    else:
        attached = f", since {_when(state.attached_utc, now)}" if state.attached_utc else ""
        lines.append(f"central service: {state.central_url}: the roster is managed there{attached}")
        lines.append(
            f"roster: version {state.gallery_version} of the central service applied"
            + (
                ""
                if state.confirmed_version >= state.gallery_version
                else f" (the service still thinks {state.confirmed_version})"
            )
        )
    if backlog:
        oldest = store.pending(1)[0]
        lines.append(
            f"backlog: {backlog} event{'' if backlog == 1 else 's'} waiting to be sent, "
            f"the oldest recorded {ago(oldest.utc, now)}"
        )
    elif parked_count:
        lines.append("backlog: none waiting to be sent, but the parked events are not delivered")
    else:
        lines.append("backlog: none, every event is with the central service")
    if parked_count:
        lines.append(
            f"parked: {parked_count} event{'' if parked_count == 1 else 's'} refused by the "
            "central service, not sent again until `clockface sync retry-parked`:"
        )
        for item in parked:
            lines.append(
                f"  seq {item.event.seq} (event {item.event.event_id}), parked "
                f"{ago(item.parked_utc, now)}: {item.reason}"
            )
        if parked_count > len(parked):
            lines.append(f"  ... and {parked_count - len(parked)} more")
        if any(item.reason.startswith("conflict") for item in parked):
            lines.append(
                "  a conflict: if this kiosk was re-provisioned (revoked and added again) or "
                "its database restored from a backup, its next round moves these to a new "
                "log (see log, below); else the service holds other events under their ids"
            )
    segments = store.log_segments()
    if segments:
        lines.append(f"log: {segments[-1].log_id}, since this kiosk's seq {segments[-1].first_seq}")
        for segment in reversed(segments):
            lines.append(f"  {segment.describe()} ({_when(segment.started_utc, now)})")
    if state.last_success_utc is None:
        lines.append("last success: never")
    else:
        lines.append(f"last success: {_when(state.last_success_utc, now)}")
    if state.last_error_utc is None:
        lines.append("last error: none")
    else:
        resolved = (
            " (a success since)"
            if state.last_success_utc is not None and state.last_success_utc > state.last_error_utc
            else ""
        )
        lines.append(
            f"last error: {_when(state.last_error_utc, now)}{resolved}: {state.last_error}"
        )
    if clock is not None:
        words = {
            "synchronised": "synchronised",
            "unsynchronised": "NOT synchronised: events recorded now are marked",
            "unknown": "synchronisation unknown (cannot ask the kernel here)",
        }
        lines.append(f"clock: {words.get(clock, clock)}")
    if state.clock_skew_seconds is not None:
        skew = state.clock_skew_seconds
        side = "behind" if skew > 0 else "ahead of"
        flag = " (flagged by the service)" if state.clock_flagged else ""
        lines.append(f"clock skew: {abs(skew):.1f} s {side} the central service{flag}")
    return lines
