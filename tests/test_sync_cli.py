"""``clockface sync``: the commands against a scripted central service on loopback, and
the ``[sync]`` configuration (file, environment, options, token)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from clockface.cli import main
from clockface.errors import ConfigError
from hardware.clock import FakeClockStatus
from kiosk.store import KioskStore
from recognition.gallery import EMBEDDING_DIM
from sync.config import SyncConfig, default_section, describe, load_sync_config, read_token
from tests.helpers.fakes import T0
from tests.helpers.syncserver import TOKEN, ScriptedCentral

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("CLOCKFACE_", "CREDENTIALS_DIRECTORY")):
            monkeypatch.delenv(name)


@pytest.fixture
def central() -> Iterator[ScriptedCentral]:
    with ScriptedCentral() as c:
        yield c


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "kiosk.db"
    with KioskStore.open(path, clock_status=FakeClockStatus()) as store:
        for i in range(3):
            store.append_event(
                f"e{i}",
                "in",
                utc=T0 + timedelta(minutes=i),
                tz="UTC",
                distance=0.3,
                margin=0.2,
                frames=2,
                software_version="0.1.0",
            )
    return path


FAST = {
    "CLOCKFACE_SYNC_TOKEN": TOKEN,
    "CLOCKFACE_SYNC_BACKOFF_BASE_SECONDS": "0.01",
    "CLOCKFACE_SYNC_BACKOFF_CAP_SECONDS": "0.02",
    "CLOCKFACE_SYNC_TIMEOUT_SECONDS": "5",
}


def sync(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["sync", *args], env={**FAST, **(env or {})})


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    return lines[0]


# --------------------------------------------------------------------- once, status
def test_once_sends_events_pulls_the_roster_and_status_says_so(
    central: ScriptedCentral, db: Path
) -> None:
    central.put_person("ada", "Ada", np.full((1, EMBEDDING_DIM), 0.125))
    result = sync("once", "--server", central.url, "--db", str(db))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "sent 3 events: 3 acknowledged; roster version 1 (1 added, 0 updated, 0 erased)\n"
    )
    assert len(central.events) == 3
    assert central.applied == [1]

    status = sync("status", "--db", str(db))
    assert status.exit_code == 0, status.output
    assert f"central service: {central.url}: the roster is managed there" in status.stdout
    assert "roster: version 1 of the central service applied" in status.stdout
    assert "backlog: none, every event is with the central service" in status.stdout
    assert "last success: just now" in status.stdout
    assert "last error: none" in status.stdout
    assert "clock: " in status.stdout
    assert "Ada" not in status.stdout  # names are not status

    again = sync("once", "--server", central.url, "--db", str(db))
    assert again.stdout.startswith("sent 0 events")


def test_enroll_is_refused_once_attached_and_detach_returns_the_roster(
    central: ScriptedCentral, db: Path
) -> None:
    assert sync("once", "--server", central.url, "--db", str(db)).exit_code == 0
    with KioskStore.open(db) as store:
        assert store.managed_by() == central.url
    detached = sync("detach", "--db", str(db))
    assert detached.stdout == f"detached from {central.url}: the roster is managed here again\n"
    assert sync("detach", "--db", str(db)).stdout.startswith("this kiosk was not attached")
    with KioskStore.open(db) as store:
        store.add_person("local", "Local")


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--server", "ftp://central"], {}, "is not an http(s) URL"),
        (["--server", "https://user:pw@central"], {}, "must not hold a user name or password"),
        (["--server", "central.example.org"], {}, "is not an http(s) URL"),
        ([], {}, "no central service URL"),
        (
            ["--server", "https://central.example.org"],
            {"CLOCKFACE_SYNC_TOKEN": ""},
            "no kiosk token",
        ),
        (
            ["--server", "https://central.example.org", "--token-file", "/nonexistent/token"],
            {},
            "no token file at /nonexistent/token",
        ),
        (
            ["--server", "https://central.example.org"],
            {"CLOCKFACE_SYNC_BATCH_SIZE": "lots"},
            "CLOCKFACE_SYNC_BATCH_SIZE: 'lots' is not a valid batch_size",
        ),
    ],
)
def test_bad_configuration_is_one_line_and_exit_1(
    db: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    line = one_error_line(sync("once", "--db", str(db), *args, env=env))
    assert expected in line
    assert TOKEN not in line


def test_an_unreachable_service_is_one_error_line(central: ScriptedCentral, db: Path) -> None:
    url = central.url
    central.down()
    result = sync("once", "--server", url, "--db", str(db))
    line = one_error_line(result)
    assert f"Error: the central service at {url} could not be reached" in line
    status = sync("status", "--db", str(db))
    assert "backlog: 3 events waiting to be sent" in status.stdout
    assert "last error: just now" in status.stdout
    assert "last success: never" in status.stdout


def test_a_refused_token_is_one_error_line(central: ScriptedCentral, db: Path) -> None:
    result = sync(
        "once", "--server", central.url, "--db", str(db), env={"CLOCKFACE_SYNC_TOKEN": "revoked"}
    )
    line = one_error_line(result)
    assert line.startswith("Error: the central service refused this kiosk's token (401)")
    assert "revoked" not in line


def test_parked_events_fail_once_show_in_status_and_can_be_retried(
    central: ScriptedCentral, db: Path
) -> None:
    with KioskStore.open(db) as store:
        bad = store.events()[1]
    central.poisoned.add(bad.event_id)
    result = sync("once", "--server", central.url, "--db", str(db))
    assert "1 event was refused by the central service and parked" in one_error_line(result)
    status = sync("status", "--db", str(db)).stdout
    assert status.startswith("NOT DELIVERED: 1 event parked (refused by the central service)")
    assert "parked: 1 event refused by the central service" in status
    assert f"seq 2 (event {bad.event_id})" in status

    central.poisoned.clear()
    assert sync("once", "--server", central.url, "--db", str(db)).exit_code == 0
    assert bad.event_id not in central.events  # parked: not sent
    retried = sync("retry-parked", "--db", str(db))
    assert retried.stdout.startswith("1 parked event back in the outbox")
    assert sync("retry-parked", "--db", str(db)).stdout == "no parked events\n"
    assert sync("once", "--server", central.url, "--db", str(db)).exit_code == 0
    assert bad.event_id in central.events


def test_the_config_file_gives_server_token_and_database(
    central: ScriptedCentral, db: Path, tmp_path: Path
) -> None:
    token = tmp_path / "kiosk-token"
    token.write_text(TOKEN + "\n")
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[kiosk]\ndatabase = "{db}"\n\n[sync]\nserver = "{central.url}/"\n'
        f'token_file = "{token}"\nbatch_size = 2\n'
    )
    result = sync("once", "--config", str(config), env={"CLOCKFACE_SYNC_TOKEN": ""})
    assert result.exit_code == 0, result.output
    assert [len(b) for b in central.batches] == [2, 1]
    # The environment's token overrides the file's token_file; --token-file overrides both.
    refused = sync("once", "--config", str(config), env={"CLOCKFACE_SYNC_TOKEN": "wrong"})
    assert "refused this kiosk's token" in one_error_line(refused)
    again = sync(
        "once",
        "--config",
        str(config),
        "--token-file",
        str(token),
        env={"CLOCKFACE_SYNC_TOKEN": "wrong"},
    )
    assert again.exit_code == 0, again.output


def test_default_config_prints_a_loadable_sync_table(tmp_path: Path) -> None:
    result = sync("default-config")
    assert result.exit_code == 0
    assert result.stdout == default_section()
    table = tomllib.loads(result.stdout)["sync"]
    assert "server" not in table  # required: shown commented out
    path = tmp_path / "kiosk.toml"
    path.write_text(result.stdout.replace("# server = ", "server = "))
    config = load_sync_config(path, environ={})
    assert config == SyncConfig(server="https://attendance.example.org")
    assert describe(config)[0] == 'server = "https://attendance.example.org"'


# --------------------------------------------------------------------- run
def test_run_syncs_until_sigterm_then_exits_cleanly(central: ScriptedCentral, db: Path) -> None:
    env = {
        **os.environ,
        **FAST,
        "PYTHONPATH": str(ROOT),
        "CLOCKFACE_SYNC_SERVER": central.url,
        "CLOCKFACE_SYNC_INTERVAL_SECONDS": "0.05",
        "CLOCKFACE_DB": str(db),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "clockface", "sync", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        deadline = time.monotonic() + 50
        while len(central.events) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        with KioskStore.open(db, clock_status=FakeClockStatus()) as kiosk:
            late = kiosk.append_event(
                "late",
                "out",
                utc=T0,
                tz="UTC",
                distance=0.3,
                margin=0.2,
                frames=2,
                software_version="0.1.0",
            )
        while late.event_id not in central.events and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        watchdog.cancel()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "SIGTERM: stopping" in err
    assert TOKEN not in out + err
    assert late.event_id in central.events
    with KioskStore.open(db) as store:
        assert store.backlog() == 0


# --------------------------------------------------------------------- config
def test_config_precedence_file_then_environment_then_options(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text('[sync]\nserver = "https://a.example.org"\nbatch_size = 100\n')
    assert load_sync_config(path, environ={}).batch_size == 100
    environ = {"CLOCKFACE_SYNC_BATCH_SIZE": "7", "CLOCKFACE_SYNC_SERVER": "http://b.test:8080"}
    config = load_sync_config(path, environ=environ)
    assert (config.server, config.batch_size) == ("http://b.test:8080", 7)
    config = load_sync_config(path, environ=environ, server="https://c.example.org/base/")
    assert config.server == "https://c.example.org/base"
    assert config.interval_seconds == 10.0


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ('server = "https://a.test"\nbatch = 5', "unknown key 'batch' in \\[sync\\]"),
        ('server = "https://a.test"\nbatch_size = "5"', "batch_size in \\[sync\\] must be a whole"),
        ('server = "https://a.test"\nbatch_size = 5000', "batch_size must be 1 to 1000"),
        ('server = "https://a.test"\ninterval_seconds = 0', "interval_seconds must be a number"),
        ('server = "https://a.test"\ninterval_seconds = inf', "interval_seconds must be a number"),
        (
            'server = "https://a.test"\ninterval_seconds = 1e15',
            "interval_seconds must be a number above 0 and 86400 at most",
        ),
        ('server = "https://a.test"\ntimeout_seconds = nan', "timeout_seconds must be a number"),
        ('server = "https://a.test"\nbackoff_cap_seconds = 1e300', "86400 at most"),
        (
            'server = "https://a.test"\nbackoff_base_seconds = 10\nbackoff_cap_seconds = 5',
            "must be at least backoff_base_seconds",
        ),
        ('server = "https://a.test?x=1"', "must not have a query"),
        ("server = 5", "server in \\[sync\\] must be a string"),
    ],
)
def test_bad_sync_tables_are_refused(tmp_path: Path, table: str, match: str) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text("[sync]\n" + table + "\n")
    with pytest.raises(ConfigError, match=match) as caught:
        load_sync_config(path, environ={})
    assert str(path) in str(caught.value)


def test_the_token_comes_from_the_first_place_that_has_one(tmp_path: Path) -> None:
    file_token = tmp_path / "token"
    file_token.write_text("  from-file\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "kiosk-token").write_text("from-systemd")
    bare = SyncConfig(server="https://a.test")
    with_file = SyncConfig(server="https://a.test", token_file=str(file_token))
    both = {"CLOCKFACE_SYNC_TOKEN": "from-env", "CREDENTIALS_DIRECTORY": str(credentials)}
    assert read_token(with_file, both) == "from-env"
    assert read_token(bare, both, token_file=str(file_token)) == "from-file"
    assert read_token(with_file, {"CREDENTIALS_DIRECTORY": str(credentials)}) == "from-file"
    assert read_token(bare, both) == "from-env"
    assert read_token(bare, {"CREDENTIALS_DIRECTORY": str(credentials)}) == "from-systemd"
    with pytest.raises(ConfigError, match="no kiosk token"):
        read_token(bare, {})
    (credentials / "kiosk-token").write_text("two words")
    with pytest.raises(ConfigError, match="one word of printable ASCII") as caught:
        read_token(bare, {"CREDENTIALS_DIRECTORY": str(credentials)})
    assert "two words" not in str(caught.value)
    file_token.write_text("")
    with pytest.raises(ConfigError, match="the token is empty"):
        read_token(with_file, {})
