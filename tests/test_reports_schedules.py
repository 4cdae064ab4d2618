"""Schedules: which shift applies when, and schedule files in TOML and CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from clockface.errors import InputFileError, ScheduleError
from reports.model import PersonInfo
from reports.schedule_files import load_schedules, parse_csv, parse_toml
from reports.schedules import DayOff, ScheduleBook, Shift, Site, weekday_set
from tests.helpers.scenario import FIXTURES

BERLIN = Site("berlin", "Europe/Berlin", frozenset({date(2024, 12, 25)}))
ADA = PersonInfo("ada", "Ada", "ops")


def shift(**fields: object) -> Shift:
    base: dict[str, object] = {
        "site": "berlin",
        "weekdays": frozenset(range(5)),
        "start": time(9),
        "end": time(17),
        "team": "ops",
    }
    base.update(fields)
    return Shift(**base)  # type: ignore[arg-type]


def test_team_pattern_applies_on_its_weekdays() -> None:
    book = ScheduleBook.build([BERLIN], [shift()])
    monday = book.plan(ADA, date(2024, 12, 23))
    assert monday.status == "shift" and monday.occurrence is not None
    assert monday.occurrence.start == datetime(2024, 12, 23, 8, 0, tzinfo=UTC)  # CET
    assert book.plan(ADA, date(2024, 12, 21)).status == "rest"  # Saturday
    assert book.plan(ADA, date(2024, 12, 25)).status == "holiday"
    assert book.plan(PersonInfo("bo", "Bo", None), date(2024, 12, 23)).status == "no_schedule"
    assert book.plan(PersonInfo("cy", "Cy", "sales"), date(2024, 12, 23)).status == "no_schedule"


def test_person_pattern_wins_for_the_whole_week() -> None:
    mine = shift(team=None, person_id="ada", weekdays=frozenset({0, 1, 2, 3}), start=time(7))
    book = ScheduleBook.build([BERLIN], [shift(), mine])
    plan = book.plan(ADA, date(2024, 12, 23))
    assert plan.shift is mine
    # Friday: Ada's own pattern has no Friday; the team's Friday does not apply to her.
    assert book.plan(ADA, date(2024, 12, 27)).status == "rest"
    assert book.plan(PersonInfo("bo", "Bo", "ops"), date(2024, 12, 27)).status == "shift"


def test_effective_dates_and_days_off() -> None:
    mine = shift(team=None, person_id="ada", valid_from=date(2024, 6, 1))
    book = ScheduleBook.build(
        [BERLIN], [shift(start=time(8)), mine], [DayOff("ada", date(2024, 6, 3), date(2024, 6, 4))]
    )
    assert book.plan(ADA, date(2024, 5, 31)).shift == shift(start=time(8))  # the team's
    assert book.plan(ADA, date(2024, 6, 3)).status == "day_off"
    assert book.plan(ADA, date(2024, 6, 4)).status == "day_off"
    assert book.plan(ADA, date(2024, 6, 5)).shift is mine


def test_night_shift_belongs_to_its_start_day_and_follows_dst() -> None:
    night = shift(weekdays=frozenset(range(7)), start=time(22), end=time(6))
    book = ScheduleBook.build([BERLIN], [night])
    spring = book.plan(ADA, date(2024, 3, 30)).occurrence
    fall = book.plan(ADA, date(2024, 10, 26)).occurrence
    plain = book.plan(ADA, date(2024, 6, 1)).occurrence
    assert spring is not None and fall is not None and plain is not None
    assert (spring.scheduled_minutes, fall.scheduled_minutes, plain.scheduled_minutes) == (
        420,
        540,
        480,
    )
    assert spring.local(spring.end) == datetime(2024, 3, 31, 6, 0)


def test_a_start_in_the_spring_gap_moves_forward() -> None:
    gap = shift(weekdays=frozenset(range(7)), start=time(2, 30), end=time(10))
    occurrence = ScheduleBook.build([BERLIN], [gap]).plan(ADA, date(2024, 3, 31)).occurrence
    assert occurrence is not None
    assert occurrence.local(occurrence.start) == datetime(2024, 3, 31, 3, 30)
    assert occurrence.scheduled_minutes == 6 * 60 + 30


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"team": "ops", "person_id": "ada"}, "exactly one of person and team"),
        ({"weekdays": frozenset()}, "weekdays"),
        ({"start": time(9), "end": time(9)}, "start and end are both 09:00"),
        ({"grace_late": 9 * 60}, "grace_late must be whole minutes from 0 to 480"),
        ({"window_before": -1}, "window_before"),
        ({"valid_from": date(2024, 2, 1), "valid_until": date(2024, 1, 1)}, "is after until"),
        ({"start": time(9, 0, 30)}, "local time HH:MM"),
    ],
)
def test_impossible_shifts_are_refused(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ScheduleError, match=words):
        shift(**fields)


def test_book_refuses_unknown_site_and_overlaps() -> None:
    with pytest.raises(ScheduleError, match="unknown site 'paris'"):
        ScheduleBook.build([BERLIN], [shift(site="paris")])
    with pytest.raises(ScheduleError, match="team 'ops' already has a shift"):
        ScheduleBook.build([BERLIN], [shift(), shift(weekdays=frozenset({4, 5}))])
    # Same weekdays, dates that do not overlap: fine.
    ScheduleBook.build(
        [BERLIN],
        [shift(valid_until=date(2024, 1, 31)), shift(valid_from=date(2024, 2, 1))],
    )
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        Site("mars", "Mars/Olympus")


def test_weekday_sets() -> None:
    assert weekday_set(["mon-fri"], "x") == frozenset(range(5))
    assert weekday_set(["Sat", "sunday"], "x") == frozenset({5, 6})
    with pytest.raises(ScheduleError, match="weekday range 'fri-mon' runs backwards"):
        weekday_set(["fri-mon"], "x")
    with pytest.raises(ScheduleError, match="'funday' is not a weekday"):
        weekday_set(["funday"], "x")


# --------------------------------------------------------------------- files
def test_the_golden_toml_loads() -> None:
    book = load_schedules(FIXTURES / "schedules.toml")
    assert set(book.sites) == {"berlin", "chicago"}
    assert len(book.shifts) == 6 and len(book.days_off) == 1
    assert book.sites["chicago"].holidays == frozenset({date(2024, 7, 4)})


CSV_TEXT = """kind,name,timezone,site,team,person,days,start,end,grace_late,from,until,date,note
site,berlin,Europe/Berlin,,,,,,,,,,,
holiday,,,berlin,,,,,,,,,2024-12-25,Christmas
shift,,,berlin,ops,,mon-fri,09:00,17:00,5,,,,
shift,,,berlin,,ada,"mon,tue",07:00,15:00,,2024-06-01,,,
day_off,,,,,ada,,,,,2024-06-03,2024-06-04,,leave
"""


def test_csv_and_toml_say_the_same() -> None:
    toml_text = """
[sites.berlin]
timezone = "Europe/Berlin"
holidays = [2024-12-25]

[[shifts]]
team = "ops"
site = "berlin"
days = "mon-fri"
start = "09:00"
end = "17:00"
grace_late = 5

[[shifts]]
person = "ada"
site = "berlin"
days = ["mon", "tue"]
start = 07:00:00
end = "15:00"
from = 2024-06-01

[[days_off]]
person = "ada"
from = 2024-06-03
until = "2024-06-04"
note = "leave"
"""
    from_csv = parse_csv(CSV_TEXT)
    from_toml = parse_toml(toml_text)
    assert from_csv.sites == from_toml.sites
    strip = [
        [
            (s.person_id, s.team, s.weekdays, s.start, s.end, s.grace_late, s.valid_from)
            for s in b.shifts
        ]
        for b in (from_csv, from_toml)
    ]
    assert strip[0] == strip[1]
    assert from_csv.days_off == from_toml.days_off
    for day in (date(2024, 6, 3), date(2024, 6, 4), date(2024, 6, 5), date(2024, 12, 25)):
        assert from_csv.plan(ADA, day).status == from_toml.plan(ADA, day).status


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("kind,team,start\nshift,ops,9am\n", "s.csv: row 1 (line 2), site: missing"),
        (
            "kind,site,team,days,start,end\nshift,b,ops,mon,9am,17:00\n",
            "s.csv: row 1 (line 2), start: '9am' is not a time HH:MM",
        ),
        ("kind,colour\nsite,red\n", "s.csv: line 1: unknown column 'colour'"),
        ("name\nberlin\n", "s.csv: line 1: no kind column"),
        ("kind,name\nsite,berlin,extra\n", "row 1 (line 2): 3 cells for 2 columns"),
        ("kind,name\nshop,berlin\n", "row 1 (line 2), kind: 'shop' is not one of"),
        (
            "kind,name,timezone\nsite,berlin,Europe/Berlin\nsite,b2,Nowhere/Land\n",
            "row 2 (line 3), timezone: site 'b2': unknown time zone 'Nowhere/Land'",
        ),
        (
            "kind,name,timezone,days\nsite,berlin,Europe/Berlin,mon\n",
            "row 1 (line 2), days: not a field of a site row",
        ),
        (
            "kind,site,team,days,start,end,grace_late\nshift,b,ops,mon,09:00,17:00,five\n",
            "grace_late: 'five' is not whole minutes",
        ),
        (
            "kind,person,from\nday_off,ada,2024-13-01\n",
            "row 1 (line 2), from: '2024-13-01' is not a date YYYY-MM-DD",
        ),
        ("kind,site,date\nholiday,b,2024-01-01\n", "a holiday names unknown site 'b'"),
        ("", "empty file"),
    ],
)
def test_csv_errors_name_the_row_and_field(text: str, words: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_csv(text, source="s.csv")
    assert words in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "[sites.b]\ntimezone = 'Europe/Berlin'\n[[shifts]]\nsite = 'b'\nteam = 'x'\n",
            "s.toml: shifts #1 (line 3), days: missing",
        ),
        (
            "[sites.b]\ntimezone = 'Europe/Berlin'\n\n[[shifts]]\nteam='x'\nsite='b'\ndays='mon'\n"
            "start='09:00'\nend='17:00'\n\n[[shifts]]\nteam='y'\nsite='b'\ndays='mon'\n"
            "start='09:00'\nend='25:00'\n",
            "s.toml: shifts #2 (line 11), end: '25:00' is not a time HH:MM",
        ),
        ("[sites.b]\ntimezone = 'Moon/Base'\n", "s.toml: site 'b' (line 1), timezone"),
        ("[sites.b]\ntimezone = 'UTC'\ncolour = 1\n", "site 'b' (line 1), colour: not a field"),
        ("[people]\n", "unknown section 'people'"),
        ("[[days_off]]\nperson = 'a'\nfrom = 2024-02-30\n", "not valid TOML"),
        (
            "[[days_off]]\nperson = 'a'\nfrom = 2024-02-03\nuntil = 2024-02-01\n",
            "until: 2024-02-01 is before",
        ),
        (
            "[sites.b]\ntimezone='UTC'\n[[shifts]]\nteam='x'\nsite='b'\ndays='mon-fri'\nstart='9:00'\n"
            "end='17:00'\n[[shifts]]\nteam='x'\nsite='b'\ndays='fri'\nstart='9:00'\nend='17:00'\n",
            "s.toml: shifts #2 (line 9): team 'x' already has a shift",
        ),
    ],
)
def test_toml_errors_name_the_entry_line_and_field(text: str, words: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_toml(text, source="s.toml")
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_load_schedules_refuses_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match=r"must end in \.toml or \.csv"):
        load_schedules(tmp_path / "s.yaml")
    with pytest.raises(InputFileError, match="no such file"):
        load_schedules(tmp_path / "missing.toml")
    binary = tmp_path / "s.csv"
    binary.write_bytes(b"kind\n\xff\xfe\n")
    with pytest.raises(InputFileError, match="not UTF-8"):
        load_schedules(binary)
    good = tmp_path / "good.csv"
    good.write_text(CSV_TEXT, encoding="utf-8")
    assert set(load_schedules(good).sites) == {"berlin"}
