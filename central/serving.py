"""How ``clockface central serve`` runs its app under uvicorn: one place, so the tests'
server on loopback behaves as the real one does.

Whose address a request is counted under (the failed-token limiter, the sign-in
limiter, the logs) is the peer's, the TCP connection's. ``X-Forwarded-For`` and
``X-Forwarded-Proto`` are believed only from the proxies named in ``trusted_proxies``
(central.toml): otherwise anyone could pick the address they are counted under by
sending the header (uvicorn believes it from 127.0.0.1 by default).
"""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from central.config import CentralConfig


def uvicorn_config(
    app: ASGIApp, config: CentralConfig, *, log_level: str = "warning"
) -> uvicorn.Config:
    """The uvicorn settings of the service: no access log (it would name addresses per
    request), no lifespan events, proxy headers only from ``config.trusted_proxies``."""
    trusted = config.proxies()
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=",".join(trusted) if trusted else "",
    )
