"""The report sources read as ``clockface report`` reads them: the database opened by
the report command's one opener (:func:`reports.cli.open_database`: never created, an
older schema brought up to date), read through the open store, and every event's
details read before the store closes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING

from reports.central_source import check_central_file, read_central_database
from reports.cli import Target, open_database
from reports.schedule_store import ScheduleStore
from reports.sources import AsOf, ReportInput, check_kiosk_file, read_kiosk_database

if TYPE_CHECKING:
    from central.store import CentralStore


def read_central(
    database: str | os.PathLike[str],
    first: date | None = None,
    last: date | None = None,
    *,
    as_of: AsOf | None = None,
) -> ReportInput:
    """The central database's people and events (details read, the store closed)."""
    from central.store import CentralStore

    with open_database(Target("central", os.fspath(database))) as store:
        assert isinstance(store, CentralStore)
        read = read_central_database(store, first, last, as_of=as_of)
        read.events.prefetch(range(len(read.events)))
    return read


def read_kiosk(
    database: str | os.PathLike[str],
    first: date | None = None,
    last: date | None = None,
    *,
    as_of: AsOf | None = None,
) -> ReportInput:
    """A kiosk database's people and events (details read, the store closed)."""
    from kiosk.store import KioskStore

    with open_database(Target("kiosk", os.fspath(database))) as store:
        assert isinstance(store, KioskStore)
        read = read_kiosk_database(store, first, last, as_of=as_of)
        read.events.prefetch(range(len(read.events)))
    return read


@contextmanager
def schedules_of(
    kind: str,
    where: str | os.PathLike[str],
    *,
    actor: str | None = None,
    clock: Callable[[], datetime] | None = None,
    busy_timeout_s: float = 5.0,
) -> Iterator[ScheduleStore]:
    """The schedules of a kiosk or central database, its store opened as the schedule
    commands open it (never created; ``actor`` and ``clock`` for the audit log)."""
    from central.store import CentralStore, resolve_database
    from kiosk.store import KioskStore

    if kind == "kiosk":
        path = check_kiosk_file(where)
        with (
            KioskStore.open(
                path, actor=actor, clock=clock, busy_timeout_s=busy_timeout_s, create=False
            ) as kiosk,
            ScheduleStore.on_kiosk(kiosk, clock=clock, busy_timeout_s=busy_timeout_s) as store,
        ):
            yield store
        return
    located = resolve_database(where).path
    if located is not None:
        check_central_file(located)
    with (
        CentralStore.open(os.fspath(where), actor=actor, clock=clock) as central,
        ScheduleStore.on_central(central) as store,
    ):
        yield store


@contextmanager
def central_store(database: str | os.PathLike[str]) -> Iterator[CentralStore]:
    """The central database opened as ``clockface report --central-db`` opens it."""
    from central.store import CentralStore

    with open_database(Target("central", os.fspath(database))) as store:
        assert isinstance(store, CentralStore)
        yield store
