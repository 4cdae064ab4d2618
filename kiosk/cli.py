"""``clockface kiosk``: run the kiosk on a camera or a video, and read its event log.

Thin: parses arguments, opens the store, the camera source, the GPIO outputs and the
face models, and hands them to :class:`kiosk.loop.Kiosk`. SIGTERM (systemd stopping the
service) and Ctrl-C set one stop event; the loop ends between frames, so no committed
event is lost. Under systemd the kiosk says READY once the camera and the database are
open and pings the watchdog after every good frame (``hardware/watchdog.py``).

``kiosk selftest`` opens every configured device once; ``kiosk status`` reads the
status file the running kiosk keeps next to its database, and the database itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from clockface.days import parse_day
from clockface.options import KIOSK_CONFIG_OPTION, db_option
from kiosk.policy import Mode

if TYPE_CHECKING:
    from hardware.config import HardwareConfig
    from hardware.feedback import Feedback
    from kiosk.loop import KioskStats
    from kiosk.settings import KioskSettings

F = TypeVar("F", bound=Callable[..., Any])


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


@kiosk.command()
@KIOSK_CONFIG_OPTION
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
    help="Replay a video at its own pace, or as fast as the kiosk can (every frame, "
    "waiting for its encodings). [default: fast]",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.01, max=1000),
    metavar="K",
    help="Replay a video as a live camera would deliver it, K times faster than real "
    "time, dropping the frames the kiosk is not ready for: the kiosk then does what it "
    "would on a CPU K times slower (README: a Raspberry Pi 4 is about K = 6).",
)
@click.option(
    "--detector",
    type=click.Choice(["yunet", "hog", "cnn"]),
    help="Face detector: yunet (OpenCV's, finds faces from about 20 px), hog or cnn "
    "(dlib's). [default: yunet]",
)
@click.option(
    "--encoder-workers",
    type=click.IntRange(min=-1, max=64),
    help="Processes that encode faces beside the frame loop; 0 encodes in the loop; "
    "-1 one per core but one. [default: -1]",
)
@click.option(
    "--liveness",
    type=click.Choice(["off", "required"]),
    help="required: log a pass only if the face also moves like a living head, not a photo "
    "held up (a suspected spoof logs nothing). [default: off]",
)
@click.option(
    "--screen/--no-screen",
    default=None,
    help="Serve the kiosk screen, a local web page for a full-screen browser: greetings, "
    "a clock, the kiosk's status. [default: off]",
)
@click.option(
    "--screen-port",
    type=click.IntRange(0, 65535),
    help="Port of the screen's page; 0 takes any free port (the log says which). [default: 8471]",
)
@click.option(
    "--screen-bind",
    metavar="ADDRESS",
    help="Address the screen listens on: 127.0.0.1 keeps it on this machine; 0.0.0.0 "
    "opens it (and any preview) to the network. [default: 127.0.0.1]",
)
@click.option(
    "--screen-preview/--no-screen-preview",
    default=None,
    help="Show the camera's live picture with face boxes on the screen (kept in memory "
    "only, never stored). [default: off]",
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
    time_scale: float | None,
    detector: str | None,
    encoder_workers: int | None,
    liveness: str | None,
    screen: bool | None,
    screen_port: int | None,
    screen_bind: str | None,
    screen_preview: bool | None,
) -> None:
    """Recognise people on a camera or video and log one event per pass.

    Each event is committed to the database before the person is greeted. Stops at the
    end of a video, or on Ctrl-C / SIGTERM; prints what it saw. With --screen the
    greetings also go to a local web page (http://127.0.0.1:8471/) for a browser in
    kiosk mode. Events from a video replay carry video time: the moment the replay
    started plus the frame's position in the video.
    """
    from hardware.config import load_hardware
    from hardware.feedback import CompositeFeedback, GpioFeedback, LogFeedback
    from hardware.frames import FrameSource
    from hardware.sources import LiveReplay, VideoFileSource
    from hardware.watchdog import Heartbeat, KioskHeartbeat, notifier_from_environ, status_path
    from kiosk.config import load_config
    from kiosk.encoders import open_encoder
    from kiosk.loop import Kiosk, video_clock, wall_clock
    from kiosk.screen import Screen
    from kiosk.settings import LivenessMode
    from kiosk.store import KioskStore

    config = load_config(config_path)
    hardware = load_hardware(config_path)
    given: dict[str, Any] = {
        "timezone": timezone,
        "mode": None if mode is None else Mode(mode),
        "cooldown_seconds": cooldown,
        "votes_required": votes,
        "liveness": None if liveness is None else LivenessMode(liveness),
        "detector": detector,
        "encoder_workers": encoder_workers,
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

    _setup_logging()
    stop = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        logging.getLogger("clockface.kiosk").info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    with contextlib.ExitStack() as opened:
        page: Screen | None = None
        if config.screen if screen is None else screen:  # first: a port in use fails fast
            page = opened.enter_context(
                Screen(
                    host=screen_bind or config.screen_bind,
                    port=config.screen_port if screen_port is None else screen_port,
                    preview=config.screen_preview if screen_preview is None else screen_preview,
                    timezone=settings.timezone,
                ).start()
            )
        store = opened.enter_context(
            KioskStore.open(db_path, key_file=config.template_key_file or None)
        )
        if store.created:  # the one command, with enroll add, that may start a kiosk
            click.echo(f"created a new kiosk database at {db_path}", err=True)
        lores = settings.detection_side(hardware.camera_width, hardware.camera_height)
        frames: FrameSource = opened.enter_context(
            hardware.open_source(source, realtime=realtime, detect_max_side=lores)
        )
        if time_scale is not None:
            if realtime:
                raise click.UsageError(
                    "--time-scale sets the replay's pace itself: leave out --realtime"
                )
            if not isinstance(frames, VideoFileSource):
                raise click.UsageError(
                    f"--time-scale replays a video file; {frames.name} is a live camera"
                )
            lores = settings.detection_side(*frames.size)  # as the Pi camera's lores stream
            frames = LiveReplay(frames, time_scale, lores=lores)
        replay_start = datetime.now(UTC)
        replay = isinstance(frames, VideoFileSource | LiveReplay)
        clock = video_clock(replay_start) if replay else wall_clock
        told: list[Feedback] = [LogFeedback()]
        outputs = hardware.open_outputs()
        if outputs is not None:
            told.append(opened.enter_context(GpioFeedback(outputs)))
        if page is not None:
            told.append(page)
            today = datetime.now(UTC).astimezone(ZoneInfo(settings.timezone)).date()
            earlier = store.events(day=today, tz=settings.timezone)
            page.note_last_event(earlier[-1].utc if earlier else None)
        feedback: Feedback = told[0] if len(told) == 1 else CompositeFeedback(told)
        if not store.people(active_only=True):
            click.echo(
                f"warning: nobody is enrolled in {db_path}: every face will be unknown "
                "(enroll people with `clockface enroll add`)",
                err=True,
            )
        models = settings.face_models()
        workers = settings.worker_count()
        models.preload(encoder=workers == 0)  # workers load their own
        encoder = opened.enter_context(open_encoder(models, workers))
        notifier = notifier_from_environ()
        opened.callback(notifier.close)
        heartbeat = KioskHeartbeat(notifier, source=frames.name, status_file=status_path(db_path))
        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            app = Kiosk(
                models=models,
                database=store,
                feedback=feedback,
                settings=settings,
                clock=clock,
                encoder=encoder,
                wait_for_encodings=isinstance(frames, VideoFileSource) and not realtime,
            )
            read: FrameSource = frames
            beat: Heartbeat = heartbeat
            if page is not None:  # the screen's status line and preview follow the loop
                read = page.watch(frames, lambda: [(t.box, t.decided) for t in app.tracker.tracks])
                beat = page.heartbeat(heartbeat, backlog=store.backlog)
            stats = app.run(read, stop, beat)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    spoofs = ""
    if settings.liveness is LivenessMode.REQUIRED:
        n = stats.suspected_spoofs
        spoofs = f", {n} suspected spoof{'' if n == 1 else 's'}"
    dropped = ""
    if isinstance(frames, LiveReplay):
        dropped = (
            f" ({frames.dropped} dropped at {frames.time_scale:g}x real time; video time "
            f"0 is {replay_start:%Y-%m-%d %H:%M:%S} UTC)"
        )
    click.echo(summary(stats, spoofs) + dropped)


def summary(stats: KioskStats, spoofs: str = "") -> str:
    """The one-line account of a run: what the kiosk saw, and what it made of it."""
    return (
        f"{stats.frames} frames, {stats.events} event{'' if stats.events == 1 else 's'}, "
        f"{stats.repeats} repeat passes in the cooldown, {stats.unknown_passes} unknown, "
        f"{stats.one_vote_passes} one-vote and {stats.conflicting_passes} conflicting "
        f"passes{spoofs}; {stats.faces} faces detected in {stats.tracks} tracks, "
        f"{stats.encodings} encodings ({stats.single_vote_events} events on one decisive "
        "encoding)"
    )


@kiosk.command("check-config")
@KIOSK_CONFIG_OPTION
def check_config(config_path: str | None) -> None:
    """Check a kiosk.toml (and CLOCKFACE_KIOSK_* variables); print every key as used."""
    from hardware.config import describe as describe_hardware
    from hardware.config import load_hardware
    from kiosk.config import describe, load_config

    config = load_config(config_path)
    hardware = load_hardware(config_path)
    click.echo(f"{config_path or 'no config file'}: ok")
    for line in describe(config):
        click.echo(f"  {line}")
    click.echo("  [hardware]")
    for line in describe_hardware(hardware):
        click.echo(f"  {line}")


@kiosk.command()
@db_option("The kiosk's SQLite database to read (never created here).")
@click.option(
    "--day",
    metavar="YYYY-MM-DD|today",
    help="Only events of this local day (in each event's kiosk time zone).",
)
@click.option("--person", "person_id", metavar="ID", help="Only this person's events.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
    help="text for people; json (one array of objects) or csv (a header row) for scripts, "
    "with the same columns: ids, seq, UTC and local ISO 8601 times, zone, distance, "
    "margin, frames, software version, clock and sync state.",
)
def events(db_path: str, day: str | None, person_id: str | None, fmt: str) -> None:
    """List the event log, oldest first, in the kiosk's local time.

    --format json or csv gives every field of each event for scripts (person ids only,
    never names), UTF-8 on stdout.
    """
    import sys

    from kiosk.event_export import export
    from kiosk.store import KioskStore

    if day is None:
        wanted = None
    elif day == "today":
        wanted = datetime.now().astimezone().date()
    else:
        try:
            wanted = parse_day(day)
        except ValueError as err:
            raise click.BadParameter(f"{err} (or give today)", param_hint="--day") from None
    database = Path(db_path)
    with KioskStore.open(database, create=False) as store:
        found = store.events(day=wanted, person_id=person_id)
    sys.stdout.flush()  # UTF-8 bytes go straight to the stream under it
    export(found, fmt, sys.stdout.buffer)


@kiosk.command("verify-log")
@db_option("The kiosk's SQLite database to check.")
def verify_log(db_path: str) -> None:
    """Check the event log's tamper-evident chain, from seq 1 to the newest event.

    Each event carries a SHA-256 chain over the one before it, so an event edited,
    inserted or deleted in the file shows up here, named by its seq. Exits 0 with
    "N events, chain intact through seq N", or 1 with one line per problem. A database
    of an older clockface is upgraded (and chained as it stands) first.
    """
    from kiosk.store import KioskStore

    database = Path(db_path)
    with KioskStore.open(database, create=False) as store:
        found = store.verify_chain()
    for line in found.lines():
        click.echo(line)
    if not found.intact:
        raise click.exceptions.Exit(1)


@kiosk.command("rotate-key")
@db_option("The kiosk's SQLite database whose templates to re-seal.")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    help="The key the templates are sealed with now [default: the systemd credential "
    "template-key, $CLOCKFACE_TEMPLATE_KEY_FILE, else DB.key beside the database].",
)
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The new key: a file of 32 random bytes, mode 0600; made there if missing.",
)
def rotate_key(db_path: str, key_file: str | None, new_key_file: str) -> None:
    """Re-seal every face template under a new key, in one transaction.

    On any failure nothing changes. The old key file is left where it is, for you to
    destroy; from then on the kiosk needs the new one. Works on a kiosk whose roster the
    central service manages too (it changes no roster, only how it is sealed), which is
    why it lives here and not under ``enroll``.
    """
    from clockface.template_key import open_or_create_key_file, rotation_report
    from kiosk.store import KioskStore

    database = Path(db_path)
    with KioskStore.open(database, key_file=key_file, create=False) as store:
        old = store.template_key_file
        if old is not None and old.resolve() == Path(new_key_file).resolve():
            raise click.ClickException(f"{new_key_file} is the key in use: give a new file")
        new, _ = open_or_create_key_file(new_key_file)
        count = store.rotate_key(new.path)
    default = database.with_name(database.name + ".key")
    for line in rotation_report(count, old, new, default=default):
        click.echo(line)


def _setup_logging() -> None:
    """INFO and up to stderr: with syslog priorities when stderr is the journal."""
    from hardware.watchdog import JournalFormatter, under_journal

    handler = logging.StreamHandler()
    if under_journal():
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def _foreign_owner(path: Path) -> str | None:
    """As root, a database that belongs to another user (the service's) is left alone:
    opening it would leave root-owned journal files the service cannot write."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not path.exists():
        return None
    uid = path.stat().st_uid
    if uid == 0:
        return None
    import pwd

    try:
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        owner = str(uid)
    return (
        f"{path} belongs to {owner}: run this as that user "
        f"(sudo -u {owner} clockface kiosk ...), not as root"
    )


@kiosk.command()
@KIOSK_CONFIG_OPTION
@click.option(
    "--source",
    metavar="SPEC",
    help="The camera to try instead of the config's (camera:0, video:PATH, picamera, ...).",
)
@db_option("The kiosk's SQLite database. [default: the config's, clockface.db]", default=None)
def selftest(config_path: str | None, source: str | None, db_path: str | None) -> None:
    """Open every configured device once and say, one line each, whether it works.

    The camera gives one frame, each LED, the buzzer and the door relay are pulsed
    briefly, the database is opened and counted, and the watchdog is looked for. Exits
    1 when anything FAILED. Stop the kiosk service first: a camera opens in one
    process at a time. GPIOZERO_PIN_FACTORY=mock tries the GPIO code without a Pi.
    """
    from hardware.config import load_hardware
    from kiosk.config import load_config

    config = load_config(config_path)
    hardware = load_hardware(config_path)
    spec = source or config.source
    database = Path(db_path or config.database)
    camera, size = _check_camera(hardware, spec)
    results = [camera, _reach(config.settings, hardware, size)]
    results += _check_outputs(hardware)
    results.append(_check_database(database))
    results.append(_check_watchdog())
    for label, problem, detail in results:
        click.echo(f"{label}: FAILED: {problem}" if problem else f"{label}: ok, {detail}")
    if any(problem for _, problem, _ in results):
        raise SystemExit(1)


Check = tuple[str, str | None, str]
"""What a self-test found: the device, why it failed (None: it works), what it showed."""


def _check_camera(hardware: HardwareConfig, spec: str) -> tuple[Check, tuple[int, int] | None]:
    """The camera's check, and the size of its frame (None: it gave none)."""
    from clockface.errors import ClockfaceError

    label = f"camera {spec}"
    try:
        with hardware.open_source(spec) as camera:
            frame = camera.read()
    except ClockfaceError as err:
        return (label, str(err), ""), None
    if frame is None:
        return (label, "it gave no frame: the stream ended at once", ""), None
    height, width = frame.image.shape[:2]
    return (label, None, f"one {width}x{height} frame"), (width, height)


def _reach(
    settings: KioskSettings, hardware: HardwareConfig, size: tuple[int, int] | None
) -> Check:
    """How far away faces are found and encoded, from the camera's frame size (or the
    configured one, when the camera gave no frame) and field of view."""
    width, height = size or (hardware.camera_width, hardware.camera_height)
    reach = settings.reach(width, height, hardware.camera_hfov_deg)
    return "faces", None, reach.describe()


def _check_outputs(hardware: HardwareConfig) -> list[Check]:
    from clockface.errors import OutputError
    from hardware.gpio import LABELS

    if not hardware.outputs:
        return [("GPIO outputs", None, "none configured")]
    try:
        outputs = hardware.open_outputs()
    except OutputError as err:
        return [("GPIO outputs", str(err), "")]
    assert outputs is not None
    found: list[Check] = []
    with outputs:
        for name, pin in outputs.pins.items():
            label = f"{LABELS[name]} (pin {pin})"
            try:
                outputs.pulse(name, 0.2)
            except OutputError as err:
                found.append((label, str(err), ""))
            else:
                found.append((label, None, "pulsed for 0.2 s"))
    return found


def _check_database(path: Path) -> Check:
    from clockface.errors import StoreError
    from kiosk.store import KioskStore

    label = f"database {path}"
    refused = _foreign_owner(path)
    if refused:
        return label, refused, ""
    if not path.exists():
        folder = path.parent if str(path.parent) else Path(".")
        if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            return label, None, "not created yet: `clockface kiosk run` creates it here"
        return label, f"it does not exist and {folder} is not a folder the kiosk can write", ""
    try:
        with KioskStore.open(path, create=False) as store:
            people = len(store.people(active_only=True))
            backlog = store.backlog()
    except StoreError as err:
        return label, str(err), ""
    return (
        label,
        None,
        (
            f"{people} {'person' if people == 1 else 'people'} enrolled, "
            f"{backlog} event{'' if backlog == 1 else 's'} waiting for sync"
        ),
    )


def _check_watchdog() -> Check:
    from hardware.watchdog import notifier_from_environ

    notifier = notifier_from_environ()
    if not notifier.under_systemd:
        return "watchdog", None, "not under systemd here (the service has one)"
    seconds = notifier.watchdog_seconds
    every = f"WatchdogSec {seconds:g} s" if seconds else "no WatchdogSec"
    return "watchdog", None, f"under systemd, {every}"


@kiosk.command()
@KIOSK_CONFIG_OPTION
@db_option("The kiosk's SQLite database. [default: the config's, clockface.db]", default=None)
def status(config_path: str | None, db_path: str | None) -> None:
    """Say in plain words how the kiosk is doing.

    Frames per second and the age of the last frame (from the status file the running
    kiosk rewrites every few seconds next to its database), events today, the sync
    backlog and the free disk space. Run it as the service's user
    (sudo -u clockface ...) on a Pi.
    """
    from hardware.watchdog import STATUS_EVERY, describe_status, read_status, status_path
    from kiosk.config import load_config
    from kiosk.store import KioskStore

    config = load_config(config_path)
    database = Path(db_path or config.database)
    now = datetime.now(UTC)
    try:
        loop = read_status(status_path(database))
    except ValueError as err:
        click.echo(f"kiosk: cannot read its status file: {err}")
    else:
        for line in describe_status(loop, now, stale_after=3 * STATUS_EVERY):
            click.echo(line)
    refused = _foreign_owner(database)
    if refused:
        raise click.ClickException(refused)
    if not database.exists():
        click.echo(f"events: no database at {database} yet")
    else:
        zone = config.settings.timezone
        with KioskStore.open(database, create=False) as store:
            today = store.events(day=now.astimezone(ZoneInfo(zone)).date(), tz=zone)
            backlog = store.backlog()
        ins = sum(1 for e in today if e.direction == "in")
        last = f", the last at {today[-1].local_time:%H:%M}" if today else ""
        click.echo(f"events: {len(today)} today in {zone} ({ins} in, {len(today) - ins} out){last}")
        click.echo(
            "sync: every event is acknowledged by the central service"
            if backlog == 0
            else f"sync: {backlog} event{'' if backlog == 1 else 's'} wait for the central service"
        )
    click.echo(_disk_line(database))


def _disk_line(database: Path) -> str:
    folder = database.resolve().parent
    while not folder.exists():
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    share = usage.free / usage.total if usage.total else 0.0
    low = " LOW: free some space, or events cannot be written" if share < 0.05 else ""
    return (
        f"disk: {usage.free / 1e9:.1f} GB free of {usage.total / 1e9:.1f} GB "
        f"({share:.0%}) at {folder}{low}"
    )
