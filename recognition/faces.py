"""Face detection, landmarks and 128-d embeddings with dlib, loaded lazily.

``FaceModels`` wraps the dlib models that ``face_recognition`` uses, without importing
``face_recognition`` itself: that package loads every model at import, including the
100 MB 68-point landmark predictor that clockface does not need. Here each model is
loaded once, on first use, and only if used:

- the face detector: YuNet (OpenCV's ``cv2.FaceDetectorYN``, the default; its ONNX file
  is vendored in ``recognition/models`` and checked against its sha256 at load), dlib's
  HOG frontal face detector (no file), or dlib's CNN (MMOD) detector;
- the 5-point landmark predictor, which aligns the face for the encoder;
- the ResNet face encoder (``dlib_face_recognition_resnet_model_v1``), read from dlib's
  file and run in numpy (:mod:`recognition.resnet`: about 8x faster than dlib-bin's
  own, which has no BLAS, and equal to it within 1e-6);
- the 68-point landmark predictor only through :meth:`FaceModels.landmarks68`.

Detection runs on a copy downscaled to ``detect_max_side`` (``cv2.INTER_AREA``); the
boxes are scaled back to the full image, and landmarks and embeddings use the
full-resolution image so the aligned face chip stays sharp. With the defaults this
finds every face in the shared test photos (26 photos, 30 faces).

Why YuNet is the default: at a door, faces are small. dlib's HOG misses faces under
about 40 px in the detection copy at ``upsample=0`` (about 26 px at 1), and each
upsample quadruples its time; YuNet finds faces from about 10 px, and on this machine
runs on a 640x360 copy in a few milliseconds where HOG upsampled once takes tens.
YuNet's box is drawn around more of the head than dlib's, so it is mapped to the box
dlib's detector would give (:func:`yunet_to_dlib_box`, fitted on the shared photos)
before the 5-point predictor sees it: templates made with either detector stay
comparable, and nobody has to re-enroll (tests/test_yunet.py measures it).

Embeddings equal ``face_recognition.face_encodings(image, [box.css])`` (the "small",
5-point model) to float32 precision.

Images are numpy arrays of shape (height, width, 3), RGB, dtype uint8. Anything else
raises :class:`~clockface.errors.ImageError`; a non-contiguous view (a crop, a
``[..., ::-1]`` channel flip) is copied to a C-contiguous array first, as dlib needs.

Nothing here touches files other than the model files, nor cameras or the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from clockface.errors import ImageError, ModelError
from recognition.gallery import EMBEDDING_DIM
from recognition.images import downscale
from recognition.resnet import CHIP_SIZE, ResNet, load_resnet

RGBImage = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
Detector = Literal["yunet", "hog", "cnn"]
DETECTORS: tuple[Detector, ...] = ("yunet", "hog", "cnn")
"""The face detectors, the default first."""

YUNET_FILE = Path(__file__).resolve().parent / "models" / "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
YUNET_SCORE = 0.75
"""YuNet's confidence below which a box is not a face. On the shared photos real faces
score 0.89-0.95 at every detection size, except one 25 px face at 0.74; boxes on a
painted background score up to 0.70 (biden2.jpg at 640 px)."""
YUNET_NMS = 0.3

# YuNet's box -> dlib's: dlib's box is 1.09x as wide and 0.78x as tall, its centre
# 0.046 of YuNet's height lower (medians over the 30 faces of the shared photos, where
# both detectors found the same face). Embeddings through the mapped box differ from
# those through dlib's own box by a median 0.05 (tests/test_yunet.py).
_YUNET_TO_DLIB_WIDTH = 1.09
_YUNET_TO_DLIB_HEIGHT = 0.78
_YUNET_TO_DLIB_SHIFT = 0.046

_MIN_DETECT_MAX_SIDE = 64


class Model(StrEnum):
    """The models a :class:`FaceModels` can load."""

    YUNET_DETECTOR = "yunet_detector"
    HOG_DETECTOR = "hog_detector"
    CNN_DETECTOR = "cnn_detector"
    SHAPE_5 = "shape_predictor_5"
    SHAPE_68 = "shape_predictor_68"
    ENCODER = "encoder"


MODELS_PACKAGE = "face_recognition_models"
"""The distribution (face-recognition-models on PyPI) whose ``models`` folder holds dlib's
model files; clockface reads the files and never imports the package."""

# File names inside face_recognition_models/models (and inside a custom model_dir).
_MODEL_FILES: dict[Model, str] = {
    Model.YUNET_DETECTOR: YUNET_FILE.name,
    Model.CNN_DETECTOR: "mmod_human_face_detector.dat",
    Model.SHAPE_5: "shape_predictor_5_face_landmarks.dat",
    Model.SHAPE_68: "shape_predictor_68_face_landmarks.dat",
    Model.ENCODER: "dlib_face_recognition_resnet_model_v1.dat",
}

_MODEL_DESCRIPTIONS: dict[Model, str] = {
    Model.YUNET_DETECTOR: "YuNet face detector",
    Model.HOG_DETECTOR: "HOG face detector",
    Model.CNN_DETECTOR: "CNN face detector",
    Model.SHAPE_5: "5-point landmark",
    Model.SHAPE_68: "68-point landmark",
    Model.ENCODER: "face encoder",
}


@dataclass(frozen=True, slots=True)
class Box:
    """A face box in pixels, in face_recognition's "css" order.

    ``top``/``left`` are inclusive and ``bottom``/``right`` exclusive, so the face is
    ``image[box.top:box.bottom, box.left:box.right]`` once clipped to the image.
    A detector may return a box reaching past the image edge; :meth:`clipped` trims it.
    """

    top: int
    right: int
    bottom: int
    left: int

    def __post_init__(self) -> None:
        if self.bottom < self.top or self.right < self.left:
            raise ValueError(f"not a box: {self!r} (bottom < top or right < left)")

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def center_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def center_y(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def css(self) -> tuple[int, int, int, int]:
        """(top, right, bottom, left), the location tuple face_recognition takes."""
        return (self.top, self.right, self.bottom, self.left)

    def scaled(self, factor: float, factor_y: float | None = None) -> Box:
        """The box with x multiplied by ``factor`` and y by ``factor_y`` (default the same)."""
        fy = factor if factor_y is None else factor_y
        return Box(
            top=round(self.top * fy),
            right=round(self.right * factor),
            bottom=round(self.bottom * fy),
            left=round(self.left * factor),
        )

    def clipped(self, height: int, width: int) -> Box:
        """The part of the box inside an image of this size (possibly empty)."""
        top = min(max(self.top, 0), height)
        left = min(max(self.left, 0), width)
        return Box(
            top=top,
            right=max(min(self.right, width), left),
            bottom=max(min(self.bottom, height), top),
            left=left,
        )


@dataclass(frozen=True, slots=True)
class Detection:
    """One face the detector found: its box, and what YuNet also says of it.

    ``score``: YuNet's confidence (None from dlib's detectors). ``turn``: how far the
    head is turned left or right, from YuNet's landmarks: the nose tip's offset from
    the midpoint of the eyes, along the line between them, in eye distances (0 for a
    frontal face, about 0.5 at 45 degrees; None from dlib's detectors, whose faces are
    frontal by construction). dlib's embeddings of a face turned far away match poorly,
    so the kiosk waits for a better view before encoding one.
    """

    box: Box
    score: float | None = None
    turn: float | None = None


@dataclass(frozen=True, slots=True)
class Point:
    """A point in image pixels: ``x`` to the right, ``y`` down."""

    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Landmarks5:
    """dlib's 5 landmarks: two corners of each eye and the base of the nose.

    "Left" and "right" are as seen in the image: the subject's right eye is on the
    image's left. Fields are in dlib's point order (0..4).
    """

    right_eye_outer: Point
    right_eye_inner: Point
    left_eye_outer: Point
    left_eye_inner: Point
    nose: Point

    @classmethod
    def from_array(cls, points: npt.ArrayLike) -> Landmarks5:
        """From a (5, 2) array of (x, y) in dlib's point order."""
        arr = np.asarray(points, dtype=np.float64)
        if arr.shape != (5, 2):
            raise ValueError(f"5 landmarks need an array of shape (5, 2), not {arr.shape}")
        return cls(*(Point(float(x), float(y)) for x, y in arr))

    def as_array(self) -> npt.NDArray[np.float64]:
        """The points as a (5, 2) array of (x, y) in dlib's point order."""
        return np.array(
            [
                (p.x, p.y)
                for p in (
                    self.right_eye_outer,
                    self.right_eye_inner,
                    self.left_eye_outer,
                    self.left_eye_inner,
                    self.nose,
                )
            ],
            dtype=np.float64,
        )

    @property
    def left_eye(self) -> Point:
        """Centre of the eye on the image's left (the subject's right eye)."""
        return _midpoint(self.left_eye_outer, self.left_eye_inner)

    @property
    def right_eye(self) -> Point:
        """Centre of the eye on the image's right (the subject's left eye)."""
        return _midpoint(self.right_eye_outer, self.right_eye_inner)

    @property
    def eye_distance(self) -> float:
        """Distance between the two eye centres, in pixels."""
        a, b = self.left_eye, self.right_eye
        return float(np.hypot(b.x - a.x, b.y - a.y))


@dataclass(frozen=True, slots=True)
class Landmarks68:
    """dlib's 68 iBUG landmarks, in the standard point order (jaw 0-16, brows 17-26,
    nose 27-35, eyes 36-47, mouth 48-67)."""

    points: tuple[Point, ...]

    def __post_init__(self) -> None:
        if len(self.points) != 68:
            raise ValueError(f"68 landmarks needed, not {len(self.points)}")

    def as_array(self) -> npt.NDArray[np.float64]:
        """The points as a (68, 2) array of (x, y)."""
        return np.array([(p.x, p.y) for p in self.points], dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """One analysed face: where it is, its landmarks and its embedding.

    ``embedding`` is a read-only float32 array of shape (128,). Faces compare by
    identity (an array has no single truth value to compare by).
    """

    box: Box
    landmarks: Landmarks5
    embedding: FloatArray


def _midpoint(a: Point, b: Point) -> Point:
    return Point((a.x + b.x) / 2, (a.y + b.y) / 2)


def as_rgb_image(image: object) -> RGBImage:
    """The image as a C-contiguous (h, w, 3) uint8 array, as dlib needs it.

    A C-contiguous array is returned as is; a strided view is copied. Raises
    :class:`~clockface.errors.ImageError` for anything that is not an RGB uint8 image.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array holding an RGB image, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(
            f"expected an RGB image of dtype uint8, not {image.dtype}: "
            "convert it to 8-bit values 0..255 first"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        hint = ""
        if image.ndim == 3 and image.shape[2] == 4:
            hint = ": drop the alpha channel first"
        elif image.ndim == 2:
            hint = ": convert the greyscale image to RGB first"
        raise ImageError(
            f"expected an RGB image of shape (height, width, 3), not {image.shape}{hint}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"the image is empty (shape {image.shape})")
    return np.ascontiguousarray(image)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _packaged_model_file(model: Model) -> Path:
    """The model's path inside the installed face_recognition_models package.

    Found by where the package lies (``importlib.util.find_spec``), never imported: its
    ``__init__`` imports ``pkg_resources``, which setuptools 81 removed. Its files are
    ``models/<name>`` beside that ``__init__``.
    """
    try:
        spec = importlib.util.find_spec(MODELS_PACKAGE)
    except (ImportError, ValueError) as err:
        spec = None
        reason = _first_line(err)
    else:
        reason = "it is not installed"
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the face model package {MODELS_PACKAGE} cannot be found ({reason}): "
            "reinstall the project's dependencies"
        )
    folders = [Path(folder) / "models" for folder in spec.submodule_search_locations]
    for folder in folders:
        path = folder / _MODEL_FILES[model]
        if path.is_file():
            return path
    return folders[0] / _MODEL_FILES[model]  # _model_file says it is missing


class FaceModels:
    """The face models (YuNet's and dlib's), each loaded on first use, once.

    ``detector``: "yunet" (the default: finds faces from about 10 px in the detection
    copy, fast), "hog" (dlib's, frontal faces from about 40 px at ``upsample=1``) or
    "cnn" (dlib's MMOD, slow on a CPU, finds more turned faces). ``upsample`` (HOG and
    CNN only; YuNet needs none): how many times the detector doubles the image first;
    each doubling halves the smallest face found (HOG: about 80 px at 0, 40 px at 1,
    in the detection copy) and roughly quadruples the time. ``detect_max_side``: the
    longest side of the copy detection runs on, or None for the full image.
    ``num_jitters``: how many jittered copies of each face the encoder averages (1 is
    the face_recognition default; more is slower and only slightly more stable).
    ``model_dir``: a folder holding the model files under their usual names, instead
    of the face_recognition_models package and the vendored YuNet file.
    ``score_threshold``: YuNet's confidence below which a box is not a face.

    Loading is guarded by a lock, so one instance may be shared between threads; calls
    into the stateful DNN detectors (YuNet, CNN) are serialised; the encoder holds no state.
    """

    def __init__(
        self,
        detector: Detector = "yunet",
        *,
        upsample: int = 1,
        detect_max_side: int | None = 1024,
        num_jitters: int = 1,
        model_dir: str | Path | None = None,
        score_threshold: float = YUNET_SCORE,
    ) -> None:
        if detector not in DETECTORS:
            raise ValueError(
                f"detector must be one of {', '.join(map(repr, DETECTORS))}, not {detector!r}"
            )
        if not 0.0 < score_threshold < 1.0:
            raise ValueError(f"score_threshold must be between 0 and 1, not {score_threshold!r}")
        if isinstance(upsample, bool) or not isinstance(upsample, int) or not 0 <= upsample <= 4:
            raise ValueError(f"upsample must be an integer from 0 to 4, not {upsample!r}")
        if detect_max_side is not None and (
            isinstance(detect_max_side, bool)
            or not isinstance(detect_max_side, int)
            or detect_max_side < _MIN_DETECT_MAX_SIDE
        ):
            raise ValueError(
                f"detect_max_side must be None or an integer of at least "
                f"{_MIN_DETECT_MAX_SIDE}, not {detect_max_side!r}"
            )
        if isinstance(num_jitters, bool) or not isinstance(num_jitters, int) or num_jitters < 1:
            raise ValueError(f"num_jitters must be a positive integer, not {num_jitters!r}")
        self.detector: Detector = detector
        self.upsample = upsample
        self.detect_max_side = detect_max_side
        self.num_jitters = num_jitters
        self.score_threshold = score_threshold
        self.model_dir = None if model_dir is None else Path(model_dir)
        self._models: dict[Model, Any] = {}
        self._load_lock = threading.Lock()
        self._dnn_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"FaceModels(detector={self.detector!r}, upsample={self.upsample}, "
            f"detect_max_side={self.detect_max_side}, num_jitters={self.num_jitters})"
        )

    # -- models ----------------------------------------------------------------------

    def loaded_models(self) -> frozenset[Model]:
        """The models this instance has loaded so far."""
        with self._load_lock:
            return frozenset(self._models)

    def preload(self, *, encoder: bool = True) -> None:
        """Load the detector, the 5-point predictor and the encoder now (e.g. at start-up).

        ``encoder=False``: the detector only, for a process whose faces are encoded by
        others (the kiosk's encoder workers): dlib's models stay out of its memory.
        """
        self._model(_DETECTOR_MODELS[self.detector])
        if encoder:
            self._model(Model.SHAPE_5)
            self._model(Model.ENCODER)

    def _model_file(self, model: Model) -> Path:
        if self.model_dir is not None:
            path = self.model_dir / _MODEL_FILES[model]
        elif model is Model.YUNET_DETECTOR:
            path = YUNET_FILE
        else:
            path = _packaged_model_file(model)
        if not path.is_file():
            raise ModelError(
                f"the {_MODEL_DESCRIPTIONS[model]} model file {path} is missing: "
                "reinstall clockface and face_recognition_models, or fix the model folder"
            )
        return path

    def _model(self, model: Model) -> Any:
        found = self._models.get(model)
        if found is not None:
            return found
        with self._load_lock:
            found = self._models.get(model)
            if found is None:
                found = self._load(model)
                self._models[model] = found
            return found

    def _load(self, model: Model) -> Any:
        if model is Model.HOG_DETECTOR:
            return dlib.get_frontal_face_detector()
        path = self._model_file(model)
        if model is Model.YUNET_DETECTOR:
            return _load_yunet(path, self.score_threshold)
        if model is Model.ENCODER:
            return load_resnet(path)
        loader: Callable[[str], Any] = {
            Model.CNN_DETECTOR: dlib.cnn_face_detection_model_v1,
            Model.SHAPE_5: dlib.shape_predictor,
            Model.SHAPE_68: dlib.shape_predictor,
        }[model]
        try:
            return loader(str(path))
        except Exception as err:
            raise ModelError(
                f"cannot load the {_MODEL_DESCRIPTIONS[model]} model from {path} "
                f"({_first_line(err)}): reinstall face_recognition_models"
            ) from err

    # -- detection -------------------------------------------------------------------

    def detect(self, image: RGBImage, small: RGBImage | None = None) -> list[Box]:
        """The faces' boxes in full-image pixels, clipped to the image, left to right.

        ``small``: the same picture at a lower resolution, made by the camera (its
        low-resolution stream), to detect on instead of a copy shrunk here; it is still
        shrunk to ``detect_max_side`` if it is larger.
        """
        return [found.box for found in self.detect_faces(image, small)]

    def detect_faces(self, image: RGBImage, small: RGBImage | None = None) -> list[Detection]:
        """As :meth:`detect`, with each face's detector score and turn (YuNet only)."""
        return self._detect(as_rgb_image(image), None if small is None else as_rgb_image(small))

    def _detect(self, image: RGBImage, given: RGBImage | None = None) -> list[Detection]:
        height, width = image.shape[:2]
        small = image if given is None else given
        if self.detect_max_side is not None:
            small, _ = downscale(small, self.detect_max_side)
        # Map back with each axis's exact factor (the small size is rounded).
        fx, fy = width / small.shape[1], height / small.shape[0]
        found: list[Detection]
        if self.detector == "yunet":
            yunet = self._model(Model.YUNET_DETECTOR)
            bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
            with self._dnn_lock:
                yunet.setInputSize((small.shape[1], small.shape[0]))
                _, rows = yunet.detect(bgr)
            found = [] if rows is None else [_yunet_detection(row, fx, fy) for row in rows]
        elif self.detector == "cnn":
            cnn = self._model(Model.CNN_DETECTOR)
            with self._dnn_lock:
                rects = [hit.rect for hit in cnn(small, self.upsample)]
            found = [Detection(_rect_box(rect).scaled(fx, fy)) for rect in rects]
        else:
            rects = list(self._model(Model.HOG_DETECTOR)(small, self.upsample))
            found = [Detection(_rect_box(rect).scaled(fx, fy)) for rect in rects]
        kept = []
        for hit in found:
            box = hit.box.clipped(height, width)
            if box.area > 0:
                kept.append(Detection(box, hit.score, hit.turn))
        kept.sort(key=lambda d: (d.box.center_x, d.box.center_y))
        return kept

    # -- landmarks -------------------------------------------------------------------

    def landmarks(self, image: RGBImage, box: Box) -> Landmarks5:
        """The 5 landmarks of the face in ``box``."""
        shape = self._shape(as_rgb_image(image), box, Model.SHAPE_5)
        return _landmarks5(shape)

    def landmarks68(self, image: RGBImage, box: Box) -> Landmarks68:
        """The 68 landmarks of the face in ``box``; loads the 68-point model (100 MB)."""
        shape = self._shape(as_rgb_image(image), box, Model.SHAPE_68)
        return Landmarks68(tuple(Point(float(p.x), float(p.y)) for p in shape.parts()))

    def _shape(self, image: RGBImage, box: Box, model: Model) -> Any:
        rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
        return self._model(model)(image, rect)

    # -- embeddings ------------------------------------------------------------------

    def encode(self, image: RGBImage, boxes: Sequence[Box]) -> FloatArray:
        """The embedding of the face in each box: float32, shape (len(boxes), 128)."""
        image = as_rgb_image(image)
        if not boxes:
            return np.empty((0, EMBEDDING_DIM), dtype=np.float32)
        shapes = [self._shape(image, box, Model.SHAPE_5) for box in boxes]
        return self._descriptors(image, shapes)

    def _descriptors(self, image: RGBImage, shapes: Sequence[Any]) -> FloatArray:
        """The embeddings of the faces whose 5 landmarks are ``shapes``: each aligned
        to a 150x150 chip by dlib, as ``compute_face_descriptor`` does, then through
        the ResNet (:mod:`recognition.resnet`); with ``num_jitters`` > 1, the mean over
        that many randomly jittered copies of each chip (dlib's ``jitter_image``)."""
        net: ResNet = self._model(Model.ENCODER)
        chips = [dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=0.25) for shape in shapes]
        if self.num_jitters == 1:
            return net.embed(np.stack(chips))
        return np.stack(
            [net.embed(np.stack(dlib.jitter_image(chip, self.num_jitters))).mean(axis=0)
             for chip in chips]
        ).astype(np.float32)  # fmt: skip

    def analyze(self, image: RGBImage) -> list[Face]:
        """Every face in the image, left to right, with landmarks and embedding."""
        image = as_rgb_image(image)
        faces = []
        for box in (found.box for found in self._detect(image)):
            shape = self._shape(image, box, Model.SHAPE_5)
            (embedding,) = self._descriptors(image, [shape])
            embedding.flags.writeable = False
            faces.append(Face(box, _landmarks5(shape), embedding))
        return faces


def _rect_box(rect: Any) -> Box:
    """A dlib rectangle as a Box (dlib's right/bottom are inclusive; face_recognition
    uses them as they are)."""
    return Box(top=rect.top(), right=rect.right(), bottom=rect.bottom(), left=rect.left())


def yunet_to_dlib_box(row: npt.ArrayLike, fx: float = 1.0, fy: float = 1.0) -> Box:
    """The box dlib's detector would draw for a YuNet detection, in full-image pixels.

    ``row`` is one row of ``FaceDetectorYN.detect``: x, y, width, height (then the 5
    landmarks and the score), in the detection copy's pixels; ``fx``/``fy`` map the
    copy's x/y to the full image.
    """
    x, y, w, h = (float(v) for v in np.asarray(row, dtype=np.float64)[:4])
    cx = (x + w / 2) * fx
    cy = (y + h / 2 + _YUNET_TO_DLIB_SHIFT * h) * fy
    half_w = w * _YUNET_TO_DLIB_WIDTH * fx / 2
    half_h = h * _YUNET_TO_DLIB_HEIGHT * fy / 2
    return Box(
        top=round(cy - half_h),
        right=round(cx + half_w),
        bottom=round(cy + half_h),
        left=round(cx - half_w),
    )


def _yunet_detection(row: npt.ArrayLike, fx: float, fy: float) -> Detection:
    """A row of ``FaceDetectorYN.detect`` as a Detection in full-image pixels."""
    values = np.asarray(row, dtype=np.float64)
    right_eye, left_eye, nose = values[4:6], values[6:8], values[8:10]
    axis = left_eye - right_eye
    spread = float(np.hypot(axis[0], axis[1]))
    middle = (right_eye + left_eye) / 2
    turn = float(np.dot(nose - middle, axis)) / spread**2 if spread > 0 else 0.0
    return Detection(yunet_to_dlib_box(values, fx, fy), float(values[14]), abs(turn))


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_yunet(path: Path, score_threshold: float) -> Any:
    """OpenCV's YuNet detector from ``path``, refused unless its sha256 is the vendored one's."""
    try:
        digest = file_sha256(path)
    except OSError as err:
        raise ModelError(
            f"cannot read the YuNet face detector model {path} ({_first_line(err)}): "
            "reinstall clockface"
        ) from err
    if digest != YUNET_SHA256:
        raise ModelError(
            f"the YuNet face detector model {path} is not the published file "
            f"(sha256 {digest[:12]}..., expected {YUNET_SHA256[:12]}...): reinstall clockface"
        )
    try:
        with opencv_errors_only():
            return cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), score_threshold, YUNET_NMS, 5000
            )
    except cv2.error as err:
        raise ModelError(
            f"OpenCV cannot load the YuNet face detector model {path} ({_first_line(err)}): "
            "reinstall clockface and opencv-python-headless"
        ) from err


_OPENCV_LOG_LEVEL_ERROR = 2
"""OpenCV's LOG_LEVEL_ERROR, the same number in OpenCV 4 and 5."""


@contextmanager
def opencv_errors_only() -> Iterator[None]:
    """OpenCV logs only errors inside the block, as before after it.

    Loading YuNet, OpenCV 5 warns on stderr that its new DNN engine ignores the
    (default) target. OpenCV 5 keeps its log level in ``cv2.utils.logging``; OpenCV 4
    (what a Pi on Bookworm gets, with numpy 1) in ``cv2.getLogLevel``/``setLogLevel``.
    """
    api = getattr(cv2.utils, "logging", None) or cv2
    get_level: Callable[[], int] = api.getLogLevel
    set_level: Callable[[int], object] = api.setLogLevel
    previous = get_level()
    set_level(_OPENCV_LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        set_level(previous)


def smallest_face_px(detector: Detector, upsample: int = 1) -> float:
    """The width of the smallest face (dlib's box) a detector finds reliably, in the
    pixels of the copy it runs on.

    Measured by shrinking the shared photos' faces onto a 640x360 canvas: YuNet finds
    22 of 23 at 16 px and all from 20 px (whatever ``upsample``: it takes none); dlib's
    HOG at ``upsample=1`` finds 5 of 23 at 24 px, 21 at 28 and all from 32 px, and each
    upsample halves that. The CNN detector's window is 40 px before upsampling.
    """
    if detector == "yunet":
        return 20.0
    base = 64.0 if detector == "hog" else 40.0
    return base / (1 << upsample)


_DETECTOR_MODELS: dict[Detector, Model] = {
    "yunet": Model.YUNET_DETECTOR,
    "hog": Model.HOG_DETECTOR,
    "cnn": Model.CNN_DETECTOR,
}


def _landmarks5(shape: Any) -> Landmarks5:
    if shape.num_parts != 5:
        raise ModelError(f"the 5-point landmark model returned {shape.num_parts} points")
    return Landmarks5(*(Point(float(p.x), float(p.y)) for p in shape.parts()))
