"""What the person at the kiosk sees and hears after a pass, behind one small interface.

``LogFeedback`` writes the greeting to the log (the journal, on a Pi); the screen, LEDs
and buzzer come with the Raspberry Pi issue as further implementations.
``RecordingFeedback`` is the fake the tests use, shipped as real code. Feedback is given
only after the event is committed, so what a person is told is always on record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

log = logging.getLogger("clockface.kiosk")


@dataclass(frozen=True, slots=True)
class Greeting:
    """An acknowledged pass: who, which way, and when in the kiosk's local time."""

    name: str
    direction: str
    local_time: datetime

    @property
    def text(self) -> str:
        hour = self.local_time.hour
        hello = "Good morning" if hour < 12 else "Good afternoon" if hour < 18 else "Good evening"
        if self.direction == "out":
            hello = "Goodbye"
        return f"{hello}, {self.name}, {self.direction} at {self.local_time:%H:%M}"


class Feedback(Protocol):
    def greet(self, greeting: Greeting) -> None:
        """A pass was logged."""

    def problem(self, message: str) -> None:
        """Something needs an operator (a dead camera, a full disk)."""


class LogFeedback:
    """Greetings and problems to the log."""

    def greet(self, greeting: Greeting) -> None:
        log.info("%s", greeting.text)

    def problem(self, message: str) -> None:
        log.error("%s", message)


@dataclass
class RecordingFeedback:
    """Remembers what it was told: the fake for tests."""

    greetings: list[Greeting] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def greet(self, greeting: Greeting) -> None:
        self.greetings.append(greeting)

    def problem(self, message: str) -> None:
        self.problems.append(message)
