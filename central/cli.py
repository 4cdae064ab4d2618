"""``clockface central``: run and administer the central attendance service.

Thin: each command reads the configuration (``--config``, ``CLOCKFACE_CENTRAL_*``), opens
the store (``--database`` overrides the config's) and calls one library function. A new
token is the only line on stdout, so ``TOKEN=$(clockface central kiosk add ...)`` works;
what to do with it goes to stderr. Bad input ends as one ``Error: ...`` line, exit 1.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from central.config import CentralConfig
    from central.store import CentralStore

F = TypeVar("F", bound=Callable[..., Any])

_TOKEN_NOTE = "Store this token now (e.g. in the kiosk's sync config); it is not shown again."


def _common(command: F) -> F:
    """``--config`` and ``--database``, for every command."""
    command = click.option(
        "--database",
        metavar="PATH|URL",
        help="A SQLite file or postgresql://USER@HOST/NAME; overrides the config's "
        "(default central.db).",
    )(command)
    command = click.option(
        "--config",
        "config_path",
        envvar="CLOCKFACE_CENTRAL_CONFIG",
        show_envvar=True,
        type=click.Path(dir_okay=False),
        help="A central.toml (see `clockface central default-config`).",
    )(command)
    return command


def _config(config_path: str | None, **given: Any) -> CentralConfig:
    from central.config import load_config, override

    return override(load_config(config_path), **given)


def _open(config_path: str | None, database: str | None) -> CentralStore:
    from central.store import CentralStore

    config = _config(config_path, database=database)
    return CentralStore.open(config.database, clock_skew_seconds=config.clock_skew_seconds)


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _token_out(token: str) -> None:
    click.echo(token)
    click.echo(_TOKEN_NOTE, err=True)


@click.group()
def central() -> None:
    """The central attendance service: serve the API, manage sites, kiosks and tokens."""


@central.command()
@_common
@click.option("--host", help="The address to listen on. [default: the config's, 127.0.0.1]")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="The TCP port (0: any free one). [default: the config's, 8470]",
)
def serve(
    config_path: str | None, database: str | None, host: str | None, port: int | None
) -> None:
    """Serve the HTTP API until Ctrl-C or SIGTERM."""
    import uvicorn

    from central.app import create_app
    from central.store import CentralStore

    config = _config(config_path, database=database, host=host, port=port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with CentralStore.open(config.database, clock_skew_seconds=config.clock_skew_seconds) as store:
        listener = _listen(config.host, config.port)
        bound_port = listener.getsockname()[1]
        shown = f"[{config.host}]" if ":" in config.host else config.host
        app = create_app(store, config)
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        logging.getLogger("clockface.central").info(
            "clockface central: serving http://%s:%d (database %s)", shown, bound_port, store.where
        )
        # uvicorn shuts down gracefully on SIGTERM / SIGINT, then raises the signal again
        # for the handlers that were there before it: these, which only note it.
        stopped_by: list[int] = []
        previous = {
            sig: signal.signal(sig, lambda signum, _frame: stopped_by.append(signum))
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            server.run(sockets=[listener])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            listener.close()
    why = f" ({signal.Signals(stopped_by[0]).name})" if stopped_by else ""
    logging.getLogger("clockface.central").info("clockface central: stopped%s", why)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
    # so, and with Nagle on, each answer on a kept-alive connection waits 40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {err.strerror or err}; choose another --host/--port"
        ) from None
    sock.set_inheritable(True)
    return sock


@central.command("default-config")
def default_config() -> None:
    """Print a central.toml with every key at its default, each with a comment."""
    from central.config import default_file

    click.echo(default_file(), nl=False)


@central.command("check-config")
@_common
def check_config(config_path: str | None, database: str | None) -> None:
    """Check a central.toml (and CLOCKFACE_CENTRAL_* variables); print every key as used."""
    from central.config import describe

    config = _config(config_path, database=database)
    click.echo(f"{config_path or 'no config file'}: ok")
    for line in describe(config):
        click.echo(f"  {line}")


# --------------------------------------------------------------------- sites
@central.group()
def site() -> None:
    """Sites: where kiosks stand, each with its time zone."""


@site.command("add")
@_common
@click.argument("name")
@click.option("--timezone", required=True, help="The site's IANA time zone, e.g. Europe/Paris.")
def site_add(config_path: str | None, database: str | None, name: str, timezone: str) -> None:
    """Add a site."""
    with _open(config_path, database) as store:
        added = store.add_site(name, timezone)
    click.echo(f"site {added.name!r} added ({added.timezone})")


@site.command("list")
@_common
def site_list(config_path: str | None, database: str | None) -> None:
    """List the sites."""
    with _open(config_path, database) as store:
        found = store.sites()
    for s in found:
        click.echo(f"{s.name:<24} {s.timezone}")
    click.echo(f"{len(found)} site{'' if len(found) == 1 else 's'}")


# --------------------------------------------------------------------- kiosks
@central.group()
def kiosk() -> None:
    """Kiosks and their tokens."""


@kiosk.command("add")
@_common
@click.argument("name")
@click.option("--site", "site_name", required=True, help="The site the kiosk stands at.")
def kiosk_add(config_path: str | None, database: str | None, name: str, site_name: str) -> None:
    """Add a kiosk; prints its token, the only line on stdout."""
    with _open(config_path, database) as store:
        issued = store.create_kiosk(name, site_name)
    _token_out(issued.token)


@kiosk.command("list")
@_common
def kiosk_list(config_path: str | None, database: str | None) -> None:
    """List the kiosks: site, last contact, backlog, clock, revoked."""
    with _open(config_path, database) as store:
        found = store.kiosks()
    for k in found:
        clock = "clock ok"
        if k.clock_skew_seconds is not None:
            clock = (
                f"clock {'FLAGGED' if k.clock_flagged else 'ok'} ({k.clock_skew_seconds:+.1f} s)"
            )
        state = f"revoked {_when(k.revoked_utc)}" if k.revoked else "active"
        click.echo(
            f"{k.name:<20} {k.site:<16} last seen {_when(k.last_seen_utc):<20} "
            f"backlog {k.backlog:<6} {clock:<28} {state}"
        )
    click.echo(f"{len(found)} kiosk{'' if len(found) == 1 else 's'}")


@kiosk.command("revoke")
@_common
@click.argument("name")
def kiosk_revoke(config_path: str | None, database: str | None, name: str) -> None:
    """Revoke a kiosk and its tokens: it is refused from now on."""
    with _open(config_path, database) as store:
        store.revoke_kiosk(name)
    click.echo(f"kiosk {name!r} revoked")


@kiosk.command("rotate")
@_common
@click.argument("name")
def kiosk_rotate(config_path: str | None, database: str | None, name: str) -> None:
    """Give a kiosk a new token (printed, the only line on stdout); the old one stops."""
    with _open(config_path, database) as store:
        token = store.rotate_kiosk_token(name)
    _token_out(token)


# --------------------------------------------------------------------- admins
@central.group()
def admin() -> None:
    """Admin tokens, for HR admins' tools (the admin API)."""


@admin.command("add")
@_common
@click.argument("name")
def admin_add(config_path: str | None, database: str | None, name: str) -> None:
    """Make an admin token; prints it, the only line on stdout."""
    with _open(config_path, database) as store:
        token = store.create_admin(name)
    _token_out(token)


@admin.command("list")
@_common
def admin_list(config_path: str | None, database: str | None) -> None:
    """List the admin tokens (never their secrets)."""
    with _open(config_path, database) as store:
        found = store.admins()
    for a in found:
        state = f"revoked {_when(a.revoked_utc)}" if a.revoked_utc else "active"
        click.echo(f"{a.name:<20} token {a.token_id}  created {_when(a.created_utc)}  {state}")
    click.echo(f"{len(found)} admin token{'' if len(found) == 1 else 's'}")


@admin.command("revoke")
@_common
@click.argument("name")
def admin_revoke(config_path: str | None, database: str | None, name: str) -> None:
    """Revoke every token of an admin."""
    with _open(config_path, database) as store:
        count = store.revoke_admin(name)
    click.echo(f"admin {name!r}: {count} token{'' if count == 1 else 's'} revoked")


# --------------------------------------------------------------------- erasures
@central.command()
@_common
def erasures(config_path: str | None, database: str | None) -> None:
    """Each erasure and which kiosks have (and have not) confirmed it."""
    with _open(config_path, database) as store:
        found = store.erasures()
    for e in found:
        confirmed = ", ".join(e.confirmed) or "none"
        line = (
            f"version {e.version:<6} {e.person_id:<24} erased {_when(e.at_utc)} by {e.actor}; "
            f"confirmed by {confirmed}"
        )
        if e.pending:
            line += f"; waiting for {', '.join(e.pending)}"
        click.echo(line)
    waiting = sum(1 for e in found if e.pending)
    click.echo(
        f"{len(found)} erasure{'' if len(found) == 1 else 's'}, "
        f"{waiting} not yet confirmed by every kiosk"
    )
