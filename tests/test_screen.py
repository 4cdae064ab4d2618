"""The kiosk screen's web server over real loopback HTTP: the page, the event stream,
the status, the preview, and the errors an operator can meet."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from clockface.cli import main
from clockface.errors import ScreenError, StoreError
from hardware.feedback import CompositeFeedback, Greeting, LogFeedback
from hardware.sources import FakeSource
from kiosk.screen import Screen
from kiosk.screen.feed import Feed
from kiosk.screen.status import LoopWatch, ScreenStatus
from kiosk.store import KioskStore
from recognition.faces import Box

PAGE = Path(__file__).resolve().parents[1] / "kiosk" / "screen" / "page"
BERLIN = ZoneInfo("Europe/Berlin")
WALL = datetime(2024, 3, 4, 7, 58, tzinfo=UTC)  # 08:58 in Berlin


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Beats:
    """The loop's own heartbeat, as a recorder: what the screen passed on."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def ready(self) -> None:
        self.calls.append("ready")

    def alive(self) -> None:
        self.calls.append("alive")

    def stopping(self) -> None:
        self.calls.append("stopping")

    def warn(self, message: str | None) -> None:
        self.calls.append(f"warn {message}")


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def screen(ticks: Ticks) -> Iterator[Screen]:
    with Screen(port=0, timezone="Europe/Berlin", clock=ticks, wall=lambda: WALL).start() as s:
        yield s


@pytest.fixture
def client(screen: Screen) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=screen.url, timeout=10) as c:
        yield c


def greeting(name: str = "Ada Lovelace", direction: str = "in") -> Greeting:
    return Greeting(name, direction, datetime(2024, 3, 4, 8, 57, 12, tzinfo=BERLIN))


@contextlib.contextmanager
def open_stream(client: httpx.Client, **headers: str) -> Iterator[Iterator[str]]:
    """An event stream's lines, read up to the end of the kiosk's preamble (so it is
    connected)."""
    with client.stream("GET", "/events", headers=headers) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        lines = response.iter_lines()
        preamble = []
        for line in lines:
            if line == "":
                break
            preamble.append(line)
        assert preamble == ["retry: 2000", ": clockface kiosk screen"]
        yield lines


def next_event(lines: Iterator[str]) -> dict[str, str]:
    """The next event's fields (comments, such as keepalives, skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if fields:
                return fields
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    raise AssertionError(f"the stream ended; got {fields}")


# --------------------------------------------------------------------------- the page


def test_the_page_and_its_files_are_served_and_never_cached(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "templates, not\n  photos, are stored; ask HR about your data" in page.text
    assert 'src="/screen.js"' in page.text and 'href="/screen.css"' in page.text
    script = client.get("/screen.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert 'new EventSource("/events")' in script.text
    style = client.get("/screen.css")
    assert style.headers["content-type"].startswith("text/css")
    for answer in (page, script, style):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_the_page_works_offline_and_writes_names_as_text() -> None:
    """Nothing from elsewhere (no CDN, no web font), and no HTML built from data."""
    for path in PAGE.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name
        assert "@import" not in text and "url(" not in text, path.name
    script = (PAGE / "screen.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "textContent" in script


def test_unknown_paths_methods_and_hosts_are_refused(screen: Screen, client: httpx.Client) -> None:
    assert client.get("/etc/passwd").status_code == 404
    assert client.get("/../kiosk/screen/server.py").status_code == 404
    assert client.post("/", content=b"x").status_code == 501
    # A page elsewhere that rebinds its name to 127.0.0.1 still says its own name.
    assert client.get("/status.json", headers={"Host": "attacker.example"}).status_code == 421
    assert client.get("/", headers={"Host": f"localhost:{screen.port}"}).status_code == 200


# --------------------------------------------------------------------------- the event stream


def test_a_greeting_reaches_an_open_stream(screen: Screen, client: httpx.Client) -> None:
    with open_stream(client) as lines:
        screen.greet(greeting("Ada <b>Lovelace</b>"))
        event = next_event(lines)
    assert event["event"] == "greeting"
    assert json.loads(event["data"]) == {
        "salutation": "Good morning",
        "name": "Ada <b>Lovelace</b>",  # as given: the page writes it as text
        "direction": "in",
        "time": "08:57",
        "shown_for": 6.0,
    }


def test_unknown_and_problem_events(screen: Screen, client: httpx.Client) -> None:
    with open_stream(client) as lines:
        screen.unknown()
        unknown = next_event(lines)
        screen.problem("camera:0 stopped delivering frames")
        problem = next_event(lines)
    assert unknown["event"] == "unknown"
    assert json.loads(unknown["data"])["text"] == "Not recognised \u2014 please see reception"
    assert problem["event"] == "problem"
    assert json.loads(problem["data"])["detail"] == "camera:0 stopped delivering frames"
    boot, _, first = unknown["id"].partition("-")
    assert problem["id"] == f"{boot}-{int(first) + 1}"


def test_a_page_that_connects_late_gets_what_is_still_on_show(
    screen: Screen, client: httpx.Client, ticks: Ticks
) -> None:
    screen.greet(greeting("Grace Hopper", "out"))
    ticks.now += 2.5
    with open_stream(client) as lines:
        event = next_event(lines)
    data = json.loads(event["data"])
    assert (data["name"], data["salutation"], data["shown_for"]) == ("Grace Hopper", "Goodbye", 3.5)
    # A reconnecting page names the last event it saw and is not shown it twice.
    with open_stream(client, **{"Last-Event-ID": event["id"]}) as lines:
        screen.unknown()
        assert next_event(lines)["event"] == "unknown"
    # An id from before the kiosk restarted counts for nothing: all on show is sent.
    with open_stream(client, **{"Last-Event-ID": "0badc0de-99"}) as lines:
        assert json.loads(next_event(lines)["data"])["name"] == "Grace Hopper"


def test_closing_the_screen_ends_open_streams(screen: Screen, client: httpx.Client) -> None:
    with open_stream(client) as lines:
        screen.close()
        assert list(lines) == []
    with pytest.raises(httpx.ConnectError):
        client.get("/")
    screen.close()  # twice is harmless


def test_feed_keeps_messages_only_while_on_show() -> None:
    ticks = Ticks()
    feed = Feed(keep=2, clock=ticks)
    first = feed.post("greeting", {"name": "A"}, shown_for=5)
    second = feed.post("unknown", {}, shown_for=2)
    assert feed.showing() == [first, second]
    assert feed.showing(after=first.id) == [second]
    ticks.now += 3
    assert feed.showing() == [first]
    third = feed.post("greeting", {"name": "B"}, shown_for=5)
    assert feed.showing() == [third]  # only the last two are kept
    assert feed.wait(third.id, timeout=0.01) == []


def test_feed_wakes_a_waiting_reader_when_closed() -> None:
    feed = Feed()
    woke: list[object] = []
    reader = threading.Thread(target=lambda: woke.append(feed.wait(0, timeout=60)))
    reader.start()
    feed.close()
    reader.join(timeout=10)
    assert not reader.is_alive() and woke == [[]]


def test_composite_feedback_tells_the_screen_too(screen: Screen, client: httpx.Client) -> None:
    with open_stream(client) as lines:
        CompositeFeedback([LogFeedback(), screen]).greet(greeting())
        assert json.loads(next_event(lines)["data"])["name"] == "Ada Lovelace"


def test_the_journal_gets_no_name(caplog: pytest.LogCaptureFixture) -> None:
    """The log is a copy no erasure reaches: a pass goes there without a name."""
    told = replace(greeting(), person_id="e-17")
    with caplog.at_level(logging.DEBUG):
        LogFeedback().greet(told)
        LogFeedback().greet(greeting(direction="out"))
    assert [r.getMessage() for r in caplog.records] == [
        "logged e-17, in at 08:57",
        "logged a pass, out at 08:57",
    ]
    assert told.name not in caplog.text and told.name.split()[0] not in caplog.text


# --------------------------------------------------------------------------- status


def test_status_follows_the_loop_and_the_store(
    screen: Screen, client: httpx.Client, ticks: Ticks, tmp_path: Path
) -> None:
    assert client.get("/status.json").json()["state"] == "starting"
    inner = Beats()
    with KioskStore.open(tmp_path / "kiosk.db") as store:
        beat = screen.heartbeat(inner, backlog=store.backlog)
        beat.ready()
        for _ in range(20):
            ticks.now += 0.1
            beat.alive()
        store.append_event(
            "ada",
            "in",
            utc=greeting().local_time.astimezone(UTC),
            tz="Europe/Berlin",
            distance=0.4,
            margin=0.2,
            frames=2,
            software_version="test",
        )
        screen.greet(greeting())
        beat.alive()  # the frame after an event counts the backlog again
        status = client.get("/status.json")
        assert status.headers["cache-control"] == "no-store"
        assert status.json() == {
            "state": "running",
            "camera": {"ok": True, "fps": 10.0, "last_frame_age_s": 0.0},
            "sync_backlog": 1,
            "last_event_utc": "2024-03-04T07:57:12Z",
            "last_event_local": "08:57",
            "problem": None,
            "warning": None,
            "timezone": "Europe/Berlin",
            "preview": False,
        }
        ticks.now += 5
        late = client.get("/status.json").json()
        assert late["camera"] == {"ok": False, "fps": 10.0, "last_frame_age_s": 5.0}
        screen.problem("camera:0 stopped delivering frames")
        assert client.get("/status.json").json()["state"] == "problem"
        beat.stopping()
    assert client.get("/status.json").json()["state"] == "stopped"
    assert inner.calls == ["ready"] + ["alive"] * 21 + ["stopping"]


def test_an_earlier_day_shows_its_date() -> None:
    status = ScreenStatus(zone=BERLIN, wall=lambda: WALL)
    status.event(datetime(2024, 3, 1, 16, 30, tzinfo=UTC))
    assert status.as_json()["last_event_local"] == "Fri 01 Mar 17:30"


def test_a_failing_backlog_count_does_not_stop_the_loop() -> None:
    def broken() -> int:
        raise StoreError("kiosk.db: database is locked")

    status = ScreenStatus()
    watch = LoopWatch(status, backlog=broken)
    watch.ready()
    watch.alive()
    assert status.as_json()["sync_backlog"] is None
    assert status.as_json()["state"] == "running"


# --------------------------------------------------------------------------- preview


def test_the_preview_is_off_by_default(client: httpx.Client) -> None:
    answer = client.get("/preview.jpg")
    assert answer.status_code == 404
    assert answer.headers["cache-control"] == "no-store"
    assert client.get("/status.json").json()["preview"] is False


def test_the_preview_shows_the_frame_with_face_boxes(ticks: Ticks) -> None:
    grey = np.full((720, 1280, 3), 90, np.uint8)
    source = FakeSource([grey, grey, grey])
    faces = [(Box(top=200, right=600, bottom=600, left=200), True)]
    with (
        Screen(port=0, preview=True, clock=ticks).start() as screen,
        httpx.Client(base_url=screen.url, timeout=10) as client,
    ):
        assert client.get("/status.json").json()["preview"] is True
        frames = screen.watch(source, lambda: faces)
        assert client.get("/preview.jpg").status_code == 503  # asked: copying starts
        frames.read()
        frames.read()  # the first frame, handled, is lent to the preview
        answer = client.get("/preview.jpg")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/jpeg"
        assert answer.headers["cache-control"] == "no-store"
        image = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        assert image.shape == (360, 640, 3)  # downscaled to 640 wide
        blue, green, red = (int(v) for v in image[200, 100])  # on the box's left edge
        assert green > 150 and red < 60 and blue < 60
        assert abs(int(image[200, 200][1]) - 90) < 10  # inside the box: the frame
        ticks.now += 10  # nobody asked for a while: the copy is dropped
        assert client.get("/preview.jpg").status_code == 503


def test_the_preview_off_leaves_the_source_alone(screen: Screen) -> None:
    source = FakeSource([])
    assert screen.watch(source, lambda: []) is source


# --------------------------------------------------------------------------- errors


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_port_in_use_is_one_clear_error(busy_port: int) -> None:
    with pytest.raises(ScreenError, match=f"127.0.0.1:{busy_port}: the port is in use"):
        Screen(port=busy_port)


def test_an_address_not_on_this_machine_is_one_clear_error() -> None:
    with pytest.raises(ScreenError, match=r"cannot serve the kiosk screen on 192\.0\.2\.1:0: "):
        Screen(host="192.0.2.1", port=0)  # TEST-NET-1: nobody's address


def test_kiosk_run_with_the_port_in_use_says_so_in_one_line(busy_port: int, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["kiosk", "run", "--db", str(tmp_path / "kiosk.db"), "--source", "video:none.mp4",
         "--screen", "--screen-port", str(busy_port)],
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [
        f"Error: cannot serve the kiosk screen on 127.0.0.1:{busy_port}: the port is in use "
        "(is another kiosk running?); stop it or choose another with --screen-port"
    ]
    assert not (tmp_path / "kiosk.db").exists()  # failed before opening anything


def test_kiosk_run_help_names_the_screen_options() -> None:
    result = CliRunner().invoke(main, ["kiosk", "run", "--help"])
    for option in ("--screen / --no-screen", "--screen-port", "--screen-bind", "--screen-preview"):
        assert option in result.output
