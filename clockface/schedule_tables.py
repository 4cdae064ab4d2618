"""The schedule tables, shared by the kiosk database and the central database.

Schedules are stored with the roster: a standalone kiosk keeps its own in its SQLite
file (kiosk schema version 3, whose DDL is written out in :mod:`kiosk.migrations`), the
central service in its database (central schema version 2, created from
:func:`define`). :mod:`reports.schedule_store` reads and writes both through these
definitions, so the columns here and the kiosk's DDL must agree (a test checks).

- ``schedule_sites(name, timezone)``: a place people work, with its IANA zone. Shift
  times are wall-clock times there.
- ``holidays(site, day, name)``: a site's holidays; no shift at that site that day.
- ``shift_patterns``: weekly shifts of one person (``person_id``) or one team
  (``team``), exactly one of the two; ``weekdays`` as ``mon,tue,...``; ``start_time``
  and ``end_time`` local ``HH:MM`` (an end not after the start crosses midnight); grace
  and window in minutes; ``valid_from`` / ``valid_until`` dates (``YYYY-MM-DD``,
  inclusive) or NULL.
- ``days_off(person_id, first_day, last_day, note)``: leave, sickness, inclusive.

Dates are ``YYYY-MM-DD`` text and times ``HH:MM`` text in both databases, so text order
is date order; created times are ISO 8601 UTC like every other time.
"""

from __future__ import annotations

import sqlalchemy as sa

TIME_TEXT = 27  # len("2024-05-01T07:57:03.120000Z")
SITE_NAME = 100
LABEL = 200


def define(metadata: sa.MetaData) -> None:
    """Define the four schedule tables on ``metadata``."""
    sa.Table(
        "schedule_sites",
        metadata,
        sa.Column("name", sa.String(SITE_NAME), primary_key=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_utc", sa.String(TIME_TEXT), nullable=False),
        sa.Column("updated_utc", sa.String(TIME_TEXT), nullable=False),
    )
    sa.Table(
        "holidays",
        metadata,
        sa.Column(
            "site",
            sa.String(SITE_NAME),
            sa.ForeignKey("schedule_sites.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("name", sa.String(LABEL), nullable=False),
    )
    sa.Table(
        "shift_patterns",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.String(LABEL), nullable=True, index=True),
        sa.Column("team", sa.String(LABEL), nullable=True, index=True),
        sa.Column(
            "site", sa.String(SITE_NAME), sa.ForeignKey("schedule_sites.name"), nullable=False
        ),
        sa.Column("weekdays", sa.String(27), nullable=False),
        sa.Column("start_time", sa.String(5), nullable=False),
        sa.Column("end_time", sa.String(5), nullable=False),
        sa.Column("grace_late", sa.Integer, nullable=False),
        sa.Column("grace_early", sa.Integer, nullable=False),
        sa.Column("window_before", sa.Integer, nullable=False),
        sa.Column("window_after", sa.Integer, nullable=False),
        sa.Column("valid_from", sa.String(10), nullable=True),
        sa.Column("valid_until", sa.String(10), nullable=True),
        sa.Column("note", sa.String(LABEL), nullable=False),
        sa.Column("created_utc", sa.String(TIME_TEXT), nullable=False),
        sa.CheckConstraint(
            "(person_id IS NULL) <> (team IS NULL)", name="shift_patterns_person_or_team"
        ),
        sqlite_autoincrement=True,  # an id in the audit log never comes back for another
    )
    sa.Table(
        "days_off",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.String(LABEL), nullable=False, index=True),
        sa.Column("first_day", sa.String(10), nullable=False),
        sa.Column("last_day", sa.String(10), nullable=False),
        sa.Column("note", sa.String(LABEL), nullable=False),
        sa.Column("created_utc", sa.String(TIME_TEXT), nullable=False),
        sa.CheckConstraint("first_day <= last_day", name="days_off_order"),
        sqlite_autoincrement=True,
    )


def tables() -> sa.MetaData:
    """The schedule tables alone, for queries against either database."""
    metadata = sa.MetaData()
    define(metadata)
    return metadata
