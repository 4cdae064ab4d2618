"""install.sh as the tests run it: a fake Raspberry Pi OS root and the dry run's plan."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "systemd" / "install.sh"


RELEASES = {"bookworm": "Debian GNU/Linux 12 (bookworm)", "trixie": "Debian GNU/Linux 13 (trixie)"}
"""The Raspberry Pi OS releases install.sh supports, as their /etc/os-release names them."""


def image(tmp_path: Path, codename: str = "bookworm") -> Path:
    """A temp root that looks like a fresh 64-bit Raspberry Pi OS of that release."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    pretty = RELEASES.get(codename, f"Debian GNU/Linux ({codename})")
    (root / "etc/os-release").write_text(
        f'PRETTY_NAME="{pretty}"\nID=debian\nVERSION_CODENAME={codename}\n'
    )
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n"
    )
    (root / "etc/group").write_text(
        "root:x:0:\nvideo:x:44:pi\ngpio:x:993:pi\nrender:x:105:pi\ninput:x:106:pi\n"
    )
    return root


def dry_run(root: Path, *options: str) -> list[str]:
    done = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--root", str(root), *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout.splitlines()


def actions(lines: list[str]) -> list[str]:
    return [line.removeprefix("[dry-run] ") for line in lines if line.startswith("[dry-run] ")]
