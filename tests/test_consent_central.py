"""Consent on the central roster: ``clockface enroll --central-db`` and ``--server`` and the
admin API refuse templates without the person's consent record, unless central.toml
declares another legal basis, which is then recorded with each person.

Real SQLite files (and PostgreSQL where the admin API refuses), a real uvicorn on
loopback; no face model is loaded: every roster here comes from a roster file or
templates, and the refusals must come before any model would be.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import numpy as np
import pytest

from central.admin_client import AdminClient, read_admin_token
from central.config import CentralConfig
from central.store import CentralStore
from clockface.consent import Consent, LegalBasis
from clockface.errors import StoreValueError
from kiosk.store import KioskStore
from tests.helpers.cli import fails, ok
from tests.helpers.enroll import (
    Service,
    database,  # noqa: F401
    invoke,
    no_models,  # noqa: F401
    service,
)
from tests.helpers.fakes import T0
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.template_keys import template_key_file  # noqa: F401
from tests.helpers.templates import vectors

CONSENT = ("--consent-ref", "CF-{id}", "--notice-version", "3")
NOTE = "employment contract, clause 7"
DECLARED = CentralConfig(legal_basis="employment-contract", legal_basis_note=NOTE)


def snapshot(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of a SQLite file."""
    with closing(sqlite3.connect(db)) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


def audit(db: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT action, subject, coalesce(detail, '') FROM audit ORDER BY id")
        return [(str(a), str(s), str(d)) for a, s, d in rows]


@pytest.fixture
def roster_file(tmp_path: Path) -> Path:
    """A roster file of two people (e1 active, e2 deactivated), written by `enroll export`."""
    kiosk = tmp_path / "source.db"
    with KioskStore.open(kiosk) as store:
        store.enroll("e1", "Ada Lovelace", "Engines", vectors(2), consent=Consent("K", "1", T0))
        store.enroll("e2", "Bob Byron", None, vectors(1, seed=1), consent=Consent("K", "1", T0))
        store.set_active("e2", False)
    file = tmp_path / "roster.json"
    ok(invoke("export", str(file), "--db", str(kiosk)))
    return file


@pytest.fixture
def central_db(tmp_path: Path) -> Path:
    db = tmp_path / "central.db"
    CentralStore.open(db).close()
    return db


@pytest.fixture
def declared_toml(tmp_path: Path) -> Path:
    toml = tmp_path / "central.toml"
    toml.write_text(
        f'[central]\nlegal_basis = "employment-contract"\nlegal_basis_note = "{NOTE}"\n'
    )
    return toml


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Service]:
    with service(str(tmp_path / "served.db"), tmp_path) as s:
        yield s


@pytest.fixture
def declaring(tmp_path: Path) -> Iterator[Service]:
    """A service whose central.toml declares employment-contract."""
    with service(str(tmp_path / "declaring.db"), tmp_path, DECLARED) as s:
        yield s


# --------------------------------------------------------------------- --central-db
@pytest.mark.usefixtures("no_models")
def test_the_central_database_refuses_enrollment_without_consent(
    central_db: Path, roster_file: Path
) -> None:
    before = snapshot(central_db)
    central = ("--central-db", str(central_db))
    for args in (
        ("add", "e9", "--name", "Cy", "photo.jpg", *central),
        ("import", str(roster_file.parent), *central),
        ("import-roster", str(roster_file), *central),
    ):
        error = fails(invoke(*args), "needs the person's consent record", "--consent-ref")
        assert "central.toml [central]" in error and "nothing was enrolled" in error
    assert snapshot(central_db) == before


def test_a_legal_basis_declared_in_central_toml_is_recorded_with_each_person(
    central_db: Path, roster_file: Path, declared_toml: Path
) -> None:
    central = ("--central-db", str(central_db))
    out = ok(invoke("import-roster", str(roster_file), *central, "--config", str(declared_toml)))
    assert "imported 2 people (3 templates)" in out
    with CentralStore.open(central_db) as store:
        for pid in ("e1", "e2"):
            (basis,) = store.lawful_bases(pid)
            assert basis == LegalBasis("employment-contract", NOTE, basis.at_utc)
        assert store.without_lawful_basis() == set()
    assert ("legal_basis", "e1", "employment-contract") in audit(central_db)
    assert NOTE not in repr(audit(central_db))  # the note is on record, not in the audit
    shown = ok(invoke("show", "e1", *central))
    assert f"  consent    legal basis employment-contract: {NOTE} (recorded " in shown
    # The same file named by the environment, as on the central host.
    other = central_db.with_name("other.db")
    CentralStore.open(other).close()
    env = {"CLOCKFACE_CENTRAL_CONFIG": str(declared_toml)}
    ok(invoke("import-roster", str(roster_file), "--central-db", str(other), env=env))
    with CentralStore.open(other) as store:
        assert [type(b) for b in store.lawful_bases("e2")] == [LegalBasis]
    # A consent given anyway is recorded as consent.
    third = central_db.with_name("third.db")
    CentralStore.open(third).close()
    ok(invoke("import-roster", str(roster_file), "--central-db", str(third), *CONSENT, env=env))
    with CentralStore.open(third) as store:
        (given,) = store.lawful_bases("e1")
        assert given == Consent("CF-e1", "3", given.at_utc)


def test_a_bad_declared_basis_is_one_line(central_db: Path, roster_file: Path) -> None:
    toml = central_db.with_name("bad.toml")
    toml.write_text('[central]\nlegal_basis = "public-task"\n')
    before = snapshot(central_db)
    fails(
        invoke("import-roster", str(roster_file), "--central-db", str(central_db), "--config",
               str(toml)),
        "needs legal_basis_note",
    )  # fmt: skip
    assert snapshot(central_db) == before


@pytest.mark.usefixtures("no_models")
def test_people_enrolled_before_consent_was_asked_are_marked_and_can_be_given_one(
    central_db: Path, declared_toml: Path
) -> None:
    with CentralStore.open(central_db) as store:
        store.enroll("old", "Old Timer", None, vectors(1))  # before consent was asked
        store.enroll("new", "Newcomer", None, vectors(1, seed=3), consent=Consent("F", "1", T0))
    central = ("--central-db", str(central_db))
    listed = ok(invoke("list", *central)).splitlines()
    assert listed[0].split() == ["ID", "NAME", "TEAM", "TEMPLATES", "CONSENT"]
    assert listed[1].endswith("yes") and listed[1].startswith("new")
    assert listed[2].endswith("no consent recorded") and listed[2].startswith("old")
    # More templates for someone without a record are refused before a photo is read.
    fails(invoke("add-photos", "old", "photo.jpg", *central), "no consent record", "consent record")
    fails(invoke("consent", "record", "old", *central), "needs the person's consent record")
    fails(invoke("consent", "record", "nobody", *CONSENT, *central), "no person 'nobody'")
    out = ok(invoke("consent", "record", "old", *CONSENT, *central))
    assert out == "old: consent recorded: CF-old (notice 3)\n"
    out = ok(invoke("consent", "record", "old", "--config", str(declared_toml), *central))
    assert out == f"old: legal basis recorded: employment-contract ({NOTE})\n"
    with CentralStore.open(central_db) as store:
        kinds = [type(b) for b in store.lawful_bases("old")]
        assert kinds == [Consent, LegalBasis] and store.without_lawful_basis() == set()
    assert "CONSENT" not in ok(invoke("list", *central))
    assert [a for a in audit(central_db) if a[1] == "old"][-2:] == [
        ("consent", "old", "notice 3"),
        ("legal_basis", "old", "employment-contract"),
    ]


# --------------------------------------------------------------------- --server
@pytest.mark.usefixtures("no_models")
def test_the_service_refuses_enrollment_without_consent_before_any_photo(
    lite: Service, roster_file: Path, tmp_path: Path
) -> None:
    for args in (
        ("add", "e9", "--name", "Cy", "photo.jpg"),
        ("import", str(tmp_path)),
        ("import-roster", str(roster_file)),
    ):
        error = fails(lite.cli(*args), "needs the person's consent record")
        assert "the service's central.toml [central]" in error
    assert lite.store.people() == []
    out = ok(lite.cli("import-roster", str(roster_file), *CONSENT))
    assert "imported 2 people" in out
    (given,) = lite.store.lawful_bases("e2")
    assert given == Consent("CF-e2", "3", given.at_utc)


def test_the_services_declared_basis_is_recorded_over_the_admin_api(
    declaring: Service, roster_file: Path
) -> None:
    ok(declaring.cli("import-roster", str(roster_file)))
    for pid in ("e1", "e2"):
        (basis,) = declaring.store.lawful_bases(pid)
        assert basis == LegalBasis("employment-contract", NOTE, basis.at_utc)
    assert f"legal basis employment-contract: {NOTE}" in ok(declaring.cli("show", "e1"))
    # The client asks the service which basis it records, and never claims another.
    with AdminClient.connect(declaring.url, read_admin_token(declaring.token_file)) as client:
        policy = client.policy()
        assert (policy.legal_basis, policy.legal_basis_note) == ("employment-contract", NOTE)
        assert policy.retention_days == 365
        assert client.lawful_bases("e1") == declaring.store.lawful_bases("e1")
        other = LegalBasis("public-task", "the court's statute", T0)
        with pytest.raises(StoreValueError, match="records the legal basis 'employment-contract'"):
            client.enroll("e3", "Cy", None, vectors(1, seed=5), consent=other)
        with pytest.raises(StoreValueError, match="not 'public-task'"):
            client.record_consent("e1", other)
    assert [p.person_id for p in declaring.store.people()] == ["e1", "e2"]
    assert len(declaring.store.lawful_bases("e1")) == 1


@pytest.mark.usefixtures("no_models")
def test_consent_record_through_the_server(lite: Service) -> None:
    lite.store.enroll("old", "Old Timer", None, vectors(1))
    lite.store.enroll("new", "Newcomer", None, vectors(1, seed=3), consent=Consent("F", "1", T0))
    listed = ok(lite.cli("list")).splitlines()
    assert listed[1].startswith("new") and listed[1].endswith("yes")
    assert listed[2].startswith("old") and listed[2].endswith("no consent recorded")
    fails(lite.cli("add-photos", "old", "photo.jpg"), "no consent record")
    fails(lite.cli("consent", "record", "old"), "the service's central.toml")
    assert ok(lite.cli("consent", "record", "old", *CONSENT)) == (
        "old: consent recorded: CF-old (notice 3)\n"
    )
    (given,) = lite.store.lawful_bases("old")
    assert given == Consent("CF-old", "3", given.at_utc)
    assert [e.actor for e in lite.store.audit_log("old")][-1] == "hr"
    assert "CONSENT" not in ok(lite.cli("list"))


# --------------------------------------------------------------------- the admin API
def _template(seed: int) -> str:
    return base64.b64encode(vectors(1, seed=seed)[0].astype("<f4").tobytes()).decode()


def test_the_admin_api_keeps_templates_only_with_a_lawful_basis(
    database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    with service(database, tmp_path) as svc:
        token = read_admin_token(svc.token_file)
        http = httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"})
        with http:
            policy = http.get("/v1/admin/policy").json()
            assert policy == {
                "legal_basis": "consent",
                "legal_basis_note": "",
                "retention_days": 365,
                "max_body_bytes": 2 * 1024 * 1024,
            }
            body: dict[str, object] = {
                "person_id": "e1",
                "name": "Ada",
                "templates": [_template(1)],
            }
            refused = http.post("/v1/admin/people", json=body)
            assert refused.status_code == 422
            assert "needs the person's consent record" in refused.json()["detail"]
            assert svc.store.people() == [] and svc.store.roster_version() == 0
            # A name without templates needs none yet; its templates do.
            added = http.post("/v1/admin/people", json={"person_id": "e2", "name": "Bo"})
            assert added.status_code == 201 and added.json()["consents"] == []
            more = http.post("/v1/admin/people/e2/templates", json={"templates": [_template(2)]})
            assert more.status_code == 422 and "e2 has no consent record" in more.json()["detail"]
            assert svc.store.get_person("e2").template_count == 0
            nobody = http.post("/v1/admin/people/zz/templates", json={"templates": [_template(2)]})
            assert nobody.status_code == 404
            assert http.post("/v1/admin/people/e2/consents").status_code == 422
            given = http.post(
                "/v1/admin/people/e2/consents", json={"reference": "F-2", "notice_version": "4"}
            )
            assert given.status_code == 201, given.text
            (record,) = given.json()["consents"]
            assert {k: record[k] for k in ("basis", "reference", "notice_version", "note")} == {
                "basis": "consent",
                "reference": "F-2",
                "notice_version": "4",
                "note": None,
            }
            more = http.post("/v1/admin/people/e2/templates", json={"templates": [_template(2)]})
            assert more.status_code == 200, more.text
            body["consent"] = {"reference": "F-1", "notice_version": "4"}
            assert http.post("/v1/admin/people", json=body).status_code == 201


def test_a_declaring_service_answers_the_basis_it_records(declaring: Service) -> None:
    token = read_admin_token(declaring.token_file)
    with httpx.Client(base_url=declaring.url, headers={"Authorization": f"Bearer {token}"}) as http:
        body = {"person_id": "e1", "name": "Ada", "templates": [_template(1)]}
        created = http.post("/v1/admin/people", json=body)
        assert created.status_code == 201, created.text
        (record,) = created.json()["consents"]
        assert (record["basis"], record["note"], record["reference"]) == (
            "employment-contract",
            NOTE,
            None,
        )
    assert np.array_equal(declaring.store.templates("e1"), vectors(1, seed=1))
