"""``clockface report`` end to end over a real kiosk SQLite file made by KioskStore."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from clockface.cli import main
from kiosk.store import KioskStore
from reports.cli import PROGRESS_FROM, schedule
from tests.helpers.cli import report
from tests.helpers.scenario import FIXTURES, GOLDEN, write_scenario

ROOT = Path(__file__).resolve().parents[1]
SCHEDULES = str(FIXTURES / "schedules.toml")
RANGE = ["--from", "2024-03-01", "--to", "2024-11-30"]


@pytest.fixture(scope="module")
def kiosk_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kiosk") / "kiosk.db"
    with KioskStore.open(path, kiosk_id="k1", actor="test") as store:
        write_scenario(store)
    return path


def rows_of(data: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data, newline="")))


def golden(kind: str) -> list[dict[str, str]]:
    return rows_of((GOLDEN / f"{kind}.csv").read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", ["late", "early", "absent", "hours", "summary"])
def test_cli_csv_matches_the_golden_report(kiosk_db: Path, kind: str) -> None:
    result = report(kind, *RANGE, "--schedules", SCHEDULES, "--db", str(kiosk_db))
    assert result.exit_code == 0, result.output
    assert rows_of(result.stdout) == golden(kind)
    assert "see `clockface report anomalies`" in result.stderr


def test_cli_anomalies_match_except_the_clock_the_store_does_not_record(kiosk_db: Path) -> None:
    result = report("anomalies", *RANGE, "--schedules", SCHEDULES, "--db", str(kiosk_db))
    assert result.exit_code == 0, result.output
    # The kiosk store does not record clock synchronisation yet: that anomaly needs it.
    expected = [r for r in golden("anomalies") if r["kind"] != "clock_unsynced"]
    got = [r for r in rows_of(result.stdout) if r["kind"] != "clock_unsynced"]
    for row in (*expected, *got):
        row.pop("event_id")  # the store makes its own ids
    assert got == expected


def test_cli_filters_and_json(kiosk_db: Path) -> None:
    args = ["--schedules", SCHEDULES, "--db", str(kiosk_db), "--format", "json"]
    late_bob = json.loads(report("late", *RANGE, *args, "--person", "bob").stdout)
    assert [(r["date"], r["minutes_late"]) for r in late_bob["rows"]] == [
        ("2024-07-02", 12),
        ("2024-11-02", 20),
    ]
    berlin = json.loads(report("summary", *RANGE, *args, "--site", "berlin").stdout)
    assert [r["person_id"] for r in berlin["rows"]] == ["ada"]
    days = json.loads(
        report(
            "hours", "--from", "2024-07-01", "--to", "2024-07-05", *args, "--team", "days"
        ).stdout
    )
    totals = {r["person_id"]: r["worked_minutes"] for r in days["rows"] if r["shift"] == "total"}
    assert totals == {"bob": 484 + 468 + 465 + 0, "dan": 490 + 474 + 476}


def test_cli_xlsx_and_html_to_files_atomically(kiosk_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "late.xlsx"
    base = ["late", *RANGE, "--schedules", SCHEDULES, "--db", str(kiosk_db)]
    result = report(*base, "--format", "xlsx", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: Late arrivals: 4 rows" in result.stderr
    sheet = load_workbook(out)["Late arrivals"]
    assert [row[8] for row in sheet.iter_rows(min_row=2, values_only=True)] == [10, 12, 6, 20]
    again = CliRunner().invoke(main, ["report", *base, "--format", "xlsx", "--output", str(out)])
    assert again.exit_code == 1, again.output
    assert again.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "exists; choose another name or give --force" in again.stderr
    forced = report(*base, "--format", "html", "--output", str(out), "--force")
    assert forced.exit_code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.xlsx"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--db", "{tmp}/missing.db"], "kiosk database '{tmp}/missing.db': no such file"),
        (["--schedules", "{tmp}/missing.toml"], "cannot read schedule file"),
        (["--schedules", "{tmp}/bad.csv"], "bad.csv: row 1 (line 2), kind: 'shop'"),
        (["--output", "{tmp}/no/such/r.csv"], "no folder"),
    ],
)
def test_cli_bad_input_is_one_error_line(
    kiosk_db: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    (tmp_path / "bad.csv").write_text("kind,name\nshop,x\n", encoding="utf-8")
    given = {"--db": str(kiosk_db), "--schedules": SCHEDULES}
    extra: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        value = value.replace("{tmp}", str(tmp_path))
        if flag in given:
            given[flag] = value
        else:
            extra += [flag, value]
    command = ["report", "late", *RANGE, *[x for kv in given.items() for x in kv], *extra]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and words.replace("{tmp}", str(tmp_path)) in errors[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "missing.db").exists()  # a report never creates a database


def test_cli_refuses_a_backwards_range(kiosk_db: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["report", "late", "--from", "2024-05-02", "--to", "2024-05-01", "--schedules",
         SCHEDULES, "--db", str(kiosk_db)],
    )  # fmt: skip
    assert result.exit_code == 2 and "is before --from" in result.stderr


def test_progress_bar_for_many_people(tmp_path: Path) -> None:
    path = tmp_path / "many.db"
    with KioskStore.open(path, actor="test") as store:
        for i in range(PROGRESS_FROM + 5):
            store.add_person(f"p{i:03}", f"Person {i}", "days")
    result = report(
        "summary", "--from", "2024-07-01", "--to", "2024-07-05", "--schedules", SCHEDULES,
        "--db", str(path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Computing" in result.stderr
    rows = rows_of(result.stdout)
    assert len(rows) == PROGRESS_FROM + 5 and {r["absent"] for r in rows} == {"4"}


def test_schedule_group(kiosk_db: Path) -> None:
    checked = CliRunner().invoke(schedule, ["check", SCHEDULES])
    assert checked.exit_code == 0, checked.output
    assert "site chicago: America/Chicago, 1 holiday" in checked.stdout
    assert "person dan: mon,tue,wed,thu,fri 10:00-18:00 at chicago" in checked.stdout
    # Dan's team (days) comes from the roster; the schedules from the file.
    shown = CliRunner().invoke(
        schedule,
        ["show", "--schedules", SCHEDULES, "--person", "dan", "--from", "2024-07-01",
         "--to", "2024-07-06", "--db", str(kiosk_db)],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == "2024-07-01 Mon  shift  10:00-18:00 at chicago (480 min)"
    assert lines[1].startswith("2024-07-02 Tue  day off")
    assert lines[3].startswith("2024-07-04 Thu  holiday")
    assert lines[5] == "2024-07-06 Sat  no schedule"


def test_report_runs_as_a_real_process(kiosk_db: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clockface", "report", "absent", *RANGE, "--schedules",
         SCHEDULES, "--db", str(kiosk_db)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert rows_of(done.stdout) == golden("absent")
