"""What the person at the kiosk sees and hears after a pass, behind one small interface.

- ``LogFeedback`` writes each pass (person id, direction and time, never a name) to the
  log (the journal, on a Pi).
- ``GpioFeedback`` plays LED / buzzer patterns and pulses the door relay on "in"
  (``hardware/gpio.py``), on worker threads: the frame loop never waits for a blink.
- ``CompositeFeedback`` tells several at once (the log, the LEDs, the screen); one that
  fails is logged and the others are still told.
- The kiosk screen (``kiosk/screen/``, a local web page for a full-screen browser) is
  one more Feedback: ``kiosk.screen.Screen``.
- ``RecordingFeedback`` is the fake the tests use, shipped as real code.

Feedback is given only after the event is committed, so what a person is told is
always on record.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from clockface.closing import Closing
from hardware.gpio import GpioOutputs, Signal

log = logging.getLogger("clockface.kiosk")


@dataclass(frozen=True, slots=True)
class Greeting:
    """An acknowledged pass: who (their display name, and their id), which way, and when
    in the kiosk's local time."""

    name: str
    direction: str
    local_time: datetime
    person_id: str = ""

    @property
    def salutation(self) -> str:
        """The greeting's first words: "Goodbye" on the way out; on the way in, by the
        local hour, "Good morning" before 12, "Good afternoon" before 18, else "Good evening"."""
        if self.direction == "out":
            return "Goodbye"
        hour = self.local_time.hour
        return "Good morning" if hour < 12 else "Good afternoon" if hour < 18 else "Good evening"

    @property
    def text(self) -> str:
        return f"{self.salutation}, {self.name}, {self.direction} at {self.local_time:%H:%M}"


class Feedback(Protocol):
    def greet(self, greeting: Greeting) -> None:
        """A pass was logged."""

    def unknown(self) -> None:
        """A pass ended without anyone recognised (a stranger, or a face not enrolled)."""

    def problem(self, message: str) -> None:
        """Something needs an operator (a dead camera, a full disk)."""


class LogFeedback:
    """Passes and problems to the log (the journal, on a Pi).

    A pass is logged by person id, direction and time, never by name: the journal is a
    copy kept by its own rules (often weeks, shipped off the device) that an erasure
    cannot reach, and an erasure deletes the name but keeps the attendance events, which
    hold the id anyway.
    """

    def greet(self, greeting: Greeting) -> None:
        who = greeting.person_id or "a pass"
        log.info("logged %s, %s at %s", who, greeting.direction, f"{greeting.local_time:%H:%M}")

    def unknown(self) -> None:
        log.info("a pass ended unrecognised")

    def problem(self, message: str) -> None:
        log.error("%s", message)


@dataclass
class RecordingFeedback:
    """Remembers what it was told: the fake for tests."""

    greetings: list[Greeting] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unknowns: int = 0

    def greet(self, greeting: Greeting) -> None:
        self.greetings.append(greeting)

    def unknown(self) -> None:
        self.unknowns += 1

    def problem(self, message: str) -> None:
        self.problems.append(message)


class CompositeFeedback:
    """Tells every feedback in turn. One that raises is logged and skipped: the event
    is already committed, and a broken LED must not stop the screen or the loop."""

    def __init__(self, feedbacks: Sequence[Feedback]) -> None:
        self.feedbacks = list(feedbacks)

    def greet(self, greeting: Greeting) -> None:
        self._each("greet", lambda f: f.greet(greeting))

    def unknown(self) -> None:
        self._each("unknown", lambda f: f.unknown())

    def problem(self, message: str) -> None:
        self._each("problem", lambda f: f.problem(message))

    def _each(self, what: str, tell: Callable[[Feedback], None]) -> None:
        for feedback in self.feedbacks:
            try:
                tell(feedback)
            except Exception as err:  # whatever one output does, the others are told
                log.error("%s feedback failed in %s: %s", type(feedback).__name__, what, err)


class GpioFeedback(Closing):
    """LEDs and buzzer patterns per :class:`~hardware.gpio.Signal`, and a relay pulse on
    "in", played on two worker threads (indicators, door) so ``greet()`` returns at once.

    A worker holds at most ``backlog`` signals waiting; more are dropped (a crowd at the
    door does not queue minutes of beeps). ``wait_idle()`` waits until both are done;
    ``close()`` lets them finish, then turns everything off and releases the pins.
    """

    def __init__(self, outputs: GpioOutputs, *, backlog: int = 2) -> None:
        self.outputs = outputs
        self._indicators = _Worker("clockface-indicators", outputs.play, backlog)
        self._door = _Worker("clockface-door", lambda _: outputs.pulse_relay(), backlog)

    def greet(self, greeting: Greeting) -> None:
        signal = Signal.OUT if greeting.direction == "out" else Signal.IN
        self._indicators.put(signal)
        if signal is Signal.IN:
            self._door.put(signal)

    def unknown(self) -> None:
        self._indicators.put(Signal.UNKNOWN)

    def problem(self, message: str) -> None:
        self._indicators.put(Signal.ERROR)

    def wait_idle(self) -> None:
        """Wait until every signal given so far has been played."""
        self._indicators.wait_idle()
        self._door.wait_idle()

    def close(self) -> None:
        self._indicators.stop()
        self._door.stop()
        self.outputs.close()


class _Worker:
    """One daemon thread playing signals from a small queue, one after the other."""

    _STOP = object()

    def __init__(self, name: str, play: Callable[[Signal], object], backlog: int) -> None:
        self._play = play
        self._queue: queue.Queue[object] = queue.Queue(maxsize=backlog + 1)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, signal: Signal) -> None:
        try:
            self._queue.put_nowait(signal)
        except queue.Full:
            log.debug("%s: busy, %s dropped", self._thread.name, signal)

    def wait_idle(self) -> None:
        self._queue.join()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is self._STOP:
                    return
                assert isinstance(item, Signal)
                self._play(item)
            except Exception as err:  # a pin that fails once must not end the worker
                log.error("%s: %s", self._thread.name, err)
            finally:
                self._queue.task_done()
