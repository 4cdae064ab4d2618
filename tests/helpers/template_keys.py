"""A template key for tests whose central database may be PostgreSQL.

A PostgreSQL database has no file to keep a default key beside (clockface.template_key),
so such tests give one through ``$CLOCKFACE_TEMPLATE_KEY_FILE``. Import the fixture into a
test module (``from tests.helpers.template_keys import template_key_file  # noqa: F401``): it is
autouse there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clockface.template_key import ENV_VAR, new_key_file


@pytest.fixture(autouse=True)
def template_key_file(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A fresh key file (0600), named by ``$CLOCKFACE_TEMPLATE_KEY_FILE`` for the test."""
    path = tmp_path_factory.mktemp("template-key") / "template.key"
    new_key_file(path)
    monkeypatch.setenv(ENV_VAR, str(path))
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    return path
