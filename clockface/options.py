"""The click options more than one part's commands take: one definition each.

A package's CLI imports its shared options from here, never from another package's CLI
(only the root command, :mod:`clockface.cli`, imports the CLIs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click
from click.core import ParameterSource

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=tuple[str, ...])

DB_ENV = "CLOCKFACE_DB"
CENTRAL_DB_ENV = "CLOCKFACE_CENTRAL_DATABASE"


def db_option(help: str, *, default: str | None = "clockface.db") -> Callable[[F], F]:
    """``--db`` (or ``CLOCKFACE_DB``), the kiosk's SQLite database, for every command."""
    return click.option(
        "--db",
        "db_path",
        envvar=DB_ENV,
        default=default,
        show_default=default is not None,
        show_envvar=True,
        type=click.Path(dir_okay=False),
        help=help,
    )


def central_db_option(help: str) -> Callable[[F], F]:
    """``--central-db`` (or ``CLOCKFACE_CENTRAL_DATABASE``): the central database, a SQLite
    file or a PostgreSQL URL; the command gets ``central_db``."""
    return click.option(
        "--central-db",
        "central_db",
        metavar="PATH|URL",
        envvar=CENTRAL_DB_ENV,
        show_envvar=True,
        help=help,
    )


KIOSK_CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    envvar="CLOCKFACE_KIOSK_CONFIG",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="A kiosk.toml (see `clockface kiosk default-config`); options given here override it.",
)

DETECTOR_OPTION = click.option(
    "--detector",
    type=click.Choice(["yunet", "hog", "cnn"]),
    default="yunet",
    show_default=True,
    help="Face detector: YuNet (OpenCV's) finds small faces fast; HOG (dlib's) is the one "
    "before it; CNN (dlib's) finds more turned faces but is slow on a CPU.",
)


def one_of(
    choices: Sequence[C],
    values: Mapping[str, object],
    *,
    two_given: Callable[[list[C]], str],
    two_set: Callable[[list[C]], str],
) -> C:
    """The one of ``choices`` asked for, each ``(parameter, option, environment variable,
    ...)`` with its value in ``values``: an option given on the command line beats the
    environment; with neither, the first (whose option has a default). Two given on the
    command line, or (none there) two set in the environment, are a UsageError worded by
    ``two_given`` or ``two_set`` from them. In a click command only."""
    given_by = click.get_current_context().get_parameter_source

    def given(source: ParameterSource) -> list[C]:
        return [c for c in choices if values[c[0]] is not None and given_by(c[0]) == source]

    chosen = given(ParameterSource.COMMANDLINE)
    if len(chosen) > 1:
        raise click.UsageError(two_given(chosen))
    if not chosen:
        chosen = given(ParameterSource.ENVIRONMENT)
        if len(chosen) > 1:
            raise click.UsageError(two_set(chosen))
    return chosen[0] if chosen else choices[0]
