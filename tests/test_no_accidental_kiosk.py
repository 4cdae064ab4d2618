"""A mistyped --db never becomes a new kiosk (issue 15, item 8).

Only `kiosk run` and `enroll add` may create a kiosk database, and they say so; every
other command refuses a missing path, a folder or an empty file in one line, and leaves
nothing behind. Real commands, real files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from clockface.cli import main
from clockface.errors import StoreError
from kiosk.store import KioskStore

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = [
    ["kiosk", "events"],
    ["kiosk", "verify-log"],
    ["kiosk", "rotate-key", "--new-key-file", "{tmp}/new.key"],
    ["sync", "status"],
    ["sync", "once", "--server", "http://127.0.0.1:9"],
    ["sync", "retry-parked"],
    ["sync", "detach"],
    ["enroll", "list"],
    ["report", "late", "--from", "2024-03-01", "--to", "2024-03-02"],
    ["schedule", "list"],
]


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("kind", ["missing", "empty", "folder"])
def test_a_command_that_reads_a_kiosk_never_creates_one(
    tmp_path: Path, command: list[str], kind: str
) -> None:
    db = tmp_path / "typo.db"
    if kind == "empty":
        db.write_bytes(b"")
    elif kind == "folder":
        db.mkdir()
    before = _files(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    result = CliRunner().invoke(main, [*args, "--db", str(db)], env={"CLOCKFACE_SYNC_TOKEN": "t"})
    assert result.exit_code in (1, 2), result.output  # 2: --db refused as it was read
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert str(db) in errors[0] or repr(str(db)) in errors[0]
    assert _files(tmp_path) == before  # no database, no -wal, no key: nothing
    if kind == "empty":
        assert db.read_bytes() == b""  # still empty: not initialised


def test_the_store_creates_only_when_asked_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    with pytest.raises(StoreError, match=f"no kiosk database at {db}: check --db"):
        KioskStore.open(db, create=False)
    assert not db.exists()
    with KioskStore.open(db) as store:
        assert store.created
    with KioskStore.open(db, create=False) as store:
        assert not store.created
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(StoreError, match="is an empty file, not a kiosk database"):
        KioskStore.open(empty, create=False)
    with KioskStore.open(empty) as store:
        assert store.created  # an empty file is a new database for the commands that create


@pytest.mark.faces
def test_kiosk_run_and_enroll_add_say_they_created_a_database(tmp_path: Path) -> None:
    from tests.helpers.shared_faces import faces_dir

    faces = faces_dir()
    db = tmp_path / "new" / "kiosk.db"
    added = subprocess.run(
        [sys.executable, "-m", "clockface", "enroll", "add", "lin", "--name", "Lin",
         "--consent-ref", "form-1", "--notice-version", "1", "--db", str(db),
         str(faces / "lin_manuel_miranda" / "lin_manuel_miranda1.png")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert f"created a new kiosk database at {db}" in added.stderr
    again = subprocess.run(
        [sys.executable, "-m", "clockface", "enroll", "list", "--db", str(db)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0 and "created a new" not in again.stderr
    other = tmp_path / "run.db"
    ran = subprocess.run(
        [sys.executable, "-m", "clockface", "kiosk", "run", "--db", str(other),
         "--source", str(faces / "video" / "short_hamilton_clip.mp4"), "--encoder-workers", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert f"created a new kiosk database at {other}" in ran.stderr
