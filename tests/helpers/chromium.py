"""Debian's Chromium, headless, driven by Playwright: the browser the page tests use.

Playwright downloads nothing here: it launches /usr/bin/chromium (the Debian package,
which `.ci/run` installs) with a fresh temporary profile. Without it a browser test
skips with the reason, except in CI (``CLOCKFACE_REQUIRE_POSTGRES=1``), where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CI = os.environ.get("CLOCKFACE_REQUIRE_POSTGRES") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for one test module (skips, or fails in CI, without one)."""
    if not CHROMIUM.is_file():
        if CI:
            pytest.fail(f"{CHROMIUM} is missing: CI must install it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed here (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives the browser a fresh temporary profile (--user-data-dir).
        found = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield found
        finally:
            found.close()
