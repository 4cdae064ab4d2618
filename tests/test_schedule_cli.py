"""``clockface schedule ...`` and reports over stored schedules, on real database files:
a kiosk's SQLite file and a central SQLite file, through click's runner and once through
the installed ``clockface`` command in a process of its own."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result

from central.store import CentralStore
from kiosk.store import KioskStore
from reports.schedule_files import load_schedules
from sync.agent import to_wire
from sync.protocol import MAX_BATCH_EVENTS, EventBatch
from tests.helpers.cli import run, succeeds
from tests.helpers.scenario import FIXTURES, scenario_events, scenario_people

ROOT = Path(__file__).resolve().parents[1]
SCHEDULES = str(FIXTURES / "schedules.toml")
RANGE = ["--from", "2024-03-01", "--to", "2024-11-30"]
KINDS = ("late", "early", "absent", "hours", "summary", "anomalies")
SENT = datetime(2024, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def scenario_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden scenario's roster and events in a kiosk database, no schedules."""
    path = tmp_path_factory.mktemp("scenario") / "kiosk.db"
    with KioskStore.open(path, kiosk_id="k1", actor="test", clock_status=lambda: None) as store:
        for person in scenario_people():
            store.add_person(person.person_id, person.name, person.team)
        for event in sorted(scenario_events(), key=lambda e: e.utc):
            store.append_event(
                event.person_id, event.direction, utc=event.utc, tz=event.tz, distance=0.3,
                margin=0.2, frames=3, software_version="test", clock_synced=event.clock_synced,
            )  # fmt: skip
    return path


@pytest.fixture
def kiosk_db(scenario_db: Path, tmp_path: Path) -> Path:
    """A copy of the scenario's kiosk database for one test."""
    path = tmp_path / "kiosk.db"
    with sqlite3.connect(scenario_db) as source, sqlite3.connect(path) as copy:
        source.backup(copy)
    source.close()
    copy.close()
    return path


@pytest.fixture
def central_db(scenario_db: Path, tmp_path: Path) -> Path:
    """A central SQLite database holding the scenario's roster and events (no schedules)
    and a site "berlin" where its kiosk stands."""
    path = tmp_path / "central.db"
    with (
        CentralStore.open(path, actor="test", clock=lambda: SENT) as central,
        KioskStore.open(scenario_db) as kiosk,
    ):
        central.add_site("berlin", "Europe/Berlin")
        central.create_kiosk("k1", "berlin")
        for person in kiosk.people():
            central.add_person(person.person_id, person.name, person.team)
        wire = [to_wire(e, kiosk.log_id) for e in kiosk.events()]
        for a in range(0, len(wire), MAX_BATCH_EVENTS):
            central.ingest("k1", EventBatch(sent_utc=SENT, events=wire[a : a + MAX_BATCH_EVENTS]))
    return path


def one_error(result: Result, words: str) -> None:
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and words in errors[0], result.stderr
    assert "Traceback" not in result.output


# --------------------------------------------------------------------- schedule
def test_import_list_export_round_trip(kiosk_db: Path, tmp_path: Path) -> None:
    db = ["--db", str(kiosk_db)]
    assert succeeds("schedule", "list", *db).stdout == f"no schedules stored in {kiosk_db}\n"
    dry = succeeds("schedule", "import", SCHEDULES, "--dry-run", *db)
    assert dry.stdout.startswith("dry run, nothing written: would import ")
    assert "no schedules stored" in succeeds("schedule", "list", *db).stdout
    done = succeeds("schedule", "import", SCHEDULES, *db)
    assert done.stdout == (
        f"imported {SCHEDULES} into {kiosk_db}: 2 sites, 2 holidays, 6 shifts, 1 day off\n"
    )
    again = run("schedule", "import", SCHEDULES, *db)
    one_error(again, "schedules are already stored in")
    assert "give --replace" in again.stderr
    replaced = succeeds("schedule", "import", SCHEDULES, "--replace", *db)
    assert replaced.stdout.startswith(f"replaced the schedules in {kiosk_db} (2 sites, ")

    listed = succeeds("schedule", "list", *db).stdout.splitlines()
    assert listed[0] == "site berlin: Europe/Berlin, 1 holiday"
    assert listed[1] == "  holiday 2024-10-03 Thu"
    # The replaced import's 6 shifts and 1 day off had ids 1-6 and 1; ids never come back.
    assert listed[4].startswith(
        "shift #7 team nights: mon-sun 22:00-06:00 at berlin, grace 5/5 min, window 60/120 min,"
        " 2024-03-30 to 2024-03-31  (imported from "
    )
    assert listed[-1] == "day off #2 person dan: 2024-07-02  (dentist)"

    out = tmp_path / "exported.toml"
    wrote = succeeds("schedule", "export", "--output", str(out), *db)
    assert wrote.stderr == f"wrote {out}: 2 sites, 2 holidays, 6 shifts, 1 day off\n"
    assert succeeds("schedule", "export", *db).stdout == out.read_text(encoding="utf-8")
    exported, original = load_schedules(out), load_schedules(SCHEDULES)
    assert exported.sites == original.sites and exported.days_off == original.days_off
    assert [s.text for s in exported.shifts] == [s.text for s in original.shifts]
    one_error(run("schedule", "export", "--output", str(out), *db), "exists")
    assert succeeds("schedule", "check", str(out)).stdout.startswith(f"{out}: ok")


def test_one_change_at_a_time(kiosk_db: Path) -> None:
    db = ["--db", str(kiosk_db)]
    one_error(run("schedule", "site", "add", "paris", *db), "give its IANA time zone")
    assert succeeds(
        "schedule", "site", "add", "paris", "--timezone", "Europe/Paris", *db
    ).stdout == ("added site paris (Europe/Paris)\n")
    succeeds("schedule", "holiday", "add", "paris", "2024-07-14", "--name", "Fête nationale", *db)
    one_error(run("schedule", "holiday", "add", "paris", "2024-07-14", *db), "already has")
    bad_day = run("schedule", "holiday", "add", "paris", "14.7.2024", *db)
    assert bad_day.exit_code == 2 and "'14.7.2024' is not a date YYYY-MM-DD" in bad_day.stderr

    add = ["schedule", "shift", "add", "--site", "paris", "--start", "9:00", "--end", "17:00"]
    added = succeeds(*add, "--person", "ada", "--days", "mon-fri", "--grace-late", "5", *db)
    assert added.stdout == "1\n"
    assert added.stderr == "added shift #1: person ada mon-fri 09:00-17:00 at paris\n"
    one_error(
        run(*add, "--person", "ada", "--days", "fri sat", *db),
        "the new shift: person 'ada' already has a shift on these weekdays and dates (shift #1)",
    )
    one_error(
        run(*add, "--person", "ada", "--days", "sat", "--end", "5pm", *db),
        "the new shift, end: '5pm' is not a time HH:MM",
    )
    both = run(*add, "--person", "ada", "--team", "x", "--days", "sat", *db)
    assert both.exit_code == 2 and "give --person ID or --team TEAM" in both.stderr
    stranger = succeeds(*add, "--team", "cleaners", "--days", "sat,sun", *db)
    assert stranger.stdout == "2\n"
    assert f"note: nobody in the roster is in team 'cleaners' of {kiosk_db} (yet)" in (
        stranger.stderr
    )
    off = succeeds("schedule", "day-off", "add", "--person", "ada", "--from", "2024-07-15",
             "--until", "2024-07-16", "--note", "leave", *db)  # fmt: skip
    assert off.stdout == "1\n"

    shown = succeeds("schedule", "show", "--person", "ada", "--from", "2024-07-12", "--to",
               "2024-07-16", *db).stdout.splitlines()  # fmt: skip
    assert shown == [
        "2024-07-12 Fri  shift  09:00-17:00 at paris (480 min)",
        "2024-07-13 Sat  rest",
        "2024-07-14 Sun  rest",
        "2024-07-15 Mon  day off  09:00-17:00 at paris",
        "2024-07-16 Tue  day off  09:00-17:00 at paris",
    ]
    one_error(
        run("schedule", "show", "--person", "zed", "--from", "2024-07-12", "--to", "2024-07-13",
            *db),
        f"no person 'zed' in the roster of {kiosk_db}",
    )  # fmt: skip
    one_error(run("schedule", "site", "remove", "paris", *db), "used by 2 shifts (#1, #2)")
    assert succeeds("schedule", "shift", "remove", "2", *db).stdout == (
        "removed shift #2: team cleaners sat,sun 09:00-17:00 at paris\n"
    )
    succeeds("schedule", "shift", "remove", "1", *db)
    one_error(run("schedule", "shift", "remove", "1", *db), f"no shift #1 in {kiosk_db}")
    succeeds("schedule", "day-off", "remove", "1", *db)
    one_error(run("schedule", "day-off", "remove", "1", *db), f"no day off #1 in {kiosk_db}")
    succeeds("schedule", "site", "set-timezone", "paris", "Europe/Brussels", *db)
    one_error(run("schedule", "holiday", "remove", "paris", "2024-01-01", *db), "no holiday")
    succeeds("schedule", "holiday", "remove", "paris", "2024-07-14", *db)
    assert succeeds("schedule", "site", "remove", "paris", *db).stdout == (
        "removed site paris and its 0 holidays\n"
    )
    with KioskStore.open(kiosk_db) as store:
        actions = [a.action for a in store.audit_log() if a.actor != "test"]
    assert actions == [
        "site_added", "holiday_added", "shift_added", "shift_added", "day_off_added",
        "shift_removed", "shift_removed", "day_off_removed", "site_timezone_set",
        "holiday_removed", "site_removed",
    ]  # fmt: skip


def test_never_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    one_error(run("schedule", "list", "--db", str(missing)), "no such file")
    one_error(run("schedule", "list", "--central-db", str(missing)), "no such file")
    one_error(
        run("schedule", "import", SCHEDULES, "--central-db", str(missing)), "central database"
    )
    assert list(tmp_path.iterdir()) == []


def test_one_database_at_a_time(kiosk_db: Path, central_db: Path) -> None:
    both = run("schedule", "list", "--db", str(kiosk_db), "--central-db", str(central_db))
    assert both.exit_code == 2 and "give one of --db and --central-db, not both" in both.stderr
    env = {"CLOCKFACE_DB": str(kiosk_db), "CLOCKFACE_CENTRAL_DATABASE": str(central_db)}
    both_set = run("schedule", "list", env=env)
    assert both_set.exit_code == 2 and "are both set" in both_set.stderr
    # An option beats the environment; the environment alone works too.
    assert succeeds("schedule", "import", SCHEDULES, "--db", str(kiosk_db)).exit_code == 0
    central_env = {"CLOCKFACE_CENTRAL_DATABASE": str(central_db)}
    assert run("schedule", "list", env=central_env).stdout == (
        f"no schedules stored in {central_db}\n"
    )
    assert run("schedule", "list", "--db", str(kiosk_db), env=env).stdout.startswith("site ")


def test_central_sites_lend_their_zone(central_db: Path) -> None:
    db = ["--central-db", str(central_db)]
    assert succeeds("schedule", "site", "add", "berlin", *db).stdout == (
        "added site berlin (Europe/Berlin)\n"
    )
    one_error(
        run("schedule", "site", "set-timezone", "berlin", "Europe/Paris", *db),
        "the central site of that name (where its kiosks stand) is in Europe/Berlin",
    )
    with CentralStore.open(central_db) as central:
        entries = [(a.kind, a.action, a.subject) for a in central.audit() if a.kind == "schedule"]
    assert entries == [("schedule", "site_added", "site:berlin")]
    # The other way round: a central site takes the zone of the schedule site so named.
    succeeds("schedule", "site", "add", "lisbon", "--timezone", "Europe/Lisbon", *db)
    one_error(
        run("central", "site", "add", "lisbon", "--timezone", "Europe/Madrid", "--database",
            str(central_db)),
        "the schedule site of that name (clockface schedule) is in Europe/Lisbon",
    )  # fmt: skip
    succeeds("central", "site", "add", "lisbon", "--timezone", "Europe/Lisbon", "--database",
       str(central_db))  # fmt: skip
    with CentralStore.open(central_db) as central:
        assert [(s.name, s.timezone) for s in central.sites()] == [
            ("berlin", "Europe/Berlin"),
            ("lisbon", "Europe/Lisbon"),
        ]


# --------------------------------------------------------------------- reports
def report_json(kind: str, *args: str) -> object:
    """The report's content, without its verification record (which names the schedule
    file and the database it came from, and when it was made)."""
    result = run("report", kind, *RANGE, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return without_record(result.stdout)


def without_record(text: str) -> object:
    found = json.loads(text)
    assert found.pop("verification")["report"] == found["report"]
    return found


def test_reports_over_stored_schedules_match_the_file(kiosk_db: Path) -> None:
    db = ["--db", str(kiosk_db)]
    no_schedules = run("report", "late", *RANGE, *db)
    one_error(
        no_schedules,
        f"Error: no schedules stored in {kiosk_db}: add them with `clockface schedule import "
        "FILE`, or give --schedules FILE",
    )
    from_file = {kind: report_json(kind, *db, "--schedules", SCHEDULES) for kind in KINDS}
    succeeds("schedule", "import", SCHEDULES, *db)
    for kind in KINDS:
        assert report_json(kind, *db) == from_file[kind], kind
    late = from_file["late"]
    assert isinstance(late, dict) and len(late["rows"]) == 4  # not an empty report


def test_central_reports_over_stored_schedules_match_the_file(
    kiosk_db: Path, central_db: Path
) -> None:
    central = ["--central-db", str(central_db)]
    one_error(run("report", "absent", *RANGE, *central), f"no schedules stored in {central_db}")
    succeeds("schedule", "import", SCHEDULES, *central)
    succeeds("schedule", "import", SCHEDULES, "--db", str(kiosk_db))
    for kind in KINDS:
        stored = report_json(kind, *central)
        assert stored == report_json(kind, *central, "--schedules", SCHEDULES), kind
        kiosk = report_json(kind, "--db", str(kiosk_db))
        if kind != "anomalies":  # anomalies name events and kiosks, differently
            assert stored == kiosk, kind


# --------------------------------------------------------------------- processes
def test_the_installed_command_in_a_process_of_its_own(kiosk_db: Path, tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "clockface"
    env = {**os.environ, "CLOCKFACE_DB": str(kiosk_db)}

    def clockface(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(command), *args], capture_output=True, text=True, cwd=tmp_path, env=env,
            timeout=120, check=False,
        )  # fmt: skip

    imported = clockface("schedule", "import", SCHEDULES)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(f"imported {SCHEDULES} into {kiosk_db}: 2 sites")
    absent = clockface("report", "absent", *RANGE, "--format", "json")
    assert absent.returncode == 0, absent.stderr
    with_file = run("report", "absent", *RANGE, "--format", "json", "--schedules", SCHEDULES,
                    "--db", str(kiosk_db))  # fmt: skip
    assert without_record(absent.stdout) == without_record(with_file.stdout)
    assert len(json.loads(absent.stdout)["rows"]) > 0


def test_help_imports_no_database_code() -> None:
    probe = (
        "import sys; import reports.cli; "
        "print(sorted(m for m in ('sqlalchemy', 'reports.schedule_store', 'kiosk.store') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
