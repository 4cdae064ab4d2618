"""Enrollment quality gates: the measures, the limits, and the verdicts on real photos."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from recognition.faces import Box, FaceModels, Landmarks5
from recognition.quality import (
    FaceQuality,
    QualityLimits,
    QualityReport,
    Reason,
    assess,
    check,
    roll_degrees,
    sharpness,
    yaw,
)
from tests.helpers.shared_faces import faces_dir, load, single_face_photos

# A frontal face: eyes 40 px apart at y=50, nose base centred below them.
FRONTAL = np.array([[70, 50], [60, 50], [20, 50], [30, 50], [45, 75]], dtype=np.float64)


def rotated(points: npt.NDArray[np.float64], degrees: float) -> npt.NDArray[np.float64]:
    angle = math.radians(degrees)
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = points.mean(axis=0)
    out: npt.NDArray[np.float64] = (points - centre) @ turn.T + centre
    return out


class StubLocator:
    """Fixed boxes and landmarks, for the verdicts no real photo here can produce."""

    def __init__(self, boxes: list[Box], points: npt.NDArray[np.float64] = FRONTAL) -> None:
        self.boxes = boxes
        self.points = points

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Box]:
        return list(self.boxes)

    def landmarks(self, image: npt.NDArray[np.uint8], box: Box) -> Landmarks5:
        return Landmarks5.from_array(self.points)


def textured(size: int = 200, seed: int = 3) -> npt.NDArray[np.uint8]:
    """A sharp, detailed image (random blocks of 2 px) for the stubbed tests."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(size // 2, size // 2, 3), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(2, axis=0).repeat(2, axis=1))


# -- the measures ----------------------------------------------------------------------


def test_yaw_is_zero_for_a_frontal_face_and_signed() -> None:
    assert yaw(Landmarks5.from_array(FRONTAL)) == pytest.approx(0.0)
    turned = FRONTAL.copy()
    turned[4, 0] += 12  # nose 12 px to the image's right, eyes 40 px apart
    assert yaw(Landmarks5.from_array(turned)) == pytest.approx(0.3)
    turned[4, 0] -= 24
    assert yaw(Landmarks5.from_array(turned)) == pytest.approx(-0.3)


def test_yaw_ignores_roll_and_scale() -> None:
    turned = FRONTAL.copy()
    turned[4, 0] += 8  # yaw 0.2
    for degrees in (-25, 10, 40):
        assert yaw(Landmarks5.from_array(rotated(turned, degrees))) == pytest.approx(0.2)
        assert yaw(Landmarks5.from_array(rotated(FRONTAL, degrees))) == pytest.approx(0.0)
    assert yaw(Landmarks5.from_array(turned * 3.5)) == pytest.approx(0.2)


def test_yaw_of_coincident_eyes_is_infinite() -> None:
    broken = np.array([[30, 50]] * 4 + [[30, 70]], dtype=np.float64)
    assert yaw(Landmarks5.from_array(broken)) == math.inf


def test_roll_is_the_eye_line_angle() -> None:
    assert roll_degrees(Landmarks5.from_array(FRONTAL)) == pytest.approx(0.0)
    assert roll_degrees(Landmarks5.from_array(rotated(FRONTAL, 20))) == pytest.approx(20.0)
    assert roll_degrees(Landmarks5.from_array(rotated(FRONTAL, -35))) == pytest.approx(-35.0)


def test_sharpness_drops_with_blur_and_is_zero_when_flat() -> None:
    image = textured()
    box = Box(20, 180, 180, 20)
    sharp = sharpness(image, box)
    soft = sharpness(np.ascontiguousarray(cv2.GaussianBlur(image, (0, 0), 3), dtype=np.uint8), box)
    assert sharp > 1000 > soft
    assert sharpness(np.full((100, 100, 3), 128, dtype=np.uint8), Box(10, 90, 90, 10)) == 0
    assert sharpness(image, Box(300, 400, 400, 300)) == 0  # outside the image


def test_sharpness_compares_across_face_sizes() -> None:
    """The same face at half the size measures about the same (the crop is resized)."""
    image = np.ascontiguousarray(cv2.GaussianBlur(textured(400), (0, 0), 2), dtype=np.uint8)
    half = np.ascontiguousarray(
        cv2.resize(image, (200, 200), interpolation=cv2.INTER_AREA), dtype=np.uint8
    )
    big = sharpness(image, Box(40, 360, 360, 40))
    small = sharpness(half, Box(20, 180, 180, 20))
    assert small == pytest.approx(big, rel=0.5)


# -- limits and verdicts ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_face_px": 0},
        {"min_face_px": 60.5},
        {"min_sharpness": -1.0},
        {"min_sharpness": math.nan},
        {"max_yaw": 0.0},
        {"max_yaw": math.inf},
        {"max_roll_degrees": 0.0},
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        QualityLimits(**kwargs)  # type: ignore[arg-type]


def face_quality(**changes: float) -> FaceQuality:
    values: dict[str, float] = {"face_px": 200, "sharpness": 300.0, "yaw": 0.0, "roll": 0.0}
    values.update(changes)
    return FaceQuality(
        box=Box(0, 200, 200, 0),
        landmarks=Landmarks5.from_array(FRONTAL),
        face_px=int(values["face_px"]),
        sharpness=values["sharpness"],
        yaw=values["yaw"],
        roll_degrees=values["roll"],
    )


@pytest.mark.parametrize(
    ("changes", "reason", "words"),
    [
        ({"face_px": 48}, Reason.FACE_TOO_SMALL, "the face is 48 px wide, at least 53 px needed"),
        ({"sharpness": 12.4}, Reason.TOO_BLURRY, "sharpness 12, at least 30 needed"),
        ({"yaw": 0.31}, Reason.NOT_FRONTAL, "turned to the image's right (yaw 0.31"),
        ({"yaw": -0.4}, Reason.NOT_FRONTAL, "turned to the image's left (yaw 0.40"),
        ({"yaw": math.inf}, Reason.NOT_FRONTAL, "looking straight at the camera"),
        ({"roll": -41.0}, Reason.TILTED, "tilted by 41 degrees, at most 30 allowed"),
    ],
)
def test_each_limit_names_its_reason(changes: dict[str, float], reason: Reason, words: str) -> None:
    (issue,) = check(face_quality(**changes))
    assert issue.reason is reason
    assert words in issue.message
    assert "\n" not in issue.message
    assert issue.value == pytest.approx(next(iter(changes.values())))


def test_a_good_face_has_no_issues_and_every_miss_is_listed() -> None:
    assert check(face_quality()) == ()
    issues = check(face_quality(face_px=30, sharpness=5.0, yaw=0.5, roll=50.0))
    assert [i.reason for i in issues] == [
        Reason.FACE_TOO_SMALL,
        Reason.TOO_BLURRY,
        Reason.NOT_FRONTAL,
        Reason.TILTED,
    ]
    assert check(face_quality(face_px=30), QualityLimits(min_face_px=20)) == ()


def test_assess_counts_faces() -> None:
    image = textured()
    none = assess(StubLocator([]), image)
    assert not none.ok
    assert none.reasons == {Reason.NO_FACE}
    assert none.face is None and none.face_count == 0
    several = assess(StubLocator([Box(10, 60, 60, 10), Box(10, 160, 60, 110)]), image)
    assert several.reasons == {Reason.SEVERAL_FACES}
    assert several.face_count == 2 and several.issues[0].value == 2
    assert several.message.startswith("2 faces found, exactly 1 needed")


def test_assess_rejects_a_turned_face() -> None:
    """No photo in the shared set is turned enough: fake it by moving the nose."""
    turned = FRONTAL.copy()
    turned[4, 0] -= 14  # yaw -0.35
    report = assess(StubLocator([Box(20, 180, 180, 20)], turned), textured())
    assert report.reasons == {Reason.NOT_FRONTAL}
    assert report.face is not None and report.face.yaw == pytest.approx(-0.35)
    upright = assess(StubLocator([Box(20, 180, 180, 20)]), textured())
    assert upright.ok, upright.message
    assert upright.message == "the photo is good for enrollment"


# -- the real photos -------------------------------------------------------------------


@pytest.fixture(scope="module")
def models() -> Iterator[FaceModels]:
    faces_dir()
    yield FaceModels()


@pytest.fixture(scope="module")
def reports(models: FaceModels) -> dict[str, tuple[npt.NDArray[np.uint8], QualityReport]]:
    """Each single-face photo with its verdict under the default limits."""
    out = {}
    for path in single_face_photos():
        image = load(path)
        out[path] = (image, assess(models, image))
    return out


@pytest.mark.faces
def test_every_single_face_photo_passes_the_defaults(
    reports: dict[str, tuple[npt.NDArray[np.uint8], QualityReport]],
) -> None:
    assert len(reports) >= 22
    failing = {path: r.message for path, (_, r) in reports.items() if not r.ok}
    assert not failing, failing
    for path, (_, report) in reports.items():
        assert report.face is not None, path
        face = report.face
        assert face.face_px >= 53 and face.sharpness >= 60 and abs(face.yaw) < 0.2, path


@pytest.mark.faces
@pytest.mark.parametrize(
    "path", ["obama/obama_small.jpg", "kit_harington/kit_harington1.jpg", "biden/biden2.jpg"]
)
def test_heavy_blur_is_too_blurry(
    models: FaceModels,
    reports: dict[str, tuple[npt.NDArray[np.uint8], QualityReport]],
    path: str,
) -> None:
    image, report = reports[path]
    assert report.face is not None
    sigma = report.face.box.width / 40  # 3.2 px on a 128 px face
    blurred = np.ascontiguousarray(cv2.GaussianBlur(image, (0, 0), sigma), dtype=np.uint8)
    verdict = assess(models, blurred)
    assert verdict.reasons == {Reason.TOO_BLURRY}, verdict.message
    assert "use a sharp, in-focus" in verdict.message


@pytest.mark.faces
@pytest.mark.parametrize("path", ["obama/obama_small.jpg", "kit_harington/kit_harington1.jpg"])
def test_a_40_px_face_is_too_small(
    models: FaceModels,
    reports: dict[str, tuple[npt.NDArray[np.uint8], QualityReport]],
    path: str,
) -> None:
    image, report = reports[path]
    assert report.face is not None
    factor = 40 / report.face.face_px
    height, width = image.shape[:2]
    size = (round(width * factor), round(height * factor))
    small = np.ascontiguousarray(
        cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8
    )
    verdict = assess(models, small)
    assert Reason.FACE_TOO_SMALL in verdict.reasons, verdict.message
    assert verdict.face is not None and verdict.face.face_px < 50
    assert "use a larger or closer photo" in verdict.message


@pytest.mark.faces
def test_a_group_photo_has_several_faces(models: FaceModels) -> None:
    report = assess(models, load("group/obama_and_biden.jpg"))
    assert report.reasons == {Reason.SEVERAL_FACES}
    assert report.face_count == 3
    assert report.message.startswith("3 faces found, exactly 1 needed")


@pytest.mark.faces
def test_a_photo_without_a_face_has_no_face(
    models: FaceModels, reports: dict[str, tuple[npt.NDArray[np.uint8], QualityReport]]
) -> None:
    image, report = reports["obama/obama4.jpg"]
    assert report.face is not None
    background = np.ascontiguousarray(image[:, report.face.box.right + 40 :])
    verdict = assess(models, background)
    assert verdict.reasons == {Reason.NO_FACE}, verdict.message
