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
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from central.config import CentralConfig
    from central.store import CentralStore
    from central.web.accounts import Accounts

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
    return CentralStore.open(
        config.database,
        clock_skew_seconds=config.clock_skew_seconds,
        key_file=config.template_key_file or None,
    )


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _token_out(token: str) -> None:
    click.echo(token)
    click.echo(_TOKEN_NOTE, err=True)


@click.group()
def central() -> None:
    """The central attendance service: serve the API and the supervisors' web page,
    manage sites, kiosks, tokens and supervisor accounts."""


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
    from central.serving import uvicorn_config
    from central.store import CentralStore

    config = _config(config_path, database=database, host=host, port=port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with CentralStore.open(
        config.database,
        clock_skew_seconds=config.clock_skew_seconds,
        key_file=config.template_key_file or None,
    ) as store:
        listener = _listen(config.host, config.port)
        bound_port = listener.getsockname()[1]
        shown = f"[{config.host}]" if ":" in config.host else config.host
        app = create_app(store, config)
        server = uvicorn.Server(uvicorn_config(app, config))
        logging.getLogger("clockface.central").info(
            "clockface central: serving http://%s:%d (database %s)", shown, bound_port, store.where
        )
        _warn_offenders(store)
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


def _warn_offenders(store: CentralStore) -> None:
    """Log the people stored under older roster rules (their ids, names and teams: no
    template is read, so a large roster starts as fast; ``enroll check-roster`` checks
    the templates too), one line each: kiosks refuse a gallery delta that carries them
    until they are erased."""
    from clockface.roster import roster_offenders

    log = logging.getLogger("clockface.central")
    found = roster_offenders((p.person_id, p.name, p.team, None) for p in store.people())
    for offender in found:
        log.warning("roster: %s", offender)
    if found:
        log.warning(
            "roster: %d %s stored under older rules (clockface enroll check-roster "
            "--central-db lists them): a kiosk refuses roster changes that carry them; "
            "erase them and enroll them again under a valid id",
            len(found),
            "person" if len(found) == 1 else "people",
        )


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
    """List the kiosks: site, last contact, backlog, clock, event chain, revoked."""
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
            f"backlog {k.backlog:<6} {clock:<28} chain {k.chain_text:<24} {state}"
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


@central.command("rotate-key")
@_common
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The new key: a file of 32 random bytes, mode 0600; made there if missing.",
)
def rotate_key(config_path: str | None, database: str | None, new_key_file: str) -> None:
    """Re-seal every face template under a new key, in one transaction.

    The current key is the config's template_key_file (or the systemd credential,
    $CLOCKFACE_TEMPLATE_KEY_FILE, or DATABASE.key beside a SQLite database). On any
    failure nothing changes. The old key file is left where it is, for you to destroy;
    then set template_key_file to the new one. Kiosks are not affected: each seals the
    templates it receives under its own key.
    """
    from clockface.template_key import open_or_create_key_file, rotation_report

    with _open(config_path, database) as store:
        old = store.template_key_file
        if old is not None and old.resolve() == Path(new_key_file).resolve():
            raise click.ClickException(f"{new_key_file} is the key in use: give a new file")
        new, _ = open_or_create_key_file(new_key_file)
        count = store.rotate_key(new.path)
    sqlite_file = store.sqlite_path
    default = sqlite_file.with_name(sqlite_file.name + ".key") if sqlite_file else None
    for line in rotation_report(count, old, new, default=default):
        click.echo(line)


# --------------------------------------------------------------------- supervisors
def _accounts(config_path: str | None, database: str | None) -> tuple[CentralStore, Accounts]:
    from datetime import timedelta

    from central.store import CentralStore
    from central.web.accounts import Accounts, LoginPolicy

    config = _config(config_path, database=database)
    store = CentralStore.open(
        config.database,
        clock_skew_seconds=config.clock_skew_seconds,
        key_file=config.template_key_file or None,
    )
    policy = LoginPolicy(
        max_failed=config.web_max_failed_logins,
        lockout=timedelta(minutes=config.web_lockout_minutes),
    )
    return store, Accounts(store, policy)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _password(password_file: str | None) -> str:
    """The new password: the first line of --password-file (``-``: standard input), or
    asked twice at the terminal."""
    from central.web.passwords import check_password

    if password_file is not None:
        from clockface.errors import InputFileError

        try:
            if password_file == "-":
                text = sys.stdin.readline()
            else:
                with open(password_file, encoding="utf-8") as handle:
                    text = handle.readline()
        except (OSError, UnicodeDecodeError) as err:
            raise InputFileError(
                f"cannot read the password file {password_file}: "
                f"{getattr(err, 'strerror', None) or err}"
            ) from None
        return check_password(text.rstrip("\r\n"))
    if not _stdin_is_terminal():
        raise click.UsageError(
            "no terminal to ask for the password: give --password-file FILE (- for stdin)"
        )
    password: str = click.prompt(
        "Password", hide_input=True, confirmation_prompt="Repeat the password"
    )
    return check_password(password)


_PASSWORD_FILE = click.option(
    "--password-file",
    metavar="FILE",
    help="Read the password from the first line of FILE (- for standard input) instead "
    "of asking twice at the terminal.",
)


@central.group()
def supervisor() -> None:
    """Supervisors' accounts for the web page (today's board and reports).

    A supervisor signs in at the service's address (http://HOST:PORT/) with the name and
    password given here. Passwords are at least 12 characters and stored as scrypt
    hashes; wrong passwords lock an account for a while (web_max_failed_logins,
    web_lockout_minutes). Every change and every sign-in is in the audit log.
    """


@supervisor.command("add")
@_common
@click.argument("name")
@_PASSWORD_FILE
def supervisor_add(
    config_path: str | None, database: str | None, name: str, password_file: str | None
) -> None:
    """Add a supervisor account."""
    from central.web.accounts import check_name

    check_name(name)
    password = _password(password_file)
    store, accounts = _accounts(config_path, database)
    with store:
        accounts.add(name, password)
    click.echo(f"supervisor {name!r} added")


@supervisor.command("list")
@_common
def supervisor_list(config_path: str | None, database: str | None) -> None:
    """List the supervisors: disabled, locked, failed sign-ins, last sign-in."""
    from central.web.sessions import Sessions

    store, accounts = _accounts(config_path, database)
    with store:
        found = accounts.supervisors()
        now = store.now()
        sessions = Sessions(store)
        counts = {s.name: sessions.count(s.id) for s in found}
    for s in found:
        if s.disabled_utc is not None:
            state = f"disabled {_when(s.disabled_utc)}"
        elif s.locked(now):
            state = f"LOCKED until {_when(s.locked_until_utc)}"
        else:
            state = "active"
        click.echo(
            f"{s.name:<24} {state:<32} failed sign-ins {s.failed_logins:<3} "
            f"last sign-in {_when(s.last_login_utc):<20} sessions {counts[s.name]}"
        )
    click.echo(f"{len(found)} supervisor{'' if len(found) == 1 else 's'}")


@supervisor.command("disable")
@_common
@click.argument("name")
def supervisor_disable(config_path: str | None, database: str | None, name: str) -> None:
    """Disable an account: it cannot sign in, and its sessions end now."""
    store, accounts = _accounts(config_path, database)
    with store:
        accounts.disable(name)
    click.echo(f"supervisor {name!r} disabled; signed out everywhere")


@supervisor.command("enable")
@_common
@click.argument("name")
def supervisor_enable(config_path: str | None, database: str | None, name: str) -> None:
    """Enable an account again (this also lifts a lock-out)."""
    store, accounts = _accounts(config_path, database)
    with store:
        accounts.enable(name)
    click.echo(f"supervisor {name!r} enabled")


@supervisor.command("set-password")
@_common
@click.argument("name")
@_PASSWORD_FILE
def supervisor_set_password(
    config_path: str | None, database: str | None, name: str, password_file: str | None
) -> None:
    """Give an account a new password; its sessions end and a lock-out is lifted."""
    password = _password(password_file)
    store, accounts = _accounts(config_path, database)
    with store:
        accounts.set_password(name, password)
    click.echo(f"supervisor {name!r}: new password set; signed out everywhere")


@supervisor.command("sign-out")
@_common
@click.argument("name")
def supervisor_sign_out(config_path: str | None, database: str | None, name: str) -> None:
    """End every web session of a supervisor."""
    store, accounts = _accounts(config_path, database)
    with store:
        count = accounts.sign_out(name)
    click.echo(f"supervisor {name!r}: {count} session{'' if count == 1 else 's'} ended")
