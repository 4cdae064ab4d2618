"""``clockface kiosk``: run the kiosk on a camera or a video, and read its event log.

Thin: parses arguments, opens the store, the camera source and the face models, and
hands them to :class:`kiosk.loop.Kiosk`. SIGTERM (systemd stopping the service) and
Ctrl-C set one stop event; the loop ends between frames, so no committed event is lost.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from collections.abc import Callable
from datetime import date, datetime
from types import FrameType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from kiosk.policy import Mode

F = TypeVar("F", bound=Callable[..., Any])


def db_option(help: str, *, default: str | None = "clockface.db") -> Callable[[F], F]:
    """``--db`` (or ``CLOCKFACE_DB``), the kiosk's SQLite database, for every command."""
    return click.option(
        "--db",
        "db_path",
        envvar="CLOCKFACE_DB",
        default=default,
        show_default=default is not None,
        show_envvar=True,
        type=click.Path(dir_okay=False),
        help=help,
    )


DB_OPTION = db_option("The kiosk's SQLite database (roster and event log); created if missing.")


def _zone(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"{value!r} is not an IANA time zone (e.g. Europe/Berlin, America/Chicago)"
        ) from None
    return value


@click.group()
def kiosk() -> None:
    """Run the attendance kiosk and read its event log."""


CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    envvar="CLOCKFACE_KIOSK_CONFIG",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="A kiosk.toml (see `clockface kiosk default-config`); options given here override it.",
)


@kiosk.command()
@CONFIG_OPTION
@click.option(
    "--source",
    metavar="SPEC",
    help="camera:0 (USB camera), rtsp://... or http://... (IP camera), "
    "video:PATH or a video file (replay), picamera (Raspberry Pi camera). "
    "[default: the config's source, camera:0]",
)
@db_option(
    "The kiosk's SQLite database; created if missing. [default: the config's, clockface.db]",
    default=None,
)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    help="in or out for a kiosk at an entrance or an exit; auto alternates per person and "
    "day. [default: auto]",
)
@click.option(
    "--timezone",
    callback=_zone,
    help="The kiosk's IANA time zone: decides the local day of each event. [default: UTC]",
)
@click.option(
    "--cooldown",
    type=click.FloatRange(min=0),
    help="Seconds after a person's event in which they are not logged again. [default: 120]",
)
@click.option(
    "--votes",
    type=click.IntRange(min=1, max=5),
    help="Encodings of a pass that must agree on one person (and none on another) "
    "before the pass is logged. [default: 2]",
)
@click.option(
    "--realtime/--fast",
    default=None,
    help="Replay a video at its own pace, or as fast as the kiosk can. [default: fast]",
)
def run(
    config_path: str | None,
    source: str | None,
    db_path: str | None,
    mode: str | None,
    timezone: str | None,
    cooldown: float | None,
    votes: int | None,
    realtime: bool | None,
) -> None:
    """Recognise people on a camera or video and log one event per pass.

    Each event is committed to the database before the person is greeted. Stops at the
    end of a video, or on Ctrl-C / SIGTERM; prints what it saw.
    """
    from hardware.feedback import LogFeedback
    from hardware.sources import open_source
    from kiosk.config import load_config
    from kiosk.loop import Kiosk
    from kiosk.store import KioskStore
    from recognition.faces import FaceModels

    config = load_config(config_path)
    given: dict[str, Any] = {
        "timezone": timezone,
        "mode": None if mode is None else Mode(mode),
        "cooldown_seconds": cooldown,
        "votes_required": votes,
    }
    try:
        settings = dataclasses.replace(
            config.settings, **{k: v for k, v in given.items() if v is not None}
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    source = source or config.source
    db_path = db_path or config.database
    realtime = config.realtime if realtime is None else realtime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        logging.getLogger("clockface.kiosk").info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    with KioskStore.open(db_path) as store, open_source(source, realtime=realtime) as frames:
        if not store.people(active_only=True):
            click.echo(
                f"warning: nobody is enrolled in {db_path}: every face will be unknown "
                "(enroll people with `clockface enroll add`)",
                err=True,
            )
        models = FaceModels(detect_max_side=settings.detect_max_side, upsample=settings.upsample)
        models.preload()
        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            app = Kiosk(models=models, database=store, feedback=LogFeedback(), settings=settings)
            stats = app.run(frames, stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    click.echo(
        f"{stats.frames} frames, {stats.events} event{'' if stats.events == 1 else 's'}, "
        f"{stats.repeats} repeat passes in the cooldown, {stats.unknown_passes} unknown "
        f"and {stats.conflicting_passes} conflicting passes"
    )


@kiosk.command("check-config")
@CONFIG_OPTION
def check_config(config_path: str | None) -> None:
    """Check a kiosk.toml (and CLOCKFACE_KIOSK_* variables); print every key as used."""
    from kiosk.config import describe, load_config

    config = load_config(config_path)
    click.echo(f"{config_path or 'no config file'}: ok")
    for line in describe(config):
        click.echo(f"  {line}")


@kiosk.command("default-config")
def default_config() -> None:
    """Print a kiosk.toml with every key at its default, each with a comment."""
    from kiosk.config import default_file

    click.echo(default_file(), nl=False)


@kiosk.command()
@DB_OPTION
@click.option(
    "--day",
    metavar="YYYY-MM-DD|today",
    help="Only events of this local day (in each event's kiosk time zone).",
)
@click.option("--person", "person_id", metavar="ID", help="Only this person's events.")
def events(db_path: str, day: str | None, person_id: str | None) -> None:
    """List the event log, oldest first, in the kiosk's local time."""
    from kiosk.store import KioskStore

    if day is None:
        wanted = None
    elif day == "today":
        wanted = datetime.now().astimezone().date()
    else:
        try:
            wanted = date.fromisoformat(day)
        except ValueError:
            raise click.BadParameter(
                f"{day!r} is not YYYY-MM-DD or today", param_hint="--day"
            ) from None
    with KioskStore.open(db_path) as store:
        found = store.events(day=wanted, person_id=person_id)
        for event in found:
            synced = "synced" if event.acked_utc else "not synced"
            click.echo(
                f"{event.seq:>6}  {event.local_time:%Y-%m-%d %H:%M:%S %Z}  {event.direction:<3}  "
                f"{event.person_id:<24} distance {event.distance:.3f}  {synced}"
            )
        click.echo(f"{len(found)} event{'' if len(found) == 1 else 's'}")
