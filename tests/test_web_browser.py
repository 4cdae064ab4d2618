"""The supervisors' web page in a real headless Chromium (Debian's, driven by Playwright).

The service is the real app (``create_app``) under uvicorn on loopback, over a central
SQLite database whose clock is fixed at Monday 4 March 2024, 10:30 in Berlin (so the
board never depends on the time of day). The database is filled through the real
paths: sites, kiosk and people through the store, the supervisor with ``clockface
central supervisor add`` and the schedules with ``clockface schedule import
--central-db`` (both real subprocesses), the events replayed by a kiosk through ``POST
/v1/events``. Then the browser signs in through the form, reads today's board, runs a
date-range report, downloads it as CSV (the very bytes of ``clockface report late
--central-db``) with the CSV's verification record (the two verify against the
database with ``clockface report verify``) and XLSX (the same cells, verified too), and
signs out.

Without /usr/bin/chromium these tests skip, except in CI (``CLOCKFACE_REQUIRE_POSTGRES=1``),
where they fail.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from central.config import CentralConfig
from central.store import CentralStore
from tests.helpers.chromium import chromium
from tests.helpers.server import serving
from tests.helpers.web import (
    EVENTS,
    EVIL,
    PASSWORD,
    PEOPLE,
    SCHEDULES,
    Clock,
    post_events,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
FIRST, LAST = "2024-02-26", "2024-03-04"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; a script error or a dialog (an alert) on it fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    problems: list[str] = []
    try:
        opened = context.new_page()
        opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        opened.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
        yield opened
    finally:
        context.close()
    assert not problems, problems


def clockface(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``clockface ARGS`` in a real subprocess; its stdout as bytes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOCKFACE_")}
    done = subprocess.run(
        [sys.executable, "-m", "clockface", *args],
        cwd=ROOT, env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done


def test_sign_in_read_the_board_download_a_report_and_sign_out(page: Page, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    database = str(tmp_path / "central.db")
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    clockface("central", "supervisor", "add", "ada", "--password-file", str(secret),
              "--database", database)  # fmt: skip
    with CentralStore.open(database, actor="tests", clock=Clock()) as store:
        store.add_site("HQ", "Europe/Berlin")
        token = store.create_kiosk("door-1", "HQ").token
        for pid, name, team in PEOPLE:
            store.add_person(pid, name, team)
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(SCHEDULES, encoding="utf-8")
    clockface("schedule", "import", str(schedules), "--central-db", database)

    clock = Clock()
    with (
        CentralStore.open(database, actor="tests", clock=clock) as store,
        serving(store, CentralConfig(database=database)) as base,
    ):
        post_events(base, token, EVENTS)  # the kiosk replays its events
        urls: list[str] = []
        page.on("request", lambda request: urls.append(request.url))

        # Nothing without signing in: the board sends the browser to the form.
        page.goto(f"{base}/")
        assert page.url == f"{base}/login"
        page.fill("#name", "ada")
        page.fill("#password", "not the password")
        page.click("#sign-in")
        assert "Not signed in" in (page.locator("#message").text_content() or "")
        page.fill("#name", "ada")
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(f"{base}/")
        assert page.locator("#user").text_content() == "ada"

        # Today's board, after the replayed events.
        hq = page.locator('section.site[data-site="HQ"]')
        assert "Monday 2024-03-04, 10:30" in (hq.locator("h2").text_content() or "")

        def who(kind: str) -> list[str]:
            rows = hq.locator(f"table.{kind} tr[data-person]")
            return [rows.nth(i).get_attribute("data-person") or "" for i in range(rows.count())]

        assert who("in-now") == ["eve", "bob"]
        assert who("late") == ["bob"]
        assert who("not-arrived") == ["carl"]
        assert who("expected") == ["fay"]
        assert who("off") == ["dan"]
        bob = hq.locator('table.late tr[data-person="bob"] td')
        assert [bob.nth(i).text_content() for i in range(bob.count())] == [
            "Bob Baker", "office", "09:00-17:00", "09:20", "20",
        ]  # fmt: skip
        eve = hq.locator('table.in-now tr[data-person="eve"] td.name')
        assert eve.text_content() == EVIL  # shown as text; nothing of it ran
        assert page.locator("script").count() == 0

        # A date-range report, and its downloads.
        page.click("text=Reports")
        page.wait_for_url(f"{base}/report")
        page.select_option("#kind", "late")
        page.fill("#from", FIRST)
        page.fill("#to", LAST)
        page.click("#show")
        page.wait_for_selector("#report")
        rows = page.locator("#report tbody tr")
        assert rows.count() == 2
        assert "Ada Lovelace" in (rows.nth(0).text_content() or "")
        assert "Bob Baker" in (rows.nth(1).text_content() or "")

        with page.expect_download() as csv_download:
            page.click("#download-csv")
        csv = csv_download.value
        assert csv.suggested_filename == f"clockface-late-{FIRST}-to-{LAST}.csv"
        downloaded = Path(csv.path()).read_bytes()
        cli = clockface("report", "late", "--central-db", database, "--from", FIRST, "--to", LAST)
        assert downloaded == cli.stdout
        lines = downloaded.decode().splitlines()
        assert len(lines) == 3 and lines[1].startswith("2024-03-01,ada,")
        assert lines[2].startswith("2024-03-04,bob,") and lines[2].endswith(",20")
        # The CSV's verification record, a download of its own: saved beside the CSV
        # under its suggested name, the two verify against the database.
        with page.expect_download() as record_download:
            page.click("#download-csv-verify")
        record = record_download.value
        assert record.suggested_filename == f"{csv.suggested_filename}.verify.json"
        folder = tmp_path / "downloads"
        folder.mkdir()
        csv.save_as(folder / csv.suggested_filename)
        record.save_as(folder / record.suggested_filename)
        checked = clockface(
            "report", "verify", str(folder / csv.suggested_filename), "--central-db", database
        )
        assert checked.stdout.decode().startswith("verified: "), checked

        with page.expect_download() as xlsx_download:
            page.click("#download-xlsx")
        xlsx = xlsx_download.value
        assert xlsx.suggested_filename == f"clockface-late-{FIRST}-to-{LAST}.xlsx"
        workbook = tmp_path / "cli.xlsx"
        clockface("report", "late", "--central-db", database, "--from", FIRST, "--to", LAST,
                  "--format", "xlsx", "--output", str(workbook))  # fmt: skip
        ours = load_workbook(io.BytesIO(Path(xlsx.path()).read_bytes()))
        theirs = load_workbook(workbook)
        assert ours.sheetnames == theirs.sheetnames and ours.sheetnames[-1] == "verification"
        for name in ours.sheetnames[:-1]:  # the records differ in when they were made
            assert [list(r) for r in ours[name].iter_rows(values_only=True)] == [
                list(r) for r in theirs[name].iter_rows(values_only=True)
            ]
        assert len(list(ours[ours.sheetnames[0]].iter_rows())) == 3
        # The page's download verifies against the database, as the command's does.
        saved = tmp_path / "page.xlsx"
        saved.write_bytes(Path(xlsx.path()).read_bytes())
        verified = clockface("report", "verify", str(saved), "--central-db", database)
        assert verified.stdout.decode().startswith(f"verified: {saved}: "), verified

        # A bad range is a message on the page.
        page.fill("#from", "2023-01-01")
        page.click("#show")
        assert "366 days at most" in (page.locator("#message").text_content() or "")

        # Signing out ends the session: the board is out of reach again.
        page.click("#sign-out")
        page.wait_for_url(f"{base}/login")
        page.goto(f"{base}/")
        assert page.url == f"{base}/login"
    assert urls and all(url.startswith(base) for url in urls), urls
