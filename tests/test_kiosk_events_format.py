"""``clockface kiosk events --format text|json|csv``: every field of a real store's events
round-trips through JSON and CSV, the filters apply to every format, CSV text cannot run
as a spreadsheet formula, and bad input gets one line."""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from clockface.cli import main
from clockface.values import iso_utc
from kiosk.cli import kiosk
from kiosk.event_export import COLUMNS, WRITERS, event_record, write_json
from kiosk.store import Event, KioskStore

ACKED = datetime(2024, 3, 5, 9, 0, 0, 250_000, tzinfo=UTC)
FORMATS = ["text", "json", "csv"]


def add(
    store: KioskStore,
    person_id: str,
    direction: str,
    utc: datetime,
    tz: str = "Europe/Berlin",
    **fields: Any,
) -> Event:
    values: dict[str, Any] = {
        "distance": 0.41234567,
        "margin": 0.125,
        "frames": 3,
        "software_version": "0.1.0",
    }
    values.update(fields)
    return store.append_event(person_id, direction, utc=utc, tz=tz, **values)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A kiosk database with four events over two days, in two zones, the first synced."""
    path = tmp_path / "kiosk.db"
    with KioskStore.open(path, kiosk_id="front-door", clock_status=lambda: None) as store:
        store.add_person("ada", "Ada Lovelace")  # a name the output must never carry
        first = add(store, "ada", "in", datetime(2024, 3, 4, 7, 57, 3, 120_000, tzinfo=UTC),
                    clock_synced=True)  # fmt: skip
        # 21:00 on the 4th in Chicago: the 4th for --day, though the 5th in UTC.
        add(store, "zoë", "in", datetime(2024, 3, 5, 3, 0, tzinfo=UTC), "America/Chicago",
            margin=math.inf, frames=7, clock_synced=False, distance=0.5)  # fmt: skip
        add(store, "ada", "out", datetime(2024, 3, 4, 16, 30, 59, 999_999, tzinfo=UTC))
        add(store, "ada", "in", datetime(2024, 3, 5, 7, 50, tzinfo=UTC), software_version="0.2.0")
        assert store.mark_acked([first.event_id], ACKED) == 1
    return path


def stored(path: Path) -> list[Event]:
    with KioskStore.open(path) as store:
        return store.events()


def events(*args: str) -> Result:
    return CliRunner().invoke(main, ["kiosk", "events", *args])


def as_json(path: Path, *args: str) -> list[dict[str, Any]]:
    result = events("--db", str(path), "--format", "json", *args)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert isinstance(found, list)
    return found


def as_csv(path: Path, *args: str) -> list[dict[str, str]]:
    result = events("--db", str(path), "--format", "csv", *args)
    assert result.exit_code == 0, result.output
    text = result.stdout_bytes.decode("utf-8")  # .stdout would turn \r\n into \n
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def seqs(path: Path, fmt: str, *args: str) -> list[int]:
    """The seqs ``events --format fmt`` lists."""
    if fmt == "json":
        return [r["seq"] for r in as_json(path, *args)]
    if fmt == "csv":
        return [int(r["seq"]) for r in as_csv(path, *args)]
    result = events("--db", str(path), *args)
    assert result.exit_code == 0, result.output
    *lines, total = result.stdout.splitlines()
    assert total == f"{len(lines)} event{'' if len(lines) == 1 else 's'}"
    return [int(line.split()[0]) for line in lines]


# --------------------------------------------------------------------- round trips
def test_json_holds_every_field_of_every_event(db: Path) -> None:
    want = stored(db)
    found = as_json(db)
    assert [r["seq"] for r in found] == [1, 2, 3, 4]
    with sqlite3.connect(db) as conn:
        raw = conn.execute("SELECT utc, acked_utc FROM events ORDER BY seq").fetchall()
    for record, event, (utc_text, acked_text) in zip(found, want, raw, strict=True):
        assert tuple(record) == COLUMNS
        assert record == event_record(event)
        assert record["utc"] == utc_text and record["acked_utc"] == acked_text  # as stored
        assert datetime.fromisoformat(record["utc"]) == event.utc
        local = datetime.fromisoformat(record["local_time"])
        assert local == event.utc and local.utcoffset() == event.local_time.utcoffset()
        assert (record["event_id"], record["kiosk_id"], record["person_id"]) == (
            event.event_id, "front-door", event.person_id,
        )  # fmt: skip
        assert (record["direction"], record["tz"], record["frames"]) == (
            event.direction, event.tz, event.frames,
        )  # fmt: skip
        assert record["distance"] == event.distance
        assert record["software_version"] == event.software_version
        assert record["chain"] == event.chain and len(event.chain or "") == 64
    first, chicago, out, later = found
    assert first["local_time"] == "2024-03-04T08:57:03.120000+01:00"
    assert first["utc"] == "2024-03-04T07:57:03.120000Z"
    assert chicago["local_time"] == "2024-03-04T21:00:00.000000-06:00"
    assert [r["synced"] for r in found] == [True, False, False, False]
    assert first["acked_utc"] == iso_utc(ACKED) and later["acked_utc"] is None
    assert [r["clock_synced"] for r in found] == [True, False, None, None]
    assert chicago["margin"] is None and first["margin"] == 0.125  # None: nobody else
    assert chicago["person_id"] == "zoë" and out["direction"] == "out"
    assert later["software_version"] == "0.2.0"


def test_csv_has_the_same_columns_and_values_as_json(db: Path) -> None:
    rows = as_csv(db)
    records = as_json(db)
    assert len(rows) == len(records) == 4
    for row, record in zip(rows, records, strict=True):
        for key in COLUMNS:
            value = record[key]
            cell = row[key]
            if value is None:
                assert cell == "", key
            elif isinstance(value, bool):
                assert cell == ("true" if value else "false"), key
            elif isinstance(value, int):
                assert int(cell) == value, key
            elif isinstance(value, float):
                assert float(cell) == value, key  # exactly: no rounding
            else:
                assert cell == value, key
    assert rows[0]["utc"] == "2024-03-04T07:57:03.120000Z" and rows[1]["margin"] == ""


def test_csv_is_rfc_4180(db: Path) -> None:
    out = events("--db", str(db), "--format", "csv").stdout_bytes
    lines = out.split(b"\r\n")
    assert lines[0] == ",".join(COLUMNS).encode() and lines[-1] == b""
    assert len(lines) == 6 and b"\n" not in b"".join(lines)
    assert "zoë".encode() in out  # UTF-8


def test_text_is_the_listing_it_always_was(db: Path) -> None:
    result = events("--db", str(db))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "     1  2024-03-04 08:57:03 CET  in   ada                      distance 0.412  synced",
        "     2  2024-03-04 21:00:00 CST  in   zoë                      distance 0.500  not synced",
        "     3  2024-03-04 17:30:59 CET  out  ada                      distance 0.412  not synced",
        "     4  2024-03-05 08:50:00 CET  in   ada                      distance 0.412  not synced",
        "4 events",
    ]
    assert events("--db", str(db), "--format", "text").stdout == result.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_names_in_any_format(db: Path, fmt: str) -> None:
    result = events("--db", str(db), "--format", fmt)
    assert result.exit_code == 0 and "ada" in result.stdout
    assert "Lovelace" not in result.stdout and "Ada" not in result.stdout


# --------------------------------------------------------------------- filters
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("args", "want"),
    [
        ((), [1, 2, 3, 4]),
        (("--day", "2024-03-04"), [1, 2, 3]),  # seq 2 by its Chicago day, not its UTC one
        (("--day", "2024-03-05"), [4]),
        (("--person", "ada"), [1, 3, 4]),
        (("--person", "ada", "--day", "2024-03-05"), [4]),
        (("--person", "nobody"), []),
        (("--day", "2031-01-01"), []),
    ],
)
def test_filters_apply_to_every_format(
    db: Path, fmt: str, args: tuple[str, ...], want: list[int]
) -> None:
    assert seqs(db, fmt, *args) == want


def test_an_empty_log(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    KioskStore.open(path).close()
    assert events("--db", str(path), "--format", "json").stdout == "[]\n"
    header = (",".join(COLUMNS) + "\r\n").encode()
    assert events("--db", str(path), "--format", "csv").stdout_bytes == header
    assert events("--db", str(path)).stdout == "0 events\n"


# --------------------------------------------------------------------- hostile text
def test_csv_neutralises_formula_looking_text_and_json_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "hostile.db"
    hostile = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", '=HYPERLINK("http://x","y")']
    with KioskStore.open(path, kiosk_id="@door", clock_status=lambda: None) as store:
        for i, text in enumerate(hostile):
            add(store, text, "in", datetime(2024, 3, 4, 8, i, tzinfo=UTC),
                software_version=f"-{i}")  # fmt: skip
    rows = as_csv(path)
    assert [r["person_id"] for r in rows] == ["'" + text for text in hostile]
    assert {r["kiosk_id"] for r in rows} == {"'@door"}
    assert [r["software_version"] for r in rows] == [f"'-{i}" for i in range(5)]
    assert all(not r["utc"].startswith("'") for r in rows)  # only text that would run
    records = as_json(path)  # JSON is data, not a sheet: the ids exactly as stored
    assert [r["person_id"] for r in records] == hostile
    assert seqs(path, "csv", "--person", "=1+1") == [1]


# --------------------------------------------------------------------- streaming
def test_json_is_written_one_event_at_a_time(db: Path) -> None:
    out = io.StringIO()
    seen: list[int] = []

    def lazily() -> Iterator[Event]:
        for event in stored(db):
            seen.append(len(out.getvalue()))
            yield event

    assert write_json(lazily(), out) == 4
    assert seen[0] == 0 and seen == sorted(set(seen))  # more written before each next one
    assert [r["seq"] for r in json.loads(out.getvalue())] == [1, 2, 3, 4]


# --------------------------------------------------------------------- bad input
def test_an_unknown_format_is_one_line(db: Path) -> None:
    result = events("--db", str(db), "--format", "xml")
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "'xml' is not one of 'text', 'json', 'csv'" in errors[0]


def test_a_missing_database_is_refused_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "kiosk.db"
    for fmt in FORMATS:
        result = events("--db", str(path), "--format", fmt)
        assert result.exit_code == 1 and result.stdout == ""
        assert f"Error: no kiosk database at {path}: check --db" in result.output
    assert not path.parent.exists()


def test_the_option_offers_exactly_the_library_formats() -> None:
    command = kiosk.commands["events"]
    (option,) = [p for p in command.params if p.name == "fmt"]
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == list(WRITERS) == FORMATS
    assert option.default == "text"
