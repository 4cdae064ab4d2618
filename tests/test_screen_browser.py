"""The kiosk screen in a real headless Chromium (Debian's, driven by Playwright).

The main test runs ``clockface kiosk run --screen`` on the shared Hamilton clip in real
time, opens the page, waits for Lin-Manuel Miranda's greeting and takes a screenshot;
then stops the kiosk with SIGTERM, as systemd does. Without /usr/bin/chromium these
tests skip, except in CI (``CLOCKFACE_REQUIRE_POSTGRES=1``), where they fail.
"""

from __future__ import annotations

import itertools
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from hardware.feedback import Greeting
from hardware.sources import FakeSource
from kiosk.screen import Screen
from recognition.faces import Box
from tests.helpers.chromium import chromium
from tests.helpers.shared_faces import faces_dir

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; a script error on it fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    errors: list[str] = []
    try:
        opened = context.new_page()
        opened.on("pageerror", lambda error: errors.append(str(error)))
        yield opened
    finally:
        context.close()
    assert not errors, errors


def requests_made(page: Page) -> list[str]:
    """Every URL the page asks for, from now on."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def test_names_are_written_as_text_and_greetings_go_away(page: Page) -> None:
    """A name with markup in it shows as those characters; nothing of it runs."""
    evil = "<img src=x onerror=\"document.title='pwned'\">Eve"
    with Screen(port=0, timezone="Europe/Berlin", greeting_seconds=2.0).start() as screen:
        # Posted before the page connects: a page that comes late still shows it.
        screen.greet(Greeting(evil, "out", datetime(2024, 3, 4, 17, 5, tzinfo=ZoneInfo("UTC"))))
        urls = requests_made(page)
        page.goto(screen.url)
        greeting = page.locator("#greetings .greeting")
        greeting.wait_for(timeout=10_000)
        assert greeting.locator(".name").text_content() == evil
        assert greeting.locator(".salutation").text_content() == "Goodbye,"
        assert greeting.locator(".detail").text_content() == "out at 17:05"
        assert greeting.get_attribute("data-direction") == "out"
        assert page.locator("#greetings img").count() == 0
        assert page.title() == "Attendance kiosk"
        assert "ask HR about your data" in (page.locator(".privacy").text_content() or "")
        greeting.wait_for(state="detached", timeout=10_000)  # shown for a few seconds only
        assert page.locator("#idle").is_visible()
        screen.unknown()
        unknown = page.locator("#unknown")
        unknown.wait_for(timeout=10_000)
        assert unknown.text_content() == "Not recognised \u2014 please see reception"
        screen.problem("camera:0 stopped delivering frames")
        problem = page.locator("#problem")
        problem.wait_for(timeout=10_000)
        assert problem.text_content() == "Out of order \u2014 please see reception"
        page.locator("#status", has_text="PROBLEM: camera:0 stopped delivering frames").wait_for(
            timeout=10_000
        )
    assert urls and all(url.startswith(screen.url) for url in urls), urls


def test_the_preview_shows_when_turned_on(page: Page) -> None:
    frame = np.full((720, 1280, 3), 90, np.uint8)
    faces = [(Box(top=200, right=600, bottom=600, left=200), False)]
    stop = threading.Event()
    with Screen(port=0, preview=True).start() as screen:
        source = screen.watch(FakeSource(itertools.repeat(frame)), lambda: faces)

        def loop() -> None:  # the kiosk's frame loop, at 20 frames a second
            while not stop.wait(0.05):
                source.read()

        frames = threading.Thread(target=loop, daemon=True)
        frames.start()
        try:
            page.goto(screen.url)
            preview = page.locator("#preview")
            preview.wait_for(state="visible", timeout=15_000)
            assert preview.evaluate("image => image.naturalWidth") == 640
        finally:
            stop.set()
            frames.join(timeout=10)


class KioskProcess:
    """``clockface kiosk run`` in a subprocess; its log (stderr) read as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clockface", "kiosk", "run", *args],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.seen: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._lines.put(line)

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"the kiosk never logged {pattern!r}:\n{self.log}")
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    @property
    def log(self) -> str:
        return "".join(self.seen)

    def stop(self) -> str:
        """SIGTERM, as systemd stops it; its standard output once it has ended."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        assert self.process.stdout is not None
        out = self.process.stdout.read()  # one summary line: it fits the pipe
        self._reader.join(timeout=10)  # the log, to its end
        while not self._lines.empty():
            self.seen.append(self._lines.get())
        return out

    def __enter__(self) -> KioskProcess:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.faces
def test_the_screen_greets_lin_from_the_replayed_clip(page: Page, tmp_path: Path) -> None:
    faces = faces_dir()
    env = {**os.environ, "CLOCKFACE_DB": str(tmp_path / "kiosk.db")}
    enrolled = subprocess.run(
        [sys.executable, "-m", "clockface", "enroll", "add", "lin", "--name", "Lin-Manuel Miranda",
         "--consent-ref", "test", "--notice-version", "1",
         str(faces / "lin_manuel_miranda" / "lin_manuel_miranda1.png")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    clip = faces / "video" / "short_hamilton_clip.mp4"
    with KioskProcess(
        ["--timezone", "Europe/Berlin", "--realtime", "--source", str(clip),
         "--screen", "--screen-port", "0"],
        env,
    ) as kiosk:  # fmt: skip
        url = kiosk.wait_for_log(r"screen: serving (http://127\.0\.0\.1:\d+/)").group(1)
        urls = requests_made(page)
        page.goto(url)
        greeting = page.locator("#greetings .greeting", has_text="Lin-Manuel Miranda")
        greeting.wait_for(timeout=30_000)
        assert greeting.get_attribute("data-direction") == "in"
        assert re.fullmatch(r"in at \d\d:\d\d", greeting.locator(".detail").text_content() or "")
        shot = tmp_path / "screen.png"
        page.screenshot(path=str(shot))
        assert shot.read_bytes().startswith(PNG_SIGNATURE) and shot.stat().st_size > 1000
        page.locator("#status", has_text="Camera ok").wait_for(timeout=10_000)
        assert re.fullmatch(r"\d\d:\d\d:\d\d", page.locator("#clock").text_content() or "")

        out = kiosk.stop()
        assert kiosk.process.returncode == 0, kiosk.log
        assert "SIGTERM: stopping" in kiosk.log
        assert re.search(r"^\d+ frames, 1 event, ", out, re.M), out
    port = int(url.rsplit(":", 1)[1].rstrip("/"))
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass  # the screen stopped with the kiosk
    assert all(u.startswith(url) for u in urls), urls
