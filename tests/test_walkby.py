"""Walk-bys the kiosk was never tuned on: generated 720p and 1080p scenes of people
walking up to the camera (bench/walkby_scenes.py), through the real kiosk with a real
SQLite store. Every enrolled walker is logged exactly once, before he is within a metre
of the camera; a stranger never is. Every frame is handled (no time scale): speed is
bench/walkby.py's business, never a test's."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.walkby import Logged, enroll_store, judge, scene_start
from bench.walkby_scenes import SceneTruth, default_scenes, render_scene
from hardware.feedback import RecordingFeedback
from hardware.sources import VideoFileSource
from kiosk.loop import Kiosk, video_clock
from kiosk.settings import KioskSettings
from kiosk.store import KioskStore
from recognition.faces import FaceModels
from tests.helpers.shared_faces import faces_dir

pytestmark = [pytest.mark.faces, pytest.mark.slow]

QUICK = {spec.name: spec for spec in default_scenes(quick=True)}


@pytest.fixture(scope="module")
def models() -> FaceModels:
    return KioskSettings().face_models()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, models: FaceModels) -> KioskStore:
    faces_dir()
    s = KioskStore.open(tmp_path_factory.mktemp("walkby") / "kiosk.db")
    enroll_store(s, models, people=200)  # the real people and 195 synthetic ones
    return s


def replay(store: KioskStore, models: FaceModels, truth: SceneTruth) -> list[Logged]:
    seen = len(store.events())
    start = scene_start(seen)  # later than any earlier replay's events
    kiosk = Kiosk(
        models=models,
        database=store,
        feedback=RecordingFeedback(),
        settings=KioskSettings(cooldown_seconds=0.0),
        clock=video_clock(start),
    )
    with VideoFileSource(truth.video) as source:
        kiosk.run(source)
    return [Logged(e.person_id, (e.utc - start).total_seconds()) for e in store.events()[seen:]]


@pytest.mark.parametrize("name", sorted(QUICK))
def test_every_enrolled_walker_is_logged_once_and_strangers_never(
    name: str, store: KioskStore, models: FaceModels, tmp_path: Path
) -> None:
    faces_dir()
    truth = render_scene(QUICK[name], tmp_path)
    logged = replay(store, models, truth)
    result = judge(truth, logged)
    assert result.walkers >= 1
    assert result.once == result.walkers and result.twice == 0, logged
    assert result.false_events == 0, logged
    assert all(d >= 1.0 for d in result.distances), (result.distances, logged)
    strangers = {w.identity for w in truth.walkers if w.stranger}
    assert not strangers & {e.person_id for e in logged}


def test_the_judge_counts_doubles_and_false_events() -> None:
    """The bench's judge itself: a walker logged twice, a stranger logged, someone
    logged who is not in the scene."""
    faces_dir()
    spec = QUICK["quick-720p-102-backlight-cross"]
    walkers = {w.identity: w for w in spec.walkers}
    assert walkers["rose_leslie"].stranger and not walkers["alex_lacamoire"].stranger

    class Truth:  # the part of SceneTruth the judge reads
        def __init__(self) -> None:
            self.walkers = [_Walker(w.identity, w.stranger) for w in spec.walkers]

    logged = [
        Logged("alex_lacamoire", 1.0),
        Logged("alex_lacamoire", 1.5),
        Logged("rose_leslie", 1.2),
        Logged("obama", 0.5),
    ]
    result = judge(Truth(), logged)  # type: ignore[arg-type]
    assert (result.walkers, result.once, result.twice, result.false_events) == (1, 0, 1, 2)
    assert result.distances == [3.0]


class _Walker:
    def __init__(self, identity: str, stranger: bool) -> None:
        self.identity, self.stranger = identity, stranger

    def distance_at(self, video_time: float) -> float:
        return 3.0
