"""The kiosk on the wall: the [hardware] config, the watchdog driven by the frame loop,
and ``kiosk selftest`` / ``kiosk status`` / ``kiosk run`` through the CLI with a replayed
video, gpiozero's mock pins and a real unix socket standing in for systemd."""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import socket
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from clockface import __version__
from clockface.cli import main
from clockface.errors import ConfigError, SourceError
from hardware.config import HELP, HardwareConfig, default_section, describe, load_hardware
from hardware.feedback import RecordingFeedback
from hardware.frames import BaseSource, Frame
from hardware.sources import FakeSource
from hardware.watchdog import (
    KioskHeartbeat,
    LoopStatus,
    SystemdNotifier,
    read_status,
    status_path,
    write_status,
)
from kiosk.loop import Kiosk
from kiosk.store import KioskStore
from recognition.faces import FaceModels
from tests.helpers.video import write_video

GREY = np.full((48, 64, 3), 90, np.uint8)
PINS = {"GREEN_LED": "17", "RED_LED": "27", "BUZZER": "22", "RELAY": "23"}


# --- helpers --------------------------------------------------------------------------------


class Systemd:
    """The systemd end of $NOTIFY_SOCKET: a unix datagram socket in a short temp path."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="cf-")
        self.address = os.path.join(self._folder.name, "notify")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.address)

    def messages(self) -> list[str]:
        """Everything sent so far, without waiting."""
        found = []
        self.socket.setblocking(False)
        try:
            while True:
                found.append(self.socket.recv(4096).decode("utf-8"))
        except BlockingIOError:
            return found

    def close(self) -> None:
        self.socket.close()
        self._folder.cleanup()


@pytest.fixture
def systemd() -> Iterator[Systemd]:
    listener = Systemd()
    yield listener
    listener.close()


@pytest.fixture
def mock_pins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """gpiozero's own switch to its mock pins, GPIOZERO_PIN_FACTORY=mock, from a fresh
    default factory; gives a function returning that factory (made on first use)."""
    device = importlib.import_module("gpiozero").Device
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    previous = device.pin_factory
    device.pin_factory = None
    yield lambda: device.pin_factory
    if device.pin_factory is not None:
        device.pin_factory.close()
    device.pin_factory = previous


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def pin_states(factory: Any, pin: int) -> list[bool]:
    return [bool(s.state) for s in factory.pin(pin).states]


@pytest.fixture(scope="module")
def models() -> FaceModels:
    return FaceModels(detect_max_side=320)


def kiosk(store: KioskStore, models: FaceModels, feedback: RecordingFeedback) -> Kiosk:
    return Kiosk(models=models, database=store, feedback=feedback)


def heartbeat(systemd: Systemd) -> KioskHeartbeat:
    """Pings after every frame: the clock moves a second a reading, the watchdog is 1 s."""
    notifier = SystemdNotifier(systemd.address, watchdog_seconds=1.0)
    ticks = itertools.count(0.0, 1.0)
    return KioskHeartbeat(notifier, source="test", status_every=1000, clock=lambda: next(ticks))


# --- the [hardware] table -------------------------------------------------------------------


def test_the_default_section_documents_every_key_and_reads_back_as_the_defaults(
    tmp_path: Path,
) -> None:
    text = default_section()
    table = tomllib.loads(text)["hardware"]
    assert list(table) == list(HELP)
    lines = text.splitlines()
    for name in HELP:  # each key right under its own comment, wrapped at 88 columns
        (i,) = [i for i, line in enumerate(lines) if line.startswith(f"{name} = ")]
        start = i
        while lines[start - 1].startswith("# "):
            start -= 1
        comment = " ".join(line[2:] for line in lines[start:i])
        assert comment == HELP[name], name
    assert max(len(line) for line in lines) <= 88
    path = tmp_path / "kiosk.toml"
    path.write_text(text)
    assert load_hardware(path, environ={}) == HardwareConfig()
    assert load_hardware(None, environ={}) == HardwareConfig()
    assert describe(HardwareConfig()) == [
        line for line in lines if " = " in line and line[0] != "#"
    ]


def test_only_the_hardware_table_is_read_and_the_environment_overrides_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(
        '[kiosk]\nsource = "picamera"\n[sync]\nserver = "https://central"\n'
        '[hardware]\ngreen_led = 17\nred_led = "GPIO27"\nrelay = ""\ncamera_focus = 1.5\n'
        "relay_active_high = false\ncamera_fps = 15\n"
    )
    config = load_hardware(path, environ={})
    assert (config.green_led, config.red_led, config.relay, config.buzzer) == (
        17,
        "GPIO27",
        None,
        None,
    )
    assert config.camera_focus == 1.5 and config.camera_fps == 15.0
    assert config.relay_active_high is False
    assert config.outputs == {"green_led": 17, "red_led": "GPIO27"}
    environ = {
        "CLOCKFACE_HARDWARE_GREEN_LED": "5",
        "CLOCKFACE_HARDWARE_RED_LED": "",
        "CLOCKFACE_HARDWARE_BUZZER": "BOARD15",
        "CLOCKFACE_HARDWARE_CAMERA_FOCUS": "auto",
        "CLOCKFACE_HARDWARE_RELAY_ACTIVE_HIGH": "yes",
    }
    overridden = load_hardware(path, environ=environ)
    assert overridden.outputs == {"green_led": 5, "buzzer": "BOARD15"}
    assert overridden.camera_focus is None and overridden.relay_active_high is True


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("green_led = 17\nblue_led = 4\n", "unknown key 'blue_led' in [hardware]"),
        ("green_led = true\n", 'green_led must be a GPIO number, a pin name or ""'),
        ("green_led = 17\nred_led = 17\n", "green_led and red_led are both on pin 17"),
        ('green_led = 17\nbuzzer = "GPIO17"\n', "green_led and buzzer are both on pin GPIO17"),
        ("relay = 60\n", "relay must be a GPIO number 0 to 53"),
        ('relay = "pin 7"\n', "is not a pin name"),
        ('camera_focus = "near"\n', 'camera_focus must be "auto" or a number of metres'),
        ("camera_focus = 0\n", "camera_focus must be"),
        ("camera_width = 1281\n", "camera_width must be an even number"),
        ("camera_fps = 0\n", "camera_fps must be 1 to 120"),
        ("relay_seconds = nan\n", "relay_seconds must be a finite number"),
        ('led_active_high = "yes"\n', "led_active_high must be true or false"),
        ("camera_number = 1.5\n", "camera_number must be a whole number"),
    ],
)
def test_bad_values_are_refused_with_one_line_naming_the_file_and_key(
    tmp_path: Path, table: str, message: str
) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text("[hardware]\n" + table)
    with pytest.raises(ConfigError) as error:
        load_hardware(path, environ={})
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_bad_files_and_variables_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config file at"):
        load_hardware(tmp_path / "missing.toml", environ={})
    (tmp_path / "bad.toml").write_text("[hardware\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_hardware(tmp_path / "bad.toml", environ={})
    (tmp_path / "flat.toml").write_text("hardware = 3\n")
    with pytest.raises(ConfigError, match=r"hardware must be a table"):
        load_hardware(tmp_path / "flat.toml", environ={})
    with pytest.raises(ConfigError, match="CLOCKFACE_HARDWARE_CAMERA_FPS: 'fast' is not"):
        load_hardware(None, environ={"CLOCKFACE_HARDWARE_CAMERA_FPS": "fast"})
    with pytest.raises(ConfigError, match=r"the environment: \[hardware\] relay_seconds"):
        load_hardware(None, environ={"CLOCKFACE_HARDWARE_RELAY_SECONDS": "0"})


def test_one_kiosk_toml_holds_kiosk_and_hardware(tmp_path: Path, mock_pins: Any) -> None:
    video = write_video(tmp_path / "clip.avi")
    path = tmp_path / "kiosk.toml"
    path.write_text(
        f'[kiosk]\nsource = "video:{video}"\ndatabase = "{tmp_path / "k.db"}"\n'
        "[hardware]\ngreen_led = 17\n"
    )
    result = invoke(["kiosk", "selftest", "--config", str(path)], env={})
    assert result.exit_code == 0, result.output
    assert "green LED (pin 17): ok, pulsed for 0.2 s" in result.output
    checked = invoke(["kiosk", "check-config", "--config", str(path)], env={})
    assert checked.exit_code == 0, checked.output
    assert "  [hardware]\n" in checked.output and "  green_led = 17\n" in checked.output
    path.write_text(path.read_text() + "green_led = 18\n")  # a key given twice
    refused = invoke(["kiosk", "check-config", "--config", str(path)], env={})
    assert refused.exit_code == 1 and "Error:" in refused.output
    path.write_text("[hardware]\nbuzzer = 22\nbeeper = 1\n")
    refused = invoke(["kiosk", "check-config", "--config", str(path)], env={})
    assert refused.exit_code == 1 and "unknown key 'beeper' in [hardware]" in refused.output


# --- the loop drives the watchdog -----------------------------------------------------------


class HangingSource(BaseSource):
    """Gives ``good`` frames, then hangs in read() as a stuck camera does, until released."""

    def __init__(self, good: int) -> None:
        self.name = "hanging"
        self.good = good
        self.given = 0
        self.hanging = threading.Event()
        self.release = threading.Event()

    def read(self) -> Frame | None:
        if self.given < self.good:
            self.given += 1
            return Frame(GREY.copy(), self.given - 1, float(self.given))
        self.hanging.set()
        self.release.wait(30)
        return None

    def close(self) -> None:
        self.release.set()


def test_a_camera_that_hangs_stops_the_watchdog_pings(
    tmp_path: Path, systemd: Systemd, models: FaceModels
) -> None:
    source = HangingSource(good=3)
    beat = heartbeat(systemd)
    failed: list[BaseException] = []

    def run_kiosk() -> None:  # a store belongs to the thread that opened it
        try:
            with KioskStore.open(tmp_path / "kiosk.db") as store:
                kiosk(store, models, RecordingFeedback()).run(source, None, beat)
        except BaseException as err:
            failed.append(err)
            source.hanging.set()

    runner = threading.Thread(target=run_kiosk)
    runner.start()
    try:
        assert source.hanging.wait(30), "the loop never reached the hanging read"
        assert not failed
        # Every ping for the 3 good frames was sent before the 4th read: nothing else.
        assert (
            systemd.messages() == ["READY=1\nSTATUS=reading frames from test"] + ["WATCHDOG=1"] * 3
        )
    finally:
        source.release.set()
        runner.join(30)
        beat.notifier.close()
    assert not failed
    assert systemd.messages() == ["STOPPING=1"]


def test_a_camera_that_fails_stops_the_pings_and_tells_the_operator(
    tmp_path: Path, systemd: Systemd, models: FaceModels
) -> None:
    feedback = RecordingFeedback()
    with KioskStore.open(tmp_path / "kiosk.db") as store:
        app = kiosk(store, models, feedback)
        beat = heartbeat(systemd)
        source = FakeSource(itertools.repeat(GREY), fail_after=2, name="camera:0")
        try:
            with pytest.raises(SourceError):
                app.run(source, None, beat)
        finally:
            beat.notifier.close()
    assert systemd.messages() == [
        "READY=1\nSTATUS=reading frames from test",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "STOPPING=1",
    ]
    assert len(feedback.problems) == 1 and "stopped delivering frames" in feedback.problems[0]


def test_without_a_heartbeat_the_loop_runs_as_before(tmp_path: Path, models: FaceModels) -> None:
    with KioskStore.open(tmp_path / "kiosk.db") as store:
        stats = kiosk(store, models, RecordingFeedback()).run(FakeSource([GREY] * 4))
    assert stats.frames == 4


# --- kiosk selftest ----------------------------------------------------------------------------


def test_selftest_tries_every_device_and_says_ok(tmp_path: Path, mock_pins: Any) -> None:
    video = write_video(tmp_path / "clip.avi")
    env = {f"CLOCKFACE_HARDWARE_{key}": pin for key, pin in PINS.items()}
    result = invoke(
        ["kiosk", "selftest", "--source", f"video:{video}", "--db", str(tmp_path / "k.db")],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"camera video:{video}: ok, one 64x48 frame",
        "faces: ok, 64x48 at 66 degrees, faces detected on a 64 px copy: found from 0.4 m "
        "(20 px), encoded from 0.2 m (40 px)",
        "green LED (pin 17): ok, pulsed for 0.2 s",
        "red LED (pin 27): ok, pulsed for 0.2 s",
        "buzzer (pin 22): ok, pulsed for 0.2 s",
        "door relay (pin 23): ok, pulsed for 0.2 s",
        f"database {tmp_path / 'k.db'}: ok, not created yet: `clockface kiosk run` creates it here",
        "watchdog: ok, not under systemd here (the service has one)",
    ]
    pins = mock_pins()
    for pin in (17, 27, 22, 23):
        assert pin_states(pins, pin) == [False, True, False]
    assert not (tmp_path / "k.db").exists()  # the self-test creates nothing


def test_selftest_counts_the_database_and_sees_systemd(tmp_path: Path, systemd: Systemd) -> None:
    db = tmp_path / "k.db"
    with KioskStore.open(db) as store:
        store.add_person("ada", "Ada Lovelace")
    video = write_video(tmp_path / "clip.avi")
    env = {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "30000000"}
    result = invoke(["kiosk", "selftest", "--source", str(video), "--db", str(db)], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"database {db}: ok, 1 person enrolled, 0 events waiting for sync" in lines
    assert "GPIO outputs: ok, none configured" in lines
    assert "watchdog: ok, under systemd, WatchdogSec 30 s" in lines
    assert systemd.messages() == []  # looked at, never told anything


def test_selftest_says_what_failed_and_exits_1(tmp_path: Path, mock_pins: Any) -> None:
    env = {"CLOCKFACE_HARDWARE_GREEN_LED": "17", "CLOCKFACE_HARDWARE_BUZZER": "GPIO99"}
    result = invoke(
        [
            "kiosk",
            "selftest",
            "--source",
            str(tmp_path / "gone.mp4"),
            "--db",
            str(tmp_path / "k.db"),
        ],
        env=env,
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(f"camera {tmp_path / 'gone.mp4'}: FAILED: cannot open video")
    # No frame: the reach is worked out for the configured camera (1280x720, 66 degrees).
    assert lines[1] == (
        "faces: ok, 1280x720 at 66 degrees, faces detected on a 960 px copy: found from "
        "5.9 m (27 px), encoded from 3.9 m (40 px)"
    )
    assert lines[2].startswith("GPIO outputs: FAILED: cannot open the buzzer on pin GPIO99")
    assert lines[3].startswith(f"database {tmp_path / 'k.db'}: ok")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_as_root_a_database_of_the_service_user_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    KioskStore.open(db).close()
    os.chown(db, 65534, 65534)  # nobody: as the clockface user owns the kiosk's
    before = sorted(p.name for p in tmp_path.iterdir())
    status = invoke(["kiosk", "status", "--db", str(db)], env={})
    assert status.exit_code == 1 and "run this as that user" in status.output
    selftest = invoke(["kiosk", "selftest", "--source", "gone.mp4", "--db", str(db)], env={})
    assert f"database {db}: FAILED: {db} belongs to" in selftest.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# --- kiosk status -----------------------------------------------------------------------------


def add_events(db: Path, *directions: str) -> None:
    with KioskStore.open(db) as store:
        store.add_person("ada", "Ada Lovelace")
        for direction in directions:
            store.append_event(
                "ada",
                direction,  # type: ignore[arg-type]
                utc=datetime.now(UTC),
                tz="UTC",
                distance=0.4,
                margin=0.1,
                frames=2,
                software_version=__version__,
            )


def test_status_in_plain_words(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    add_events(db, "in", "out")
    now = datetime.now(UTC)
    write_status(
        status_path(db),
        LoopStatus(4242, "picamera", "running", now - timedelta(hours=1), now, now, 9000, 12.5),
    )
    result = invoke(["kiosk", "status", "--db", str(db)], env={})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        lines[0].startswith("kiosk: running since ") and "(pid 4242), source picamera" in lines[0]
    )
    assert lines[1].startswith("camera: 12.5 frames per second, last frame ")
    assert lines[1].endswith(" seconds ago")
    assert lines[2].startswith("events: 2 today in UTC (1 in, 1 out), the last at ")
    assert lines[3] == "sync: 2 events wait for the central service"
    assert lines[4].startswith("disk: ") and " GB free of " in lines[4]


def test_status_of_a_kiosk_that_stopped_answering_or_never_ran(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    old = datetime.now(UTC) - timedelta(minutes=10)
    write_status(status_path(db), LoopStatus(1, "picamera", "running", old, old, old, 5, 9.0))
    result = invoke(["kiosk", "status", "--db", str(db)], env={})
    assert result.exit_code == 0
    assert result.output.startswith("kiosk: NOT RESPONDING: its status was last written 10 minutes")
    assert f"events: no database at {db} yet" in result.output
    assert not db.exists()
    status_path(db).unlink()
    fresh = invoke(["kiosk", "status", "--db", str(db)], env={})
    assert fresh.output.startswith("kiosk: no status yet")
    status_path(db).write_text("not json")
    broken = invoke(["kiosk", "status", "--db", str(db)], env={})
    assert broken.output.startswith("kiosk: cannot read its status file: not a kiosk status")


# --- kiosk run under "systemd" ----------------------------------------------------------------


def test_kiosk_run_says_ready_pings_per_frame_and_publishes_its_status(
    tmp_path: Path, systemd: Systemd, mock_pins: Any
) -> None:
    video = write_video(tmp_path / "clip.avi", frames=6)
    db = tmp_path / "k.db"
    env = {
        "NOTIFY_SOCKET": systemd.address,
        "WATCHDOG_USEC": "1",  # pinged at every frame
        "CLOCKFACE_HARDWARE_GREEN_LED": "17",
    }
    result = invoke(["kiosk", "run", "--source", f"video:{video}", "--db", str(db)], env=env)
    assert result.exit_code == 0, result.output
    messages = systemd.messages()
    assert messages[0] == f"READY=1\nSTATUS=reading frames from video:{video}"
    assert messages[-1] == "STOPPING=1"
    assert messages.count("WATCHDOG=1") == 6
    status = read_status(status_path(db))
    assert status is not None and status.state == "stopped" and status.frames == 6
    assert json.loads(status_path(db).read_text())["source"] == f"video:{video}"
    assert pin_states(mock_pins(), 17) == [False]  # opened, off, nothing to show: no faces


def test_time_scale_replays_a_video_in_video_time_and_refuses_what_it_cannot(
    tmp_path: Path,
) -> None:
    video = write_video(tmp_path / "clip.avi", frames=20)
    db = tmp_path / "k.db"
    args = ["kiosk", "run", "--db", str(db), "--encoder-workers", "0"]
    result = invoke([*args, "--source", f"video:{video}", "--time-scale", "4"])
    assert result.exit_code == 0, result.output
    summary = result.output.strip().splitlines()[-1]
    found = re.search(r"^(\d+) frames, .* \((\d+) dropped at 4x real time", summary)
    assert found is not None, summary
    frames, dropped = found.groups()
    assert int(frames) + int(dropped) == 20 and "; video time 0 is " in summary
    camera = invoke([*args, "--source", "camera:9", "--time-scale", "4"])
    assert camera.exit_code != 0
    realtime = invoke([*args, "--source", str(video), "--time-scale", "4", "--realtime"])
    assert realtime.exit_code == 2
    assert "--time-scale sets the replay's pace itself: leave out --realtime" in realtime.output
