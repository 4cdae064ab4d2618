"""A kiosk that sees people move but never a face (a camera aimed at the floor, out of
focus, into the light) says so: in the journal, in `kiosk status` and on the screen."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from hardware.feedback import RecordingFeedback
from hardware.sources import FakeSource
from hardware.watchdog import LoopStatus, describe_status
from kiosk.loop import Kiosk
from kiosk.settings import KioskSettings
from kiosk.store import KioskStore
from recognition.faces import Box, Detection, FaceModels

BOX = Box(top=100, right=220, bottom=220, left=100)


class FacesFrom(FaceModels):
    """Finds a face only in frames whose first pixel is 255; loads no model."""

    def detect_faces(
        self, image: npt.NDArray[np.uint8], small: npt.NDArray[np.uint8] | None = None
    ) -> list[Detection]:
        return [Detection(BOX)] if image[0, 0, 0] == 255 else []


class Recorder:
    def __init__(self) -> None:
        self.warnings: list[str | None] = []

    def ready(self) -> None: ...

    def alive(self) -> None: ...

    def stopping(self) -> None: ...

    def warn(self, message: str | None) -> None:
        self.warnings.append(message)


def moving(count: int, face_from: int | None = None) -> list[npt.NDArray[np.uint8]]:
    rng = np.random.default_rng(3)
    frames = []
    for i in range(count):
        image = rng.integers(0, 200, size=(360, 640, 3), dtype=np.uint8)  # always moving
        if face_from is not None and i >= face_from:
            image[0, 0, 0] = 255
        else:
            image[0, 0, 0] = 0
        frames.append(image)
    return frames


def test_motion_without_a_face_is_reported_and_cleared_when_a_face_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = KioskStore.open(tmp_path / "kiosk.db")
    settings = KioskSettings(no_face_warning_seconds=2.0, encoder_workers=0)
    kiosk = Kiosk(
        models=FacesFrom(), database=store, feedback=RecordingFeedback(), settings=settings
    )
    heartbeat = Recorder()
    with caplog.at_level(logging.INFO, logger="clockface.kiosk"):
        kiosk.run(FakeSource(moving(120, face_from=90), fps=30.0), heartbeat=heartbeat)
    (warning, cleared) = heartbeat.warnings
    assert warning is not None and "seen motion but no face for 2 s" in warning
    assert "faces the door" in warning
    assert cleared is None and not kiosk.blind
    logged = [r.getMessage() for r in caplog.records]
    assert any("seen motion but no face" in m for m in logged)
    assert any("faces are detected again" in m for m in logged)
    store.close()


def test_no_warning_while_nothing_moves_or_faces_are_seen(tmp_path: Path) -> None:
    store = KioskStore.open(tmp_path / "kiosk.db")
    settings = KioskSettings(no_face_warning_seconds=1.0, encoder_workers=0)
    kiosk = Kiosk(
        models=FacesFrom(), database=store, feedback=RecordingFeedback(), settings=settings
    )
    heartbeat = Recorder()
    still = [np.full((360, 640, 3), 80, np.uint8)] * 90  # an empty corridor
    kiosk.run(FakeSource(still), heartbeat=heartbeat)
    kiosk.run(FakeSource(moving(90, face_from=0)), heartbeat=heartbeat)
    assert heartbeat.warnings == []
    store.close()


def test_kiosk_status_shows_the_warning() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    status = LoopStatus(
        pid=7,
        source="picamera",
        state="running",
        started_utc=now - timedelta(hours=1),
        updated_utc=now,
        last_frame_utc=now,
        frames=100,
        fps=10.0,
        warning="the camera has seen motion but no face for 5 min: check ...",
    )
    again = LoopStatus.from_json(status.to_json())
    assert again == status
    lines = describe_status(again, now, stale_after=30)
    assert lines[-1] == "WARNING: the camera has seen motion but no face for 5 min: check ..."
    values = json.loads(status.to_json())
    del values["warning"]  # a status file written before warnings existed
    assert LoopStatus.from_json(json.dumps(values)).warning is None
