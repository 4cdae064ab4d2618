"""The ``clockface`` command as people use it: help, errors, and the README's own command."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from clockface import __version__
from clockface.cli import main
from tests.helpers.shared_faces import faces_dir

ROOT = Path(__file__).resolve().parents[1]


def all_commands() -> list[tuple[str, click.Command]]:
    found = []

    def walk(prefix: str, command: click.Command) -> None:
        found.append((prefix, command))
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}", sub)

    walk("clockface", main)
    return found


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=lambda v: str(v))
def test_every_command_has_help(name: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"{name} has no help text"
    args = [*name.split()[1:], "--help"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clockface", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_readme_command_runs_as_documented(tmp_path: Path) -> None:
    """The README's main command, pasted into bash (with this Python for `uv run`) in a
    folder holding only the repository's demo/ (no ../shared/faces beside it): what a
    fresh clone has."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set up and run.*?```sh\n(.*?)```", readme, re.S)
    assert block, "README has no set-up command block"
    script = block.group(1)
    assert script.count("uv run clockface ") == 2
    assert "../shared" not in script and script.count(" demo/") == 2
    script = script.replace("uv run clockface ", f"{shlex.quote(sys.executable)} -m clockface ")
    clone = tmp_path / "clone"
    shutil.copytree(DEMO, clone / "demo")
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=clone, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "enrolled lin (Lin-Manuel Miranda): 1 new template" in result.stdout
    # The journal gets the id, never the name.
    assert result.stderr.count("INFO clockface.kiosk: logged lin, in at ") == 1
    assert "Miranda" not in result.stderr
    assert "275 frames, 1 event, " in result.stdout
    assert "uv run pytest" in readme


DEMO = ROOT / "demo"
DEMO_FILES = {
    "lin_manuel_miranda1.png": "lin_manuel_miranda/lin_manuel_miranda1.png",
    "short_hamilton_clip.mp4": "video/short_hamilton_clip.mp4",
}
"""The demo's files and where the same files are in ../shared/faces."""
MEDIA = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic"}
MEDIA |= {".mp4", ".avi", ".mov", ".mkv", ".webm", ".h264", ".mjpeg"}


def test_the_demo_is_the_only_photo_or_video_in_the_repository() -> None:
    """demo/ holds the two files and their NOTICE; no other photo or video is in the
    project (the tests read ../shared/faces)."""
    assert sorted(p.name for p in DEMO.iterdir()) == ["NOTICE", *sorted(DEMO_FILES)]
    notice = (DEMO / "NOTICE").read_text(encoding="utf-8")
    assert "face_recognition" in notice and "MIT License" in notice
    assert "Copyright (c) 2017, Adam Geitgey" in notice
    skipped = {".git", ".venv", ".venv-bookworm", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    media = sorted(
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*")
        if path.suffix.lower() in MEDIA
        and not skipped & set(path.relative_to(ROOT).parts)
        and path.is_file()
    )
    assert media == sorted(f"demo/{name}" for name in DEMO_FILES)


@pytest.mark.faces
def test_the_demo_files_are_the_shared_ones_unchanged() -> None:
    for name, shared in DEMO_FILES.items():
        assert (DEMO / name).read_bytes() == (faces_dir() / shared).read_bytes(), name


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["identify", "-k", "ada=/no/such.jpg", "x.jpg"], "cannot read photo '/no/such.jpg'"),
        (["identify", "-k", "ada", "x.jpg"], "is not NAME=PHOTO"),
        (["identify", "-k", "ada=README.md", "x.jpg"], "is not an image"),
        (["check", "/no/such.jpg"], "no such file"),
        (["identify", "-k", "ada=x.jpg", "--threshold", "0", "x.jpg"], "--threshold"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_failure(args: list[str], words: str) -> None:
    result = run("recognition", *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and words in errors[0], result.stderr


def test_group_photo_refused_for_enrollment_and_bad_probes_reported() -> None:
    faces = faces_dir()
    group = faces / "group" / "two_people.jpg"
    result = run("recognition", "identify", "-k", f"ada={group}", str(group))
    assert result.returncode == 1
    assert "cannot enroll ada" in result.stderr and "2 faces found" in result.stderr

    good = faces / "obama" / "obama2.jpg"
    result = run(
        "recognition",
        "identify",
        "-k",
        f"obama={faces / 'obama' / 'obama1.jpg'}",
        "README.md",
        str(good),
    )
    assert result.returncode == 1  # one photo was bad: the rest are still reported
    assert "README.md' is not an image" in result.stderr
    assert "1. obama" in result.stdout


def test_check_reports_each_photo() -> None:
    faces = faces_dir()
    result = run(
        "recognition",
        "check",
        str(faces / "obama" / "obama_small.jpg"),
        str(faces / "group" / "two_people.jpg"),
    )
    assert result.returncode == 1
    ok, rejected = result.stdout.splitlines()
    assert ok.endswith(")") and ": ok (face " in ok
    assert "rejected: 2 faces found" in rejected
