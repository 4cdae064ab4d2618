"""The messages the page shows for a few seconds (greetings, "not recognised", problems),
handed from the frame loop to every open page at once.

The frame loop :meth:`Feed.post`s a message and returns at once; each page's
Server-Sent Events connection waits in :meth:`Feed.wait` and is woken by the post, so a
greeting reaches the screen within milliseconds, not at the next poll. A page that
connects (or reconnects) while a message is still on show gets it too, with the time it
has left.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    """One thing to show: ``kind`` names the SSE event, ``data`` is its JSON payload."""

    id: int
    kind: str
    data: Mapping[str, Any]
    posted: float  # on the feed's clock (monotonic seconds)
    shown_for: float  # seconds

    def remaining(self, now: float) -> float:
        """Seconds it is still on show at ``now`` (0: over)."""
        return max(0.0, self.posted + self.shown_for - now)


class Feed:
    """The last ``keep`` messages, and a condition that wakes every waiting reader."""

    def __init__(self, *, keep: int = 16, clock: Callable[[], float] = time.monotonic) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        self._clock = clock
        self._messages: deque[Message] = deque(maxlen=keep)
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._closed = False
        self.boot = secrets.token_hex(4)
        """Names this feed in event ids: a page that reconnects to a restarted kiosk
        gives an id of the old one, and is sent everything on show."""

    @property
    def closed(self) -> bool:
        return self._closed

    def now(self) -> float:
        """The feed's clock, on which messages are posted and age."""
        return self._clock()

    def post(self, kind: str, data: Mapping[str, Any], *, shown_for: float) -> Message:
        """Add a message and wake every reader; never blocks for long."""
        with self._changed:
            message = Message(next(self._ids), kind, dict(data), self._clock(), shown_for)
            self._messages.append(message)
            self._changed.notify_all()
        return message

    def showing(self, after: int = 0) -> list[Message]:
        """The messages after id ``after`` that are still on show, oldest first."""
        now = self._clock()
        with self._changed:
            return [m for m in self._messages if m.id > after and m.remaining(now) > 0]

    def wait(self, after: int, timeout: float) -> list[Message]:
        """Messages after id ``after`` still on show, waiting up to ``timeout`` seconds
        for one; empty when the time ran out or the feed was closed. (The timeout is
        real time; the feed's clock only ages the messages.)"""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._closed:
                found = self.showing(after)
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        return []

    def close(self) -> None:
        """Wake every reader for the last time: the kiosk is stopping."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
