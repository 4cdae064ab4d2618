"""How the kiosk is doing, as the page's status line shows it: camera and frames per
second, the sync backlog, the last event.

:class:`LoopWatch` sits between the frame loop and its heartbeat (systemd's watchdog,
the status file): it counts frames and, every few seconds and after each event, asks
the store for the sync backlog, all on the loop's own thread (one count query, no
second database connection). :class:`ScreenStatus` keeps what it learns behind a lock
for the web server's threads, which read it as JSON.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from clockface.errors import ClockfaceError
from hardware.watchdog import Heartbeat

log = logging.getLogger("clockface.screen")

FRAME_LATE = 3.0
"""Seconds without a frame after which the page says the camera gives none."""


class ScreenStatus:
    """What the status line shows; written by the loop's thread, read by the server's."""

    def __init__(
        self,
        *,
        zone: tzinfo = UTC,
        preview: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.zone = zone
        self.preview = preview
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._state = "starting"
        self._fps: float | None = None
        self._last_frame: float | None = None
        self._backlog: int | None = None
        self._last_event: datetime | None = None
        self._problem: str | None = None
        self._warning: str | None = None

    def set_state(self, state: str) -> None:
        with self._lock:
            self._state = state

    def frame(self, fps: float | None) -> None:
        """A frame was handled now; ``fps`` is the latest measured rate, if any."""
        with self._lock:
            self._last_frame = self._clock()
            if fps is not None:
                self._fps = fps

    def backlog(self, events: int) -> None:
        with self._lock:
            self._backlog = events

    def event(self, utc: datetime) -> None:
        with self._lock:
            if self._last_event is None or utc >= self._last_event:
                self._last_event = utc

    def problem(self, message: str) -> None:
        with self._lock:
            self._problem = message

    def warn(self, message: str | None) -> None:
        """A lasting condition (no face seen for minutes), or None once it has passed."""
        with self._lock:
            self._warning = message

    def as_json(self) -> dict[str, Any]:
        """The status as the page reads it from ``/status.json``."""
        now = self._clock()
        with self._lock:
            age = None if self._last_frame is None else max(0.0, now - self._last_frame)
            running = self._state == "running"
            camera_ok = running and age is not None and age < FRAME_LATE
            last = self._last_event
            return {
                "state": "problem" if self._problem and running else self._state,
                "camera": {
                    "ok": camera_ok,
                    "fps": None if self._fps is None else round(self._fps, 1),
                    "last_frame_age_s": None if age is None else round(age, 1),
                },
                "sync_backlog": self._backlog,
                "last_event_utc": None if last is None else _iso(last),
                "last_event_local": None if last is None else self._local(last),
                "problem": self._problem,
                "warning": self._warning,
                "timezone": getattr(self.zone, "key", None) or "UTC",
                "preview": self.preview,
            }

    def _local(self, moment: datetime) -> str:
        """``08:57`` today in the kiosk's zone, ``Mon 21 Nov 17:30`` another day."""
        local = moment.astimezone(self.zone)
        if local.date() == self._wall().astimezone(self.zone).date():
            return f"{local:%H:%M}"
        return f"{local:%a %d %b %H:%M}"


class LoopWatch:
    """A :class:`~hardware.watchdog.Heartbeat` that tells :class:`ScreenStatus` about
    the loop, then passes every call on to the loop's own heartbeat (``inner``).

    ``backlog`` (the store's) is asked at ``ready()``, every ``every`` seconds, and on
    the frame after an event; an error from it is logged once and the last count kept.
    """

    def __init__(
        self,
        status: ScreenStatus,
        inner: Heartbeat | None = None,
        *,
        backlog: Callable[[], int] | None = None,
        every: float = 5.0,
        fps_window: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.status = status
        self.inner = inner
        self._backlog = backlog
        self._every = every
        self._fps_window = fps_window
        self._clock = clock
        self._window_start = clock()
        self._window_frames = 0
        self._last_count = -float("inf")
        self._count_due = True
        self._failing = False

    def event_committed(self) -> None:
        """An event was written: the backlog grew; count it on the next frame."""
        self._count_due = True

    def ready(self) -> None:
        self._window_start = self._clock()
        self.status.set_state("running")
        self._count()
        if self.inner is not None:
            self.inner.ready()

    def alive(self) -> None:
        now = self._clock()
        self._window_frames += 1
        elapsed = now - self._window_start
        fps = None
        if elapsed >= self._fps_window:
            fps = self._window_frames / elapsed
            self._window_start, self._window_frames = now, 0
        self.status.frame(fps)
        if self._count_due or now - self._last_count >= self._every:
            self._count()
        if self.inner is not None:
            self.inner.alive()

    def stopping(self) -> None:
        self.status.set_state("stopped")
        if self.inner is not None:
            self.inner.stopping()

    def warn(self, message: str | None) -> None:
        self.status.warn(message)
        if self.inner is not None:
            self.inner.warn(message)

    def _count(self) -> None:
        self._count_due = False
        self._last_count = self._clock()
        if self._backlog is None:
            return
        try:
            events = self._backlog()
        except ClockfaceError as err:  # a busy database must not stop the loop
            if not self._failing:
                log.warning("screen: cannot count the sync backlog: %s", err)
            self._failing = True
            return
        self._failing = False
        self.status.backlog(events)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
