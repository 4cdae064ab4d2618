"""The calendar clockface supports: 1970-01-01 to 2199-12-31, at every entry.

Reports read the punches of the nights around each shift, so they reach a few days
beyond the dates asked for, and schedules repeat up to their last day: a date near the
ends of Python's calendar (9999-12-31, 0001-01-01) would overflow those sums. Every
command, file and web form that takes a date refuses one outside this range, in one
line, through :func:`parse_day` or :func:`check_day`; the callers turn the
``ValueError`` into their own one-line error.
"""

from __future__ import annotations

from datetime import date

FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2199, 12, 31)


def check_day(day: date) -> date:
    """``day`` itself, or ValueError when it lies outside the supported range."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(
            f"{day.isoformat()} is outside the dates clockface supports, "
            f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
        )
    return day


def parse_day(text: str) -> date:
    """A date written YYYY-MM-DD, within the supported range; ValueError in one line."""
    try:
        day = date.fromisoformat(text.strip())
    except (TypeError, ValueError):
        raise ValueError(f"{text[:40]!r} is not a date YYYY-MM-DD") from None
    return check_day(day)
