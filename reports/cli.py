"""``clockface report`` and ``clockface schedule``: supervisors' reports over schedules."""

from __future__ import annotations

import click


@click.group()
def report() -> None:
    """Late arrivals, early departures, absences and hours, against work schedules."""
