"""``clockface sync``: push the kiosk's events to the central service, pull its roster."""

from __future__ import annotations

import click


@click.group()
def sync() -> None:
    """Sync this kiosk with the central service (events up, roster down)."""
