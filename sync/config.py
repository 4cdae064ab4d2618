"""The sync agent's configuration: the ``[sync]`` table of the kiosk's TOML file.

    [sync]
    server = "https://attendance.example.org"
    token_file = "/etc/clockface/kiosk-token"

Precedence, lowest first: the defaults below, the file's ``[sync]`` table, the
environment (``CLOCKFACE_SYNC_<KEY>``, e.g. ``CLOCKFACE_SYNC_SERVER``), then the options
given to ``clockface sync ...``. Only ``[sync]`` is read here (``[kiosk]`` belongs to
``kiosk/config.py``). Unknown keys, wrong types and impossible values are refused with one
line naming the file (or variable) and the key.

The kiosk token, first found wins: ``--token-file``; ``CLOCKFACE_SYNC_TOKEN`` (the token
itself); ``token_file`` (the file's, or ``CLOCKFACE_SYNC_TOKEN_FILE``); the systemd
credential ``$CREDENTIALS_DIRECTORY/kiosk-token`` (``LoadCredential=kiosk-token:...`` in
the unit). The token is never printed or logged.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clockface.config_values import from_env, from_toml, read_table, to_toml, warn_unknown
from clockface.errors import ConfigError
from sync.protocol import MAX_BATCH_EVENTS

ENV_PREFIX = "CLOCKFACE_SYNC_"
TOKEN_ENV = "CLOCKFACE_SYNC_TOKEN"
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
CREDENTIAL_NAME = "kiosk-token"
_MAX_TOKEN_BYTES = 4096


_HIGHEST_SECONDS = {
    # More is a typo (or inf): the agent would sleep for ever, or overflow the sleep.
    "interval_seconds": 86_400.0,
    "backoff_base_seconds": 3_600.0,
    "backoff_cap_seconds": 86_400.0,
    "timeout_seconds": 3_600.0,
}


@dataclass(frozen=True)
class SyncConfig:
    """Where the central service is and how the agent talks to it (see ``HELP``)."""

    server: str
    token_file: str = ""
    batch_size: int = 500
    interval_seconds: float = 10.0
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 300.0
    timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "server", check_server_url(self.server))
        if not 1 <= self.batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(
                f"batch_size must be 1 to {MAX_BATCH_EVENTS} (the protocol's most), "
                f"not {self.batch_size}"
            )
        for name, highest in _HIGHEST_SECONDS.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= highest):
                raise ValueError(
                    f"{name} must be a number above 0 and {highest:g} at most, not {value!r}"
                )
        if self.backoff_cap_seconds < self.backoff_base_seconds:
            raise ValueError(
                f"backoff_cap_seconds ({self.backoff_cap_seconds}) must be at least "
                f"backoff_base_seconds ({self.backoff_base_seconds})"
            )


HELP: dict[str, str] = {
    "server": "the central service's URL, http(s)://host[:port][/path] (required, no default)",
    "token_file": "file holding this kiosk's token (`clockface central kiosk add` prints it); "
    'empty: CLOCKFACE_SYNC_TOKEN, or systemd\'s "$CREDENTIALS_DIRECTORY/kiosk-token"',
    "batch_size": f"events per request, 1 to {MAX_BATCH_EVENTS} (halved while the service "
    "answers 413, too large)",
    "interval_seconds": "seconds between two sync rounds after a success",
    "backoff_base_seconds": "first retry after a failure waits up to this long; each further "
    "failure doubles the bound (the wait is random below it: full jitter)",
    "backoff_cap_seconds": "the longest wait between retries (a Retry-After from the "
    "service may ask for more)",
    "timeout_seconds": "seconds to connect, or to wait for an answer, before giving up a try",
}
_FIELDS = {f.name: f for f in dataclasses.fields(SyncConfig)}
_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(SyncConfig) if f.name != "server"
}


def check_server_url(url: object) -> str:
    """A central service URL: http or https, a host, no query, fragment or user name
    (a password in a URL would end up in logs). Returns it without a trailing slash."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(
            "no central service URL: set server in [sync], CLOCKFACE_SYNC_SERVER or --server"
        )
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise ValueError(f"server {text!r} is not a URL: {err}") from None
    del port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"server {text!r} is not an http(s) URL; give e.g. https://attendance.example.org"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("server must not hold a user name or password: use token_file")
    if parts.query or parts.fragment:
        raise ValueError(f"server {text!r} must not have a query or fragment")
    return text.rstrip("/")


def _from_toml(name: str, value: object, where: str) -> object:
    return from_toml(_kind(name), f"{name} in [sync]", value, where)


def _from_env(name: str, text: str, variable: str) -> object:
    return from_env(_kind(name), name, text, variable)


def _kind(name: str) -> type:
    return str if name == "server" else type(_DEFAULTS[name])


def _read_table(path: Path) -> dict[str, Any]:
    table = read_table(path, "sync", _FIELDS, command="clockface sync default-config")
    return {name: _from_toml(name, value, str(path)) for name, value in table.items()}


def load_sync_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    server: str | None = None,
) -> SyncConfig:
    """The defaults, then the file's ``[sync]`` (if a file is given), then the
    environment, then ``server`` (the command-line option). ``--token-file`` goes to
    :func:`read_token`, which weighs it against ``CLOCKFACE_SYNC_TOKEN``."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    where = "the environment"
    if path is not None:
        values.update(_read_table(Path(path)))
        where = str(path)
    warn_unknown(environ, ENV_PREFIX, (*_FIELDS, TOKEN_ENV.removeprefix(ENV_PREFIX)))
    for name in _FIELDS:
        variable = f"{ENV_PREFIX}{name.upper()}"
        if variable in environ:
            values[name] = _from_env(name, environ[variable], variable)
            where = variable if path is None else f"{path} (or {variable})"
    if server is not None:
        values["server"] = server
        where = "--server"
    try:
        return SyncConfig(**values)
    except TypeError:  # no server at all
        raise ConfigError(
            "no central service URL: set server in [sync] of the kiosk's config file, "
            "CLOCKFACE_SYNC_SERVER or --server"
        ) from None
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def read_token(
    config: SyncConfig,
    environ: Mapping[str, str] | None = None,
    *,
    token_file: str | None = None,
) -> str:
    """This kiosk's token: from ``token_file`` (the ``--token-file`` option) if given,
    else ``CLOCKFACE_SYNC_TOKEN``, else the config's ``token_file``, else the systemd
    credential."""
    environ = os.environ if environ is None else environ
    if token_file:
        return _token_from_file(Path(token_file), "--token-file")
    if environ.get(TOKEN_ENV):
        return check_token(environ[TOKEN_ENV], TOKEN_ENV)
    if config.token_file:
        return _token_from_file(Path(config.token_file), "token_file")
    credentials = environ.get(CREDENTIALS_ENV)
    if credentials:
        return _token_from_file(Path(credentials) / CREDENTIAL_NAME, "the systemd credential")
    raise ConfigError(
        "no kiosk token: set token_file in [sync] (or --token-file), CLOCKFACE_SYNC_TOKEN, "
        f"or a systemd credential named {CREDENTIAL_NAME}"
    )


def _token_from_file(path: Path, what: str) -> str:
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_TOKEN_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what}: no token file at {path}: check the path") from None
    except OSError as err:
        raise ConfigError(
            f"{what}: cannot read the token file {path}: {err.strerror or err}"
        ) from None
    if len(raw) > _MAX_TOKEN_BYTES:
        raise ConfigError(f"{what}: {path} is too big to be a token")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: {path} does not hold a token (not ASCII text)") from None
    return check_token(text, f"{what} {path}")


def check_token(text: str, where: str) -> str:
    """A bearer token as read from a file or the environment: one word of printable ASCII,
    surrounding white space dropped; ConfigError naming ``where`` otherwise."""
    token = text.strip()
    if not token:
        raise ConfigError(f"{where}: the token is empty")
    if not all(33 <= ord(c) <= 126 for c in token):
        # The message never repeats the token itself.
        raise ConfigError(f"{where}: a token is one word of printable ASCII, without spaces")
    return token


def default_section() -> str:
    """The ``[sync]`` table with every key at its default, each commented; ``server``
    (required, no default) commented out with an example."""
    lines = [
        "[sync]",
        f"# Read by `clockface sync`; {ENV_PREFIX}<KEY> in the environment overrides a key.",
        f"# {HELP['server']}",
        '# server = "https://attendance.example.org"',
    ]
    for name, default in _DEFAULTS.items():
        lines.append(f"# {HELP[name]}")
        lines.append(f"{name} = {to_toml(default)}")
    return "\n".join(lines) + "\n"


def describe(config: SyncConfig) -> list[str]:
    """``key = value`` for every key, as in the file (the token itself is never shown)."""
    return [f"{name} = {to_toml(getattr(config, name))}" for name in ("server", *_DEFAULTS)]
