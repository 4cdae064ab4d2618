"""``clockface sync``: push the kiosk's events to the central service, pull its roster.

Thin: each command reads the ``[sync]`` configuration (``sync/config.py``), opens the
kiosk's store and calls the agent (``sync/agent.py``) or the store. ``sync run`` stops on
SIGTERM (systemd) or Ctrl-C through one stop event, between requests: an answer that
has arrived is always written down first.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

import click

from clockface.options import KIOSK_CONFIG_OPTION, db_option

if TYPE_CHECKING:
    import httpx

    from kiosk.store import KioskStore
    from sync.agent import SyncAgent
    from sync.config import SyncConfig

DB_HELP = "The kiosk's SQLite database. [default: the config's [kiosk] database, else clockface.db]"
SERVER_OPTION = click.option(
    "--server",
    metavar="URL",
    help="The central service, http(s)://host[:port]. [default: the config's [sync] server]",
)
TOKEN_FILE_OPTION = click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="File holding this kiosk's token. [default: CLOCKFACE_SYNC_TOKEN (the token "
    "itself), else the config's token_file, else the systemd credential kiosk-token]",
)


@click.group()
def sync() -> None:
    """Sync this kiosk with the central service (events up, roster down)."""


def _database(db_path: str | None, config_path: str | None) -> str:
    """--db (or CLOCKFACE_DB), else the config file's [kiosk] database, else the default."""
    if db_path is not None:
        return db_path
    if config_path is not None:
        from kiosk.config import load_config

        return load_config(config_path).database
    return "clockface.db"


def _open_store(
    db_path: str | None, config_path: str | None, *, by_hand: bool = False
) -> KioskStore:
    """The kiosk database; ``by_hand``: a command an operator runs (audited as the OS
    user), not the agent's rounds (as ``sync``)."""
    from clockface.values import os_user
    from kiosk.store import KioskStore

    key_file = None
    if config_path is not None:  # the roster it pulls is sealed with the kiosk's key
        from kiosk.config import load_config

        key_file = load_config(config_path).template_key_file or None
    actor = os_user() if by_hand else "sync"
    # A sync command never creates a kiosk: `kiosk run` or `enroll add` does.
    return KioskStore.open(
        _database(db_path, config_path), actor=actor, key_file=key_file, create=False
    )


def _agent(
    store: KioskStore,
    config: SyncConfig,
    token: str,
    *,
    attempts: int | None,
    stop: threading.Event | None = None,
) -> tuple[SyncAgent, httpx.Client]:
    import httpx

    from clockface import __version__
    from sync.agent import Backoff, SyncAgent

    http = httpx.Client(
        timeout=config.timeout_seconds, headers={"User-Agent": f"clockface/{__version__}"}
    )
    agent = SyncAgent(
        store,
        http,
        server=config.server,
        token=token,
        batch_size=config.batch_size,
        backoff=Backoff(config.backoff_base_seconds, config.backoff_cap_seconds),
        attempts=attempts,
        stop=stop,
    )
    return agent, http


def _config(config_path: str | None, server: str | None) -> SyncConfig:
    from sync.config import load_sync_config

    return load_sync_config(config_path, server=server)


@sync.command()
@KIOSK_CONFIG_OPTION
@SERVER_OPTION
@TOKEN_FILE_OPTION
@db_option(DB_HELP, default=None)
def once(
    config_path: str | None, server: str | None, token_file: str | None, db_path: str | None
) -> None:
    """Send every pending event, then fetch and apply the roster's changes, once.

    Exits 0 when everything went, 1 with one line saying what failed (and keeps what
    went: nothing is sent twice by trying again).
    """
    from clockface.errors import SyncError
    from sync.agent import ONCE_ATTEMPTS
    from sync.config import read_token

    config = _config(config_path, server)
    token = read_token(config, token_file=token_file)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    with _open_store(db_path, config_path) as store:
        agent, http = _agent(store, config, token, attempts=ONCE_ATTEMPTS)
        with http:
            report = agent.run_once()
        click.echo(report.summary())
        if report.push.parked:
            raise SyncError(
                f"{report.push.parked} event{' was' if report.push.parked == 1 else 's were'} "
                "refused by the central service and parked: see `clockface sync status`"
            )
        waiting = store.parked_count()
        if waiting:
            click.echo(
                f"note: {waiting} parked event{'' if waiting == 1 else 's'} wait: "
                "`clockface sync status`, `clockface sync retry-parked`",
                err=True,
            )


@sync.command()
@KIOSK_CONFIG_OPTION
@SERVER_OPTION
@TOKEN_FILE_OPTION
@db_option(DB_HELP, default=None)
def run(
    config_path: str | None, server: str | None, token_file: str | None, db_path: str | None
) -> None:
    """Keep syncing until stopped (SIGTERM or Ctrl-C): a round every interval_seconds,
    backing off while the central service is unreachable or failing."""
    from sync.config import read_token

    config = _config(config_path, server)
    token = read_token(config, token_file=token_file)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is noise
    log = logging.getLogger("clockface.sync")
    stop = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        log.info("%s: stopping after the request in flight", signal.Signals(signum).name)
        stop.set()

    with _open_store(db_path, config_path) as store:
        agent, http = _agent(store, config, token, attempts=None, stop=stop)
        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            log.info(
                "syncing %s with %s every %g s", store.path, agent.server, config.interval_seconds
            )
            with http:
                agent.run(interval=config.interval_seconds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@sync.command()
@KIOSK_CONFIG_OPTION
@db_option(DB_HELP, default=None)
def status(config_path: str | None, db_path: str | None) -> None:
    """Say how this kiosk stands with the central service, in plain words."""
    from hardware.clock import clock_state
    from sync.agent import status_lines

    with _open_store(db_path, config_path) as store:
        for line in status_lines(store, datetime.now(UTC), clock=clock_state()):
            click.echo(line)


@sync.command("retry-parked")
@KIOSK_CONFIG_OPTION
@db_option(DB_HELP, default=None)
def retry_parked(config_path: str | None, db_path: str | None) -> None:
    """Put the parked events (refused by the central service) back in the outbox."""
    with _open_store(db_path, config_path, by_hand=True) as store:
        count = store.unpark()
    if count:
        click.echo(
            f"{count} parked event{'' if count == 1 else 's'} back in the outbox: the next "
            "round sends them (`clockface sync once`, or the running agent)"
        )
    else:
        click.echo("no parked events")


@sync.command()
@KIOSK_CONFIG_OPTION
@db_option(DB_HELP, default=None)
def detach(config_path: str | None, db_path: str | None) -> None:
    """Manage this kiosk's roster locally again (`clockface enroll`), not from the
    central service; the people and templates stay.

    Stop `clockface sync run` first: its next round would attach the kiosk again (and
    replace the roster with the central one).
    """
    with _open_store(db_path, config_path, by_hand=True) as store:
        url = store.detach()
    if url is None:
        click.echo("this kiosk was not attached to a central service")
    else:
        click.echo(f"detached from {url}: the roster is managed here again")


@sync.command("default-config")
def default_config() -> None:
    """Print the [sync] table of kiosk.toml, every key with its default and a comment."""
    from sync.config import default_section

    click.echo(default_section(), nl=False)
