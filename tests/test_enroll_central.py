"""Enrollment against the central service: ``clockface enroll --central-db`` on the central
database, and ``clockface enroll --server`` from "an HR laptop" through a real uvicorn
server on loopback with an admin token, on SQLite and on PostgreSQL (tests/helpers/postgres.py).

Face tests share the session's FaceModels (the CLI's model factory is patched to return
it) and skip, with the reason, when ../shared/faces is missing.
"""

from __future__ import annotations

import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result

import enrollment.cli
from central.admin_client import AdminClient, read_admin_token
from central.config import CentralConfig
from central.store import CentralStore, Consent
from clockface.errors import (
    AdminUnavailableError,
    AuthenticationError,
    ConfigError,
    DuplicatePersonError,
    UnknownPersonError,
)
from clockface.roster import NewPerson
from enrollment.target import CentralRoster, EnrollmentRoster, RosterTarget
from kiosk.store import KioskStore, Person
from recognition.faces import FaceModels
from sync.roster_delta import plan_gallery
from tests.helpers.cli import fails, ok
from tests.helpers.enroll import Service, database, invoke, no_models, service  # noqa: F401
from tests.helpers.fakes import T0
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.shared_faces import Analysed, faces_dir
from tests.helpers.template_keys import template_key_file  # noqa: F401
from tests.helpers.templates import vectors

Invoke = Callable[..., Result]


# --------------------------------------------------------------------- helpers


def photo(path: str) -> str:
    return str(faces_dir() / path)


@pytest.fixture
def svc(database: str, tmp_path: Path) -> Iterator[Service]:  # noqa: F811
    with service(database, tmp_path) as s:
        yield s


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Service]:
    with service(str(tmp_path / "central.db"), tmp_path) as s:
        yield s


@pytest.fixture
def models(analysed: Analysed, monkeypatch: pytest.MonkeyPatch) -> FaceModels:
    """The CLI uses the session's shared FaceModels (skips without the real photos)."""
    monkeypatch.setattr(enrollment.cli, "_models", lambda detector: analysed.models)
    return analysed.models


# --------------------------------------------------------------------- the central host
@pytest.mark.faces
def test_enroll_on_the_central_database_with_consent(
    models: FaceModels, analysed: Analysed, tmp_path: Path
) -> None:
    db = tmp_path / "central.db"
    fails(invoke("list", "--central-db", str(db)), "no central database at", "--central-db")
    assert not db.exists()  # never created by enroll: a typo must not start a new roster
    CentralStore.open(db).close()
    central = ("--central-db", str(db))

    out = ok(
        invoke(
            "add", "obama", "--name", "Barack Obama", "--team", "Exec",
            photo("obama/obama1.jpg"), "--consent-ref", "CF-{id}", "--notice-version", "2024-01",
            *central,
        )
    )  # fmt: skip
    assert "enrolled obama (Barack Obama, team Exec): 1 new template from 1 of 1 photo" in out
    assert "consent recorded: CF-obama (notice 2024-01)" in out
    # The same face under another id is refused against the central roster.
    fails(
        invoke(
            "add", "twin", "--name", "Twin", photo("obama/obama2.jpg"), *central,
            "--consent-ref", "CF-9", "--notice-version", "2024-01",
        ),
        "looks like obama (Barack Obama), already enrolled",
        "--force",
    )  # fmt: skip
    with CentralStore.open(db) as store:
        record = store.person_record("obama")
        assert record.consents == (Consent("CF-obama", "2024-01", record.consents[0].at_utc),)
        assert [p.person_id for p in store.people()] == ["obama"]
        delta = store.gallery_delta(0)
        assert [(p.person_id, len(p.templates)) for p in delta.people] == [("obama", 1)]
        expected = analysed.faces("obama/obama1.jpg")[0].embedding
        np.testing.assert_allclose(store.templates("obama")[0], expected, atol=1e-6)

    out = ok(invoke("show", "obama", *central))
    assert "  consent    CF-obama (notice 2024-01, given " in out
    assert "add_templates  1 added" in out
    assert ok(invoke("list", *central)).splitlines()[-1] == "1 person listed"


# --------------------------------------------------------------------- the HR laptop
@pytest.mark.faces
def test_enroll_from_a_laptop_through_the_admin_api(models: FaceModels, svc: Service) -> None:
    out = ok(
        svc.cli(
            "add", "obama", "--name", "Barack Obama", photo("obama/obama1.jpg"),
            photo("obama/obama_small.jpg"), "--consent-ref", "CF-17", "--notice-version", "v3",
        )
    )  # fmt: skip
    assert "enrolled obama (Barack Obama): 2 new templates from 2 of 2 photos" in out
    assert "consent recorded: CF-17 (notice v3)" in out
    record = svc.store.person_record("obama")
    assert record.person.template_count == 2
    assert record.consents == (Consent("CF-17", "v3", record.consents[0].at_utc),)
    assert {e.actor for e in svc.store.audit_log("obama")} == {"hr"}  # the token's admin

    # The duplicate-face check runs on the laptop against GET /v1/admin/gallery.
    consent = ("--consent-ref", "CF-18", "--notice-version", "v3")
    error = fails(
        svc.cli("add", "twin", "--name", "Obama Twin", photo("obama/obama2.jpg"), *consent),
        "nothing enrolled for twin",
        "looks like obama (Barack Obama), already enrolled (distance 0.",
        "--force",
    )
    assert "within the 0.53 threshold" in error
    assert [p.person_id for p in svc.store.people()] == ["obama"]
    # ... deactivated people included: the face is still theirs.
    svc.store.set_active("obama", False)
    fails(
        svc.cli("add", "twin", "--name", "Obama Twin", photo("obama/obama2.jpg"), *consent),
        "looks like obama (Barack Obama)",
    )
    svc.store.set_active("obama", True)

    out = ok(svc.cli("add-photos", "obama", photo("obama/obama2.jpg")))
    assert "1 new template from 1 of 1 photo; 3 templates in all" in out
    fails(
        svc.cli("add-photos", "obama", photo("biden/biden2.jpg")),
        "does not look like obama's enrolled face",
    )
    fails(svc.cli("add-photos", "nobody", photo("obama/obama2.jpg")), "no person 'nobody'")
    assert svc.store.person_record("obama").person.template_count == 3

    out = ok(svc.cli("show", "obama"))
    assert out.splitlines()[0] == "obama: Barack Obama"
    assert "  templates  3" in out and "  consent    CF-17 (notice v3, given " in out
    assert "hr  add_templates  1 added" in out
    assert ok(svc.cli("check")).startswith("no look-alikes")


@pytest.mark.faces
def test_bulk_import_through_the_server_records_each_persons_consent(
    models: FaceModels, lite: Service, tmp_path: Path
) -> None:
    folder = tmp_path / "staff"
    for pid, name in {"e1": "biden/biden2.jpg", "e2": "kit_harington/kit_harington1.jpg"}.items():
        (folder / pid).mkdir(parents=True)
        (folder / pid / Path(name).name).write_bytes((faces_dir() / name).read_bytes())
    (folder / "e2" / "person.toml").write_text('name = "Kit Harington"\n')
    consent = ("--consent-ref", "forms/{id}", "--notice-version", "7")
    out = ok(lite.cli("import", str(folder), *consent))
    assert out.splitlines()[-1] == (
        "2 enrolled (2 templates), 0 already enrolled, 0 not enrolled, 0 photos rejected"
    )
    assert "consent recorded for each person enrolled (notice 7; e.g. e1: forms/e1)" in out
    for pid in ("e1", "e2"):
        (given,) = lite.store.person_record(pid).consents
        assert given == Consent(f"forms/{pid}", "7", given.at_utc)
    # Again: everybody is skipped, without loading a model or reading a photo.
    out = ok(lite.cli("import", str(folder), *consent))
    assert "skipped e1: already enrolled" in out and "skipped e2: already enrolled" in out
    assert len(lite.store.person_record("e1").consents) == 1


@pytest.mark.usefixtures("no_models")
def test_update_deactivate_remove_through_the_server_reach_a_kiosk(
    svc: Service, tmp_path: Path
) -> None:
    svc.store.enroll("e1", "Ada Lovelace", "Engines", vectors(3))
    svc.store.enroll("e2", "Bob", None, vectors(1, seed=1))
    kiosk_db = tmp_path / "kiosk.db"
    with KioskStore.open(kiosk_db) as kiosk:
        kiosk.apply_gallery(plan_gallery([svc.kiosk_gallery(0)]), central_url=svc.url)
        held = kiosk.sync_state().gallery_version
        assert [p.person_id for p in kiosk.people()] == ["e1", "e2"]

    assert ok(svc.cli("update", "e2", "--name", "Robert", "--team", "Ops")) == (
        "updated e2 (Robert, team Ops)\n"
    )
    assert ok(svc.cli("update", "e2", "--team", "")) == "updated e2 (Robert)\n"
    assert "deactivated e2 (Robert)" in ok(svc.cli("deactivate", "e2"))
    out = ok(svc.cli("list", "--all"))
    assert "e2  Robert        -        1          no" in out
    out = ok(svc.cli("remove", "e1", "--yes"))
    assert "erased e1: name, team and 3 face templates deleted" in out
    assert "every kiosk erases them at its next sync" in out
    fails(svc.cli("remove", "e1", "--yes"), "no person 'e1' in the roster")
    fails(svc.cli("update", "zz", "--name", "Z"), "no person 'zz' in the roster")
    # 422 from the service: one line, its own words.
    fails(svc.cli("update", "e2", "--team", "a\tb"), "control characters")
    out = ok(svc.cli("show", "e1"))
    assert out.splitlines()[0] == "e1: not in the roster (erased)"
    assert "hr  remove  erased with 3 templates" in out and "Ada" not in out

    # The erasure is in the gallery delta a kiosk fetches, and the kiosk applies it.
    delta = svc.kiosk_gallery(held)
    assert [e.person_id for e in delta.erasures] == ["e1"]
    assert [(p.person_id, p.name, p.team, p.active) for p in delta.people] == [
        ("e2", "Robert", None, False)
    ]
    with KioskStore.open(kiosk_db) as kiosk:
        kiosk.apply_gallery(plan_gallery([delta]), central_url=svc.url)
        assert [(p.person_id, p.active) for p in kiosk.people()] == [("e2", False)]
    assert "reactivated e2 (Robert)" in ok(svc.cli("reactivate", "e2"))
    assert svc.store.get_person("e2").active


# --------------------------------------------------------------------- refusals
def test_wrong_token_or_no_service_is_one_line(lite: Service, tmp_path: Path) -> None:
    url = ("--server", lite.url)
    wrong = tmp_path / "wrong"
    wrong.write_text("cfa_0123456789abcdef_" + "A" * 43)
    error = fails(invoke("list", *url, "--admin-token-file", str(wrong)), "refused the admin token")
    assert lite.url in error and "--admin-token-file" in error and "AAAA" not in error
    fails(
        invoke("list", *url, env={"CLOCKFACE_ADMIN_TOKEN": lite.kiosk_token}),
        "use an admin token",
    )
    fails(invoke("list", *url), "no admin token", "--admin-token-file", "CLOCKFACE_ADMIN_TOKEN")
    fails(invoke("list", *url, "--admin-token-file", str(tmp_path / "none")), "does not exist")
    # A token is never an option's value (it would show in `ps`).
    fails(invoke("list", *url, "--admin-token", "x"), "No such option", code=2)
    fails(invoke("list", "--admin-token-file", str(wrong)), "goes with --server", code=2)
    fails(invoke("list", "--db", "k.db", *url), "give one of --db", code=2)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    fails(
        invoke("list", "--server", closed, "--admin-token-file", str(lite.token_file)),
        f"cannot reach the central service at {closed}",
    )
    fails(invoke("list", "--server", "ftp://x", "--admin-token-file", str(wrong)), "http(s) URL")
    assert lite.store.people() == []


@pytest.mark.usefixtures("no_models")
def test_an_attached_kiosk_refuses_local_changes_before_loading_models(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    with KioskStore.open(db) as kiosk:
        kiosk.enroll("e1", "Ada", None, vectors(1))
        kiosk.attach("https://attendance.example.org")
    local = ("--db", str(db))
    roster_file = tmp_path / "roster.json"
    ok(invoke("export", str(roster_file), *local))  # reading stays possible
    folder = tmp_path / "staff"
    (folder / "e2").mkdir(parents=True)
    for args in (
        ("add", "e2", "--name", "Bob", "photo.jpg"),
        ("add-photos", "e1", "photo.jpg"),
        ("import", str(folder)),
        ("import-roster", str(roster_file), "--replace"),
        ("update", "e1", "--name", "Ada L."),
        ("deactivate", "e1"),
        ("remove", "e1", "--yes"),
    ):
        fails(
            invoke(*args, *local),
            "managed by the central service at https://attendance.example.org",
            "--server https://attendance.example.org",
            "--central-db",
        )
    assert "e1  Ada" in ok(invoke("list", *local))
    with KioskStore.open(db) as kiosk:
        assert [(p.name, p.template_count) for p in kiosk.people()] == [("Ada", 1)]


@pytest.mark.usefixtures("no_models")
def test_half_a_consent_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    half = ("add", "e1", "--name", "Ada", "a.jpg", "--consent-ref", "X", "--db", str(db))
    fails(invoke(*half), "together", code=2)
    assert not db.exists()


def test_targets_from_the_environment_and_their_precedence(lite: Service, tmp_path: Path) -> None:
    lite.store.enroll("e1", "Ada", None, vectors(1))
    laptop = {
        "CLOCKFACE_ADMIN_SERVER": lite.url,
        "CLOCKFACE_ADMIN_TOKEN_FILE": str(lite.token_file),
    }
    assert "e1  Ada" in ok(invoke("list", env=laptop))
    kiosk_db = tmp_path / "kiosk.db"
    with KioskStore.open(kiosk_db) as kiosk:
        kiosk.enroll("k1", "Kay", None, vectors(1))
    # An option on the command line wins over the environment ...
    assert "k1  Kay" in ok(invoke("list", "--db", str(kiosk_db), env=laptop))
    # ... but two rosters from the environment are ambiguous.
    both = {**laptop, "CLOCKFACE_DB": str(kiosk_db)}
    fails(invoke("list", env=both), "CLOCKFACE_DB and CLOCKFACE_ADMIN_SERVER are all set", code=2)


def test_export_and_import_roster_through_the_server(lite: Service, tmp_path: Path) -> None:
    odd = vectors(2, seed=9)
    odd[0, :3] = [np.float32(1e-45), np.float32(-0.0), np.float32(1 / 3)]
    lite.store.enroll("e1", "Ada Lovelace", "Engines", odd)
    lite.store.enroll("e2", "Bób", None, vectors(1, seed=2))
    lite.store.set_active("e2", False)
    file = tmp_path / "roster.json"
    out = ok(lite.cli("export", str(file)))
    assert "exported 2 people (3 templates)" in out and "biometric" in out
    assert stat.S_IMODE(file.stat().st_mode) == 0o600

    kiosk_db = tmp_path / "kiosk.db"
    assert "imported 2 people (3 templates)" in ok(
        invoke(
            "import-roster", str(file), "--consent-ref", "CF-{id}", "--notice-version", "1",
            "--db", str(kiosk_db),
        )
    )  # fmt: skip
    with KioskStore.open(kiosk_db) as kiosk:
        assert kiosk.templates("e1").tobytes() == odd.tobytes()
        assert [(p.person_id, p.active) for p in kiosk.people()] == [("e1", True), ("e2", False)]

    consent = ("--consent-ref", "CF-{id}", "--notice-version", "1")
    out = ok(lite.cli("import-roster", str(file), *consent))
    assert "skipped e1: already enrolled" in out and "2 skipped" in out
    before = lite.store.roster_version()
    out = ok(lite.cli("import-roster", str(file), "--replace", *consent))
    assert "replaced e1" in out and "replaced e2" in out
    assert [e.person_id for e in lite.store.gallery_delta(before).erasures] == ["e1", "e2"]
    assert lite.store.templates("e1").tobytes() == odd.tobytes()
    assert not lite.store.get_person("e2").active

    other = tmp_path / "other.db"
    CentralStore.open(other).close()
    fails(
        invoke("import-roster", str(file), "--central-db", str(other)),
        "consent record",
        "central.toml [central]",
    )
    assert "imported 2 people" in ok(
        invoke("import-roster", str(file), "--central-db", str(other), *consent)
    )


@pytest.mark.usefixtures("no_models")
def test_a_roster_import_through_the_server_is_all_or_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kiosk_db = tmp_path / "kiosk.db"
    with KioskStore.open(kiosk_db) as kiosk:
        people = [
            NewPerson(f"e{i:03}", f"Person {i}", None, vectors(1, seed=i)) for i in range(200)
        ]
        kiosk.enroll_many(people, consents={p.person_id: Consent("F", "1", T0) for p in people})
    file = tmp_path / "roster.json"
    ok(invoke("export", str(file), "--db", str(kiosk_db)))
    consent = ("--consent-ref", "CF-{id}", "--notice-version", "1")

    # Someone enrolls e199 (the file's last) while the import runs: the import no longer
    # sees it coming, and the service refuses the whole roster: nobody is written.
    def blind(self: AdminClient, *, active_only: bool = False) -> list[Person]:
        return []

    with service(str(tmp_path / "central.db"), tmp_path) as svc:
        svc.store.enroll("e199", "Already Here", None, vectors(1, seed=999))
        before = svc.store.roster_version()
        with monkeypatch.context() as patch:
            patch.setattr(AdminClient, "people", blind)
            error = fails(svc.cli("import-roster", str(file), *consent), "'e199' is already in")
        assert "nothing was written" in error
        assert [p.person_id for p in svc.store.people()] == ["e199"]
        assert svc.store.roster_version() == before
        out = ok(svc.cli("import-roster", str(file), "--replace", *consent))
        assert "imported 200 people (200 templates)" in out
        assert len(svc.store.people()) == 200
        assert svc.store.templates("e199").tobytes() == vectors(1, seed=199).tobytes()
    # A service taking at most 64 KiB a request: the roster goes in batches, each one
    # transaction; a batch that fails says what the batches before it wrote.
    small = CentralConfig(max_body_bytes=64 * 1024)
    with service(str(tmp_path / "small.db"), tmp_path, small) as svc:
        svc.store.enroll("e150", "Already Here", None, vectors(1, seed=999))
        with monkeypatch.context() as patch:
            patch.setattr(AdminClient, "people", blind)
            error = fails(svc.cli("import-roster", str(file), *consent), "'e150' is already in")
        assert "people of the batches before were enrolled: run the same import again" in error
        written = {p.person_id for p in svc.store.people()} - {"e150"}
        assert 0 < len(written) < 150 and written == {f"e{i:03}" for i in range(len(written))}
        out = ok(svc.cli("import-roster", str(file), *consent))
        assert f"imported {199 - len(written)} people" in out
        assert len(svc.store.people()) == 200


# --------------------------------------------------------------------- the client itself
def test_admin_client_is_a_central_roster_with_the_stores_errors(lite: Service) -> None:
    token = read_admin_token(lite.token_file)
    with AdminClient.connect(lite.url, token) as client:
        roster: CentralRoster = client
        also: CentralRoster = lite.store
        assert isinstance(roster, CentralRoster) and isinstance(also, CentralRoster)
        assert "cfa_" not in repr(client)
        person = client.enroll("e1", "Ada", "Ops", vectors(2), consent=Consent("F", "1", T0))
        assert (person.person_id, person.team, person.template_count) == ("e1", "Ops", 2)
        np.testing.assert_array_equal(client.templates("e1"), vectors(2))
        assert client.roster_version() == lite.store.roster_version()
        assert [a.action for a in client.audit_log("e1")] == ["add", "add_templates", "consent"]
        consents = {pid: Consent("F", "1", T0) for pid in ("e2", "e1")}
        with pytest.raises(DuplicatePersonError, match="nothing was written"):
            client.enroll_many(
                [NewPerson("e2", "Bo", None, vectors(1)), NewPerson("e1", "A", None, vectors(1))],
                consents=consents,
            )
        assert [p.person_id for p in client.people()] == ["e1"]
        with pytest.raises(UnknownPersonError, match="no person 'zz'"):
            client.templates("zz")
        # The service's own 409, when the client did not know the id was taken.
        client.people = lambda *, active_only=False: []  # type: ignore[method-assign]
        with pytest.raises(DuplicatePersonError, match="already in the roster"):
            client.add_person("e1", "Ada again")
        gallery = client.load_gallery(threshold=0.52, margin=0.1)
        assert gallery.people == ["e1"] and len(gallery) == 2
    stranger = AdminClient.connect(lite.url, "cfa_0123456789abcdef_" + "B" * 43)
    with stranger, pytest.raises(AuthenticationError, match="refused the admin token"):
        stranger.people()
    with pytest.raises(ConfigError, match="http"):
        AdminClient.connect("nowhere", token)
    target = RosterTarget("server", lite.url, token)
    assert token not in repr(target)
    lite_roster: EnrollmentRoster = target.open()
    lite_roster.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with (
        AdminClient.connect(gone, token) as client,
        pytest.raises(AdminUnavailableError, match=gone),
    ):
        client.people()
