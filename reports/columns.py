"""Attendance events as columns: what a report reads, without one Python object per event.

A year of a thousand people is half a million events. Made into
:class:`~reports.model.AttendanceEvent` objects one by one, they take seconds before any
report logic runs; as a few numpy arrays (who, in or out, when, clock synchronised) they
take milliseconds, and :mod:`reports.compute` works on the arrays. An event becomes an
object only when a report shows it (an anomaly, a shift someone asks for):
:meth:`EventColumns.event`.

The text columns a report rarely needs (event id, time zone, kiosk) are *details*, read
through an :class:`EventDetails` callable: from lists when the events were objects or
rows already, or later, for the few events that need them, from the database
(:mod:`reports.sources`).

Times are whole microseconds since 1970-01-01 UTC (int64), the resolution of
``datetime``: every comparison and difference a report makes is exact integer
arithmetic on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from clockface.errors import ReportError
from reports.model import AttendanceEvent

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MICROSECOND = timedelta(microseconds=1)
MINUTE_US = 60_000_000
DAY_US = 86_400 * 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ISO_WIDTH = len("2024-05-01T07:57:03.120000Z")
"""Stored UTC times are fixed-width text: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""

Detail = tuple[str, str, str | None]
"""An event's (event_id, tz, kiosk_id)."""


class EventDetails(Protocol):
    """The details of some events, by index, in the order asked."""

    def __call__(self, indices: Sequence[int]) -> Sequence[Detail]: ...


def micros(moment: datetime) -> int:
    """A timezone-aware instant as microseconds since the epoch."""
    return (moment - EPOCH) // MICROSECOND


def instant(us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=int(us))


class EventColumns:
    """Events as parallel columns; index ``i`` is one event.

    ``person_id[i]`` the person, ``inward[i]`` True for "in", ``utc_us[i]`` the instant,
    ``synced[i]`` 1 / 0 whether the kiosk clock was synchronised (-1: not known).
    """

    def __init__(
        self,
        person_id: Sequence[str],
        inward: npt.ArrayLike,
        utc_us: npt.ArrayLike,
        synced: npt.ArrayLike,
        details: EventDetails,
        *,
        objects: Sequence[AttendanceEvent] | None = None,
    ) -> None:
        self.person_id = person_id
        self.inward: BoolArray = np.asarray(inward, dtype=np.bool_)
        self.utc_us: IntArray = np.asarray(utc_us, dtype=np.int64)
        self.synced: npt.NDArray[np.int8] = np.asarray(synced, dtype=np.int8)
        n = len(person_id)
        if not len(self.inward) == len(self.utc_us) == len(self.synced) == n:
            raise ReportError("event columns of different lengths")
        self._details = details
        self._known: dict[int, Detail] = {}
        self._made: dict[int, AttendanceEvent] = {}
        self._objects = objects
        self._codes: tuple[npt.NDArray[np.intp], list[str]] | None = None

    @classmethod
    def from_events(cls, events: Iterable[AttendanceEvent]) -> EventColumns:
        """Columns over event objects; :meth:`event` gives back the very same objects."""
        objects = list(events)
        return cls(
            [e.person_id for e in objects],
            [e.direction == "in" for e in objects],
            [micros(e.utc) for e in objects],
            [-1 if e.clock_synced is None else int(e.clock_synced) for e in objects],
            lambda indices: [
                (objects[i].event_id, objects[i].tz, objects[i].kiosk_id) for i in indices
            ],
            objects=objects,
        )

    def __len__(self) -> int:
        return len(self.person_id)

    def __iter__(self) -> Iterator[AttendanceEvent]:
        self.prefetch(range(len(self)))
        return (self.event(i) for i in range(len(self)))

    def person_codes(self) -> tuple[npt.NDArray[np.intp], list[str]]:
        """Each event's person as a number, and the person ids those numbers stand for."""
        if self._codes is None:
            ids = list(dict.fromkeys(self.person_id))  # distinct, in order of appearance
            numbers = {pid: n for n, pid in enumerate(ids)}
            codes = np.fromiter(
                map(numbers.__getitem__, self.person_id), dtype=np.intp, count=len(self)
            )
            self._codes = codes, ids
        return self._codes

    def prefetch(self, indices: Iterable[int]) -> None:
        """Read the details of these events in one go (one query, for a database)."""
        wanted = sorted({int(i) for i in indices} - self._known.keys())
        if wanted:
            self._known.update(zip(wanted, self._details(wanted), strict=True))

    def detail(self, i: int) -> Detail:
        i = int(i)
        if i not in self._known:
            self.prefetch((i,))
        return self._known[i]

    def event_id(self, i: int) -> str:
        return self.detail(i)[0]

    def event(self, i: int) -> AttendanceEvent:
        """Event ``i`` as an object (made once, then the same object every time)."""
        i = int(i)
        if self._objects is not None:
            return self._objects[i]
        made = self._made.get(i)
        if made is None:
            event_id, tz, kiosk_id = self.detail(i)
            synced = int(self.synced[i])
            made = self._made[i] = AttendanceEvent(
                event_id=event_id,
                person_id=self.person_id[i],
                direction="in" if self.inward[i] else "out",
                utc=instant(int(self.utc_us[i])),
                tz=tz,
                clock_synced=None if synced < 0 else bool(synced),
                kiosk_id=kiosk_id,
            )
        return made


def parse_utc(text: str, count: int) -> IntArray:
    """``count`` stored UTC times written one after another, as microseconds.

    The kiosk database stores times as fixed-width ISO text, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
    (a CHECK constraint holds it to that shape), so the digits sit at fixed offsets: all
    the times are read at once as one array of bytes, with integer arithmetic, instead
    of one ``datetime.fromisoformat`` per event. Raises ReportError for anything else.
    """
    raw = text.encode("ascii", errors="replace")
    if len(raw) != count * ISO_WIDTH:
        raise ReportError(f"stored event times are not {ISO_WIDTH}-character ISO UTC times")
    if count == 0:
        return np.empty(0, dtype=np.int64)
    table = np.frombuffer(raw, dtype=np.uint8).reshape(count, ISO_WIDTH)
    punctuation = table[:, [4, 7, 10, 13, 16, 19, 26]]
    expected = np.frombuffer(b"--T::.Z", dtype=np.uint8)
    digits = table[:, _DIGITS] - np.uint8(ord("0"))  # anything but a digit wraps above 9
    if (punctuation != expected).any() or (digits > 9).any():
        raise ReportError(f"stored event times are not ISO UTC times like {_EXAMPLE!r}")

    def number(a: int, b: int) -> IntArray:  # digits a..b-1 as one number, column by column
        value = digits[:, a].astype(np.int64)
        for k in range(a + 1, b):
            value = value * 10 + digits[:, k]
        return value

    year, month, day, hour, minute, second, micro = (number(a, b) for a, b in _SPANS)
    if (
        (month < 1) | (month > 12) | (day < 1) | (day > 31) | (hour > 23) | (minute > 59)
        | (second > 59)
    ).any():  # fmt: skip
        raise ReportError(f"stored event times are not ISO UTC times like {_EXAMPLE!r}")
    # Days since the epoch from the civil date (H. Hinnant's days_from_civil, years >= 0:
    # March-based years put the leap day last).
    y = year - (month <= 2)
    day_of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    days = y * 365 + y // 4 - y // 100 + y // 400 + day_of_year - 719_468
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    result: IntArray = seconds * 1_000_000 + micro
    return result


_EXAMPLE = "2024-05-01T07:57:03.120000Z"
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25]
_SPANS = ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14), (14, 20))


def as_columns(events: Iterable[AttendanceEvent] | EventColumns) -> EventColumns:
    return events if isinstance(events, EventColumns) else EventColumns.from_events(events)
