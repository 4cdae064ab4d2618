"""``clockface report`` and ``clockface schedule``: supervisors' reports over schedules.

Thin: each command parses its options, reads the schedule file and the kiosk database,
and calls the library (:mod:`reports.compute`, :mod:`reports.tables`,
:mod:`reports.exporters`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import click

from kiosk.cli import db_option

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


def _day(_: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


SCHEDULES_OPTION = click.option(
    "--schedules",
    "schedules_path",
    required=True,
    envvar="CLOCKFACE_SCHEDULES",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="The schedule file, .toml or .csv (see `clockface schedule --help`).",
)


@click.group()
def report() -> None:
    """Late arrivals, early departures, absences and hours, against work schedules.

    Every report reads the events and roster of a kiosk database (--db) and a schedule
    file (--schedules), covers the shifts that start between --from and --to, and lists
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
    @db_option("The kiosk's SQLite database to read (roster and events).")
    @click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
        help="csv, xlsx (a workbook), html (a printable page) or json.",
    )  # fmt: skip
    @click.option(
        "--output", "-o", "output", type=click.Path(dir_okay=False),
        help="Write to this file (atomically) instead of standard output.",
    )  # fmt: skip
    @click.option("--force", is_flag=True, help="Replace --output if it exists.")
    def command(
        first: date,
        last: date,
        person_id: str | None,
        team: str | None,
        site: str | None,
        schedules_path: str,
        db_path: str,
        fmt: str,
        output: str | None,
        force: bool,
    ) -> None:
        from reports.compute import Selection, compute_attendance
        from reports.exporters import render, write_output
        from reports.schedule_files import load_schedules
        from reports.sources import read_kiosk_database
        from reports.tables import build_report

        if last < first:
            raise click.BadParameter(f"{last} is before --from {first}", param_hint="--to")
        if output is None and fmt == "xlsx" and sys.stdout.isatty():
            raise click.UsageError("XLSX is binary: give --output FILE.xlsx")
        book = load_schedules(schedules_path)
        source = read_kiosk_database(db_path, first, last)
        selection = Selection(person_id=person_id, team=team, site=site)
        chosen = sum(selection.wants(p) for p in source.people)
        with _progress(chosen) as step:
            attendance = compute_attendance(
                source.events, source.people, book, first, last,
                selection=selection, progress=step,
            )  # fmt: skip
        made = build_report(kind, attendance)
        data = render(made, fmt)
        if output is None:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            write_output(output, data, force=force)
        _tell(made.table.title, len(made.table.rows), len(made.anomalies.rows), kind, fmt, output)

    command.__doc__ = summary
    return click.command(kind, help=summary)(command)


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


# --------------------------------------------------------------------- schedules
@click.group()
def schedule() -> None:
    """Work schedules: check a schedule file, show someone's shifts.

    A schedule file (TOML or CSV) holds sites with their IANA time zones and holidays,
    weekly shift patterns per person or team, and days off; see `reports/schedule_files.py`
    for both formats. Shift times are local to the site; a shift that crosses midnight
    belongs to the day it starts.
    """


@schedule.command()
@click.argument("path", type=click.Path(dir_okay=False))
def check(path: str) -> None:
    """Check a schedule file and print what it holds."""
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
        days = ",".join(
            ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[d] for d in sorted(shift.weekdays)
        )
        dates = f" {shift.valid_from or '...'} to {shift.valid_until or '...'}"
        click.echo(f"  {who}: {days} {shift.text} at {shift.site}{dates}")
    click.echo(f"  {len(book.days_off)} day-off entr{'y' if len(book.days_off) == 1 else 'ies'}")


@schedule.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--person", "person_id", required=True, metavar="ID", help="The person.")
@click.option("--team", metavar="TEAM", help="Their team, for the team's patterns.")
@click.option(
    "--from", "first", required=True, callback=_day, metavar="YYYY-MM-DD", help="First day."
)
@click.option("--to", "last", required=True, callback=_day, metavar="YYYY-MM-DD", help="Last day.")
def show(path: str, person_id: str, team: str | None, first: date, last: date) -> None:
    """Show a person's shift (or why none) on each day from --from to --to."""
    from reports.model import PersonInfo
    from reports.schedule_files import load_schedules

    if last < first:
        raise click.BadParameter(f"{last} is before --from {first}", param_hint="--to")
    if (last - first).days > 366:
        raise click.BadParameter("show at most a year at a time", param_hint="--to")
    book = load_schedules(path)
    person = PersonInfo(person_id, person_id, team)
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
