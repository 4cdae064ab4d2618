"""The central store's checks and conversions of single values: ids, labels, teams,
kiosk and admin names, time zones, consent records, template counts, and the values read
back from rows (timestamps, people). The underscored names are the store's own: its
modules import them by name, nothing else should."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from clockface.errors import CentralNotFoundError, CentralValueError, StoreValueError
from clockface.values import check_team, check_text
from kiosk.store import Person

MAX_TEMPLATES_PER_PERSON = 100  # sync.protocol.WirePerson carries at most this many
MAX_TEXT = 200  # sync.protocol's Identifier and names
TEMPLATE_DTYPE = np.dtype("<f4")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def system_clock() -> datetime:
    return datetime.now(UTC)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _parse_opt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _check_id(value: object) -> str:
    return _check_label(value, "a person id", MAX_TEXT)


def _check_label(value: object, what: str, longest: int) -> str:
    text = check_text(value, what)
    if len(text) > longest:
        raise StoreValueError(f"{what} is at most {longest} characters, not {len(text)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise StoreValueError(f"{what} must not contain control characters: {text!r}")
    return text


def _team(team: object) -> str | None:
    checked = check_team(team)
    return None if checked is None else _check_label(checked, "a team", MAX_TEXT)


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise CentralValueError(
            f"{what} is 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or "
            f"digit), not {value!r}"
        )
    return value


def _known_name(value: object, what: str) -> str:
    """A kiosk or admin name to look up: one that cannot exist is not found."""
    if not isinstance(value, str) or not _NAME.match(value):
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


def _check_template_count(pid: str, count: int) -> None:
    if count > MAX_TEMPLATES_PER_PERSON:
        raise StoreValueError(
            f"person {pid!r} would have {count} templates; at most "
            f"{MAX_TEMPLATES_PER_PERSON} are kept per person"
        )


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
