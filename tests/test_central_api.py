"""The central HTTP API, served by a real uvicorn server on loopback, spoken to with httpx.

The ingest and gallery tests run on SQLite and on PostgreSQL (tests/helpers/postgres.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from central.config import CentralConfig
from central.store import CentralStore
from recognition.gallery import EMBEDDING_DIM
from sync.protocol import MAX_BODY_BYTES, GalleryDelta, IngestResponse
from tests.helpers.api import Service, batch, event, one_line_problem, service, template
from tests.helpers.fakes import T0
from tests.helpers.postgres import PostgresCluster, postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.server import serving
from tests.helpers.template_keys import template_key_file  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    return str(tmp_path / "central.db")


@pytest.fixture
def svc(database: str) -> Iterator[Service]:
    with service(database) as s:
        yield s


@pytest.fixture
def lite(sqlite_db: str) -> Iterator[Service]:
    with service(sqlite_db) as s:
        yield s


# --------------------------------------------------------------------- authentication
def test_missing_wrong_or_revoked_tokens_get_401_and_store_nothing(svc: Service) -> None:
    body = batch(event(1))
    wrong = svc.kiosk_token[:-3] + ("abc" if not svc.kiosk_token.endswith("abc") else "xyz")
    for headers in (
        {},
        {"Authorization": f"Bearer {wrong}"},
        {"Authorization": "Bearer cfk_0123456789abcdef_" + "A" * 43},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Basic {svc.kiosk_token}"},
    ):
        response = svc.http.post("/v1/events", json=body, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"
        one_line_problem(response)
    svc.store.revoke_kiosk("door-1")
    response = svc.http.post("/v1/events", json=body, headers=svc.kiosk())
    assert response.status_code == 401 and "revoked" in one_line_problem(response)
    assert svc.store.event_count() == 0


def test_admin_and_kiosk_tokens_are_not_interchangeable(lite: Service) -> None:
    response = lite.http.post("/v1/events", json=batch(event(1)), headers=lite.admin())
    assert response.status_code == 403 and "kiosk token" in one_line_problem(response)
    assert lite.http.get("/v1/gallery", headers=lite.admin()).status_code == 403
    response = lite.http.get("/v1/admin/people", headers=lite.kiosk())
    assert response.status_code == 403 and "admin token" in one_line_problem(response)
    assert lite.http.get("/v1/admin/people").status_code == 401
    assert lite.store.event_count() == 0


# --------------------------------------------------------------------- ingest
def test_a_batch_is_accepted_and_the_same_batch_again_is_all_duplicate(svc: Service) -> None:
    body = batch(event(1), event(2), event(3))
    first = svc.http.post("/v1/events", json=body, headers=svc.kiosk())
    assert first.status_code == 200, first.text
    answer = IngestResponse.model_validate(first.json())
    assert [r.status for r in answer.results] == ["accepted"] * 3
    assert answer.high_water_seq == {"log-a": 3} and isinstance(answer.clock_flagged, bool)
    again = IngestResponse.model_validate(
        svc.http.post("/v1/events", json=body, headers=svc.kiosk()).json()
    )
    assert [r.status for r in again.results] == ["duplicate"] * 3
    assert svc.store.event_count() == 3


def test_out_of_order_batches_show_the_gap_over_http(svc: Service) -> None:
    later = svc.http.post("/v1/events", json=batch(event(3), event(4)), headers=svc.kiosk())
    assert later.json()["high_water_seq"] == {"log-a": 0}
    earlier = svc.http.post("/v1/events", json=batch(event(1), event(2)), headers=svc.kiosk())
    assert earlier.json()["high_water_seq"] == {"log-a": 4}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (batch(event(1), event(0)), "events[1].seq"),
        (batch(event(1, direction="sideways")), "events[0].direction"),
        (batch(event(1, tz="Mars/Olympus")), "events[0].tz"),
        (batch(event(1, surprise=True)), "events[0].surprise"),
        (batch(event(1, utc="2024-03-04T08:00:00")), "events[0].utc"),
        ({"sent_utc": T0.isoformat(), "events": []}, "events"),
        ({"events": [event(1)]}, "sent_utc"),
    ],
)
def test_a_malformed_batch_is_422_with_a_readable_line_and_stores_nothing(
    lite: Service, body: dict[str, Any], where: str
) -> None:
    response = lite.http.post("/v1/events", json=body, headers=lite.kiosk())
    assert response.status_code == 422
    assert where in one_line_problem(response)
    assert lite.store.event_count() == 0


@pytest.mark.parametrize(
    "body",
    [
        batch(event(1, person_id="p\u0000")),
        {"sent_utc": "0001-01-01T00:00:00+01:00", "events": [event(1)]},
        batch(event(1, utc="9999-12-31T23:59:59-05:00")),
    ],
    ids=["nul", "year-1", "year-9999"],
)
def test_unstorable_values_are_422_not_500(svc: Service, body: dict[str, Any]) -> None:
    response = svc.http.post("/v1/events", json=body, headers=svc.kiosk())
    assert response.status_code == 422, response.text
    one_line_problem(response)
    assert svc.store.event_count() == 0


def test_bodies_that_are_not_json_are_422(lite: Service) -> None:
    headers = {**lite.kiosk(), "Content-Type": "application/json"}
    response = lite.http.post("/v1/events", content=b"{not json", headers=headers)
    assert response.status_code == 422
    assert "body: not valid JSON at character 1" in one_line_problem(response)
    latin = lite.http.post("/v1/events", content=b'{"a": "\xff\xfe"}', headers=headers)
    assert latin.status_code == 422 and "not valid JSON" in one_line_problem(latin)
    assert lite.store.event_count() == 0


def test_a_huge_body_is_413_by_its_length_or_as_it_streams(lite: Service) -> None:
    big = b'{"sent_utc": "2024-03-04T08:00:00Z", "events": [' + b" " * MAX_BODY_BYTES + b"]}"
    declared = lite.http.post(
        "/v1/events", content=big, headers={**lite.kiosk(), "Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert str(MAX_BODY_BYTES) in one_line_problem(declared)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    with httpx.Client(base_url=lite.base, timeout=30) as client:
        streamed = client.post(
            "/v1/events",
            content=chunks(),
            headers={**lite.kiosk(), "Content-Type": "application/json"},
        )
    assert "content-length" not in {k.lower() for k in streamed.request.headers}
    assert streamed.status_code == 413
    one_line_problem(streamed)
    assert lite.store.event_count() == 0
    # the service still answers afterwards
    ok = lite.http.post("/v1/events", json=batch(event(1)), headers=lite.kiosk())
    assert ok.status_code == 200


def test_a_smaller_configured_limit_is_honoured(sqlite_db: str) -> None:
    with service(sqlite_db, CentralConfig(max_body_bytes=64 * 1024)) as s:
        events = [event(i, software_version="v" * 190) for i in range(1, 300)]
        response = s.http.post("/v1/events", json=batch(*events), headers=s.kiosk())
        assert response.status_code == 413
        small = s.http.post("/v1/events", json=batch(*events[:10]), headers=s.kiosk())
        assert small.status_code == 200


# --------------------------------------------------------------------- gallery
def test_gallery_delta_and_applied_over_http(svc: Service) -> None:
    admin = svc.admin()
    for i, pid in enumerate(("p1", "p2", "p3")):
        created = svc.http.post(
            "/v1/admin/people",
            json={
                "person_id": pid,
                "name": f"Person {i}",
                "templates": [template(i)],
                "consent": {"reference": f"CF-{i}", "notice_version": "1"},
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
    assert svc.http.delete("/v1/admin/people/p1", headers=admin).json()["version"] == 4
    page = svc.http.get("/v1/gallery", params={"since": 0, "limit": 2}, headers=svc.kiosk())
    assert page.status_code == 200, page.text
    delta = GalleryDelta.model_validate(page.json())
    assert (delta.more, delta.version, delta.erasures) == (True, 3, [])
    assert [p.person_id for p in delta.people] == ["p2", "p3"]
    assert delta.people[0].templates == [template(1)]
    rest = GalleryDelta.model_validate(
        svc.http.get("/v1/gallery", params={"since": 3}, headers=svc.kiosk()).json()
    )
    assert not rest.more and rest.version == 4 and [e.person_id for e in rest.erasures] == ["p1"]
    applied = svc.http.post("/v1/gallery/applied", json={"version": 4}, headers=svc.kiosk())
    assert applied.status_code == 200 and applied.json() == {"version": 4, "receipts": 1}
    erasures = svc.http.get("/v1/admin/erasures", headers=admin).json()
    assert [(e["person_id"], e["confirmed"], e["pending"]) for e in erasures] == [
        ("p1", ["door-1"], [])
    ]
    too_far = svc.http.post("/v1/gallery/applied", json={"version": 9}, headers=svc.kiosk())
    assert too_far.status_code == 422
    one_line_problem(too_far)
    for params in ({"since": -1}, {"limit": 0}, {"limit": 5000}, {"since": 2**63}):
        bad = svc.http.get("/v1/gallery", params=params, headers=svc.kiosk())
        assert bad.status_code == 422, params
        assert "query parameter" in one_line_problem(bad)


# --------------------------------------------------------------------- health and metrics
def test_healthz_and_metrics(lite: Service) -> None:
    assert lite.http.get("/healthz").json() == {"status": "ok"}
    lite.store.enroll("p-secret", "Ada Secretname", None, np.full((1, EMBEDDING_DIM), 0.125))
    first = event(1, person_id="p-secret")
    lite.http.post("/v1/events", json=batch(first, event(3)), headers=lite.kiosk())
    lite.http.post("/v1/events", json=batch(first), headers=lite.kiosk())
    metrics = lite.http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = metrics.text.splitlines()
    for expected in (
        "clockface_events_ingested_total 2",
        "clockface_events_duplicate_total 1",
        "clockface_events_conflict_total 0",
        "clockface_ingest_batches_total 2",
        'clockface_kiosk_backlog_events{kiosk="door-1"} 2',
        'clockface_kiosk_clock_flagged{kiosk="door-1"} 1',
        "clockface_roster_version 1",
        "clockface_database_up 1",
    ):
        assert expected in lines, expected
    (seen,) = [x for x in lines if x.startswith("clockface_kiosk_last_seen_seconds{")]
    assert float(seen.split()[-1]) > 1e9
    assert "Secretname" not in metrics.text and "p-secret" not in metrics.text
    for line in lines:  # the exposition format: comments, or NAME{LABELS} VALUE
        assert line.startswith("# ") or len(line.rsplit(" ", 1)) == 2


def test_healthz_is_503_when_postgresql_is_gone(
    postgres_cluster: PostgresCluster,  # noqa: F811
) -> None:
    name = postgres_cluster.create_database()
    with service(postgres_cluster.url(name)) as s:
        postgres_cluster.drop_database(name)
        response = s.http.get("/healthz")
        assert response.status_code == 503 and response.json() == {"status": "unavailable"}
        events = s.http.post("/v1/events", json=batch(event(1)), headers=s.kiosk())
        assert events.status_code == 503
        assert "database is unavailable" in one_line_problem(events)
        assert "clockface_database_up 0" in s.http.get("/metrics").text


# --------------------------------------------------------------------- admin API
def test_admin_sites_and_kiosks(lite: Service) -> None:
    admin = lite.admin()
    created = lite.http.post(
        "/v1/admin/sites", json={"name": "Annex", "timezone": "America/Chicago"}, headers=admin
    )
    assert created.status_code == 201 and created.json()["timezone"] == "America/Chicago"
    assert (
        lite.http.post(
            "/v1/admin/sites", json={"name": "Annex", "timezone": "UTC"}, headers=admin
        ).status_code
        == 409
    )
    assert (
        lite.http.post(
            "/v1/admin/sites", json={"name": "Moon", "timezone": "Moon/Base"}, headers=admin
        ).status_code
        == 422
    )
    assert [s["name"] for s in lite.http.get("/v1/admin/sites", headers=admin).json()] == [
        "Annex",
        "HQ",
    ]
    added = lite.http.post(
        "/v1/admin/kiosks", json={"name": "annex-1", "site": "Annex"}, headers=admin
    )
    assert added.status_code == 201
    token = added.json()["token"]
    assert token.startswith("cfk_") and added.json()["kiosk"]["site"] == "Annex"
    headers = {"Authorization": f"Bearer {token}"}
    assert lite.http.get("/v1/gallery", headers=headers).status_code == 200
    missing_site = lite.http.post(
        "/v1/admin/kiosks", json={"name": "x-1", "site": "Nowhere"}, headers=admin
    )
    assert missing_site.status_code == 404 and "Nowhere" in one_line_problem(missing_site)
    rotated = lite.http.post("/v1/admin/kiosks/annex-1/rotate", headers=admin)
    assert rotated.status_code == 200
    assert lite.http.get("/v1/gallery", headers=headers).status_code == 401
    new_headers = {"Authorization": f"Bearer {rotated.json()['token']}"}
    assert lite.http.get("/v1/gallery", headers=new_headers).status_code == 200
    revoked = lite.http.post("/v1/admin/kiosks/annex-1/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_utc"] is not None
    assert lite.http.get("/v1/gallery", headers=new_headers).status_code == 401
    kiosks = lite.http.get("/v1/admin/kiosks", headers=admin).json()
    assert [(k["name"], k["revoked_utc"] is None) for k in kiosks] == [
        ("annex-1", False),
        ("door-1", True),
    ]
    assert lite.http.post("/v1/admin/kiosks/ghost/revoke", headers=admin).status_code == 404


def test_admin_people_lifecycle(lite: Service) -> None:
    admin = lite.admin()
    person = {
        "person_id": "e-17",
        "name": "Ada Lovelace",
        "team": "ops",
        "templates": [template(1), template(2)],
        "consent": {"reference": "form-17", "notice_version": "2024-01"},
    }
    created = lite.http.post("/v1/admin/people", json=person, headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["template_count"], body["version"], body["team"]) == (2, 1, "ops")
    assert [c["reference"] for c in body["consents"]] == ["form-17"]
    assert lite.http.post("/v1/admin/people", json=person, headers=admin).status_code == 409
    bad_template = {**person, "person_id": "e-18", "templates": [base64.b64encode(b"xyz").decode()]}
    refused = lite.http.post("/v1/admin/people", json=bad_template, headers=admin)
    assert refused.status_code == 422 and "templates[0]" in one_line_problem(refused)
    assert [p["person_id"] for p in lite.http.get("/v1/admin/people", headers=admin).json()] == [
        "e-17"
    ]

    patched = lite.http.patch(
        "/v1/admin/people/e-17", json={"team": None, "active": False}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["team"], patched.json()["active"]) == (None, False)
    assert lite.http.patch("/v1/admin/people/e-17", json={}, headers=admin).status_code == 422
    assert (
        lite.http.patch("/v1/admin/people/nobody", json={"name": "X"}, headers=admin).status_code
        == 404
    )
    more = lite.http.post(
        "/v1/admin/people/e-17/templates", json={"templates": [template(3)]}, headers=admin
    )
    assert more.status_code == 200 and more.json()["person"]["template_count"] == 3
    got = lite.http.get("/v1/admin/people/e-17", headers=admin).json()
    assert got["template_count"] == 3 and got["version"] == lite.store.roster_version()

    gallery = GalleryDelta.model_validate(lite.http.get("/v1/admin/gallery", headers=admin).json())
    assert [(p.person_id, len(p.templates), p.active) for p in gallery.people] == [
        ("e-17", 3, False)
    ]
    erased = lite.http.delete("/v1/admin/people/e-17", headers=admin)
    assert erased.status_code == 200
    assert erased.json()["templates_erased"] == 3
    assert lite.http.get("/v1/admin/people/e-17", headers=admin).status_code == 404
    assert lite.http.delete("/v1/admin/people/e-17", headers=admin).status_code == 404
    audit = lite.http.get("/v1/admin/audit", headers=admin).json()
    assert {"add", "consent", "update", "deactivate", "add_templates", "remove"} <= {
        a["action"] for a in audit if a["kind"] == "person"
    }
    assert all(a["actor"] == "hr" for a in audit if a["kind"] == "person")
    assert "Lovelace" not in json.dumps(audit)


def test_admin_events_are_paged_by_time(lite: Service) -> None:
    events = [event(seq) for seq in range(1, 6)]
    lite.http.post("/v1/events", json=batch(*events), headers=lite.kiosk())
    page = lite.http.get("/v1/admin/events", params={"limit": 3}, headers=lite.admin()).json()
    assert page["more"] and len(page["events"]) == 3
    rest = lite.http.get(
        "/v1/admin/events",
        params={"limit": 3, "after": page["events"][-1]["event_id"]},
        headers=lite.admin(),
    ).json()
    assert not rest["more"]
    assert [e["seq"] for e in page["events"] + rest["events"]] == [1, 2, 3, 4, 5]
    window = lite.http.get(
        "/v1/admin/events",
        params={
            "since_utc": (T0 + timedelta(minutes=2)).isoformat(),
            "until_utc": (T0 + timedelta(minutes=4)).isoformat(),
        },
        headers=lite.admin(),
    ).json()
    assert [e["seq"] for e in window["events"]] == [2, 3]
    assert all(e["kiosk"] == "door-1" for e in window["events"])
    naive = lite.http.get(
        "/v1/admin/events", params={"since_utc": "2024-03-04T08:00:00"}, headers=lite.admin()
    )
    assert naive.status_code == 422


def test_unknown_paths_and_methods_are_one_line_problems(lite: Service) -> None:
    missing = lite.http.get("/v1/nothing")
    assert missing.status_code == 404
    one_line_problem(missing)
    wrong_method = lite.http.delete("/v1/events", headers=lite.kiosk())
    assert wrong_method.status_code == 405
    one_line_problem(wrong_method)


def test_the_openapi_spec_is_served_and_complete(lite: Service) -> None:
    spec = lite.http.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in (
        ("/v1/events", "post"),
        ("/v1/gallery", "get"),
        ("/v1/gallery/applied", "post"),
        ("/v1/admin/sites", "post"),
        ("/v1/admin/kiosks", "post"),
        ("/v1/admin/kiosks/{name}/rotate", "post"),
        ("/v1/admin/kiosks/{name}/revoke", "post"),
        ("/v1/admin/people", "post"),
        ("/v1/admin/people/{person_id}", "patch"),
        ("/v1/admin/people/{person_id}", "delete"),
        ("/v1/admin/people/{person_id}/templates", "post"),
        ("/v1/admin/gallery", "get"),
        ("/v1/admin/erasures", "get"),
        ("/v1/admin/events", "get"),
        ("/v1/admin/audit", "get"),
        ("/healthz", "get"),
        ("/metrics", "get"),
    ):
        assert method in paths[path], (path, method)
    events = paths["/v1/events"]["post"]
    assert events["security"] == [{"kioskToken": []}]
    for code in ("401", "403", "413", "422"):
        assert events["responses"][code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
    schemas = spec["components"]["schemas"]
    assert {"EventBatch", "IngestResponse", "GalleryDelta", "PersonIn", "KioskToken"} <= set(
        schemas
    )
    assert "HTTPValidationError" not in schemas


def test_a_wrong_template_key_is_a_500_for_the_operator_not_an_outage(tmp_path: Path) -> None:
    """The service opened with another key than its templates were sealed with: template
    reads answer 500 naming the key (no Retry-After: waiting will not help), the rest
    keeps working, and nothing of the templates leaks."""
    from clockface.template_key import new_key_file

    database = str(tmp_path / "central.db")
    with CentralStore.open(database, actor="tests") as store:
        store.add_site("HQ", "Europe/Paris")
        store.add_person("ada", "Ada")
        store.add_templates("ada", np.full((1, 128), 0.1, dtype=np.float32))
    other = tmp_path / "other.key"
    new_key_file(other)
    with (
        CentralStore.open(database, actor="tests", key_file=other) as store,
        serving(store) as base,
    ):
        token = store.create_admin("hr")
        with httpx.Client(base_url=base, timeout=30) as http:
            auth = {"Authorization": f"Bearer {token}"}
            answer = http.get("/v1/admin/gallery", headers=auth)
            assert answer.status_code == 500
            assert "Retry-After" not in answer.headers
            assert answer.json()["detail"] == (
                "the service cannot open its stored templates (its template key); "
                "its operator must check template_key_file"
            )
            assert http.get("/v1/admin/people", headers=auth).status_code == 200
            assert http.get("/healthz").status_code == 200  # alive...
            # ... but not ready: a load balancer sends no kiosk here.
            assert http.get("/readyz").status_code == 503
    with CentralStore.open(database, actor="tests") as store, serving(store) as base:
        assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200  # its own key
