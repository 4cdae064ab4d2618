"""A roster import from an HR laptop: one request per person against one transaction.

    uv run python -m bench.roster_import                 # 500 people, 3 templates each
    uv run python -m bench.roster_import --people 2000

A real ``clockface central serve`` process on loopback over a fresh SQLite database (as
:mod:`bench.ingest` starts it) and an admin token from ``clockface central admin add``.
The same roster (random templates, each person with a consent record) is imported twice,
each time into an empty roster (the first import is erased person by person between
runs, outside the clock):

- **baseline**: one ``POST /v1/admin/people`` per person, as the admin client sent a
  roster before ``POST /v1/admin/roster`` existed: a failure half-way leaves the people
  before it enrolled;
- **clockface**: :meth:`central.admin_client.AdminClient.enroll_many`, which sends the
  roster in one ``POST /v1/admin/roster`` (one transaction: all or none), in batches
  only when it is larger than the service's body limit.

Both are checked afterwards: every person is in the roster with their templates and
consent. Printed: seconds, people per second, and clockface's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from bench.ingest import _clockface, central_service
from central.admin_client import AdminClient
from clockface.consent import Consent
from clockface.roster import NewPerson
from recognition.gallery import EMBEDDING_DIM


@contextmanager
def _service(folder: Path) -> Iterator[tuple[str, str]]:
    """The central service over a new SQLite file; yields (base URL, admin token)."""
    env = {
        **os.environ,
        "CLOCKFACE_CENTRAL_DATABASE": str(folder / "central.db"),
        "CLOCKFACE_TEMPLATE_KEY_FILE": str(folder / "central.key"),
    }
    key = folder / "central.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    token = _clockface("central", "admin", "add", "bench-hr", env=env)
    with central_service(env) as base:
        yield base, token


def _roster(people: int, templates: int) -> list[NewPerson]:
    rng = np.random.default_rng(7)
    return [
        NewPerson(
            f"e{i:05d}",
            f"Person {i}",
            None,
            (rng.normal(size=(templates, EMBEDDING_DIM)) * 0.1).astype(np.float32),
        )
        for i in range(people)
    ]


def _baseline(base: str, token: str, roster: list[NewPerson], now: datetime) -> float:
    """One POST /v1/admin/people per person, bodies made before the clock starts."""
    bodies = [
        {
            "person_id": p.person_id,
            "name": p.name,
            "templates": [
                base64.b64encode(row.astype("<f4").tobytes()).decode()
                for row in np.asarray(p.embeddings)
            ],
            "consent": {"reference": f"CF-{p.person_id}", "notice_version": "1"},
        }
        for p in roster
    ]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
        http.get("/healthz")
        began = time.perf_counter()
        for body in bodies:
            answer = http.post("/v1/admin/people", json=body)
            if answer.status_code != 201:
                raise SystemExit(f"baseline: HTTP {answer.status_code}: {answer.text[:200]}")
        return time.perf_counter() - began


def _clockface_import(base: str, token: str, roster: list[NewPerson], now: datetime) -> float:
    consents = {p.person_id: Consent(f"CF-{p.person_id}", "1", now) for p in roster}
    with AdminClient.connect(base, token) as client:
        client.policy()  # connect before the clock starts
        began = time.perf_counter()
        client.enroll_many(roster, consents=consents)
        return time.perf_counter() - began


def _check_and_empty(base: str, token: str, roster: list[NewPerson], what: str) -> None:
    with AdminClient.connect(base, token) as client:
        gallery = {p.person_id: len(p.templates) for p in client.full_gallery().people}
        wanted = {p.person_id: len(np.asarray(p.embeddings)) for p in roster}
        if gallery != wanted:
            raise SystemExit(f"{what}: the roster holds {len(gallery)} of {len(wanted)} people")
        if not client.lawful_bases(roster[-1].person_id):
            raise SystemExit(f"{what}: no consent recorded")
        for p in roster:
            client.remove_person(p.person_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--templates", type=int, default=3, help="templates per person")
    parser.add_argument("--rounds", type=int, default=2, help="best of this many runs")
    args = parser.parse_args(argv)
    roster = _roster(args.people, args.templates)
    now = datetime.now(UTC)
    best = {"baseline": float("inf"), "clockface": float("inf")}
    with tempfile.TemporaryDirectory() as tmp, _service(Path(tmp)) as (base, token):
        for _ in range(args.rounds):
            for name, run in (("baseline", _baseline), ("clockface", _clockface_import)):
                seconds = run(base, token, roster, now)
                _check_and_empty(base, token, roster, name)
                best[name] = min(best[name], seconds)
    print(
        f"bench.roster_import: {args.people} people, {args.templates} templates each, "
        f"SQLite, best of {args.rounds}"
    )
    print(f"{'import':<50}{'seconds':>9}{'people/s':>10}{'ratio':>8}")
    rows = (
        ("baseline: one POST /v1/admin/people each", best["baseline"]),
        ("clockface: POST /v1/admin/roster, 1 transaction", best["clockface"]),
    )
    for label, seconds in rows:
        ratio = best["baseline"] / seconds
        print(f"{label:<50}{seconds:>9.3f}{args.people / seconds:>10.0f}{ratio:>7.1f}x")


if __name__ == "__main__":
    main()
