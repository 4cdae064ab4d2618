"""Consent required at enrollment (or another legal basis declared), on a kiosk database.

Real SQLite files; the face photos only where a template must really be made.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlite_utils import Database

import enrollment.cli
from clockface.cli import main
from clockface.consent import Consent, LegalBasis, basis_for
from clockface.errors import ConfigError, ConsentRequiredError, StoreValueError
from clockface.roster import NewPerson
from kiosk import migrations
from kiosk.config import load_config
from kiosk.store import KioskStore
from recognition.faces import FaceModels
from tests.helpers.cli import ok
from tests.helpers.fakes import T0, FakeClock
from tests.helpers.shared_faces import Analysed, faces_dir
from tests.helpers.templates import vectors

CONSENT = ("--consent-ref", "CF-{id}", "--notice-version", "2024-01")
DECLARED = """
[kiosk]
legal_basis = "employment-contract"
legal_basis_note = "employment contract, clause 7"
"""


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env or {}).invoke(main, ["enroll", *args])


def one_error(result: Result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def open_store(db: Path) -> KioskStore:
    return KioskStore.open(db, actor="hr-admin", clock=FakeClock())


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading face models fails the test: the command must refuse before that."""

    def refuse(detector: str) -> FaceModels:
        raise AssertionError("face models were loaded")

    monkeypatch.setattr(enrollment.cli, "_models", refuse)


# --------------------------------------------------------------------- refused without
def test_enrolling_without_consent_names_the_options_and_writes_nothing(
    tmp_path: Path, no_models: None
) -> None:
    db = tmp_path / "kiosk.db"
    folder = tmp_path / "people" / "e1"
    folder.mkdir(parents=True)
    (folder / "front.jpg").write_bytes(b"never read")
    for args in (
        ("add", "e1", "--name", "Ada", str(tmp_path / "photo.jpg")),
        ("import", str(tmp_path / "people")),
    ):
        line = one_error(run(*args, "--db", str(db)), "--consent-ref", "--notice-version")
        assert "legal_basis" in line and "nothing was enrolled" in line
    assert not db.exists()
    # An existing database is left as it was, byte for byte.
    with open_store(db) as store:
        store.enroll("e0", "Bob", None, vectors(1), consent=Consent("CF-0", "1", T0))
    before = db.read_bytes()
    one_error(run("add", "e1", "--name", "Ada", "photo.jpg", "--db", str(db)), "--consent-ref")
    assert db.read_bytes() == before
    # Half a consent is a usage error.
    half = run("add", "e1", "--name", "Ada", "a.jpg", "--notice-version", "1", "--db", str(db))
    assert half.exit_code == 2 and "together" in half.stderr


def test_a_roster_import_needs_consent_too(tmp_path: Path) -> None:
    source, db = tmp_path / "source.db", tmp_path / "kiosk.db"
    with open_store(source) as store:
        store.enroll("e1", "Ada", None, vectors(1))
    roster = tmp_path / "roster.json"
    ok(run("export", str(roster), "--db", str(source)))
    one_error(run("import-roster", str(roster), "--db", str(db)), "--consent-ref")
    assert not db.exists()
    out = ok(run("import-roster", str(roster), *CONSENT, "--db", str(db)))
    assert "imported 1 person" in out
    config = tmp_path / "kiosk.toml"
    config.write_text(DECLARED)
    ok(run("import-roster", str(roster), "--replace", "--config", str(config), "--db", str(db)))
    with open_store(db) as store:
        assert store.lawful_bases("e1") == (
            Consent("CF-e1", "2024-01", store.lawful_bases("e1")[0].at_utc),
            LegalBasis(
                "employment-contract",
                "employment contract, clause 7",
                store.lawful_bases("e1")[1].at_utc,
            ),
        )


def test_the_library_refuses_too() -> None:
    with pytest.raises(ConsentRequiredError, match="--consent-ref"):
        basis_for(reference=None, notice_version=None, now=T0)
    consent = basis_for(reference="CF-{id}", notice_version="v2", now=T0)
    assert consent("e7") == Consent("CF-e7", "v2", T0)
    declared = basis_for(
        reference=None,
        notice_version=None,
        now=T0,
        legal_basis="public-task",
        legal_basis_note="Act 12, s. 3",
    )
    assert declared("e7") == LegalBasis("public-task", "Act 12, s. 3", T0)


# --------------------------------------------------------------------- recorded with
@pytest.mark.faces
def test_consent_and_a_declared_basis_are_recorded_listed_and_audited(
    tmp_path: Path, analysed: Analysed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(enrollment.cli, "_models", lambda detector: analysed.models)
    db = tmp_path / "kiosk.db"
    where = ("--db", str(db))
    obama = str(faces_dir() / "obama" / "obama1.jpg")
    out = ok(run("add", "obama", "--name", "Barack Obama", obama, *CONSENT, *where))
    assert "consent recorded: CF-obama (notice 2024-01)" in out

    config = tmp_path / "kiosk.toml"
    config.write_text(DECLARED)
    biden = str(faces_dir() / "biden" / "biden1.jpg")
    out = ok(run("add", "biden", "--name", "Joe Biden", biden, "--config", str(config), *where))
    assert "legal basis recorded: employment-contract (employment contract, clause 7)" in out

    shown = ok(run("show", "obama", *where))
    assert "  consent    CF-obama (notice 2024-01, given " in shown
    assert "  consent  notice 2024-01" in shown
    shown = ok(run("show", "biden", *where))
    assert "  consent    legal basis employment-contract: employment contract, clause 7" in shown
    assert "  legal_basis  employment-contract" in shown
    assert "CONSENT" not in ok(run("list", *where))  # everyone has a record

    with open_store(db) as store:
        assert store.lawful_bases("obama")[0].reference == "CF-obama"  # type: ignore[union-attr]
        assert store.without_lawful_basis() == set()
        trail = [(e.action, e.detail) for e in store.audit_log("biden")]
    assert ("legal_basis", "employment-contract") in trail
    for entry in trail:  # never the name, the note or a template in the audit log
        assert "Biden" not in (entry[1] or "") and "clause" not in (entry[1] or "")


def test_someone_enrolled_before_consent_was_asked_gets_a_record_before_more_photos(
    tmp_path: Path, no_models: None
) -> None:
    db = tmp_path / "kiosk.db"
    where = ("--db", str(db))
    with open_store(db) as store:
        store.enroll("old", "Old Timer", None, vectors(1))  # before consent was asked
    assert ok(run("list", *where)).splitlines()[1].endswith("no consent recorded")
    before = db.read_bytes()
    one_error(run("add-photos", "old", "photo.jpg", *where), "old has no consent record")
    one_error(run("consent", "record", "old", *where), "needs the person's consent record")
    assert db.read_bytes() == before
    out = ok(run("consent", "record", "old", *CONSENT, *where))
    assert out == "old: consent recorded: CF-old (notice 2024-01)\n"
    config = tmp_path / "kiosk.toml"
    config.write_text(DECLARED)
    out = ok(run("consent", "record", "old", "--config", str(config), *where))
    assert out == "old: legal basis recorded: employment-contract (employment contract, clause 7)\n"
    assert "CONSENT" not in ok(run("list", *where))
    with open_store(db) as store:
        assert [type(b) for b in store.lawful_bases("old")] == [Consent, LegalBasis]
        assert [e.action for e in store.audit_log("old")][-2:] == ["consent", "legal_basis"]
    # An attached kiosk holds no consent records (the central service does): none marked,
    # and none recorded here.
    with open_store(db) as store:
        store.enroll("new", "Newcomer", None, vectors(1, seed=4))
        store.attach("https://attendance.example.org")
    assert "CONSENT" not in ok(run("list", *where))
    one_error(run("consent", "record", "new", *CONSENT, *where), "managed by the central service")


# --------------------------------------------------------------------- the store
def test_the_store_records_bases_append_only_and_keeps_them_after_an_erasure(
    tmp_path: Path,
) -> None:
    db = tmp_path / "kiosk.db"
    with open_store(db) as store:
        store.enroll_many(
            [NewPerson("e1", "Ada", None, vectors(1)), NewPerson("e2", "Bob", None, vectors(1, 1))],
            consents={
                "e1": Consent("CF-1", "v1", T0),
                "e2": LegalBasis("legal-obligation", "Working Time Act s. 16", T0),
            },
        )
        store.enroll("e3", "Cy", None, vectors(1, 2))
        assert store.without_lawful_basis() == {"e3"}
        with pytest.raises(StoreValueError, match="not being enrolled"):
            store.enroll_many(
                [NewPerson("e4", "Di", None, vectors(1, 3))],
                consents={"e5": Consent("CF-5", "v1", T0)},
            )
        with pytest.raises(StoreValueError, match="Consent record"):
            store.enroll("e4", "Di", None, vectors(1, 3), consent=LegalBasis("consent", "x", T0))
        assert [p.person_id for p in store.people()] == ["e1", "e2", "e3"]
        store.remove_person("e1")
        assert store.lawful_bases("e1") == (Consent("CF-1", "v1", T0),)
        assert store.lawful_bases("e2") == (
            LegalBasis("legal-obligation", "Working Time Act s. 16", T0),
        )
    with closing(sqlite3.connect(db)) as conn:
        for sql in ("UPDATE lawful_bases SET reference = 'x'", "DELETE FROM lawful_bases"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)


def test_step_6_dates_deactivations_from_the_audit_log_else_the_last_update(
    tmp_path: Path,
) -> None:
    db = tmp_path / "kiosk.db"
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        migrations.migrate(
            Database(conn),
            where=str(db),
            applied_utc="2024-01-01T00:00:00.000000Z",
            steps=migrations.MIGRATIONS[:5],
        )
        rows = [
            ("e1", 0, "2024-02-01T00:00:00.000000Z"),  # audited deactivation on 2024-01-10
            ("e2", 0, "2024-02-02T00:00:00.000000Z"),  # no audit entry: its last update
            ("e3", 1, "2024-02-03T00:00:00.000000Z"),  # active: no date
        ]
        for pid, active, updated in rows:
            conn.execute(
                "INSERT INTO people (person_id, name, active, created_utc, updated_utc)"
                " VALUES (?, ?, ?, ?, ?)",
                [pid, pid.upper(), active, "2024-01-01T00:00:00.000000Z", updated],
            )
        conn.execute(
            "INSERT INTO audit (at_utc, actor, action, person_id) VALUES (?, ?, ?, ?)",
            ["2024-01-10T00:00:00.000000Z", "hr", "deactivate", "e1"],
        )

    def dates() -> dict[str, str | None]:
        with closing(sqlite3.connect(db)) as conn:
            return dict(conn.execute("SELECT person_id, deactivated_utc FROM people").fetchall())

    with open_store(db) as store:
        assert dates() == {
            "e1": "2024-01-10T00:00:00.000000Z",
            "e2": "2024-02-02T00:00:00.000000Z",
            "e3": None,
        }
        assert store.without_lawful_basis() == {"e1", "e2", "e3"}
        store.set_active("e3", False)
        store.set_active("e1", True)
    assert dates() == {
        "e1": None,  # reactivated
        "e2": "2024-02-02T00:00:00.000000Z",
        "e3": "2024-03-04T08:00:02.000000Z",  # the store's clock
    }


# --------------------------------------------------------------------- the config
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('legal_basis = "because"', "legal_basis must be one of"),
        ('legal_basis = "public-task"', "needs legal_basis_note"),
        ("retention_days = 0", "retention_days must be 1 to 1095"),
        ("retention_days = 2000", "retention_days must be 1 to 1095"),
    ],
)
def test_the_config_refuses_a_bad_legal_basis_or_retention(
    tmp_path: Path, text: str, words: str
) -> None:
    file = tmp_path / "kiosk.toml"
    file.write_text(f"[kiosk]\n{text}\n")
    with pytest.raises(ConfigError, match=words):
        load_config(file, environ={})


def test_the_config_defaults_to_consent_and_a_year() -> None:
    config = load_config(None, environ={})
    assert (config.legal_basis, config.legal_basis_note, config.retention_days) == (
        "consent",
        "",
        365,
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (Consent("x" * 201, "v1", T0), "a consent reference is at most 200 characters"),
        (Consent("form\n42", "v1", T0), "a consent reference must hold printable characters only"),
        (Consent("form-42", "v" * 101, T0), "a notice version is at most 100 characters"),
        (Consent(" form", "v1", T0), "must not start or end with spaces"),
        (LegalBasis("because", "HR file", T0), "a legal basis must be one of"),
        (LegalBasis("consent", "HR file", T0), "consent is a Consent record"),
        (LegalBasis("public-task", "n" * 1001, T0), "a legal basis note is at most 1000"),
    ],
)
def test_the_kiosk_and_the_central_store_refuse_the_same_lawful_bases(
    tmp_path: Path, given: Consent | LegalBasis, message: str
) -> None:
    """One set of rules (clockface/consent.py): the kiosk store used to take a 10,000
    character consent reference, a control character or a legal basis nobody declared,
    where the central store refused them."""
    from central.store import CentralStore

    with KioskStore.open(tmp_path / "kiosk.db", actor="hr", clock=FakeClock()) as kiosk:
        with pytest.raises(StoreValueError, match=message):
            kiosk.enroll_many([NewPerson("ada", "Ada", None, vectors(1))], consents={"ada": given})
        assert kiosk.people() == []
    with CentralStore.open(str(tmp_path / "central.db"), actor="hr") as central:
        with pytest.raises(StoreValueError, match=message):
            central.enroll_many(
                [NewPerson("ada", "Ada", None, vectors(1))], consents={"ada": given}
            )
        assert central.people() == []
