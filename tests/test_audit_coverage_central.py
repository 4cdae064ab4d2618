"""Every admin action on the central service leaves its audit entries, naming who and
what, and nothing else does.

- The admin API (``/v1/admin/...``) over a real uvicorn on loopback: each write leaves
  exactly its entries, naming the admin token's name (``Principal.name``, the token's
  owner) as the actor; each GET, each refused write (401, 403, 404, 409, 422) and each
  write that changes nothing leaves the whole database as it was. The audit is read
  from the SQLite file and through ``GET /v1/admin/audit``, and the two must agree.
- ``clockface central supervisor ...`` through the CLI: one entry each, naming the OS
  user; the web page's sign-in, failed sign-ins, lock-out and sign-out over uvicorn.
- ``clockface schedule ...`` on a kiosk database and on a central SQLite database.

Never a person's name, a team, a note, a token, a password or its hash in any entry.
"""

from __future__ import annotations

import shlex
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.config import CentralConfig
from central.store import CentralStore
from central.web.accounts import Accounts
from clockface.values import os_user
from kiosk.store import KioskStore
from tests.helpers.api import Service, service, template
from tests.helpers.cli import run, succeeds
from tests.helpers.server import serving
from tests.helpers.template_keys import template_key_file  # noqa: F401
from tests.helpers.web import csrf_of, login_token, sign_in

ACTOR = os_user()
ADMIN = "hr"  # the admin token tests.test_central_api.Service makes
NAMES = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Renamed Person", "Edsger Dijkstra")
TEAMS = ("Night Crew", "Day Crew")
CONSENT = {"reference": "CF-1", "notice_version": "1"}
PASSWORD = "correct horse battery"
NEW_PASSWORD = "another long password"

Row = tuple[Any, ...]


# --------------------------------------------------------------------- helpers
def snapshot(db: Path) -> dict[str, list[Row]]:
    """Every row of every table of a SQLite file: to show that nothing changed."""
    with closing(sqlite3.connect(db)) as conn:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        ]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


def central_audit(db: Path) -> list[Row]:
    """The central ``audit`` table: (id, at_utc, actor, kind, action, subject, detail)."""
    with closing(sqlite3.connect(db)) as conn:
        return [
            (i, datetime.fromisoformat(at), *rest)
            for i, at, *rest in conn.execute(
                "SELECT id, at_utc, actor, kind, action, subject, detail FROM audit ORDER BY id"
            ).fetchall()
        ]


def check_clean(entries: list[Row], secrets: list[str]) -> None:
    """No name of a person, no team, no printed token, password or hash in any entry."""
    text = "\n".join(" ".join(str(v) for v in entry) for entry in entries)
    for word in (*NAMES, *TEAMS, *secrets):
        assert word not in text, word


# --------------------------------------------------------------------- the admin API
class Desk:
    """A running service over a SQLite file, and what its audit held last time."""

    def __init__(self, svc: Service, db: Path) -> None:
        self.svc = svc
        self.db = db
        self.seen = len(central_audit(db))
        self.tokens: list[str] = [svc.admin_token, svc.kiosk_token]

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.svc.http.request(
            method, path, json=body, headers=self.svc.admin() if headers is None else headers
        )

    def audit_agrees(self) -> list[Row]:
        """The audit from the file, checked against GET /v1/admin/audit."""
        from_file = central_audit(self.db)
        answer = self.svc.http.get(
            "/v1/admin/audit", params={"limit": 10_000}, headers=self.svc.admin()
        )
        assert answer.status_code == 200, answer.text
        from_api = [
            (
                a["id"],
                datetime.fromisoformat(a["at_utc"]),
                a["actor"],
                a["kind"],
                a["action"],
                a["subject"],
                a["detail"],
            )
            for a in answer.json()
        ]
        assert from_api == from_file
        return from_file

    def write(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int,
        entries: list[tuple[str, str, str]],
        actor: str = ADMIN,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A write that must answer ``status`` and add exactly ``entries`` (kind,
        action, subject), each naming ``actor``."""
        response = self.send(method, path, body, headers)
        assert response.status_code == status, (method, path, response.text)
        token = response.json().get("token") if status < 300 else None
        if token:
            self.tokens.append(token)
        audit = self.audit_agrees()
        new = [(a[2], a[3], a[4], a[5]) for a in audit[self.seen :]]
        assert new == [(actor, *e) for e in entries], (method, path, body)
        self.seen = len(audit)
        return response

    def nothing(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        """A request (a read, a refused or an empty write) that must answer ``status``
        and leave every table, the audit among them, as it was."""
        before = snapshot(self.db)
        response = self.svc.http.request(
            method,
            path,
            json=body,
            params=params,
            headers=self.svc.admin() if headers is None else headers,
        )
        assert response.status_code == status, (method, path, body, response.text)
        assert snapshot(self.db) == before, (method, path, body)
        assert len(self.audit_agrees()) == self.seen


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    db = tmp_path / "central.db"
    with service(str(db)) as svc:
        yield Desk(svc, db)


def person(pid: str, name: str, *, templates: int = 1, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "person_id": pid,
        "name": name,
        "templates": [template(i) for i in range(templates)],
        "consent": CONSENT,
    }
    body.update(more)
    return body


def test_each_site_and_kiosk_write_names_the_admin(desk: Desk) -> None:
    desk.write(
        "POST", "/v1/admin/sites", {"name": "Annex", "timezone": "America/Chicago"},
        status=201, entries=[("site", "add", "Annex")],
    )  # fmt: skip
    desk.write(
        "POST", "/v1/admin/kiosks", {"name": "annex-1", "site": "Annex"},
        status=201, entries=[("kiosk", "add", "annex-1")],
    )  # fmt: skip
    desk.write(
        "POST", "/v1/admin/kiosks/annex-1/rotate", status=200,
        entries=[("kiosk", "rotate", "annex-1")],
    )  # fmt: skip
    desk.write(
        "POST", "/v1/admin/kiosks/annex-1/revoke", status=200,
        entries=[("kiosk", "revoke", "annex-1")],
    )  # fmt: skip
    # Revoking a revoked kiosk changes nothing: no entry.
    desk.nothing("POST", "/v1/admin/kiosks/annex-1/revoke", status=200)
    # The entries name the token's holder, whoever that is.
    other = desk.svc.store.create_admin("payroll")
    desk.tokens.append(other)
    desk.seen += 1  # the store's own entry for the new admin
    desk.write(
        "POST", "/v1/admin/sites", {"name": "Depot", "timezone": "UTC"}, status=201,
        entries=[("site", "add", "Depot")], actor="payroll",
        headers={"Authorization": f"Bearer {other}"},
    )  # fmt: skip
    audit = desk.audit_agrees()
    assert [a[6] for a in audit if a[2] != "tests"] == [
        "timezone America/Chicago",
        f"site Annex, token {desk.tokens[2].split('_')[1]}",
        f"new token {desk.tokens[3].split('_')[1]}",
        None,
        "timezone UTC",
    ]
    check_clean(audit, [*desk.tokens, *(t.split("_", 2)[2] for t in desk.tokens)])


def test_each_people_write_leaves_its_documented_entries(desk: Desk) -> None:
    people = "/v1/admin/people"
    desk.write(
        "POST", people, person("e-1", NAMES[0], templates=2, team=TEAMS[0]), status=201,
        entries=[("person", "add", "e-1"), ("person", "add_templates", "e-1"),
                 ("person", "consent", "e-1")],
    )  # fmt: skip
    desk.write(
        "POST", people, person("e-2", NAMES[1], active=False), status=201,
        entries=[("person", "add", "e-2"), ("person", "add_templates", "e-2"),
                 ("person", "deactivate", "e-2"), ("person", "consent", "e-2")],
    )  # fmt: skip
    desk.write(
        "POST", people, person("e-3", NAMES[2], templates=0), status=201,
        entries=[("person", "add", "e-3"), ("person", "consent", "e-3")],
    )  # fmt: skip
    desk.write(
        "POST", f"{people}/e-3/consents", {"reference": "CF-2", "notice_version": "2"},
        status=201, entries=[("person", "consent", "e-3")],
    )  # fmt: skip
    update = [("person", "update", "e-1")]
    desk.write("PATCH", f"{people}/e-1", {"name": NAMES[3]}, status=200, entries=update)
    desk.write("PATCH", f"{people}/e-1", {"team": TEAMS[1]}, status=200, entries=update)
    desk.write("PATCH", f"{people}/e-1", {"team": None}, status=200, entries=update)
    desk.write(
        "PATCH", f"{people}/e-1", {"name": NAMES[4], "team": TEAMS[0]}, status=200,
        entries=update,
    )  # fmt: skip
    desk.write(
        "PATCH", f"{people}/e-1", {"active": False}, status=200,
        entries=[("person", "deactivate", "e-1")],
    )  # fmt: skip
    desk.write(
        "PATCH", f"{people}/e-1", {"active": True}, status=200,
        entries=[("person", "reactivate", "e-1")],
    )  # fmt: skip
    desk.write(
        "PATCH", f"{people}/e-1", {"name": NAMES[3], "active": False}, status=200,
        entries=[("person", "update", "e-1"), ("person", "deactivate", "e-1")],
    )  # fmt: skip
    # Nothing to change (the same name, already inactive): no entry, no new version.
    desk.nothing("PATCH", f"{people}/e-1", {"name": NAMES[3], "active": False}, status=200)
    desk.write(
        "POST", f"{people}/e-1/templates", {"templates": [template(7), template(8)]},
        status=200, entries=[("person", "add_templates", "e-1")],
    )  # fmt: skip
    desk.write("DELETE", f"{people}/e-1", status=200, entries=[("person", "remove", "e-1")])
    # A roster import: each person's entries, in one transaction.
    desk.write(
        "POST", "/v1/admin/roster",
        {"people": [person("e-4", NAMES[0]), person("e-5", NAMES[1], templates=2)]},
        status=201,
        entries=[("person", "add", "e-4"), ("person", "add_templates", "e-4"),
                 ("person", "consent", "e-4"), ("person", "add", "e-5"),
                 ("person", "add_templates", "e-5"), ("person", "consent", "e-5")],
    )  # fmt: skip
    # ... and with replace, an erasure before each person held is added anew.
    desk.write(
        "POST", "/v1/admin/roster",
        {"people": [person("e-4", NAMES[0]), person("e-6", NAMES[2])], "replace": True},
        status=201,
        entries=[("person", "remove", "e-4"), ("person", "add", "e-4"),
                 ("person", "add_templates", "e-4"), ("person", "consent", "e-4"),
                 ("person", "add", "e-6"), ("person", "add_templates", "e-6"),
                 ("person", "consent", "e-6")],
    )  # fmt: skip
    # One person already held refuses the whole batch: nothing written.
    desk.nothing(
        "POST", "/v1/admin/roster",
        {"people": [person("e-7", NAMES[3]), person("e-5", NAMES[1])]}, status=409,
    )  # fmt: skip
    # So does one without consent, wherever it stands.
    no_consent = {k: v for k, v in person("e-8", NAMES[4]).items() if k != "consent"}
    desk.nothing(
        "POST", "/v1/admin/roster", {"people": [person("e-7", NAMES[3]), no_consent]},
        status=422,
    )  # fmt: skip
    audit = desk.audit_agrees()
    details = {(a[4], a[5]): a[6] for a in audit}
    assert details[("add_templates", "e-1")] == "2 added"
    assert details[("remove", "e-1")] == "erased with 4 templates"
    assert details[("consent", "e-1")] == "notice 1"
    assert details[("consent", "e-3")] == "notice 2"  # the last of e-3's two
    updates = [a[6] for a in audit if a[4] == "update"]
    assert updates == ["changed name", "changed team", "changed team", "changed name, team",
                       "changed name"]  # fmt: skip
    check_clean(audit, [*desk.tokens, template(0), template(7)])


def test_refused_writes_change_nothing(desk: Desk) -> None:
    people = "/v1/admin/people"
    desk.write(
        "POST", "/v1/admin/sites", {"name": "Annex", "timezone": "UTC"}, status=201,
        entries=[("site", "add", "Annex")],
    )  # fmt: skip
    desk.write(
        "POST", "/v1/admin/kiosks", {"name": "annex-1", "site": "Annex"}, status=201,
        entries=[("kiosk", "add", "annex-1")],
    )  # fmt: skip
    desk.write(
        "POST", people, person("e-1", NAMES[0]), status=201,
        entries=[("person", "add", "e-1"), ("person", "add_templates", "e-1"),
                 ("person", "consent", "e-1")],
    )  # fmt: skip
    desk.write(
        "POST", "/v1/admin/kiosks/annex-1/revoke", status=200,
        entries=[("kiosk", "revoke", "annex-1")],
    )  # fmt: skip
    desk.svc.store.add_person("e-0", NAMES[4])  # as before consent was asked: none recorded
    desk.seen += 1
    refused: list[tuple[str, str, Any, int]] = [
        ("POST", "/v1/admin/sites", {"name": "Annex", "timezone": "UTC"}, 409),
        ("POST", "/v1/admin/sites", {"name": "Moon", "timezone": "Moon/Base"}, 422),
        ("POST", "/v1/admin/sites", {"name": "", "timezone": "UTC"}, 422),
        ("POST", "/v1/admin/sites", {"name": "X", "timezone": "UTC", "extra": 1}, 422),
        ("POST", "/v1/admin/kiosks", {"name": "annex-1", "site": "Annex"}, 409),
        ("POST", "/v1/admin/kiosks", {"name": "annex-2", "site": "Nowhere"}, 404),
        ("POST", "/v1/admin/kiosks", {"name": "-bad name", "site": "Annex"}, 422),
        ("POST", "/v1/admin/kiosks/ghost/rotate", None, 404),
        ("POST", "/v1/admin/kiosks/ghost/revoke", None, 404),
        ("POST", "/v1/admin/kiosks/annex-1/rotate", None, 422),  # revoked: add a new one
        ("POST", people, person("e-1", NAMES[1]), 409),
        ("POST", people, person("e-2", NAMES[1], templates=0) | {"templates": ["AAAA"]}, 422),
        ("POST", people, {"person_id": "e-2", "consent": CONSENT}, 422),
        ("POST", people, person("e-2", NAMES[1]) | {"consent": {"reference": ""}}, 422),
        (
            "POST",
            people,
            {k: v for k, v in person("e-2", NAMES[1]).items() if k != "consent"},
            422,
        ),  # no consent, and the service declares no other legal basis
        ("POST", f"{people}/nobody/consents", CONSENT, 404),
        ("POST", f"{people}/e-1/consents", {"reference": "CF-3"}, 422),
        ("POST", f"{people}/e-0/templates", {"templates": [template(1)]}, 422),  # no consent
        ("PATCH", f"{people}/nobody", {"name": NAMES[1]}, 404),
        ("PATCH", f"{people}/e-1", {}, 422),
        ("PATCH", f"{people}/e-1", {"name": None}, 422),
        ("PATCH", f"{people}/e-1", {"active": None}, 422),
        ("PATCH", f"{people}/e-1", {"name": ""}, 422),
        ("PATCH", f"{people}/e-1", {"name": NAMES[1], "extra": 1}, 422),
        ("POST", f"{people}/nobody/templates", {"templates": [template(1)]}, 404),
        ("POST", f"{people}/e-1/templates", {"templates": []}, 422),
        ("POST", f"{people}/e-1/templates", {"templates": ["AAAA"]}, 422),
        ("DELETE", f"{people}/nobody", None, 404),
    ]
    for method, path, body, status in refused:
        desk.nothing(method, path, body, status=status)
    # No token, or a kiosk's: nothing either, for every write.
    writes: list[tuple[str, str, Any]] = [
        ("POST", "/v1/admin/sites", {"name": "Depot", "timezone": "UTC"}),
        ("POST", "/v1/admin/kiosks", {"name": "depot-1", "site": "Annex"}),
        ("POST", "/v1/admin/kiosks/door-1/rotate", None),
        ("POST", "/v1/admin/kiosks/door-1/revoke", None),
        ("POST", people, person("e-9", NAMES[2])),
        ("PATCH", f"{people}/e-1", {"active": False}),
        ("POST", f"{people}/e-1/templates", {"templates": [template(2)]}),
        ("POST", f"{people}/e-1/consents", CONSENT),
        ("DELETE", f"{people}/e-1", None),
    ]
    for headers, status in (({}, 401), (desk.svc.kiosk(), 403)):
        for method, path, body in writes:
            desk.nothing(method, path, body, status=status, headers=headers)
    # A wrong token (a few: ten failures in a minute would limit this client).
    wrong = desk.svc.admin_token[:-3] + ("abc" if not desk.svc.admin_token.endswith("abc") else "x")
    for method, path, body in writes[::3]:
        desk.nothing(method, path, body, status=401, headers={"Authorization": f"Bearer {wrong}"})
    # A revoked admin token: refused, nothing written.
    gone = desk.svc.store.create_admin("temp")
    desk.svc.store.revoke_admin("temp")
    desk.seen += 2
    desk.nothing("DELETE", f"{people}/e-1", status=401, headers={"Authorization": f"Bearer {gone}"})
    check_clean(desk.audit_agrees(), [*desk.tokens, gone])


def test_reads_write_nothing(desk: Desk) -> None:
    desk.write(
        "POST", "/v1/admin/people", person("e-1", NAMES[0]), status=201,
        entries=[("person", "add", "e-1"), ("person", "add_templates", "e-1"),
                 ("person", "consent", "e-1")],
    )  # fmt: skip
    desk.write("DELETE", "/v1/admin/people/e-1", status=200, entries=[("person", "remove", "e-1")])
    desk.write(
        "POST", "/v1/admin/people", person("e-2", NAMES[1]), status=201,
        entries=[("person", "add", "e-2"), ("person", "add_templates", "e-2"),
                 ("person", "consent", "e-2")],
    )  # fmt: skip
    reads: list[tuple[str, dict[str, Any] | None, int]] = [
        ("/v1/admin/sites", None, 200),
        ("/v1/admin/kiosks", None, 200),
        ("/v1/admin/people", None, 200),
        ("/v1/admin/people", {"active_only": "true"}, 200),
        ("/v1/admin/people/e-2", None, 200),
        ("/v1/admin/people/e-1", None, 404),
        ("/v1/admin/erasures", None, 200),
        ("/v1/admin/events", None, 200),
        ("/v1/admin/events", {"since_utc": "2024-01-01T00:00:00Z", "limit": 5}, 200),
        ("/v1/admin/audit", None, 200),
        ("/v1/admin/audit", {"after_id": 3, "limit": 2}, 200),
        ("/v1/admin/policy", None, 200),
        ("/healthz", None, 200),
        ("/metrics", None, 200),
        ("/openapi.json", None, 200),
    ]
    for path, params, status in reads:
        desk.nothing("GET", path, status=status, params=params)
    # The one read that is audited: the whole gallery, every template with it.
    desk.write(
        "GET", "/v1/admin/gallery", status=200, entries=[("admin", "gallery_read", "gallery")]
    )
    assert desk.audit_agrees()[-1][6] == "1 person, 1 template"
    # Every admin GET of the spec is among them.
    spec = desk.svc.http.get("/openapi.json").json()["paths"]
    admin_gets = {p for p, ops in spec.items() if p.startswith("/v1/admin/") and "get" in ops}
    assert admin_gets == {p for p, _, _ in reads if p.startswith("/v1/admin/")} - {
        "/v1/admin/people/e-2",
        "/v1/admin/people/e-1",
    } | {"/v1/admin/people/{person_id}", "/v1/admin/gallery"}


def test_every_admin_write_of_the_spec_is_covered(desk: Desk) -> None:
    """The list above must grow with the API: a new write endpoint fails this test."""
    spec = desk.svc.http.get("/openapi.json").json()["paths"]
    writes = {
        (method.upper(), path)
        for path, ops in spec.items()
        if path.startswith("/v1/admin/")
        for method in ops
        if method != "get"
    }
    assert writes == {
        ("POST", "/v1/admin/sites"),
        ("POST", "/v1/admin/kiosks"),
        ("POST", "/v1/admin/kiosks/{name}/rotate"),
        ("POST", "/v1/admin/kiosks/{name}/revoke"),
        ("POST", "/v1/admin/people"),
        ("POST", "/v1/admin/roster"),
        ("PATCH", "/v1/admin/people/{person_id}"),
        ("POST", "/v1/admin/people/{person_id}/consents"),
        ("POST", "/v1/admin/people/{person_id}/templates"),
        ("DELETE", "/v1/admin/people/{person_id}"),
    }


def test_enrolling_under_a_declared_legal_basis_records_it(tmp_path: Path) -> None:
    """With a legal basis other than consent configured, an enrollment without a consent
    records that basis: one more entry, naming the basis and never its note."""
    db = tmp_path / "central.db"
    note = "Employment contract clause 12.3, attendance by face"
    config = CentralConfig(
        database=str(db), legal_basis="employment-contract", legal_basis_note=note
    )
    with service(str(db), config) as svc:
        desk = Desk(svc, db)
        body = {k: v for k, v in person("e-1", NAMES[0]).items() if k != "consent"}
        desk.write(
            "POST", "/v1/admin/people", body, status=201,
            entries=[("person", "add", "e-1"), ("person", "add_templates", "e-1"),
                     ("person", "legal_basis", "e-1")],
        )  # fmt: skip
        desk.write(
            "POST", "/v1/admin/people", person("e-2", NAMES[1]), status=201,
            entries=[("person", "add", "e-2"), ("person", "add_templates", "e-2"),
                     ("person", "consent", "e-2")],
        )  # fmt: skip
        audit = desk.audit_agrees()
        assert audit[-4][6] == "employment-contract"
        check_clean(audit, [note, *desk.tokens])


# --------------------------------------------------------------------- supervisors
@pytest.fixture
def central_db(tmp_path: Path) -> Path:
    db = tmp_path / "central.db"
    with CentralStore.open(db, actor="setup"):
        pass
    return db


def supervisor_entries(db: Path) -> list[Row]:
    return [a for a in central_audit(db) if a[3] == "supervisor"]


def password_hashes(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [r[0] for r in conn.execute("SELECT password_hash FROM supervisors").fetchall()]


def test_each_supervisor_command_leaves_one_entry(central_db: Path, tmp_path: Path) -> None:
    db = str(central_db)
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    short = tmp_path / "short.txt"
    short.write_text("short\n", encoding="utf-8")
    hashes: list[str] = []
    commands: list[tuple[tuple[str, ...], str | None, str | None]] = [
        (("add", "ada", "--password-file", str(secret)), None, "added"),
        (("add", "bob", "--password-file", "-"), NEW_PASSWORD, "added"),
        (("list",), None, None),
        (("disable", "ada"), None, "disabled"),
        (("enable", "ada"), None, "enabled"),
        (("set-password", "ada", "--password-file", "-"), NEW_PASSWORD, "password_set"),
        (("sign-out", "ada"), None, "signed_out"),
        (("list",), None, None),
    ]
    seen = len(central_audit(central_db))
    for args, given, action in commands:
        before = snapshot(central_db)
        hashes += password_hashes(central_db)
        succeeds("central", "supervisor", *args, "--database", db, input=given)
        new = [(a[2], a[4], a[5]) for a in central_audit(central_db)[seen:]]
        if action is None:
            assert snapshot(central_db) == before, args
            assert new == [], args
        else:
            assert new == [(ACTOR, action, args[1])], args
        seen += len(new)
    refused: list[tuple[tuple[str, ...], str | None]] = [
        (("add", "ada", "--password-file", str(secret)), None),  # taken
        (("add", "carol", "--password-file", str(short)), None),  # short
        (("add", "carol", "--password-file", "-"), "short\n"),
        (("add", " carol", "--password-file", str(secret)), None),  # a bad name
        (("add", "carol"), None),  # no terminal to ask
        (("set-password", "ada", "--password-file", str(short)), None),
        (("set-password", "nobody", "--password-file", str(secret)), None),
        (("disable", "nobody"), None),
        (("enable", "nobody"), None),
        (("sign-out", "nobody"), None),
    ]
    for args, given in refused:
        before = snapshot(central_db)
        result = run("central", "supervisor", *args, "--database", db, input=given)
        assert result.exit_code != 0, (args, result.output)
        assert snapshot(central_db) == before, args
    entries = supervisor_entries(central_db)
    assert [(a[2], a[4]) for a in entries] == [
        (ACTOR, "added"), (ACTOR, "added"), (ACTOR, "disabled"), (ACTOR, "enabled"),
        (ACTOR, "password_set"), (ACTOR, "signed_out"),
    ]  # fmt: skip
    check_clean(
        central_audit(central_db),
        [PASSWORD, NEW_PASSWORD, *hashes, *password_hashes(central_db)],
    )


def test_web_sign_in_failures_lock_out_and_sign_out_are_audited(central_db: Path) -> None:
    config = CentralConfig(database=str(central_db))
    with (
        CentralStore.open(central_db, actor="setup") as store,
        serving(store, config) as base,
        httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client,
    ):
        Accounts(store).add("ada", PASSWORD)
        seen = len(central_audit(central_db))

        def step(expected: list[tuple[str, str, str]]) -> list[Row]:
            nonlocal seen
            new = central_audit(central_db)[seen:]
            assert [(a[2], a[4], a[5]) for a in new] == expected
            assert all(a[3] == "supervisor" for a in new)
            seen += len(new)
            return new

        before = snapshot(central_db)
        login_token(client)  # the form: nothing
        forged = client.post(
            "/login", data={"name": "ada", "password": PASSWORD, "login_token": "0" * 64}
        )
        assert forged.status_code == 403  # not this page's form: never checked, nothing
        assert snapshot(central_db) == before
        signed = sign_in(client)
        assert signed.status_code == 303, signed.text
        ((*_, detail),) = step([("ada", "login", "ada")])
        assert detail == "from 127.0.0.1"
        page = client.get("/report")
        assert page.status_code == 200
        step([])
        assert client.post("/logout", data={"csrf_token": "A" * 43}).status_code == 403
        step([])
        assert client.post("/logout", data={"csrf_token": csrf_of(page)}).status_code == 303
        step([("ada", "logout", "ada")])

        assert sign_in(client, name="nobody").status_code == 401
        step([("web", "login_failed", "(unknown name)")])
        for failures in range(1, 5):
            assert sign_in(client, password=NEW_PASSWORD).status_code == 401
            ((*_, detail),) = step([("web", "login_failed", "ada")])
            assert detail == f"wrong password ({failures} in a row), from 127.0.0.1"
        assert sign_in(client, password=NEW_PASSWORD).status_code == 401
        locked, _ = step([("web", "locked", "ada"), ("web", "login_failed", "ada")])
        assert str(locked[6]).startswith("5 wrong passwords in a row; locked until ")
        assert sign_in(client).status_code == 401  # the right password, locked
        ((*_, detail),) = step([("web", "login_failed", "ada")])
        assert str(detail).startswith("account locked until ")

        succeeds("central", "supervisor", "enable", "ada", "--database", str(central_db))
        step([(ACTOR, "enabled", "ada")])
        assert sign_in(client).status_code == 303
        step([("ada", "login", "ada")])
        succeeds("central", "supervisor", "disable", "ada", "--database", str(central_db))
        ((*_, detail),) = step([(ACTOR, "disabled", "ada")])
        assert detail == "1 session ended"
        assert sign_in(client).status_code == 401
        ((*_, detail),) = step([("web", "login_failed", "ada")])
        assert detail == "account disabled, from 127.0.0.1"
        check_clean(
            central_audit(central_db), [PASSWORD, NEW_PASSWORD, *password_hashes(central_db)]
        )


# --------------------------------------------------------------------- schedules
SCHEDULE_FILE = """\
[sites.berlin]
timezone = "Europe/Berlin"
holidays = [2024-10-03]

[[shifts]]
person = "e1"
site = "berlin"
days = "mon-fri"
start = "09:00"
end = "17:00"

[[days_off]]
person = "e1"
from = 2024-07-01
until = 2024-07-05
note = "private leave note"
"""
NOTES = ("private leave note", "Founders Day", "doctor's advice", "sick leave")

# (arguments, the entries (action, subject) it must leave; None: refused, nothing written)
SCHEDULE_STEPS: list[tuple[str, list[tuple[str, str]] | None]] = [
    ("import {file} --dry-run", []),
    ("import {file}", [("schedules_imported", "schedules")]),
    ("import {file}", None),  # stored already: --replace
    ("import {file} --dry-run", None),
    ("import {file} --replace --dry-run", []),
    ("import {file} --replace", [("schedules_replaced", "schedules")]),
    ("import {bad} --replace", None),  # an unknown site
    ("site add paris --timezone Europe/Paris", [("site_added", "site:paris")]),
    ("site add paris --timezone Europe/Paris", None),
    ("site add moon --timezone Moon/Base", None),
    ("site set-timezone paris Europe/Brussels", [("site_timezone_set", "site:paris")]),
    ("site set-timezone nowhere UTC", None),
    ("holiday add paris 2024-12-25 --name 'Founders Day'", [("holiday_added", "site:paris")]),
    ("holiday add paris 2024-12-25", None),
    ("holiday add nowhere 2024-12-25", None),
    ("holiday remove paris 2024-12-25", [("holiday_removed", "site:paris")]),
    ("holiday remove paris 2024-12-25", None),
    (
        "shift add --person e2 --site paris --days sat --start 10:00 --end 14:00 "
        '--note "doctor\'s advice"',
        [("shift_added", "person:e2")],
    ),
    # overlaps the imported mon-fri shift of e1; an unknown site
    ("shift add --person e1 --site berlin --days mon --start 10:00 --end 12:00", None),
    ("shift add --team office --site nowhere --days sat --start 10:00 --end 12:00", None),
    ("site remove paris", None),  # a shift uses it
    ("shift remove {shift}", [("shift_removed", "person:e2")]),
    ("shift remove 9999", None),
    ("site remove paris", [("site_removed", "site:paris")]),
    ("site remove paris", None),
    (
        "shift add --team office --site berlin --days sat --start 10:00 --end 12:00",
        [("shift_added", "team:office")],
    ),
    (
        "day-off add --person e1 --from 2024-08-01 --until 2024-08-02 --note 'sick leave'",
        [("day_off_added", "person:e1")],
    ),
    ("day-off add --person e1 --from 2024-08-05 --until 2024-08-01", None),
    ("day-off remove {day_off}", [("day_off_removed", "person:e1")]),
    ("day-off remove 9999", None),
    ("list", []),
    ("show --person e1 --from 2024-07-01 --to 2024-07-07", []),
    ("export", []),
    ("export -o {export}", []),
]


def schedule_entries(db: Path, kind: str) -> list[Row]:
    """(actor, action, subject, detail) of each schedule entry, oldest first."""
    with closing(sqlite3.connect(db)) as conn:
        if kind == "kiosk":
            sql = "SELECT actor, action, person_id, detail FROM audit ORDER BY id"
        else:
            sql = "SELECT actor, action, subject, detail, kind FROM audit ORDER BY id"
        return [tuple(r) for r in conn.execute(sql).fetchall()]


@pytest.mark.parametrize("kind", ["kiosk", "central"])
def test_each_schedule_change_leaves_one_entry(kind: str, tmp_path: Path) -> None:
    db = tmp_path / f"{kind}.db"
    if kind == "kiosk":
        with KioskStore.open(db, actor="setup") as store:
            store.add_person("e1", NAMES[0], "office")
        target = ("--db", str(db))
    else:
        with CentralStore.open(db, actor="setup") as central:
            central.add_site("berlin", "Europe/Berlin")
            central.add_person("e1", NAMES[0], "office")
        target = ("--central-db", str(db))
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(SCHEDULE_FILE, encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(SCHEDULE_FILE.replace('site = "berlin"', 'site = "atlantis"'), encoding="utf-8")
    fill = {"file": str(schedules), "bad": str(bad), "export": str(tmp_path / "out.toml")}
    seen = len(schedule_entries(db, kind))
    for args, expected in SCHEDULE_STEPS:
        given = tuple(a.format(**fill) for a in shlex.split(args))
        before = snapshot(db)
        result = run("schedule", *given, *target)
        new = schedule_entries(db, kind)[seen:]
        if expected is None:
            assert result.exit_code != 0, (given, result.output)
            assert "Traceback" not in result.output
        else:
            assert result.exit_code == 0, (given, result.output)
        if not expected:
            assert snapshot(db) == before, given
            assert new == [], given
            continue
        assert [(e[0], e[1], e[2]) for e in new] == [(ACTOR, *e) for e in expected], given
        if kind == "central":
            assert {e[4] for e in new} == {"schedule"}
        if given[:2] in (("shift", "add"), ("day-off", "add")):
            name = "shift" if given[0] == "shift" else "day_off"
            fill[name] = result.stdout.splitlines()[0]
            assert f"#{fill[name]} " in str(new[0][3])
        seen += len(new)
    entries = schedule_entries(db, kind)
    check_clean(entries, list(NOTES))
    # Nothing but the setup's own entries and the schedule changes.
    assert {e[0] for e in entries} == {"setup", ACTOR}
