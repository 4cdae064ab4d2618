"""``clockface enroll`` in this process, and the central service it enrolls through.

The service runs on loopback with an admin token in a file and a kiosk token; the
``database`` fixture is a central database on SQLite and on PostgreSQL (tests/helpers/postgres.py:
a module using it also imports ``postgres_cluster`` and ``postgres_url``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

import enrollment.cli
from central.config import CentralConfig
from central.store import CentralStore
from clockface.cli import main
from recognition.faces import FaceModels
from sync.protocol import GalleryDelta
from tests.helpers.postgres import postgres_cluster, postgres_url  # noqa: F401
from tests.helpers.server import serving
from tests.helpers.template_keys import template_key_file  # noqa: F401

_TARGET_ENV = (
    "CLOCKFACE_DB",
    "CLOCKFACE_CENTRAL_DATABASE",
    "CLOCKFACE_ADMIN_SERVER",
    "CLOCKFACE_ADMIN_TOKEN",
    "CLOCKFACE_ADMIN_TOKEN_FILE",
)


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """``clockface enroll ...`` in this process; the roster variables only as given."""
    clean: dict[str, str | None] = dict.fromkeys(_TARGET_ENV)
    clean.update(env or {})
    return CliRunner(env=clean).invoke(main, ["enroll", *args], input=input)


class Service:
    """The central service on loopback, an admin token in a file, a kiosk token."""

    def __init__(self, store: CentralStore, url: str, folder: Path) -> None:
        self.store = store
        self.url = url
        store.add_site("HQ", "Europe/Paris")
        self.kiosk_token = store.create_kiosk("door-1", "HQ").token
        self.token_file = folder / "admin-token"
        self.token_file.write_text(store.create_admin("hr") + "\n")
        self.token_file.chmod(0o600)

    def cli(self, *args: str, input: str | None = None) -> Result:
        """``clockface enroll ARGS --server URL --admin-token-file FILE``."""
        server = ("--server", self.url, "--admin-token-file", str(self.token_file))
        return invoke(*args, *server, input=input)

    def kiosk_gallery(self, since: int) -> GalleryDelta:
        """What a kiosk fetches: ``GET /v1/gallery?since=`` with its own token."""
        response = httpx.get(
            f"{self.url}/v1/gallery",
            params={"since": since},
            headers={"Authorization": f"Bearer {self.kiosk_token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return GalleryDelta.model_validate_json(response.content)


@contextmanager
def service(database: str, folder: Path, config: CentralConfig | None = None) -> Iterator[Service]:
    with CentralStore.open(database, actor="central-host") as store, serving(store, config) as url:
        yield Service(store, url, folder)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading face models fails the test: the command must refuse before that."""

    def refuse(detector: str) -> FaceModels:
        raise AssertionError("face models were loaded")

    monkeypatch.setattr(enrollment.cli, "_models", refuse)
