"""Tests for hardware.gpio and the GPIO feedback: gpiozero's real devices on its mock pins.

Every test gets its own ``MockFactory``; what a pin went through is read back from its
state history (``pin.states``), compared in full.
"""

from __future__ import annotations

import grp
import importlib
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clockface.cli import main
from clockface.errors import OutputError
from hardware.config import HardwareConfig
from hardware.feedback import (
    CompositeFeedback,
    GpioFeedback,
    Greeting,
    RecordingFeedback,
)
from hardware.gpio import PATTERNS, GpioOutputs, Signal, ensure_lgpio_workdir
from tests.helpers.video import write_video

GREEN, RED, BUZZER, RELAY = 17, 27, 22, 23
WHEN = datetime(2024, 3, 4, 8, 57, tzinfo=UTC)


@pytest.fixture
def pins() -> Iterator[Any]:
    """A fresh gpiozero MockFactory (its pins remember every state they went through)."""
    factory = importlib.import_module("gpiozero.pins.mock").MockFactory()
    yield factory
    factory.close()


class Sleeps:
    """Records the pauses instead of sleeping."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def states(factory: Any, pin: int) -> list[bool]:
    return [bool(s.state) for s in factory.pin(pin).states]


def outputs(factory: Any, sleep: Sleeps | None = None, **options: Any) -> GpioOutputs:
    pins = {"green_led": GREEN, "red_led": RED, "buzzer": BUZZER, "relay": RELAY}
    return GpioOutputs(**(pins | options), pin_factory=factory, sleep=sleep or Sleeps())


def test_every_output_starts_off_and_the_relay_locked_whatever_its_wiring(pins: Any) -> None:
    with outputs(pins, relay_active_high=False, led_active_high=True) as out:
        assert sorted(out.names) == ["buzzer", "green_led", "red_led", "relay"]
        for pin in (GREEN, RED, BUZZER):
            assert states(pins, pin) == [False]  # driven low: off
        # Active-low relay board: locked means the pin high, from the moment it is opened.
        assert states(pins, RELAY) == [False, True]
        assert pins.pin(RELAY).function == "output"


@pytest.mark.parametrize(
    ("signal", "leds", "buzzer", "pauses"),
    [
        (Signal.IN, {GREEN: [False, True, False]}, [False, True, False], [0.1, 0.9]),
        (
            Signal.OUT,
            {GREEN: [False, True, False]},
            [False, True, False, True, False],
            [0.1, 0.1, 0.1, 0.7],
        ),
        (Signal.UNKNOWN, {RED: [False, True, False]}, [False, True, False], [0.4, 0.6]),
        (Signal.ERROR, {RED: [False] + [True, False] * 3}, [False] + [True, False] * 3, [0.2] * 6),
    ],
)
def test_each_signal_plays_its_own_pattern_and_ends_dark(
    pins: Any, signal: Signal, leds: dict[int, list[bool]], buzzer: list[bool], pauses: list[float]
) -> None:
    sleeps = Sleeps()
    with outputs(pins, sleeps) as out:
        out.play(signal)
        for pin, expected in leds.items():
            assert states(pins, pin) == expected
        other = RED if GREEN in leds else GREEN
        assert states(pins, other) == [False]  # the other LED stays dark
        assert states(pins, BUZZER) == buzzer
        assert states(pins, RELAY) == [False]  # only greet("in") unlocks the door
        assert sleeps.seconds == pauses


def test_the_four_patterns_are_told_apart_by_eye_and_by_ear() -> None:
    def seen(signal: Signal, output: str) -> tuple[tuple[bool, float], ...]:
        return tuple((output in step.on, step.seconds) for step in PATTERNS[signal])

    looks = {(seen(s, "green_led"), seen(s, "red_led")) for s in Signal}
    sounds = {seen(s, "buzzer") for s in Signal}
    assert len(looks) == len(sounds) == len(Signal) == 4


def test_the_relay_pulse_unlocks_for_its_time_then_locks(pins: Any) -> None:
    sleeps = Sleeps()
    with outputs(pins, sleeps, relay_seconds=4.0) as out:
        assert out.pulse_relay() is True
    assert states(pins, RELAY) == [False, True, False]  # active high: locked, open, locked
    assert sleeps.seconds == [4.0]
    none = GpioOutputs(green_led=GREEN, pin_factory=pins, sleep=sleeps)
    assert none.pulse_relay() is False
    none.close()


def test_only_configured_outputs_are_driven(pins: Any) -> None:
    sleeps = Sleeps()
    with GpioOutputs(buzzer=BUZZER, pin_factory=pins, sleep=sleeps) as out:
        out.play(Signal.IN)
        assert states(pins, BUZZER) == [False, True, False]
        out.play(Signal.UNKNOWN)
    assert GpioOutputs(pin_factory=pins).names == []
    with GpioOutputs(red_led=RED, pin_factory=pins, sleep=sleeps) as red_only:
        red_only.play(Signal.IN)  # nothing of IN's pattern is there: no pause either
    assert sleeps.seconds == [0.1, 0.9, 0.4, 0.6]


def test_closing_turns_everything_off_and_releases_the_pins(pins: Any) -> None:
    out = outputs(pins)
    out._set("green_led", True)  # as if closed in the middle of a pattern
    out.close()
    out.close()
    assert states(pins, GREEN) == [False, True, False]
    again = GpioOutputs(green_led=GREEN, pin_factory=pins)  # the pin is free again
    again.close()


def test_a_pin_that_cannot_be_opened_is_one_line_and_nothing_stays_open(pins: Any) -> None:
    with pytest.raises(OutputError) as error:
        GpioOutputs(green_led=GREEN, red_led=GREEN, pin_factory=pins)
    message = str(error.value)
    assert "cannot open the red LED on pin 17" in message and "\n" not in message
    GpioOutputs(green_led=GREEN, pin_factory=pins).close()  # the green LED was let go
    with pytest.raises(OutputError, match="cannot open the buzzer on pin GPIO99"):
        GpioOutputs(buzzer="GPIO99", pin_factory=pins)


def test_gpiozero_is_imported_only_when_a_pin_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "gpiozero", None)  # as if it were not installed
    assert GpioOutputs().names == []
    assert HardwareConfig().open_outputs() is None
    with pytest.raises(OutputError, match="python3-gpiozero python3-lgpio"):
        GpioOutputs(green_led=GREEN)


def test_gpio_feedback_plays_on_its_workers_and_unlocks_only_for_in(pins: Any) -> None:
    sleeps = Sleeps()
    with GpioFeedback(outputs(pins, sleeps, relay_seconds=2.0)) as feedback:
        feedback.greet(Greeting("Ada", "in", WHEN))
        feedback.wait_idle()
        assert states(pins, GREEN) == [False, True, False]
        assert states(pins, RELAY) == [False, True, False]
        feedback.greet(Greeting("Ada", "out", WHEN))
        feedback.unknown()
        feedback.problem("the camera stopped")
        feedback.wait_idle()
        assert states(pins, RELAY) == [False, True, False]  # not again for "out"
        assert states(pins, RED) == [False] + [True, False] * 4  # unknown, then 3 error blinks
    assert sorted(sleeps.seconds) == sorted(
        [0.1, 0.9, 2.0, 0.1, 0.1, 0.1, 0.7, 0.4, 0.6, *[0.2] * 6]
    )


def test_gpio_feedback_never_queues_more_than_its_backlog(pins: Any) -> None:
    played: list[Signal] = []
    gate = threading.Event()

    class Slow(GpioOutputs):
        def play(self, signal: Signal) -> None:
            gate.wait(5)
            played.append(signal)

    with GpioFeedback(Slow(pin_factory=pins), backlog=1) as feedback:
        for _ in range(10):
            feedback.unknown()
        gate.set()
        feedback.wait_idle()
    # One being played when the rest arrived, at most backlog + 1 waiting: never all ten.
    assert 1 <= len(played) <= 3


def test_composite_feedback_tells_the_others_when_one_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def greet(self, greeting: Greeting) -> None:
            raise OutputError("cannot drive the green LED: pin gone")

        def unknown(self) -> None:
            raise OutputError("cannot drive the red LED: pin gone")

        def problem(self, message: str) -> None:
            raise OutputError("no")

    first, last = RecordingFeedback(), RecordingFeedback()
    both = CompositeFeedback([first, Broken(), last])
    with caplog.at_level(logging.ERROR, logger="clockface.kiosk"):
        both.greet(Greeting("Ada", "in", WHEN))
        both.unknown()
        both.problem("disk full")
    for recording in (first, last):
        assert [g.name for g in recording.greetings] == ["Ada"]
        assert recording.unknowns == 1 and recording.problems == ["disk full"]
    assert "Broken feedback failed in greet: cannot drive the green LED" in caplog.text


# --- lgpio's working directory (gpiozero#1106) ----------------------------------------------


def test_lgpio_gets_a_private_folder_only_when_the_current_one_is_not_writable(
    tmp_path: Path,
) -> None:
    environ: dict[str, str] = {}
    assert ensure_lgpio_workdir(environ, cwd=str(tmp_path)) is None and environ == {}
    preset = {"LG_WD": "/var/lib/clockface"}
    assert ensure_lgpio_workdir(preset, cwd="/nowhere") is None
    assert preset == {"LG_WD": "/var/lib/clockface"}
    folder = ensure_lgpio_workdir(environ, cwd=str(tmp_path / "gone"))  # not writable
    assert folder is not None and environ == {"LG_WD": folder}
    try:
        assert Path(folder).is_dir() and os.access(folder, os.W_OK)
        assert Path(folder).name.startswith("clockface-lgpio-")
        assert Path(folder).stat().st_mode & 0o077 == 0  # private
    finally:
        Path(folder).rmdir()


def test_selftest_in_a_folder_it_cannot_write_sets_lg_wd_before_gpiozero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kiosk selftest`` with configured pins, from a folder its user cannot write (the
    permission faked: the tests may run as root, who can write anywhere): LG_WD names a
    private folder by the time the pins open; from a writable folder it stays unset."""
    video = write_video(tmp_path / "clip.avi")
    locked = tmp_path / "checkout"
    locked.mkdir()
    monkeypatch.setattr("hardware.gpio._writable", lambda folder: folder != str(locked))
    monkeypatch.setenv("LG_WD", "")
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR read again
    args = ["kiosk", "selftest", "--source", f"video:{video}", "--db", str(tmp_path / "k.db")]
    env = {"CLOCKFACE_HARDWARE_GREEN_LED": "17"}

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert os.environ["LG_WD"] == "" and not list(tmp_path.glob("clockface-lgpio-*"))

    monkeypatch.chdir(locked)
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "green LED (pin 17): ok, pulsed for 0.2 s" in result.output
    (made,) = tmp_path.glob("clockface-lgpio-*")
    assert os.environ["LG_WD"] == str(made) and made.is_dir()


def test_selftest_for_real_as_a_user_that_cannot_write_its_folder() -> None:
    """The same in a real process of a user that really cannot write its folder: this
    user in a read-only folder, or nobody when the tests run as root (who writes
    anywhere), if nobody can run this Python."""
    base = Path(tempfile.mkdtemp(prefix="clockface-lgwd-"))
    try:
        base.chmod(0o755)
        locked = base / "checkout"
        locked.mkdir()
        locked.chmod(0o555)
        temp = base / "tmp"
        temp.mkdir()
        video = write_video(base / "clip.avi")
        user: str | None = None
        group: str | None = None
        uid = os.geteuid()
        clockface = Path(sys.executable).parent / "clockface"
        if uid == 0:
            user, group = "nobody", "nogroup"
            try:
                help_ = subprocess.run(
                    [str(clockface), "--help"],
                    capture_output=True,
                    timeout=60,
                    user=user,
                    group=group,
                )
                reached = help_.returncode == 0
            except PermissionError:
                reached = False
            if not reached:
                pytest.skip(
                    "running as root, who writes anywhere, and nobody cannot run this "
                    f"Python ({sys.executable}); the faked-permission test covers it"
                )
            uid = pwd.getpwnam("nobody").pw_uid
            os.chown(temp, uid, grp.getgrnam("nogroup").gr_gid)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(temp),
            "TMPDIR": str(temp),
            "GPIOZERO_PIN_FACTORY": "mock",
            "CLOCKFACE_HARDWARE_GREEN_LED": "17",
        }
        done = subprocess.run(
            [
                str(clockface), "kiosk", "selftest", "--source", f"video:{video}",
                "--db", str(temp / "kiosk.db"),
            ],
            cwd=locked, env=env, capture_output=True, text=True, timeout=120,
            user=user, group=group,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "green LED (pin 17): ok, pulsed for 0.2 s" in done.stdout
        (made,) = temp.glob("clockface-lgpio-*")
        assert made.stat().st_uid == uid and made.stat().st_mode & 0o077 == 0
    finally:
        shutil.rmtree(base)
