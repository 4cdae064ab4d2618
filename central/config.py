"""The central service's configuration: one TOML file, every key with a default and a comment.

    clockface central default-config > /etc/clockface/central.toml   # every key, commented
    clockface central check-config --config /etc/clockface/central.toml
    clockface central serve --config /etc/clockface/central.toml

Precedence, lowest first: the defaults below, the file's ``[central]`` table, the
environment (``CLOCKFACE_CENTRAL_<KEY>``, e.g.
``CLOCKFACE_CENTRAL_DATABASE=postgresql://clockface@db/clockface``), then the options
given on the command line. Unknown keys, wrong types and impossible values are refused
with one line that names the file (or variable) and the key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clockface.config_values import from_env, from_toml, read_table, to_toml, warn_unknown
from clockface.consent import DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS
from clockface.errors import ConfigError
from kiosk.config import check_legal_basis
from sync.protocol import MAX_BODY_BYTES

ENV_PREFIX = "CLOCKFACE_CENTRAL_"
CONFIG_ENV = "CLOCKFACE_CENTRAL_CONFIG"
MIN_BODY_BYTES = 64 * 1024  # a batch of a few hundred events must fit


@dataclass(frozen=True)
class CentralConfig:
    """Where the central service keeps its data, where it listens, what it tolerates."""

    database: str = "central.db"
    host: str = "127.0.0.1"
    port: int = 8470
    clock_skew_seconds: float = 120.0
    max_body_bytes: int = MAX_BODY_BYTES
    web_idle_minutes: int = 30
    web_session_hours: int = 12
    web_max_failed_logins: int = 5
    web_lockout_minutes: int = 15
    web_secure_cookies: bool = False
    web_refresh_seconds: int = 60
    template_key_file: str = ""
    legal_basis: str = "consent"
    legal_basis_note: str = ""
    retention_days: int = DEFAULT_RETENTION_DAYS
    trusted_proxies: str = ""

    def proxies(self) -> list[str]:
        """``trusted_proxies`` as a list of addresses and networks."""
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]

    def __post_init__(self) -> None:
        check_legal_basis(self.legal_basis, self.legal_basis_note)
        if not 1 <= self.retention_days <= MAX_RETENTION_DAYS:
            raise ValueError(
                f"retention_days must be 1 to {MAX_RETENTION_DAYS}, not {self.retention_days}"
            )
        if not isinstance(self.database, str) or not self.database.strip():
            raise ValueError("database must be a file path or a postgresql:// URL")
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError("host must be an address to listen on, such as 127.0.0.1")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0 to 65535 (0: any free port), not {self.port}")
        if not (
            0 < self.clock_skew_seconds <= 7 * 86_400 and math.isfinite(self.clock_skew_seconds)
        ):
            raise ValueError(
                f"clock_skew_seconds must be a positive number of 604800 (a week) at most, "
                f"not {self.clock_skew_seconds}"
            )
        if not MIN_BODY_BYTES <= self.max_body_bytes <= 64 * 1024 * 1024:
            raise ValueError(
                f"max_body_bytes must be {MIN_BODY_BYTES} to {64 * 1024 * 1024}, "
                f"not {self.max_body_bytes}"
            )
        for name, lowest, highest in _WEB_LIMITS:
            value = getattr(self, name)
            if not lowest <= value <= highest:
                raise ValueError(f"{name} must be {lowest} to {highest}, not {value}")
        if not isinstance(self.trusted_proxies, str):
            raise ValueError("trusted_proxies must be a string of addresses, comma-separated")
        for proxy in self.proxies():
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {proxy!r} is not an IP address or network "
                    "(e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        if self.web_idle_minutes > self.web_session_hours * 60:
            raise ValueError(
                f"web_idle_minutes ({self.web_idle_minutes}) must not exceed "
                f"web_session_hours ({self.web_session_hours}) in minutes"
            )


_WEB_LIMITS = (
    ("web_idle_minutes", 1, 24 * 60),
    ("web_session_hours", 1, 7 * 24),
    ("web_max_failed_logins", 1, 100),
    ("web_lockout_minutes", 1, 24 * 60),
    ("web_refresh_seconds", 10, 3600),
)


HELP: dict[str, str] = {
    "database": "where the service keeps everything: a SQLite file path (created, mode "
    "0600) or postgresql://USER:PASSWORD@HOST:PORT/NAME",
    "host": "the address to listen on (127.0.0.1: this machine only; 0.0.0.0: every "
    "interface, behind a TLS proxy)",
    "port": "the TCP port to listen on (0: any free port)",
    "clock_skew_seconds": "a kiosk whose clock differs from the service's by more than "
    "this many seconds is flagged",
    "max_body_bytes": "request bodies larger than this are refused (413) before being read whole",
    "web_idle_minutes": "the supervisors' web page: a session unused for this many minutes "
    "ends (sign in again)",
    "web_session_hours": "the supervisors' web page: a session ends this many hours after "
    "sign-in, however busy",
    "web_max_failed_logins": "this many wrong passwords in a row lock a supervisor's account",
    "web_lockout_minutes": "how long a locked supervisor account stays locked",
    "web_secure_cookies": "always mark the session cookie Secure (it is anyway on requests "
    "that came over https); true behind a TLS proxy that does not say so",
    "web_refresh_seconds": "how often today's board reloads itself in the browser",
    "template_key_file": "the key that seals face templates at rest: a file of 32 random "
    "bytes, mode 0600 (empty: the systemd credential template-key, "
    "$CLOCKFACE_TEMPLATE_KEY_FILE, else DATABASE.key beside a SQLite database, made on "
    "first use; PostgreSQL needs one given)",
    "legal_basis": '"consent": enrolling someone in the central roster (the admin API, '
    "clockface enroll --server or --central-db) needs their consent record "
    '(--consent-ref --notice-version); another legal basis ("employment-contract", '
    '"legal-obligation", "public-task", "vital-interests") is recorded with each person '
    "instead, and needs legal_basis_note",
    "legal_basis_note": "with a legal basis other than consent: where it is written down "
    "(the contract clause, the law)",
    "trusted_proxies": "the TLS proxies or load balancers in front of the service, "
    "comma-separated addresses or networks (e.g. 10.0.0.5, 10.0.1.0/24): only from them are "
    "X-Forwarded-For and X-Forwarded-Proto believed (empty: from nobody; every client is "
    "counted under the address it connects from)",
    "retention_days": "templates of people deactivated longer than this many days are "
    "purged by clockface enroll purge --central-db (1 to 1095); every kiosk erases them too",
}

_NAMES = tuple(f.name for f in dataclasses.fields(CentralConfig))


def _kind(name: str) -> type:
    return type(getattr(CentralConfig(), name))


def _from_toml(name: str, value: object, where: str) -> object:
    return from_toml(_kind(name), name, value, where)


def _from_env(name: str, text: str, where: str) -> object:
    return from_env(_kind(name), name, text, where)


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> CentralConfig:
    """The defaults, then the file (if given), then the environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_file(Path(path)))
    where = str(path) if path is not None else "the environment"
    warn_unknown(environ, ENV_PREFIX, (*_NAMES, "config"))
    for name in _NAMES:
        env = f"{ENV_PREFIX}{name.upper()}"
        if env in environ:
            values[name] = _from_env(name, environ[env], env)
            where = env if path is None else where
    return build(values, where)


def build(values: Mapping[str, Any], where: str = "the configuration") -> CentralConfig:
    """A validated config from checked values (names as in the file)."""
    unknown = sorted(set(values) - set(_NAMES))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    try:
        return CentralConfig(**values)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def override(config: CentralConfig, **given: Any) -> CentralConfig:
    """``config`` with the command line's options (None: not given) applied."""
    chosen = {k: v for k, v in given.items() if v is not None}
    try:
        return dataclasses.replace(config, **chosen)
    except ValueError as err:
        raise ConfigError(f"the command line: {err}") from None


def _read_file(path: Path) -> dict[str, Any]:
    table = read_table(
        path, "central", HELP, command="clockface central default-config", tables=("central",)
    )
    return {name: _from_toml(name, value, str(path)) for name, value in table.items()}


def default_file() -> str:
    """The whole configuration file with every key at its default, each commented."""
    config = CentralConfig()
    lines = [
        "# clockface central service configuration. Every key has the default shown;",
        f"# delete or change what you need. {ENV_PREFIX}<KEY> in the environment overrides",
        "# a key; the command line's options override both.",
        "",
        "[central]",
    ]
    for name in _NAMES:
        lines.append(f"# {HELP[name]}")
        lines.append(f"{name} = {to_toml(getattr(config, name))}")
    return "\n".join(lines) + "\n"


def describe(config: CentralConfig) -> list[str]:
    """``key = value`` for every key, as in the file (a database password hidden)."""
    out = []
    for name in _NAMES:
        value = getattr(config, name)
        if name == "database":
            value = _hide_password(value)
        out.append(f"{name} = {to_toml(value)}")
    return out


def _hide_password(database: str) -> str:
    if "://" not in database:
        return database
    import sqlalchemy as sa

    try:
        return sa.make_url(database).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<a database URL that cannot be read>"
