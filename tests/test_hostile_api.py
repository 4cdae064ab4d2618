"""Hostile input to the central service, over a real uvicorn on loopback.

Wrong, revoked, other-kind and brute-forced tokens (rate limited: central.ratelimit),
SQL-injection strings as person ids and names, oversized and malformed JSON. Every case
gets one clear line and a status, and the database (every row of every table) is
unchanged afterwards.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from central.app import create_app
from central.config import CentralConfig
from central.ratelimit import FailureLimiter
from central.store import CentralStore
from clockface.values import ID_PATTERN
from tests.helpers.api import batch, event, one_line_problem, template
from tests.helpers.server import serving_app

Dump = dict[str, list[tuple[Any, ...]]]


def dump(path: Path) -> Dump:
    """Every row of every table of a SQLite file, read-only, in a stable order."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
            for name in names
        }
    finally:
        conn.close()


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


class Hostile:
    """A service on loopback with a kiosk and an admin token, and its database file."""

    def __init__(self, store: CentralStore, base: str, path: Path) -> None:
        self.store, self.base, self.path = store, base, path
        store.add_site("HQ", "Europe/Paris")
        self.kiosk_token = store.create_kiosk("door-1", "HQ").token
        self.admin_token = store.create_admin("hr")
        self.http = httpx.Client(base_url=base, timeout=30)

    def kiosk(self, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.kiosk_token}", **more}

    def admin(self, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}", **more}


@contextmanager
def hostile_service(
    tmp_path: Path, limiter: FailureLimiter, config: CentralConfig | None = None
) -> Iterator[Hostile]:
    path = tmp_path / "central.db"
    with (
        CentralStore.open(str(path), actor="tests") as store,
        serving_app(create_app(store, config, auth_limiter=limiter), config) as base,
    ):
        svc = Hostile(store, base, path)
        try:
            yield svc
        finally:
            svc.http.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Iterator[Hostile]:
    """Limits as in production (10 failures a minute) on a fake clock."""
    with hostile_service(tmp_path, FailureLimiter(10, 60, clock=clock)) as s:
        yield s


@pytest.fixture
def lax(tmp_path: Path) -> Iterator[Hostile]:
    """A limit high enough that the malformed-token cases are not rate limited."""
    with hostile_service(tmp_path, FailureLimiter(10_000, 60)) as s:
        yield s


def a_wrong_token(token: str) -> str:
    return token[:-3] + ("abc" if not token.endswith("abc") else "xyz")


# --------------------------------------------------------------------- tokens
def test_wrong_malformed_revoked_and_other_kind_tokens_change_nothing(lax: Hostile) -> None:
    lax.http.post("/v1/events", json=batch(event(1)), headers=lax.kiosk()).raise_for_status()
    before = dump(lax.path)
    wrong_kiosk = a_wrong_token(lax.kiosk_token)
    wrong_admin = a_wrong_token(lax.admin_token)
    # the admin's id with a kiosk prefix: a token of the other kind, forged
    forged = "cfk_" + lax.admin_token[4:]
    cases: list[tuple[str, str, dict[str, str], int, str]] = [
        ("POST", "/v1/events", {"Authorization": f"Bearer {wrong_kiosk}"}, 401, "unknown"),
        ("POST", "/v1/events", {"Authorization": f"Bearer {forged}"}, 401, "unknown"),
        ("POST", "/v1/events", {"Authorization": "Bearer ' OR 1=1 --"}, 401, "not a clock"),
        ("POST", "/v1/events", {"Authorization": "Bearer " + "A" * 10_000}, 401, "not a clock"),
        ("POST", "/v1/events", lax.admin(), 403, "kiosk token"),
        ("GET", "/v1/admin/people", {"Authorization": f"Bearer {wrong_admin}"}, 401, "unknown"),
        ("GET", "/v1/admin/people", lax.kiosk(), 403, "admin token"),
        ("POST", "/v1/admin/sites", lax.kiosk(), 403, "admin token"),
        ("GET", "/v1/admin/people", {}, 401, "token is required"),
    ]
    for method, path, headers, status, words in cases:
        body = batch(event(2)) if path == "/v1/events" else {"name": "X", "timezone": "UTC"}
        response = lax.http.request(method, path, json=body, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert words in one_line_problem(response), response.text
        if status == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert dump(lax.path) == before

    lax.store.revoke_kiosk("door-1")
    revoked = dump(lax.path)
    response = lax.http.post("/v1/events", json=batch(event(3)), headers=lax.kiosk())
    assert response.status_code == 401 and "revoked" in one_line_problem(response)
    response = lax.http.get("/v1/gallery", headers=lax.kiosk())
    assert response.status_code == 401 and "revoked" in one_line_problem(response)
    assert dump(lax.path) == revoked


def test_a_brute_force_run_is_limited_then_the_window_passes(svc: Hostile, clock: Clock) -> None:
    before = dump(svc.path)
    guesses = [f"cfk_{i:016x}_{'A' * 43}" for i in range(10)]
    for guess in guesses:  # ten failures are answered as failures
        response = svc.http.get("/v1/gallery", headers={"Authorization": f"Bearer {guess}"})
        assert response.status_code == 401
    # the eleventh try, and even the right tokens, now get 429 without a token check
    for headers in (
        {"Authorization": f"Bearer {a_wrong_token(svc.kiosk_token)}"},
        svc.kiosk(),
    ):
        response = svc.http.get("/v1/gallery", headers=headers)
        assert response.status_code == 429, response.text
        assert response.headers["Retry-After"] == "60"
        assert "too many failed token checks" in one_line_problem(response)
    response = svc.http.get("/v1/admin/people", headers=svc.admin())
    assert response.status_code == 429
    response = svc.http.post("/v1/events", json=batch(event(1)), headers=svc.kiosk())
    assert response.status_code == 429
    assert dump(svc.path) == before  # not even last_seen moved: the tokens were not looked at

    # another client address is not limited (loopback answers on all of 127/8)
    other = httpx.Client(
        base_url=svc.base,
        transport=httpx.HTTPTransport(local_address="127.0.0.2"),
        timeout=30,
    )
    with other:
        assert other.get("/v1/admin/people", headers=svc.admin()).status_code == 200

    clock.now += 45
    response = svc.http.get("/v1/gallery", headers=svc.kiosk())
    assert response.status_code == 429 and response.headers["Retry-After"] == "15"
    clock.now += 15
    assert svc.http.get("/v1/gallery", headers=svc.kiosk()).status_code == 200
    response = svc.http.post("/v1/events", json=batch(event(1)), headers=svc.kiosk())
    assert response.status_code == 200 and response.json()["results"][0]["status"] == "accepted"
    # a clean slate: the next wrong token is an ordinary 401 again
    response = svc.http.get("/v1/gallery", headers={"Authorization": f"Bearer {guesses[0]}"})
    assert response.status_code == 401


def test_x_forwarded_for_does_not_pick_the_address_a_client_is_counted_under(
    svc: Hostile,
) -> None:
    """Without trusted_proxies nobody's X-Forwarded-For is believed: a client that names
    a new address with every guess is still counted under the one it connects from
    (uvicorn believes the header from 127.0.0.1 by default, so this client on loopback
    used to get ten guesses per made-up address)."""
    for i in range(10):
        guess = {"Authorization": f"Bearer cfk_{i:016x}_{'A' * 43}"}
        response = svc.http.get(
            "/v1/gallery", headers={**guess, "X-Forwarded-For": f"203.0.113.{i}"}
        )
        assert response.status_code == 401
    response = svc.http.get("/v1/gallery", headers=svc.kiosk(**{"X-Forwarded-For": "198.51.100.7"}))
    assert response.status_code == 429, response.text


def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own(
    tmp_path: Path, clock: Clock
) -> None:
    """With trusted_proxies naming the proxy (here, loopback), X-Forwarded-For is the
    client: one client's ten bad tokens limit that client, not every kiosk behind the
    proxy; a header from a peer that is not a trusted proxy is still ignored."""
    config = CentralConfig(trusted_proxies="127.0.0.1, 10.0.0.0/8")
    with hostile_service(tmp_path, FailureLimiter(10, 60, clock=clock), config) as svc:
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        for i in range(10):
            guess = {"Authorization": f"Bearer cfk_{i:016x}_{'A' * 43}", **attacker}
            assert svc.http.get("/v1/gallery", headers=guess).status_code == 401
        assert svc.http.get("/v1/gallery", headers=svc.kiosk(**attacker)).status_code == 429
        kiosk = {"X-Forwarded-For": "198.51.100.7"}
        assert svc.http.get("/v1/gallery", headers=svc.kiosk(**kiosk)).status_code == 200
    with pytest.raises(ValueError, match="not an IP address or network"):
        CentralConfig(trusted_proxies="proxy.example.org")


def test_admin_token_guesses_count_too_and_a_missing_token_does_not(svc: Hostile) -> None:
    for _ in range(15):
        assert svc.http.get("/v1/admin/people").status_code == 401  # no token: no guess
    assert svc.http.get("/v1/admin/people", headers=svc.admin()).status_code == 200
    for i in range(10):
        guess = f"Bearer cfa_{i:016x}_{'B' * 43}"
        assert svc.http.get("/v1/admin/people", headers={"Authorization": guess}).status_code == 401
    response = svc.http.get("/v1/admin/people", headers=svc.admin())
    assert response.status_code == 429 and int(response.headers["Retry-After"]) == 60


# --------------------------------------------------------------------- SQL injection
INJECTIONS = ["'; DROP TABLE events; --", '" OR 1=1 --', "%", "_", "p%", "x_y", "a'b\"c"]


def test_sql_injection_strings_are_refused_as_ids_and_stored_as_names_as_text(
    lax: Hostile,
) -> None:
    lax.http.post("/v1/events", json=batch(event(1)), headers=lax.kiosk()).raise_for_status()
    events_before = dump(lax.path)["events"]
    refused = [text for text in INJECTIONS if not re.fullmatch(ID_PATTERN, text)]
    assert refused == INJECTIONS[:-2] + INJECTIONS[-1:]  # "x_y" is an id
    for text in refused:  # not a person id (clockface.roster's grammar): nothing stored
        before = dump(lax.path)
        response = lax.http.post(
            "/v1/admin/people", json={"person_id": text, "name": "Ann"}, headers=lax.admin()
        )
        assert response.status_code == 422, response.text
        assert one_line_problem(response).startswith("person_id: a person id is 1 to 64")
        assert dump(lax.path) == before
    for i, text in enumerate(INJECTIONS):  # as names and teams: plain text
        response = lax.http.post(
            "/v1/admin/people",
            json={"person_id": f"p{i}", "name": text, "team": text},
            headers=lax.admin(),
        )
        assert response.status_code == 201, response.text
        assert (response.json()["name"], response.json()["team"]) == (text, text), i
    for pid in ("x_y", "p.1"):  # an id holding a LIKE wildcard or a dot matches itself only
        body = {"person_id": pid, "name": pid}
        assert lax.http.post("/v1/admin/people", json=body, headers=lax.admin()).status_code == 201
    for pid, status in (("x_y", 200), ("xay", 404), ("p.1", 200), ("px1", 404)):
        response = lax.http.get("/v1/admin/people/" + pid, headers=lax.admin())
        assert response.status_code == status, (pid, response.text)
    response = lax.http.get("/v1/admin/people/" + _quote("' OR '1'='1"), headers=lax.admin())
    assert response.status_code == 404 and "no person" in one_line_problem(response)
    after = dump(lax.path)
    assert after["events"] == events_before  # the table is there, its rows untouched


# --------------------------------------------------------------------- the id grammar
GRAMMAR = [
    "hr/007", "hr%2F007", "a b", " p1", "p1 ", "-p1", ".p1", "..", "_p", "p1\t", "é1", "p#1",
    "p?1", "x" * 65, "", "\uff411",  # a fullwidth a
]  # fmt: skip


@pytest.mark.parametrize("pid", GRAMMAR)
def test_ids_outside_the_grammar_are_refused_at_every_entry_and_change_nothing(
    lax: Hostile, pid: str
) -> None:
    before = dump(lax.path)
    one = {"person_id": pid, "name": "Ann", "templates": [template(1)]}
    for path, body in (("/v1/admin/people", one), ("/v1/admin/roster", {"people": [one]})):
        response = lax.http.post(path, json=body, headers=lax.admin())
        assert response.status_code == 422, response.text
        assert "a person id is 1 to 64 letters, digits, '.', '_' or '-'" in one_line_problem(
            response
        )
    assert dump(lax.path) == before


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ([0.0] * 128, "all zeros"),
        ([1e38] * 128, "outside 0.7 to 2.8"),
        ([1.0] * 128, "norm 11.3, outside 0.7 to 2.8"),
        ([float("nan")] * 128, "finite"),
    ],
)
def test_templates_that_are_no_face_are_refused_and_change_nothing(
    lax: Hostile, values: list[float], words: str
) -> None:
    import numpy as np

    from sync.protocol import encode_template

    lax.store.enroll("p1", "Ann", None, np.full((1, 128), 0.125), consent=None)
    before = dump(lax.path)
    bad = encode_template(np.array(values, dtype=np.float32))
    for path, body in (
        ("/v1/admin/people", {"person_id": "p2", "name": "Bob", "templates": [bad]}),
        ("/v1/admin/people/p1/templates", {"templates": [template(2), bad]}),
    ):
        response = lax.http.post(path, json=body, headers=lax.admin())
        assert response.status_code == 422, response.text
        assert words in one_line_problem(response), response.text
    assert dump(lax.path) == before


def _quote(text: str) -> str:
    return quote(text, safe="")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("person_id", "a\x00b", "a person id is 1 to 64"),
        ("name", "a\x00b", "control characters"),
        ("person_id", "x" * 5000, "a person id is 1 to 64"),
        ("person_id", "hr/007", "a person id is 1 to 64"),
        ("name", "'; DROP TABLE people; --" * 500, "at most 200"),
        ("name", "\r=1+1", "spaces"),
        ("team", "a\x00b", "control characters"),
    ],
)
def test_unstorable_names_are_422_and_change_nothing(
    lax: Hostile, field: str, value: str, words: str
) -> None:
    before = dump(lax.path)
    body = {"person_id": "p1", "name": "Ann", "team": "Ops", field: value}
    response = lax.http.post("/v1/admin/people", json=body, headers=lax.admin())
    assert response.status_code == 422 and words in one_line_problem(response), response.text
    assert dump(lax.path) == before


# --------------------------------------------------------------------- malformed JSON
def _valid_batch() -> bytes:
    return json.dumps(batch(event(1))).encode()


MALFORMED: list[tuple[str, bytes, str, int, str]] = [
    ("over 2 MiB", b'{"pad": "' + b"x" * (2 * 1024 * 1024 + 10) + b'"}', "json", 413, "larger"),
    ("deep arrays", b"[" * 100_000 + b"]" * 100_000, "json", 422, "nested too deeply"),
    ("deep objects", b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "json", 422, "nested too deeply"),
    ("huge number", _valid_batch().replace(b'"frames": 3', b'"frames": 1' + b"0" * 5000),
     "json", 422, "too many digits"),
    ("infinity", _valid_batch().replace(b'"distance": 0.3', b'"distance": 1e999'),
     "json", 422, "finite"),
    ("NaN", _valid_batch().replace(b'"distance": 0.3', b'"distance": NaN'),
     "json", 422, "distance"),
    ("invalid UTF-8", _valid_batch().replace(b'"p1"', b'"p\xff\xfe"'), "json", 422, "UTF-8"),
    ("truncated", _valid_batch()[:-7], "json", 422, "not valid JSON"),
    ("text/plain", _valid_batch(), "text/plain", 422, "body"),
    ("form", b"sent_utc=x&events=y", "application/x-www-form-urlencoded", 422, "body"),
    ("a JSON string", b'"\\u0000"', "json", 422, "body"),
    ("NUL in a field", json.dumps(batch(event(1, person_id="a\x00b"))).encode(),
     "json", 422, "NUL"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "kind", "status", "words"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_json_on_events_and_admin_is_a_clear_error_and_changes_nothing(
    lax: Hostile, case: str, body: bytes, kind: str, status: int, words: str
) -> None:
    content_type = "application/json" if kind == "json" else kind
    before = dump(lax.path)
    for method, path, headers in (
        ("POST", "/v1/events", lax.kiosk(**{"Content-Type": content_type})),
        ("POST", "/v1/admin/people", lax.admin(**{"Content-Type": content_type})),
        ("PATCH", "/v1/admin/people/p1", lax.admin(**{"Content-Type": content_type})),
    ):
        response = lax.http.request(method, path, content=body, headers=headers)
        if (
            path != "/v1/events"
            and status == 422
            and not words.startswith(("not valid", "nested", "too many", "UTF-8"))
        ):
            # field-level checks differ per endpoint: any one-line 422 (or 404 for PATCH)
            assert response.status_code in (404, 422), (case, path, response.text)
        else:
            assert response.status_code == status, (case, path, response.text)
            assert words in one_line_problem(response), (case, path, response.text)
        one_line_problem(response)
    assert dump(lax.path) == before


def test_duplicate_keys_take_the_last_value_as_json_parsers_do(lax: Hostile) -> None:
    """Not refused (RFC 8259 leaves it to the parser): the last value wins, checked as
    any other, so a duplicate cannot smuggle an unchecked value past validation."""
    before = dump(lax.path)
    body = _valid_batch().replace(
        b'"person_id": "p1"', b'"person_id": "p1", "person_id": "a\\u0000"'
    )
    response = lax.http.post(
        "/v1/events", content=body, headers=lax.kiosk(**{"Content-Type": "application/json"})
    )
    assert response.status_code == 422 and "NUL" in one_line_problem(response)
    assert dump(lax.path) == before
    body = _valid_batch().replace(
        b'"person_id": "p1"', b'"person_id": "x\\u0000", "person_id": "p2"'
    )
    response = lax.http.post(
        "/v1/events", content=body, headers=lax.kiosk(**{"Content-Type": "application/json"})
    )
    assert response.status_code == 200, response.text
    rows = lax.http.get("/v1/admin/events", headers=lax.admin()).json()["events"]
    assert [e["person_id"] for e in rows] == ["p2"]


# --------------------------------------------------------------------- web download
def test_web_csv_download_neutralises_formulas_and_filters_are_plain_text(
    tmp_path: Path,
) -> None:
    from tests.helpers.web import fill, running, sign_in

    path = tmp_path / "central.db"
    with running(str(path)) as site:
        fill(site)
        formulas = {"ada": "=1+1", "bob": "+SUM(A1)", "carl": "-2+3", "dan": "@cmd"}
        for pid, name in formulas.items():
            site.store.update_person(pid, name=name, team="=team")
        with site.client() as client:
            assert sign_in(client).status_code == 303
            query = {"kind": "summary", "from": "2024-02-26", "to": "2024-03-04", "format": "csv"}
            before = dump(path)
            download = client.get("/report/download", params=query)
            assert download.status_code == 200, download.text
            table = list(csv.reader(io.StringIO(download.text, newline="")))
            cells = [cell for row in table[1:] for cell in row]
            for name in formulas.values():
                assert "'" + name in cells and name not in cells, name
            assert "'=team" in cells and "=team" not in cells
            assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
            for text in INJECTIONS:
                for field in ("person", "team"):
                    answer = client.get("/report/download", params={**query, field: text})
                    assert answer.status_code in (200, 400), answer.text
                    if answer.status_code == 200:
                        rows = list(csv.reader(io.StringIO(answer.text, newline="")))
                        assert len(rows) == 1, (field, text, rows)  # the header only
            after = dump(path)
    changed = [name for name in before if before[name] != after[name]]
    assert changed == [], changed
