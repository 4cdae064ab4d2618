"""Exporters: every format holds the same rows; CSV is safe in a spreadsheet; files atomic."""

from __future__ import annotations

import csv
import html
import io
import json
import os
from datetime import date, datetime, time
from pathlib import Path

import pytest
from openpyxl import load_workbook

from clockface.errors import ReportError, ReportOutputError
from clockface.spreadsheet import neutralise
from reports.compute import Attendance, compute_attendance
from reports.exporters import EXPORTERS, render, write_output
from reports.model import PersonInfo
from reports.tables import REPORTS, Column, Report, Table, build_report, text_of
from tests.helpers.scenario import FIRST, LAST, scenario_book, scenario_events, scenario_people


@pytest.fixture(scope="module")
def attendance() -> Attendance:
    return compute_attendance(scenario_events(), scenario_people(), scenario_book(), FIRST, LAST)


def as_text(table: Table) -> list[list[str]]:
    return [
        [text_of(cell, c.kind) for c, cell in zip(table.columns, row, strict=True)]
        for row in table.rows
    ]


def from_csv(data: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    return rows[1:]


def from_json(data: bytes, key: str, table: Table) -> list[list[str]]:
    document = json.loads(data)
    out = []
    for record in document[key]:
        row = []
        for column in table.columns:
            value = record[column.key]
            if value is None:
                row.append("")
            elif column.kind == "datetime":
                row.append(datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S"))
            elif column.kind == "float":
                row.append(f"{value:.2f}")
            else:
                row.append(str(value))
        out.append(row)
    return out


def from_xlsx(data: bytes, sheet: str, table: Table) -> list[list[str]]:
    book = load_workbook(io.BytesIO(data))
    rows = list(book[sheet].iter_rows(values_only=True))
    assert list(rows[0]) == [c.header for c in table.columns]
    out = []
    for values in rows[1:]:
        row = []
        for column, value in zip(table.columns, values, strict=True):
            if column.kind == "date" and isinstance(value, datetime):
                value = value.date()  # openpyxl reads every date cell back as a datetime
            row.append(text_of(value, column.kind))  # type: ignore[arg-type]
        out.append(row)
    return out


@pytest.mark.parametrize("kind", list(REPORTS))
def test_every_format_holds_the_same_rows(attendance: Attendance, kind: str) -> None:
    report = build_report(kind, attendance)
    expected = as_text(report.table)
    assert expected or kind in ("absent",)  # the scenario fills every report
    assert from_csv(render(report, "csv")) == expected
    assert from_json(render(report, "json"), "rows", report.table) == expected
    assert from_json(render(report, "json"), "anomalies", report.anomalies) == as_text(
        report.anomalies
    )
    xlsx = render(report, "xlsx")
    assert from_xlsx(xlsx, report.table.title, report.table) == expected
    assert from_xlsx(xlsx, "Anomalies", report.anomalies) == as_text(report.anomalies)
    page = render(report, "html").decode("utf-8")
    for row in expected:
        assert "".join(html.escape(c) for c in row) in _html_row_text(page)


def _html_row_text(page: str) -> str:
    """The page's table cells, each row's texts run together, rows on lines."""
    import re

    lines = []
    for row in re.findall(r"<tr>(.*?)</tr>", page):
        lines.append("".join(re.findall(r"<td[^>]*>(.*?)</td>", row)))
    return "\n".join(lines)


def test_xlsx_has_real_types_bold_header_and_widths(attendance: Attendance) -> None:
    report = build_report("late", attendance)
    book = load_workbook(io.BytesIO(render(report, "xlsx")))
    sheet = book["Late arrivals"]
    assert all(cell.font.bold for cell in sheet[1])
    first = [cell.value for cell in sheet[2]]
    assert isinstance(first[0], datetime) and sheet.cell(2, 1).number_format == "yyyy-mm-dd"
    assert first[6] == datetime(2024, 3, 31, 22, 0) and first[7] == datetime(2024, 3, 31, 22, 10)
    assert first[8] == 10 and isinstance(first[8], int)
    assert sheet.column_dimensions["C"].width >= len("Ada Lovelace") + 1
    assert sheet.freeze_panes == "A2"
    hours = load_workbook(io.BytesIO(render(build_report("hours", attendance), "xlsx")))
    assert hours["Hours worked"].cell(2, 9).value == pytest.approx(7.08)


EVIL = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain", "a=b"]


def evil_report() -> Report:
    columns = (Column("name", "Name", "text"), Column("n", "N", "int"), Column("d", "D", "date"))
    rows = tuple((text, -3, date(2024, 1, 2)) for text in EVIL)
    table = Table("Evil", columns, rows)
    return Report("late", date(2024, 1, 1), date(2024, 1, 2), table, Table("Anomalies", (), ()))


def test_csv_neutralises_formulas() -> None:
    rows = from_csv(render(evil_report(), "csv"))
    assert [r[0] for r in rows] == [
        '\'=HYPERLINK("http://x")',
        "'+1+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "plain",
        "a=b",
    ]
    assert {r[1] for r in rows} == {"-3"}  # numbers stay numbers
    assert neutralise("=1") == "'=1" and neutralise("1=") == "1="


def test_html_escapes_everything() -> None:
    columns = (Column("name", "<b>Name</b>", "text"),)
    table = Table("<script>", columns, (("<img src=x onerror=alert(1)>",),))
    page = render(Report("late", date(2024, 1, 1), date(2024, 1, 1), table, table), "html").decode()
    assert "<img" not in page and "<script>" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "@media print" in page


def test_unknown_format_and_report_refused(attendance: Attendance) -> None:
    with pytest.raises(ReportError, match="unknown format 'pdf'"):
        render(build_report("late", attendance), "pdf")
    with pytest.raises(ReportError, match="unknown report 'lunch'"):
        build_report("lunch", attendance)
    assert set(EXPORTERS) == {"csv", "xlsx", "html", "json"}


def test_write_output_atomic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    write_output(target, b"one")
    assert target.read_bytes() == b"one"
    with pytest.raises(ReportOutputError, match="exists; choose another name or give --force"):
        write_output(target, b"two")
    assert target.read_bytes() == b"one"
    write_output(target, b"two", force=True)
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]  # no temporary left
    assert os.stat(target).st_mode & 0o077 == 0  # personal data: the owner's only
    with pytest.raises(ReportOutputError, match="no folder"):
        write_output(tmp_path / "missing" / "r.csv", b"x")
    with pytest.raises(ReportOutputError, match="it is a folder"):
        write_output(tmp_path, b"x", force=True)


def test_write_output_os_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ReportOutputError) as caught:
        write_output(tmp_path / ("x" * 300 + ".csv"), b"x")
    message = str(caught.value)
    assert message.startswith("cannot write ") and "file name too long" in message
    assert "\n" not in message and list(tmp_path.iterdir()) == []


def test_text_of_cells() -> None:
    assert text_of(None, "text") == ""
    assert text_of(datetime(2024, 1, 2, 3, 4, 5), "datetime") == "2024-01-02 03:04:05"
    assert text_of(date(2024, 1, 2), "date") == "2024-01-02"
    assert text_of(time(7, 5), "time") == "07:05"
    assert text_of(7.0, "float") == "7.00"
    assert text_of(PersonInfo("a", "b").name, "text") == "b"
