"""The click options more than one part's commands take: one definition each.

A package's CLI imports its shared options from here, never from another package's CLI
(only the root command, :mod:`clockface.cli`, imports the CLIs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

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
