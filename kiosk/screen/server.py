"""The kiosk screen: a small web server in the kiosk process, for a full-screen browser.

:class:`Screen` is a :class:`~hardware.feedback.Feedback` (greetings, "not
recognised", problems go to every open page over Server-Sent Events at once) and serves,
on 127.0.0.1 by default:

==================  ===========================================================
``/``               the page (``page/index.html``, with its CSS and script)
``/events``         Server-Sent Events: ``greeting``, ``unknown``, ``problem``
``/status.json``    camera and frames per second, sync backlog, last event
``/preview.jpg``    the live preview with face boxes: 404 unless turned on
==================  ===========================================================

Every answer says ``Cache-Control: no-store``; the page loads nothing from elsewhere
(no CDN, no web fonts) and its Content-Security-Policy allows nothing from elsewhere.
Bound to a loopback address, requests naming any other host are refused (a web page
elsewhere cannot read the screen by DNS rebinding). The server's threads are daemons;
:meth:`Screen.close` ends the event streams and stops serving.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any, Self
from zoneinfo import ZoneInfo

from clockface.closing import Closing
from clockface.errors import ScreenError
from kiosk.screen.feed import Feed, Message
from kiosk.screen.preview import Faces, Preview, PreviewSource
from kiosk.screen.status import LoopWatch, ScreenStatus

if TYPE_CHECKING:
    from hardware.feedback import Greeting
    from hardware.frames import FrameSource
    from hardware.watchdog import Heartbeat

log = logging.getLogger("clockface.screen")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8471
UNKNOWN_TEXT = "Not recognised \N{EM DASH} please see reception"
PROBLEM_TEXT = "Out of order \N{EM DASH} please see reception"

# The page's files, and their content types.
PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/screen.css": ("screen.css", "text/css; charset=utf-8"),
    "/screen.js": ("screen.js", "text/javascript; charset=utf-8"),
}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
}


class Screen(Closing):
    """The kiosk's local page, served while the kiosk runs; a Feedback for the loop.

    Constructing it takes the address (ScreenError when it cannot: the port is in use,
    the address is not this machine's); :meth:`start` serves it (``with
    Screen(...).start() as screen:``). ``port`` 0 takes any free port (:attr:`url` says
    which). ``timezone`` is the kiosk's, for the page's clock and the last event's
    time. ``greeting_seconds`` / ``unknown_seconds``: how long the page shows a
    greeting and a "not recognised". ``keepalive``: seconds between the comments that
    keep an idle event stream open. ``clock`` (monotonic seconds) ages messages, frames
    and the preview; ``wall`` (UTC) says which day is today for the status line.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        preview: bool = False,
        timezone: str = "UTC",
        greeting_seconds: float = 6.0,
        unknown_seconds: float = 4.0,
        keepalive: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.host = host
        self.preview: Preview | None = Preview(clock=clock) if preview else None
        self.greeting_seconds = greeting_seconds
        self.unknown_seconds = unknown_seconds
        self.keepalive = keepalive
        self._clock = clock
        self.feed = Feed(clock=clock)
        self.status = ScreenStatus(zone=ZoneInfo(timezone), preview=preview, clock=clock, wall=wall)
        self._watch: LoopWatch | None = None
        self._server = _bind(host, port, self)
        self.port: int = self._server.server_address[1]
        self._allowed_hosts = _loopback_hosts(self._server, self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="clockface-screen",
            daemon=True,
        )
        self._closed = False

    def start(self) -> Self:
        """Answer requests from now on (on a daemon thread); returns the screen."""
        if not self._thread.is_alive() and not self._closed:
            self._thread.start()
            log.info("screen: serving %s", self.url)
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/"

    # ----------------------------------------------------------- Feedback
    def greet(self, greeting: Greeting) -> None:
        """A pass was logged: show who, which way and when."""
        self.status.event(greeting.local_time.astimezone(UTC))
        if self._watch is not None:
            self._watch.event_committed()
        self.feed.post(
            "greeting",
            {
                "salutation": greeting.salutation,
                "name": greeting.name,
                "direction": greeting.direction,
                "time": f"{greeting.local_time:%H:%M}",
            },
            shown_for=self.greeting_seconds,
        )

    def unknown(self) -> None:
        self.feed.post("unknown", {"text": UNKNOWN_TEXT}, shown_for=self.unknown_seconds)

    def problem(self, message: str) -> None:
        self.status.problem(message)
        self.feed.post("problem", {"text": PROBLEM_TEXT, "detail": message}, shown_for=3600.0)

    # ----------------------------------------------------------- the loop's hooks
    def heartbeat(
        self, inner: Heartbeat | None = None, *, backlog: Callable[[], int] | None = None
    ) -> Heartbeat:
        """The heartbeat to give the frame loop: it feeds the status line (frames per
        second; the sync backlog from ``backlog``, asked on the loop's thread), then
        passes every call on to ``inner``."""
        self._watch = LoopWatch(self.status, inner, backlog=backlog, clock=self._clock)
        return self._watch

    def watch(self, source: FrameSource, faces: Faces) -> FrameSource:
        """The source to give the frame loop: ``source`` itself when the preview is
        off; else a wrapper that lends each handled frame, with ``faces()``, to it."""
        if self.preview is None:
            return source
        return PreviewSource(source, self.preview, faces)

    def note_last_event(self, utc: datetime | None) -> None:
        """The last event logged before this screen started (shown until the next)."""
        if utc is not None:
            self.status.event(utc)

    # ----------------------------------------------------------- lifecycle
    def close(self) -> None:
        """End every event stream and stop serving; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self.feed.close()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        if self.preview is not None:
            self.preview.forget()


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], screen: Screen, family: int) -> None:
        self.address_family = family
        self.screen = screen
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "clockface-screen"
    sys_version = ""
    timeout = 30  # seconds a client may take to send its request or read a write

    def do_GET(self) -> None:
        screen = self.server.screen
        if not self._host_allowed(screen):
            self._send(HTTPStatus.MISDIRECTED_REQUEST, b"wrong host\n", "text/plain")
            return
        path = self.path.split("?", 1)[0]
        if path in PAGE_FILES:
            name, content_type = PAGE_FILES[path]
            body = resources.files("kiosk.screen").joinpath("page", name).read_bytes()
            self._send(HTTPStatus.OK, body, content_type)
        elif path == "/status.json":
            body = json.dumps(screen.status.as_json()).encode()
            self._send(HTTPStatus.OK, body, "application/json")
        elif path == "/events":
            self._stream(screen)
        elif path == "/preview.jpg":
            self._preview(screen)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _host_allowed(self, screen: Screen) -> bool:
        allowed = screen._allowed_hosts
        return allowed is None or (self.headers.get("Host") or "").lower() in allowed

    def _preview(self, screen: Screen) -> None:
        if screen.preview is None:
            self._send(
                HTTPStatus.NOT_FOUND,
                b"the preview is off (kiosk run --screen-preview turns it on)\n",
                "text/plain",
            )
            return
        jpeg = screen.preview.jpeg()
        if jpeg is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"no frame yet\n", "text/plain")
        else:
            self._send(HTTPStatus.OK, jpeg, "image/jpeg")

    def _stream(self, screen: Screen) -> None:
        """Server-Sent Events until the client goes or the screen closes."""
        feed = screen.feed
        boot, _, seen = (self.headers.get("Last-Event-ID") or "").partition("-")
        after = int(seen) if boot == feed.boot and seen.isdigit() else 0
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(b"retry: 2000\n: clockface kiosk screen\n\n")
            while not feed.closed:
                messages = feed.wait(after, screen.keepalive)
                if not messages:
                    if not feed.closed:
                        self.wfile.write(b": keepalive\n\n")
                    continue
                now = feed.now()
                self.wfile.write(b"".join(_event(m, feed.boot, now) for m in messages))
                after = messages[-1].id
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            log.debug("screen: an event stream ended")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("screen: %s %s", self.address_string(), format % args)


def _event(message: Message, boot: str, now: float) -> bytes:
    """One SSE event, its id ``boot-n``; the page shows it for ``shown_for`` seconds,
    what is left of its time at ``now`` (a page that connects late shows it for the
    rest of it)."""
    data = {**message.data, "shown_for": round(message.remaining(now), 1)}
    return f"id: {boot}-{message.id}\nevent: {message.kind}\ndata: {json.dumps(data)}\n\n".encode()


def _bind(host: str, port: int, screen: Screen) -> _Server:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return _Server((host, port), screen, family)
    except OSError as err:
        where = f"{host}:{port}"
        if err.errno == errno.EADDRINUSE:
            raise ScreenError(
                f"cannot serve the kiosk screen on {where}: the port is in use "
                "(is another kiosk running?); stop it or choose another with --screen-port"
            ) from err
        if err.errno == errno.EACCES:
            raise ScreenError(
                f"cannot serve the kiosk screen on {where}: not allowed "
                "(ports below 1024 need root); choose another with --screen-port"
            ) from err
        reason = err.strerror or str(err)
        raise ScreenError(
            f"cannot serve the kiosk screen on {where}: {reason}; "
            "check --screen-bind (127.0.0.1 keeps it on this machine)"
        ) from err


def _loopback_hosts(server: _Server, port: int) -> frozenset[str] | None:
    """The Host headers a loopback-bound screen accepts; None (any) when bound wider."""
    address = ipaddress.ip_address(str(server.server_address[0]))
    if not address.is_loopback:
        return None
    names = ("127.0.0.1", "localhost", "[::1]")
    return frozenset(f"{name}:{port}" for name in names) | (
        frozenset(names) if port == 80 else frozenset()
    )
