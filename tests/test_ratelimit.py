"""central.ratelimit.FailureLimiter on a fake clock: limits, windows, memory bound, log."""

from __future__ import annotations

import logging

import pytest

from central.ratelimit import FailureLimiter, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_is_limited_at_the_nth_failure_for_the_window() -> None:
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock=clock)
    assert limiter.retry_after("10.0.0.1") is None
    assert limiter.failed("10.0.0.1") is None
    assert limiter.failed("10.0.0.1") is None
    assert limiter.failed("10.0.0.1") == 60
    clock.now += 0.5
    assert limiter.retry_after("10.0.0.1") == 60  # rounded up, never 0
    assert limiter.retry_after("10.0.0.2") is None  # another client is not touched
    clock.now += 59.0
    assert limiter.retry_after("10.0.0.1") == 1
    clock.now += 0.5
    assert limiter.retry_after("10.0.0.1") is None
    # a clean slate: it takes the whole count again
    assert limiter.failed("10.0.0.1") is None
    assert limiter.failed("10.0.0.1") is None
    assert limiter.failed("10.0.0.1") == 60


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock=clock)
    for _ in range(10):
        assert limiter.failed("10.0.0.1") is None
        assert limiter.failed("10.0.0.1") is None
        clock.now += 61  # two failures a minute never reach three
    assert limiter.retry_after("10.0.0.1") is None


def test_memory_is_bounded_by_max_clients() -> None:
    clock = Clock()
    limiter = FailureLimiter(2, 60, max_clients=100, clock=clock)
    limiter.failed("192.0.2.1")
    limiter.failed("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == 60
    for i in range(5000):
        limiter.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(limiter) == 100
    # the oldest was forgotten; the limiter's count of limited clients stays right
    assert limiter.retry_after("192.0.2.1") is None
    limiter.failed("10.9.9.9")
    assert limiter.failed("10.9.9.9") == 60
    assert limiter.retry_after("10.9.9.9") == 60


def test_ipv6_clients_are_counted_per_64_network() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::7")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key(None) == "?"
    assert client_key("testclient") == "testclient"
    clock = Clock()
    limiter = FailureLimiter(2, 60, clock=clock)
    limiter.failed("2001:db8:1:2::1")
    assert limiter.failed("2001:db8:1:2::99") == 60
    assert limiter.retry_after("2001:db8:1:2:ffff::") == 60


def test_one_warning_per_limited_client_without_any_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limiter = FailureLimiter(2, 30, clock=clock)
    with caplog.at_level(logging.WARNING, logger="clockface.central"):
        for _ in range(6):
            limiter.failed("198.51.100.4")
            limiter.retry_after("198.51.100.4")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "198.51.100.4" in lines[0] and "30 s" in lines[0]


@pytest.mark.parametrize("args", [{"max_failures": 0}, {"window_seconds": 0}, {"max_clients": 0}])
def test_nonsense_limits_are_refused(args: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FailureLimiter(**args)  # type: ignore[arg-type]
