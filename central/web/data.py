"""What the web page reads, and the one place it meets the report code's sources.

Reports on the page are made exactly as ``clockface report KIND --central-db DB`` makes
them: the people and events of the central database
(:func:`reports.central_source.read_central_database`), the schedules stored in it
(:meth:`reports.schedule_store.ScheduleStore.open_central` ``.book()``),
:func:`reports.compute.compute_attendance` over the range with the same selection,
:func:`reports.tables.build_report`; downloads are :func:`reports.exporters.render`'s
bytes. Both sources take the service's own open store and read on its pooled
connections: a request never opens the database again, and its URL (with the password)
never leaves the store.

Downloads and their verification records. The XLSX carries its record
(:mod:`reports.verify`); a CSV cannot, so ``csv-verify`` is the record the CLI would
write beside ``--output FILE.csv`` (``FILE.csv.verify.json``), made from the report
computed again for the same fields. The two are two requests, and events can arrive
between them: the record would then describe other rows than the CSV, and ``clockface
report verify`` would name rows as edited that nobody touched. So the report page puts
the SHA-256 of the rows it shows (the record's ``rows_sha256``) in its download form,
and a download given ``rows_sha256`` is refused with :class:`ReportChangedError` (the
report as it is now) unless its rows are still those: a CSV and a record that were both
served from one page describe the same rows, the page's. A download without it (a URL
typed by hand) is the report as it is at that moment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from clockface.days import parse_day
from clockface.errors import ReportError

if TYPE_CHECKING:
    from central.store import CentralStore
    from central.web.board import Board
    from reports.schedules import ScheduleBook
    from reports.sources import ReportInput
    from reports.tables import Report
    from reports.verify import ChainHead, Verification

MAX_DAYS = 366
"""The longest range a report on the page may cover, in days (inclusive)."""
KINDS = ("late", "early", "absent", "hours", "summary", "anomalies")
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv-verify": "application/json",
}
"""The downloads and their media types: ``csv-verify`` is the CSV's verification record."""
_DIGEST = re.compile(r"[0-9a-f]{64}")


class ReportChangedError(ReportError):
    """The report no longer has the rows a page showed: events arrived, or schedules or
    people changed, since. ``report`` is the report as it is now."""

    def __init__(self, report: Report) -> None:
        super().__init__(
            "this report has changed since the page showed it (new events, or changed "
            "schedules or people): here it is as it is now; download the CSV, its "
            "verification record or the XLSX again from this page, all of them"
        )
        self.report = report


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """A report as the page's form asks for it (checked: see :func:`report_request`)."""

    kind: str
    first: date
    last: date
    person_id: str | None = None
    team: str | None = None
    site: str | None = None

    def file_name(self, fmt: str) -> str:
        """A download's name: only letters, digits, dashes and dots. The CSV's record is
        named as ``clockface report --output FILE.csv`` names it (``FILE.csv.verify.json``),
        so that saved beside the CSV it is found by ``clockface report verify FILE.csv``."""
        if fmt == "csv-verify":
            from reports.verify import sidecar_path

            return str(sidecar_path(self.file_name("csv")))
        return f"clockface-{self.kind}-{self.first}-to-{self.last}.{fmt}"


def report_request(
    kind: str | None,
    first: str | None,
    last: str | None,
    person_id: str | None = None,
    team: str | None = None,
    site: str | None = None,
) -> ReportRequest:
    """The form's fields checked; ReportError with one line a supervisor can act on."""
    if kind not in KINDS:
        raise ReportError(f"choose a report: {', '.join(KINDS)}")
    start, end = _date(first, "From"), _date(last, "To")
    if end < start:
        raise ReportError(f"the range runs backwards: To ({end}) is before From ({start})")
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportError(
            f"the range is {(end - start).days + 1} days long: ask for {MAX_DAYS} days at most"
        )
    return ReportRequest(kind, start, end, _blank(person_id), _blank(team), _blank(site))


def schedules(store: CentralStore) -> ScheduleBook:
    """The schedules stored in the central database (on the store's own connections)."""
    from reports.schedule_store import ScheduleStore

    with ScheduleStore.on_central(store.with_actor("web")) as stored:
        return stored.book()


def report_input(store: CentralStore, first: date, last: date) -> ReportInput:
    """The people, and the events a report of shifts ``first``..``last`` can need."""
    from reports.central_source import read_central_database

    return read_central_database(store, first, last)


def make_report(store: CentralStore, request: ReportRequest) -> Report:
    """The report as ``clockface report`` makes it from the central database."""
    from reports.compute import Selection, compute_attendance
    from reports.tables import build_report

    book = _stored_schedules(store)
    source = report_input(store, request.first, request.last)
    attendance = compute_attendance(
        source.events,
        source.people,
        book,
        request.first,
        request.last,
        selection=Selection(person_id=request.person_id, team=request.team, site=request.site),
    )
    return build_report(request.kind, attendance)


def render(report: Report, fmt: str) -> bytes:
    from reports.exporters import render as export

    return export(report, fmt)


def rows_sha256(report: Report) -> str:
    """The SHA-256 of a report's rows, as its verification record holds it."""
    from reports.verify import canonical_rows, rows_digest

    return rows_digest([c.key for c in report.table.columns], canonical_rows(report.table))


def check_digest(text: str | None) -> str | None:
    """A ``rows_sha256`` field: None when not given, else 64 lowercase hex digits."""
    if text is None or text == "":
        return None
    if not _DIGEST.fullmatch(text):
        raise ReportError("rows_sha256 is not a SHA-256 (64 hex digits): show the report again")
    return text


def verification(
    store: CentralStore,
    request: ReportRequest,
    report: Report,
    heads: tuple[ChainHead, ...] | None = None,
) -> Verification:
    """The verification record of ``report``: the parameters, the chain head of every
    kiosk log (``heads``, read before the report's events; default: read now), the rows'
    digests."""
    from reports.verify import central_heads, make_verification

    return make_verification(
        report,
        person_id=request.person_id,
        team=request.team,
        site=request.site,
        schedules=None,
        database="central",
        where=store.where,
        heads=central_heads(store) if heads is None else heads,
        now=store.now(),
    )


def download(
    store: CentralStore, request: ReportRequest, fmt: str, *, rows: str | None = None
) -> bytes:
    """A report's download: CSV exactly as ``clockface report ... --central-db`` prints it
    on standard output; XLSX with its verification sheet (``clockface report verify``:
    the parameters, the chain head of every kiosk log, per-row digests); ``csv-verify``,
    the CSV's record as the CLI writes it beside ``--output FILE.csv``. Given ``rows``
    (a :func:`rows_sha256`), ReportChangedError unless the report still has those rows."""
    from reports.exporters import render as export
    from reports.verify import central_heads

    if fmt not in FORMATS:
        raise ReportError("choose a download format: csv or xlsx, or csv-verify (the CSV's record)")
    # The heads before the events: an event arriving in between is then outside the
    # heads (verify leaves it out), never inside them and missing from the report.
    heads = None if fmt == "csv" else central_heads(store)
    report = make_report(store, request)
    if rows is not None and rows_sha256(report) != rows:
        raise ReportChangedError(report)
    if fmt == "csv":
        return export(report, fmt)
    record = verification(store, request, report, heads)
    if fmt == "csv-verify":
        return (record.to_text() + "\n").encode("utf-8")
    return export(report, fmt, record)


def today_board(store: CentralStore, now: datetime | None = None) -> Board:
    """Today's board at ``now`` (default: the store's clock)."""
    from central.web.board import build_board, days_needed

    moment = store.now() if now is None else now
    book = _stored_schedules(store)
    first, last = days_needed(book, moment)
    source = report_input(store, first, last)
    return build_board(source.events, source.people, book, moment)


def _stored_schedules(store: CentralStore) -> ScheduleBook:
    book = schedules(store)
    if not book.sites:
        raise ReportError(
            "no schedules are stored yet: an administrator adds them with "
            "`clockface schedule import FILE --central-db DATABASE`"
        )
    return book


def _date(text: str | None, label: str) -> date:
    if not text:
        raise ReportError(f"give the {label} date, YYYY-MM-DD")
    try:
        return parse_day(text)
    except ValueError as err:
        raise ReportError(f"{label}: {err}") from None


def _blank(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    return text.strip()
