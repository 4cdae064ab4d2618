"""``clockface kiosk``: run the kiosk on a camera or a video, and read its event log.

Thin: parses arguments, opens the store, the camera source and the face models, and
hands them to :class:`kiosk.loop.Kiosk`. SIGTERM (systemd stopping the service) and
Ctrl-C set one stop event; the loop ends between frames, so no committed event is lost.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import date, datetime
from types import FrameType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from kiosk.policy import Mode

DB_OPTION = click.option(
    "--db",
    "db_path",
    envvar="CLOCKFACE_DB",
    default="clockface.db",
    show_default=True,
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="The kiosk's SQLite database (roster and event log); created if missing.",
)


def _zone(_: click.Context, __: click.Parameter, value: str) -> str:
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


@kiosk.command()
@click.option(
    "--source",
    required=True,
    metavar="SPEC",
    help="camera:0 (USB camera), rtsp://... or http://... (IP camera), "
    "video:PATH or a video file (replay), picamera (Raspberry Pi camera).",
)
@DB_OPTION
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=Mode.AUTO.value,
    show_default=True,
    help="in or out for a kiosk at an entrance or an exit; auto alternates per person and day.",
)
@click.option(
    "--timezone",
    default="UTC",
    show_default=True,
    callback=_zone,
    help="The kiosk's IANA time zone: decides the local day of each event.",
)
@click.option(
    "--cooldown",
    type=click.FloatRange(min=0),
    default=120.0,
    show_default=True,
    help="Seconds after a person's event in which they are not logged again.",
)
@click.option(
    "--votes",
    type=click.IntRange(min=1, max=5),
    default=2,
    show_default=True,
    help="Encodings of a pass that must agree on one person (and none on another) "
    "before the pass is logged.",
)
@click.option(
    "--realtime/--fast",
    default=False,
    show_default=True,
    help="Replay a video at its own pace, or as fast as the kiosk can.",
)
def run(
    source: str,
    db_path: str,
    mode: str,
    timezone: str,
    cooldown: float,
    votes: int,
    realtime: bool,
) -> None:
    """Recognise people on SOURCE and log one event per pass.

    Each event is committed to the database before the person is greeted. Stops at the
    end of a video, or on Ctrl-C / SIGTERM; prints what it saw.
    """
    from hardware.feedback import LogFeedback
    from hardware.sources import open_source
    from kiosk.loop import Kiosk, KioskSettings
    from kiosk.store import KioskStore
    from recognition.faces import FaceModels

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = KioskSettings(
        timezone=timezone, mode=Mode(mode), cooldown_seconds=cooldown, votes_required=votes
    )
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
        f"{stats.repeats} repeat passes "
        f"in the cooldown, {stats.unknown_passes} unknown and {stats.conflicting_passes} "
        f"conflicting passes"
    )


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
