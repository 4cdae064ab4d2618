"""Enrollment: the library and ``clockface enroll`` on real photos, a real video and a
real SQLite file.

Every test gets a fresh database under tmp_path. Face tests share the session's
FaceModels (the CLI's model factory is patched to return it) and skip, with the reason,
when ../shared/faces is missing. Photos for imports are copied into tmp_path, never into
the repository.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from base64 import b64encode
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import click
import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

import enrollment.cli
import enrollment.lookalikes
from clockface.cli import main
from clockface.consent import Consent
from clockface.errors import (
    DuplicatePersonError,
    EnrollmentError,
    ImportFolderError,
    RosterFileError,
    StoreValueError,
)
from clockface.roster import NewPerson
from enrollment.enroll import Enroller
from enrollment.folder_import import plan_import
from enrollment.lookalikes import look_alikes
from enrollment.roster_file import parse_roster
from kiosk.store import KioskStore
from recognition.gallery import DEFAULT_MARGIN, DEFAULT_THRESHOLD, EMBEDDING_DIM, Gallery
from tests.helpers.cli import fails, ok
from tests.helpers.fakes import FakeClock
from tests.helpers.shared_faces import Analysed, faces_dir
from tests.helpers.templates import vectors

VIDEO = "video/short_hamilton_clip.mp4"

Invoke = Callable[..., Result]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "db" / "kiosk.db"


# These tests enroll into a kiosk database as an operator who declared a legal basis other
# than consent (kiosk.toml's legal_basis, here through the environment); consent itself,
# required by default, is tested in tests/test_consent.py.
DECLARED_BASIS = {
    "CLOCKFACE_KIOSK_LEGAL_BASIS": "employment-contract",
    "CLOCKFACE_KIOSK_LEGAL_BASIS_NOTE": "employment contract, clause 7",
}


def _invoker(db: Path) -> Invoke:
    def invoke(*args: str, input: str | None = None) -> Result:
        runner = CliRunner(env={"CLOCKFACE_DB": str(db), **DECLARED_BASIS})
        return runner.invoke(main, ["enroll", *args], input=input)

    return invoke


@pytest.fixture
def cli(db: Path) -> Invoke:
    """``clockface enroll ...`` in this process, on the test's database; no face models."""
    return _invoker(db)


@pytest.fixture
def face_cli(db: Path, analysed: Analysed, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """As ``cli``, with the session's shared FaceModels (skips without the real photos)."""
    monkeypatch.setattr(enrollment.cli, "_models", lambda detector: analysed.models)
    return _invoker(db)


def photo(path: str) -> str:
    return str(faces_dir() / path)


def open_store(db: Path) -> KioskStore:
    return KioskStore.open(db, actor="hr-admin", clock=FakeClock())


def template_rows(db: Path, person_id: str) -> int:
    with closing(sqlite3.connect(db)) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM templates WHERE person_id = ?", [person_id]
        ).fetchone()
    return int(count)


def blurred_copy(tmp_path: Path, analysed: Analysed) -> Path:
    """obama_small.jpg blurred (sigma 3) into tmp_path: one face, far too soft."""
    image = cv2.GaussianBlur(analysed.image("obama/obama_small.jpg"), (0, 0), 3)
    out = tmp_path / "blurred.png"
    assert cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return out


# ---------------------------------------------------------------- the store's enroll
def test_store_enroll_writes_person_and_templates_together(db: Path) -> None:
    with open_store(db) as store:
        version = store.roster_version()
        person = store.enroll("e1", "Ada", "Engines", vectors(3))
        assert (person.person_id, person.team, person.template_count) == ("e1", "Engines", 3)
        np.testing.assert_array_equal(store.templates("e1"), vectors(3))
        assert [e.action for e in store.audit_log("e1")] == ["add", "add_templates"]
        assert store.roster_version() > version

        bad = vectors(2)
        bad[1, 5] = np.nan
        with pytest.raises(StoreValueError, match="NaN"):
            store.enroll("e2", "Bob", None, bad)
        with pytest.raises(StoreValueError, match="at least one template"):
            store.enroll("e2", "Bob", None, np.empty((0, EMBEDDING_DIM), np.float32))
        # One person already held refuses the whole batch.
        with pytest.raises(DuplicatePersonError, match="nothing was written"):
            store.enroll_many(
                [NewPerson("e2", "Bob", None, vectors(1)), NewPerson("e1", "Ada", None, vectors(1))]
            )
        assert [p.person_id for p in store.people()] == ["e1"]
        assert store.audit_log("e2") == []

        replaced = store.enroll_many(
            [
                NewPerson("e1", "Ada L.", None, vectors(1, seed=5), active=False),
                NewPerson("e3", "Cy", None, np.empty((0, EMBEDDING_DIM), np.float32)),
            ],
            replace=True,
        )
        assert [(p.name, p.active, p.template_count) for p in replaced] == [
            ("Ada L.", False, 1),
            ("Cy", True, 0),
        ]
        np.testing.assert_array_equal(store.templates("e1"), vectors(1, seed=5))
        assert [e.action for e in store.audit_log("e1")] == [
            "add",
            "add_templates",
            "remove",
            "add",
            "add_templates",
            "deactivate",
        ]


# ---------------------------------------------------------------- look-alikes
def brute_force_pairs(gallery: Gallery, within: float) -> dict[tuple[str, str], float]:
    people = gallery.people
    found: dict[tuple[str, str], float] = {}
    for i, a in enumerate(people):
        for b in people[i + 1 :]:
            ta = gallery.templates_of(a).astype(np.float64)
            tb = gallery.templates_of(b).astype(np.float64)
            d = float(np.linalg.norm(ta[:, None] - tb[None], axis=2).min())
            if d <= within:
                found[(a, b)] = d
    return found


@pytest.mark.parametrize("chunk", [7, 4_000_000])
def test_look_alikes_agree_with_brute_force(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(enrollment.lookalikes, "_CHUNK_SCORES", chunk)
    rng = np.random.default_rng(3)
    gallery = Gallery()
    base = vectors(40, seed=1)
    for i in range(40):
        count = int(rng.integers(1, 4))
        gallery.add(f"p{i}", base[i] + rng.normal(size=(count, EMBEDDING_DIM)) * 0.02)
    for i, j, step in ((3, 17, 0.3), (8, 9, 0.55), (20, 31, 0.7)):  # planted look-alikes
        gallery.add(f"p{j}", gallery.templates_of(f"p{i}")[0] + step * np.eye(EMBEDDING_DIM)[0])
    expected = brute_force_pairs(gallery, 0.62)
    found = look_alikes(gallery, 0.62)
    assert {(p.first, p.second): p.distance for p in found} == pytest.approx(expected)
    assert [(p.first, p.second) for p in found] == [("p3", "p17"), ("p8", "p9")]
    assert look_alikes(Gallery(), 0.62) == []


# ---------------------------------------------------------------- adding from photos
def test_add_from_photos_one_template_each_then_add_photos(
    face_cli: Invoke, db: Path, analysed: Analysed
) -> None:
    out = ok(
        face_cli(
            "add",
            "E1042",
            "--name",
            "Barack Obama",
            "--team",
            "Exec",
            photo("obama/obama1.jpg"),
            photo("obama/obama4.jpg"),
        )
    )
    assert "enrolled E1042 (Barack Obama, team Exec): 2 new templates from 2 of 2 photos" in out
    with open_store(db) as store:
        templates = store.templates("E1042")
        assert templates.shape == (2, EMBEDDING_DIM)
        expected = analysed.faces("obama/obama1.jpg")[0].embedding
        np.testing.assert_allclose(templates[0], expected, atol=1e-6)
    # Nothing but the database (and the key that seals its templates) was written:
    # photos are never kept.
    written = {p.name for p in db.parent.iterdir()}
    assert written <= {"kiosk.db", "kiosk.db-wal", "kiosk.db-shm", "kiosk.db.key"}

    fails(
        face_cli("add", "E1042", "--name", "Someone", photo("obama/obama2.jpg")),
        "E1042 is already enrolled (Barack Obama, 2 templates)",
        "add-photos",
    )
    out = ok(face_cli("add-photos", "E1042", photo("obama/obama2.jpg")))
    assert "1 new template from 1 of 1 photo; 3 templates in all" in out
    # A photo of someone else is refused: it does not look like the person.
    fails(
        face_cli("add-photos", "E1042", photo("rose_leslie/rose_leslie2.jpg")),
        "does not look like E1042's enrolled face",
        "--force",
    )
    assert template_rows(db, "E1042") == 3
    fails(face_cli("add-photos", "nobody", photo("obama/obama2.jpg")), "no person 'nobody'")


def test_rejected_photos_say_why_and_write_nothing(
    face_cli: Invoke, db: Path, tmp_path: Path, analysed: Analysed
) -> None:
    blurred = str(blurred_copy(tmp_path, analysed))
    group = photo("group/two_people.jpg")
    result = face_cli("add", "e1", "--name", "Ada", blurred)
    fails(result, "nothing enrolled for e1", "blurred.png", "the face is blurry", "sharp")

    result = face_cli("add", "e1", "--name", "Ada", blurred, group, "/no/such.jpg")
    fails(result, "all 3 photos were rejected")
    assert "rejected " + blurred + ": the face is blurry" in result.stderr
    assert "rejected " + group + ": 2 faces found, exactly 1 needed" in result.stderr
    assert "rejected cannot read photo '/no/such.jpg': no such file" in result.stderr

    good = photo("rose_leslie/rose_leslie2.jpg")
    result = face_cli("add", "e1", "--name", "Ada", good, blurred)
    fails(result, "1 of 2 photos rejected", "--skip-bad to enroll from the 1 good one")
    assert "the face is blurry" in result.stderr
    with open_store(db) as store:
        assert store.people() == []
        assert store.audit_log() == []

    # --skip-bad enrolls from the good photo, lists the bad one, and still exits 1.
    result = face_cli("add", "e1", "--name", "Ada", good, blurred, "--skip-bad")
    assert result.exit_code == 1
    assert "enrolled e1 (Ada): 1 new template from 1 of 2 photos" in result.stdout
    assert "rejected " + blurred in result.stderr
    assert template_rows(db, "e1") == 1


def test_duplicate_face_refused_unless_forced_and_check_finds_the_look_alike(
    face_cli: Invoke, db: Path
) -> None:
    ok(face_cli("add", "obama", "--name", "Barack Obama", photo("obama/obama1.jpg")))
    ok(face_cli("add", "biden", "--name", "Joe Biden", photo("biden/biden2.jpg")))
    out = ok(face_cli("check"))
    assert out.startswith("no look-alikes: no two people are within 0.63")

    twin = photo("obama/obama2.jpg")
    error = fails(
        face_cli("add", "obama-twin", "--name", "Obama Twin", twin),
        "looks like obama (Barack Obama), already enrolled (distance 0.3",
        "--force",
    )
    assert "within the 0.53 threshold" in error
    with open_store(db) as store:
        assert [p.person_id for p in store.people()] == ["biden", "obama"]

    result = face_cli("add", "obama-twin", "--name", "Obama Twin", twin, "--force")
    assert "enrolled obama-twin (Obama Twin)" in ok(result)
    assert "looks like obama (Barack Obama)" in result.stderr
    assert "(enrolled anyway: --force)" in result.stderr

    out = ok(face_cli("check"))
    assert out.splitlines()[0] == "1 look-alike pair within 0.63 (3 active people, 3 templates):"
    assert "obama (Barack Obama) and obama-twin (Obama Twin): distance 0.3" in out


def test_library_enrolls_from_arrays_and_bytes(db: Path, analysed: Analysed) -> None:
    with open_store(db) as store:
        enroller = Enroller(store, analysed.models)
        image = analysed.image("obama/obama_small.jpg")
        outcome = enroller.add_person("a", "Ann", None, [("small", image)])
        assert outcome.enrolled and outcome.person is not None
        assert outcome.person.template_count == 1

        data = (faces_dir() / "obama/obama_small.jpg").read_bytes()
        again = enroller.add_person("b", "Bea", None, [("bytes", data), ("junk", b"nope")])
        assert not again.enrolled and again.refusal is not None
        assert "1 of 2 photos rejected" in again.refusal
        assert [r.source for r in again.rejected] == ["junk"]
        forced_skip = enroller.add_person("b", "Bea", None, [("bytes", data)])
        # The same photo: 0 apart, up to the float32 rounding of the gallery's
        # |a|^2 + |b|^2 - 2ab (its square root makes ~1e-7 into ~3e-4).
        assert [c.other_id for c in forced_skip.conflicts] == ["a"]
        assert forced_skip.conflicts[0].distance == pytest.approx(0.0, abs=1e-3)
        with pytest.raises(EnrollmentError, match="looks like a"):
            forced_skip.raise_if_refused()
        assert [p.person_id for p in store.people()] == ["a"]


# ---------------------------------------------------------------- the camera
def test_camera_capture_enrolls_several_templates_of_the_right_person(
    face_cli: Invoke, db: Path, analysed: Analysed
) -> None:
    video = f"video:{faces_dir() / VIDEO}"
    result = face_cli(
        "add", "lin", "--name", "Lin-Manuel Miranda", "--camera", video, "--frames", "210",
        "--every", "10",
    )  # fmt: skip
    out = ok(result)
    assert "captured 5 frames (" in out and "rejected: several faces" in out
    assert "enrolled lin (Lin-Manuel Miranda): 5 new templates from 5 of 5 frames" in out
    assert "look straight at it" in result.stderr
    with open_store(db) as store:
        gallery = store.load_gallery(threshold=DEFAULT_THRESHOLD, margin=DEFAULT_MARGIN)
    assert gallery.template_count("lin") == 5
    still = analysed.faces("lin_manuel_miranda/lin_manuel_miranda1.png")[0].embedding
    assert gallery.match_one(still).nearest_id == "lin"
    assert gallery.match_one(still).distance <= DEFAULT_THRESHOLD

    fails(face_cli("add", "x", "--name", "X", "--camera", "video:/no/such.mp4"), "no such file")
    fails(
        face_cli("add", "x", "--name", "X", "--camera", video, "--frames", "12"),
        "nothing enrolled for x: no usable face in 12 frames",
        "look straight at it",
    )
    with open_store(db) as store:
        assert [p.person_id for p in store.people()] == ["lin"]


# ---------------------------------------------------------------- bulk import
def make_import_folder(root: Path) -> Path:
    """e1 (two good photos), e2 (one, named in person.toml), e3 (one good, one group)."""
    faces = faces_dir()
    folder = root / "staff"
    for pid, photos in {
        "e1": ["biden/biden1.jpg", "biden/biden2.jpg"],
        "e2": ["kit_harington/kit_harington1.jpg"],
        "e3": ["rose_leslie/rose_leslie2.jpg", "group/kit_with_rose.jpg"],
    }.items():
        (folder / pid).mkdir(parents=True)
        for name in photos:
            shutil.copy(faces / name, folder / pid / Path(name).name)
    (folder / "e2" / "person.toml").write_text('name = "Kit Harington"\nteam = "Cast"\n')
    (folder / "README.txt").write_text("photos from HR\n")
    return folder


def test_import_folder_summary_exit_status_and_idempotent_rerun(
    face_cli: Invoke, db: Path, tmp_path: Path
) -> None:
    folder = make_import_folder(tmp_path)
    result = face_cli("import", str(folder))
    error = fails(result, "1 not enrolled and 1 photo rejected", "run the same import again")
    lines = result.stdout.splitlines()
    assert "enrolled e1 (e1): 2 templates" in lines
    assert "enrolled e2 (Kit Harington, team Cast): 1 template" in lines
    assert "nothing enrolled for e3: 1 of 2 photos rejected" in result.stdout
    rejected = [line for line in lines if "rejected e3/" in line]
    assert rejected == [
        "  rejected e3/kit_with_rose.jpg: 2 faces found, exactly 1 needed: use a photo of the "
        "person alone, or crop it to their face"
    ]
    assert "ignored README.txt: not in a person's folder" in lines
    assert (
        lines[-1]
        == "2 enrolled (3 templates), 0 already enrolled, 1 not enrolled, 1 photo rejected"
    )
    assert "Error" in error

    # Again: the people enrolled are skipped without reading their photos (e1's photo is
    # now unreadable and nobody notices), e3 is refused again for the same reason.
    (folder / "e1" / "biden1.jpg").write_bytes(b"not a photo any more")
    result = face_cli("import", str(folder))
    fails(result, "1 not enrolled and 1 photo rejected")
    assert "skipped e1: already enrolled" in result.stdout
    assert "skipped e2: already enrolled" in result.stdout
    assert result.stdout.count("rejected ") == 1
    with open_store(db) as store:
        assert [(p.person_id, p.template_count) for p in store.people()] == [("e1", 2), ("e2", 1)]

    # Fixed: e3 is enrolled, the others skipped, exit status 0.
    (folder / "e3" / "kit_with_rose.jpg").unlink()
    out = ok(face_cli("import", str(folder)))
    assert "enrolled e3 (e3): 1 template" in out
    assert out.splitlines()[-1] == (
        "1 enrolled (1 template), 2 already enrolled, 0 not enrolled, 0 photos rejected"
    )
    ok(face_cli("import", str(folder)))


def test_import_plan_reads_manifest_and_person_files(tmp_path: Path) -> None:
    folder = tmp_path / "staff"
    (folder / "e1").mkdir(parents=True)
    (folder / "e1" / "a.JPG").write_bytes(b"x")
    (folder / "e1" / ".DS_Store").write_bytes(b"x")
    (folder / "e1" / "person.toml").write_text('team = "Ops"\n')
    (folder / "flat").mkdir()
    (folder / "flat" / "e2.png").write_bytes(b"x")
    (folder / "manifest.csv").write_text(
        "\ufeffid,name,team,photo\ne1,Ada Lovelace,,\ne2,Bob,Ops,flat/e2.png\ne2,,,flat/e2.png\n"
    )
    plan = plan_import(folder)
    assert [(p.person_id, p.name, p.team, [f.name for f in p.photos]) for p in plan.people] == [
        ("e1", "Ada Lovelace", "Ops", ["a.JPG"]),
        ("e2", "Bob", "Ops", ["e2.png"]),
        ("flat", "flat", None, ["e2.png"]),
    ]

    (folder / "e1" / "person.toml").write_text('name = "Ada King"\n')
    with pytest.raises(ImportFolderError, match="two names for e1: 'Ada Lovelace' in manifest"):
        plan_import(folder)
    (folder / "e1" / "person.toml").write_text('nmae = "Ada"\n')
    with pytest.raises(ImportFolderError, match="unknown key 'nmae'"):
        plan_import(folder)
    (folder / "e1" / "person.toml").write_text("name = Ada\n")
    with pytest.raises(ImportFolderError, match="not valid TOML"):
        plan_import(folder)
    (folder / "e1" / "person.toml").unlink()
    (folder / "manifest.csv").write_text("id,nmae\ne1,Ada\n")
    with pytest.raises(ImportFolderError, match="unknown column 'nmae'"):
        plan_import(folder)
    (folder / "manifest.csv").write_text("id,name\n e1 ,Ada\n,Bob\n")
    with pytest.raises(ImportFolderError, match="line 3: the id is 1 to 64 letters"):
        plan_import(folder)
    with pytest.raises(ImportFolderError, match="no such folder"):
        plan_import(tmp_path / "missing")


def test_import_with_a_bad_manifest_is_one_line_and_writes_nothing(
    cli: Invoke, db: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "staff"
    folder.mkdir()
    (folder / "manifest.csv").write_text("name,photo\nAda,a.jpg\n")
    fails(cli("import", str(folder)), "manifest.csv needs a header row with an id column")
    assert not db.exists()
    fails(cli("import", str(tmp_path / "nope")), "no such folder")


# ---------------------------------------------------------------- managing the roster
def test_list_show_update_deactivate_reactivate_remove(cli: Invoke, db: Path) -> None:
    fails(cli("list"), "no database at", "CLOCKFACE_DB")
    with open_store(db) as store:
        consent = Consent("CF-1", "2024-01", datetime(2024, 3, 1, 9, tzinfo=UTC))
        store.enroll("e1", "Ada Lovelace", "Engines", vectors(3), consent=consent)
        store.enroll("e2", "Bob", None, vectors(1, seed=1))  # as before consent was asked

    out = ok(cli("list"))
    assert out.splitlines() == [
        "ID  NAME          TEAM     TEMPLATES  CONSENT",
        "e1  Ada Lovelace  Engines  3          yes",
        "e2  Bob           -        1          no consent recorded",
        "2 people listed",
    ]
    out = ok(cli("update", "e2", "--name", "Robert", "--team", "Ops"))
    assert out == "updated e2 (Robert, team Ops)\n"
    assert ok(cli("update", "e2", "--team", "")) == "updated e2 (Robert)\n"
    fails(cli("update", "e2"), "nothing to change", code=2)
    fails(cli("update", "zz", "--name", "Z"), "no person 'zz' in the roster")

    assert "deactivated e2 (Robert)" in ok(cli("deactivate", "e2"))
    out = ok(cli("list"))
    assert "e2" not in out and "1 deactivated not shown (--all)" in out
    assert "e2  Robert        -        1          no      no consent recorded" in ok(
        cli("list", "--all")
    )
    assert "reactivated e2 (Robert)" in ok(cli("reactivate", "e2"))

    out = ok(cli("show", "e1"))
    assert out.splitlines()[:7] == [
        "e1: Ada Lovelace",
        "  team       Engines",
        "  active     yes",
        "  templates  3",
        "  created    2024-03-04 08:00:02 UTC",
        "  updated    2024-03-04 08:00:02 UTC",
        "  consent    CF-1 (notice 2024-01, given 2024-03-01 09:00:00 UTC)",
    ]
    assert "hr-admin  add_templates  3 added" in out
    assert "hr-admin  consent  notice 2024-01" in out
    assert "  consent    none recorded" in ok(cli("show", "e2"))

    # Removing asks first; "no" erases nothing.
    result = cli("remove", "e1", input="n\n")
    assert result.exit_code == 1 and "Erase e1 (Ada Lovelace, team Engines)" in result.output
    assert template_rows(db, "e1") == 3
    out = ok(cli("remove", "e1", input="y\n"))
    assert "erased e1: name, team and 3 face templates deleted" in out
    assert template_rows(db, "e1") == 0
    fails(cli("remove", "e1", "--yes"), "no person 'e1' in the roster")
    out = ok(cli("show", "e1"))
    assert out.splitlines()[0] == "e1: not in the roster (erased)"
    assert "  remove  erased with 3 templates" in out
    assert "Ada" not in out  # the audit trail keeps the id only
    out = ok(cli("remove", "e2", "--yes"))
    assert "1 face template deleted" in out
    assert ok(cli("list", "--all")) == "nobody listed\n"
    fails(cli("show", "zz"), "no person 'zz' in the roster")


def test_add_refuses_bad_arguments_before_any_work(cli: Invoke, db: Path) -> None:
    fails(cli("add", "e1", "--name", "Ada"), "give at least one PHOTO, or --camera", code=2)
    fails(cli("add", "e1", "--name", "Ada", "a.jpg", "--camera", "camera:0"), "not both", code=2)
    fails(cli("add", " e1", "--name", "Ada", "a.jpg"), "a person id is 1 to 64 letters")
    fails(cli("add", "e1", "--name", " ", "a.jpg"), "a name must not be empty")
    fails(cli("add", "e1", "--name", "Ada", "--camera", "bogus"), "unknown source 'bogus'")
    fails(cli("add", "e1", "--name", "Ada", "--frames", "0", "a.jpg"), "--frames", code=2)
    with open_store(db) as store:
        assert store.people() == []


# ---------------------------------------------------------------- roster files
def test_export_then_import_roster_round_trips_bit_for_bit(
    cli: Invoke, db: Path, tmp_path: Path
) -> None:
    odd = vectors(2, seed=9)
    odd[0, :4] = [np.float32(1e-45), np.float32(-0.0), np.float32(0.9999999), np.float32(1 / 3)]
    with open_store(db) as store:
        store.enroll("e1", "Ada Lovelace", "Engines", odd)
        store.enroll("e2", "Bób", None, vectors(1, seed=2))
        store.set_active("e2", False)
    file = tmp_path / "roster.json"
    out = ok(cli("export", str(file)))
    assert "exported 2 people (3 templates)" in out and "biometric" in out
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    fails(cli("export", str(file)), "already exists", "--force")
    ok(cli("export", str(file), "--force"))
    fails(cli("export", str(tmp_path / "no" / "dir" / "r.json")), "its folder does not exist")

    fresh = tmp_path / "fresh.db"
    out = ok(cli("import-roster", str(file), "--db", str(fresh)))
    assert "imported 2 people (3 templates)" in out
    with open_store(db) as old, open_store(fresh) as new:
        for pid in ("e1", "e2"):
            a, b = old.templates(pid), new.templates(pid)
            assert a.tobytes() == b.tobytes()
            before, after = old.get_person(pid), new.get_person(pid)
            assert (before.name, before.team, before.active) == (
                after.name,
                after.team,
                after.active,
            )

    out = ok(cli("import-roster", str(file), "--db", str(fresh)))
    assert "skipped e1: already enrolled (use --replace" in out and "2 skipped" in out
    out = ok(cli("import-roster", str(file), "--db", str(fresh), "--replace"))
    assert "replaced e1" in out and "replaced e2" in out
    with open_store(fresh) as store:
        assert [e.action for e in store.audit_log("e1")][-4:] == [
            "remove",
            "add",
            "add_templates",
            "legal_basis",  # the legal basis DECLARED_BASIS declares, recorded anew
        ]


def good_document() -> dict[str, object]:
    template = b64encode(vectors(1)[0].astype("<f4").tobytes()).decode()
    return {
        "format": "clockface-roster",
        "version": 1,
        "people": [
            {"id": "e1", "name": "Ada", "team": None, "active": True, "templates": [template]},
            {"id": "e2", "name": "Bob", "team": "Ops", "active": True, "templates": [template]},
        ],
    }


def broken(change: Callable[[dict[str, object]], object]) -> bytes:
    document = good_document()
    change(document)
    return json.dumps(document).encode()


def person(document: dict[str, object], i: int) -> dict[str, object]:
    people = document["people"]
    assert isinstance(people, list)
    found = people[i]
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x89PNG not json", "is not UTF-8 text"),
        (b"{", "is not JSON (line 1, column 2"),
        (b"[]", "is not a clockface roster file"),
        (
            broken(lambda d: d.update(version=2)),
            "is format version 2, this clockface reads version 1",
        ),
        (broken(lambda d: d.update(version="1")), "has no format version"),
        (broken(lambda d: d.update(people={})), 'has no "people" list'),
        (broken(lambda d: person(d, 1).pop("name")), "people[1] lacks 'name'"),
        (broken(lambda d: person(d, 1).update(photo="x")), "unknown key 'photo'"),
        (broken(lambda d: person(d, 1).update(id="e1")), "holds 'e1' twice"),
        (broken(lambda d: person(d, 1).update(id=" e2")), "its id is 1 to 64 letters"),
        (broken(lambda d: person(d, 1).update(id="hr/007")), "its id is 1 to 64 letters"),
        (broken(lambda d: person(d, 1).update(name=" Bob")), "must not start or end with spaces"),
        (broken(lambda d: person(d, 1).update(active="yes")), "active must be true or false"),
        (broken(lambda d: person(d, 1).update(templates=["AAAA"])), "not base64 of 512 bytes"),
        (broken(lambda d: person(d, 1).update(templates=["!!"])), "not base64 of 512 bytes"),
        (broken(lambda d: person(d, 1).update(templates="AAAA")), "templates must be a list"),
        (b'{"format": "clockface-roster", "version": NaN}', "NaN is not allowed"),
    ],
)
def test_malformed_roster_files_import_nothing(
    cli: Invoke, db: Path, tmp_path: Path, data: bytes, words: str
) -> None:
    file = tmp_path / "roster.json"
    file.write_bytes(data)
    with pytest.raises(RosterFileError, match="nothing was imported"):
        parse_roster(data)
    error = fails(cli("import-roster", str(file)), words)
    assert error.endswith("; nothing was imported")
    assert not db.exists()


def test_a_missing_roster_file_is_one_line(cli: Invoke, db: Path, tmp_path: Path) -> None:
    fails(cli("import-roster", str(tmp_path / "none.json")), "'" + str(tmp_path), "no such file")
    fails(cli("import-roster", str(tmp_path)), "Invalid value for 'FILE'", code=2)
    assert not db.exists()


def test_a_roster_template_of_nan_is_refused() -> None:
    nan = np.full(EMBEDDING_DIM, np.nan, dtype="<f4")
    document = good_document()
    person(document, 1)["templates"] = [b64encode(nan.tobytes()).decode()]
    with pytest.raises(
        RosterFileError, match="person 'e2': the template holds NaN or infinite values"
    ):
        parse_roster(json.dumps(document).encode())
    people = parse_roster(json.dumps(good_document()).encode())
    assert [(p.person_id, p.team, np.shape(p.embeddings)) for p in people] == [
        ("e1", None, (1, EMBEDDING_DIM)),
        ("e2", "Ops", (1, EMBEDDING_DIM)),
    ]


# ---------------------------------------------------------------- help
def enroll_commands() -> list[str]:
    """Every command of ``clockface enroll``, a group's as "group command"."""
    group = enrollment.cli.enroll
    assert isinstance(group, click.Group)
    names = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names += [f"{name} {sub}" for sub in command.commands]
        else:
            names.append(name)
    return sorted(names)


@pytest.mark.parametrize("name", enroll_commands())
def test_every_enroll_command_has_help(cli: Invoke, name: str) -> None:
    out = ok(cli(*name.split(), "--help"))
    assert out.startswith(f"Usage: main enroll {name} ")
    assert "--db" in out and "CLOCKFACE_DB" in out


def test_help_documents_the_policies(cli: Invoke) -> None:
    assert "--skip-bad" in ok(cli("add", "--help")) and "never stored" in ok(cli("add", "--help"))
    assert "biometric" in ok(cli("export", "--help"))
    assert "biometric" in ok(cli("import-roster", "--help"))
    assert "already enrolled are skipped" in " ".join(ok(cli("import", "--help")).split())
    assert set(enroll_commands()) == {
        "add",
        "add-photos",
        "check",
        "check-roster",
        "consent record",
        "consent withdraw",
        "deactivate",
        "export",
        "import",
        "import-roster",
        "list",
        "purge",
        "reactivate",
        "remove",
        "show",
        "update",
    }
