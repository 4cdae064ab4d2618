"""The attendance decision: is this pass an arrival, a departure, or nothing new?

- mode ``in`` or ``out``: a kiosk at an entrance or an exit logs every pass as that.
- mode ``auto``: one kiosk for both; a person's passes alternate in, out, in... within
  their local day (the kiosk's time zone), starting with ``in`` each day.
- ``cooldown``: a pass within this many seconds of the person's last event is the same
  visit (standing in front of the camera, walking back and forth) and logs nothing. In
  ``auto`` mode it is also the shortest time between an arrival and a departure.

Clocks that jump. A kiosk's wall clock can be wrong and then corrected (no network
time at boot, a dead RTC battery): an event may carry a time ahead of "now". So:

- while the kiosk runs, the gap since an event it logged itself is measured on a clock
  that never goes back (``elapsed``: the camera's monotonic frame times), and in
  ``auto`` mode the day of "now" is the event's day moved on by that gap;
- an event from before (another run, the database restored) dated after "now" is taken
  as long past: its cooldown has expired, and it is not "today".

Pure: the person's last event and the time in, a direction (or None) out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from clockface.events import Direction


class Mode(StrEnum):
    IN = "in"
    OUT = "out"
    AUTO = "auto"


class LastEvent(Protocol):
    """What the policy needs to know of a person's previous event."""

    @property
    def direction(self) -> str: ...

    @property
    def utc(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class AttendancePolicy:
    mode: Mode = Mode.AUTO
    cooldown: timedelta = timedelta(minutes=2)

    def __post_init__(self) -> None:
        if self.cooldown < timedelta(0):
            raise ValueError(f"cooldown must not be negative, not {self.cooldown}")

    def decide(
        self,
        last: LastEvent | None,
        now: datetime,
        tz: ZoneInfo,
        *,
        elapsed: float | None = None,
    ) -> Direction | None:
        """The direction of a new event for this pass, or None when it is the same visit.

        ``elapsed``: seconds since ``last`` on a clock that never goes back, when this
        running kiosk logged it; None when it did not (the wall clock then decides, and
        an event dated after ``now`` counts as long past).
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if elapsed is not None and not (math.isfinite(elapsed) and elapsed >= 0):
            raise ValueError(f"elapsed must be a finite number of seconds >= 0, not {elapsed!r}")
        if last is not None:
            if elapsed is not None:
                gap, now = timedelta(seconds=elapsed), last.utc + timedelta(seconds=elapsed)
            else:
                gap = now - last.utc
            if timedelta(0) <= gap < self.cooldown:
                return None
            if gap < timedelta(0):
                last = None  # dated in the future: long past, not today
        if self.mode is Mode.IN:
            return "in"
        if self.mode is Mode.OUT:
            return "out"
        if last is None or last.utc.astimezone(tz).date() != now.astimezone(tz).date():
            return "in"
        return "out" if last.direction == "in" else "in"
