"""The kiosk's GPIO outputs through gpiozero: a green and a red LED, a buzzer, a door relay.

Every output is optional; gpiozero is imported only when at least one is configured.
Each is a ``DigitalOutputDevice`` (``LED`` and ``Buzzer`` are its named subclasses)
made with ``initial_value=False``: off from the moment it is opened, which for the
relay means locked, whatever ``active_high`` says about the wiring. The pin factory is
gpiozero's: its default (lgpio on Raspberry Pi OS Trixie and Bookworm, Pi 4 and Pi 5), or the one
passed as ``pin_factory=`` (tests pass ``gpiozero.pins.mock.MockFactory()``; the
environment variable ``GPIOZERO_PIN_FACTORY=mock`` makes the mock pins the default).

Each :class:`Signal` has its own pattern, so the person at the door can tell them apart
by eye and by ear:

=========  ===========================  ==================================
signal     LEDs                         buzzer
=========  ===========================  ==================================
in         green, 1 s                   one short beep
out        green, 1 s                   two short beeps
unknown    red, 1 s                     one long beep
error      red, blinking three times    three beeps
=========  ===========================  ==================================

lgpio (the pin driver) makes a notification FIFO in the folder named by ``LG_WD``, else in
the current directory (gpiozero#1106): run from a folder its user cannot write, as
``sudo -u clockface clockface kiosk selftest`` from a checkout is, it fails to open any
pin. :func:`ensure_lgpio_workdir` (called before gpiozero is imported) then points
``LG_WD`` at a private temporary folder; the kiosk's unit runs in /var/lib/clockface.

The door relay is pulsed (``relay_seconds``) by :meth:`GpioOutputs.pulse_relay`, on
"in" only. Playing is synchronous here (``sleep`` is injectable); the feedback in
``hardware/feedback.py`` plays on worker threads so the frame loop never waits.
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clockface.closing import Closing
from clockface.errors import OutputError

log = logging.getLogger("clockface.hardware")

Sleep = Callable[[float], None]
Pin = int | str

GREEN, RED, BUZZER, RELAY = "green_led", "red_led", "buzzer", "relay"
LABELS = {GREEN: "green LED", RED: "red LED", BUZZER: "buzzer", RELAY: "door relay"}
"""How each output is called in messages."""


class Signal(StrEnum):
    """What the outputs tell the person at the door."""

    IN = "in"
    OUT = "out"
    UNKNOWN = "unknown"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Step:
    """For ``seconds``, the outputs named in ``on`` are on and the others off."""

    on: frozenset[str]
    seconds: float


def _steps(*steps: tuple[tuple[str, ...], float]) -> tuple[Step, ...]:
    return tuple(Step(frozenset(on), seconds) for on, seconds in steps)


PATTERNS: Mapping[Signal, tuple[Step, ...]] = {
    Signal.IN: _steps(((GREEN, BUZZER), 0.1), ((GREEN,), 0.9)),
    Signal.OUT: _steps(
        ((GREEN, BUZZER), 0.1), ((GREEN,), 0.1), ((GREEN, BUZZER), 0.1), ((GREEN,), 0.7)
    ),
    Signal.UNKNOWN: _steps(((RED, BUZZER), 0.4), ((RED,), 0.6)),
    Signal.ERROR: _steps(*[step for _ in range(3) for step in (((RED, BUZZER), 0.2), ((), 0.2))]),
}
"""The LED and buzzer pattern of each signal; every pattern ends with everything off."""


class GpioOutputs(Closing):
    """The configured outputs, opened through gpiozero; None for a pin means "not there".

    Raises OutputError when gpiozero is missing or a pin cannot be opened (in use, not
    a GPIO, no pin driver); what was opened before is closed again. Not thread-safe:
    one player at a time (:class:`hardware.feedback.GpioFeedback` gives the indicators
    and the relay one worker each, and they touch different devices).
    """

    def __init__(
        self,
        *,
        green_led: Pin | None = None,
        red_led: Pin | None = None,
        buzzer: Pin | None = None,
        relay: Pin | None = None,
        led_active_high: bool = True,
        buzzer_active_high: bool = True,
        relay_active_high: bool = True,
        relay_seconds: float = 3.0,
        pin_factory: object | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not relay_seconds > 0:
            raise ValueError(f"relay_seconds must be more than 0, not {relay_seconds}")
        self.relay_seconds = relay_seconds
        self._sleep = sleep
        self.pins: dict[str, Pin] = {
            name: pin
            for name, pin in ((GREEN, green_led), (RED, red_led), (BUZZER, buzzer), (RELAY, relay))
            if pin is not None
        }
        """The configured outputs and their pins, as given."""
        self._devices: dict[str, Any] = {}
        if not self.pins:
            return
        ensure_lgpio_workdir()
        gpiozero = _import_gpiozero()
        kinds = {
            GREEN: (gpiozero.LED, led_active_high),
            RED: (gpiozero.LED, led_active_high),
            BUZZER: (gpiozero.Buzzer, buzzer_active_high),
            RELAY: (gpiozero.DigitalOutputDevice, relay_active_high),
        }
        for name, pin in self.pins.items():
            kind, active_high = kinds[name]
            try:
                self._devices[name] = kind(
                    pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
                )
            except Exception as err:  # gpiozero's and the pin driver's (lgpio) errors alike
                self.close()
                raise OutputError(
                    f"cannot open the {LABELS[name]} on pin {pin}: {_first_line(err)}; "
                    "check the pin number, that the user is in the gpio group, and that no "
                    "other program uses the pin"
                ) from err
        log.info(
            "GPIO outputs: %s",
            ", ".join(f"{LABELS[name]} on {pin}" for name, pin in self.pins.items()),
        )

    @property
    def names(self) -> list[str]:
        """The outputs that are open (``green_led``, ``red_led``, ``buzzer``, ``relay``)."""
        return list(self._devices)

    def play(self, signal: Signal) -> None:
        """Play the signal's LED and buzzer pattern, then leave them off (blocks)."""
        steps = PATTERNS[Signal(signal)]
        used = {name for step in steps for name in step.on} & set(self._devices)
        if not used:
            return
        try:
            for step in steps:
                for name in used:
                    self._set(name, name in step.on)
                self._sleep(step.seconds)
        finally:
            for name in used:
                self._set(name, False)

    def pulse_relay(self, seconds: float | None = None) -> bool:
        """Unlock the door for ``seconds`` (default ``relay_seconds``), then lock it (blocks).

        False when there is no relay.
        """
        if RELAY not in self._devices:
            return False
        try:
            self._set(RELAY, True)
            self._sleep(self.relay_seconds if seconds is None else seconds)
        finally:
            self._set(RELAY, False)
        return True

    def pulse(self, name: str, seconds: float = 0.2) -> None:
        """Turn one output on for ``seconds``, then off: the self-test (blocks)."""
        if name not in self._devices:
            raise OutputError(f"no {LABELS.get(name, name)} is configured")
        try:
            self._set(name, True)
            self._sleep(seconds)
        finally:
            self._set(name, False)

    def close(self) -> None:
        """Everything off, the pins released; closing twice is harmless."""
        devices, self._devices = self._devices, {}
        for name, device in devices.items():
            try:
                device.off()
                device.close()
            except Exception as err:
                log.warning("closing the %s: %s", LABELS[name], _first_line(err))

    def _set(self, name: str, on: bool) -> None:
        device = self._devices.get(name)
        if device is None:
            return
        try:
            if on:
                device.on()
            else:
                device.off()
        except Exception as err:
            raise OutputError(f"cannot drive the {LABELS[name]}: {_first_line(err)}") from err


def ensure_lgpio_workdir(
    environ: MutableMapping[str, str] | None = None, cwd: str | None = None
) -> str | None:
    """Give lgpio a folder it can write its notification FIFO in, before it is imported.

    When ``LG_WD`` is unset and the current directory (``cwd``) is not writable by this
    process, sets ``LG_WD`` in ``environ`` (``os.environ``) to a new private temporary
    folder and returns it; otherwise changes nothing and returns None.
    """
    environ = os.environ if environ is None else environ
    if environ.get("LG_WD"):
        return None
    try:
        here = os.getcwd() if cwd is None else cwd
    except OSError:  # the current directory was removed
        here = None
    if here is not None and _writable(here):
        return None
    folder = tempfile.mkdtemp(prefix="clockface-lgpio-")
    environ["LG_WD"] = folder
    log.info("lgpio works in %s (LG_WD): the current directory is not writable", folder)
    return folder


def _writable(folder: str) -> bool:
    return os.access(folder, os.W_OK)


def _import_gpiozero() -> Any:
    try:
        return importlib.import_module("gpiozero")
    except ImportError as err:
        raise OutputError(
            "gpiozero is not installed: on Raspberry Pi OS `sudo apt install "
            "python3-gpiozero python3-lgpio` and create the venv with --system-site-packages"
        ) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
