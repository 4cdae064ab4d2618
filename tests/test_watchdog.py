"""Tests for hardware.watchdog: sd_notify over a real unix datagram socket, the loop's
heartbeat and status file, the journal's log format."""

from __future__ import annotations

import io
import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hardware.watchdog import (
    JournalFormatter,
    KioskHeartbeat,
    LoopStatus,
    NullNotifier,
    RecordingNotifier,
    SystemdNotifier,
    describe_status,
    notifier_from_environ,
    read_status,
    status_path,
    under_journal,
    write_status,
)

T0 = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)


class Listener:
    """The systemd side: a unix datagram socket that collects what the kiosk sends."""

    def __init__(self, address: str) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(address)
        self.socket.settimeout(5)

    def receive(self) -> str:
        return self.socket.recv(4096).decode("utf-8")

    def pending(self) -> list[str]:
        """Every message waiting now, without blocking."""
        found = []
        self.socket.setblocking(False)
        try:
            while True:
                found.append(self.socket.recv(4096).decode("utf-8"))
        except BlockingIOError:
            return found
        finally:
            self.socket.settimeout(5)


@pytest.fixture
def listener() -> Iterator[tuple[str, Listener]]:
    """A socket bound in a fresh short temp folder (unix socket paths are limited to
    108 bytes) and its address, as $NOTIFY_SOCKET would give it."""
    with tempfile.TemporaryDirectory(prefix="cf-") as folder:
        address = os.path.join(folder, "notify")
        listening = Listener(address)
        yield address, listening
        listening.socket.close()


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Wall:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_notify_messages_reach_the_socket_named_by_the_environment(
    listener: tuple[str, Listener],
) -> None:
    address, systemd = listener
    notifier = notifier_from_environ({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "30000000"})
    assert isinstance(notifier, SystemdNotifier)
    assert notifier.under_systemd and notifier.watchdog_seconds == 30.0
    assert notifier.ready("reading frames from picamera")
    assert systemd.receive() == "READY=1\nSTATUS=reading frames from picamera"
    assert notifier.ping() and systemd.receive() == "WATCHDOG=1"
    assert notifier.status("12.5 frames/s\nfrom picamera")
    assert systemd.receive() == "STATUS=12.5 frames/s from picamera"  # one line
    assert notifier.stopping() and systemd.receive() == "STOPPING=1"
    notifier.close()
    notifier.close()


def test_an_abstract_namespace_socket_is_reached_through_its_at_sign() -> None:
    name = f"clockface-test-{uuid.uuid4().hex}"
    systemd = Listener("\0" + name)
    try:
        notifier = notifier_from_environ({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready() and systemd.receive() == "READY=1"
        notifier.close()
    finally:
        systemd.socket.close()


def test_outside_systemd_every_message_is_a_harmless_no_op() -> None:
    notifier = notifier_from_environ({})
    assert isinstance(notifier, NullNotifier) and not notifier.under_systemd
    assert notifier.watchdog_seconds is None
    assert not notifier.ready() and not notifier.ping() and not notifier.stopping()


@pytest.mark.parametrize(
    ("environ", "seconds"),
    [
        ({"WATCHDOG_USEC": "5000000"}, 5.0),
        ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
        ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),  # not us
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_the_watchdog_interval_is_read_as_sd_watchdog_enabled_does(
    environ: dict[str, str], seconds: float | None
) -> None:
    notifier = notifier_from_environ({"NOTIFY_SOCKET": "/run/systemd/notify", **environ})
    assert notifier.under_systemd and notifier.watchdog_seconds == seconds


def test_a_socket_that_is_gone_is_logged_once_and_never_raises(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    notifier = notifier_from_environ({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING, logger="clockface.systemd"):
        assert not notifier.ping() and not notifier.ping()
    notifier.close()
    assert caplog.text.count("cannot notify systemd") == 1
    vsock = notifier_from_environ({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert isinstance(vsock, NullNotifier)


def test_the_heartbeat_pings_at_a_quarter_of_the_interval_after_good_frames(
    tmp_path: Path,
) -> None:
    ticks, wall = Ticks(), Wall()
    notifier = RecordingNotifier(watchdog_seconds=8.0)
    beat = KioskHeartbeat(
        notifier,
        source="picamera",
        status_file=tmp_path / "kiosk.status.json",
        status_every=5.0,
        clock=ticks,
        wall=wall,
    )
    beat.ready()
    assert notifier.messages == ["READY=1\nSTATUS=reading frames from picamera"]
    for _ in range(10):  # 10 frames, 0.5 s apart: a ping every 2 s (8 s / 4)
        ticks.now += 0.5
        beat.alive()
    pings = [m for m in notifier.messages if m == "WATCHDOG=1"]
    assert len(pings) == 3  # at 0.5 s, 2.5 s, 4.5 s
    assert "STATUS=2.0 frames/s from picamera" in notifier.messages  # 10 frames in 5 s
    beat.stopping()
    assert notifier.messages[-1] == "STOPPING=1"


def test_without_a_watchdog_nothing_is_pinged() -> None:
    notifier = RecordingNotifier(watchdog_seconds=None)
    beat = KioskHeartbeat(notifier, source="camera:0", clock=Ticks())
    beat.ready()
    beat.alive()
    assert "WATCHDOG=1" not in notifier.messages


def test_the_status_file_tells_frames_per_second_and_the_last_frame(tmp_path: Path) -> None:
    ticks, wall = Ticks(), Wall()
    path = status_path(tmp_path / "kiosk.db")
    assert path == tmp_path / "kiosk.status.json"
    beat = KioskHeartbeat(
        NullNotifier(), source="picamera", status_file=path, clock=ticks, wall=wall
    )
    beat.ready()
    first = read_status(path)
    assert first is not None and first.state == "running" and first.frames == 0
    assert first.last_frame_utc is None and first.pid == os.getpid()
    for _ in range(40):  # 8 frames a second (steps exact in binary floating point)
        ticks.now += 0.125
        wall.now += timedelta(seconds=0.125)
        beat.alive()
    status = read_status(path)
    assert status is not None and status.frames == 40 and status.fps == 8.0
    assert status.last_frame_utc == T0 + timedelta(seconds=5)
    assert (path.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    now = T0 + timedelta(seconds=5.4)
    lines = describe_status(status, now, stale_after=15)
    assert lines[0].startswith("kiosk: running since") and "source picamera" in lines[0]
    assert lines[1] == "camera: 8.0 frames per second, last frame 0.4 seconds ago"
    stale = describe_status(status, now + timedelta(minutes=3), stale_after=15)
    assert stale[0].startswith("kiosk: NOT RESPONDING: its status was last written 3 minutes")
    beat.stopping()
    stopped = read_status(path)
    assert stopped is not None and stopped.state == "stopped"
    assert describe_status(stopped, now, stale_after=15)[0].startswith("kiosk: stopped")


def test_status_files_that_are_missing_or_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.status.json"
    assert read_status(path) is None
    assert describe_status(None, T0, stale_after=15) == [
        "kiosk: no status yet (the kiosk has not run with this database)"
    ]
    for text in ("{", "[]", '{"version": 2}', '{"version": 1, "pid": 1}'):
        path.write_text(text)
        with pytest.raises(ValueError):
            read_status(path)
    status = LoopStatus(1, "camera:0", "running", T0, T0, None, 0, 0.0)
    write_status(path, status)
    assert LoopStatus.from_json(path.read_text()) == status


def test_a_status_file_that_cannot_be_written_does_not_stop_the_kiosk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    beat = KioskHeartbeat(
        NullNotifier(), source="x", status_file=tmp_path / "missing" / "s.json", clock=Ticks()
    )
    with caplog.at_level(logging.WARNING, logger="clockface.systemd"):
        beat.ready()
        beat.stopping()
    assert caplog.text.count("cannot write") == 1


def test_journal_lines_carry_their_syslog_priority() -> None:
    formatter = JournalFormatter()

    def line(level: int, message: str) -> str:
        record = logging.LogRecord("clockface.kiosk", level, __file__, 1, message, None, None)
        return formatter.format(record)

    assert line(logging.ERROR, "camera lost") == "<3>clockface.kiosk: camera lost"
    assert line(logging.WARNING, "slow") == "<4>clockface.kiosk: slow"
    assert line(logging.INFO, "Good morning, Ada") == "<6>clockface.kiosk: Good morning, Ada"
    assert line(logging.DEBUG, "x") == "<7>clockface.kiosk: x"
    assert line(logging.CRITICAL, "a\nb") == "<2>clockface.kiosk: a\n<2>b"


def test_under_journal_compares_stderr_with_journal_stream(tmp_path: Path) -> None:
    with (tmp_path / "stream").open("w") as stream:
        info = os.fstat(stream.fileno())
        assert under_journal({"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}, stream)
        assert not under_journal({"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino + 1}"}, stream)
        assert not under_journal({}, stream)
    assert not under_journal({"JOURNAL_STREAM": "1:2"}, io.StringIO())
