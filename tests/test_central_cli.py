"""``clockface central``: tokens printed alone on stdout, one-line errors, serve and stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from central.store import CentralStore
from clockface.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["central", *args], env=env)


@pytest.fixture
def db(tmp_path: Path) -> str:
    database = str(tmp_path / "central.db")
    assert (
        run("site", "add", "HQ", "--timezone", "Europe/Paris", "--database", database).exit_code
        == 0
    )
    return database


def assert_one_line_error(result: Result, words: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert words in lines[0], lines[0]
    assert result.stdout == ""


def test_kiosk_add_prints_only_the_token_on_stdout(db: str) -> None:
    result = run("kiosk", "add", "door-1", "--site", "HQ", "--database", db)
    assert result.exit_code == 0, result.output
    (token,) = result.stdout.splitlines()
    assert re.fullmatch(r"cfk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", token)
    assert "not shown again" in result.stderr and token not in result.stderr
    with CentralStore.open(db) as store:
        assert store.authenticate(token).name == "door-1"


def test_token_capture_in_a_shell_works(db: str) -> None:
    script = (
        f'TOKEN=$("{sys.executable}" -m clockface central kiosk add door-1 --site HQ '
        f'--database "{db}") && printf "%s" "$TOKEN"'
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("cfk_") and "\n" not in done.stdout
    with CentralStore.open(db) as store:
        assert store.authenticate(done.stdout).kind == "kiosk"


def test_rotate_revoke_and_list_kiosks(db: str) -> None:
    first = run("kiosk", "add", "door-1", "--site", "HQ", "--database", db).stdout.strip()
    rotated = run("kiosk", "rotate", "door-1", "--database", db)
    assert rotated.exit_code == 0
    (second,) = rotated.stdout.splitlines()
    assert second != first and second.startswith("cfk_")
    listing = run("kiosk", "list", "--database", db)
    assert listing.exit_code == 0
    assert "door-1" in listing.stdout and "HQ" in listing.stdout and "active" in listing.stdout
    assert "backlog 0" in listing.stdout and "last seen never" in listing.stdout
    assert first not in listing.stdout and second not in listing.stdout
    assert run("kiosk", "revoke", "door-1", "--database", db).exit_code == 0
    assert "revoked" in run("kiosk", "list", "--database", db).stdout


def test_admin_tokens(db: str) -> None:
    added = run("admin", "add", "hr-laptop", "--database", db)
    assert added.exit_code == 0
    (token,) = added.stdout.splitlines()
    assert token.startswith("cfa_")
    listing = run("admin", "list", "--database", db).stdout
    assert "hr-laptop" in listing and "active" in listing and token not in listing
    assert_one_line_error(run("admin", "add", "hr-laptop", "--database", db), "already has")
    assert run("admin", "revoke", "hr-laptop", "--database", db).exit_code == 0
    assert "revoked" in run("admin", "list", "--database", db).stdout
    assert_one_line_error(run("admin", "revoke", "nobody", "--database", db), "no admin")


def test_sites_and_erasures(db: str) -> None:
    listing = run("site", "list", "--database", db)
    assert "HQ" in listing.stdout and "Europe/Paris" in listing.stdout
    run("kiosk", "add", "door-1", "--site", "HQ", "--database", db)
    with CentralStore.open(db, actor="hr") as store:
        store.add_person("p1", "Ada")
        store.remove_person("p1")
    result = run("erasures", "--database", db)
    assert result.exit_code == 0
    assert "p1" in result.stdout and "waiting for door-1" in result.stdout
    assert "Ada" not in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("kiosk", "add", "door-1", "--site", "Annex"), "no site 'Annex'"),
        (("site", "add", "Moon", "--timezone", "Moon/Base"), "unknown time zone"),
        (("site", "add", "HQ", "--timezone", "UTC"), "already exists"),
        (("kiosk", "add", "door 1", "--site", "HQ"), "letters, digits"),
        (("kiosk", "revoke", "ghost"), "no kiosk 'ghost'"),
        (("kiosk", "rotate", "ghost"), "no kiosk 'ghost'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(db: str, args: tuple[str, ...], words: str) -> None:
    assert_one_line_error(run(*args, "--database", db), words)


def test_a_duplicate_kiosk_name_is_one_line(db: str) -> None:
    run("kiosk", "add", "door-1", "--site", "HQ", "--database", db)
    assert_one_line_error(
        run("kiosk", "add", "door-1", "--site", "HQ", "--database", db), "already exists"
    )


def test_unreachable_postgresql_is_one_line_without_the_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://clockface:pw-hidden@127.0.0.1:{port}/central?connect_timeout=2"
    result = run("site", "list", "--database", url)
    assert_one_line_error(result, f"127.0.0.1:{port}")
    assert "pw-hidden" not in result.stderr


def test_config_file_environment_and_options(tmp_path: Path) -> None:
    default = run("default-config")
    assert default.exit_code == 0 and "[central]" in default.stdout
    config = tmp_path / "central.toml"
    config.write_text(
        default.stdout.replace('database = "central.db"', f'database = "{tmp_path / "a.db"}"'),
        encoding="utf-8",
    )
    checked = run("check-config", "--config", str(config))
    assert checked.exit_code == 0 and str(tmp_path / "a.db") in checked.stdout
    env = {"CLOCKFACE_CENTRAL_DATABASE": str(tmp_path / "b.db"), "CLOCKFACE_CENTRAL_PORT": "9000"}
    by_env = run("check-config", "--config", str(config), env=env)
    assert str(tmp_path / "b.db") in by_env.stdout and "port = 9000" in by_env.stdout
    by_option = run("check-config", "--config", str(config), "--database", "c.db", env=env)
    assert 'database = "c.db"' in by_option.stdout
    hidden = run("check-config", "--database", "postgresql://u:topsecret@db/x")
    assert "topsecret" not in hidden.stdout and "***" in hidden.stdout
    config.write_text("[central]\nport = 80\nflavour = 'x'\n", encoding="utf-8")
    assert_one_line_error(run("check-config", "--config", str(config)), "unknown key 'flavour'")
    config.write_text("[central]\nport = 'eighty'\n", encoding="utf-8")
    assert_one_line_error(run("check-config", "--config", str(config)), "port must be")
    assert_one_line_error(
        run("check-config", env={"CLOCKFACE_CENTRAL_CLOCK_SKEW_SECONDS": "-1"}),
        "clock_skew_seconds",
    )
    for endless in ("inf", "1e15"):
        assert_one_line_error(
            run("check-config", env={"CLOCKFACE_CENTRAL_CLOCK_SKEW_SECONDS": endless}),
            "clock_skew_seconds must be a positive number of 604800 (a week) at most",
        )


def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    database = str(tmp_path / "central.db")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clockface",
            "central",
            "serve",
            "--database",
            database,
            "--port",
            "0",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"serving (http://127\.0\.0\.1:(\d+))", line)
        assert found, line
        base = found.group(1)
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert response.json() == {"status": "ok"}
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "stopped (SIGTERM)" in err
