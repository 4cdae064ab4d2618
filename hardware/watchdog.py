"""Telling systemd how the kiosk is: sd_notify, the watchdog, the status file, the journal.

- :class:`SystemdNotifier` speaks systemd's notify protocol (``sd_notify(3)``): one
  datagram of ``VAR=value`` lines to the unix socket named by ``$NOTIFY_SOCKET`` (a
  path, or ``@name`` in the abstract namespace). ``READY=1`` once the camera and the
  database are open (``Type=notify``), ``WATCHDOG=1`` to keep ``WatchdogSec=`` from
  firing, ``STATUS=...`` for ``systemctl status``, ``STOPPING=1`` on the way out.
  :func:`notifier_from_environ` gives one when the process runs under systemd and a
  :class:`NullNotifier`, which does nothing, otherwise. :class:`RecordingNotifier` is
  the fake. Sending never raises: a lost message is logged once, and the watchdog,
  not the kiosk, decides what a silent kiosk means.
- :class:`KioskHeartbeat` is what the frame loop calls: ``ready()`` before the first
  frame, ``alive()`` after each good frame, ``stopping()`` at the end. It pings the
  watchdog (at most every quarter of ``WatchdogSec``: systemd asks for at least every
  half) and every few seconds rewrites a small JSON status file next to the database
  (frames per second, last frame), atomically, for ``clockface kiosk status``. A
  camera that hangs stops the pings and systemd restarts the kiosk.
- :class:`JournalFormatter` prefixes each log line with its syslog priority
  (``<3>`` error, ``<4>`` warning, ``<6>`` info) so the journal keeps the levels
  (``journalctl -p warning``); :func:`under_journal` says whether stderr goes there.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("clockface.systemd")

Clock = Callable[[], float]
WallClock = Callable[[], datetime]

STATUS_EVERY = 5.0
"""Seconds between two writes of the status file by a running kiosk."""


# --------------------------------------------------------------------------- sd_notify


class Notifier:
    """Sends notify messages; this base class sends nowhere (see :class:`NullNotifier`)."""

    under_systemd = False
    """True when ``$NOTIFY_SOCKET`` named a socket: the process runs as a systemd service."""
    watchdog_seconds: float | None = None
    """``WatchdogSec=`` of the service, when its watchdog is on and meant for this process."""

    def notify(self, *assignments: str) -> bool:
        """Send ``VAR=value`` lines in one message; True when it was sent."""
        return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def ping(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        """Let the socket go; closing twice is harmless."""


class NullNotifier(Notifier):
    """Not under systemd: every message goes nowhere, and that is fine."""


class RecordingNotifier(Notifier):
    """Remembers every message: the fake for tests."""

    def __init__(self, *, watchdog_seconds: float | None = None) -> None:
        self.under_systemd = True
        self.watchdog_seconds = watchdog_seconds
        self.messages: list[str] = []

    def notify(self, *assignments: str) -> bool:
        self.messages.append("\n".join(assignments))
        return True


class SystemdNotifier(Notifier):
    """sd_notify over a unix datagram socket: ``address`` is ``$NOTIFY_SOCKET``.

    An address starting with ``@`` is in Linux's abstract namespace (the ``@`` stands
    for a leading NUL byte); otherwise it must be an absolute path.
    """

    def __init__(self, address: str, *, watchdog_seconds: float | None = None) -> None:
        if address.startswith("@"):
            self._address = "\0" + address[1:]
        elif address.startswith("/"):
            self._address = address
        else:
            raise ValueError(f"NOTIFY_SOCKET {address!r} is neither a path nor @abstract")
        self.address = address
        self.under_systemd = True
        self.watchdog_seconds = watchdog_seconds
        self._socket: socket.socket | None = None
        self._failing = False

    def notify(self, *assignments: str) -> bool:
        message = "\n".join(assignments).encode("utf-8")
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message, self._address)
        except OSError as err:
            if not self._failing:  # once, not at every frame
                log.warning("cannot notify systemd at %s: %s", self.address, err.strerror or err)
            self._failing = True
            return False
        if self._failing:
            log.info("notifying systemd at %s works again", self.address)
        self._failing = False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def notifier_from_environ(environ: Mapping[str, str] | None = None) -> Notifier:
    """A :class:`SystemdNotifier` when ``$NOTIFY_SOCKET`` is set, else a NullNotifier.

    The watchdog is on when ``$WATCHDOG_USEC`` is a positive number of microseconds and
    ``$WATCHDOG_PID``, if set, is this process (``sd_watchdog_enabled(3)``).
    """
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return NullNotifier()
    watchdog: float | None = None
    pid = environ.get("WATCHDOG_PID", "")
    try:
        usec = int(environ.get("WATCHDOG_USEC", "0"))
        meant_for_us = not pid or int(pid) == os.getpid()
    except ValueError:
        log.warning("WATCHDOG_USEC / WATCHDOG_PID are not numbers: the watchdog is not pinged")
        usec, meant_for_us = 0, False
    if usec > 0 and meant_for_us:
        watchdog = usec / 1_000_000
    try:
        return SystemdNotifier(address, watchdog_seconds=watchdog)
    except ValueError as err:  # vsock: and other kinds this does not speak
        log.warning("%s: systemd will not hear from the kiosk", err)
        return NullNotifier()


# --------------------------------------------------------------------------- the status file


@dataclass(frozen=True)
class LoopStatus:
    """What the running kiosk publishes for ``clockface kiosk status``."""

    pid: int
    source: str
    state: str  # "running" or "stopped"
    started_utc: datetime
    updated_utc: datetime
    last_frame_utc: datetime | None
    frames: int
    fps: float
    warning: str | None = None

    def to_json(self) -> str:
        values: dict[str, Any] = asdict(self)
        for key, value in values.items():
            if isinstance(value, datetime):
                values[key] = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return json.dumps({"version": 1, **values}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LoopStatus:
        """Raises ValueError for anything that is not a status this version wrote."""
        try:
            values = json.loads(text)
            if not isinstance(values, dict) or values.pop("version", None) != 1:
                raise ValueError("not a version 1 kiosk status")
            for key in ("started_utc", "updated_utc", "last_frame_utc"):
                if values.get(key) is not None:
                    values[key] = datetime.fromisoformat(values[key])
            return cls(**values)
        except (TypeError, KeyError, json.JSONDecodeError) as err:
            raise ValueError(f"not a kiosk status: {err}") from err


def status_path(database: str | os.PathLike[str]) -> Path:
    """Where the kiosk using this database writes its status: ``kiosk.db`` ->
    ``kiosk.status.json`` beside it."""
    path = Path(database)
    return path.with_name(f"{path.stem or path.name}.status.json")


def write_status(path: Path, status: LoopStatus) -> None:
    """Replace the status file atomically (a reader sees the old one or the new one)."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as handle:
        temporary = Path(handle.name)
        try:
            handle.write(status.to_json())
        except BaseException:
            handle.close()
            temporary.unlink(missing_ok=True)
            raise
    try:
        temporary.chmod(0o644)  # no names, no faces: anyone on the Pi may read it
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_status(path: Path) -> LoopStatus | None:
    """The status in the file, or None when there is none. ValueError when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from err
    return LoopStatus.from_json(text)


def describe_status(status: LoopStatus | None, now: datetime, *, stale_after: float) -> list[str]:
    """The loop's health in plain words, one line each (``kiosk status``)."""
    if status is None:
        return ["kiosk: no status yet (the kiosk has not run with this database)"]
    since = _ago((now - status.updated_utc).total_seconds())
    if status.state == "stopped":
        return [f"kiosk: stopped {since} ago (pid {status.pid}, source {status.source})"]
    if (now - status.updated_utc).total_seconds() > stale_after:
        return [
            f"kiosk: NOT RESPONDING: its status was last written {since} ago "
            f"(pid {status.pid}); see `journalctl -u clockface-kiosk`"
        ]
    lines = [
        f"kiosk: running since {status.started_utc.astimezone():%Y-%m-%d %H:%M} "
        f"(pid {status.pid}), source {status.source}"
    ]
    if status.last_frame_utc is None:
        lines.append("camera: no frame yet")
    else:
        age = _ago((now - status.last_frame_utc).total_seconds())
        lines.append(f"camera: {status.fps:.1f} frames per second, last frame {age} ago")
    if status.warning:
        lines.append(f"WARNING: {status.warning}")
    return lines


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} seconds"
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 86400:.0f} days"


# --------------------------------------------------------------------------- the loop's heartbeat


class Heartbeat(Protocol):
    """What the frame loop tells about itself."""

    def ready(self) -> None:
        """The camera and the database are open; frames are about to be read."""

    def alive(self) -> None:
        """One more frame was read and handled."""

    def stopping(self) -> None:
        """The loop is ending."""

    def warn(self, message: str | None) -> None:
        """A lasting condition the operator should know of (the camera has seen motion
        but no face for minutes), or None once it has passed."""


class KioskHeartbeat:
    """Watchdog pings after good frames, ``STATUS=`` and the status file every few seconds.

    ``clock`` (monotonic seconds) paces pings and status; ``wall`` gives the UTC times
    written to the status file. ``status_file`` None writes no file.
    """

    def __init__(
        self,
        notifier: Notifier,
        *,
        source: str,
        status_file: Path | None = None,
        status_every: float = STATUS_EVERY,
        clock: Clock = time.monotonic,
        wall: WallClock = lambda: datetime.now(UTC),
    ) -> None:
        if not status_every > 0:
            raise ValueError(f"status_every must be more than 0, not {status_every}")
        self.notifier = notifier
        self.source = source
        self.status_file = status_file
        self.status_every = status_every
        self._clock = clock
        self._wall = wall
        interval = notifier.watchdog_seconds
        self._ping_every = interval / 4 if interval else None  # None: no watchdog to ping
        self._started = wall()
        self.frames = 0
        self._last_ping = -math.inf
        self._last_status = clock()
        self._window_frames = 0
        self._fps = 0.0
        self._last_frame: datetime | None = None
        self._file_failing = False
        self._warning: str | None = None

    def ready(self) -> None:
        self._last_status = self._clock()
        self.notifier.ready(f"reading frames from {self.source}")
        self._publish("running")

    def alive(self) -> None:
        now = self._clock()
        self.frames += 1
        self._window_frames += 1
        self._last_frame = self._wall()
        if self._ping_every is not None and now - self._last_ping >= self._ping_every:
            self.notifier.ping()
            self._last_ping = now
        elapsed = now - self._last_status
        if elapsed >= self.status_every:
            self._fps = self._window_frames / elapsed
            self._window_frames = 0
            self._last_status = now
            self.notifier.status(f"{self._fps:.1f} frames/s from {self.source}")
            self._publish("running")

    def stopping(self) -> None:
        self.notifier.stopping()
        self._publish("stopped")

    def warn(self, message: str | None) -> None:
        self._warning = message
        self._publish("running")

    def _publish(self, state: str) -> None:
        if self.status_file is None:
            return
        status = LoopStatus(
            pid=os.getpid(),
            source=self.source,
            state=state,
            started_utc=self._started,
            updated_utc=self._wall(),
            last_frame_utc=self._last_frame,
            frames=self.frames,
            fps=round(self._fps, 2),
            warning=self._warning,
        )
        try:
            write_status(self.status_file, status)
        except OSError as err:  # a full disk must not stop the kiosk; say so once
            if not self._file_failing:
                log.warning("cannot write %s: %s", self.status_file, err.strerror or err)
            self._file_failing = True
        else:
            self._file_failing = False


# --------------------------------------------------------------------------- the journal

_PRIORITIES = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``: journald reads the prefix as the line's level."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        level = max((lv for lv in _PRIORITIES if lv <= record.levelno), default=logging.DEBUG)
        text = super().format(record)
        # journald makes one entry per line: give every line the prefix, not just the first.
        prefix = f"<{_PRIORITIES[level]}>"
        return "\n".join(prefix + line for line in text.splitlines() or [""])


def under_journal(environ: Mapping[str, str] | None = None, stream: Any = None) -> bool:
    """Whether ``stream`` (stderr) is the journal: ``$JOURNAL_STREAM`` names its device
    and inode (``systemd.exec(5)``)."""
    environ = os.environ if environ is None else environ
    stream = sys.stderr if stream is None else stream
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        info = os.fstat(stream.fileno())
        return (info.st_dev, info.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):
        return False


def _one_line(text: str) -> str:
    return " ".join(text.split())
