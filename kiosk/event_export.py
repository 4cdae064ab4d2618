"""The kiosk's event log as text for people, or as JSON or CSV for scripts.

``clockface kiosk events --format text|json|csv`` calls :func:`export`, which writes
UTF-8 through one of :data:`WRITERS`; each writer takes the events in seq order and a
text stream, writes one event at a time (nothing is built into one big string) and
returns how many it wrote.

- ``text``: one aligned line per event in the kiosk's local time, then ``N events``.
- ``json``: one JSON array, one object per line, keys in :data:`COLUMNS` order;
  ``[]`` when there are none.
- ``csv``: RFC 4180 (``\\r\\n`` line ends, quoting by the :mod:`csv` module), a header
  row of :data:`COLUMNS`, then one row per event; only the header when there are none.
  A text cell that a spreadsheet would run as a formula (it begins with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return) gets a leading ``'``, as the reports'
  CSV does (:func:`reports.exporters.neutralise`).

JSON and CSV carry the same columns. Times are ISO 8601 with microseconds: ``utc`` and
``acked_utc`` exactly as the store keeps them (``2024-05-01T07:57:03.120000Z``),
``local_time`` at the kiosk with its UTC offset (``2024-05-01T09:57:03.120000+02:00``)
and ``tz`` the kiosk's IANA zone. ``margin`` is ``null`` (CSV: empty) when nobody else
was in the gallery, as on the sync wire; ``clock_synced`` is ``null`` (empty) when not
known. Booleans are ``true`` / ``false`` in both. An event holds a person id, never a
name, and no template: neither does this output.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable
from typing import BinaryIO, TextIO

from clockface.spreadsheet import neutralise
from clockface.values import iso_utc
from kiosk.store import Event

Value = str | int | float | bool | None

COLUMNS = (
    "event_id",
    "seq",
    "kiosk_id",
    "person_id",
    "direction",
    "utc",
    "local_time",
    "tz",
    "distance",
    "margin",
    "frames",
    "software_version",
    "clock_synced",
    "synced",
    "acked_utc",
    "chain",
)
"""The keys of a JSON event and the CSV header, in this order (stable: scripts rely on it)."""


def event_record(event: Event) -> dict[str, Value]:
    """One event as plain JSON values, keyed by :data:`COLUMNS`."""
    return {
        "event_id": event.event_id,
        "seq": event.seq,
        "kiosk_id": event.kiosk_id,
        "person_id": event.person_id,
        "direction": event.direction,
        "utc": iso_utc(event.utc),
        "local_time": event.local_time.isoformat(timespec="microseconds"),
        "tz": event.tz,
        "distance": event.distance,
        "margin": None if math.isinf(event.margin) else event.margin,
        "frames": event.frames,
        "software_version": event.software_version,
        "clock_synced": event.clock_synced,
        "synced": event.acked_utc is not None,
        "acked_utc": None if event.acked_utc is None else iso_utc(event.acked_utc),
        "chain": event.chain,
    }


def write_text(events: Iterable[Event], out: TextIO) -> int:
    """The listing for people: one line per event, then how many there were."""
    count = 0
    for event in events:
        synced = "synced" if event.acked_utc else "not synced"
        out.write(
            f"{event.seq:>6}  {event.local_time:%Y-%m-%d %H:%M:%S %Z}  {event.direction:<3}  "
            f"{event.person_id:<24} distance {event.distance:.3f}  {synced}\n"
        )
        count += 1
    out.write(f"{count} event{'' if count == 1 else 's'}\n")
    return count


def write_json(events: Iterable[Event], out: TextIO) -> int:
    """One JSON array, an object per line."""
    count = 0
    for event in events:
        out.write("[\n" if count == 0 else ",\n")
        out.write(json.dumps(event_record(event), ensure_ascii=False, allow_nan=False))
        count += 1
    out.write("[]\n" if count == 0 else "\n]\n")
    return count


def write_csv(events: Iterable[Event], out: TextIO) -> int:
    """A header row, then a row per event; formula-looking text neutralised."""

    def cell(value: Value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return neutralise(value)
        return repr(value)  # the shortest text that reads back as the same number

    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for event in events:
        record = event_record(event)
        writer.writerow([cell(record[key]) for key in COLUMNS])
        count += 1
    return count


Writer = Callable[[Iterable[Event], TextIO], int]

WRITERS: dict[str, Writer] = {"text": write_text, "json": write_json, "csv": write_csv}
"""The formats of ``clockface kiosk events --format``, by name; ``text`` is the default."""


def export(events: Iterable[Event], fmt: str, out: BinaryIO) -> int:
    """Write ``events`` in format ``fmt`` to a binary stream as UTF-8, whatever the
    locale (and with the CSV's line ends untranslated); returns how many. ``out`` is
    flushed, never closed."""
    try:
        write = WRITERS[fmt]
    except KeyError:
        raise ValueError(f"format must be one of {', '.join(WRITERS)}, not {fmt!r}") from None
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        return write(events, text)
    finally:
        text.detach()  # flushes into ``out`` and leaves it open
