"""Events per second ingested by the central service over loopback HTTP.

    uv run python -m bench.ingest                  # SQLite and PostgreSQL, about 2 minutes
    uv run python -m bench.ingest --databases sqlite --events 5000

For each database a real ``clockface central serve`` process is started on loopback
(PostgreSQL: a throwaway cluster, as the tests start one), a kiosk token is made with
``clockface central kiosk add``, and one client in this process posts ``EventBatch``
bodies of 1, 100, 500 and 1,000 events, one request after another over a kept-alive
connection. Bodies are serialised before the clock starts, so the figure is the
service's (HTTP, validation, storage), not the client's. The baseline is the
one-event-per-request figure on the same database, measured in the same run; the ratios
are against it. Every answer is checked: all events ``accepted``, and the high-water
seq the service reports equals the last seq sent (nothing lost, nothing out of place).
Every event carries its kiosk id and its tamper-evident chain (:mod:`clockface.chain`),
computed before the clock starts, as the sync agent sends them, so the figure includes
the service verifying each log's chain; ``/metrics`` must show no kiosk whose chain broke.

Target to report against (issue 4): at least 5,000 events/s with batches of 500 on
PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from clockface import chain

BATCH_SIZES = (1, 100, 500, 1000)
TARGET_BATCH = 500
TARGET_RATE = 5000.0


@dataclass(frozen=True)
class Result:
    database: str
    batch: int
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clockface(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "clockface", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"clockface {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def _server(database: str) -> Iterator[tuple[str, str]]:
    """A central service on loopback over ``database``; yields (base URL, kiosk token)."""
    env = {**os.environ, "CLOCKFACE_CENTRAL_DATABASE": database}
    _clockface("central", "site", "add", "hq", "--timezone", "Europe/Berlin", env=env)
    token = _clockface("central", "kiosk", "add", "bench", "--site", "hq", env=env)
    with central_service(env) as base:
        yield base, token


@contextlib.contextmanager
def central_service(env: dict[str, str]) -> Iterator[str]:
    """``clockface central serve`` on a free loopback port with ``env`` (its database
    and key); yields its base URL once ``/healthz`` answers, and stops it after."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "clockface", "central", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode() if process.stderr else ""
                raise SystemExit(f"the central service did not start: {err.strip()}")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _bodies(log_id: str, first_seq: int, events: int, batch: int) -> list[bytes]:
    start = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    head = chain.genesis(log_id)
    bodies = []
    for lo in range(0, events, batch):
        items = []
        for i in range(lo, min(events, lo + batch)):
            seq = first_seq + i
            item: dict[str, Any] = {
                "event_id": str(uuid.uuid4()),
                "log_id": log_id,
                "seq": seq,
                "kiosk_id": "bench-kiosk",
                "person_id": f"p{seq % 1000:04d}",
                "direction": "in" if seq % 2 else "out",
                "utc": start + timedelta(seconds=seq),
                "tz": "Europe/Berlin",
                "distance": 0.31,
                "margin": 0.22,
                "frames": 3,
                "software_version": "bench",
                "clock_synced": True,
            }
            head = chain.link(head, chain.EventFields.make(**item))
            item["utc"] = item["utc"].isoformat()
            item["chain"] = head
            items.append(item)
        sent = datetime.now(UTC).isoformat()
        bodies.append(json.dumps({"sent_utc": sent, "events": items}).encode())
    return bodies


def measure(base: str, token: str, database: str, batch: int, events: int) -> Result:
    log_id = f"bench-{batch}-{uuid.uuid4().hex[:8]}"
    bodies = _bodies(log_id, 1, events, batch)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        client.get("/healthz")  # connect before the clock starts
        began = time.perf_counter()
        answers = [client.post("/v1/events", content=body) for body in bodies]
        seconds = time.perf_counter() - began
    for answer in answers:
        if answer.status_code != 200:
            raise SystemExit(f"batch of {batch}: HTTP {answer.status_code}: {answer.text[:200]}")
    last = answers[-1].json()
    accepted = sum(sum(r["status"] == "accepted" for r in a.json()["results"]) for a in answers)
    if accepted != events or last["high_water_seq"].get(log_id) != events:
        raise SystemExit(
            f"batch of {batch}: {accepted} of {events} accepted, high water "
            f"{last['high_water_seq'].get(log_id)}: the service lost or refused events"
        )
    with httpx.Client(base_url=base, timeout=60) as client:
        metrics = client.get("/metrics").text
    if re.search(r"^clockface_kiosk_chain_break\{[^}]*\} 1$", metrics, re.MULTILINE):
        raise SystemExit(f"batch of {batch}: the service found the chain broken")
    return Result(database, batch, events, seconds)


def _events_for(batch: int, budget: int) -> int:
    # One event per request is slow: measure it on fewer events, still many requests.
    return max(batch * 4, budget // 10 if batch == 1 else budget)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--events", type=int, default=20_000, help="events per batch size")
    parser.add_argument("--rounds", type=int, default=2, help="best of this many runs")
    args = parser.parse_args(argv)
    wanted = [d.strip() for d in args.databases.split(",") if d.strip()]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="clockface-bench-") as tmp:
        for name in wanted:
            with contextlib.ExitStack() as stack:
                if name == "sqlite":
                    database = str(Path(tmp) / "central.db")
                elif name == "postgresql":
                    from tests.helpers.postgres import cluster

                    database = stack.enter_context(cluster(Path(tmp) / "pg")).url("bench")
                else:
                    raise SystemExit(f"unknown database {name!r}: sqlite or postgresql")
                base, token = stack.enter_context(_server(database))
                for batch in BATCH_SIZES:
                    runs = [
                        measure(base, token, name, batch, _events_for(batch, args.events))
                        for _ in range(args.rounds)
                    ]
                    best = max(runs, key=lambda r: r.rate)
                    results.append(best)
                    print(
                        f"{name:<10} batch {batch:>5}: {best.rate:>8.0f} events/s "
                        f"({best.events} events in {best.seconds:.2f} s, best of {args.rounds})",
                        flush=True,
                    )
    print()
    print(f"{'database':<10} {'batch':>5} {'events/s':>9} {'x one-per-request':>18}")
    for r in results:
        base_rate = next(b.rate for b in results if b.database == r.database and b.batch == 1)
        print(f"{r.database:<10} {r.batch:>5} {r.rate:>9.0f} {r.rate / base_rate:>17.1f}x")
    target = [r for r in results if r.database == "postgresql" and r.batch == TARGET_BATCH]
    if target:
        met = "met" if target[0].rate >= TARGET_RATE else "NOT met"
        print(
            f"\nPostgreSQL, batches of {TARGET_BATCH}: {target[0].rate:.0f} events/s "
            f"(target >= {TARGET_RATE:.0f}: {met})"
        )


if __name__ == "__main__":
    main()
