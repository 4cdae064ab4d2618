"""The roster's rules (clockface.roster) at every entry, and the people stored before them.

One rule per case (the id grammar, names and teams, templates per person, the template
itself), at each entry that adds people: the kiosk store, the central store on SQLite and
on PostgreSQL, the admin client over a real server on loopback, roster files and
``clockface enroll`` with ``--db`` and ``--server``. Each refusal is one line and writes
nothing. People stored under the older, looser rules (an id holding ``/``: issue 15) are
listed by ``enroll check-roster`` and stay reachable through every path, erasure first.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from central.admin_client import AdminClient, read_admin_token
from central.store import CentralStore
from clockface.consent import Consent
from clockface.errors import RosterRuleError, StoreValueError, UnknownPersonError
from clockface.roster import (
    MAX_TEMPLATES_PER_PERSON,
    NewPerson,
    check_person_id,
    roster_offenders,
)
from enrollment.target import EnrollmentRoster
from kiosk.store import KioskStore
from recognition.gallery import EMBEDDING_DIM
from sync.roster_delta import plan_gallery
from tests.helpers.cli import fails, ok
from tests.helpers.enroll import Service, database, invoke, no_models, service  # noqa: F401
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.template_keys import template_key_file  # noqa: F401

FACE = np.full(EMBEDDING_DIM, 0.125)  # norm 1.41, as dlib's face descriptors measure
NOW = datetime(2024, 5, 1, tzinfo=UTC)
CONSENT = ("--consent-ref", "CF-{id}", "--notice-version", "1")

# (what changes in a good person, words of the one-line refusal)
BROKEN: list[tuple[dict[str, Any], str]] = [
    ({"person_id": "hr/007"}, "a person id is 1 to 64 letters, digits, '.', '_' or '-'"),
    ({"person_id": "Ada Lovelace"}, "a person id is 1 to 64 letters"),
    ({"person_id": "x" * 65}, "a person id is 1 to 64 letters"),
    ({"person_id": "-p1"}, "starting with a letter or digit"),
    ({"name": "x" * 201}, "a name is at most 200 characters, not 201"),
    ({"name": "Ann\x1b[31m"}, "a name must hold printable characters only"),
    ({"team": "o\x00ps"}, "a team must hold printable characters only"),
    ({"embeddings": np.tile(FACE, (MAX_TEMPLATES_PER_PERSON + 1, 1))}, "at most 100 are kept"),
    ({"embeddings": np.zeros((1, EMBEDDING_DIM))}, "the template is all zeros"),
    ({"embeddings": np.full((1, EMBEDDING_DIM), 1e38)}, "outside 0.7 to 2.8"),
    ({"embeddings": np.full((1, EMBEDDING_DIM), np.nan)}, "NaN or infinite"),
    ({"embeddings": np.ones((1, EMBEDDING_DIM))}, "has norm 11.3, outside 0.7 to 2.8"),
]
IDS = [f"{next(iter(change))}-{i}" for i, (change, _) in enumerate(BROKEN)]


def good(**change: Any) -> NewPerson:
    fields: dict[str, Any] = {"person_id": "p1", "name": "Ann", "team": "ops"}
    fields["embeddings"] = FACE[None, :]
    fields.update(change)
    return NewPerson(**fields)


# --------------------------------------------------------------------- the rules
@pytest.mark.parametrize(
    "pid", ["lin", "p00000", "obama", "E1042", "hr-007", "ada.lovelace", "a_b", "9", "x" * 64]
)
def test_the_ids_in_use_follow_the_grammar(pid: str) -> None:
    assert check_person_id(pid) == pid


def test_the_real_faces_templates_fall_well_inside_the_norm_range() -> None:
    # Measured over shared/faces (30 faces of the photos, 120 of the video): 1.26 to 1.59.
    from clockface.roster import TEMPLATE_NORM_RANGE

    low, high = TEMPLATE_NORM_RANGE
    assert low <= 1.26 / 1.5 and high >= 1.59 * 1.5


# --------------------------------------------------------------------- every store
@pytest.fixture(params=["kiosk", "sqlite", "postgresql", "server"])
def roster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EnrollmentRoster]:
    """An empty roster: a kiosk database, the central one, or the admin API."""
    if request.param == "kiosk":
        with KioskStore.open(tmp_path / "kiosk.db") as store:
            yield store
        return
    if request.param == "server":
        with service(str(tmp_path / "central.db"), tmp_path) as svc:
            token = read_admin_token(svc.token_file)
            with AdminClient.connect(svc.url, token) as client:
                yield client
        return
    where = str(tmp_path / "central.db") if request.param == "sqlite" else None
    with CentralStore.open(where or request.getfixturevalue("postgres_url")) as store:
        yield store


def _consent(pid: str) -> dict[str, Consent]:
    return {pid: Consent(f"CF-{pid}", "1", NOW)}


@pytest.fixture
def version(roster: EnrollmentRoster) -> int:
    """The roster version once p0 is enrolled, with one template."""
    roster.enroll_many([good(person_id="p0")], consents=_consent("p0"))
    return roster.roster_version()


@pytest.mark.parametrize(("change", "words"), BROKEN, ids=IDS)
def test_each_rule_refuses_an_enrollment_in_one_line_and_writes_nothing(
    roster: EnrollmentRoster, version: int, change: dict[str, Any], words: str
) -> None:
    bad = good(**change)
    with pytest.raises(RosterRuleError) as caught:
        roster.enroll_many([good(person_id="p2"), bad], consents=_consent("p2"))
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, StoreValueError | ValueError)
    assert [p.person_id for p in roster.people()] == ["p0"]
    assert roster.roster_version() == version


@pytest.mark.parametrize(("change", "words"), BROKEN, ids=IDS)
def test_each_rule_holds_for_add_person_and_add_templates(
    roster: EnrollmentRoster, version: int, change: dict[str, Any], words: str
) -> None:
    with pytest.raises(RosterRuleError) as caught:
        if "embeddings" in change:
            roster.add_templates("p0", change["embeddings"])
        else:
            bad = good(**change)
            roster.add_person(bad.person_id, bad.name, bad.team)
    if "embeddings" in change and "at most 100" in words:
        words = "templates; at most 100 are kept per person"  # p0 holds one already
    assert words in str(caught.value)
    assert [(p.person_id, p.template_count) for p in roster.people()] == [("p0", 1)]
    assert roster.roster_version() == version


# --------------------------------------------------------------------- roster files
def _roster_file(path: Path, values: list[float] | None = None, pid: str = "e1") -> Path:
    row = np.asarray(values if values is not None else FACE, dtype="<f4")
    document = {
        "format": "clockface-roster",
        "version": 1,
        "people": [
            {
                "id": pid,
                "name": "Ann",
                "team": None,
                "active": True,
                "templates": [base64.b64encode(row.tobytes()).decode("ascii")],
            }
        ],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ([0.0] * EMBEDDING_DIM, "the template is all zeros: not a face template"),
        ([1e38] * EMBEDDING_DIM, "has norm 1.13e+39, outside 0.7 to 2.8"),
        ([float("nan")] * EMBEDDING_DIM, "holds NaN or infinite values"),
        ([float("inf")] * EMBEDDING_DIM, "holds NaN or infinite values"),
        ([0.01] * EMBEDDING_DIM, "has norm 0.113, outside 0.7 to 2.8"),
    ],
    ids=["zero", "1e38", "nan", "inf", "tiny"],
)
def test_import_roster_refuses_templates_that_are_no_face(
    tmp_path: Path, values: list[float], words: str
) -> None:
    file = _roster_file(tmp_path / "roster.json", values)
    db = tmp_path / "kiosk.db"
    error = fails(invoke("import-roster", str(file), *CONSENT, "--db", str(db)), words)
    assert error.endswith("nothing was imported") and "person 'e1'" in error
    assert not db.exists()
    with service(str(tmp_path / "central.db"), tmp_path) as lite:
        fails(lite.cli("import-roster", str(file), *CONSENT), words, "nothing was imported")
        assert lite.store.people() == []
    ok(invoke("import-roster", str(_roster_file(file)), *CONSENT, "--db", str(db)))


def test_import_roster_refuses_an_id_outside_the_grammar(tmp_path: Path) -> None:
    file = _roster_file(tmp_path / "roster.json", pid="hr/007")
    with service(str(tmp_path / "central.db"), tmp_path) as lite:
        fails(lite.cli("import-roster", str(file), *CONSENT), "its id is 1 to 64", "'hr/007'")
        assert lite.store.people() == []


# --------------------------------------------------------------------- hr/007 (issue 15)
@pytest.fixture
def svc(database: str, tmp_path: Path) -> Iterator[Service]:  # noqa: F811
    with service(database, tmp_path) as s:
        yield s


@pytest.mark.usefixtures("no_models")
def test_hr_007_is_refused_by_enroll_add_and_remove_in_one_line(svc: Service) -> None:
    error = fails(svc.cli("add", "hr/007", "a.jpg", "--name", "Ann", *CONSENT))
    assert "a person id is 1 to 64 letters, digits, '.', '_' or '-'" in error
    assert "'hr/007'" in error
    assert svc.store.people() == []
    error = fails(svc.cli("remove", "hr/007", "--yes"), "no person 'hr/007' in the roster")
    assert "version" not in error
    error = fails(svc.cli("show", "nobody"), "no person 'nobody'")
    assert "version" not in error


def _legacy_central(store: CentralStore, pid: str, templates: npt.ArrayLike = FACE) -> None:
    """A person stored under the older, looser rules (bypassing today's checks)."""
    rows = np.asarray(templates, dtype="<f4").reshape(-1, EMBEDDING_DIM)
    with store._write("a test's legacy person") as conn:
        store._insert_person(conn, pid, "Old Rules", None, active=True, now=store._now())
        key = store._template_key(conn)
        conn.execute(
            store._t["templates"].insert(),
            [
                {"person_id": pid, "embedding": key.seal(pid, r.tobytes()), "created_utc": "x"}
                for r in rows
            ],
        )


def _legacy_kiosk(store: KioskStore, pid: str, templates: npt.ArrayLike = FACE) -> None:
    rows = np.asarray(templates, dtype="<f4").reshape(-1, EMBEDDING_DIM)
    now = store._now()
    with store._roster_writing("a test's legacy person"):
        store._db.execute(
            "INSERT INTO people (person_id, name, team, active, created_utc, updated_utc)"
            " VALUES (?, 'Old Rules', NULL, 1, ?, ?)",
            [pid, now, now],
        )
        key = store._template_key()
        for r in rows:
            store._db.execute(
                "INSERT INTO templates (person_id, embedding, created_utc) VALUES (?, ?, ?)",
                [pid, key.seal(pid, r.tobytes()), now],
            )


def test_a_person_stored_as_hr_007_stays_reachable_over_the_server(
    svc: Service, tmp_path: Path
) -> None:
    _legacy_central(svc.store, "hr/007")
    assert "hr/007: Old Rules" in ok(svc.cli("show", "hr/007"))
    assert "deactivated hr/007" in ok(svc.cli("deactivate", "hr/007"))
    assert "reactivated hr/007" in ok(svc.cli("reactivate", "hr/007"))
    assert "updated hr/007 (Old Name" in ok(svc.cli("update", "hr/007", "--name", "Old Name"))
    ok(svc.cli("consent", "record", "hr/007", *CONSENT))
    # a kiosk refuses the roster that carries the person, naming them and the way out
    with pytest.raises(StoreValueError) as caught:
        plan_gallery([svc.kiosk_gallery(0)])
    assert "invalid: a person id is 1 to 64 letters" in str(caught.value)
    assert "not 'hr/007'" in str(caught.value)
    assert "enroll check-roster" in str(caught.value)
    out = ok(svc.cli("consent", "withdraw", "hr/007", "--yes"))
    assert "consent withdrawn: erased hr/007" in out
    assert svc.store.people() == []
    # the erasure reaches the kiosk: its delta carries the old id, and is taken
    with KioskStore.open(tmp_path / "kiosk.db") as kiosk:
        _legacy_kiosk(kiosk, "hr/007")
        kiosk.apply_gallery(plan_gallery([svc.kiosk_gallery(0)]), central_url=svc.url)
        assert kiosk.people() == []
        assert kiosk.audit_log("hr/007")[-1].action == "remove"


def test_every_path_reaches_an_old_id_with_url_characters(tmp_path: Path) -> None:
    odd = ["hr/007", "a b", "50%", "x?y", "#1", "..", ".", "a/b/consents", "é"]
    with (
        service(str(tmp_path / "central.db"), tmp_path) as lite,
        AdminClient.connect(lite.url, read_admin_token(lite.token_file)) as client,
    ):
        for pid in odd:
            _legacy_central(lite.store, pid)
        for pid in odd:
            assert client.get_person(pid).person_id == pid
            assert not client.set_active(pid, False).active
            assert client.remove_person(pid) == 1
            with pytest.raises(UnknownPersonError, match="no person"):
                client.get_person(pid)
        assert lite.store.people() == []


# --------------------------------------------------------------------- the report
def test_check_roster_lists_the_people_of_older_rules_one_line_each(
    svc: Service,
    database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert "0 people: all follow" in ok(svc.cli("check-roster"))
    svc.store.enroll("ok1", "Ann", None, FACE, consent=Consent("r", "1", NOW))
    _legacy_central(svc.store, "hr/007")
    _legacy_central(svc.store, "zero", np.zeros(EMBEDDING_DIM))
    for result in (svc.cli("check-roster"), invoke("check-roster", "--central-db", database)):
        assert result.exit_code == 1, result.output
        lines = result.stdout.splitlines()
        assert lines == [
            "hr/007: a person id is 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit, not 'hr/007'",
            "zero: the template is all zeros: not a face template",
            "2 people of 3 stored under older rules: erase each (clockface enroll remove ID) "
            "and enroll them again under a valid id",
        ]
    for pid in ("hr/007", "zero"):  # erasure works for each, privacy first
        ok(svc.cli("remove", pid, "--yes"))
    assert "1 person: all follow the roster's rules" in ok(svc.cli("check-roster"))


def test_check_roster_on_a_kiosk_database(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    with KioskStore.open(db) as store:
        store.enroll("ok1", "Ann", None, FACE)
        _legacy_kiosk(store, "Ada Lovelace", np.full(EMBEDDING_DIM, 1e30))
        _legacy_kiosk(store, "many", np.tile(FACE, (101, 1)))  # the kiosk had no limit
    result = invoke("check-roster", "--db", str(db))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Ada Lovelace: a person id is 1 to 64 letters")
    assert lines[1] == "many: holds 101 templates; at most 100 are kept"
    assert "2 people of 3 stored under older rules" in lines[2]
    ok(invoke("remove", "Ada Lovelace", "--yes", "--db", str(db)))
    ok(invoke("remove", "many", "--yes", "--db", str(db)))
    assert "1 person: all follow" in ok(invoke("check-roster", "--db", str(db)))


def test_roster_offenders_names_the_first_rule_each_breaks() -> None:
    found = roster_offenders(
        [
            ("ok", "Ann", None, FACE[None, :]),
            ("b", "Bob", "o\x00ps", FACE[None, :]),
            ("c", "Cy", None, np.stack([FACE, FACE * 100])),
            ("d", "Di", None, None),  # templates not read: only the id, name and team
            ("e/1", "Ed", None, None),
        ]
    )
    assert [str(o) for o in found] == [
        "'b': a team must hold printable characters only, no control characters: 'o\\x00ps'",
        "'c': template 2 has norm 141, outside 0.7 to 2.8: not a face template (face "
        "descriptors measure about 1.4)",
        "'e/1': a person id is 1 to 64 letters, digits, '.', '_' or '-', starting with a "
        "letter or digit, not 'e/1'",
    ]


def test_central_serve_logs_the_people_of_older_rules_when_it_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from central.cli import _warn_offenders

    with CentralStore.open(str(tmp_path / "central.db")) as store:
        _warn_offenders(store)
        assert caplog.records == []
        _legacy_central(store, "hr/007")
        _warn_offenders(store)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("roster: 'hr/007': a person id is 1 to 64 letters")
    assert "1 person stored under older rules" in lines[1] and len(lines) == 2
