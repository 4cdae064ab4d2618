"""bench.walkby_scenes: the synthetic walk-through videos and their ground truth.

The quick 720p and 1080p scenes are rendered once for the module (a few CPU seconds
each) and read back through the kiosk's own VideoFileSource; the checks that need the
shared photos skip, with the reason, when ../shared/faces is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bench import walkby_scenes as ws
from hardware.frames import frames
from hardware.sources import VideoFileSource
from kiosk.geometry import FACE_WIDTH_M, focal_px
from recognition.faces import Box
from tests.helpers.shared_faces import Analysed, faces_dir

ROOT = Path(__file__).resolve().parents[1]
YUNET_NAME = "face_detection_yunet_2023mar.onnx"
QUICK = {spec.name: spec for spec in ws.default_scenes(quick=True)}
SCENES = ("quick-720p-66-normal", "quick-1080p-102-normal")
YUNET_EVERY = 4  # YuNet runs on every 4th frame (full size 1080p costs tens of ms)


def yunet_model() -> Path:
    """The vendored YuNet model, or the shared copy until it is vendored."""
    vendored = ROOT / "recognition" / "models" / YUNET_NAME
    shared = ROOT.parent / "shared" / "models" / YUNET_NAME
    for path in (vendored, shared):
        if path.is_file():
            return path
    pytest.skip(f"the YuNet model is missing: neither {vendored} nor {shared}")


# --- specs, without rendering -----------------------------------------------------------


def walker(**kw: Any) -> ws.WalkerSpec:
    fields: dict[str, Any] = {"photo": "obama/obama2.jpg", "identity": "obama"}
    return ws.WalkerSpec(**(fields | kw))


def scene(**kw: Any) -> ws.SceneSpec:
    fields: dict[str, Any] = {"name": "s", "walkers": (walker(),)}
    return ws.SceneSpec(**(fields | kw))


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: walker(speed_mps=0), "speed_mps must be more than 0 m/s, not 0"),
        (lambda: walker(speed_mps=-1.2), "speed_mps must be more than 0 m/s, not -1.2"),
        (lambda: walker(speed_mps=math.nan), "speed_mps must be more than 0"),
        (lambda: walker(start_distance_m=0.5), "start_distance_m must be more than"),
        (lambda: walker(lateral_m=5.0), "lateral_m must be from -3 to 3 m"),
        (lambda: walker(photo="/etc/passwd"), "photo must be a path inside the faces folder"),
        (lambda: walker(photo="../x.jpg"), "photo must be a path inside the faces folder"),
        (lambda: scene(light="foggy"), "light must be one of normal, dim, backlight, not 'foggy'"),
        (lambda: scene(width=1281), "width and height must be even whole numbers"),
        (lambda: scene(height=719), "width and height must be even whole numbers"),
        (lambda: scene(hfov_deg=180.0), "hfov_deg must be from 20 to 150 degrees"),
        (lambda: scene(fps=0.0), "fps must be from 1 to 240"),
        (lambda: scene(name="a/b"), "name must be letters, digits"),
        (lambda: scene(duration_s=0.0), "duration_s must be None or more than 0 s"),
        (lambda: scene(walkers=[walker()]), "walkers must be a tuple of WalkerSpec"),
    ],
)
def test_bad_specs_raise_a_clear_value_error(make: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_the_pinhole_camera() -> None:
    assert focal_px(1280, 66) == pytest.approx(985.5, abs=0.1)
    assert focal_px(1920, 102) == pytest.approx(777.4, abs=0.1)
    level = ws.Camera(1280, 720, 66.0, 2.0, 0.0)
    assert level.project(0.0, 2.0, 4.0)[:2] == pytest.approx((640.0, 360.0))
    camera = ws.Camera(1280, 720, 66.0, 2.0, 5.0)
    far, near = camera.project(0.5, 1.7, 5.0), camera.project(0.5, 1.7, 1.5)
    assert near[0] > far[0] > 640  # outwards
    assert near[1] > far[1]  # and down, as the walker comes closer
    # A face below the camera at 2 m is 2 m * cos(tilt) + 0.3 m * sin(tilt) deep.
    tilt = math.radians(5)
    assert far[2] == pytest.approx(5 * math.cos(tilt) + 0.3 * math.sin(tilt))


def test_a_walk_follows_its_spec() -> None:
    w = walker(speed_mps=1.25, start_s=0.4, start_distance_m=6.0)
    assert w.distance_at(0.0) == 6.0
    assert w.distance_at(2.4) == pytest.approx(3.5)
    assert w.distance_at(100.0) == 0.5
    assert w.end_s == pytest.approx(0.4 + 5.5 / 1.25)


def test_default_scenes_cover_cameras_lights_crowds_and_strangers() -> None:
    full, quick = ws.default_scenes(), ws.default_scenes(quick=True)
    assert len({s.name for s in full + quick}) == len(full) + len(quick)
    assert {(s.width, s.height) for s in full} == {(1280, 720), (1920, 1080)}
    assert {s.hfov_deg for s in full} == {66.0, 102.0}
    assert {s.light for s in full} == set(ws.LIGHTS)
    assert {len(s.walkers) for s in full} == {1, 2, 3}
    walkers = [w for s in full for w in s.walkers]
    assert any(w.lateral_m * w.end_lateral < 0 for w in walkers)  # crossing diagonals
    assert {w.identity for w in walkers if w.stranger} == {"rose_leslie", "unknown"}
    for w in walkers:
        assert 1.0 <= w.speed_mps <= 1.6 and 1.55 <= w.face_height_m <= 1.80
        assert -1.0 <= w.lateral_m <= 1.0 and -1.0 <= w.end_lateral <= 1.0
        assert (w.start_distance_m, w.end_distance_m) == (6.0, 0.5)
    assert all(s.duration_s is None for s in full)
    assert all(s.duration_s is not None and s.duration_s <= 3 for s in quick)
    assert {(s.width, s.height) for s in quick} == {(1280, 720), (1920, 1080)}


def test_walkers_use_other_photos_than_enrollment_where_there_are_any() -> None:
    from bench.pipeline import ENROLL

    assert ws.ENROLL_PHOTOS == ENROLL
    assert set(ws.enrolled_identities()) == set(ENROLL) - {ws.STRANGER_IDENTITY}
    assert ws.STRANGER_IDENTITY == "rose_leslie"
    for spec in ws.default_scenes() + ws.default_scenes(quick=True):
        for w in spec.walkers:
            if w.photo == ws.ENROLL_PHOTOS.get(w.identity):
                assert w.identity == "lin_manuel_miranda", (spec.name, w.photo)
            if w.identity == ws.UNKNOWN_IDENTITY:
                assert (w.photo, w.face_index) == ("group/obama_and_biden.jpg", -1)
            else:
                assert w.photo.split("/")[0] == w.identity


def test_the_command_line_refuses_what_it_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ws.main([str(tmp_path / "out"), "--faces", str(tmp_path / "nowhere")]) == 2
    assert "the shared faces folder" in capsys.readouterr().err
    (tmp_path / "MANIFEST.csv").write_text("path,identity,faces,notes\n")
    assert ws.main([str(tmp_path / "out"), "--faces", str(tmp_path), "--only", "nope"]) == 2
    assert "no scene nope; the scenes are:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- rendered scenes ----------------------------------------------------------------------


@dataclass
class ReadBack:
    """What reading a rendered video back gave."""

    truth: ws.SceneTruth
    size: tuple[int, int]
    count: int
    checked: int  # frames where the face is whole, >= 20 px and YuNet looked
    found: int  # ... and YuNet found it near the truth box
    near: npt.NDArray[np.uint8] | None  # an RGB frame with the face >= 80 px
    near_index: int


def near(found: npt.NDArray[np.float32], box: Box) -> bool:
    """Some YuNet box (x, y, w, h, ...) is centred on ``box`` and about its size."""
    for x, y, w, h in found[:, :4]:
        dx = x + w / 2 - box.center_x
        dy = y + h / 2 - box.center_y
        if math.hypot(dx, dy) <= 0.5 * box.width and 0.6 <= w / box.width <= 1.8:
            return True
    return False


def read_back(truth: ws.SceneTruth) -> ReadBack:
    spec = truth.spec
    yunet = cv2.FaceDetectorYN.create(
        str(yunet_model()), "", (spec.width, spec.height), 0.6, 0.3, 5000
    )
    walker = truth.walkers[0]
    near_index = walker.first_frame_face_px_at_least(80)
    assert near_index is not None
    result = ReadBack(truth, (0, 0), 0, 0, 0, None, near_index + 3)
    with VideoFileSource(truth.video) as source:
        for frame in frames(source):
            result.count += 1
            result.size = (frame.image.shape[1], frame.image.shape[0])
            state = walker.frames[frame.index]
            if frame.index == result.near_index:
                result.near = frame.image
            if frame.index % YUNET_EVERY or state is None or not state.whole:
                continue
            if state.face_px < 20 or state.box is None:
                continue
            _, found = yunet.detect(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
            result.checked += 1
            if found is not None and near(np.asarray(found, np.float32), state.box):
                result.found += 1
    return result


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ReadBack]:
    faces = faces_dir()
    folder = tmp_path_factory.mktemp("walkby")
    return {name: read_back(ws.render_scene(QUICK[name], folder, faces=faces)) for name in SCENES}


@pytest.mark.faces
@pytest.mark.parametrize("name", SCENES)
def test_the_video_has_the_spec_size_and_length(rendered: dict[str, ReadBack], name: str) -> None:
    got = rendered[name]
    spec = got.truth.spec
    assert got.size == (spec.width, spec.height)
    assert spec.duration_s is not None
    assert got.count == got.truth.frames == round(spec.duration_s * spec.fps)
    assert got.truth.video == got.truth.video.parent / f"{name}.mp4"
    assert not list(got.truth.video.parent.glob("*.partial*"))


@pytest.mark.faces
@pytest.mark.parametrize("name", SCENES)
def test_the_truth_follows_the_walk_and_the_pinhole(
    rendered: dict[str, ReadBack], name: str
) -> None:
    truth = rendered[name].truth
    walker = truth.walkers[0]
    focal = truth.spec.focal_px
    assert truth.focal_px == pytest.approx(focal, abs=0.01)
    seen = [(i, f) for i, f in enumerate(walker.frames) if f is not None and f.whole]
    assert len(seen) > 0.8 * truth.frames
    for i, state in seen:
        t = truth.time_of(i)
        assert state.distance_m == pytest.approx(truth.distance_at(0, t), abs=1e-3)
        assert state.box is not None
        if state.distance_m >= 1.0:
            expected = focal * FACE_WIDTH_M / state.distance_m
            assert abs(state.box.width - expected) <= 0.1 * expected, (i, state)
    # Coming closer: the face grows and moves down the image.
    first, last = seen[0][1].box, seen[-1][1].box
    assert first is not None and last is not None
    assert last.width > 3 * first.width and last.center_y > first.center_y
    # The helpers agree with the frames.
    index = truth.first_frame_face_px_at_least(60)
    assert index is not None
    at, before = walker.frames[index], walker.frames[index - 1]
    assert at is not None and at.face_px >= 60
    assert before is None or before.face_px < 60
    box = walker.box(index)
    assert box is not None
    assert truth.walker_for_box(box, truth.time_of(index)) is walker
    assert truth.walker_for_box(Box(0, 10, 10, 0), truth.time_of(index)) is None


@pytest.mark.faces
@pytest.mark.parametrize("name", SCENES)
def test_yunet_finds_the_walker_where_the_truth_says(
    rendered: dict[str, ReadBack], name: str
) -> None:
    got = rendered[name]
    assert got.checked >= 10
    assert got.found >= 0.8 * got.checked, f"YuNet found {got.found} of {got.checked} faces"


@pytest.mark.faces
@pytest.mark.parametrize("name", SCENES)
def test_a_near_walker_has_the_photo_s_embedding(
    rendered: dict[str, ReadBack], name: str, analysed: Analysed
) -> None:
    got = rendered[name]
    walker = got.truth.walkers[0]
    box = walker.box(got.near_index)
    assert got.near is not None and box is not None and box.width >= 80
    photo = analysed.image(walker.spec.photo)
    source_box = ws.photo_face_box(walker.spec.photo, faces=faces_dir())
    expected = analysed.models.encode(photo, [source_box])[0]
    actual = analysed.models.encode(got.near, [box])[0]
    assert float(np.linalg.norm(actual - expected)) < 0.6


@pytest.mark.faces
def test_the_truth_file_reads_back_equal(rendered: dict[str, ReadBack]) -> None:
    truth = rendered[SCENES[0]].truth
    loaded = ws.load_truth(truth.video.with_name(f"{truth.spec.name}.truth.json"))
    assert loaded == truth


@pytest.mark.faces
def test_the_same_spec_renders_the_same_frames_and_crossers_swap_sides(tmp_path: Path) -> None:
    """A small scene of two walkers crossing, rendered twice."""
    spec = replace(
        QUICK["quick-720p-102-backlight-cross"],
        name="tiny-cross",
        width=640,
        height=360,
        duration_s=2.0,
    )
    a = ws.render_scene(spec, tmp_path / "a", faces=faces_dir())
    b = ws.render_scene(spec, tmp_path / "b", faces=faces_dir())
    assert a.walkers == b.walkers and a.conditions == b.conditions
    with VideoFileSource(a.video) as one, VideoFileSource(b.video) as two:
        pairs = list(zip(frames(one), frames(two), strict=True))
    assert len(pairs) == a.frames == 60
    assert all(np.array_equal(x.image, y.image) for x, y in pairs)
    assert a.video.read_bytes() == b.video.read_bytes()
    # They cross: the one starting on the right ends on the left, and at some point the
    # nearer hides part of the other's face.
    rose, alex = a.walkers
    assert rose.identity == "rose_leslie" and rose.stranger and not alex.stranger
    both = [
        (r, x) for r, x in zip(rose.frames, alex.frames, strict=True) if r and x and r.box and x.box
    ]
    (rose_first, alex_first), (rose_last, alex_last) = both[0], both[-1]
    assert rose_first.box and alex_first.box and rose_last.box and alex_last.box
    assert rose_first.box.center_x > alex_first.box.center_x
    assert rose_last.box.center_x < alex_last.box.center_x
    assert max(f.occluded for w in a.walkers for f in w.frames if f is not None) > 0.05
    # A different seed gives a different video.
    c = ws.render_scene(replace(spec, seed=spec.seed + 1), tmp_path / "c", faces=faces_dir())
    assert c.video.read_bytes() != a.video.read_bytes()
