"""Liveness in the running kiosk: a photo held up logs nothing and counts a suspected
spoof, a real pass still logs, and with liveness off nothing changes.

Two layers. With fake face models (one face box, a fixed embedding, scripted 68-point
landmarks from tests/test_liveness.py's synthetic head) the loop's decisions are pinned
down without the shared faces. With the real models and a real SQLite store, the real
clip is replayed with liveness required, and a photo attack video is built on the fly
(bench/attacks.py, into tmp_path) from lin_manuel_miranda1.png, the very photo he is
enrolled from: without liveness it logs him, with liveness it logs nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bench.attacks import AttackSpec, build_attacks
from clockface.errors import ConfigError
from hardware.feedback import RecordingFeedback
from hardware.sources import FakeSource, open_source
from kiosk.config import default_file, describe, load_config
from kiosk.loop import Kiosk, KioskStats, video_clock
from kiosk.settings import KioskSettings, LivenessMode
from kiosk.store import KioskStore
from recognition.faces import Box, Detection, FaceModels, Landmarks68, Model, Point
from tests.helpers.heads import head, photo_plane, project, wave
from tests.helpers.shared_faces import FACES, faces_dir

START = datetime(2026, 11, 23, 7, 55, tzinfo=UTC)
EMBEDDING = np.linspace(-0.2, 0.2, 128, dtype=np.float32)  # norm 1.32, as a face descriptor
BOX = Box(top=100, right=300, bottom=200, left=200)  # a 100 px face
Script = Callable[[float], npt.NDArray[np.float64]]  # video time -> (68, 2) landmarks


def turning_head(t: float) -> npt.NDArray[np.float64]:
    return project(head(), yaw=30 * math.sin(2 * math.pi * t / 0.9))


def tilted_print(t: float) -> npt.NDArray[np.float64]:
    return project(
        photo_plane(), yaw=30 * math.sin(2 * math.pi * t / 1.5), roll=wave(int(10 * t), 15)
    )


class ScriptedModels(FaceModels):
    """One face in every frame, always the enrolled person; landmarks from a script of
    video time (the frame's index is written in its first pixel). Loads no model."""

    def __init__(self, script: Script, fps: float = 30.0) -> None:
        super().__init__()
        self.script = script
        self.fps = fps
        self.landmark_calls = 0

    def detect_faces(
        self, image: npt.NDArray[np.uint8], small: npt.NDArray[np.uint8] | None = None
    ) -> list[Detection]:
        return [Detection(BOX)]

    def encode(self, image: npt.NDArray[np.uint8], boxes: Sequence[Box]) -> npt.NDArray[np.float32]:
        return np.tile(EMBEDDING, (len(boxes), 1))

    def landmarks68(self, image: npt.NDArray[np.uint8], box: Box) -> Landmarks68:
        self.landmark_calls += 1
        if box == Box(0, 8, 8, 0):  # the kiosk warming the model up
            return Landmarks68(tuple(Point(0, 0) for _ in range(68)))
        index = int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])
        points = self.script(index / self.fps)
        return Landmarks68(tuple(Point(float(x), float(y)) for x, y in points))


def frames(count: int) -> list[npt.NDArray[np.uint8]]:
    out = []
    for i in range(count):
        image = np.full((360, 640, 3), 80, np.uint8)
        image[0, 0, :2] = (i % 256, i // 256)
        out.append(image)
    return out


@pytest.fixture
def store(tmp_path: Path) -> KioskStore:
    s = KioskStore.open(tmp_path / "kiosk.db", kiosk_id="front-door")
    s.add_person("ada", "Ada Lovelace")
    s.add_templates("ada", EMBEDDING)
    return s


def run_fake(
    store: KioskStore, script: Script, count: int, **settings: object
) -> tuple[Kiosk, RecordingFeedback, ScriptedModels]:
    models = ScriptedModels(script)
    feedback = RecordingFeedback()
    kiosk = Kiosk(
        models=models,
        database=store,
        feedback=feedback,
        settings=KioskSettings(**settings),  # type: ignore[arg-type]
        clock=video_clock(START),
    )
    kiosk.run(FakeSource(frames(count)))
    return kiosk, feedback, models


# --------------------------------------------------------------------------- the loop


def test_with_liveness_off_a_print_logs_as_before_and_no_landmarks_are_taken(
    store: KioskStore,
) -> None:
    kiosk, feedback, models = run_fake(store, tilted_print, 90)
    assert [e.person_id for e in store.events()] == ["ada"]
    assert models.landmark_calls == 0 and kiosk.stats.liveness_samples == 0
    assert kiosk.stats.suspected_spoofs == 0 and len(feedback.greetings) == 1
    assert kiosk.stats.event_delays == [0.0]  # one decisive encoding (distance 0) settles


def test_with_liveness_required_a_print_logs_nothing_and_is_a_suspected_spoof(
    store: KioskStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="clockface.kiosk"):
        kiosk, feedback, models = run_fake(store, tilted_print, 120, liveness=LivenessMode.REQUIRED)
    assert store.events() == [] and feedback.greetings == []
    stats = kiosk.stats
    assert stats.suspected_spoofs == 1 and feedback.unknowns == 1
    assert stats.unknown_passes == 0 and stats.conflicting_passes == 0
    samples = KioskSettings().liveness_samples
    assert stats.liveness_samples == samples  # then it stopped sampling
    assert models.landmark_calls == samples + 1  # and the warm-up at start
    (line,) = [r.getMessage() for r in caplog.records if "suspected spoof" in r.getMessage()]
    assert line.startswith("suspected spoof: track 1 matched ada, but its face moved as a flat")
    assert "no event" in line and "[" not in line  # never an embedding or landmarks


def test_with_liveness_required_a_turning_head_logs_once_it_looks_alive(
    store: KioskStore,
) -> None:
    kiosk, feedback, _ = run_fake(store, turning_head, 90, liveness=LivenessMode.REQUIRED)
    assert [e.person_id for e in store.events()] == ["ada"]
    assert kiosk.stats.suspected_spoofs == 0 and len(feedback.greetings) == 1
    # Not on the second vote (4/30 s) as without liveness: after enough head motion.
    (delay,) = kiosk.stats.event_delays
    assert 0.3 < delay < 2.0
    assert kiosk.stats.liveness_samples < KioskSettings().liveness_samples


def test_a_pass_that_leaves_before_it_looks_alive_is_a_suspected_spoof(
    store: KioskStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="clockface.kiosk"):
        kiosk, _, _ = run_fake(
            store, tilted_print, 15, liveness=LivenessMode.REQUIRED
        )  # half a second
    assert store.events() == [] and kiosk.stats.suspected_spoofs == 1
    assert any("left before it looked alive" in r.getMessage() for r in caplog.records)


def test_liveness_runs_the_detector_when_a_sample_is_due(
    store: KioskStore,
) -> None:
    """Landmarks need a fresh face box: while a pass waits for its verdict the detector
    also runs whenever a sample is due (liveness_gap apart), where without liveness it
    slows to detect_every_settled once the pass is settled; but not on every
    detect_every-th frame: 12 samples 0.15 s apart at 30 fps are every 5th frame."""
    off, _, _ = run_fake(store, tilted_print, 60)
    other = KioskStore.open(store.path.parent / "other.db")
    other.add_person("ada", "Ada Lovelace")
    other.add_templates("ada", EMBEDDING)
    on, _, _ = run_fake(other, tilted_print, 60, liveness=LivenessMode.REQUIRED)
    assert on.stats.liveness_samples == 12
    assert off.stats.detected < on.stats.detected < 60 // KioskSettings().detect_every


# --------------------------------------------------------------------------- config


def test_liveness_keys_in_the_file_the_environment_and_the_default_config(tmp_path: Path) -> None:
    text = default_file()
    assert 'liveness = "off"' in text and "liveness_min_residual = 0.11" in text
    path = tmp_path / "kiosk.toml"
    path.write_text('[kiosk]\nliveness = "required"\nliveness_samples = 16\n', encoding="utf-8")
    config = load_config(path, environ={"CLOCKFACE_KIOSK_LIVENESS_GAP": "0.2"})
    s = config.settings
    assert s.liveness is LivenessMode.REQUIRED and s.liveness_samples == 16
    assert s.liveness_gap == 0.2 and s.liveness_limits.max_samples == 16
    assert 'liveness = "required"' in describe(config)
    env = load_config(environ={"CLOCKFACE_KIOSK_LIVENESS": "required"})
    assert env.settings.liveness is LivenessMode.REQUIRED
    assert load_config(environ={}).settings.liveness is LivenessMode.OFF


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('liveness = "maybe"', 'liveness must be one of "off", "required"'),
        ("liveness = true", "liveness"),
        ("liveness_min_residual = 0", "liveness_min_residual must be more than 0"),
        ("liveness_pairs = 4\nliveness_samples = 6", "liveness_samples must be at least twice"),
        ("liveness_samples = 41", "40 at most"),
        ("liveness_pairs = 0", "liveness_pairs must be 1 to 5"),
        ("liveness_gap = -1", "liveness_gap"),
    ],
)
def test_bad_liveness_keys_are_refused_with_the_key_named(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(f"[kiosk]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_the_68_point_model_is_loaded_only_with_liveness_required(store: KioskStore) -> None:
    off = FaceModels()
    Kiosk(models=off, database=store, feedback=RecordingFeedback())
    assert Model.SHAPE_68 not in off.loaded_models()
    on = FaceModels()
    settings = KioskSettings(liveness=LivenessMode.REQUIRED)
    Kiosk(models=on, database=store, feedback=RecordingFeedback(), settings=settings)
    assert Model.SHAPE_68 in on.loaded_models()


# --------------------------------------------------------------------------- real faces

ENROLLED = "lin_manuel_miranda/lin_manuel_miranda1.png"


@pytest.fixture(scope="module")
def real_models() -> FaceModels:
    s = KioskSettings()
    return s.face_models()


@pytest.fixture(scope="module")
def lin_template(real_models: FaceModels) -> npt.NDArray[np.float32]:
    from recognition.identify import enrollment_template
    from recognition.photos import read_image

    template, _ = enrollment_template(real_models, read_image(faces_dir() / ENROLLED))
    return template


@pytest.fixture(scope="module")
def attack_video(tmp_path_factory: pytest.TempPathFactory, real_models: FaceModels) -> Path:
    """His enrollment photo printed and held up, turned and tilted, for 3 seconds."""
    faces_dir()
    spec = AttackSpec(ENROLLED, "print", "tilt", seed=3)
    (video,) = build_attacks(tmp_path_factory.mktemp("attacks"), [spec], models=real_models)
    return video.path


def replay_real(
    tmp_path: Path,
    models: FaceModels,
    template: npt.NDArray[np.float32],
    video: Path,
    liveness: LivenessMode,
) -> tuple[list[str], KioskStats, list[float]]:
    """The people logged, the stats and each event's video time (seconds)."""
    store = KioskStore.open(tmp_path / f"kiosk-{liveness}-{video.stem}.db")
    store.add_person("lin_manuel_miranda", "Lin-Manuel Miranda")
    store.add_templates("lin_manuel_miranda", template)
    settings = replace(KioskSettings(timezone="Europe/Berlin"), liveness=liveness)
    kiosk = Kiosk(
        models=models,
        database=store,
        feedback=RecordingFeedback(),
        settings=settings,
        clock=video_clock(START),
    )
    with open_source(f"video:{video}") as source:
        stats = kiosk.run(source)
    events = [e.person_id for e in store.events()]
    times = [(e.utc - START).total_seconds() for e in store.events()]
    store.close()
    return events, stats, times


@pytest.mark.faces
def test_the_real_clip_still_logs_him_with_liveness_required(
    tmp_path: Path, real_models: FaceModels, lin_template: npt.NDArray[np.float32]
) -> None:
    video = FACES / "video" / "short_hamilton_clip.mp4"
    events, stats, times = replay_real(
        tmp_path, real_models, lin_template, video, LivenessMode.REQUIRED
    )
    assert events == ["lin_manuel_miranda"]
    assert stats.suspected_spoofs == 0 and stats.frames == 275
    assert 0 < stats.liveness_samples <= 3 * KioskSettings().liveness_samples
    # He faces the camera from about 3 s (face_recognition's recipe names him at 2.74 s);
    # liveness needs a few of those frames.
    assert times[0] < 2.74 + 2.0


@pytest.mark.faces
@pytest.mark.parametrize("liveness", [LivenessMode.OFF, LivenessMode.REQUIRED])
def test_a_printed_photo_is_logged_without_liveness_and_refused_with_it(
    tmp_path: Path,
    real_models: FaceModels,
    lin_template: npt.NDArray[np.float32],
    attack_video: Path,
    liveness: LivenessMode,
) -> None:
    events, stats, _ = replay_real(tmp_path, real_models, lin_template, attack_video, liveness)
    if liveness is LivenessMode.OFF:  # the attack is a real one: the photo is him
        assert events == ["lin_manuel_miranda"] and stats.suspected_spoofs == 0
    else:
        assert events == [] and stats.suspected_spoofs >= 1
        assert stats.unknown_passes + stats.conflicting_passes == 0


@pytest.mark.faces
def test_kiosk_run_liveness_required_logs_nothing_for_the_print_and_says_so(
    tmp_path: Path,
    lin_template: npt.NDArray[np.float32],
    attack_video: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The command line: `kiosk run --liveness required` on the printed photo logs no
    event, counts the suspected spoof in its summary and warns in its log."""
    from click.testing import CliRunner

    from clockface.cli import main

    database = tmp_path / "kiosk.db"
    with KioskStore.open(database) as store:
        store.add_person("lin_manuel_miranda", "Lin-Manuel Miranda")
        store.add_templates("lin_manuel_miranda", lin_template)
    result = CliRunner().invoke(
        main,
        ["kiosk", "run", "--db", str(database), "--source", str(attack_video),
         "--liveness", "required"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = result.stdout.strip().splitlines()[-1]
    assert ", 0 events, " in summary
    spoofs = summary.split("; ")[0].rsplit(", ", 1)[-1]
    assert spoofs.endswith(("suspected spoof", "suspected spoofs")) and spoofs[0] != "0"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("suspected spoof: track") for m in warned), warned
    with KioskStore.open(database) as store:
        assert store.events() == []
