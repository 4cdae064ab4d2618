"""Reports that can be verified later: the verification record and ``clockface report verify``.

Every report the CLI writes carries a :class:`Verification` record: what was asked (kind,
range, filters, schedules), where it came from (a kiosk database and its log id, or the
central database), when, the chain head of each event log it read (:mod:`clockface.chain`:
log id, seq, chain) and a SHA-256 of the report's main table in a canonical form that
does not depend on the format, so CSV, XLSX, HTML and JSON of one report give one digest.

Canonical form: the column keys, then every row as the text cells that the CSV shows
(:func:`reports.tables.text_of`, text cells neutralised as in the CSV; nothing is
``""``), as compact JSON (UTF-8, no ASCII escaping) after the domain string
``clockface/report-rows/1`` and a 0x00 byte. Each row also gets a short digest of its
own (16 hex digits), so that an edited, deleted or added row can be named.

Where the record lives: JSON, the top-level key ``verification``; XLSX, a sheet
``verification`` holding the record's JSON text in column A (split over rows: a cell
holds at most 32767 characters); HTML, a ``<script type="application/json"
id="verification">`` block (data, never run); CSV, a sidecar file ``FILE.verify.json``
beside ``--output``: comment lines in a CSV break the spreadsheets and readers that the
CSV is for, and CSV on standard output stays plain.

What a check proves. The digest alone proves only that the file agrees with its own
record: anyone who edits a row can recompute it. The real proof is the database: the
chain heads recorded must still hold in the logs (the events the report saw were not
rewritten since), and computing the report again with the recorded parameters **as of
those heads** must give the same rows (:func:`verify_report`).

Which heads a record holds. A kiosk database: the head of its one log (its last event;
none while it held no event; every event of a kiosk database is chained, older ones by
the migration that added the chain). The central database: each kiosk log whose chain
the service had checked on ingest, up to ``kiosk_logs.chain_seq`` (events held past a
gap in the seqs are not covered), and only when the event there came with a chain. A
log whose checked events end in one that came without a chain (a kiosk that does not
chain its log) gets no head, and the record does not name it. A log holding events of
the time before the central database kept chains gets a head if later events came
chained, but its chain cannot be walked from the start: checking that head fails
("seq N came without a chain"), so such a report never verifies against the database.

Policy of the recompute ("as of the chain heads"). The report is computed again from
the events the report could have seen and a chain vouches for: of each log with a
recorded head, the events up to the head's seq; of every other log, none (a log that
appeared after the report, or one that had no checked chain then; a record does not
tell the two apart). Events that arrived later in the report's range (a kiosk that was
offline syncs a week later) are not part of it, so a report made in March still
verifies in June as long as the logs it read were not rewritten:

- the same rows as of the heads: verified; if the database as it is now gives other
  rows, one more line says how many events in the range no head covers (on the central
  database, by when the service received them: after the report was made, or before,
  held without a checked chain);
- other rows as of the heads, but the report's rows once the events no head covers
  are counted (the current database; on the central database also just those received
  before the report was made): the report was made from events no chain vouches for,
  and verify says it cannot vouch for those rows (a problem: exit status 1), naming
  the rows that need them;
- other rows either way: the database gives different rows (tampering outside the
  chain, such as changed schedules or roster, or a rewritten log).

When the database holds no event in the range that the heads do not cover, the
recompute as of the heads is the database as it is now, and the lines are as before.
Records keep their format: a record written before this recompute verifies the same way.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clockface.days import parse_day
from clockface.errors import ReportError
from clockface.spreadsheet import neutralise
from reports.sources import AsOf, EventCounts, read_only
from reports.tables import Cell, Column, ColumnKind, Report, Table, text_of

if TYPE_CHECKING:
    from reports.central_source import OpenCentral
    from reports.sources import OpenKiosk

FORMAT_VERSION = 1
RECORD_KEY = "verification"
SIDECAR_SUFFIX = ".verify.json"
ROWS_DOMAIN = b"clockface/report-rows/1\x00"
XLSX_CHUNK = 30000
_KINDS: tuple[ColumnKind, ...] = ("text", "int", "float", "date", "time", "datetime")
_MAX_ROW_LINES = 10  # rows named one by one before "and N more"


# --------------------------------------------------------------------- the record
@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last event of one log when the report was made: its seq and chain."""

    log_id: str
    seq: int
    chain: str


@dataclass(frozen=True, slots=True)
class Verification:
    """What a report file records about itself (see the module docstring)."""

    kind: str
    first: date
    last: date
    person_id: str | None
    team: str | None
    site: str | None
    schedules: str | None  # the schedule file given, or None: the database's own
    database: str  # "kiosk" or "central"
    where: str
    generated_utc: str
    heads: tuple[ChainHead, ...]
    columns: tuple[Column, ...]
    rows: int
    rows_sha256: str
    row_digests: tuple[str, ...] = field(repr=False)
    version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "clockface-report-verification",
            "version": self.version,
            "report": self.kind,
            "parameters": {
                "from": self.first.isoformat(),
                "to": self.last.isoformat(),
                "person": self.person_id,
                "team": self.team,
                "site": self.site,
                "schedules": self.schedules,
            },
            "database": {"kind": self.database, "where": self.where},
            "generated_utc": self.generated_utc,
            "chain_heads": [
                {"log_id": h.log_id, "seq": h.seq, "chain": h.chain} for h in self.heads
            ],
            "columns": [{"key": c.key, "header": c.header, "kind": c.kind} for c in self.columns],
            "rows": self.rows,
            "rows_sha256": self.rows_sha256,
            "row_digests": list(self.row_digests),
        }

    def to_text(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: object) -> Verification:
        """The record read back; ReportError for anything that is not one."""
        try:
            if not isinstance(data, dict) or data.get("format") != "clockface-report-verification":
                raise ValueError("not a verification record")
            if data["version"] != FORMAT_VERSION:
                raise ValueError(f"version {data['version']!r} is not {FORMAT_VERSION}")
            params, database = data["parameters"], data["database"]
            columns = tuple(
                Column(str(c["key"]), str(c["header"]), _kind(c["kind"])) for c in data["columns"]
            )
            return cls(
                kind=str(data["report"]),
                first=parse_day(str(params["from"])),
                last=parse_day(str(params["to"])),
                person_id=_opt(params["person"]),
                team=_opt(params["team"]),
                site=_opt(params["site"]),
                schedules=_opt(params["schedules"]),
                database=str(database["kind"]),
                where=str(database["where"]),
                generated_utc=str(data["generated_utc"]),
                heads=tuple(
                    ChainHead(str(h["log_id"]), int(h["seq"]), str(h["chain"]))
                    for h in data["chain_heads"]
                ),
                columns=columns,
                rows=int(data["rows"]),
                rows_sha256=str(data["rows_sha256"]),
                row_digests=tuple(str(d) for d in data["row_digests"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ReportError(f"the verification record is damaged: {_reason(err)}") from None


def _kind(value: object) -> ColumnKind:
    for kind in _KINDS:
        if value == kind:
            return kind
    raise ValueError(f"unknown column kind {value!r}")


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _reason(err: BaseException) -> str:
    if isinstance(err, KeyError):
        return f"no {err.args[0]!r}"
    return " ".join(str(err).split()) or type(err).__name__


# --------------------------------------------------------------------- canonical rows
def canonical_cell(cell: Cell, kind: ColumnKind) -> str:
    """A cell as the CSV shows it (text neutralised the same way)."""
    text = text_of(cell, kind)
    return neutralise(text) if kind == "text" else text


def canonical_rows(table: Table) -> list[list[str]]:
    return [
        [canonical_cell(cell, c.kind) for c, cell in zip(table.columns, row, strict=True)]
        for row in table.rows
    ]


def _compact(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def rows_digest(keys: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """SHA-256 of a table's column keys and canonical rows."""
    digest = hashlib.sha256(ROWS_DOMAIN)
    digest.update(_compact(list(keys)))
    for row in rows:
        digest.update(b"\n" + _compact(list(row)))
    return digest.hexdigest()


def row_digest(row: Sequence[str]) -> str:
    return hashlib.sha256(b"clockface/report-row/1\x00" + _compact(list(row))).hexdigest()[:16]


def make_verification(
    report: Report,
    *,
    person_id: str | None,
    team: str | None,
    site: str | None,
    schedules: str | None,
    database: str,
    where: str,
    heads: Sequence[ChainHead],
    now: datetime | None = None,
) -> Verification:
    """The record of a report just made from ``database`` at ``where``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    rows = canonical_rows(report.table)
    keys = [c.key for c in report.table.columns]
    return Verification(
        kind=report.kind,
        first=report.first,
        last=report.last,
        person_id=person_id,
        team=team,
        site=site,
        schedules=schedules,
        database=database,
        where=safe_where(where),
        generated_utc=moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z",
        heads=tuple(heads),
        columns=report.table.columns,
        rows=len(rows),
        rows_sha256=rows_digest(keys, rows),
        row_digests=tuple(row_digest(r) for r in rows),
    )


def safe_where(where: str) -> str:
    """A database as a report may name it: a URL's password is never written down."""
    if "://" not in where:
        return where
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(where).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "a database URL that could not be read"


def sidecar_path(path: str | Path) -> Path:
    """Where a CSV's verification record lives: ``FILE.verify.json`` beside it."""
    return Path(f"{path}{SIDECAR_SUFFIX}")


def html_block(record: Verification) -> str:
    """The record as an HTML data block (``<`` escaped: no text can close the script)."""
    text = record.to_text().replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{RECORD_KEY}">{text}</script>'


# --------------------------------------------------------------------- chain heads
def kiosk_heads(store: OpenKiosk) -> tuple[ChainHead, ...]:
    """The chain head of a kiosk database's log (none while it holds no event). The
    store, opened first, brought a database older than the chain up to date (its events
    chained) before the head is read."""
    with read_only(store.path) as conn:
        try:
            last = conn.execute(
                "SELECT seq, chain FROM events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        except sqlite3.Error as err:
            raise ReportError(f"{store.path}: reading the event log failed: {err}") from err
    if last is None or last[1] is None:
        return ()
    return (ChainHead(store.log_id, int(last[0]), str(last[1])),)


def check_kiosk_heads(store: OpenKiosk, heads: Sequence[ChainHead]) -> list[str]:
    """Problems with the recorded heads in a kiosk database now: its log is another one,
    its chain no longer walks up to a head, or the chain stored there differs (the events
    up to it were rewritten and their chains recomputed)."""
    problems: list[str] = []
    log_id, path = store.log_id, store.path
    walked = store.verify_chain().chain
    for head in heads:
        if head.log_id != log_id:
            problems.append(f"log {head.log_id}: not the log of {path} ({log_id})")
            continue
        for problem in walked.problems:
            if problem.seq <= head.seq:
                problems.append(f"log {head.log_id}: {problem.message}")
        with read_only(path) as conn:
            found = conn.execute("SELECT chain FROM events WHERE seq = ?", (head.seq,)).fetchone()
        if found is None:
            problems.append(f"log {head.log_id}: seq {head.seq} is gone")
        elif found[0] != head.chain:
            problems.append(_rewritten(head))
    return problems


def central_heads(store: OpenCentral) -> tuple[ChainHead, ...]:
    """The chain heads of the central database's kiosk logs, as the service checked them
    on ingest (up to each log's ``chain_seq``: events held past a gap are not covered)."""
    from reports.central_source import read_central_heads

    return tuple(ChainHead(*row) for row in read_central_heads(store))


def check_central_heads(store: OpenCentral, heads: Sequence[ChainHead]) -> list[str]:
    """Problems with the recorded heads in the central database now: each log's events up
    to its head are read back and their chain recomputed from the log's genesis."""
    from clockface import chain
    from reports.central_source import read_central_log

    problems: list[str] = []
    for head in heads:
        rows = read_central_log(store, head.log_id, head.seq)
        if not rows:
            problems.append(f"log {head.log_id}: no events in {store.where}")
            continue
        walk: list[tuple[chain.EventFields, str | None]] = []
        for row in rows:
            (event_id, log_id, seq, kiosk_id, pid, direction, utc, tz) = row[:8]
            distance, margin, frames, version, synced, link = row[8:]
            if kiosk_id is None:
                problems.append(f"log {head.log_id}: seq {seq} came without a chain")
                break
            fields = chain.EventFields(
                str(event_id), str(log_id), int(seq), str(kiosk_id), str(pid), str(direction),
                str(utc), str(tz), float(distance), None if margin is None else float(margin),
                int(frames), str(version), None if synced is None else bool(synced),
            )  # fmt: skip
            walk.append((fields, link))
        else:
            walked = chain.verify_events(head.log_id, walk)
            problems += [f"log {head.log_id}: {p.message}" for p in walked.problems]
            last_fields, last_link = walk[-1]
            if last_fields.seq != head.seq:
                problems.append(f"log {head.log_id}: seq {head.seq} is gone")
            elif last_link != head.chain:
                problems.append(_rewritten(head))
    return problems


def _rewritten(head: ChainHead) -> str:
    return (
        f"log {head.log_id}: the chain at seq {head.seq} is not the one the report "
        "recorded: the events up to it were rewritten since"
    )


# --------------------------------------------------------------------- reading files
@dataclass(frozen=True, slots=True)
class ReportFile:
    """A report file read back: its format, record, column names and canonical rows."""

    fmt: str
    record: Verification
    names: tuple[str, ...]  # keys (CSV, JSON) or headers (XLSX, HTML)
    rows: tuple[tuple[str, ...], ...]


def read_report_file(path: str | Path) -> ReportFile:
    """Read a report in any format with its record; ReportError if it cannot be."""
    where = Path(path)
    try:
        data = where.read_bytes()
    except OSError as err:
        raise ReportError(
            f"cannot read {str(where)!r}: {(err.strerror or str(err)).lower()}"
        ) from err
    if data.startswith(b"PK"):
        return _read_xlsx(data)
    text = data.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return _read_json(text)
    if stripped.lower().startswith("<!doctype html"):
        return _read_html(text)
    return _read_csv(text, sidecar_path(where))


def _record(data: object) -> Verification:
    return Verification.from_json(data)


def _from_value(value: object, kind: ColumnKind) -> Cell:
    """A cell from what JSON or XLSX holds back to the value the exporters had."""
    if value is None or value == "":
        return None
    if kind == "date":
        if isinstance(value, datetime):
            return value.date()
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    if kind == "time":
        if isinstance(value, datetime):
            return value.time()
        return value if isinstance(value, time) else time.fromisoformat(str(value))
    if kind == "datetime":
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a {kind}")
    if isinstance(value, int | float | str):
        return value
    raise ValueError(f"{value!r} is not a {kind}")


def _typed_rows(
    record: Verification, rows: Sequence[Sequence[object]]
) -> tuple[tuple[str, ...], ...]:
    out = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(record.columns):
            raise ReportError(
                f"row {number} has {len(row)} cells, the report has {len(record.columns)} columns"
            )
        try:
            cells = tuple(
                canonical_cell(_from_value(v, c.kind), c.kind)
                for c, v in zip(record.columns, row, strict=True)
            )
        except ValueError as err:
            raise ReportError(f"row {number}: {_reason(err)}") from None
        out.append(cells)
    return tuple(out)


def _read_json(text: str) -> ReportFile:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ReportError(f"not a report: bad JSON at line {err.lineno}") from None
    if not isinstance(document, dict) or RECORD_KEY not in document:
        raise ReportError("no verification record in this JSON report")
    record = _record(document[RECORD_KEY])
    rows = document.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ReportError("not a report: no list of rows")
    keys = [c.key for c in record.columns]
    names = tuple(str(k) for k in rows[0]) if rows else tuple(keys)
    values = [[r.get(k) for k in keys] for r in rows]
    for number, r in enumerate(rows, start=1):
        if set(r) != set(keys):
            raise ReportError(f"row {number} has other columns than the report's")
    return ReportFile("json", record, names, _typed_rows(record, values))


def _read_csv(text: str, sidecar: Path) -> ReportFile:
    try:
        record_text = sidecar.read_text(encoding="utf-8")
    except OSError:
        raise ReportError(
            f"no verification record: a CSV report keeps it beside it in {str(sidecar)!r}"
        ) from None
    try:
        record = _record(json.loads(record_text))
    except json.JSONDecodeError:
        raise ReportError(f"{str(sidecar)!r} is not JSON") from None
    lines = list(csv.reader(io.StringIO(text, newline="")))
    if not lines:
        raise ReportError("an empty CSV file: not a report")
    names, rows = tuple(lines[0]), lines[1:]
    for number, row in enumerate(rows, start=1):
        if len(row) != len(record.columns):
            raise ReportError(
                f"row {number} has {len(row)} cells, the report has {len(record.columns)} columns"
            )
    return ReportFile("csv", record, names, tuple(tuple(r) for r in rows))


class _HtmlReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.record: str | None = None
        self.head: list[str] = []
        self.rows: list[list[str]] = []
        self._in_script = False
        self._main = True  # before the anomalies' <h2>
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and ("id", RECORD_KEY) in attrs:
            self._in_script, self.record = True, ""
        elif tag == "h2":
            self._main = False
        elif self._main and tag == "tr":
            self._row = []
        elif self._main and tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row and not self.head and not self.rows:
                self.head = self._row
            else:
                self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._in_script and self.record is not None:
            self.record += data
        elif self._cell is not None:
            self._cell.append(data)


def _read_html(text: str) -> ReportFile:
    reader = _HtmlReader()
    reader.feed(text)
    reader.close()
    if reader.record is None:
        raise ReportError("no verification record in this HTML report")
    try:
        record = _record(json.loads(reader.record))
    except json.JSONDecodeError:
        raise ReportError("the verification record is damaged: not JSON") from None
    kinds = [c.kind for c in record.columns]
    rows = []
    for number, row in enumerate(reader.rows, start=1):
        if len(row) != len(kinds):
            raise ReportError(
                f"row {number} has {len(row)} cells, the report has {len(kinds)} columns"
            )
        rows.append(
            tuple(neutralise(v) if k == "text" else v for k, v in zip(kinds, row, strict=True))
        )
    names = tuple(reader.head) if reader.head else tuple(c.header for c in record.columns)
    return ReportFile("html", record, names, tuple(rows))


def _read_xlsx(data: bytes) -> ReportFile:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), data_only=False)
    except (BadZipFile, KeyError, ValueError, OSError) as err:
        raise ReportError(f"not a readable workbook: {_reason(err)}") from None
    if RECORD_KEY not in book.sheetnames:
        raise ReportError("no verification sheet in this workbook")
    chunks = [row[0] for row in book[RECORD_KEY].iter_rows(values_only=True)]
    try:
        record = _record(json.loads("".join(str(c) for c in chunks if c is not None)))
    except json.JSONDecodeError:
        raise ReportError("the verification record is damaged: not JSON") from None
    sheet = book[book.sheetnames[0]]
    lines = list(sheet.iter_rows(values_only=True))
    names = tuple("" if v is None else str(v) for v in lines[0]) if lines else ()
    return ReportFile("xlsx", record, names, _typed_rows(record, lines[1:]))


# --------------------------------------------------------------------- checks
def check_rows(found: ReportFile) -> list[str]:
    """Problems between a file's rows and its own record: one line per changed row."""
    record = found.record
    expected = tuple((c.key if found.fmt in ("csv", "json") else c.header) for c in record.columns)
    problems = []
    if found.names != expected:
        problems.append(f"the columns are {list(found.names)}, the report had {list(expected)}")
    keys = [c.key for c in record.columns]
    if rows_digest(keys, found.rows) == record.rows_sha256 and not problems:
        return []
    problems += _row_changes(
        list(record.row_digests), [row_digest(r) for r in found.rows], "the file"
    )
    if not problems:
        problems.append("the rows do not hash to the recorded digest")
    return problems


def _row_changes(old: list[str], new: list[str], where: str) -> list[str]:
    lines: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and a2 - a1 == b2 - b1:
            lines += [f"row {a1 + i + 1} differs in {where}" for i in range(a2 - a1)]
            continue
        if op in ("replace", "delete"):
            lines += [f"row {a1 + i + 1} is missing from {where}" for i in range(a2 - a1)]
        if op in ("replace", "insert"):
            lines += [
                f"{where} has a row not in the report (its row {b1 + i + 1})"
                for i in range(b2 - b1)
            ]
    if len(lines) > _MAX_ROW_LINES:
        lines = [*lines[:_MAX_ROW_LINES], f"and {len(lines) - _MAX_ROW_LINES} more rows"]
    return lines


Recompute = Callable[[Verification, AsOf | None], Report]
"""The report computed again with a record's parameters: as of an :class:`AsOf`, or
(None) from the database as it is now."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :func:`verify_report` found: problems (none: verified), what it checked, and
    notes to show after a verified report (later events, see the module docstring)."""

    problems: tuple[str, ...]
    checked: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_report(
    path: str | Path,
    *,
    kiosk: OpenKiosk | None = None,
    central: OpenCentral | None = None,
    recompute: Recompute | None = None,
) -> Outcome:
    """Check a report file: its rows against its record; with the open database it came
    from (``kiosk`` or ``central``), the chain heads and the report recomputed as of them
    (the policy is in the module docstring)."""
    found = read_report_file(path)
    record = found.record
    problems = check_rows(found)
    checked = [f"{record.rows} row{'' if record.rows == 1 else 's'} match the recorded digest"]
    if kiosk is None and central is None:
        return Outcome(tuple(problems), tuple(checked))
    database = "kiosk" if kiosk is not None else "central"
    if database != record.database:
        problems.append(
            f"the report came from the {record.database} database, not the {database} one"
        )
        return Outcome(tuple(problems), tuple(checked))
    if kiosk is not None:
        chain_problems = check_kiosk_heads(kiosk, record.heads)
    else:
        assert central is not None
        chain_problems = check_central_heads(central, record.heads)
    problems += chain_problems
    if not chain_problems:
        logs = len(record.heads)
        if logs == 0:
            checked.append("no log held a checked chain then")
        else:
            checked.append("the chain head still holds" if logs == 1 else "the chain heads hold")
    notes: list[str] = []
    if recompute is not None:
        problems += _recompute(record, kiosk, central, recompute, checked, notes)
    return Outcome(tuple(problems), tuple(checked), tuple(notes))


def as_of_heads(record: Verification, received_before: str | None = None) -> AsOf:
    """The events a record's chain heads cover: of each log, those up to its head."""
    return AsOf({h.log_id: h.seq for h in record.heads}, received_before)


def count_events(
    kiosk: OpenKiosk | None, central: OpenCentral | None, record: Verification, as_of: AsOf
) -> EventCounts:
    """The events in a record's range in the database now, and how many ``as_of`` covers."""
    if kiosk is not None:
        from reports.sources import count_kiosk_events

        return count_kiosk_events(kiosk, record.first, record.last, as_of)
    from reports.central_source import count_central_events

    assert central is not None
    return count_central_events(central, record.first, record.last, as_of)


def received_before(record: Verification) -> str | None:
    """When the report was made, as the central database stores times (None: unreadable).

    The record holds whole seconds, cut down: an event received in that second counts
    as received after."""
    try:
        moment = datetime.fromisoformat(record.generated_utc.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.utcoffset() is None:
        return None
    from clockface.values import iso_utc

    return iso_utc(moment)


def _digests(made: Report) -> tuple[str, list[str]]:
    rows = canonical_rows(made.table)
    keys = [c.key for c in made.table.columns]
    return rows_digest(keys, rows), [row_digest(r) for r in rows]


def _recompute(
    record: Verification,
    kiosk: OpenKiosk | None,
    central: OpenCentral | None,
    recompute: Recompute,
    checked: list[str],
    notes: list[str],
) -> list[str]:
    """The report computed again as of its chain heads (module docstring: the policy);
    appends to ``checked`` and ``notes``, returns the problems."""
    database = "kiosk" if kiosk is not None else "central"
    heads = as_of_heads(record)
    before = received_before(record) if central is not None else None
    counts = count_events(kiosk, central, record, as_of_heads(record, before))
    digest, rows = _digests(recompute(record, heads))
    if counts.uncovered == 0:  # the heads cover every event in the range: as it is now
        if digest == record.rows_sha256:
            checked.append("the database gives the same rows")
            return []
        return [
            "the database now gives different rows for these parameters",
            *_row_changes(list(record.row_digests), rows, "the database now"),
        ]
    if digest == record.rows_sha256:
        if _digests(recompute(record, None))[0] == record.rows_sha256:
            checked.append("the database gives the same rows")
        else:
            checked.append("the database gives the same rows as of the chain heads")
            notes.append(_later_line(database, counts))
        return []
    # Other rows as of the heads: were they made from events no head covers?
    tries: list[AsOf | None] = [None]
    if counts.received_before and counts.received_before < counts.uncovered:
        tries.insert(0, as_of_heads(record, before))  # without those received later
    changes = _row_changes(list(record.row_digests), rows, "the database as of the chain heads")
    if any(_digests(recompute(record, t))[0] == record.rows_sha256 for t in tries):
        return [_unvouched_line(database, counts), *changes]
    differ = "as of its chain heads the database gives different rows for these parameters"
    return [differ, *changes]


def _events(n: int, adjective: str = "") -> str:
    return f"{n} {adjective + ' ' if adjective else ''}event{'' if n == 1 else 's'}"


def _later_line(database: str, counts: EventCounts) -> str:
    """The note of a report verified as of its heads that the database now contradicts."""
    same = "as of its chain heads the database gives the same rows"
    n, held = counts.uncovered, counts.received_before
    if database == "kiosk" or held == 0:
        return f"{_events(n, 'later')} in this range arrived after the report was made; {same}"
    if held is None:
        return f"{_events(n)} in this range are not covered by the report's chain heads; {same}"
    return (
        f"{_events(n)} in this range are not covered by the report's chain heads ({n - held} "
        f"arrived after the report was made, {held} {'was' if held == 1 else 'were'} held "
        f"then without a checked chain); {same}"
    )


def _unvouched_line(database: str, counts: EventCounts) -> str:
    n = counts.uncovered
    if database == "kiosk":
        which = f"{_events(n)} in this range past the recorded chain head"
    else:
        which = (
            f"{_events(n)} in this range that no recorded chain head covers (of logs with no "
            "checked chain when the report was made, events held past a gap, or later ones)"
        )
    return (
        "as of its chain heads the database gives different rows: the report's rows need "
        f"some of the {which}, so this cannot vouch for those rows"
    )


__all__ = [
    "ChainHead",
    "Outcome",
    "ReportFile",
    "Verification",
    "as_of_heads",
    "canonical_rows",
    "central_heads",
    "check_central_heads",
    "check_kiosk_heads",
    "count_events",
    "html_block",
    "kiosk_heads",
    "make_verification",
    "read_report_file",
    "row_digest",
    "rows_digest",
    "sidecar_path",
    "verify_report",
]
