"""Rate limiting of failed token checks, per client address: ``FailureLimiter``.

A client (an IPv4 address, or the /64 network of an IPv6 one) that fails token
authentication ``max_failures`` times within ``window_seconds`` is *limited* for
``window_seconds`` from its last failure: every request it makes with a token is then
answered 429 with ``Retry-After``, before the token is even looked at, a right token
included. When the time passes its slate is clean. So a brute-force run gets at most
``max_failures`` guesses a window from one address, and the database is not asked.

- In memory, per process; bounded: at most ``max_clients`` addresses are tracked, the
  least recently seen forgotten first, so many addresses cannot exhaust memory (an
  attacker who owns that many addresses is not stopped per address anyway).
- The success path is one dict lookup (no lock) while nobody is limited.
- One warning line is logged when a client starts being limited (its address and the
  wait; never the token).
- The clock is injectable (``clock=``, seconds, monotonic) so tests need no sleeping.

A kiosk behind the same address (NAT, a proxy) as an attacker is delayed, not refused
for good: the sync agent treats 429 as "retry later" and waits the ``Retry-After``.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("clockface.central")

MAX_FAILURES = 10
WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000


def client_key(address: str | None) -> str:
    """The key a client is counted under: the IPv4 address, the /64 of an IPv6 one,
    the text itself for anything else (a Unix socket, a test client), ``?`` for none."""
    if not address:
        return "?"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(slots=True)
class _Client:
    failures: deque[float] = field(default_factory=deque)
    limited_until: float = 0.0


class FailureLimiter:
    """Counts failed token checks per client; says when a client must wait."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, not {max_failures}")
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be positive, not {window_seconds}")
        if max_clients < 1:
            raise ValueError(f"max_clients must be at least 1, not {max_clients}")
        self.max_failures = max_failures
        self.window_seconds = float(window_seconds)
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._limited = 0  # how many clients may be limited now (a fast path when 0)

    def __len__(self) -> int:
        return len(self._clients)

    def retry_after(self, address: str | None) -> int | None:
        """Whole seconds ``address`` must still wait (at least 1), or None if it may try."""
        if not self._limited:
            return None
        key = client_key(address)
        client = self._clients.get(key)
        if client is None or not client.limited_until:
            return None
        now = self._clock()
        with self._lock:
            if now < client.limited_until:
                return max(1, math.ceil(client.limited_until - now))
            if client.limited_until:  # the time has passed: a clean slate
                client.limited_until = 0.0
                client.failures.clear()
                self._limited -= 1
        return None

    def failed(self, address: str | None) -> int | None:
        """Count one failed token check; the wait in seconds if the client is now limited."""
        key = client_key(address)
        now = self._clock()
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = _Client()
                while len(self._clients) > self.max_clients:
                    _, gone = self._clients.popitem(last=False)
                    if gone.limited_until:
                        self._limited -= 1
            else:
                self._clients.move_to_end(key)
            if client.limited_until:
                if now < client.limited_until:
                    return max(1, math.ceil(client.limited_until - now))
                client.limited_until = 0.0
                client.failures.clear()
                self._limited -= 1
            failures = client.failures
            failures.append(now)
            while failures and failures[0] <= now - self.window_seconds:
                failures.popleft()
            if len(failures) < self.max_failures:
                return None
            client.limited_until = now + self.window_seconds
            failures.clear()
            self._limited += 1
        wait = math.ceil(self.window_seconds)
        log.warning(
            "%d failed token checks from %s within %g s: refusing its tokens for %d s",
            self.max_failures,
            key,
            self.window_seconds,
            wait,
        )
        return wait
