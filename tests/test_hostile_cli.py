"""Hostile input through the CLI (click's CliRunner over ``clockface.cli.main``).

Broken images (a decompression bomb, a truncated JPEG, a non-image, an empty file) for
``enroll add``; SQL-injection strings as names, ids and report filters; odd ``--output``
paths for reports and ``schedule export``; CSV formula injection in report cells. Every
case: the exit status, one ``Error: ...`` line, and the kiosk database's bytes
unchanged where nothing should write (or every row, where a write is expected).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sqlite3
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from clockface.cli import main
from kiosk.store import KioskStore
from tests.helpers.fakes import T0

SCHEDULES = """
[sites.hq]
timezone = "UTC"

[[shifts]]
team = "ops"
site = "hq"
days = "mon-sun"
start = "09:00"
end = "17:00"
from = 2024-03-01
until = 2024-03-07
"""
RANGE = ["--from", "2024-03-01", "--to", "2024-03-07"]
FORMULAS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", '=HYPERLINK("http://x")']


def sha256(path: Path) -> str:
    """The database file's hash, with its write-ahead log (empty after mere reading)."""
    wal = path.with_name(path.name + "-wal")
    data = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    return hashlib.sha256(data).hexdigest()


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    finally:
        conn.close()


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def kiosk_db(tmp_path: Path) -> Path:
    """A kiosk database with hostile names (formula starters) and a week of events."""
    path = tmp_path / "kiosk.db"
    with KioskStore.open(path, kiosk_id="k1", actor="test") as store:
        store.add_person("ann", "Ann", "ops")
        for i, name in enumerate(FORMULAS):
            store.add_person(f"f{i}", name, "ops")
        for day in range(3):
            at = T0.replace(year=2024, month=3, day=1 + day, hour=9, minute=20)
            store.append_event(
                "ann", "in", utc=at, tz="UTC", distance=0.3, margin=0.2, frames=3,
                software_version="test",
            )  # fmt: skip
    # An id the grammar refuses today (clockface.roster), as a database of older rules
    # may hold: reports must still neutralise it.
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO people (person_id, name, team, active, created_utc, updated_utc)"
            " VALUES ('=id', '=id''s name', '=team', 1, ?, ?)",
            ["2024-01-01T00:00:00.000000Z"] * 2,
        )
    conn.close()
    (tmp_path / "schedules.toml").write_text(SCHEDULES, encoding="utf-8")
    return path


# --------------------------------------------------------------------- images
def bomb_png(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels in a few hundred bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * (1 << 20), 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def truncated_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (200, 200), (120, 80, 40)).save(out, "JPEG")
    data = out.getvalue()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "make", "words"),
    [
        ("bomb.png", lambda: bomb_png(30000, 30000), "too large (900,000,000 pixels"),
        ("cut.jpg", truncated_jpeg, "cut short or corrupt"),
        ("notes.jpg", lambda: b"not an image at all\n" * 20, "not an image clockface can read"),
        ("empty.jpg", lambda: b"", "is empty (0 bytes)"),
    ],
)
def test_broken_images_enroll_nothing_and_leave_the_database_untouched(
    kiosk_db: Path, tmp_path: Path, name: str, make: Any, words: str
) -> None:
    photo = tmp_path / name
    photo.write_bytes(make())
    before = sha256(kiosk_db)
    result = run("enroll", "add", "p9", "--name", "Zed", "--db", str(kiosk_db),
                 "--consent-ref", "t", "--notice-version", "1", str(photo))  # fmt: skip
    line = one_error_line(result)
    assert "nothing enrolled for p9" in line and words in line, line
    assert sha256(kiosk_db) == before


# --------------------------------------------------------------------- SQL injection
INJECTIONS = ["'; DROP TABLE events; --", '" OR 1=1 --', "%", "_"]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_as_names_are_plain_text(kiosk_db: Path, text: str) -> None:
    before = rows(kiosk_db)
    result = run("enroll", "update", "ann", "--name", text, "--team", text, "--db", str(kiosk_db))
    assert result.exit_code == 0, result.output
    after = rows(kiosk_db)
    assert after["events"] == before["events"]
    people = {r[0]: r for r in after["people"]}
    assert text in people["ann"] and len(after["people"]) == len(before["people"])
    # every other person is as it was
    assert [r for r in after["people"] if r[0] != "ann"] == [
        r for r in before["people"] if r[0] != "ann"
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["update", "ann", "--name", "a\x00b"], "printable characters only"),
        (["update", "' OR '1'='1", "--name", "x"], "' OR '1'='1"),
        (["show", "%"], "%"),
        (["remove", "_", "--yes"], "_"),
    ],
)
def test_bad_or_unknown_names_and_ids_are_one_line_and_change_nothing(
    kiosk_db: Path, args: list[str], words: str
) -> None:
    before = sha256(kiosk_db)
    result = CliRunner().invoke(main, ["enroll", *args, "--db", str(kiosk_db)])
    if result.exit_code == 2:  # click refused an option (e.g. no --yes): still one line
        assert "Traceback" not in result.output
    else:
        line = one_error_line(result)
        assert words in line, line
    assert sha256(kiosk_db) == before


GRAMMAR = [
    "hr/007",
    "a b",
    "-p1",
    ".p1",
    "..",
    "x" * 65,
    "p\x00",
    "é1",
    "p#1",
    "p%2F1",
    *INJECTIONS,
]


@pytest.mark.parametrize("pid", GRAMMAR)
def test_ids_outside_the_grammar_are_refused_by_enroll_in_one_line(
    kiosk_db: Path, tmp_path: Path, pid: str
) -> None:
    before = sha256(kiosk_db)
    consent = ["--consent-ref", "r", "--notice-version", "1", "--db", str(kiosk_db)]
    line = one_error_line(run("enroll", "add", "--name", "X", *consent, "--", pid, "x.jpg"))
    assert "a person id is 1 to 64 letters, digits, '.', '_' or '-'" in line, line
    folder = tmp_path / "staff"
    (folder / "ok1").mkdir(parents=True)
    if "/" not in pid and "\x00" not in pid and not pid.startswith("."):  # hidden: skipped
        (folder / pid).mkdir()
        line = one_error_line(run("enroll", "import", str(folder), *consent))
        assert "a person id (folder name) is 1 to 64 letters" in line, line
    assert sha256(kiosk_db) == before


@pytest.mark.parametrize("text", [*INJECTIONS, "a\x00b", "x" * 10_000])
@pytest.mark.parametrize("option", ["--person", "--team", "--site"])
def test_injection_strings_as_report_filters_match_nothing(
    kiosk_db: Path, option: str, text: str
) -> None:
    before = sha256(kiosk_db)
    schedules = str(kiosk_db.parent / "schedules.toml")
    result = CliRunner().invoke(
        main,
        ["report", "summary", *RANGE, "--schedules", schedules, "--db", str(kiosk_db),
         option, text],
    )  # fmt: skip
    if result.exit_code == 0:
        table = list(csv.reader(io.StringIO(result.stdout, newline="")))
        assert len(table) == 1, table  # the header only: the text matched nobody
    else:
        one_error_line(result)
    assert sha256(kiosk_db) == before


@pytest.mark.parametrize(
    "args",
    [
        ["report", "late", "--from", "9999-12-01", "--to", "9999-12-31"],
        ["report", "late", "--from", "0001-01-01", "--to", "0001-01-31"],
        ["report", "summary", "--from", "2199-12-30", "--to", "2200-01-02"],
        ["report", "late", "--from", "1969-12-31", "--to", "1970-01-02", "--central-db", "c.db"],
        ["schedule", "holiday", "add", "hq", "9999-12-31"],
        ["schedule", "shift", "add", "--site", "hq", "--start", "9:00", "--end", "17:00",
         "--person", "ann", "--days", "mon-fri", "--until", "9999-12-31"],
        ["kiosk", "events", "--day", "9999-12-31"],
    ],
)  # fmt: skip
def test_dates_outside_1970_to_2199_are_refused_in_one_line(
    kiosk_db: Path, args: list[str]
) -> None:
    before = sha256(kiosk_db)
    result = CliRunner().invoke(main, [*args, "--db", str(kiosk_db)])
    assert result.exit_code in (1, 2), result.output  # 2: refused as the option was read
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    assert "is outside the dates clockface supports, 1970-01-01 to 2199-12-31" in errors[0]
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert sha256(kiosk_db) == before


def test_the_last_supported_dates_still_make_a_report(kiosk_db: Path) -> None:
    schedules = str(kiosk_db.parent / "schedules.toml")
    for first, last in (("2199-12-01", "2199-12-31"), ("1970-01-01", "1970-01-31")):
        result = CliRunner().invoke(
            main,
            ["report", "late", "--from", first, "--to", last, "--schedules", schedules,
             "--db", str(kiosk_db)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output


def test_leading_tabs_and_returns_are_stripped_from_names(kiosk_db: Path) -> None:
    for name in ("\t=1+1", "\r=1+1"):
        result = run("enroll", "update", "ann", "--name", name, "--db", str(kiosk_db))
        assert result.exit_code == 0, result.output
        people = {r[0]: r for r in rows(kiosk_db)["people"]}
        assert "=1+1" in people["ann"] and name not in people["ann"]


def test_a_name_of_100000_characters_is_refused(kiosk_db: Path) -> None:
    before = sha256(kiosk_db)
    result = run("enroll", "update", "ann", "--name", "x" * 100_000, "--db", str(kiosk_db))
    assert "at most" in one_error_line(result)
    assert sha256(kiosk_db) == before


# --------------------------------------------------------------------- output paths
def _report(kiosk_db: Path, *more: str) -> Result:
    schedules = str(kiosk_db.parent / "schedules.toml")
    return run("report", "summary", *RANGE, "--schedules", schedules, "--db", str(kiosk_db), *more)


def _schedule_export(kiosk_db: Path, *more: str) -> Result:
    return run("schedule", "export", "--db", str(kiosk_db), *more)


@pytest.fixture
def stored_schedules(kiosk_db: Path) -> Path:
    result = run(
        "schedule", "import", str(kiosk_db.parent / "schedules.toml"), "--db", str(kiosk_db)
    )
    assert result.exit_code == 0, result.output
    return kiosk_db


@pytest.mark.parametrize("command", [_report, _schedule_export])
def test_odd_output_paths_are_one_line_and_leave_no_file(
    stored_schedules: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: Any
) -> None:
    kiosk_db = stored_schedules
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    elsewhere = tmp_path / "precious.txt"
    elsewhere.write_text("keep me", encoding="utf-8")
    (work / "link.csv").symlink_to(elsewhere)
    before = sha256(kiosk_db)

    def listing() -> list[str]:
        return sorted(
            str(p.relative_to(tmp_path))
            for p in tmp_path.rglob("*")
            if not p.name.startswith("kiosk.db")
        )

    files = listing()
    for output, words in [
        ("../../etc/x", "no folder"),  # resolved from here: tmp/etc does not exist
        (str(work), "it is a folder"),
        ("link.csv", "exists; choose another name or give --force"),
        ("/dev/full", "not a regular file"),
        ("no/such/folder/r.csv", "no folder"),
    ]:
        result = command(kiosk_db, "--output", output)
        line = one_error_line(result)
        assert words in line, (output, line)
        assert listing() == files, output  # no partial or temporary file anywhere
    assert elsewhere.read_text(encoding="utf-8") == "keep me"
    # with --force, the link itself is replaced: the file it pointed at is untouched
    assert command(kiosk_db, "--output", "link.csv", "--force").exit_code == 0
    assert not (work / "link.csv").is_symlink() and (work / "link.csv").stat().st_size > 0
    assert elsewhere.read_text(encoding="utf-8") == "keep me"
    assert sha256(kiosk_db) == before


def test_force_does_not_replace_a_special_file(kiosk_db: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = _report(kiosk_db, "--output", str(fifo), "--force")
    assert one_error_line(result) == f"Error: cannot write {str(fifo)!r}: not a regular file"
    assert fifo.is_fifo()


# --------------------------------------------------------------------- CSV formulas
def test_csv_cells_that_start_a_formula_are_neutralised(kiosk_db: Path) -> None:
    before = sha256(kiosk_db)
    for kind in ("summary", "absent", "late"):
        result = _report(kiosk_db, "--format", "csv")
        result = _report(kiosk_db) if kind == "summary" else run(
            "report", kind, *RANGE, "--schedules", str(kiosk_db.parent / "schedules.toml"),
            "--db", str(kiosk_db),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        table = list(csv.reader(io.StringIO(result.stdout, newline="")))
        cells = [cell for row in table[1:] for cell in row]
        assert cells, kind
        dangerous = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
        assert dangerous == [], (kind, dangerous)
        # negative numbers stay numbers; text starting with '-' is quoted
        assert not [c for c in cells if c.startswith("-") and not _is_number(c)], kind
    summary = _report(kiosk_db).stdout
    for name in FORMULAS:
        assert "'" + name in summary or "'" + name.replace('"', '""') in summary, name
    assert "'=id" in summary
    assert sha256(kiosk_db) == before


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
