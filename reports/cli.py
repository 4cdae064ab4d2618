"""``clockface report`` and ``clockface schedule``: supervisors' reports over schedules.

Thin: each command parses its options, opens the database it was pointed at and calls
the library (:mod:`reports.compute`, :mod:`reports.tables`, :mod:`reports.exporters`,
:mod:`reports.schedule_store`).

Every command but ``schedule check`` works on one database: a kiosk's own SQLite file
(``--db PATH``, ``CLOCKFACE_DB``; the default, ``clockface.db``) or the central database
(``--central-db PATH|URL``, ``CLOCKFACE_CENTRAL_DATABASE``), never created here. An
option on the command line wins over the environment; both given either way is a usage
error. Reports read the schedules stored in that database unless given a schedule file
(``--schedules FILE``). The stores, SQLAlchemy and numpy are imported only when a command
runs, so ``--help`` stays instant. This module is where a report meets a database: it opens the
store (:func:`_database`, the one place), and the report code reads through the open
store (``reports`` itself never imports the stores).

Every report written carries a verification record (:mod:`reports.verify`; a CSV written
with ``--output`` gets it beside it in ``FILE.verify.json``); ``report verify FILE``
checks a report against it and, given the database, against the event logs.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import click

from clockface.days import parse_day
from clockface.options import CENTRAL_DB_ENV, DB_ENV, central_db_option, db_option, one_of

if TYPE_CHECKING:
    from central.store import CentralStore
    from kiosk.store import KioskStore
    from reports.schedule_store import ScheduleStore
    from reports.schedules import ScheduleBook, Shift
    from reports.sources import AsOf
    from reports.tables import Report
    from reports.verify import ChainHead

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("csv", "xlsx", "html", "json")
REPORT_KINDS: dict[str, str] = {
    "late": "Late arrivals: the first arrival after start + grace, with minutes late.",
    "early": "Early departures: the last departure before end - grace, with minutes early.",
    "absent": "Absences: scheduled shifts (not holidays, not days off) with no arrival.",
    "hours": "Hours worked per shift (in to out, real time), and each person's total.",
    "summary": "Per person over the range: shifts, present, late, early, absent, hours.",
    "anomalies": "Missing punches, double punches, punches outside any shift window, "
    "unsynchronised kiosk clocks, people without a schedule.",
}
PROGRESS_FROM = 25
"""Show a progress bar for reports over at least this many people."""
"""The central database's environment variable, as for ``clockface enroll``."""


def _day(_: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


SCHEDULES_OPTION = click.option(
    "--schedules",
    "schedules_path",
    envvar="CLOCKFACE_SCHEDULES",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="Use this schedule file (.toml or .csv) instead of the schedules stored in the "
    "database (see `clockface schedule --help`).",
)


# --------------------------------------------------------------------- the database
@dataclass(frozen=True, slots=True)
class Target:
    """The database a command works on: a kiosk's SQLite file or the central database."""

    kind: Literal["kiosk", "central"]
    where: str


# (parameter, option, environment variable, kind)
_TARGETS: tuple[tuple[str, str, str, Literal["kiosk", "central"]], ...] = (
    ("db_path", "--db", DB_ENV, "kiosk"),
    ("central_db", "--central-db", CENTRAL_DB_ENV, "central"),
)


def _target_options(db_help: str) -> Callable[[F], F]:
    """--db and --central-db; the command gets ``target``."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, db_path: str, central_db: str | None, **kwargs: Any) -> Any:
            return command(*args, target=_choose_target(db_path, central_db), **kwargs)

        central = central_db_option(
            "Use the central database instead, on the central host: its SQLite file "
            "or postgresql://USER@HOST/NAME (never created here).",
        )
        wrapped: Callable[..., Any] = db_option(db_help)(central(run))
        return cast(F, wrapped)

    return decorate


def _choose_target(db_path: str, central_db: str | None) -> Target:
    """The one database asked for: an option given beats the environment; default --db."""
    values = {"db_path": db_path, "central_db": central_db}
    name, _, _, kind = one_of(
        _TARGETS,
        values,
        two_given=lambda _: "give one of --db and --central-db, not both",
        two_set=lambda _: (
            f"CLOCKFACE_DB and {CENTRAL_DB_ENV} are both set: say which database with "
            "--db or --central-db"
        ),
    )
    where = values[name]
    assert where is not None  # --db has a default
    return Target(kind, where)


@contextmanager
def open_database(target: Target) -> Iterator[KioskStore | CentralStore]:
    """The target's store, opened (never created: a missing file is refused first): the
    one place a report or schedule command opens a database. The store checks what the
    file is and brings an older schema up to date; the report code reads through it."""
    if target.kind == "central":
        from central.store import CentralStore, resolve_database
        from reports.central_source import check_central_file

        path = resolve_database(target.where).path
        if path is not None:
            check_central_file(path)
        with CentralStore.open(target.where) as central:
            yield central
    else:
        from kiosk.store import KioskStore
        from reports.sources import check_kiosk_file

        with KioskStore.open(check_kiosk_file(target.where), create=False) as kiosk:
            yield kiosk


def _schedule_store(store: KioskStore | CentralStore) -> ScheduleStore:
    from kiosk.store import KioskStore
    from reports.schedule_store import ScheduleStore

    if isinstance(store, KioskStore):
        return ScheduleStore.on_kiosk(store)
    return ScheduleStore.on_central(store)


@contextmanager
def _open(target: Target) -> Iterator[ScheduleStore]:
    """The schedules of the target database."""
    with open_database(target) as store, _schedule_store(store) as schedules:
        yield schedules


def _no_schedules(where: str) -> str:
    return (
        f"no schedules stored in {where}: add them with `clockface schedule import FILE`, "
        "or give --schedules FILE"
    )


def _schedules(store: ScheduleStore, schedules_path: str | None) -> ScheduleBook:
    """The schedule file's book, or else the schedules stored in the database."""
    from clockface.errors import ReportError
    from reports.schedule_files import load_schedules

    if schedules_path is not None:
        return load_schedules(schedules_path)
    stored = store.stored()
    if stored.empty:
        raise ReportError(_no_schedules(store.where))
    return stored.book()


# --------------------------------------------------------------------- reports
@click.group()
def report() -> None:
    """Late arrivals, early departures, absences and hours, against work schedules.

    Every report reads the roster and events of one database, a kiosk's (--db, the
    default) or the central one (--central-db), against the schedules stored in it
    (`clockface schedule import FILE`, `clockface schedule --help`) or a schedule file
    (--schedules). It covers the shifts that start between --from and --to, and lists
    the anomalies it met (in CSV, see the anomalies report).
    """


def _report_command(kind: str, summary: str) -> click.Command:
    @click.option(
        "--from", "first", required=True, callback=_day, metavar="YYYY-MM-DD",
        help="First shift date.",
    )  # fmt: skip
    @click.option(
        "--to", "last", required=True, callback=_day, metavar="YYYY-MM-DD",
        help="Last shift date (inclusive).",
    )  # fmt: skip
    @click.option("--person", "person_id", metavar="ID", help="Only this person.")
    @click.option("--team", metavar="TEAM", help="Only this team.")
    @click.option("--site", metavar="SITE", help="Only shifts at this site.")
    @SCHEDULES_OPTION
    @_target_options("The kiosk's SQLite database to read (roster, events, schedules).")
    @click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
        help="csv, xlsx (a workbook), html (a printable page) or json.",
    )  # fmt: skip
    @click.option(
        "--output", "-o", "output", type=click.Path(),
        help="Write to this file (atomically) instead of standard output.",
    )  # fmt: skip
    @click.option("--force", is_flag=True, help="Replace --output if it exists.")
    def command(
        first: date,
        last: date,
        person_id: str | None,
        team: str | None,
        site: str | None,
        schedules_path: str | None,
        target: Target,
        fmt: str,
        output: str | None,
        force: bool,
    ) -> None:
        from reports.exporters import render, write_output
        from reports.verify import make_verification, sidecar_path

        if last < first:
            raise click.BadParameter(f"{last} is before --from {first}", param_hint="--to")
        if output is None and fmt == "xlsx" and sys.stdout.isatty():
            raise click.UsageError("XLSX is binary: give --output FILE.xlsx")
        made, heads = _make_report(
            kind, first, last, person_id, team, site, schedules_path, target, progress=True
        )
        record = make_verification(
            made, person_id=person_id, team=team, site=site, schedules=schedules_path,
            database=target.kind, where=target.where, heads=heads,
        )  # fmt: skip
        data = render(made, fmt, record)
        if output is None:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            written = write_output(output, data, force=force)
            if fmt == "csv":  # the record goes beside a CSV: both, or neither
                try:
                    record_data = (record.to_text() + "\n").encode("utf-8")
                    write_output(sidecar_path(output), record_data, force=force)
                except BaseException:
                    written.unlink(missing_ok=True)
                    raise
        _tell(made.table.title, len(made.table.rows), len(made.anomalies.rows), kind, fmt, output)

    command.__doc__ = summary
    return click.command(kind, help=summary)(command)


def _make_report(
    kind: str,
    first: date,
    last: date,
    person_id: str | None,
    team: str | None,
    site: str | None,
    schedules_path: str | None,
    target: Target,
    *,
    progress: bool,
    as_of: AsOf | None = None,
) -> tuple[Report, tuple[ChainHead, ...]]:
    """One report from the target database, and the chain heads of the logs it read.

    The heads are read first: every event they cover is in the report (an event that
    arrives while the report reads is in it or not, but never covered by a head it
    lacks). With ``as_of`` (``report verify``), only the events it covers, and no heads.
    """
    from kiosk.store import KioskStore
    from reports.central_source import read_central_database
    from reports.compute import Selection, compute_attendance
    from reports.sources import read_kiosk_database
    from reports.tables import build_report
    from reports.verify import central_heads, kiosk_heads

    heads: tuple[ChainHead, ...] = ()
    with open_database(target) as store:
        with _schedule_store(store) as schedules:
            book = _schedules(schedules, schedules_path)
        if isinstance(store, KioskStore):
            if as_of is None:
                heads = kiosk_heads(store)
            source = read_kiosk_database(store, first, last, as_of=as_of)
        else:
            if as_of is None:
                heads = central_heads(store)
            source = read_central_database(store, first, last, as_of=as_of)
        selection = Selection(person_id=person_id, team=team, site=site)
        chosen = sum(selection.wants(p) for p in source.people) if progress else 0
        with _progress(chosen) as step:  # event details are read here: the store is open
            attendance = compute_attendance(
                source.events, source.people, book, first, last,
                selection=selection, progress=step,
            )  # fmt: skip
    return build_report(kind, attendance), heads


class _progress:
    """A progress bar on stderr for many people; a no-op step function otherwise."""

    def __init__(self, total: int) -> None:
        self._bar: Any = None
        if total >= PROGRESS_FROM:
            self._bar = click.progressbar(length=total, label="Computing", file=sys.stderr)

    def __enter__(self) -> Callable[[int], None]:
        if self._bar is None:
            return lambda _: None
        bar = self._bar.__enter__()
        step: Callable[[int], None] = bar.update
        return step

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _tell(title: str, rows: int, anomalies: int, kind: str, fmt: str, output: str | None) -> None:
    where = f"wrote {output}: " if output else ""
    line = f"{where}{title}: {rows} row{'' if rows == 1 else 's'}"
    if kind != "anomalies" and anomalies:
        listed = "see `clockface report anomalies`" if fmt == "csv" else "listed after the report"
        line += f"; {anomalies} anomal{'y' if anomalies == 1 else 'ies'} ({listed})"
    click.echo(line, err=True)


for _kind, _summary in REPORT_KINDS.items():
    report.add_command(_report_command(_kind, _summary))


@report.command()
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option(
    "--db", "db_path", type=click.Path(dir_okay=False), metavar="PATH",
    help="The kiosk database the report was made from: check its chain and recompute.",
)  # fmt: skip
@click.option(
    "--central-db", "central_db", metavar="PATH|URL",
    help="The central database the report was made from: check its logs' chains and "
    "recompute.",
)  # fmt: skip
@click.option(
    "--schedules", "schedules_path", type=click.Path(dir_okay=False),
    help="The schedule file to recompute with. [default: the one the report names, or the "
    "database's schedules]",
)  # fmt: skip
def verify(
    path: str, db_path: str | None, central_db: str | None, schedules_path: str | None
) -> None:
    """Check a report file (CSV, XLSX, HTML or JSON) against its verification record.

    Every report written carries a record: its parameters, the database, when, the
    chain head of each event log it read, and a SHA-256 of its rows (a CSV keeps it
    beside it in FILE.verify.json). Without a database, this checks only that the rows
    still hash to the recorded digest and names any edited, deleted or added row: that
    proves little, since whoever edits a row can recompute the digest too.

    With the database (--db or --central-db) it is a real check: the kiosk log's chain
    must still hold the recorded head (the events were not rewritten since), and the
    report computed again with the recorded parameters, as of the recorded heads, must
    give the same rows. On the central database the heads are those the service checked
    on ingest: each log's events up to its head are read back and their chain
    recomputed.

    As of the heads means: of each log with a recorded head, its events up to that
    head; of any other log, none. Events that arrived later in the report's range (a
    kiosk that synced late, a new log) do not count, so an old report still verifies;
    if they change the rows now, a second line says how many there are. A report whose
    rows need events no recorded head covers (a log without a checked chain, events
    held past a gap in its seqs) is not verified: it says it cannot vouch for those
    rows and names them. Changed schedules or roster show as different rows.

    Exit status 0 with a "verified: ..." line (and that second line, if any), else 1
    with one line per problem.
    """
    from reports.verify import Verification, verify_report

    if db_path is not None and central_db is not None:
        raise click.UsageError("give one of --db and --central-db, not both")
    target = None
    if db_path is not None:
        target = Target("kiosk", db_path)
    elif central_db is not None:
        target = Target("central", central_db)

    def recompute(record: Verification, as_of: AsOf | None) -> Report:
        assert target is not None
        made, _ = _make_report(
            record.kind, record.first, record.last, record.person_id, record.team,
            record.site, schedules_path or record.schedules, target, progress=False,
            as_of=as_of,
        )  # fmt: skip
        return made

    with contextlib.ExitStack() as opened:
        kiosk = central = None
        if target is not None:
            from kiosk.store import KioskStore

            store = opened.enter_context(open_database(target))
            if isinstance(store, KioskStore):
                kiosk = store
            else:
                central = store
        outcome = verify_report(
            path, kiosk=kiosk, central=central, recompute=None if target is None else recompute
        )
    if outcome.ok:
        what = "; ".join(outcome.checked)
        if target is None:
            what += " (no database given: the digest alone proves little; give --db)"
        click.echo(f"verified: {path}: {what}")
        for note in outcome.notes:
            click.echo(f"{path}: {note}")
        return
    for problem in outcome.problems:
        click.echo(f"{path}: {problem}")
    sys.exit(1)


# --------------------------------------------------------------------- schedules
_SCHEDULE_DB = "The kiosk's SQLite database whose schedules to use (never created here)."
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@click.group()
def schedule() -> None:
    """Work schedules, stored with the roster: sites, holidays, shifts, days off.

    Schedules live in the database beside the roster and events: a kiosk's own SQLite
    file (--db, the default) or the central database (--central-db PATH|URL). Import
    them from a schedule file, export them back, list them, or change one thing at a
    time; every change is checked whole (two shifts of one person on one day, an
    unknown site or time zone are refused, nothing written) and audited.

    A schedule file (TOML or CSV; `check` reads one without a database) holds sites with
    their IANA time zones and holidays, weekly shift patterns per person or team, and
    days off; see `reports/schedule_files.py` for both formats. Shift times are local to
    the site; a shift that crosses midnight belongs to the day it starts; a person's own
    patterns win over their team's.
    """


@schedule.command()
@click.argument("path", type=click.Path(dir_okay=False))
def check(path: str) -> None:
    """Check a schedule file and print what it holds (no database)."""
    from reports.schedule_files import load_schedules

    book = load_schedules(path)
    click.echo(f"{path}: ok")
    for site in book.sites.values():
        click.echo(
            f"  site {site.name}: {site.timezone}, {len(site.holidays)} "
            f"holiday{'' if len(site.holidays) == 1 else 's'}"
        )
    for shift in book.shifts:
        who = f"person {shift.person_id}" if shift.person_id else f"team {shift.team}"
        days = ",".join(_WEEKDAYS[d] for d in sorted(shift.weekdays))
        dates = f" {shift.valid_from or '...'} to {shift.valid_until or '...'}"
        click.echo(f"  {who}: {days} {shift.text} at {shift.site}{dates}")
    click.echo(f"  {len(book.days_off)} day-off entr{'y' if len(book.days_off) == 1 else 'ies'}")


@schedule.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Replace every schedule stored now.")
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing.")
@_target_options(_SCHEDULE_DB)
def import_(path: str, replace: bool, dry_run: bool, target: Target) -> None:
    """Store the schedules of a file (.toml or .csv), all or nothing.

    Refused when schedules are stored already, unless --replace: then everything stored
    is replaced in one transaction (holiday names on the same site and day are kept).
    """
    from reports.schedule_files import load_schedules

    book = load_schedules(path)
    with _open(target) as store:
        outcome = store.import_book(book, replace=replace, dry_run=dry_run, source=path)
        where = store.where
    counts = outcome.stored.counts()
    if outcome.replaced.empty:
        verb = "would import" if dry_run else "imported"
        line = f"{verb} {path} into {where}: {counts}"
    else:
        verb = "would replace" if dry_run else "replaced"
        old = outcome.replaced.counts()
        line = f"{verb} the schedules in {where} ({old}) with {path}: {counts}"
    click.echo(f"dry run, nothing written: {line}" if dry_run else line)


@schedule.command()
@click.option(
    "--output", "-o", "output", type=click.Path(),
    help="Write to this file (atomically) instead of standard output.",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Replace --output if it exists.")
@_target_options(_SCHEDULE_DB)
def export(output: str | None, force: bool, target: Target) -> None:
    """Write the stored schedules as a TOML schedule file.

    `clockface schedule import FILE` reads it back to the same schedules; holiday names
    and shift notes come along as comments.
    """
    from reports.exporters import write_output
    from reports.schedule_store import to_toml

    with _open(target) as store:
        stored = store.stored()
        where = store.where
    text = to_toml(stored, source=where)
    if stored.empty:
        click.echo(f"no schedules stored in {where}: the file holds none", err=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_output(output, text.encode("utf-8"), force=force)
        click.echo(f"wrote {output}: {stored.counts()}", err=True)


@schedule.command("list")
@_target_options(_SCHEDULE_DB)
def list_(target: Target) -> None:
    """List the stored sites, holidays, shifts (with their ids) and days off."""
    from reports.schedule_store import days_text

    with _open(target) as store:
        stored = store.stored()
        where = store.where
    if stored.empty:
        click.echo(f"no schedules stored in {where}")
        return
    for site in stored.sites:
        count = len(site.holidays)
        click.echo(f"site {site.name}: {site.timezone}, {count} holiday{'' if count == 1 else 's'}")
        for holiday in site.holidays:
            click.echo(f"  holiday {holiday.day} {holiday.day:%a}  {holiday.name}".rstrip())
    for stored_shift in stored.shifts:
        shift = stored_shift.shift
        dates = ""
        if shift.valid_from is not None or shift.valid_until is not None:
            dates = f", {shift.valid_from or '...'} to {shift.valid_until or '...'}"
        note = f"  ({stored_shift.note})" if stored_shift.note else ""
        click.echo(
            f"shift #{stored_shift.id} {_who(shift)}: {days_text(shift.weekdays)} {shift.text} "
            f"at {shift.site}, grace {shift.grace_late}/{shift.grace_early} min, window "
            f"{shift.window_before}/{shift.window_after} min{dates}{note}"
        )
    for stored_off in stored.days_off:
        off = stored_off.day_off
        span = f"{off.first}" if off.first == off.last else f"{off.first} to {off.last}"
        note = f"  ({off.note})" if off.note else ""
        click.echo(f"day off #{stored_off.id} person {off.person_id}: {span}{note}")


@schedule.command()
@click.option("--person", "person_id", required=True, metavar="ID", help="The person.")
@click.option(
    "--from", "first", required=True, callback=_day, metavar="YYYY-MM-DD", help="First day."
)
@click.option("--to", "last", required=True, callback=_day, metavar="YYYY-MM-DD", help="Last day.")
@SCHEDULES_OPTION
@_target_options(_SCHEDULE_DB)
def show(
    person_id: str, first: date, last: date, schedules_path: str | None, target: Target
) -> None:
    """Show a person's shift (or why none) on each day from --from to --to.

    The person's team is the roster's, in the same database.
    """
    if last < first:
        raise click.BadParameter(f"{last} is before --from {first}", param_hint="--to")
    if (last - first).days > 366:
        raise click.BadParameter("show at most a year at a time", param_hint="--to")
    with _open(target) as store:
        person = store.person(person_id)
        book = _schedules(store, schedules_path)
    day = first
    while day <= last:
        plan = book.plan(person, day)
        line = f"{day} {day:%a}  {plan.status.replace('_', ' ')}"
        if plan.shift is not None:
            line += f"  {plan.shift.text} at {plan.shift.site}"
        if plan.occurrence is not None:
            line += f" ({plan.occurrence.scheduled_minutes} min)"
        click.echo(line)
        day += timedelta(days=1)


# --------------------------------------------------------------------- sites, holidays
@schedule.group()
def site() -> None:
    """Sites: where people work, each with its IANA time zone and holidays."""


@site.command("add")
@click.argument("name")
@click.option(
    "--timezone",
    metavar="ZONE",
    help="The site's IANA time zone, e.g. Europe/Berlin. On the central database it may "
    "be left out for a central site's name: the site takes that site's zone.",
)
@_target_options(_SCHEDULE_DB)
def site_add(name: str, timezone: str | None, target: Target) -> None:
    """Add a site."""
    with _open(target) as store:
        added = store.add_site(name, timezone)
    click.echo(f"added site {added.name} ({added.timezone})")


@site.command("set-timezone")
@click.argument("name")
@click.argument("timezone", metavar="ZONE")
@_target_options(_SCHEDULE_DB)
def site_set_timezone(name: str, timezone: str, target: Target) -> None:
    """Change a site's time zone (shift times stay local times there)."""
    with _open(target) as store:
        old = next((s for s in store.stored().sites if s.name == name), None)
        changed = store.set_site_timezone(name, timezone)
    was = f" (was {old.timezone})" if old is not None else ""
    click.echo(f"site {changed.name}: {changed.timezone}{was}")


@site.command("remove")
@click.argument("name")
@_target_options(_SCHEDULE_DB)
def site_remove(name: str, target: Target) -> None:
    """Remove a site and its holidays; refused while shifts use it."""
    with _open(target) as store:
        count = store.remove_site(name)
    click.echo(f"removed site {name} and its {count} holiday{'' if count == 1 else 's'}")


def _date_argument(name: str) -> Callable[[F], F]:
    return click.argument(name, metavar="DATE", callback=_day)


@schedule.group()
def holiday() -> None:
    """A site's holidays: no shift at that site on those days."""


@holiday.command("add")
@click.argument("site_name", metavar="SITE")
@_date_argument("day")
@click.option("--name", default="", help="What the holiday is, e.g. 'Christmas Day'.")
@_target_options(_SCHEDULE_DB)
def holiday_add(site_name: str, day: date, name: str, target: Target) -> None:
    """Add a holiday at SITE on DATE (YYYY-MM-DD)."""
    with _open(target) as store:
        store.add_holiday(site_name, day, name)
    click.echo(
        f"added holiday {day} at {site_name}" + (f": {name.strip()}" if name.strip() else "")
    )


@holiday.command("remove")
@click.argument("site_name", metavar="SITE")
@_date_argument("day")
@_target_options(_SCHEDULE_DB)
def holiday_remove(site_name: str, day: date, target: Target) -> None:
    """Remove the holiday at SITE on DATE."""
    with _open(target) as store:
        store.remove_holiday(site_name, day)
    click.echo(f"removed holiday {day} at {site_name}")


# --------------------------------------------------------------------- shifts, days off
def _who(shift: Shift) -> str:
    return f"person {shift.person_id}" if shift.person_id is not None else f"team {shift.team}"


@schedule.group()
def shift() -> None:
    """Weekly shift patterns of a person or a team."""


@shift.command("add")
@click.option("--person", "person_id", metavar="ID", help="The person (or --team).")
@click.option("--team", metavar="TEAM", help="The team (or --person).")
@click.option("--site", "site_name", required=True, metavar="SITE", help="Where (a stored site).")
@click.option(
    "--days", required=True, metavar="DAYS", help="Weekdays: mon-fri, 'sat sun', mon,wed,fri."
)
@click.option("--start", required=True, metavar="HH:MM", help="Start, local time at the site.")
@click.option(
    "--end", required=True, metavar="HH:MM", help="End; not after the start: crosses midnight."
)
@click.option("--grace-late", metavar="MIN", help="Minutes late still on time. [default: 0]")
@click.option("--grace-early", metavar="MIN", help="Minutes early still in time. [default: 0]")
@click.option(
    "--window-before", metavar="MIN",
    help="Minutes before the start in which a punch belongs to the shift. [default: 120]",
)  # fmt: skip
@click.option(
    "--window-after", metavar="MIN",
    help="Minutes after the end in which a punch belongs to the shift. [default: 240]",
)  # fmt: skip
@click.option("--from", "valid_from", metavar="YYYY-MM-DD", help="In force from this date.")
@click.option("--until", "valid_until", metavar="YYYY-MM-DD", help="In force until this date.")
@click.option("--note", default="", help="A note stored with the shift.")
@_target_options(_SCHEDULE_DB)
def shift_add(
    person_id: str | None,
    team: str | None,
    site_name: str,
    days: str,
    start: str,
    end: str,
    grace_late: str | None,
    grace_early: str | None,
    window_before: str | None,
    window_after: str | None,
    valid_from: str | None,
    valid_until: str | None,
    note: str,
    target: Target,
) -> None:
    """Add a shift pattern; prints its id (the line saying so goes to stderr).

    Refused when the person (or team) already has a shift on one of these weekdays and
    dates, or the site is not stored.
    """
    from clockface.errors import UnknownPersonError
    from reports.schedule_store import days_text, shift_from_fields

    if (person_id is None) == (team is None):
        raise click.UsageError("give --person ID or --team TEAM (one of them)")
    given = {
        "person": person_id,
        "team": team,
        "site": site_name,
        "days": days,
        "start": start,
        "end": end,
        "grace_late": grace_late,
        "grace_early": grace_early,
        "window_before": window_before,
        "window_after": window_after,
        "from": valid_from,
        "until": valid_until,
    }
    pattern = shift_from_fields({k: v for k, v in given.items() if v is not None})
    with _open(target) as store:
        new_id = store.add_shift(pattern, note=note)
        where = store.where
        if person_id is not None:
            try:
                store.person(person_id)
                missing = ""
            except UnknownPersonError:
                missing = f"person {person_id!r} is not in the roster"
        else:
            assert team is not None
            missing = "" if store.known_team(team) else f"nobody in the roster is in team {team!r}"
    click.echo(new_id)
    click.echo(
        f"added shift #{new_id}: {_who(pattern)} {days_text(pattern.weekdays)} {pattern.text} "
        f"at {pattern.site}",
        err=True,
    )
    if missing:
        click.echo(f"note: {missing} of {where} (yet)", err=True)


@shift.command("remove")
@click.argument("shift_id", metavar="ID", type=int)
@_target_options(_SCHEDULE_DB)
def shift_remove(shift_id: int, target: Target) -> None:
    """Remove a shift pattern by id (`clockface schedule list` shows them)."""
    from reports.schedule_store import days_text

    with _open(target) as store:
        removed = store.remove_shift(shift_id)
    pattern = removed.shift
    click.echo(
        f"removed shift #{shift_id}: {_who(pattern)} {days_text(pattern.weekdays)} "
        f"{pattern.text} at {pattern.site}"
    )


@schedule.group("day-off")
def day_off() -> None:
    """A person's days off (leave, sickness): no shift for them on those days."""


@day_off.command("add")
@click.option("--person", "person_id", required=True, metavar="ID", help="The person.")
@click.option("--from", "first", required=True, metavar="YYYY-MM-DD", help="First day off.")
@click.option("--until", "last", metavar="YYYY-MM-DD", help="Last day off. [default: --from]")
@click.option("--note", default="", help="A note, e.g. 'leave'.")
@_target_options(_SCHEDULE_DB)
def day_off_add(person_id: str, first: str, last: str | None, note: str, target: Target) -> None:
    """Add days off of a person; prints the id (the line saying so goes to stderr)."""
    from reports.schedule_store import day_off_from_fields

    given = {"person": person_id, "from": first, "until": last, "note": note}
    off = day_off_from_fields({k: v for k, v in given.items() if v})
    with _open(target) as store:
        new_id = store.add_day_off(off)
    click.echo(new_id)
    span = f"{off.first}" if off.first == off.last else f"{off.first} to {off.last}"
    click.echo(f"added day off #{new_id}: person {off.person_id} {span}", err=True)


@day_off.command("remove")
@click.argument("day_off_id", metavar="ID", type=int)
@_target_options(_SCHEDULE_DB)
def day_off_remove(day_off_id: int, target: Target) -> None:
    """Remove days off by id (`clockface schedule list` shows them)."""
    with _open(target) as store:
        removed = store.remove_day_off(day_off_id)
    off = removed.day_off
    span = f"{off.first}" if off.first == off.last else f"{off.first} to {off.last}"
    click.echo(f"removed day off #{day_off_id}: person {off.person_id} {span}")
