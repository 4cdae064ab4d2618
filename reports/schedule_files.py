"""Schedule files: sites, shift patterns, holidays and days off, in TOML or CSV.

:func:`load_schedules` reads either (by the file's suffix) into a checked
:class:`~reports.schedules.ScheduleBook`. Every mistake is one line naming the file, the
entry (TOML) or row (CSV), its line, and the field: ``schedules.csv: row 4 (line 4),
start: '9am' is not a time HH:MM``.

Fields, the same in both formats (minutes are whole numbers; dates YYYY-MM-DD; times
HH:MM, local to the site):

- site: ``name``, ``timezone`` (IANA), ``holidays`` (TOML: a list of dates).
- shift: ``person`` or ``team`` (one of them), ``site``, ``days`` (``mon-fri``,
  ``sat sun``, ``mon,wed``), ``start``, ``end`` (an end not after the start crosses
  midnight; the shift belongs to the day it starts), optional ``grace_late`` and
  ``grace_early`` (default 0), ``window_before`` (default 120) and ``window_after``
  (default 240): how long before the start and after the end a punch still belongs to
  the shift; optional ``from`` and ``until`` (inclusive) dates the pattern is in force.
- day off: ``person``, ``from``, optional ``until`` (default: the same day), ``note``.

TOML::

    [sites.berlin]
    timezone = "Europe/Berlin"
    holidays = [2024-10-03, 2024-12-25]

    [[shifts]]
    team = "nights"
    site = "berlin"
    days = "mon-sun"          # or a list: ["mon-fri", "sun"]
    start = "22:00"           # or a TOML time: 22:00:00
    end = "06:00"
    grace_late = 5
    grace_early = 5
    from = 2024-03-01

    [[days_off]]
    person = "ada"
    from = 2024-07-01
    until = 2024-07-14
    note = "leave"

CSV: a header row, then one row per record; ``kind`` says which (site, holiday, shift,
day_off). Columns: kind, name, person, team, site, timezone, days, start, end,
grace_late, grace_early, window_before, window_after, from, until, date, note; any
subset in any order, ``kind`` required; a cell a kind does not use must be empty::

    kind,name,timezone,site,team,days,start,end,grace_late,date
    site,berlin,Europe/Berlin,,,,,,,
    holiday,,,berlin,,,,,,2024-10-03
    shift,,,berlin,nights,mon-sun,22:00,06:00,5,
"""

from __future__ import annotations

import csv
import io
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from clockface.days import check_day, parse_day
from clockface.errors import InputFileError, ScheduleError
from clockface.files import read_bytes
from reports.schedules import (
    DEFAULT_WINDOW_AFTER,
    DEFAULT_WINDOW_BEFORE,
    DayOff,
    ScheduleBook,
    Shift,
    Site,
    weekday_set,
)

MAX_SCHEDULE_BYTES = 8 * 1024 * 1024

CSV_COLUMNS = (
    "kind",
    "name",
    "person",
    "team",
    "site",
    "timezone",
    "days",
    "start",
    "end",
    "grace_late",
    "grace_early",
    "window_before",
    "window_after",
    "from",
    "until",
    "date",
    "note",
)
_SHIFT_KEYS = {
    "person",
    "team",
    "site",
    "days",
    "start",
    "end",
    "grace_late",
    "grace_early",
    "window_before",
    "window_after",
    "from",
    "until",
}
_DAY_OFF_KEYS = {"person", "from", "until", "note"}
_SITE_KEYS = {"timezone", "holidays"}
_CSV_KEYS: dict[str, set[str]] = {
    "site": {"name", "timezone"},
    "holiday": {"site", "date", "note"},
    "shift": _SHIFT_KEYS,
    "day_off": _DAY_OFF_KEYS,
}


def load_schedules(path: str | os.PathLike[str]) -> ScheduleBook:
    """Read a schedule file, ``.toml`` or ``.csv``; ScheduleError or InputFileError."""
    where = Path(path)
    suffix = where.suffix.lower()
    if suffix not in (".toml", ".csv"):
        raise ScheduleError(f"{where}: a schedule file must end in .toml or .csv")
    data = read_bytes(where, max_bytes=MAX_SCHEDULE_BYTES, what="schedule file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputFileError(
            f"cannot read schedule file {str(where)!r}: not UTF-8 text (byte {err.start})"
        ) from err
    if suffix == ".toml":
        return parse_toml(text, source=str(where))
    return parse_csv(text, source=str(where))


# --------------------------------------------------------------------- TOML
def parse_toml(text: str, *, source: str = "schedules.toml") -> ScheduleBook:
    """A schedule book from TOML text (see the module docstring)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScheduleError(f"{source}: not valid TOML: {err}") from err
    unknown = set(document) - {"sites", "shifts", "days_off"}
    if unknown:
        raise ScheduleError(
            f"{source}: unknown section {sorted(unknown)[0]!r} (sections: sites, shifts, days_off)"
        )
    sites_raw = document.get("sites", {})
    if not isinstance(sites_raw, dict):
        raise ScheduleError(f"{source}: sites must be tables: [sites.NAME]")
    sites: list[Site] = []
    for name, fields in sites_raw.items():
        line = _toml_line(text, rf"\[\s*sites\s*\.\s*\"?{re.escape(name)}\"?\s*\]")
        where = f"{source}: site {name!r}{line}"
        if not isinstance(fields, dict):
            raise ScheduleError(f"{where}: must be a table with timezone and holidays")
        _refuse_unknown(where, fields, _SITE_KEYS)
        field = _Fields(where, fields)
        holidays_raw = fields.get("holidays", [])
        if not isinstance(holidays_raw, list):
            raise ScheduleError(f"{where}, holidays: must be a list of dates")
        holidays = frozenset(
            _date(value, f"{where}, holidays[{i}]") for i, value in enumerate(holidays_raw)
        )
        sites.append(_site(field, name, holidays))
    shifts = [
        _shift(_Fields(where, fields))
        for where, fields in _toml_entries(text, document, "shifts", source, _SHIFT_KEYS)
    ]
    days_off = [
        _day_off(_Fields(where, fields))
        for where, fields in _toml_entries(text, document, "days_off", source, _DAY_OFF_KEYS)
    ]
    return _book(source, sites, shifts, days_off)


def _toml_entries(
    text: str, document: Mapping[str, Any], key: str, source: str, allowed: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    entries = document.get(key, [])
    if not isinstance(entries, list):
        raise ScheduleError(f"{source}: {key} must be an array of tables: [[{key}]]")
    lines = _toml_lines(text, rf"\[\[\s*{key}\s*\]\]")
    for i, fields in enumerate(entries):
        line = f" (line {lines[i]})" if i < len(lines) else ""
        where = f"{source}: {key} #{i + 1}{line}"
        if not isinstance(fields, dict):
            raise ScheduleError(f"{where}: must be a table")
        _refuse_unknown(where, fields, allowed)
        yield where, fields


def _toml_lines(text: str, pattern: str) -> list[int]:
    regex = re.compile(rf"^\s*{pattern}")
    return [n for n, line in enumerate(text.splitlines(), start=1) if regex.match(line)]


def _toml_line(text: str, pattern: str) -> str:
    lines = _toml_lines(text, pattern)
    return f" (line {lines[0]})" if lines else ""


# --------------------------------------------------------------------- CSV
def parse_csv(text: str, *, source: str = "schedules.csv") -> ScheduleBook:
    """A schedule book from CSV text (see the module docstring)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise ScheduleError(f"{source}: empty file; the first row names the columns")
        columns = [h.strip().lower() for h in header]
        for name in columns:
            if name not in CSV_COLUMNS:
                raise ScheduleError(
                    f"{source}: line 1: unknown column {name!r} (columns: {', '.join(CSV_COLUMNS)})"
                )
        if len(set(columns)) != len(columns):
            twice = next(c for c in columns if columns.count(c) > 1)
            raise ScheduleError(f"{source}: line 1: column {twice!r} given twice")
        if "kind" not in columns:
            raise ScheduleError(f"{source}: line 1: no kind column")
        sites: list[Site] = []
        holidays: dict[str, set[date]] = {}
        shifts: list[Shift] = []
        days_off: list[DayOff] = []
        row_number = 0
        for cells in reader:
            row_number += 1
            line = reader.line_num
            where = f"{source}: row {row_number} (line {line})"
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(columns):
                raise ScheduleError(f"{where}: {len(cells)} cells for {len(columns)} columns")
            fields = {c: v.strip() for c, v in zip(columns, cells, strict=True) if v.strip()}
            kind = fields.pop("kind", "")
            if kind not in _CSV_KEYS:
                raise ScheduleError(f"{where}, kind: {kind!r} is not one of {', '.join(_CSV_KEYS)}")
            _refuse_unknown(where, fields, _CSV_KEYS[kind], kind=kind)
            field = _Fields(where, fields)
            if kind == "site":
                sites.append(_site(field, field.text("name"), frozenset()))
            elif kind == "holiday":
                holidays.setdefault(field.text("site"), set()).add(field.day("date"))
            elif kind == "shift":
                shifts.append(_shift(field))
            else:
                days_off.append(_day_off(field))
    except csv.Error as err:
        raise ScheduleError(f"{source}: line {reader.line_num}: not valid CSV: {err}") from err
    known = {s.name for s in sites}
    for name in holidays:
        if name not in known:
            raise ScheduleError(f"{source}: a holiday names unknown site {name!r}")
    sites = [
        Site(s.name, s.timezone, frozenset(holidays.get(s.name, ()))) if s.name in holidays else s
        for s in sites
    ]
    return _book(source, sites, shifts, days_off)


# --------------------------------------------------------------------- shared
class _Fields:
    """Typed access to one entry's raw fields; errors name the entry and the field."""

    def __init__(self, where: str, raw: Mapping[str, Any]) -> None:
        self.where = where
        self.raw = raw

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] not in ("", None)

    def text(self, key: str) -> str:
        value = self._required(key)
        if not isinstance(value, str) or not value.strip():
            raise ScheduleError(f"{self.where}, {key}: must be a non-empty text, not {value!r}")
        return value.strip()

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def day(self, key: str) -> date:
        return _date(self._required(key), f"{self.where}, {key}")

    def optional_day(self, key: str) -> date | None:
        return self.day(key) if self.has(key) else None

    def clock(self, key: str) -> time:
        value = self._required(key)
        if isinstance(value, time):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
            hours, minutes = (int(part) for part in value.strip().split(":"))
            if hours < 24 and minutes < 60:
                return time(hours, minutes)
        raise ScheduleError(f"{self.where}, {key}: {value!r} is not a time HH:MM")

    def minutes(self, key: str, default: int) -> int:
        if not self.has(key):
            return default
        value = self.raw[key]
        if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ScheduleError(f"{self.where}, {key}: {value!r} is not whole minutes (0 or more)")

    def days(self, key: str) -> frozenset[int]:
        value = self._required(key)
        if isinstance(value, str):
            parts = [p for p in re.split(r"[\s,;]+", value) if p]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            parts = [p for v in value for p in re.split(r"[\s,;]+", v) if p]
        else:
            raise ScheduleError(f"{self.where}, {key}: weekdays such as 'mon-fri', not {value!r}")
        return weekday_set(parts, f"{self.where}, {key}")

    def _required(self, key: str) -> Any:
        if not self.has(key):
            raise ScheduleError(f"{self.where}, {key}: missing")
        return self.raw[key]


def _site(field: _Fields, name: str, holidays: frozenset[date]) -> Site:
    timezone = field.text("timezone")
    try:
        return Site(name, timezone, holidays)
    except ScheduleError as err:
        raise ScheduleError(f"{field.where}, timezone: {err}") from err


def _shift(field: _Fields) -> Shift:
    person = field.optional_text("person")
    team = field.optional_text("team")
    if (person is None) == (team is None):
        raise ScheduleError(f"{field.where}, person/team: give exactly one of person and team")
    return Shift(
        site=field.text("site"),
        weekdays=field.days("days"),
        start=field.clock("start"),
        end=field.clock("end"),
        person_id=person,
        team=team,
        grace_late=field.minutes("grace_late", 0),
        grace_early=field.minutes("grace_early", 0),
        window_before=field.minutes("window_before", DEFAULT_WINDOW_BEFORE),
        window_after=field.minutes("window_after", DEFAULT_WINDOW_AFTER),
        valid_from=field.optional_day("from"),
        valid_until=field.optional_day("until"),
        origin=field.where,
    )


def _day_off(field: _Fields) -> DayOff:
    first = field.day("from")
    last = field.optional_day("until") or first
    if last < first:
        raise ScheduleError(f"{field.where}, until: {last} is before from {first}")
    return DayOff(field.text("person"), first, last, field.optional_text("note") or "")


def shift_from_fields(fields: Mapping[str, Any], where: str) -> Shift:
    """A shift from fields named as in a schedule file (person or team, site, days, start,
    end, grace_late ... from, until): the same checks and messages as a file's entry
    (``the new shift, start: '9am' is not a time HH:MM``)."""
    return _shift(_Fields(where, fields))


def day_off_from_fields(fields: Mapping[str, Any], where: str) -> DayOff:
    """Days off from fields named as in a schedule file (person, from, until, note)."""
    return _day_off(_Fields(where, fields))


def _book(
    source: str, sites: list[Site], shifts: list[Shift], days_off: list[DayOff]
) -> ScheduleBook:
    try:
        return ScheduleBook.build(sites, shifts, days_off)
    except ScheduleError as err:
        message = str(err)
        raise ScheduleError(
            message if message.startswith(source) else f"{source}: {message}"
        ) from err


def _date(value: object, where: str) -> date:
    try:
        if isinstance(value, date) and not isinstance(value, datetime):
            return check_day(value)
        if isinstance(value, str):
            return parse_day(value)
    except ValueError as err:
        raise ScheduleError(f"{where}: {err}") from None
    raise ScheduleError(f"{where}: {value!r} is not a date YYYY-MM-DD")


def _refuse_unknown(
    where: str, fields: Mapping[str, Any], allowed: set[str], kind: str = ""
) -> None:
    for key in fields:
        if key not in allowed:
            what = f"a {kind} row" if kind else "this entry"
            raise ScheduleError(
                f"{where}, {key}: not a field of {what} (fields: {', '.join(sorted(allowed))})"
            )
