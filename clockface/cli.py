"""The ``clockface`` command: one group per part, registered here explicitly.

Every error clockface raises on purpose (:class:`~clockface.errors.ClockfaceError`)
ends as one ``Error: ...`` line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from central.cli import central
from clockface import __version__
from clockface.errors import ClockfaceError
from enrollment.cli import enroll
from kiosk.cli import kiosk
from recognition.cli import recognition
from reports.cli import report, schedule
from sync.cli import sync


class _Root(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClockfaceError as err:
            raise click.ClickException(str(err)) from err


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="clockface")
def main() -> None:
    """clockface: a face-recognition attendance kiosk.

    Recognises staff at the door, logs arrivals and departures, and syncs them to a
    central service. Each part has its own group of commands below.
    """


GROUPS: dict[str, click.Command] = {
    "central": central,
    "enroll": enroll,
    "kiosk": kiosk,
    "recognition": recognition,
    "report": report,
    "schedule": schedule,
    "sync": sync,
}
for _name, _group in GROUPS.items():
    main.add_command(_group, _name)


def kiosk_file() -> str:
    """kiosk.toml with every key at its default: the kiosk's ``[kiosk]`` and
    ``[hardware]`` tables, and the sync agent's ``[sync]`` (joined here, where both
    parts are known: the kiosk does not import the agent)."""
    from kiosk.config import default_file
    from sync.config import default_section

    return default_file(default_section())


@kiosk.command("default-config")
def kiosk_default_config() -> None:
    """Print a kiosk.toml with every key at its default, each with a comment."""
    click.echo(kiosk_file(), nl=False)
