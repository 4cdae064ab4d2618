"""The central store's checks and conversions of single values: kiosk and admin names,
time zones, consent records, and the values read back from rows (timestamps, people).
The roster's rules (person ids, names, teams, templates) are :mod:`clockface.roster`'s.
The underscored names are the store's own: its modules import them by name, nothing
else should."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clockface.errors import CentralNotFoundError, CentralValueError
from clockface.values import ID_PATTERN, ID_RULE
from kiosk.store import Person

_NAME = re.compile(ID_PATTERN)


def system_clock() -> datetime:
    return datetime.now(UTC)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _parse_opt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise CentralValueError(f"{what} is {ID_RULE}, not {value!r}")
    return value


def _known_name(value: object, what: str) -> str:
    """A kiosk or admin name to look up: one that cannot exist is not found."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise CentralNotFoundError(f"no {what} {value!r}")
    return value


def _check_zone(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise CentralValueError(f"a time zone must be an IANA name, not {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise CentralValueError(
            f"unknown time zone {value!r}: give an IANA name such as 'Europe/Paris'"
        ) from None
    return value


def _person(row: Any) -> Person:
    return Person(
        person_id=row.person_id,
        name=row.name,
        team=row.team,
        active=bool(row.active),
        template_count=int(row.template_count),
        created_utc=_parse(row.created_utc),
        updated_utc=_parse(row.updated_utc),
    )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
