"""Config values from a TOML file or an environment variable, checked against a kind.

Shared by the config loaders of each role (``kiosk/config.py``, ``sync/config.py``,
``central/config.py``): a key's kind is the type of its default (bool, int, float or
str), and a value of another kind is one ConfigError line naming where it came from.
"""

from __future__ import annotations

import difflib
import logging
import tomllib
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from clockface.errors import ConfigError

log = logging.getLogger("clockface.config")
_warned: set[str] = set()

_WANTED = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def read_table(
    path: Path,
    table: str,
    keys: Collection[str],
    *,
    command: str,
    tables: Collection[str] | None = None,
) -> dict[str, object]:
    """The ``[table]`` of the TOML file at ``path`` as tomllib reads it (no table: empty).

    Refuses in one ConfigError line a missing or unreadable file, text that is not TOML,
    a top-level name outside ``tables`` (when given: the tables the file may hold), a
    ``table`` that is not a table, and a key not in ``keys`` (naming ``command``, the
    one that writes every key)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no config file at {path}: check the path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    if tables is not None:
        unknown = sorted(set(document) - set(tables))
        if unknown:
            raise ConfigError(
                f"{path}: unknown table or key {unknown[0]!r}; "
                + (
                    f"only [{table}] is read"
                    if list(tables) == [table]
                    else "the tables are " + ", ".join(f"[{t}]" for t in tables)
                )
            )
    found = document.get(table, {})
    if not isinstance(found, dict):
        raise ConfigError(f"{path}: {table} must be a table, [{table}]")
    for name in found:
        if name not in keys:
            raise ConfigError(f"{path}: unknown key {name!r} in [{table}] (see `{command}`)")
    return dict(found)


def from_toml(kind: type, name: str, value: object, where: str) -> object:
    """``value`` as read by tomllib, if it is of ``kind`` (an int is a float too)."""
    ok = (
        (kind is bool and isinstance(value, bool))
        or (kind is int and isinstance(value, int) and not isinstance(value, bool))
        or (kind is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (kind is str and isinstance(value, str))
    )
    if not ok:
        raise ConfigError(f"{where}: {name} must be {_WANTED[kind]}, not {value!r}")
    return float(value) if kind is float else value  # type: ignore[arg-type]


def from_env(kind: type, name: str, text: str, where: str) -> object:
    """The text of an environment variable as ``kind``."""
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in (*_TRUE, *_FALSE):
                raise ValueError(text)
            return lowered in _TRUE
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a valid {name}") from None
    return text


def warn_unknown(environ: Mapping[str, str], prefix: str, keys: Iterable[str]) -> list[str]:
    """Warn, in one line each (once per process), about a variable that starts with
    ``prefix`` but names none of ``keys`` (a misspelt ``CLOCKFACE_KIOSK_COOLDWN_SECONDS``
    would otherwise be ignored without a word), naming the closest variable there is.
    Returns the lines."""
    known = sorted({prefix + key.upper() for key in keys})
    lines = []
    for variable in sorted(environ):
        if not variable.startswith(prefix) or variable in known:
            continue
        suffixes = [name.removeprefix(prefix) for name in known]
        close = difflib.get_close_matches(variable.removeprefix(prefix), suffixes, n=1, cutoff=0.6)
        hint = (
            f"did you mean {prefix}{close[0]}?"
            if close
            else f"the {prefix}* variables are {prefix}<KEY>"
        )
        line = f"{variable} is set, but clockface reads no such variable: {hint}"
        lines.append(line)
        if variable not in _warned:
            _warned.add(variable)
            log.warning("%s", line)
    return lines


_TOML_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_char(c: str) -> str:
    if c in _TOML_ESCAPES:
        return _TOML_ESCAPES[c]
    if ord(c) < 0x20 or ord(c) == 0x7F:  # TOML allows no other control character raw
        return f"\\u{ord(c):04X}"
    return c


def to_toml(value: object) -> str:
    """``value`` (bool, int, float or str) as a TOML value, for the default-file writers.

    A string is a basic string with every control character escaped, so whatever it
    holds, the line it is written on reads back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + "".join(map(_toml_char, value)) + '"'
    return repr(value)
