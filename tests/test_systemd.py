"""Tests for systemd/: every unit through ``systemd-analyze verify``, every script through
``shellcheck``, and ``install.sh --dry-run`` run for real against a temporary root.

``systemd-analyze verify`` loads a unit as systemd would and checks that ExecStart's
program exists and is executable. The units name /opt/clockface/..., which only exists
after install.sh has run, so each unit is copied into a temp folder with its ExecStart
program (and nothing else) pointed at an executable stub; verify then checks every
other line as written. It exits 0 even for an unknown key (it only warns), so the test
also fails on anything it prints about our units; a deliberately broken copy proves
that check can fail.

Without systemd-analyze or shellcheck these tests skip here, with the reason, and FAIL
in CI (``CLOCKFACE_REQUIRE_POSTGRES=1``), where both are installed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from clockface.cli import main
from tests.helpers.install import RELEASES, actions, dry_run, image

ROOT = Path(__file__).resolve().parents[1]
SYSTEMD = ROOT / "systemd"
INSTALL = SYSTEMD / "install.sh"
UNITS = sorted(SYSTEMD.glob("*.service"))
SCRIPTS = sorted(SYSTEMD.glob("*.sh"))
CI = os.environ.get("CLOCKFACE_REQUIRE_POSTGRES") == "1"
INSTALLED = {
    "/opt/clockface/venv/bin/clockface": "clockface",
    "/opt/clockface/bin/clockface-screen": "clockface-screen",
}


def tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        if CI:
            pytest.fail(f"{name} is missing: CI must install it (apt-get install {package})")
        pytest.skip(f"{name} is not installed here (apt-get install {package})")
    return found


def settings(unit: Path) -> dict[str, list[str]]:
    """``Key=value`` lines by key (keys repeat: DeviceAllow=), comments left out."""
    found: dict[str, list[str]] = defaultdict(list)
    for line in unit.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found[key].append(value)
    return found


def with_stubs(unit: Path, folder: Path) -> Path:
    """A copy of the unit whose ExecStart program is an executable stub in ``folder``."""
    text = unit.read_text(encoding="utf-8")
    for installed, name in INSTALLED.items():
        stub = folder / name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
        text = text.replace(f"ExecStart={installed} ", f"ExecStart={stub} ")
    copy = folder / unit.name
    copy.write_text(text, encoding="utf-8")
    return copy


def verify(analyze: str, unit: Path) -> list[str]:
    """Problems systemd-analyze verify finds in the unit: its complaints about our units."""
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""},
    )
    problems = [line for line in done.stderr.splitlines() if "clockface" in line]
    if done.returncode != 0:
        problems.append(f"exit status {done.returncode}: {done.stderr.strip()}")
    return problems


# --- the units ------------------------------------------------------------------------------


def test_the_units_are_the_four_the_install_script_knows() -> None:
    names = [unit.name for unit in UNITS]
    assert names == [
        "clockface-central.service",
        "clockface-kiosk.service",
        "clockface-screen.service",
        "clockface-sync.service",
    ]
    script = INSTALL.read_text(encoding="utf-8")
    for name in names:
        assert name in script, name


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_every_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "systemd")
    assert verify(analyze, with_stubs(unit, tmp_path)) == []


def test_verify_does_complain_about_a_broken_unit(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "systemd")
    good = with_stubs(SYSTEMD / "clockface-kiosk.service", tmp_path)
    broken = tmp_path / "clockface-broken.service"
    broken.write_text(good.read_text().replace("WatchdogSec=", "WatchdogSecs="))
    assert any("Unknown key" in problem for problem in verify(analyze, broken))
    missing = tmp_path / "clockface-missing.service"
    missing.write_text(good.read_text().replace(str(tmp_path / "clockface "), "/nowhere/x "))
    assert verify(analyze, missing)


def test_only_the_exec_start_programs_are_stubbed(tmp_path: Path) -> None:
    for unit in UNITS:
        copy = with_stubs(unit, tmp_path).read_text()
        original = unit.read_text()
        for installed, name in sorted(INSTALLED.items(), key=lambda i: -len(i[1])):
            copy = copy.replace(str(tmp_path / name), installed)  # the longer name first
        assert copy == original
        (exec_start,) = settings(unit)["ExecStart"]
        assert shlex.split(exec_start)[0] in INSTALLED


def test_the_kiosk_unit_is_notify_with_a_watchdog_restarts_and_hardening() -> None:
    kiosk = settings(SYSTEMD / "clockface-kiosk.service")
    expected = {
        "Type": ["notify"],
        "NotifyAccess": ["main"],
        "Restart": ["on-failure"],
        "User": ["clockface"],
        "SupplementaryGroups": ["video gpio"],
        "ProtectSystem": ["strict"],
        "StateDirectory": ["clockface"],
        # Writable by the kiosk: lgpio makes its notification FIFO there (gpiozero#1106).
        "WorkingDirectory": ["/var/lib/clockface"],
        "ConfigurationDirectory": ["clockface"],
        "NoNewPrivileges": ["yes"],
        "PrivateTmp": ["yes"],
        "ProtectHome": ["yes"],
        "DevicePolicy": ["closed"],
        "LoadCredential": [
            "kiosk-token:/etc/clockface/kiosk-token",
            "template-key:/etc/clockface/template-key",
        ],
        "ExecStart": [
            "/opt/clockface/venv/bin/clockface kiosk run --config /etc/clockface/kiosk.toml"
        ],
    }
    for key, value in expected.items():
        assert kiosk[key] == value, key
    (watchdog,) = kiosk["WatchdogSec"]
    assert 5 <= int(watchdog) <= 120
    assert int(kiosk["StartLimitBurst"][0]) >= 1 and int(kiosk["StartLimitIntervalSec"][0]) > 0
    # The camera (video4linux: /dev/video*, /dev/v4l-subdev*), /dev/media*, the DMA
    # heap and the GPIO chips, by their /proc/devices groups (DeviceAllow takes no globs).
    assert sorted(kiosk["DeviceAllow"]) == [
        "char-dma_heap rw",
        "char-gpiochip rw",
        "char-media rw",
        "char-video4linux rw",
    ]


def test_the_other_units_run_what_they_say() -> None:
    sync = settings(SYSTEMD / "clockface-sync.service")
    assert sync["ExecStart"] == [
        "/opt/clockface/venv/bin/clockface sync run --config /etc/clockface/kiosk.toml"
    ]
    assert sync["LoadCredential"] == [
        "kiosk-token:/etc/clockface/kiosk-token",
        "template-key:/etc/clockface/template-key",
    ]
    assert sync["User"] == ["clockface"] and sync["StateDirectory"] == ["clockface"]
    central = settings(SYSTEMD / "clockface-central.service")
    assert central["ExecStart"] == [
        "/opt/clockface/venv/bin/clockface central serve --config /etc/clockface/central.toml"
    ]
    assert central["LoadCredential"] == ["template-key:/etc/clockface/central-template-key"]
    screen = settings(SYSTEMD / "clockface-screen.service")
    assert screen["ExecStart"] == ["/opt/clockface/bin/clockface-screen http://127.0.0.1:8471/"]
    assert screen["User"] == ["clockface-screen"]  # not the user that can read the database


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_each_unit_runs_a_command_that_exists(unit: Path) -> None:
    (exec_start,) = settings(unit)["ExecStart"]
    program, *args = shlex.split(exec_start)
    if program == "/opt/clockface/venv/bin/clockface":
        result = CliRunner().invoke(main, [*args, "--help"])
        assert result.exit_code == 0, result.output
        assert "--config" in result.output
    else:
        assert (SYSTEMD / "clockface-screen.sh").is_file()


# --- the scripts ----------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda script: script.name)
def test_every_script_passes_shellcheck(script: Path) -> None:
    shellcheck = tool("shellcheck", "shellcheck")
    done = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert os.access(script, os.X_OK)


def test_shellcheck_does_complain_about_a_careless_script(tmp_path: Path) -> None:
    shellcheck = tool("shellcheck", "shellcheck")
    careless = tmp_path / "careless.sh"
    careless.write_text("#!/usr/bin/env bash\nrm -rf $1/*\n")
    done = subprocess.run([shellcheck, str(careless)], capture_output=True, text=True)
    assert done.returncode != 0 and "SC2086" in done.stdout


# --- install.sh -----------------------------------------------------------------------------


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def uv_steps(release: str) -> list[str]:
    """What install.sh does with uv, in order, for a release: the lock's group for it,
    exported with hashes, synced wheels-only into the venv, then clockface itself."""
    uv = "/opt/clockface/tools/bin/uv"
    return [
        "python3 -m venv /opt/clockface/tools",
        "/opt/clockface/tools/bin/python -m pip install --quiet --disable-pip-version-check "
        "--no-cache-dir uv==0.13.9",
        f"{uv} export --project {ROOT} --frozen --no-default-groups --group pi-{release} "
        "--no-emit-project --quiet --output-file /opt/clockface/requirements.txt",
        f"{uv} pip sync --python /opt/clockface/venv/bin/python --require-hashes "
        "--only-binary :all: --no-binary face-recognition-models /opt/clockface/requirements.txt",
        f"{uv} pip install --python /opt/clockface/venv/bin/python --no-deps {ROOT}",
        f"{uv} cache clean",
    ]


def test_the_dry_run_prints_the_whole_plan_and_changes_nothing(tmp_path: Path) -> None:
    root = image(tmp_path)
    before = tree(root)
    lines = dry_run(root)
    plan = actions(lines)
    assert tree(root) == before
    assert lines[0] == "Raspberry Pi OS bookworm: Python 3.11, uv.lock's group pi-bookworm"
    (apt,) = [a for a in plan if a.startswith("apt-get install")]
    packages = apt.split()[4:]
    assert apt.startswith("apt-get install --yes --no-install-recommends ")
    for package in ("python3-picamera2", "python3-gpiozero", "python3-lgpio", "python3-venv"):
        assert package in packages
    assert "cage" in packages and ({"chromium-browser", "chromium"} & set(packages))
    assert plan.index("apt-get update") < plan.index(apt)
    # The browser's package name is asked of apt after the update, not before.
    (browser,) = [line for line in lines if line.startswith("browser package: ")]
    assert lines.index("[dry-run] apt-get update") < lines.index(browser)
    assert (
        "useradd --system --user-group --create-home --home-dir /var/lib/clockface "
        "--shell /usr/sbin/nologin --groups video,gpio clockface"
    ) in plan
    assert not [a for a in plan if a.startswith("groupadd")]  # video and gpio exist
    venv = "python3 -m venv --system-site-packages /opt/clockface/venv"
    assert venv in plan
    steps = uv_steps("bookworm")
    start = plan.index(steps[0])
    assert plan[start : start + len(steps)] == steps
    assert plan.index(venv) < start
    assert not [a for a in plan if "--override" in a or "pi-overrides" in a]
    assert any(a.startswith("write /etc/clockface/kiosk.toml (mode 0644)") for a in plan)
    assert any(a.startswith("write /etc/clockface/kiosk-token (mode 0600)") for a in plan)
    assert any(a.startswith("write /etc/clockface/template-key (mode 0600)") for a in plan)
    for unit in ("clockface-kiosk.service", "clockface-sync.service", "clockface-screen.service"):
        assert f"install -m 0644 {SYSTEMD}/{unit} /etc/systemd/system/{unit}" in plan
    enable = (
        "systemctl enable clockface-kiosk.service clockface-sync.service clockface-screen.service"
    )
    assert plan[-1] == enable and plan[-2] == "systemctl daemon-reload"
    assert "clockface-central.service" not in " ".join(plan)


def test_a_second_run_keeps_what_exists_and_overwrites_no_config(tmp_path: Path) -> None:
    root = image(tmp_path)
    with (root / "etc/passwd").open("a") as passwd:
        passwd.write("clockface:x:999:999::/var/lib/clockface:/usr/sbin/nologin\n")
    (root / "etc/clockface").mkdir()
    (root / "etc/clockface/kiosk.toml").write_text('[kiosk]\nsource = "picamera"\n')
    (root / "etc/clockface/kiosk-token").write_text("secret\n")
    (root / "etc/clockface/template-key").write_bytes(b"k" * 32)
    for venv in ("venv", "tools"):
        python = root / f"opt/clockface/{venv}/bin/python"
        python.parent.mkdir(parents=True)
        python.write_text("#!/bin/sh\n")
        python.chmod(0o755)
    before = tree(root)
    lines = dry_run(root)
    assert tree(root) == before
    plan = actions(lines)
    assert (
        "keep /etc/clockface/kiosk.toml (it exists; install.sh never overwrites a config file)"
        in lines
    )
    assert (
        "keep /etc/clockface/kiosk-token (it exists; install.sh never overwrites a config file)"
        in lines
    )
    assert (
        "keep /etc/clockface/template-key (it exists; install.sh never overwrites a config file)"
        in lines
    )
    assert not [a for a in plan if a.startswith("write ")]
    assert "user clockface exists" in lines
    assert "usermod --append --groups video,gpio clockface" in plan
    assert not [a for a in plan if a.startswith("useradd") and a.endswith(" clockface")]
    assert "virtual environment /opt/clockface/venv exists" in lines
    assert "tools environment /opt/clockface/tools exists" in lines
    assert "uv==0.13.9" in " ".join(plan)  # the pinned uv, installed again (idempotent)
    assert not [a for a in plan if "-m venv" in a]


def test_options_choose_the_parts(tmp_path: Path) -> None:
    root = image(tmp_path)
    plan = actions(dry_run(root, "--no-screen", "--with-central"))
    joined = "\n".join(plan)
    assert "chromium" not in joined and "cage" not in joined and "clockface-screen" not in joined
    assert plan[-1] == (
        "systemctl enable clockface-kiosk.service clockface-sync.service clockface-central.service"
    )
    assert any(a.startswith("write /etc/clockface/central.toml") for a in plan)
    assert any(a.startswith("write /etc/clockface/central-template-key (mode 0600)") for a in plan)
    assert any(a.startswith("useradd") and a.endswith(" clockface-central") for a in plan)


def test_install_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    def install(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(INSTALL), *options], capture_output=True, text=True, timeout=60
        )

    unknown = install("--dry-run", "--frobnicate")
    assert unknown.returncode == 2 and "unknown option --frobnicate" in unknown.stderr
    real_root = install("--root", str(tmp_path))
    assert real_root.returncode == 2 and "--root only plans" in real_root.stderr
    missing = install("--dry-run", "--root", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
    helped = install("--help")
    assert (
        helped.returncode == 0 and "--dry-run" in helped.stdout and "set -euo" not in helped.stdout
    )


def test_trixie_installs_the_lock_s_trixie_group(tmp_path: Path) -> None:
    lines = dry_run(image(tmp_path, "trixie"))
    assert lines[0] == "Raspberry Pi OS trixie: Python 3.13, uv.lock's group pi-trixie"
    plan = actions(lines)
    steps = uv_steps("trixie")
    start = plan.index(steps[0])
    assert plan[start : start + len(steps)] == steps
    assert "pi-bookworm" not in "\n".join(lines)


def refused(done: subprocess.CompletedProcess[str], reason: str) -> None:
    """install.sh said no in one line, before printing or doing any step."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("install.sh: ") and reason in line, line
    assert "nothing was changed" in line


@pytest.mark.parametrize("codename", ["bullseye", "forky", "jammy", ""])
def test_an_unsupported_release_is_refused_before_anything(tmp_path: Path, codename: str) -> None:
    root = image(tmp_path, codename)
    done = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    refused(done, f"Raspberry Pi OS '{codename or 'unknown'}' is not supported")


def test_no_os_release_is_refused_too(tmp_path: Path) -> None:
    root = image(tmp_path)
    (root / "etc/os-release").unlink()
    done = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    refused(done, "Raspberry Pi OS 'unknown' is not supported")


def test_a_python3_other_than_the_release_s_is_refused(tmp_path: Path) -> None:
    """On the machine itself (no --root), python3 must be the release's: a stub python3
    that says 3.9 is refused. On a machine that is neither release, the release is."""
    stub = tmp_path / "bin" / "python3"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\necho 3.9\n")
    stub.chmod(0o755)
    done = subprocess.run(
        ["bash", str(INSTALL), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}"},
    )
    release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    codename = re.search(r"^VERSION_CODENAME=(\S*)", release, re.MULTILINE)
    if codename and codename.group(1) in RELEASES:
        refused(done, f"{codename.group(1)}'s python3 should be")
        assert "this one is 3.9" in done.stderr
    else:
        refused(done, "is not supported")


def test_the_release_groups_pin_the_numpy_each_os_was_built_against() -> None:
    """Each release install.sh names is a dependency group of the lock, with the numpy
    major of its apt picamera2/simplejpeg; the groups conflict (one lock, forked); dlib
    never comes from source."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    groups = pyproject["dependency-groups"]
    assert groups["pi-bookworm"] == ["numpy>=1.26,<2"]
    assert groups["pi-trixie"] == ["numpy>=2"]
    assert sorted(RELEASES) == sorted(
        re.findall(r"\[(\w+)\]=3\.\d+", INSTALL.read_text().split("PYTHON_OF=")[1].split("\n")[0])
    )
    uv = pyproject["tool"]["uv"]
    assert uv["conflicts"] == [[{"group": "pi-bookworm"}, {"group": "pi-trixie"}]]
    assert "dlib; sys_platform == 'never'" in uv["override-dependencies"]
    runtime = " ".join(pyproject["project"]["dependencies"])
    assert "face-recognition>" not in runtime and "setuptools" not in runtime
