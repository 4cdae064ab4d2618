"""Schedules stored with the roster: a kiosk's SQLite file, the central database on SQLite
and on PostgreSQL (a throwaway cluster, tests/helpers/postgres.py; skipped when PostgreSQL is not
installed unless CLOCKFACE_REQUIRE_POSTGRES=1), through the same tests."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from central.store import CentralStore
from clockface.days import FIRST_DAY, LAST_DAY
from clockface.errors import (
    ReportError,
    ScheduleError,
    StoreError,
    UnknownPersonError,
)
from kiosk import migrations
from kiosk.store import KioskStore
from reports.model import PersonInfo
from reports.schedule_files import load_schedules, parse_toml
from reports.schedule_store import (
    Holiday,
    ScheduleStore,
    StoredDayOff,
    StoredSchedules,
    StoredShift,
    StoredSite,
    day_off_from_fields,
    days_text,
    shift_from_fields,
    to_toml,
)
from reports.schedules import DayOff, ScheduleBook, Shift
from tests.helpers.fakes import FakeClock
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.report_stores import schedules_of

FIXTURE = Path(__file__).parent / "fixtures" / "reports" / "schedules.toml"
PEOPLE = (("ada", "Ada Lovelace", "nights"), ("bob", "Bob Marley", "days"))
TABLES = ("schedule_sites", "holidays", "shift_patterns", "days_off", "audit")


@dataclasses.dataclass(frozen=True)
class Target:
    kind: str  # kiosk, central
    where: str  # a path or a URL
    url: str  # SQLAlchemy URL, for looking at the tables directly

    def open(self) -> AbstractContextManager[ScheduleStore]:
        return schedules_of(self.kind, self.where, actor="hr", clock=FakeClock())

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the schedule tables and the audit log."""
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return {
                    t: sorted(tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t}")).all())
                    for t in TABLES
                }
        finally:
            engine.dispose()


@pytest.fixture(params=["kiosk", "central-sqlite", "central-postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """A fresh database of each kind, with two people in its roster."""
    if request.param == "kiosk":
        path = tmp_path / "kiosk.db"
        with KioskStore.open(path, actor="setup") as kiosk:
            for person in PEOPLE:
                kiosk.add_person(*person)
        return Target("kiosk", str(path), f"sqlite:///{path}")
    if request.param == "central-sqlite":
        path = tmp_path / "central.db"
        where, url = str(path), f"sqlite:///{path}"
    else:
        where = url = request.getfixturevalue("postgres_url")
    with CentralStore.open(where, actor="setup") as central:
        for person in PEOPLE:
            central.add_person(*person)
    return Target("central", where, url)


@pytest.fixture
def store(target: Target) -> Iterator[ScheduleStore]:
    with target.open() as opened:
        yield opened


def content(book: ScheduleBook) -> tuple[Any, ...]:
    """What a book says, whatever the shifts' origins."""
    return (
        book.sites,
        tuple(dataclasses.replace(s, origin="") for s in book.shifts),
        book.days_off,
    )


def shift(**fields: Any) -> Shift:
    values: dict[str, Any] = {
        "site": "berlin",
        "weekdays": frozenset(range(5)),
        "start": time(9),
        "end": time(17),
        "person_id": "ada",
    }
    values.update(fields)
    return Shift(**values)


def audit_actions(target: Target) -> list[tuple[str, str, str, str | None]]:
    """(actor, action, subject, detail) of every schedule entry, oldest first."""
    if target.kind == "kiosk":
        with KioskStore.open(target.where) as kiosk:
            return [
                (a.actor, a.action, a.person_id, a.detail)
                for a in kiosk.audit_log()
                if a.actor != "setup"
            ]
    with CentralStore.open(target.where) as central:
        return [
            (a.actor, a.action, a.subject, a.detail)
            for a in central.audit()
            if a.kind == "schedule"
        ]


# --------------------------------------------------------------------- reading
def test_nothing_stored_is_an_empty_book(store: ScheduleStore) -> None:
    assert store.stored().empty
    book = store.book()
    assert book.sites == {} and book.shifts == () and book.days_off == ()
    assert store.person("ada") == PersonInfo("ada", "Ada Lovelace", "nights")
    with pytest.raises(UnknownPersonError, match="no person 'zed' in the roster of"):
        store.person("zed")
    assert store.known_team("days") and not store.known_team("office")


def test_import_stores_the_files_book_and_exports_it_back(
    target: Target, store: ScheduleStore
) -> None:
    book = load_schedules(FIXTURE)
    outcome = store.import_book(book, replace=False, source="schedules.toml")
    assert outcome.replaced.empty
    assert outcome.stored.counts() == "2 sites, 2 holidays, 6 shifts, 1 day off"
    stored = store.book()
    assert content(stored) == content(book)
    assert [s.origin for s in stored.shifts] == [f"shift #{n}" for n in range(1, 7)]
    first = store.stored().shifts[0]
    assert first.note == f"imported from {FIXTURE}: shifts #1 (line 13)"
    # The export reads back to the same book, and into another database too.
    text = store.export_toml()
    assert content(parse_toml(text)) == content(book)
    assert audit_actions(target) == [
        ("hr", "schedules_imported", "schedules",
         "2 sites, 2 holidays, 6 shifts, 1 day off from schedules.toml"),
    ]  # fmt: skip


def test_every_write_is_stored_checked_and_audited(target: Target, store: ScheduleStore) -> None:
    assert store.add_site("berlin", "Europe/Berlin") == StoredSite("berlin", "Europe/Berlin")
    store.add_site("paris", "Europe/Paris")
    store.add_holiday("berlin", date(2024, 10, 3), "  German Unity Day ")
    store.add_holiday("berlin", date(2024, 12, 25))
    nights = store.add_shift(shift(team="nights", person_id=None, start=time(22), end=time(6)))
    ada = store.add_shift(shift(site="paris", grace_late=5, valid_from=date(2024, 1, 1)))
    off = store.add_day_off(DayOff("ada", date(2024, 7, 1), date(2024, 7, 14), "sick leave"))
    assert (nights, ada, off) == (1, 2, 1)
    stored = store.stored()
    assert stored.sites[0].holidays == (
        Holiday(date(2024, 10, 3), "German Unity Day"),
        Holiday(date(2024, 12, 25), ""),
    )
    book = store.book()
    ada_info = store.person("ada")
    assert book.plan(ada_info, date(2024, 7, 15)).shift == dataclasses.replace(
        shift(site="paris", grace_late=5, valid_from=date(2024, 1, 1)), origin="shift #2"
    )
    assert book.plan(ada_info, date(2024, 7, 2)).status == "day_off"
    night = book.plan(PersonInfo("x", "X", "nights"), date(2024, 10, 3))
    assert night.status == "holiday"

    assert store.set_site_timezone("paris", "Europe/Brussels").timezone == "Europe/Brussels"
    assert store.remove_holiday("berlin", date(2024, 12, 25)) == Holiday(date(2024, 12, 25))
    assert store.remove_shift(ada).shift.site == "paris"
    assert store.remove_day_off(off).day_off.note == "sick leave"
    assert store.remove_site("paris") == 0
    assert [s.name for s in store.stored().sites] == ["berlin"]
    entries = audit_actions(target)
    assert [(e[1], e[2]) for e in entries] == [
        ("site_added", "site:berlin"),
        ("site_added", "site:paris"),
        ("holiday_added", "site:berlin"),
        ("holiday_added", "site:berlin"),
        ("shift_added", "team:nights"),
        ("shift_added", "person:ada"),
        ("day_off_added", "person:ada"),
        ("site_timezone_set", "site:paris"),
        ("holiday_removed", "site:berlin"),
        ("shift_removed", "person:ada"),
        ("day_off_removed", "person:ada"),
        ("site_removed", "site:paris"),
    ]
    assert {e[0] for e in entries} == {"hr"}
    details = [e[3] for e in entries]
    assert details[4] == "#1 mon-fri 22:00-06:00 at berlin"
    assert details[6] == "#1 2024-07-01 to 2024-07-14"
    assert details[7] == "timezone Europe/Brussels (was Europe/Paris)"
    assert not any("sick" in (d or "") for d in details)  # notes stay out of the audit log


def test_removing_a_site_takes_its_holidays(target: Target, store: ScheduleStore) -> None:
    store.add_site("berlin", "Europe/Berlin")
    store.add_holiday("berlin", date(2024, 10, 3))
    store.add_holiday("berlin", date(2024, 12, 25))
    assert store.remove_site("berlin") == 2
    rows = target.rows()
    assert rows["holidays"] == [] and rows["schedule_sites"] == []


REFUSALS: list[tuple[str, Callable[[ScheduleStore], object], str]] = [
    ("duplicate site", lambda s: s.add_site("berlin", "Europe/Berlin"),
     "site 'berlin' is already stored in"),
    ("bad zone", lambda s: s.add_site("mars", "Mars/Base"), "unknown time zone 'Mars/Base'"),
    ("holiday in 9999", lambda s: s.add_holiday("berlin", date(9999, 12, 31)),
     "9999-12-31 is outside the dates clockface supports"),
    ("shift until 9999", lambda s: s.add_shift(shift(valid_until=date(9999, 12, 31))),
     "until: 9999-12-31 is outside"),
    ("day off in 0001", lambda s: s.add_day_off(DayOff("ada", date(1, 1, 1), date(1, 1, 2))),
     "0001-01-01 is outside"),
    ("no zone", lambda s: s.add_site("rome"), "give its IANA time zone (--timezone)"),
    ("spaces", lambda s: s.add_site(" rome", "Europe/Rome"), "must not start or end with spaces"),
    ("long name", lambda s: s.add_site("x" * 101, "Europe/Rome"), "longer than 100"),
    ("zone of unknown site", lambda s: s.set_site_timezone("rome", "Europe/Rome"),
     "no site 'rome' in"),
    ("site in use", lambda s: s.remove_site("berlin"), "site 'berlin' is used by 1 shift (#1)"),
    ("remove unknown site", lambda s: s.remove_site("rome"), "no site 'rome' in"),
    ("holiday twice", lambda s: s.add_holiday("berlin", date(2024, 10, 3)),
     "site 'berlin' already has a holiday on 2024-10-03"),
    ("holiday at unknown site", lambda s: s.add_holiday("rome", date(2024, 10, 3)),
     "no site 'rome' in"),
    ("holiday name on two lines", lambda s: s.add_holiday("berlin", date(2024, 1, 1), "a\nb"),
     "one line of text"),
    ("remove absent holiday", lambda s: s.remove_holiday("berlin", date(2024, 1, 1)),
     "site 'berlin' has no holiday on 2024-01-01"),
    ("overlap", lambda s: s.add_shift(shift(weekdays=frozenset({4, 5}))),
     "the new shift: person 'ada' already has a shift on these weekdays and dates (shift #1)"),
    ("unknown site", lambda s: s.add_shift(shift(person_id="bob", site="rome")),
     "the new shift: unknown site 'rome' (sites: berlin)"),
    ("person id with spaces", lambda s: s.add_shift(shift(person_id="bob ")),
     "must not start or end with spaces"),
    ("remove unknown shift", lambda s: s.remove_shift(99), "no shift #99 in"),
    ("day off of nobody", lambda s: s.add_day_off(DayOff("", date(2024, 1, 1), date(2024, 1, 1))),
     "a day off's person id must be a non-empty text"),
    ("remove unknown day off", lambda s: s.remove_day_off(7), "no day off #7 in"),
    ("import over stored", lambda s: s.import_book(load_schedules(FIXTURE), replace=False),
     "schedules are already stored in"),
    ("import a bad book", lambda s: s.import_book(
        ScheduleBook.build([], [], [DayOff("x" * 201, date(2024, 1, 1), date(2024, 1, 1))]),
        replace=True,
    ), "longer than 200 characters"),
]  # fmt: skip


def test_a_refused_write_changes_nothing(target: Target, store: ScheduleStore) -> None:
    """Each refusal in turn (one database for all: each must leave it as it was)."""
    store.add_site("berlin", "Europe/Berlin")
    store.add_holiday("berlin", date(2024, 10, 3))
    store.add_shift(shift())
    store.add_day_off(DayOff("ada", date(2024, 7, 1), date(2024, 7, 1)))
    before = target.rows()
    assert len(before["audit"]) == 2 + 4  # the roster's two, and the four above
    for label, write, words in REFUSALS:
        with pytest.raises(ScheduleError) as caught:
            write(store)
        message = str(caught.value)
        assert words in message and "\n" not in message, (label, message)
        assert target.rows() == before, label


def test_import_with_replace_swaps_everything_in_one_go(
    target: Target, store: ScheduleStore
) -> None:
    store.add_site("chicago", "America/Chicago")
    store.add_holiday("chicago", date(2024, 7, 4), "Independence Day")
    store.add_holiday("chicago", date(2024, 12, 25), "Christmas")
    store.add_site("rome", "Europe/Rome")
    store.add_shift(shift(site="rome"))
    book = load_schedules(FIXTURE)
    dry = store.import_book(book, replace=True, dry_run=True)
    assert dry.stored.counts() == "2 sites, 2 holidays, 6 shifts, 1 day off"
    assert dry.replaced.counts() == "2 sites, 2 holidays, 1 shift, 0 days off"
    before = target.rows()
    assert store.stored() == dry.replaced
    assert target.rows() == before  # a dry run keeps nothing, not even an audit entry
    done = store.import_book(book, replace=True, source="new.toml")
    assert done.stored == store.stored()
    assert content(done.stored.book()) == content(dry.stored.book())  # PostgreSQL: other ids
    assert content(store.book()) == content(book)
    chicago = next(s for s in store.stored().sites if s.name == "chicago")
    assert chicago.holidays == (Holiday(date(2024, 7, 4), "Independence Day"),)
    actions = [(e[1], e[3]) for e in audit_actions(target)]
    assert actions[-1] == (
        "schedules_replaced",
        "2 sites, 2 holidays, 6 shifts, 1 day off from new.toml",
    )


def test_stored_rows_that_do_not_make_a_book_are_one_line(target: Target) -> None:
    with target.open() as store:
        store.add_site("berlin", "Europe/Berlin")
    engine = sa.create_engine(target.url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO shift_patterns (person_id, site, weekdays, start_time, end_time,"
                " grace_late, grace_early, window_before, window_after, note, created_utc)"
                " VALUES ('ada', 'berlin', 'mon,fri', '25:00', '06:00', 0, 0, 0, 0, '',"
                " '2024-01-01T00:00:00.000000Z')"
            )
        )
    engine.dispose()
    with target.open() as store, pytest.raises(ScheduleError, match="shift #1: '25:00' is not"):
        store.book()


# --------------------------------------------------------------------- central sites
@pytest.fixture
def central_target(tmp_path: Path) -> Target:
    path = tmp_path / "central.db"
    with CentralStore.open(path, actor="setup") as central:
        central.add_site("HQ", "Europe/Paris")
    return Target("central", str(path), f"sqlite:///{path}")


def test_a_central_site_lends_its_zone_and_keeps_it(central_target: Target) -> None:
    with central_target.open() as store:
        assert store.add_site("HQ").timezone == "Europe/Paris"
        before = central_target.rows()
        with pytest.raises(ScheduleError, match="is in Europe/Paris, not Europe/Berlin"):
            store.set_site_timezone("HQ", "Europe/Berlin")
        with pytest.raises(ScheduleError, match="no central site of that name"):
            store.add_site("annex")
        toml = '[sites.HQ]\ntimezone = "Europe/London"\n'
        with pytest.raises(ScheduleError, match="site 'HQ': the central site of that name"):
            store.import_book(parse_toml(toml), replace=True)
        assert central_target.rows() == before
        store.remove_site("HQ")
        with pytest.raises(ScheduleError, match="is in Europe/Paris, not Asia/Tokyo"):
            store.add_site("HQ", "Asia/Tokyo")
        assert store.add_site("HQ", "Europe/Paris").timezone == "Europe/Paris"


# --------------------------------------------------------------------- opening
def test_opening_never_creates_a_database(tmp_path: Path) -> None:
    with (
        pytest.raises(ReportError, match=r"kiosk database '.*missing.db': no such file"),
        schedules_of("kiosk", tmp_path / "missing.db"),
    ):
        pass
    with pytest.raises(ReportError, match="a folder"), schedules_of("kiosk", tmp_path):
        pass
    with (
        pytest.raises(ReportError, match=r"central database '.*nope.db': no such file"),
        schedules_of("central", tmp_path / "nope.db"),
    ):
        pass
    assert list(tmp_path.iterdir()) == []
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    conn.close()
    with pytest.raises(StoreError, match="some other application"), schedules_of("kiosk", other):
        pass


def test_a_kiosk_database_is_migrated_on_open(tmp_path: Path) -> None:
    """A kiosk database of schema version 2 gets its schedule tables when opened."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(
        Database(conn),
        where=str(path),
        applied_utc="2024-01-01T00:00:00.000000Z",
        steps=migrations.MIGRATIONS[:2],
    )
    conn.execute("INSERT INTO settings (key, value) VALUES ('kiosk_id', 'k1')")
    conn.close()
    with schedules_of("kiosk", path, actor="hr") as store:
        store.add_site("berlin", "Europe/Berlin")
        assert [s.name for s in store.stored().sites] == ["berlin"]


def test_a_locked_kiosk_database_is_one_line_and_reads_go_on(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    KioskStore.open(path).close()
    with schedules_of("kiosk", path, busy_timeout_s=0.1) as store:
        store.add_site("berlin", "Europe/Berlin")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process writing, too long
        try:
            assert [s.name for s in store.stored().sites] == ["berlin"]
            with pytest.raises(StoreError) as caught:
                store.add_site("paris", "Europe/Paris")
            assert type(caught.value) is StoreError
            assert str(caught.value) == (
                f"{path}: adding a site failed: database is locked; another process holds "
                "the database too long"
            )
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        store.add_site("paris", "Europe/Paris")
        assert [s.name for s in store.stored().sites] == ["berlin", "paris"]


# --------------------------------------------------------------------- values from text
def test_text_fields_read_as_a_schedule_file_reads_them() -> None:
    made = shift_from_fields(
        {"team": "nights", "site": "berlin", "days": "sat sun", "start": "22:00", "end": "6:00",
         "grace_late": "5", "from": "2024-03-01"}
    )  # fmt: skip
    assert made.weekdays == frozenset({5, 6}) and made.end == time(6)
    assert made.grace_late == 5 and made.valid_from == date(2024, 3, 1)
    with pytest.raises(ScheduleError, match=r"^the new shift, start: '9am' is not a time HH:MM$"):
        shift_from_fields({"person": "a", "site": "b", "days": "mon", "start": "9am", "end": "5"})
    with pytest.raises(ScheduleError, match="the new shift, days: 'fun' is not a weekday"):
        shift_from_fields({"person": "a", "site": "b", "days": "fun", "start": "9:00", "end": "5"})
    off = day_off_from_fields({"person": "ada", "from": "2024-07-01"})
    assert off == DayOff("ada", date(2024, 7, 1), date(2024, 7, 1))
    with pytest.raises(ScheduleError, match="the new day off, until: 2024-06-01 is before"):
        day_off_from_fields({"person": "ada", "from": "2024-07-01", "until": "2024-06-01"})


@pytest.mark.parametrize(
    ("days", "text"),
    [({0, 1, 2, 3, 4}, "mon-fri"), (set(range(7)), "mon-sun"), ({5, 6}, "sat,sun"),
     ({0, 2, 3, 4, 6}, "mon,wed-fri,sun"), ({1}, "tue")],
)  # fmt: skip
def test_days_text(days: set[int], text: str) -> None:
    assert days_text(days) == text


# --------------------------------------------------------------------- TOML round trip
ZONES = ("UTC", "Europe/Berlin", "America/Chicago", "Asia/Kolkata", "Australia/Lord_Howe")
_words = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=30
).filter(lambda s: s == s.strip() and s.strip() != "")
_days = st.dates(min_value=FIRST_DAY, max_value=LAST_DAY)  # the dates clockface supports
_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))


@st.composite
def schedules(draw: st.DrawFn) -> StoredSchedules:
    names = draw(st.lists(_words, min_size=1, max_size=4, unique=True))
    sites = tuple(
        StoredSite(
            name,
            draw(st.sampled_from(ZONES)),
            tuple(
                Holiday(day, draw(st.sampled_from(["", "New Year", 'a "quoted" # name'])))
                for day in sorted(draw(st.sets(_days, max_size=3)))
            ),
        )
        for name in sorted(names)
    )
    shifts = []
    for n, who in enumerate(draw(st.lists(_words, max_size=5, unique=True)), start=1):
        start, end = draw(_times), draw(_times)
        if start == end:
            continue
        first = draw(st.none() | _days)
        last = draw(st.none() | _days)
        if first is not None and last is not None and last < first:
            first, last = last, first
        team = draw(st.booleans())
        length = (end.hour * 60 + end.minute - start.hour * 60 - start.minute) % 1440
        pattern = Shift(
            site=draw(st.sampled_from(names)),
            weekdays=frozenset(draw(st.sets(st.integers(0, 6), min_size=1))),
            start=start,
            end=end,
            person_id=None if team else who,
            team=who if team else None,
            grace_late=draw(st.integers(0, length)),
            grace_early=draw(st.integers(0, length)),
            window_before=draw(st.integers(0, 720)),
            window_after=draw(st.integers(0, 720)),
            valid_from=first,
            valid_until=last,
        )
        shifts.append(StoredShift(n, pattern, draw(st.sampled_from(["", "night\nshift"]))))
    days_off = []
    for n in range(1, draw(st.integers(0, 3)) + 1):
        a, b = sorted((draw(_days), draw(_days)))
        days_off.append(StoredDayOff(n, DayOff(draw(_words), a, b, draw(_words | st.just("")))))
    return StoredSchedules(sites, tuple(shifts), tuple(days_off))


@settings(max_examples=150, deadline=None)
@given(schedules())
def test_exported_toml_reads_back_to_the_same_book(stored: StoredSchedules) -> None:
    assert content(parse_toml(to_toml(stored, source="db\n# x"))) == content(stored.book())
