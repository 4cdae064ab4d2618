"""Reports as CSV, XLSX, printable HTML or JSON bytes, and written to a file atomically.

Every exporter writes the same :class:`~reports.tables.Report`: the main table, then
the anomalies (CSV holds one table, so its anomalies are the ``anomalies`` report).

- CSV: UTF-8, a header row of column keys; a text cell that begins with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return gets a leading ``'`` so that a spreadsheet
  never runs it as a formula.
- XLSX (openpyxl): a sheet per table, real dates, times and numbers, a bold frozen
  header row, column widths that fit.
- HTML: one self-contained page, every value escaped, a print stylesheet.
- JSON: ``{"report", "title", "from", "to", "columns", "rows", "anomalies"}`` with rows
  as objects; dates and times in ISO 8601.

Given a verification record (:mod:`reports.verify`), JSON, XLSX and HTML carry it inside
(a ``verification`` key, sheet, or JSON data block); CSV never does (it goes beside the
file). Without one, the bytes are as before.

:func:`write_output` writes to a temporary file beside the target, syncs it, then moves
it into place: a reader never sees half a report, and an existing file is replaced only
when asked (``force``).
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import stat
import tempfile
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

from clockface.errors import ReportError, ReportOutputError
from clockface.spreadsheet import neutralise
from reports.tables import Cell, Column, Report, Table, text_of

if TYPE_CHECKING:
    from openpyxl import Workbook

    from reports.verify import Verification


# --------------------------------------------------------------------- cells
def json_of(cell: Cell) -> str | int | float | None:
    if isinstance(cell, datetime):
        return cell.isoformat(timespec="seconds")
    if isinstance(cell, date | time):
        return cell.isoformat()
    return cell


# --------------------------------------------------------------------- CSV
def to_csv(report: Report, verification: Verification | None = None) -> bytes:
    """The main table as CSV (formula injection neutralised). A verification record is
    not written into a CSV (it goes beside it: :func:`reports.verify.sidecar_path`)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    table = report.table
    writer.writerow([c.key for c in table.columns])
    for row in table.rows:
        writer.writerow(
            [
                neutralise(text_of(cell, c.kind)) if c.kind == "text" else text_of(cell, c.kind)
                for c, cell in zip(table.columns, row, strict=True)
            ]
        )
    return out.getvalue().encode("utf-8")


# --------------------------------------------------------------------- JSON
def to_json(report: Report, verification: Verification | None = None) -> bytes:
    def rows(table: Table) -> list[dict[str, str | int | float | None]]:
        return [{k: json_of(v) for k, v in record.items()} for record in table.records()]

    document: dict[str, object] = {
        "report": report.kind,
        "title": report.title,
        "from": report.first.isoformat(),
        "to": report.last.isoformat(),
        "columns": [
            {"key": c.key, "header": c.header, "kind": c.kind} for c in report.table.columns
        ],
        "rows": rows(report.table),
        "anomalies": rows(report.anomalies),
    }
    if verification is not None:
        document["verification"] = verification.to_json()
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# --------------------------------------------------------------------- HTML
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.none { font-style: italic; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { margin: 0; font-size: 9pt; }
  th { background: none; border-bottom: 2px solid #000; }
  thead { display: table-header-group; }
  tr { page-break-inside: avoid; }
}
"""


def to_html(report: Report, verification: Verification | None = None) -> bytes:
    title = html.escape(report.title)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{title}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{title}</h1>",
        _html_table(report.table),
        f"<h2>{html.escape(report.anomalies.title)}</h2>",
        _html_table(report.anomalies),
        *([] if verification is None else [_html_record(verification)]),
        "</body>",
        "</html>",
    ]
    return ("\n".join(parts) + "\n").encode("utf-8")


def _html_record(verification: Verification) -> str:
    from reports.verify import html_block

    return html_block(verification)


def _html_table(table: Table) -> str:
    if not table.rows:
        return '<p class="none">None.</p>'
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = "".join(
            ('<td class="num">' if c.kind in ("int", "float") else "<td>")
            + html.escape(text_of(cell, c.kind))
            + "</td>"
            for c, cell in zip(table.columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


# --------------------------------------------------------------------- XLSX
_NUMBER_FORMATS = {
    "date": "yyyy-mm-dd",
    "time": "hh:mm",
    "datetime": "yyyy-mm-dd hh:mm:ss",
    "int": "0",
    "float": "0.00",
}


def to_xlsx(report: Report, verification: Verification | None = None) -> bytes:
    """A workbook: the report's sheet, then an Anomalies sheet (then a verification sheet
    holding the record's JSON text in column A, split in chunks)."""
    from openpyxl import Workbook

    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for table in (report.table, report.anomalies):
        _xlsx_sheet(book, table)
    if verification is not None:
        from reports.verify import RECORD_KEY, XLSX_CHUNK

        sheet = book.create_sheet(RECORD_KEY)
        text = verification.to_text()
        for start in range(0, len(text), XLSX_CHUNK):
            # A chunk starting with "=" would be a formula: the record's JSON never does.
            sheet.append([text[start : start + XLSX_CHUNK]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_sheet(book: Workbook, table: Table) -> None:
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    sheet = book.create_sheet(table.title[:31])
    sheet.append([c.header for c in table.columns])
    bold = Font(bold=True)
    for cell in sheet[1]:
        cell.font = bold
    for row in table.rows:
        sheet.append(list(row))
    for index, column in enumerate(table.columns, start=1):
        number_format = _NUMBER_FORMATS.get(column.kind)
        if number_format is not None:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = number_format
        sheet.column_dimensions[get_column_letter(index)].width = _width(table, index - 1, column)
    sheet.freeze_panes = "A2"


def _width(table: Table, index: int, column: Column) -> float:
    longest = max(
        [len(column.header), *(len(text_of(row[index], column.kind)) for row in table.rows)]
    )
    return float(min(60, longest + 2))


# --------------------------------------------------------------------- registry
EXPORTERS: dict[str, Callable[[Report, Verification | None], bytes]] = {
    "csv": to_csv,
    "xlsx": to_xlsx,
    "html": to_html,
    "json": to_json,
}


def render(report: Report, fmt: str, verification: Verification | None = None) -> bytes:
    """The report in format ``fmt`` (a key of ``EXPORTERS``), with its verification
    record where given (:mod:`reports.verify`; never inside a CSV)."""
    try:
        export = EXPORTERS[fmt]
    except KeyError:
        raise ReportError(f"unknown format {fmt!r}: choose one of {', '.join(EXPORTERS)}") from None
    return export(report, verification)


# --------------------------------------------------------------------- files
def write_output(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; refuse an existing file unless ``force``.

    The bytes go to a temporary file in the same folder, synced, then moved into place
    (hard-linked when not forcing, so a file that appears meanwhile is not replaced).
    The file is readable by its owner only: reports hold personal data.
    Raises ReportOutputError with one line on any failure; nothing is left behind.
    """
    target = Path(path)
    label = repr(str(target))
    temp: str | None = None
    try:
        if target.is_dir():
            raise ReportOutputError(f"cannot write {label}: it is a folder; give a file name")
        if target.exists() and not target.is_symlink() and not stat.S_ISREG(target.stat().st_mode):
            # --force replaces a file, never a device, a pipe or a socket (/dev/null as root).
            raise ReportOutputError(f"cannot write {label}: not a regular file")
        if not force and (target.exists() or target.is_symlink()):
            raise ReportOutputError(f"{label} exists; choose another name or give --force")
        folder = target.parent
        if not folder.is_dir():
            raise ReportOutputError(f"cannot write {label}: no folder {str(folder)!r}")
        fd, temp = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".part", dir=folder)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if force:
            os.replace(temp, target)
        else:
            try:
                os.link(temp, target)
            except FileExistsError:
                raise ReportOutputError(
                    f"{label} exists; choose another name or give --force"
                ) from None
            except OSError:  # a file system without hard links
                if target.exists():
                    raise ReportOutputError(
                        f"{label} exists; choose another name or give --force"
                    ) from None
                os.replace(temp, target)
        _sync_folder(folder)
    except ReportOutputError:
        raise
    except OSError as err:
        reason = " ".join((err.strerror or str(err)).split()).lower()
        raise ReportOutputError(f"cannot write {label}: {reason}") from err
    finally:
        if temp is not None and os.path.lexists(temp):
            os.unlink(temp)
    return target


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
