"""A throwaway PostgreSQL cluster for the tests, and a fresh database per test.

The cluster is started once per test run, from the server binaries of Debian's
``postgresql`` package (``/usr/lib/postgresql/<version>/bin``), in a temporary folder:
``initdb -A trust``, a free port on 127.0.0.1, its unix socket in that folder, fsync
off. ``initdb`` refuses to run as root, so as root the cluster runs as the ``postgres``
user (``runuser -u postgres --``) in a folder owned by it. It is stopped at the end.

Without the binaries the tests that need PostgreSQL are skipped, with the reason, unless
``CLOCKFACE_REQUIRE_POSTGRES=1`` (CI sets it): then they fail.

Use it through the fixtures (``postgres_cluster``, session-wide; ``postgres_url``, a new
empty database for each test), either registered for every module with
``pytest_plugins = ["tests.helpers.postgres"]`` in ``tests/conftest.py``, or imported by a test
module (``from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401``);
both share one cluster.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRE_ENV = "CLOCKFACE_REQUIRE_POSTGRES"
_RUN_AS = "postgres"


def find_bin_dir() -> Path | None:
    """The newest PostgreSQL server's bin folder with initdb and pg_ctl, or None."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        folder = Path(initdb).parent
        version = folder.parent.name
        if (folder / "pg_ctl").exists() and version.isdigit():
            found.append((int(version), folder))
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresCluster:
    """A running throwaway cluster; ``url(name)`` is a SQLAlchemy URL of one database."""

    bin_dir: Path
    root: Path
    port: int
    user: str = "postgres"
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL of ``database``, which is created if it does not exist."""
        if database != "postgres":
            self.create_database(database, exist_ok=True)
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, bin_dir: Path, root: Path | None = None) -> PostgresCluster:
        """Start a cluster in ``root`` (default: a new temporary folder). As root the
        cluster always gets a new temporary folder, which the postgres user owns."""
        as_root = os.geteuid() == 0
        if root is None or as_root:
            root = Path(tempfile.mkdtemp(prefix="clockface-pg-"))
        else:
            root.mkdir(parents=True, exist_ok=True)
        if as_root:
            entry = pwd.getpwnam(_RUN_AS)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        cluster = cls(bin_dir=bin_dir, root=root, port=_free_port())
        cluster._run(
            str(bin_dir / "initdb"),
            "-D",
            str(cluster.data),
            "-A",
            "trust",
            "-U",
            cluster.user,
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {cluster.port} -h 127.0.0.1 -k {root} -F "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        cluster._run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(cluster.data),
            "-o",
            options,
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return cluster

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str | None = None, *, exist_ok: bool = False) -> str:
        """A new empty database (named ``test_<pid>_<n>`` unless given); returns its name."""
        import psycopg

        name = name or f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True
        ) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if found is None or not exist_ok:
                conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", _RUN_AS, "--", *command]
        result = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise subprocess.CalledProcessError(
                result.returncode, command, result.stdout, result.stderr + tail
            )


@contextlib.contextmanager
def cluster(root: Path | None = None) -> Iterator[PostgresCluster]:
    """A throwaway cluster for a script (bench/), stopped and removed at the end.
    Raises RuntimeError when PostgreSQL is not installed."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin "
            "(apt-get install postgresql)"
        )
    started = PostgresCluster.start(bin_dir, root)
    try:
        yield started
    finally:
        started.stop()


_lock = threading.Lock()
_shared: PostgresCluster | None = None


def shared_cluster() -> PostgresCluster:
    """The one cluster of this test run, started on first use; skips (or fails) the
    calling test when PostgreSQL is not installed."""
    global _shared
    with _lock:
        if _shared is not None:
            return _shared
        bin_dir = find_bin_dir()
        if bin_dir is None:
            reason = "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin"
            if os.environ.get(REQUIRE_ENV) == "1":
                pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires them")
            pytest.skip(f"{reason} (apt-get install postgresql)")
        try:
            _shared = PostgresCluster.start(bin_dir)
        except (OSError, subprocess.SubprocessError) as err:
            detail = getattr(err, "stderr", "") or ""
            pytest.fail(f"could not start a throwaway PostgreSQL: {err} {detail}".strip())
        atexit.register(_shared.stop)
        return _shared


@pytest.fixture(scope="session")
def postgres_cluster() -> PostgresCluster:
    """The throwaway PostgreSQL cluster of this run (stopped when the run ends)."""
    return shared_cluster()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A SQLAlchemy URL of a new, empty database, dropped after the test."""
    name = postgres_cluster.create_database()
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)
