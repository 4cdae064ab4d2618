"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from tests.helpers.shared_faces import Analysed, faces_dir


@pytest.fixture(scope="session")
def analysed() -> Analysed:
    """One FaceModels for the whole run, each real photo decoded and analysed at most once."""
    faces_dir()
    return Analysed()
