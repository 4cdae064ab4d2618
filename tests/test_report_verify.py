"""``clockface report verify``: reports that carry a verification record, checked later
against the file itself and against a real kiosk SQLite database."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from central.store import CentralStore
from clockface import chain
from clockface.cli import main
from kiosk.store import KioskStore
from reports.tables import Column, Report, Table
from reports.verify import (
    Verification,
    html_block,
    make_verification,
    read_report_file,
    row_digest,
    rows_digest,
    sidecar_path,
)
from sync.agent import to_wire
from tests.helpers.central_reports import KIOSK, fill_central, push
from tests.helpers.cli import report
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.scenario import FIXTURES, scenario_events
from tests.helpers.verify import (
    LATE_ROWS,
    RANGE,
    SCHEDULES,
    central_db,
    edit_json,
    export,
    export_central,
    kiosk_db,
    rewrite_event,
    template_db,
    verify,
)

__all__ = ["central_db", "kiosk_db", "template_db"]  # fixtures, used by name

FORMATS = ["csv", "json", "html", "xlsx"]


# --------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips(kiosk_db: Path, tmp_path: Path, fmt: str) -> None:
    out = export(kiosk_db, tmp_path, fmt)
    alone = verify(out)
    assert alone.exit_code == 0, alone.output
    assert alone.stdout.startswith(f"verified: {out}: {LATE_ROWS} rows match")
    assert "the digest alone proves little" in alone.stdout
    full = verify(out, "--db", str(kiosk_db))
    assert full.exit_code == 0, full.output
    assert full.stdout.splitlines() == [
        f"verified: {out}: {LATE_ROWS} rows match the recorded digest; the chain head still "
        "holds; the database gives the same rows"
    ]


def test_one_digest_for_every_format(kiosk_db: Path, tmp_path: Path) -> None:
    records = [read_report_file(export(kiosk_db, tmp_path, fmt)).record for fmt in FORMATS]
    assert len({r.rows_sha256 for r in records}) == 1
    assert len({r.row_digests for r in records}) == 1
    record = records[0]
    assert (record.kind, record.first, record.last) == (
        "late",
        date(2024, 3, 1),
        date(2024, 11, 30),
    )
    assert record.schedules == SCHEDULES and record.database == "kiosk"
    with KioskStore.open(kiosk_db) as store:
        log_id = store.log_id
    [head] = record.heads
    assert head.log_id == log_id and head.seq == len(scenario_events())
    assert chain.is_chain(head.chain)


def test_csv_keeps_its_record_beside_it_and_stays_plain(kiosk_db: Path, tmp_path: Path) -> None:
    out = export(kiosk_db, tmp_path, "csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db", "late.csv", "late.csv.verify.json"]
    lines = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert lines[0][0] == "date" and len(lines) == LATE_ROWS + 1
    assert not any(line and line[0].startswith("#") for line in lines)
    json.loads(sidecar_path(out).read_text(encoding="utf-8"))
    sidecar_path(out).unlink()
    missing = verify(out)
    assert missing.exit_code == 1
    assert "no verification record: a CSV report keeps it beside it" in missing.stderr


def test_csv_on_standard_output_has_no_record(kiosk_db: Path, tmp_path: Path) -> None:
    result = report("late", *RANGE, "--schedules", SCHEDULES, "--db", str(kiosk_db))
    assert result.exit_code == 0
    out = tmp_path / "piped.csv"
    out.write_bytes(result.stdout_bytes)
    assert out.read_bytes() == (FIXTURES / "golden" / "late.csv").read_bytes()
    assert verify(out).exit_code == 1


def test_html_record_is_data_that_cannot_close_its_block() -> None:
    table = Table("T", (Column("name", "Name", "text"),), (("</script><script>x()",),))
    made = Report("late", date(2024, 1, 1), date(2024, 1, 2), table, table)
    record = make_verification(
        made, person_id=None, team=None, site=None, schedules="</script>", database="kiosk",
        where="x.db", heads=(), now=datetime(2024, 1, 3, tzinfo=UTC),
    )  # fmt: skip
    block = html_block(record)
    assert block.startswith('<script type="application/json" id="verification">')
    assert block.count("</script>") == 1 and block.count("<") == 2
    inner = block.split(">", 1)[1].rsplit("<", 1)[0]
    assert Verification.from_json(json.loads(inner)) == record


# --------------------------------------------------------------------- edited files
def _csv_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    out = io.StringIO(newline="")
    csv.writer(out).writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def edit_csv(path: Path, change: str) -> None:
    rows = _csv_rows(path)
    if change == "edit":
        rows[2][-1] = "2"  # row 2: 12 minutes late becomes 2
    elif change == "delete":
        del rows[3]  # row 3
    else:
        rows.append(list(rows[1]))
    _write_csv(path, rows)


def edit_html(path: Path, change: str) -> None:
    text = path.read_text(encoding="utf-8")
    head, rest = text.split("<tbody>\n", 1)
    body, tail = rest.split("\n</tbody>", 1)
    rows = body.split("\n")
    if change == "edit":
        rows[1] = rows[1].replace('<td class="num">12</td>', '<td class="num">2</td>')
    elif change == "delete":
        del rows[2]
    else:
        rows.append(rows[0])
    path.write_text(head + "<tbody>\n" + "\n".join(rows) + "\n</tbody>" + tail, encoding="utf-8")


def edit_xlsx(path: Path, change: str) -> None:
    book = load_workbook(path)
    sheet = book[book.sheetnames[0]]
    if change == "edit":
        sheet.cell(row=3, column=9).value = 2
    elif change == "delete":
        sheet.delete_rows(4)
    else:
        sheet.append([cell.value for cell in sheet[2]])
    book.save(path)


EDITORS: dict[str, Callable[[Path, str], None]] = {
    "csv": edit_csv,
    "json": edit_json,
    "html": edit_html,
    "xlsx": edit_xlsx,
}
CHANGES = {
    "edit": "row 2 differs in the file",
    "delete": "row 3 is missing from the file",
    "add": "the file has a row not in the report (its row 5)",
}


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("fmt", FORMATS)
def test_an_edited_file_is_caught(kiosk_db: Path, tmp_path: Path, fmt: str, change: str) -> None:
    out = export(kiosk_db, tmp_path, fmt)
    EDITORS[fmt](out, change)
    for args in ((), ("--db", str(kiosk_db))):
        result = verify(out, *args)
        assert result.exit_code == 1, result.output
        assert f"{out}: {CHANGES[change]}" in result.stdout.splitlines()
        assert "verified" not in result.stdout


def test_a_forged_digest_passes_alone_but_not_against_the_database(
    kiosk_db: Path, tmp_path: Path
) -> None:
    out = export(kiosk_db, tmp_path, "json")
    document = json.loads(out.read_text(encoding="utf-8"))
    document["rows"][1]["minutes_late"] = 2
    out.write_text(json.dumps(document), encoding="utf-8")
    found = read_report_file(out).rows  # whoever edits can rehash with the same code
    record = document["verification"]
    record["rows_sha256"] = rows_digest([c["key"] for c in record["columns"]], found)
    record["row_digests"] = [row_digest(r) for r in found]
    out.write_text(json.dumps(document), encoding="utf-8")
    assert verify(out).exit_code == 0
    result = verify(out, "--db", str(kiosk_db))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{out}: the database now gives different rows for these parameters",
        f"{out}: row 2 differs in the database now",
    ]


# --------------------------------------------------------------------- the database


@pytest.mark.parametrize("rechain", [False, True])
def test_a_database_rewritten_after_the_export_is_caught(
    kiosk_db: Path, tmp_path: Path, rechain: bool
) -> None:
    out = export(kiosk_db, tmp_path, "xlsx")
    rewrite_event(kiosk_db, 3, rechain=rechain)
    assert verify(out).exit_code == 0  # the file alone is as it was
    result = verify(out, "--db", str(kiosk_db))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    if rechain:
        assert any("the chain at seq" in line and "rewritten since" in line for line in lines)
    else:
        assert any("seq 3" in line for line in lines), lines
    assert "verified" not in result.stdout


def test_events_that_arrive_later_are_not_part_of_the_report(
    kiosk_db: Path, tmp_path: Path
) -> None:
    out = export(kiosk_db, tmp_path, "csv")
    with KioskStore.open(kiosk_db) as store:  # Ada's absent night, 15 min late, synced late
        store.append_event(
            "ada", "in", utc=datetime(2024, 10, 27, 21, 15, tzinfo=UTC), tz="Europe/Berlin",
            distance=0.3, margin=0.2, frames=3, software_version="test",
        )  # fmt: skip
    result = verify(out, "--db", str(kiosk_db))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"verified: {out}: {LATE_ROWS} rows match the recorded digest; the chain head still "
        "holds; the database gives the same rows as of the chain heads",
        f"{out}: 1 later event in this range arrived after the report was made; as of its "
        "chain heads the database gives the same rows",
    ]
    again = export(kiosk_db, tmp_path / "db", "csv")  # made now, it has the row
    assert len(_csv_rows(again)) == LATE_ROWS + 2
    assert verify(again, "--db", str(kiosk_db)).stdout.splitlines() == [
        f"verified: {again}: {LATE_ROWS + 1} rows match the recorded digest; the chain head "
        "still holds; the database gives the same rows"
    ]


def test_another_database_is_refused(kiosk_db: Path, tmp_path: Path) -> None:
    out = export(kiosk_db, tmp_path, "json")
    other = tmp_path / "other.db"
    with KioskStore.open(other, kiosk_id="k2", actor="test"):
        pass
    result = verify(out, "--db", str(other), "--schedules", SCHEDULES)
    assert result.exit_code == 1
    assert "not the log of" in result.stdout


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{}", "no verification record in this JSON report"),
        (b'{"verification": {"format": "x"}', "bad JSON"),
        (b'{"verification": {"format": "x"}, "rows": []}', "verification record is damaged"),
        (b"<!DOCTYPE html><html></html>", "no verification record in this HTML report"),
        (b"PK\x03\x04 not a zip", "not a readable workbook"),
    ],
)
def test_bad_files_are_one_error_line(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "r.bin"
    path.write_bytes(content)
    result = CliRunner().invoke(main, ["report", "verify", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and words in result.stderr
    assert "Traceback" not in result.output


def test_verify_refuses_two_databases(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["report", "verify", str(tmp_path / "x.json"), "--db", "a", "--central-db", "b"]
    )
    assert result.exit_code == 2 and "not both" in result.stderr


# --------------------------------------------------------------------- the central database


def test_central_report_round_trips_and_records_the_checked_heads(
    central_db: str, kiosk_db: Path, tmp_path: Path
) -> None:
    out = export_central(central_db, tmp_path, "json")
    record = read_report_file(out).record
    with KioskStore.open(kiosk_db) as store:
        log_id, last = store.log_id, store.events()[-1]
    assert [(h.log_id, h.seq, h.chain) for h in record.heads] == [(log_id, last.seq, last.chain)]
    assert record.database == "central" and record.where == central_db
    result = verify(out, "--central-db", central_db)
    assert result.exit_code == 0, result.output
    assert "the chain head still holds; the database gives the same rows" in result.stdout
    wrong = verify(out, "--db", str(kiosk_db))
    assert wrong.exit_code == 1
    assert "came from the central database, not the kiosk one" in wrong.stdout


def test_a_late_sync_to_the_central_database_is_not_part_of_the_report(
    central_db: str, kiosk_db: Path, tmp_path: Path
) -> None:
    out = export_central(central_db, tmp_path, "xlsx")
    with KioskStore.open(kiosk_db) as store:  # Ada's absent night, 15 min late, synced late
        store.append_event(
            "ada", "in", utc=datetime(2024, 10, 27, 21, 15, tzinfo=UTC), tz="Europe/Berlin",
            distance=0.3, margin=0.2, frames=3, software_version="test",
        )  # fmt: skip
        late, log_id = store.events()[-1], store.log_id
    with CentralStore.open(central_db, actor="test", clock=lambda: datetime.now(UTC)) as central:
        push(central, KIOSK, [to_wire(late, log_id)])  # received now, after the report
    result = verify(out, "--central-db", central_db)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"verified: {out}: {LATE_ROWS} rows match the recorded digest; the chain head still "
        "holds; the database gives the same rows as of the chain heads",
        f"{out}: 1 later event in this range arrived after the report was made; as of its "
        "chain heads the database gives the same rows",
    ]


@pytest.mark.parametrize("rechain", [False, True])
def test_a_central_database_rewritten_after_the_export_is_caught(
    kiosk_db: Path, tmp_path: Path, rechain: bool
) -> None:
    database = str(tmp_path / "central.db")
    fill_central(database, kiosk_db)
    out = export_central(database, tmp_path, "html")
    conn = sqlite3.connect(database)
    try:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
        ).fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("UPDATE events SET frames = frames + 1 WHERE seq = 3")
        if rechain:
            rows = conn.execute(
                "SELECT event_id, log_id, seq, recorded_kiosk_id, person_id, direction, utc, tz,"
                " distance, margin, frames, software_version, clock_synced FROM events"
                " ORDER BY seq"
            ).fetchall()
            fields = [
                chain.EventFields._make(
                    [str(r[0]), *r[1:12], None if r[12] is None else r[12] == 1]
                )
                for r in rows
            ]
            for f, link in zip(fields, chain.chained(fields[0].log_id, fields), strict=True):
                conn.execute("UPDATE events SET chain = ? WHERE seq = ?", (link, f.seq))
        conn.commit()
    finally:
        conn.close()
    result = verify(out, "--central-db", database)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    if rechain:
        assert any("the chain at seq" in line and "rewritten since" in line for line in lines)
    else:
        assert any("seq 3" in line for line in lines), lines


def test_a_database_url_is_recorded_without_its_password() -> None:
    from reports.verify import safe_where

    assert safe_where("postgresql://ann:s3cret@db.example/clock") == (
        "postgresql://ann:***@db.example/clock"
    )
    assert safe_where("/var/lib/clockface/central.db") == "/var/lib/clockface/central.db"


def test_a_missing_kiosk_database_is_refused_and_never_created(
    kiosk_db: Path, tmp_path: Path
) -> None:
    out = export(kiosk_db, tmp_path, "json")
    typo = tmp_path / "kiosk-typo.db"
    result = CliRunner().invoke(main, ["report", "verify", str(out), "--db", str(typo)])
    assert result.exit_code == 1
    assert f"kiosk database {str(typo)!r}: no such file" in result.stderr
    assert not typo.exists()
