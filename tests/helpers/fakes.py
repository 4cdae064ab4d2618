"""Small fakes shared by the test modules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from central.web.passwords import ScryptCost

T0 = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)

CHEAP_PASSWORDS = ScryptCost(log_n=10)
"""A scrypt cost for tests that make and sign in many accounts (about 1 ms a hash, where
the service's default takes about 0.4 s); tests/test_web_accounts.py proves the default."""


class FakeClock:
    """Advances one second per reading, from T0."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now
