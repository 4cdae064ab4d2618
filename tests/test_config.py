"""The kiosk's TOML configuration: defaults, the file, the environment, the command line."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from clockface.cli import kiosk_file, main
from clockface.errors import ConfigError
from kiosk.config import HELP, KioskConfig, default_file, load_config
from kiosk.policy import Mode
from kiosk.settings import KioskSettings
from tests.helpers.shared_faces import FACES, faces_dir

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_file_documents_every_key_and_reads_back_as_the_defaults(
    tmp_path: Path,
) -> None:
    top = {"source", "database", "realtime", "screen", "screen_port", "screen_bind"}
    privacy = {"legal_basis", "legal_basis_note", "retention_days"}
    names = (
        {f.name for f in dataclasses.fields(KioskSettings)}
        | top
        | {"screen_preview", "template_key_file"}
        | privacy
    )
    assert set(HELP) == names
    text = default_file()
    assert set(tomllib.loads(text)["kiosk"]) == names
    lines = text.splitlines()
    for name in names:  # each key right under its own comment
        (i,) = [i for i, line in enumerate(lines) if line.startswith(f"{name} = ")]
        assert lines[i - 1].startswith("# ") and len(lines[i - 1]) > 10, name
    assert load_config(write(tmp_path, text), environ={}) == KioskConfig()
    assert load_config(None, environ={}) == KioskConfig()


def test_values_from_the_file_and_the_environment_override_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[kiosk]\nsource = "video:clip.mp4"\ntimezone = "Europe/Berlin"\nmode = "in"\n'
        "cooldown_seconds = 30\nvotes_required = 3\nrealtime = true\n",
    )
    config = load_config(path, environ={})
    assert (config.source, config.realtime) == ("video:clip.mp4", True)
    s = config.settings
    assert (s.timezone, s.mode, s.cooldown_seconds, s.votes_required) == (
        "Europe/Berlin",
        Mode.IN,
        30.0,
        3,
    )
    env = {
        "CLOCKFACE_KIOSK_MODE": "out",
        "CLOCKFACE_KIOSK_REALTIME": "no",
        "CLOCKFACE_KIOSK_DATABASE": "a.db",
        "CLOCKFACE_DB": "b.db",
    }
    config = load_config(path, environ=env)
    assert (config.settings.mode, config.realtime, config.database) == (Mode.OUT, False, "b.db")
    assert config.settings.timezone == "Europe/Berlin"  # untouched keys keep the file's value


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[kiosk]\ncooldown = 30\n", "unknown key 'cooldown' in [kiosk]"),
        ('[kiosk]\ncooldown_seconds = "soon"\n', "cooldown_seconds must be a number"),
        ("[kiosk]\nvotes_required = 2.5\n", "votes_required must be a whole number"),
        ("[kiosk]\nrealtime = 1\n", "realtime must be true or false"),
        ('[kiosk]\nmode = "sideways"\n', 'mode must be one of "in", "out", "auto"'),
        ('[kiosk]\ntimezone = "Mars/Olympus"\n', "not an IANA time zone"),
        ("[kiosk]\nvotes_required = 6\n", "votes_required cannot exceed max_encodings"),
        ("[kiosk]\ncooldown_seconds = -1\n", "cooldown_seconds must be 0 or more"),
        ("[kiosk]\nthreshold = 0\n", "threshold must be more than 0"),
        ("[kiosk]\ncooldown_seconds = inf\n", "cooldown_seconds must be a finite number"),
        ("[kiosk]\ncooldown_seconds = nan\n", "cooldown_seconds must be a finite number"),
        ("[kiosk]\ncooldown_seconds = 1e15\n", "cooldown_seconds must be 86400 at most"),
        ("[kiosk]\npass_window = 1e300\n", "pass_window must be 3600 at most"),
        ("[kiosk]\nmin_face_px = 99999999999\n", "min_face_px must be 4096 at most"),
        ('[kiosk\nmode = "in"\n', "is not valid TOML"),
        ("[camera]\nindex = 0\n", "unknown table or key 'camera'"),
        ("kiosk = 3\n", "kiosk must be a table"),
    ],
)
def test_bad_files_are_refused_with_one_line_naming_the_file(
    tmp_path: Path, text: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    message = str(err.value)
    assert words in message and str(path) in message and "\n" not in message


def test_bad_environment_values_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CLOCKFACE_KIOSK_COOLDOWN_SECONDS: 'x' is not"):
        load_config(None, environ={"CLOCKFACE_KIOSK_COOLDOWN_SECONDS": "x"})
    with pytest.raises(ConfigError, match="no config file at"):
        load_config(tmp_path / "missing.toml", environ={})


def test_check_config_and_default_config_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    default = runner.invoke(main, ["kiosk", "default-config"])
    assert default.exit_code == 0 and default.output == kiosk_file()
    path = write(tmp_path, '[kiosk]\ntimezone = "America/Chicago"\n')
    ok = runner.invoke(main, ["kiosk", "check-config", "--config", str(path)], env={})
    assert ok.exit_code == 0
    assert f"{path}: ok" in ok.output and 'timezone = "America/Chicago"' in ok.output
    bad = write(tmp_path, "[kiosk]\nvotes = 2\n")
    refused = runner.invoke(main, ["kiosk", "check-config", "--config", str(bad)])
    assert refused.exit_code == 1 and "unknown key 'votes'" in refused.output
    endless = write(tmp_path, "[kiosk]\ncooldown_seconds = inf\n")
    refused = runner.invoke(main, ["kiosk", "check-config", "--config", str(endless)])
    assert refused.exit_code == 1 and "cooldown_seconds must be a finite number" in refused.output


@pytest.mark.parametrize("cooldown", ["inf", "1e15", "nan"])
def test_kiosk_run_refuses_an_endless_cooldown_in_one_line(tmp_path: Path, cooldown: str) -> None:
    db = tmp_path / "kiosk.db"
    args = ["kiosk", "run", "--db", str(db), "--source", "video:none.mp4", "--cooldown", cooldown]
    refused = CliRunner().invoke(main, args, env={})
    assert refused.exit_code == 2 and isinstance(refused.exception, SystemExit)  # usage
    assert "cooldown_seconds must be" in refused.output
    assert "Traceback" not in refused.output and not db.exists()


@pytest.mark.faces
def test_kiosk_runs_from_a_config_file_and_options_override_it(tmp_path: Path) -> None:
    faces_dir()
    db = tmp_path / "kiosk.db"
    enroll = subprocess.run(
        [
            sys.executable,
            "-m",
            "clockface",
            "enroll",
            "add",
            "lin",
            "--name",
            "Lin-Manuel Miranda",
            str(FACES / "lin_manuel_miranda" / "lin_manuel_miranda1.png"),
            "--db",
            str(db),
            "--consent-ref",
            "demo",
            "--notice-version",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert enroll.returncode == 0, enroll.stderr
    video = FACES / "video" / "short_hamilton_clip.mp4"
    path = write(
        tmp_path,
        f'[kiosk]\nsource = "video:{video}"\ndatabase = "{db}"\nmode = "in"\n'
        'timezone = "America/Chicago"\n',
    )
    run = subprocess.run(
        [sys.executable, "-m", "clockface", "kiosk", "run", "--config", str(path), "--mode", "out"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("CLOCKFACE")},
    )
    assert run.returncode == 0, run.stderr
    assert "logged lin, out at" in run.stderr  # --mode beat the file's "in"
    assert "275 frames, 1 event, " in run.stdout


def test_a_written_value_reads_back_whatever_characters_it_holds() -> None:
    """Every control character is escaped (issue 15: the writers escaped only \\ and ")."""
    from clockface.config_values import to_toml
    from kiosk.config import describe

    text = "".join(map(chr, range(128))) + "é\u2028 end"
    assert tomllib.loads(f"k = {to_toml(text)}") == {"k": text}
    assert tomllib.loads(f"k = {to_toml(True)}\nn = {to_toml(2)}\nx = {to_toml(0.5)}") == {
        "k": True,
        "n": 2,
        "x": 0.5,
    }
    config = dataclasses.replace(KioskConfig(), legal_basis_note="clause 7\n[kiosk]\x00\x1b")
    read = tomllib.loads("\n".join(describe(config)))
    assert read["legal_basis_note"] == "clause 7\n[kiosk]\x00\x1b"


@pytest.mark.parametrize(
    ("variable", "closest", "load"),
    [
        ("CLOCKFACE_KIOSK_COOLDWN_SECONDS", "CLOCKFACE_KIOSK_COOLDOWN_SECONDS", "kiosk"),
        ("CLOCKFACE_SYNC_BATCHSIZE", "CLOCKFACE_SYNC_BATCH_SIZE", "sync"),
        ("CLOCKFACE_CENTRAL_PROT", "CLOCKFACE_CENTRAL_PORT", "central"),
        ("CLOCKFACE_HARDWARE_BUZER", "CLOCKFACE_HARDWARE_BUZZER", "hardware"),
    ],
)
def test_a_misspelt_variable_is_warned_about_naming_the_closest(
    variable: str, closest: str, load: str, caplog: pytest.LogCaptureFixture
) -> None:
    from central.config import load_config as load_central
    from hardware.config import load_hardware
    from sync.config import load_sync_config

    environ = {variable: "5", "CLOCKFACE_SYNC_SERVER": "https://central.test"}
    loaders: dict[str, Callable[[], object]] = {
        "kiosk": lambda: load_config(environ=environ),
        "sync": lambda: load_sync_config(environ=environ),
        "central": lambda: load_central(environ=environ),
        "hardware": lambda: load_hardware(environ=environ),
    }
    with caplog.at_level("WARNING", logger="clockface.config"):
        loaders[load]()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "clockface.config"]
    assert (
        line == f"{variable} is set, but clockface reads no such variable: did you mean {closest}?"
    )


def test_the_variables_clockface_reads_are_not_warned_about() -> None:
    from clockface.config_values import warn_unknown
    from kiosk.config import ENV_PREFIX

    environ = {
        "CLOCKFACE_KIOSK_COOLDOWN_SECONDS": "5",
        "CLOCKFACE_KIOSK_CONFIG": "/etc/clockface/kiosk.toml",
        "CLOCKFACE_KIOSK_TIMEZONE": "UTC",
        "CLOCKFACE_DB": "x.db",
        "PATH": "/bin",
    }
    assert warn_unknown(environ, ENV_PREFIX, (*HELP, "config")) == []
    assert warn_unknown({"CLOCKFACE_KIOSK_ZZZ": "1"}, ENV_PREFIX, HELP) == [
        "CLOCKFACE_KIOSK_ZZZ is set, but clockface reads no such variable: "
        "the CLOCKFACE_KIOSK_* variables are CLOCKFACE_KIOSK_<KEY>"
    ]
    # And in a real process: a warning on stderr, the command still runs.
    done = subprocess.run(
        [sys.executable, "-m", "clockface", "kiosk", "check-config"],
        env={**os.environ, "CLOCKFACE_KIOSK_LIVENES": "off"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (
        "CLOCKFACE_KIOSK_LIVENES is set, but clockface reads no such variable: "
        "did you mean CLOCKFACE_KIOSK_LIVENESS?"
    ) in done.stderr
