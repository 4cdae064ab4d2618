"""``clockface central``: run and administer the central attendance service."""

from __future__ import annotations

import click


@click.group()
def central() -> None:
    """The central attendance service: serve the API, manage sites, kiosks and tokens."""
