"""What a Raspberry Pi would install, resolved for a Pi without one.

For each release ``systemd/install.sh`` supports, this takes the ``uv export`` command
from the script's own dry run (the lock's ``pi-CODENAME`` group, with hashes), runs it
with this machine's uv, and resolves the result as ``uv pip compile`` would for the
Pi: 64-bit ARM Linux at that release's glibc and Python, with the build options of the
script's ``uv pip sync`` line (wheels only, but for the model files' sdist). It fails if
anything would have to be compiled on the Pi, or if the Pi would get anything other
than what the lock says.

``uv pip compile`` asks PyPI which files exist. Without a network the test skips here,
with the reason, and FAILS in CI (``CLOCKFACE_REQUIRE_POSTGRES=1``).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker

from tests.helpers.install import ROOT, actions, dry_run, image

CI = os.environ.get("CLOCKFACE_REQUIRE_POSTGRES") == "1"
TOOLS_UV = "/opt/clockface/tools/bin/uv"


@dataclass(frozen=True)
class Release:
    codename: str
    python: str
    """The python3 the release ships."""
    platform: str
    """uv's name for 64-bit ARM Linux at the release's glibc (2.36; Trixie's 2.41 is
    newer than the newest tag uv knows, 2.40)."""
    numpy_major: int


RELEASES = [
    Release("bookworm", "3.11.2", "aarch64-manylinux_2_36", 1),
    Release("trixie", "3.13.5", "aarch64-manylinux_2_40", 2),
]


def uv() -> str:
    found = shutil.which("uv")
    if found is None:
        if CI:
            pytest.fail("uv is not on PATH: CI installs it first (.ci/run)")
        pytest.skip("uv is not on PATH (pip install uv)")
    return found


def pypi_reachable() -> None:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError as err:
        if CI:
            pytest.fail(f"PyPI cannot be reached from CI ({err}): the resolution must run there")
        pytest.skip(f"PyPI cannot be reached ({err}): the Pi's resolution needs it")


def pins(text: str, python: str) -> dict[str, str]:
    """name -> version of each ``name==version`` line whose marker holds on a Pi with
    that Python (hashes and comments left out)."""
    pi = {
        "python_version": ".".join(python.split(".")[:2]),
        "python_full_version": python,
        "platform_machine": "aarch64",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+))?", line)
        if match and (match[3] is None or Marker(match[3].strip()).evaluate(pi)):
            assert match[1].lower() not in found, line
            found[match[1].lower()] = match[2]
    return found


def install_steps(tmp_path: Path, codename: str) -> tuple[list[str], list[str]]:
    """install.sh's ``uv export`` and ``uv pip sync`` lines for the release."""
    plan = actions(dry_run(image(tmp_path, codename)))
    (export,) = [a for a in plan if a.startswith(f"{TOOLS_UV} export ")]
    (sync,) = [a for a in plan if a.startswith(f"{TOOLS_UV} pip sync ")]
    return shlex.split(export), shlex.split(sync)


def export(tmp_path: Path, release: Release) -> tuple[Path, list[str]]:
    """The requirements install.sh would make on the Pi, written to a temp file, and the
    build options its sync line uses."""
    export_line, sync_line = install_steps(tmp_path, release.codename)
    out = tmp_path / f"requirements-{release.codename}.txt"
    at = export_line.index("--output-file")
    export_line[at + 1] = str(out)
    done = subprocess.run(
        [uv(), *export_line[1:]], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    options = sync_line[sync_line.index("--require-hashes") + 1 : -1]
    return out, options


def compile_for(release: Release, requirements: Path, options: list[str], python: str) -> str:
    pypi_reachable()
    done = subprocess.run(
        [
            uv(),
            "pip",
            "compile",
            str(requirements),
            "--python-platform",
            release.platform,
            "--python-version",
            python,
            "--no-python-downloads",
            "--no-header",
            "--no-annotate",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise AssertionError(done.stderr)
    return done.stdout


@pytest.mark.parametrize("release", RELEASES, ids=lambda release: release.codename)
def test_the_pi_s_locked_set_resolves_from_wheels_alone(tmp_path: Path, release: Release) -> None:
    requirements, options = export(tmp_path, release)
    assert options == ["--only-binary", ":all:", "--no-binary", "face-recognition-models"]
    locked = pins(requirements.read_text(), release.python)
    resolved = pins(compile_for(release, requirements, options, release.python), release.python)
    # Exactly the lock's versions, every one with a wheel for this Pi (but the models).
    assert resolved == locked
    assert resolved["numpy"].startswith(f"{release.numpy_major}.")
    assert "face-recognition" not in resolved and "dlib" not in resolved
    assert {"dlib-bin", "face-recognition-models", "opencv-python-headless"} <= set(resolved)
    assert not [name for name in resolved if name.startswith(("pytest", "mypy", "ruff"))]


def test_the_check_fails_when_something_would_compile(tmp_path: Path) -> None:
    """Bookworm's set on Trixie's Python: numpy 1.26 has no wheel for 3.13, so the
    resolution fails, as it must for anything the Pi would have to build."""
    bookworm, trixie = RELEASES
    requirements, options = export(tmp_path, bookworm)
    with pytest.raises(AssertionError, match=r"numpy==1\.26\.\d+ has no usable wheels"):
        compile_for(trixie, requirements, options, trixie.python)


def test_the_one_sdist_builds_a_pure_wheel() -> None:
    """face-recognition-models is on PyPI as an sdist only: model files and a setup.py
    that copies them. The wheel uv built from it for this environment is pure Python
    (py3-none-any), so building it on a Pi needs no compiler."""
    files = importlib.metadata.distribution("face-recognition-models").files or []
    (wheel,) = [file for file in files if file.name == "WHEEL"]
    text = wheel.read_text()
    assert "Root-Is-Purelib: true" in text
    assert "Tag: py3-none-any" in text.splitlines()
    assert not [file for file in files if file.suffix in {".so", ".pyd", ".c", ".cpp"}]


def test_the_readme_names_what_each_release_installs(tmp_path: Path) -> None:
    """The README's table of what a Pi gets says what the lock says (no network)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| | Trixie (Debian 13) | Bookworm (Debian 12) |") :]
    rows = {
        cells[0]: cells[1:]
        for line in table.split("\n\n")[0].splitlines()[2:]
        if (cells := [cell.strip() for cell in line.strip("|").split("|")])
    }
    trixie, bookworm = RELEASES[1], RELEASES[0]
    for column, release in ((0, trixie), (1, bookworm)):
        (tmp_path / release.codename).mkdir()
        requirements, _ = export(tmp_path / release.codename, release)
        locked = pins(requirements.read_text(), release.python)
        assert rows["Python (the OS's)"][column] == release.python.rsplit(".", 1)[0]
        for name in ("numpy", "opencv-python-headless"):
            assert rows[name][column] == locked[name], (release.codename, name)
        assert rows["dlib-bin, face-recognition-models"][0] == ", ".join(
            [locked["dlib-bin"], locked["face-recognition-models"]]
        )
        assert rows["gpiozero (shadows apt's), fastapi, uvicorn"][0] == ", ".join(
            locked[name] for name in ("gpiozero", "fastapi", "uvicorn")
        )
        assert rows["httpx, cryptography, sqlalchemy, pillow"][0] == ", ".join(
            locked[name] for name in ("httpx", "cryptography", "sqlalchemy", "pillow")
        )
        assert f"({len(locked)} files)" in " ".join(rows)
