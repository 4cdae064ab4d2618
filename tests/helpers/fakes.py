"""Small fakes shared by the test modules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)


class FakeClock:
    """Advances one second per reading, from T0."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now
