"""Face detection, landmarks and embeddings: unit tests, then tests on the real photos."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ImageFile

from clockface.errors import ImageError, ModelError
from recognition.faces import (
    Box,
    FaceModels,
    Landmarks5,
    Model,
    Point,
    as_rgb_image,
)
from recognition.gallery import EMBEDDING_DIM
from tests.helpers.shared_faces import Analysed, faces_dir, manifest_photos

DEFAULT_MODELS = frozenset({Model.YUNET_DETECTOR, Model.SHAPE_5, Model.ENCODER})


def iou(a: Box, b: Box) -> float:
    inter = Box(
        top=max(a.top, b.top),
        right=max(min(a.right, b.right), max(a.left, b.left)),
        bottom=max(min(a.bottom, b.bottom), max(a.top, b.top)),
        left=max(a.left, b.left),
    )
    return inter.area / (a.area + b.area - inter.area)


# -- Box, landmarks --------------------------------------------------------------------


def test_box_geometry() -> None:
    box = Box(top=10, right=50, bottom=40, left=20)
    assert (box.width, box.height, box.area) == (30, 30, 900)
    assert (box.center_x, box.center_y) == (35.0, 25.0)
    assert box.css == (10, 50, 40, 20)
    assert box.scaled(2) == Box(20, 100, 80, 40)
    assert box.scaled(2, 0.5) == Box(5, 100, 20, 40)
    assert box.scaled(1 / 3) == Box(3, 17, 13, 7)


def test_box_clipping() -> None:
    assert Box(-5, 120, 90, -10).clipped(80, 100) == Box(0, 100, 80, 0)
    assert Box(10, 20, 30, 5).clipped(80, 100) == Box(10, 20, 30, 5)
    outside = Box(200, 400, 300, 300).clipped(80, 100)
    assert outside.area == 0
    assert outside == Box(80, 100, 80, 100)


def test_box_refuses_inverted_corners() -> None:
    with pytest.raises(ValueError, match="not a box"):
        Box(top=10, right=5, bottom=20, left=8)
    with pytest.raises(ValueError, match="not a box"):
        Box(top=10, right=15, bottom=5, left=8)


def test_landmarks5_round_trip_and_eye_centres() -> None:
    points = np.array([[70, 50], [60, 50], [20, 50], [30, 50], [45, 80]], dtype=np.float64)
    marks = Landmarks5.from_array(points)
    assert marks.right_eye_outer == Point(70, 50)
    assert marks.nose == Point(45, 80)
    assert marks.left_eye == Point(25, 50)
    assert marks.right_eye == Point(65, 50)
    assert marks.eye_distance == pytest.approx(40)
    np.testing.assert_array_equal(marks.as_array(), points)
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        Landmarks5.from_array(points[:4])


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (np.zeros((8, 8, 3), dtype=np.float32), "dtype uint8, not float32"),
        (np.zeros((8, 8, 3), dtype=np.uint16), "dtype uint8, not uint16"),
        (np.zeros((8, 8), dtype=np.uint8), "convert the greyscale image to RGB"),
        (np.zeros((8, 8, 4), dtype=np.uint8), "drop the alpha channel"),
        (np.zeros((8, 8, 1), dtype=np.uint8), "shape (height, width, 3)"),
        (np.zeros((2, 8, 8, 3), dtype=np.uint8), "shape (height, width, 3)"),
        (np.zeros((0, 8, 3), dtype=np.uint8), "empty"),
        ([[[0, 0, 0]]], "numpy array"),
    ],
)
def test_bad_images_are_refused_with_a_clear_message(image: object, words: str) -> None:
    with pytest.raises(ImageError) as err:
        as_rgb_image(image)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_image_is_refused_before_any_model_loads() -> None:
    models = FaceModels()
    with pytest.raises(ImageError):
        models.detect(np.zeros((8, 8, 3), dtype=np.float64))
    with pytest.raises(ImageError):
        models.encode(np.zeros((8, 8, 4), dtype=np.uint8), [Box(0, 4, 4, 0)])
    assert models.loaded_models() == frozenset()


def test_non_contiguous_views_are_copied_contiguous() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    for view in (base[:, ::2], base[..., ::-1], base[2:18, 3:27], np.asfortranarray(base)):
        out = as_rgb_image(view)
        assert out.flags.c_contiguous
        np.testing.assert_array_equal(out, view)
    assert as_rgb_image(base) is base  # no copy when none is needed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"detector": "mtcnn"},
        {"upsample": -1},
        {"upsample": 1.5},
        {"detect_max_side": 10},
        {"num_jitters": 0},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaceModels(**kwargs)  # type: ignore[arg-type]


# -- models ----------------------------------------------------------------------------


def test_missing_model_file_raises_model_error(tmp_path: Path) -> None:
    models = FaceModels(model_dir=tmp_path)
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    with pytest.raises(ModelError) as err:
        models.encode(image, [Box(8, 56, 56, 8)])
    assert "shape_predictor_5_face_landmarks.dat is missing" in str(err.value)
    assert "\n" not in str(err.value)


def test_corrupt_model_file_raises_model_error(tmp_path: Path) -> None:
    (tmp_path / "shape_predictor_5_face_landmarks.dat").write_bytes(b"not a model")
    models = FaceModels(model_dir=tmp_path)
    with pytest.raises(ModelError) as err:
        models.landmarks(np.zeros((64, 64, 3), dtype=np.uint8), Box(8, 56, 56, 8))
    assert "cannot load the 5-point landmark model" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_model_package_raises_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)  # find_spec fails
    with pytest.raises(ModelError, match="face_recognition_models cannot be found"):
        FaceModels().landmarks(np.zeros((64, 64, 3), dtype=np.uint8), Box(8, 56, 56, 8))


def test_model_files_are_found_without_importing_their_package() -> None:
    """In a fresh process where ``pkg_resources`` cannot be imported (setuptools 81 and
    later have none): every dlib model file is found, and face_recognition_models is
    never imported (its ``__init__`` imports ``pkg_resources``)."""
    script = """
import sys
sys.modules["pkg_resources"] = None  # as with setuptools 81+
from recognition.faces import Model, _packaged_model_file
for model in (Model.CNN_DETECTOR, Model.SHAPE_5, Model.SHAPE_68, Model.ENCODER):
    path = _packaged_model_file(model)
    assert path.is_file() and path.stat().st_size > 100_000, path
    assert path.parent.name == "models" and path.parent.parent.name == "face_recognition_models"
assert "face_recognition_models" not in sys.modules
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


@pytest.mark.faces
def test_import_loads_nothing_and_analysis_skips_the_68_point_model() -> None:
    """In a fresh process: importing loads no model and never imports face_recognition;
    analysing a photo loads the YuNet detector, the 5-point predictor and the encoder only."""
    photo = faces_dir() / "obama" / "obama_small.jpg"
    script = f"""
import sys, warnings
warnings.simplefilter("error")
from pathlib import Path
from recognition.faces import FaceModels
from recognition.gallery import EMBEDDING_DIM
from recognition.images import decode_image
models = FaceModels()
assert models.loaded_models() == frozenset(), models.loaded_models()
faces = models.analyze(decode_image(Path({str(photo)!r}).read_bytes()))
assert len(faces) == 1
assert "face_recognition" not in sys.modules
assert "face_recognition_models" not in sys.modules
print(",".join(sorted(models.loaded_models())))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "encoder,shape_predictor_5,yunet_detector"
    assert done.stderr == ""  # no pkg_resources warning reaches the user


@pytest.mark.faces
def test_shared_models_load_only_what_analysis_needs(analysed: Analysed) -> None:
    analysed.faces("obama/obama_small.jpg")
    assert analysed.models.loaded_models() == DEFAULT_MODELS


@pytest.mark.faces
def test_68_point_landmarks_load_on_request_only(analysed: Analysed) -> None:
    image = analysed.image("obama/obama_small.jpg")
    box = analysed.faces("obama/obama_small.jpg")[0].box
    models = FaceModels()
    marks = models.landmarks68(image, box)
    assert models.loaded_models() == {Model.SHAPE_68}
    points = marks.as_array()
    assert points.shape == (68, 2)
    # The eyes (36-47) lie inside the face box, above the mouth (48-67).
    assert np.all((points[36:48, 0] > box.left) & (points[36:48, 0] < box.right))
    assert points[36:48, 1].max() < points[48:68, 1].min()


# -- the real photos -------------------------------------------------------------------


@pytest.mark.faces
def test_detection_counts_match_the_manifest(analysed: Analysed) -> None:
    wrong = []
    for photo in manifest_photos():
        found = len(analysed.boxes(photo.path))
        if found != photo.faces:
            wrong.append(f"{photo.path}: {found} faces, manifest says {photo.faces}")
    assert not wrong, "; ".join(wrong)


@pytest.mark.faces
def test_boxes_are_left_to_right_inside_the_image(analysed: Analysed) -> None:
    for photo in manifest_photos():
        image = analysed.image(photo.path)
        boxes = analysed.boxes(photo.path)
        centres = [box.center_x for box in boxes]
        assert centres == sorted(centres), photo.path
        for box in boxes:
            assert box == box.clipped(*image.shape[:2]), photo.path
            assert box.area > 0


@pytest.mark.faces
def test_group_faces_are_named_left_to_right(analysed: Analysed) -> None:
    """Each group face is nearest to the single-face photo of the person the manifest
    names at that position, left to right."""
    photos = manifest_photos()
    reference = {}
    for photo in photos:
        if photo.faces == 1 and photo.identities[0] not in reference:
            reference[photo.identities[0]] = analysed.faces(photo.path)[0].embedding
    names = list(reference)
    templates = np.stack([reference[name] for name in names])
    for photo in photos:
        if photo.faces < 2:
            continue
        for face, identity in zip(analysed.faces(photo.path), photo.identities, strict=True):
            distances = np.linalg.norm(templates - face.embedding, axis=1)
            nearest = names[int(np.argmin(distances))]
            if identity == "unknown":
                assert distances.min() > 0.6, f"{photo.path}: the unknown face looks enrolled"
            else:
                assert nearest == identity, f"{photo.path}: expected {identity}, got {nearest}"


@pytest.mark.faces
def test_embeddings_are_c_contiguous_float32(analysed: Analysed) -> None:
    image = analysed.image("group/two_people.jpg")
    boxes = [face.box for face in analysed.faces("group/two_people.jpg")]
    encoded = analysed.models.encode(image, boxes)
    assert encoded.shape == (2, EMBEDDING_DIM)
    assert encoded.dtype == np.float32
    assert encoded.flags.c_contiguous
    for row, face in zip(encoded, analysed.faces("group/two_people.jpg"), strict=True):
        np.testing.assert_array_equal(row, face.embedding)
        assert not face.embedding.flags.writeable
        assert np.all(np.isfinite(row))
        assert 0.5 < np.linalg.norm(row) < 2.0  # dlib's embeddings are not unit length
    empty = analysed.models.encode(image, [])
    assert empty.shape == (0, EMBEDDING_DIM)
    assert empty.dtype == np.float32


@pytest.mark.faces
def test_non_contiguous_photo_gives_the_same_faces(analysed: Analysed) -> None:
    image = analysed.image("obama/obama_small.jpg")
    padded = np.zeros((image.shape[0], image.shape[1] * 2, 3), dtype=np.uint8)
    padded[:, ::2] = image
    view = padded[:, ::2]  # the same pixels, every other column of a wider array
    assert not view.flags.c_contiguous
    faces = analysed.models.analyze(view)
    expected = analysed.faces("obama/obama_small.jpg")
    assert [f.box for f in faces] == [f.box for f in expected]
    assert [f.landmarks for f in faces] == [f.landmarks for f in expected]
    np.testing.assert_array_equal(faces[0].embedding, expected[0].embedding)
    assert not faces[0].embedding.flags.writeable


@pytest.mark.faces
@pytest.mark.parametrize(
    "path", ["obama/obama_small.jpg", "group/obama_and_biden.jpg", "biden/biden1.jpg"]
)
def test_embeddings_match_face_recognition(
    analysed: Analysed, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same image, same boxes: our embeddings equal face_recognition's (5-point model)."""
    # Importing face_recognition sets Pillow's global ImageFile.LOAD_TRUNCATED_IMAGES to
    # True, which would let truncated images decode in every later test: put it back.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", ImageFile.LOAD_TRUNCATED_IMAGES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # face_recognition_models' pkg_resources warning
        import face_recognition

    image = analysed.image(path)
    faces = analysed.faces(path)
    theirs = face_recognition.face_encodings(
        image, known_face_locations=[face.box.css for face in faces]
    )
    assert len(theirs) == len(faces)
    for face, expected in zip(faces, theirs, strict=True):
        np.testing.assert_allclose(face.embedding, expected, rtol=0, atol=1e-4)


@pytest.mark.faces
def test_downscaled_detection_maps_boxes_back_to_full_resolution(analysed: Analysed) -> None:
    """The 1920x1080 frame detected on a 1024 px copy gives the box that full-resolution
    detection gives (upsample 0 is enough at full size for this 240 px face)."""
    image = analysed.image("obama/obama-1080p.jpg")
    (small_box,) = analysed.models.detect(image)
    (full_box,) = FaceModels(upsample=0, detect_max_side=None).detect(image)
    assert iou(small_box, full_box) > 0.8, (small_box, full_box)


@pytest.mark.faces
def test_a_cameras_own_small_picture_is_detected_on_and_boxes_map_to_the_full_one(
    analysed: Analysed,
) -> None:
    """A camera's lores stream (here: the same frame at 640x360, grey as a YUV Y plane)
    gives the boxes in full-frame pixels that detecting on a copy shrunk here gives."""
    image = analysed.image("obama/obama-1080p.jpg")
    models = FaceModels(upsample=1, detect_max_side=640)
    small = cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA)
    grey = np.repeat(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    (from_small,) = models.detect(image, np.ascontiguousarray(grey))
    (shrunk_here,) = models.detect(image)
    assert iou(from_small, shrunk_here) > 0.8, (from_small, shrunk_here)
    assert from_small.width > 150  # full-frame pixels: about 240, not the small's 80


@pytest.mark.faces
def test_cnn_detector_is_selectable(analysed: Analysed) -> None:
    image = analysed.image("obama/obama_small.jpg")
    models = FaceModels("cnn", upsample=0)  # the CNN is slow on a CPU: one small photo
    (box,) = models.detect(image)
    assert models.loaded_models() == {Model.CNN_DETECTOR}
    (hog_box,) = analysed.models.detect(image)
    assert iou(box, hog_box) > 0.5, (box, hog_box)


def test_thresholds_bench_refuses_a_missing_faces_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import thresholds

    assert thresholds.main(["--faces", str(tmp_path / "nowhere")]) == 2
    assert "no shared faces" in capsys.readouterr().err
