"""``clockface report ... | verify`` over the golden scenario's kiosk and central databases.

The ``template_db``, ``kiosk_db`` and ``central_db`` fixtures (a module using
``central_db`` also imports ``postgres_cluster`` and ``postgres_url``), exporting a late
report from either, verifying a file, and the edits a forger would make.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result

from clockface import chain
from kiosk import migrations
from kiosk.store import KioskStore
from tests.helpers.central_reports import empty_database, fill_central
from tests.helpers.cli import report
from tests.helpers.scenario import FIXTURES, write_scenario

SCHEDULES = str(FIXTURES / "schedules.toml")
RANGE = ["--from", "2024-03-01", "--to", "2024-11-30"]
LATE_ROWS = 4  # the golden late report


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "kiosk.db"
    with KioskStore.open(path, kiosk_id="k1", actor="test") as store:
        write_scenario(store)
    return path


@pytest.fixture
def kiosk_db(template_db: Path, tmp_path: Path) -> Path:
    """A fresh copy of the scenario's kiosk database for each test (tests change it)."""
    path = tmp_path / "db" / "kiosk.db"
    path.parent.mkdir()
    shutil.copyfile(template_db, path)
    return path


def export(db: Path, folder: Path, fmt: str, kind: str = "late") -> Path:
    out = folder / f"{kind}.{fmt}"
    result = report(
        kind, *RANGE, "--schedules", SCHEDULES, "--db", str(db), "--format", fmt, "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    return out


def verify(path: Path, *args: str) -> Result:
    return report("verify", str(path), *args)


def edit_json(path: Path, change: str) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    rows = document["rows"]
    if change == "edit":
        rows[1]["minutes_late"] = 2
    elif change == "delete":
        del rows[2]
    else:
        rows.append(dict(rows[0]))
    path.write_text(json.dumps(document), encoding="utf-8")


def rewrite_event(db: Path, seq: int, *, rechain: bool) -> None:
    """Edit event ``seq`` by hand (triggers dropped); with ``rechain``, recompute every
    chain from there on as a careful forger would."""
    conn = sqlite3.connect(db)
    try:
        for name in migrations.EVENT_TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute("UPDATE events SET frames = frames + 1 WHERE seq = ?", (seq,))
        if rechain:
            (log_id,) = conn.execute("SELECT value FROM settings WHERE key = 'log_id'").fetchone()
            rows = conn.execute(
                "SELECT event_id, seq, kiosk_id, person_id, direction, utc, tz, distance,"
                " margin, frames, software_version, clock_synced FROM events ORDER BY seq"
            ).fetchall()
            fields = [
                chain.EventFields(
                    event_id=r[0],
                    log_id=log_id,
                    seq=r[1],
                    kiosk_id=r[2],
                    person_id=r[3],
                    direction=r[4],
                    utc=r[5],
                    tz=r[6],
                    distance=r[7],
                    margin=r[8],
                    frames=r[9],
                    software_version=r[10],
                    clock_synced=None if r[11] is None else bool(r[11]),
                )
                for r in rows
            ]
            for f, link in zip(fields, chain.chained(log_id, fields), strict=True):
                conn.execute("UPDATE events SET chain = ? WHERE seq = ?", (link, f.seq))
        conn.commit()
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def central_db(request: pytest.FixtureRequest, kiosk_db: Path, tmp_path: Path) -> Iterator[str]:
    """The scenario's kiosk log, synced into a new central database of each kind."""
    for database in empty_database(request.param, tmp_path / "central", request):
        if request.param == "sqlite":
            (tmp_path / "central").mkdir()
        fill_central(database, kiosk_db)
        yield database


def export_central(database: str, folder: Path, fmt: str) -> Path:
    out = folder / f"late.{fmt}"
    result = report(
        "late", *RANGE, "--schedules", SCHEDULES, "--central-db", database, "--format", fmt,
        "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out
