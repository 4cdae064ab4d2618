"""The central service served by a real uvicorn server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from central.app import create_app
from central.config import CentralConfig
from central.serving import uvicorn_config
from central.store import CentralStore
from tests.helpers.fakes import CHEAP_PASSWORDS


@contextmanager
def serving(store: CentralStore, config: CentralConfig | None = None) -> Iterator[str]:
    """The central service over ``store`` on loopback; yields its base URL."""
    # Supervisors' passwords at a cheap scrypt cost (tests/test_web_accounts.py proves
    # the service's default).
    app = create_app(store, config, password_cost=CHEAP_PASSWORDS)
    with serving_app(app, config) as base:
        yield base


@contextmanager
def serving_app(app: FastAPI, config: CentralConfig | None = None) -> Iterator[str]:
    """A uvicorn server in a thread on a free loopback port, set up as ``clockface
    central serve`` sets it up (:func:`central.serving.uvicorn_config`); yields its base
    URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, config or CentralConfig(), log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
