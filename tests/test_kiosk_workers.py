"""The kiosk with its encoder in worker processes: a worker killed mid-pass (the
out-of-memory killer, a crash in dlib) is replaced, the face it held comes back as
failed and is encoded again, and the pass is still logged exactly once."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardware.feedback import RecordingFeedback
from hardware.frames import BaseSource, Frame
from hardware.sources import LiveReplay, VideoFileSource
from kiosk.encoders import ProcessEncoder
from kiosk.loop import Kiosk, video_clock
from kiosk.settings import KioskSettings
from kiosk.store import KioskStore
from recognition.identify import enrollment_template
from recognition.photos import read_image
from tests.helpers.shared_faces import faces_dir

pytestmark = [pytest.mark.faces, pytest.mark.slow]

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class KillsTheWorker(BaseSource):
    """Passes frames through; from frame ``at`` on, SIGKILLs the encoder's worker once
    it holds a face."""

    def __init__(self, source: LiveReplay, encoder: ProcessEncoder, at: int) -> None:
        self.source, self.encoder, self.at = source, encoder, at
        self.name = source.name
        self.killed: int | None = None

    def read(self) -> Frame | None:
        frame = self.source.read()
        due = frame is not None and self.killed is None and frame.index >= self.at
        if due and self.encoder.in_flight():
            (pid,) = self.encoder.worker_pids()
            os.kill(pid, signal.SIGKILL)
            self.killed = pid
        return frame

    def close(self) -> None:
        self.source.close()


def test_a_killed_encoder_worker_loses_no_event_and_doubles_none(tmp_path: Path) -> None:
    video = faces_dir() / "video" / "short_hamilton_clip.mp4"
    settings = KioskSettings(timezone="Europe/Berlin")
    models = settings.face_models()
    store = KioskStore.open(tmp_path / "kiosk.db")
    template, _ = enrollment_template(
        models, read_image(faces_dir() / "lin_manuel_miranda" / "lin_manuel_miranda1.png")
    )
    store.add_person("lin_manuel_miranda", "Lin-Manuel Miranda")
    store.add_templates("lin_manuel_miranda", template)
    with ProcessEncoder(1) as encoder:
        kiosk = Kiosk(
            models=models,
            database=store,
            feedback=RecordingFeedback(),
            settings=settings,
            clock=video_clock(START),
            encoder=encoder,
        )
        source = KillsTheWorker(LiveReplay(VideoFileSource(video), 1.0), encoder, at=95)
        with source:
            stats = kiosk.run(source)
        assert source.killed is not None, "the worker was never seen holding a face"
        assert encoder.restarts == 1
        assert source.killed not in encoder.worker_pids()
    assert [e.person_id for e in store.events()] == ["lin_manuel_miranda"]
    assert stats.events == 1 and stats.encodings >= 2
    store.close()
