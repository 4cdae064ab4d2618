"""Walk-through videos: people from the shared photos walking up to the kiosk's camera.

    uv run python -m bench.walkby_scenes /tmp/walkby            # the default scenes
    uv run python -m bench.walkby_scenes /tmp/walkby --quick    # the short test scenes

Each scene is a corridor seen by the kiosk's wall-mounted camera, with one to three
people walking straight towards it, and comes with its ground truth: for every frame,
each walker's distance from the camera and face box in pixels. The videos are footage
that nothing in clockface was tuned on, for tests and benchmarks of detection, tracking
and recognition at the door. They go to the folder given (a temporary one in the tests
and benches), never into the repository; the photos are read in place from
../shared/faces. Everything is seeded: the same :class:`SceneSpec` gives the same
frames.

Geometry
--------
A pinhole camera at ``camera_height_m`` (2.0 m) above the floor, tilted down by
``tilt_deg`` (5 degrees), with a horizontal field of view of 66 degrees (Raspberry Pi
Camera Module 3) or 102 degrees (Camera Module 3 Wide). Its focal length in pixels is

    focal_px = (width / 2) / tan(hfov / 2)

(985 px at 1280x720 and 66 degrees, 1478 px at 1920x1080 and 66, 518 and 777 px at
102). World axes: x to the right, y up from the floor, z straight ahead of the camera
along the floor. A point's depth along the optical axis is
``depth = z cos(tilt) - (y - camera_height) sin(tilt)``, and it is seen at
``(cx + focal x / depth, cy + focal ((camera_height - y) cos(tilt) - z sin(tilt)) / depth)``.

A walker's face centre is 1.55-1.80 m above the floor; it walks at 1.0-1.6 m/s from
6 m to 0.5 m in front of the camera (``distance_m`` in the truth is this distance z,
along the floor), with a lateral offset of -1 to +1 m that may change linearly along
the way (a diagonal: two walkers with opposite diagonals cross paths), bobbing
+-2-3 cm at its step rate (speed / 0.68-0.80 m, about 2 steps a second) and swaying
+-1.5-2.5 cm sideways at half that. The face centre is projected every frame, so faces
move down and outwards as they approach. A real face's width, as dlib's detector boxes
it, is about 0.16 m (:data:`FACE_WIDTH_M`), so the face is drawn
``focal_px * 0.16 / depth`` pixels wide: ``focal_px * 0.16 / distance_m`` to within a
few per cent from 1 m on (depth and distance differ by ``cos(tilt)`` and the face's
height below the camera times ``sin(tilt)``). A walker is drawn while its face box is
at least partly in the frame, from ``start_s`` until it passes 0.5 m.

What a walker is
----------------
The head is cut out of the photo (the dlib face box found by the HOG detector, cached
per process, widened to 1.8 x 2.0 box widths to take in hair and neck), under a soft
elliptical mask, and scaled (through a mip-map, so small faces do not alias) so its
face box is the width above. Below it, a flat silhouette at the face's depth: a neck
in the face's skin colour, a shirt (torso and arms), trousers down to the floor; each
corner is projected with the pinhole, so the body has the right perspective.

What each frame goes through
----------------------------
- motion blur of each walker along its face's image velocity: a line of
  ``velocity (px per frame) x exposure fraction`` pixels (exposure 1/120-1/60 s of a
  1/30 s frame in normal light, 1/40-1/30 s in dim light);
- the light: ``normal``; ``dim`` (a gain of 0.45-0.6 and a gamma of 1.15-1.3 over the
  whole frame, sensor noise 5-8 instead of 1.5-3 grey levels, a longer exposure);
  ``backlight`` (the corridor ends 6.5-7.5 m away in glazing onto daylight, behind
  the walkers; the camera exposes for it, so the room is at 0.6 of its light and the
  walkers' fronts at 0.35-0.5, and the window's glare veils everything near it);
- Gaussian sensor noise (per channel, seeded), then a JPEG round trip at quality
  60-90 (what a camera pipeline does), then OpenCV's MPEG-4 encoder (``mp4v``).

Truth
-----
:func:`render_scene` writes ``NAME.mp4`` and ``NAME.truth.json`` and returns the
:class:`SceneTruth`: per walker its identity (and whether it is a stranger), and per
frame (frame ``i`` is at video time ``i / fps``, as ``VideoFileSource`` gives it) its
distance, its face box clipped to the frame (None when out of it), the face's full
width, the fraction of the box inside the frame and the fraction nearer walkers cover.
:meth:`SceneTruth.distance_at`, :meth:`SceneTruth.walker_for_box` and
:meth:`SceneTruth.first_frame_face_px_at_least` answer a bench's questions about an
event at video time t; :func:`load_truth` reads a truth file back.

Walkers and strangers: :data:`ENROLL_PHOTOS` is bench.pipeline's enrollment photo per
identity; walkers use other photos of the same person (lin_manuel_miranda has only
one). :data:`STRANGER_IDENTITY` (rose_leslie) is left out of the gallery
(:func:`enrolled_identities`), and so is the unknown third person of
group/obama_and_biden.jpg (a girl looking down, half behind her hair: the hardest
face of the set).

Not modelled: the head turning (every face is the photo's frontal view, whatever the
walker's angle to the camera), the face plane's foreshortening under the tilt, facial
expressions, a 3-D body (the silhouette is flat, its legs do not step, and the whole
walker is blurred along its face's motion), lens distortion and vignetting (the Wide
lens is not rectilinear), rolling shutter, auto exposure changing over time, shadows,
and people avoiding each other: walkers pass through one another, the nearer painted
over the farther (the truth says how much of a face is covered).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bench.pipeline import ENROLL
from kiosk.geometry import FACE_WIDTH_M, focal_px
from recognition.faces import Box, FaceModels

BGR = npt.NDArray[np.uint8]
Float = npt.NDArray[np.float32]
Array = npt.NDArray[np.float64]

FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"
HFOV_CAMERA3 = 66.0
"""Raspberry Pi Camera Module 3, horizontal field of view, degrees."""
HFOV_CAMERA3_WIDE = 102.0
"""Raspberry Pi Camera Module 3 Wide, horizontal field of view, degrees."""
LIGHTS = ("normal", "dim", "backlight")
START_DISTANCE_M = 6.0
END_DISTANCE_M = 0.5
TAIL_S = 0.3
"""Empty frames after the last walker has gone (when a scene's duration is automatic)."""

ENROLL_PHOTOS: dict[str, str] = dict(ENROLL)
"""One enrollment photo per identity: bench.pipeline's. Walkers use other photos of the
same person where there are any (lin_manuel_miranda has only this one)."""
STRANGER_IDENTITY = "rose_leslie"
"""Left out of the enrolled gallery in the benches: every rose_leslie walker is a
stranger, as is the unknown third person of group/obama_and_biden.jpg."""
UNKNOWN_IDENTITY = "unknown"
UNKNOWN_PHOTO = "group/obama_and_biden.jpg"
UNKNOWN_FACE_INDEX = -1  # the rightmost of its three faces

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CUT_MAX_FACE_PX = 384  # a photo's face is shrunk to at most this before the cut is kept
_NOISE_PAD = 64


def enrolled_identities() -> tuple[str, ...]:
    """The identities a bench enrolls (from :data:`ENROLL_PHOTOS`): all but the stranger."""
    return tuple(name for name in ENROLL_PHOTOS if name != STRANGER_IDENTITY)


def _u8(array: object) -> BGR:
    return np.asarray(array, dtype=np.uint8)


def _f32(array: object) -> Float:
    return np.asarray(array, dtype=np.float32)


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True, kw_only=True)
class WalkerSpec:
    """One person walking up to the camera.

    ``photo``: inside the faces folder, e.g. "obama/obama2.jpg"; ``face_index`` picks
    one face of a group photo, left to right (negative: from the right); None needs a
    photo of exactly one face. ``lateral_m``: sideways offset at the start (positive:
    to the camera's right); ``end_lateral_m``: at ``end_distance_m`` (None: the same, a
    straight walk). ``start_s``: when the walker appears, in video time.
    """

    photo: str
    identity: str
    speed_mps: float = 1.3
    lateral_m: float = 0.0
    end_lateral_m: float | None = None
    start_s: float = 0.0
    face_height_m: float = 1.65
    start_distance_m: float = START_DISTANCE_M
    end_distance_m: float = END_DISTANCE_M
    face_index: int | None = None

    def __post_init__(self) -> None:
        def bad(what: str) -> ValueError:
            return ValueError(f"WalkerSpec {self.photo!r}: {what}")

        photo = Path(self.photo)
        if not self.photo or photo.is_absolute() or ".." in photo.parts:
            raise bad("photo must be a path inside the faces folder, like 'obama/obama2.jpg'")
        if not self.identity:
            raise bad("identity must not be empty")
        if not _finite(self.speed_mps) or self.speed_mps <= 0:
            raise bad(f"speed_mps must be more than 0 m/s, not {self.speed_mps!r}")
        end_lateral = self.lateral_m if self.end_lateral_m is None else self.end_lateral_m
        for name, value in (("lateral_m", self.lateral_m), ("end_lateral_m", end_lateral)):
            if not _finite(value) or abs(value) > 3:
                raise bad(f"{name} must be from -3 to 3 m, not {value!r}")
        if not _finite(self.start_s) or self.start_s < 0:
            raise bad(f"start_s must be 0 s or more, not {self.start_s!r}")
        if not _finite(self.face_height_m) or not 0.5 <= self.face_height_m <= 2.5:
            raise bad(f"face_height_m must be from 0.5 to 2.5 m, not {self.face_height_m!r}")
        if not _finite(self.end_distance_m) or self.end_distance_m < 0.3:
            raise bad(f"end_distance_m must be at least 0.3 m, not {self.end_distance_m!r}")
        if not _finite(self.start_distance_m) or self.start_distance_m <= self.end_distance_m:
            raise bad(
                f"start_distance_m must be more than end_distance_m ({self.end_distance_m} m), "
                f"not {self.start_distance_m!r}"
            )

    @property
    def end_lateral(self) -> float:
        return self.lateral_m if self.end_lateral_m is None else self.end_lateral_m

    @property
    def end_s(self) -> float:
        """When the walker reaches ``end_distance_m``, in video time."""
        return self.start_s + (self.start_distance_m - self.end_distance_m) / self.speed_mps

    @property
    def stranger(self) -> bool:
        """Not among :func:`enrolled_identities`."""
        return self.identity not in enrolled_identities()

    def distance_at(self, video_time: float) -> float:
        """Distance in front of the camera (m, along the floor) at ``video_time``; before
        ``start_s`` the start distance, after the walk the end distance."""
        walked = self.speed_mps * max(video_time - self.start_s, 0.0)
        return max(self.start_distance_m - walked, self.end_distance_m)


@dataclass(frozen=True, kw_only=True)
class SceneSpec:
    """One video: the camera, the light, the walkers and the seed of everything random.

    ``duration_s``: None lasts until the last walker has gone, plus :data:`TAIL_S`.
    """

    name: str
    walkers: tuple[WalkerSpec, ...]
    width: int = 1280
    height: int = 720
    hfov_deg: float = HFOV_CAMERA3
    fps: float = 30.0
    light: str = "normal"
    seed: int = 0
    camera_height_m: float = 2.0
    tilt_deg: float = 5.0
    duration_s: float | None = None

    def __post_init__(self) -> None:
        def bad(what: str) -> ValueError:
            return ValueError(f"SceneSpec {self.name!r}: {what}")

        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise bad("name must be letters, digits, '.', '_' or '-' (it names the files)")
        for size in (self.width, self.height):
            if isinstance(size, bool) or not isinstance(size, int) or size < 64 or size % 2:
                raise bad(
                    f"width and height must be even whole numbers of at least 64 pixels "
                    f"(the MPEG-4 encoder needs even sizes), not {self.width!r}x{self.height!r}"
                )
        if not _finite(self.hfov_deg) or not 20 <= self.hfov_deg <= 150:
            raise bad(f"hfov_deg must be from 20 to 150 degrees, not {self.hfov_deg!r}")
        if not _finite(self.fps) or not 1 <= self.fps <= 240:
            raise bad(f"fps must be from 1 to 240, not {self.fps!r}")
        if self.light not in LIGHTS:
            raise bad(f"light must be one of {', '.join(LIGHTS)}, not {self.light!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise bad(f"seed must be a whole number of 0 or more, not {self.seed!r}")
        if not _finite(self.camera_height_m) or not 0.5 <= self.camera_height_m <= 4:
            raise bad(f"camera_height_m must be from 0.5 to 4 m, not {self.camera_height_m!r}")
        if not _finite(self.tilt_deg) or not 0 <= self.tilt_deg <= 45:
            raise bad(f"tilt_deg must be from 0 to 45 degrees, not {self.tilt_deg!r}")
        if self.duration_s is not None and (not _finite(self.duration_s) or self.duration_s <= 0):
            raise bad(f"duration_s must be None or more than 0 s, not {self.duration_s!r}")
        if not isinstance(self.walkers, tuple) or not all(
            isinstance(w, WalkerSpec) for w in self.walkers
        ):
            raise bad("walkers must be a tuple of WalkerSpec")

    @property
    def focal_px(self) -> float:
        return focal_px(self.width, self.hfov_deg)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SceneSpec:
        fields = dict(data)
        fields["walkers"] = tuple(WalkerSpec(**w) for w in fields["walkers"])
        return cls(**fields)


# --------------------------------------------------------------------------- scenes


def _w(photo: str, identity: str | None = None, **kw: Any) -> WalkerSpec:
    return WalkerSpec(photo=photo, identity=identity or photo.split("/", 1)[0], **kw)


def _unknown(**kw: Any) -> WalkerSpec:
    """The stranger of group/obama_and_biden.jpg (its rightmost face)."""
    return _w(UNKNOWN_PHOTO, UNKNOWN_IDENTITY, face_index=UNKNOWN_FACE_INDEX, **kw)


def _scene(
    name: str,
    size: int,
    hfov_deg: float,
    light: str,
    seed: int,
    *walkers: WalkerSpec,
    duration_s: float | None = None,
) -> SceneSpec:
    width, height = {720: (1280, 720), 1080: (1920, 1080)}[size]
    return SceneSpec(
        name=name, walkers=walkers, width=width, height=height, hfov_deg=hfov_deg,
        light=light, seed=seed, duration_s=duration_s,
    )  # fmt: skip


_STD, _WIDE = HFOV_CAMERA3, HFOV_CAMERA3_WIDE


def default_scenes(quick: bool = False) -> list[SceneSpec]:
    """The standard set: 720p and 1080p, both lenses, 1-3 walkers (some crossing paths),
    all three lights, strangers among them. ``quick``: three short scenes (walkers start
    at 4.5 m, 2.5 s each) for the test suite, each rendered in a few CPU seconds."""
    if quick:
        return [
            _scene("quick-720p-66-normal", 720, _STD, "normal", 101,
                   _w("obama/obama2.jpg", speed_mps=1.4, lateral_m=0.3, face_height_m=1.72,
                      start_distance_m=4.5),
                   duration_s=2.5),
            _scene("quick-1080p-102-normal", 1080, _WIDE, "normal", 102,
                   _w("kit_harington/kit_harington2.jpg", speed_mps=1.5, lateral_m=-0.5,
                      face_height_m=1.70, start_distance_m=4.5),
                   duration_s=2.4),
            _scene("quick-720p-102-backlight-cross", 720, _WIDE, "backlight", 103,
                   _w("rose_leslie/rose_leslie2.jpg", speed_mps=1.5, lateral_m=0.8,
                      end_lateral_m=-0.8, face_height_m=1.58, start_distance_m=4.5),
                   _w("alex_lacamoire/alex_lacamoire2.jpg", speed_mps=1.4, lateral_m=-0.8,
                      end_lateral_m=0.8, face_height_m=1.75, start_distance_m=4.5,
                      start_s=0.2),
                   duration_s=2.5),
        ]  # fmt: skip
    return [
        _scene("walk-720p-66-normal", 720, _STD, "normal", 1,
               _w("obama/obama2.jpg", speed_mps=1.3, lateral_m=0.35, face_height_m=1.72)),
        _scene("walk-1080p-102-normal", 1080, _WIDE, "normal", 2,
               _w("kit_harington/kit_harington2.jpg", speed_mps=1.1, lateral_m=-0.6,
                  face_height_m=1.70)),
        _scene("pair-720p-102-dim", 720, _WIDE, "dim", 3,
               _w("biden/biden2.jpg", speed_mps=1.2, lateral_m=0.5, face_height_m=1.76),
               _w("alex_lacamoire/alex_lacamoire2.jpg", speed_mps=1.45, lateral_m=-0.4,
                  face_height_m=1.68, start_s=1.5)),
        _scene("cross-1080p-66-normal", 1080, _STD, "normal", 4,
               _w("lin_manuel_miranda/lin_manuel_miranda1.png", speed_mps=1.3, lateral_m=-0.9,
                  end_lateral_m=0.9, face_height_m=1.66),
               _w("obama/obama4.jpg", speed_mps=1.35, lateral_m=0.9, end_lateral_m=-0.9,
                  face_height_m=1.75, start_s=0.2)),
        _scene("stranger-720p-66-backlight", 720, _STD, "backlight", 5,
               _w("rose_leslie/rose_leslie2.jpg", speed_mps=1.0, lateral_m=0.2,
                  face_height_m=1.58),
               _w("kit_harington/kit_harington3.jpg", speed_mps=1.5, lateral_m=-0.7,
                  face_height_m=1.71, start_s=1.0)),
        _scene("trio-1080p-102-backlight", 1080, _WIDE, "backlight", 6,
               _w("alex_lacamoire/alex_lacamoire3.jpg", speed_mps=1.25, lateral_m=-0.9,
                  face_height_m=1.69),
               _unknown(speed_mps=1.4, lateral_m=0.8, end_lateral_m=-0.3, face_height_m=1.62,
                        start_s=0.6),
               _w("biden/biden2.jpg", speed_mps=1.05, lateral_m=0.1, face_height_m=1.78,
                  start_s=1.8)),
        _scene("cross-720p-102-dim", 720, _WIDE, "dim", 7,
               _w("rose_leslie/rose_leslie2.jpg", speed_mps=1.6, lateral_m=1.0,
                  end_lateral_m=-0.8, face_height_m=1.56),
               _w("obama/obama3.jpg", speed_mps=1.2, lateral_m=-1.0, end_lateral_m=0.6,
                  face_height_m=1.74)),
        _scene("trio-1080p-66-dim", 1080, _STD, "dim", 8,
               _w("kit_harington/kit_harington2.jpg", speed_mps=1.4, lateral_m=0.0,
                  face_height_m=1.70),
               _w("alex_lacamoire/alex_lacamoire3.jpg", speed_mps=1.1, lateral_m=0.7,
                  face_height_m=1.64, start_s=0.5),
               _unknown(speed_mps=1.55, lateral_m=-0.8, end_lateral_m=0.4, face_height_m=1.60,
                        start_s=1.2)),
    ]  # fmt: skip


# --------------------------------------------------------------------------- truth


@dataclass(frozen=True)
class WalkerFrame:
    """A walker in one frame. ``distance_m``: in front of the camera, along the floor;
    ``face_px``: the face box's full width; ``box``: the face box clipped to the frame
    (None when none of it is in the frame); ``inside``: the fraction of the face box
    inside the frame; ``occluded``: the fraction of its visible part that nearer
    walkers cover."""

    distance_m: float
    face_px: float
    box: Box | None
    inside: float
    occluded: float

    @property
    def whole(self) -> bool:
        """The whole face box is in the frame."""
        return self.box is not None and self.inside >= 0.999


@dataclass(frozen=True)
class WalkerTruth:
    """One walker through the video: ``frames[i]`` is None while it is not in the scene
    (before ``start_s``, after passing ``end_distance_m``)."""

    index: int
    spec: WalkerSpec
    frames: tuple[WalkerFrame | None, ...]

    @property
    def identity(self) -> str:
        return self.spec.identity

    @property
    def stranger(self) -> bool:
        return self.spec.stranger

    def distance(self, frame: int) -> float | None:
        """Distance (m) in frame ``frame``, or None when not in the scene."""
        state = self.frames[frame]
        return None if state is None else state.distance_m

    def box(self, frame: int) -> Box | None:
        """The face box in frame ``frame`` (clipped to it), or None when not visible."""
        state = self.frames[frame]
        return None if state is None else state.box

    def distance_at(self, video_time: float) -> float:
        """Distance (m) at ``video_time`` (s), from the walk itself (see WalkerSpec)."""
        return self.spec.distance_at(video_time)

    def first_frame_face_px_at_least(self, px: float) -> int | None:
        """The first frame where the whole face is in the frame and at least ``px`` wide."""
        for index, state in enumerate(self.frames):
            if state is not None and state.whole and state.face_px >= px:
                return index
        return None


@dataclass(frozen=True)
class SceneTruth:
    """What is in a rendered scene. ``conditions``: the seeded choices made for it
    (noise, exposure, JPEG quality, light)."""

    spec: SceneSpec
    video: Path
    frames: int
    focal_px: float
    walkers: tuple[WalkerTruth, ...]
    conditions: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.spec.fps

    def time_of(self, frame: int) -> float:
        """Video time of frame ``frame`` (as VideoFileSource gives it)."""
        return frame / self.spec.fps

    def frame_at(self, video_time: float) -> int:
        """The frame shown at ``video_time``, within the video."""
        return min(max(math.floor(video_time * self.spec.fps + 1e-6), 0), self.frames - 1)

    def walker(self, which: int | WalkerTruth) -> WalkerTruth:
        return self.walkers[which] if isinstance(which, int) else which

    def distance_at(self, walker: int | WalkerTruth, video_time: float) -> float:
        """How far walker ``walker`` (its index or itself) was from the camera (m) at
        ``video_time`` (s)."""
        return self.walker(walker).distance_at(video_time)

    def first_frame_face_px_at_least(self, px: float) -> int | None:
        """The first frame where some walker's whole face is at least ``px`` wide."""
        found = [w.first_frame_face_px_at_least(px) for w in self.walkers]
        return min((f for f in found if f is not None), default=None)

    def walker_for_box(
        self, box: Box, video_time: float, *, min_iou: float = 0.3
    ) -> WalkerTruth | None:
        """The walker whose face box overlaps ``box`` most at ``video_time`` (by
        intersection over union, at least ``min_iou``), or None."""
        frame = self.frame_at(video_time)
        best, best_iou = None, min_iou
        for walker in self.walkers:
            truth = walker.box(frame)
            if truth is not None and (overlap := iou(box, truth)) >= best_iou:
                best, best_iou = walker, overlap
        return best

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "video": self.video.name,
            "frames": self.frames,
            "fps": self.spec.fps,
            "focal_px": self.focal_px,
            "conditions": self.conditions,
            "walkers": [
                {
                    "index": w.index,
                    "identity": w.identity,
                    "photo": w.spec.photo,
                    "stranger": w.stranger,
                    "frames": [_frame_json(state) for state in w.frames],
                }
                for w in self.walkers
            ],
        }


def _frame_json(state: WalkerFrame | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "distance_m": state.distance_m,
        "face_px": state.face_px,
        "box": None if state.box is None else list(state.box.css),
        "inside": state.inside,
        "occluded": state.occluded,
    }


def load_truth(path: str | os.PathLike[str]) -> SceneTruth:
    """Read a ``NAME.truth.json`` back (its video is expected beside it)."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    spec = SceneSpec.from_dict(data["spec"])
    walkers = []
    for w, walker_spec in zip(data["walkers"], spec.walkers, strict=True):
        frames = tuple(
            None
            if f is None
            else WalkerFrame(
                f["distance_m"],
                f["face_px"],
                None if f["box"] is None else Box(*f["box"]),
                f["inside"],
                f["occluded"],
            )
            for f in w["frames"]
        )
        walkers.append(WalkerTruth(w["index"], walker_spec, frames))
    return SceneTruth(
        spec,
        path.parent / data["video"],
        data["frames"],
        data["focal_px"],
        tuple(walkers),
        dict(data["conditions"]),
    )


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = min(a.right, b.right) - max(a.left, b.left)
    h = min(a.bottom, b.bottom) - max(a.top, b.top)
    inter = max(w, 0) * max(h, 0)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------- camera


@dataclass(frozen=True)
class Camera:
    """The pinhole camera of a scene (see the module docstring for the model)."""

    width: int
    height: int
    hfov_deg: float
    height_m: float
    tilt_deg: float

    @classmethod
    def of(cls, spec: SceneSpec) -> Camera:
        return cls(spec.width, spec.height, spec.hfov_deg, spec.camera_height_m, spec.tilt_deg)

    @property
    def focal_px(self) -> float:
        return focal_px(self.width, self.hfov_deg)

    def project(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """World point (m) -> image (u, v) in pixels (continuous: pixel i spans [i, i+1))
        and its depth along the optical axis (m)."""
        s, c = math.sin(math.radians(self.tilt_deg)), math.cos(math.radians(self.tilt_deg))
        dy = y - self.height_m
        depth = z * c - dy * s
        down = -dy * c - z * s
        f = self.focal_px
        return self.width / 2 + f * x / depth, self.height / 2 + f * down / depth, depth

    def rays(self, step: int) -> tuple[Array, Array, Array]:
        """World directions (x, y, z) through every ``step``-th pixel's centre."""
        s, c = math.sin(math.radians(self.tilt_deg)), math.cos(math.radians(self.tilt_deg))
        f = self.focal_px
        us = (np.arange(0, self.width, step) + step / 2 - self.width / 2) / f
        vs = (np.arange(0, self.height, step) + step / 2 - self.height / 2) / f
        xc, yc = np.meshgrid(us, vs)
        return xc, -yc * c - s, -yc * s + c


# --------------------------------------------------------------------------- walkers


class _Walk:
    """A walker's path: the spec plus its seeded gait."""

    def __init__(self, spec: WalkerSpec, rng: np.random.Generator) -> None:
        self.spec = spec
        self.step_hz = spec.speed_mps / rng.uniform(0.68, 0.80)
        self.bob_m = rng.uniform(0.02, 0.03)
        self.sway_m = rng.uniform(0.015, 0.025)
        self.phase = rng.uniform(0, 2 * math.pi, size=2)

    def present(self, t: float) -> bool:
        s = self.spec
        return t >= s.start_s and s.start_distance_m - s.speed_mps * (t - s.start_s) >= (
            s.end_distance_m - 1e-9
        )

    def position(self, t: float) -> tuple[float, float, float]:
        """The face centre (x, y, z) in metres at time ``t`` (extrapolated outside the walk)."""
        s = self.spec
        z = s.start_distance_m - s.speed_mps * (t - s.start_s)
        along = (s.start_distance_m - z) / (s.start_distance_m - s.end_distance_m)
        steps = self.step_hz * (t - s.start_s)
        x = s.lateral_m + (s.end_lateral - s.lateral_m) * along
        x += self.sway_m * math.sin(math.pi * steps + self.phase[1])
        y = s.face_height_m + self.bob_m * math.sin(2 * math.pi * steps + self.phase[0])
        return x, y, z


@dataclass(frozen=True)
class _Level:
    rgba: Float  # (h, w, 4): premultiplied B, G, R (0..255) and alpha (0..1)
    face_w: float  # the face box's width in this level's pixels
    centre: tuple[float, float]  # the face box's centre, continuous pixels


@dataclass(frozen=True)
class _Head:
    levels: tuple[_Level, ...]
    aspect: float  # face box height / width
    skin: tuple[float, float, float]  # BGR


@functools.lru_cache(maxsize=1)
def _models() -> FaceModels:
    return FaceModels("hog", detect_max_side=1024)


def _read_photo(faces: Path, photo: str) -> npt.NDArray[np.uint8]:
    from recognition.photos import read_image

    return read_image(faces / photo)


@functools.cache
def _boxes(faces: Path, photo: str) -> tuple[Box, ...]:
    return tuple(_models().detect(_read_photo(faces, photo)))


def photo_face_box(photo: str, *, faces: Path = FACES, face_index: int | None = None) -> Box:
    """The dlib (HOG) face box in a photo of the faces folder, cached per process.
    ``face_index`` picks one face left to right; None needs exactly one face."""
    boxes = _boxes(faces, photo)
    if face_index is None:
        if len(boxes) != 1:
            raise ValueError(
                f"{photo}: {len(boxes)} faces found, need exactly one (or give face_index)"
            )
        return boxes[0]
    if not -len(boxes) <= face_index < len(boxes):
        raise ValueError(f"{photo}: face_index {face_index} but {len(boxes)} faces found")
    return boxes[face_index]


@functools.lru_cache(maxsize=32)
def _head(faces: Path, photo: str, face_index: int | None) -> _Head:
    """The head cut out of the photo, with its mip-map."""
    box = photo_face_box(photo, faces=faces, face_index=face_index)
    rgb = _read_photo(faces, photo)
    w, cx, cy = box.width, box.center_x, box.center_y
    inner = rgb[
        round(cy - 0.2 * box.height) : round(cy + 0.25 * box.height),
        round(cx - 0.2 * w) : round(cx + 0.2 * w),
    ].reshape(-1, 3)
    r, g, b = np.median(inner, axis=0)
    # The cut: 1.8 face widths across, 2.0 high (more above the box, for the hair).
    left, top = math.floor(cx - 0.9 * w), math.floor(cy - 1.1 * w)
    right, bottom = math.ceil(cx + 0.9 * w), math.ceil(cy + 0.9 * w)
    height, width = rgb.shape[:2]
    pad = (max(-top, 0), max(bottom - height, 0), max(-left, 0), max(right - width, 0))
    crop = rgb[max(top, 0) : bottom, max(left, 0) : right]
    inside = np.full(crop.shape[:2], 255, np.uint8)
    if any(pad):  # the cut reaches past the photo: nothing shows there
        crop = _u8(cv2.copyMakeBorder(crop, *pad, cv2.BORDER_REPLICATE))
        inside = _u8(cv2.copyMakeBorder(inside, *pad, cv2.BORDER_CONSTANT, value=0))
    colour = _u8(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    fx, fy, fw = cx - left, cy - top, float(w)  # the face's centre and width in the cut
    scale = min(1.0, _CUT_MAX_FACE_PX / w)
    if scale < 1.0:
        size = (round(colour.shape[1] * scale), round(colour.shape[0] * scale))
        colour = _u8(cv2.resize(colour, size, interpolation=cv2.INTER_AREA))
        inside = _u8(cv2.resize(inside, size, interpolation=cv2.INTER_AREA))
        fx, fy, fw = fx * scale, fy * scale, fw * scale
    # The mask: an ellipse around head and hair, and the neck below; soft edges.
    mask = np.zeros(colour.shape[:2], np.uint8)
    k = 16  # cv2's sub-pixel drawing: coordinates in 1/16 pixel
    centre = (round((fx - 0.5) * k), round((fy - 0.15 * fw - 0.5) * k))
    axes = (round(0.56 * fw * k), round(0.86 * fw * k))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA, 4)
    bottom_y = float(colour.shape[0])
    neck = np.array(
        [[fx - 0.28 * fw, fy], [fx + 0.28 * fw, fy], [fx + 0.28 * fw, bottom_y],
         [fx - 0.28 * fw, bottom_y]]
    )  # fmt: skip
    cv2.fillPoly(mask, [np.round((neck - 0.5) * k).astype(np.int32)], 255, cv2.LINE_AA, 4)
    # Fade out towards the cut's lower edge, where the neck meets the shirt.
    fade = np.clip((bottom_y - np.arange(colour.shape[0])) / (0.25 * fw), 0, 1).astype(np.float32)
    alpha = _f32(cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 0.05 * fw))
    alpha *= inside.astype(np.float32) / 255 * fade[:, None]
    rgba = np.dstack([colour.astype(np.float32) * alpha[..., None], alpha])
    levels = [_Level(np.ascontiguousarray(rgba, np.float32), fw, (fx, fy))]
    while levels[-1].face_w > 24:
        last = levels[-1]
        size = (max(last.rgba.shape[1] // 2, 1), max(last.rgba.shape[0] // 2, 1))
        sx, sy = size[0] / last.rgba.shape[1], size[1] / last.rgba.shape[0]
        small = cv2.resize(last.rgba, size, interpolation=cv2.INTER_AREA)
        levels.append(
            _Level(
                np.ascontiguousarray(small, np.float32),
                last.face_w * sx,
                (last.centre[0] * sx, last.centre[1] * sy),
            )
        )
    return _Head(tuple(levels), box.height / box.width, (float(b), float(g), float(r)))


_SHIRTS = (
    (90, 45, 25), (235, 235, 230), (120, 120, 125), (40, 30, 120), (60, 100, 50),
    (150, 185, 200), (30, 30, 30), (190, 140, 90), (70, 70, 160), (180, 180, 90),
)  # fmt: skip
_TROUSERS = ((40, 35, 30), (70, 50, 30), (25, 25, 25), (110, 140, 160), (90, 90, 95))


def _body_polygons(yf: float) -> list[tuple[Array, int]]:
    """The body's outline (x offset from the face, absolute height), metres, as
    (points, part) with part 0 legs, 1 torso, 2 neck: drawn in that order."""
    hip = 0.55 * yf
    leg = np.array([[0.01, hip], [0.17, hip], [0.15, 0.0], [0.03, 0.0]])
    torso = np.array([
        [-0.07, yf - 0.17], [0.07, yf - 0.17], [0.18, yf - 0.21], [0.215, yf - 0.27],
        [0.21, yf - 0.62], [0.19, hip - 0.04], [-0.19, hip - 0.04], [-0.21, yf - 0.62],
        [-0.215, yf - 0.27], [-0.18, yf - 0.21],
    ])  # fmt: skip
    neck = np.array([[-0.05, yf - 0.05], [0.05, yf - 0.05], [0.055, yf - 0.2],
                     [-0.055, yf - 0.2]])  # fmt: skip
    flip = np.array([-1.0, 1.0])
    return [(leg, 0), (leg * flip, 0), (torso, 1), (neck, 2)]


@dataclass(frozen=True)
class _Pose:
    """A walker in one frame: where its face is and how it moves in the image."""

    distance_m: float
    x: float
    y: float
    u: float
    v: float
    depth: float
    face_px: float
    velocity: tuple[float, float]  # image pixels per frame
    box: tuple[float, float, float, float]  # top, right, bottom, left (continuous)


class _Walker:
    def __init__(
        self, index: int, spec: WalkerSpec, head: _Head, scene: SceneSpec, seed: int
    ) -> None:
        rng = np.random.default_rng([scene.seed, seed, index])
        self.index, self.spec, self.head = index, spec, head
        self.walk = _Walk(spec, rng)
        self.shirt = np.array(_SHIRTS[int(rng.integers(len(_SHIRTS)))], np.float32)
        self.trousers = np.array(_TROUSERS[int(rng.integers(len(_TROUSERS)))], np.float32)
        self.shirt *= np.float32(rng.uniform(0.9, 1.1))

    def pose(self, camera: Camera, t: float, fps: float) -> _Pose | None:
        if not self.walk.present(t):
            return None
        x, y, z = self.walk.position(t)
        u, v, depth = camera.project(x, y, z)
        face_px = camera.focal_px * FACE_WIDTH_M / depth
        u0, v0, _ = camera.project(*self.walk.position(t - 0.5 / fps))
        u1, v1, _ = camera.project(*self.walk.position(t + 0.5 / fps))
        half_w, half_h = face_px / 2, face_px * self.head.aspect / 2
        box = (v - half_h, u + half_w, v + half_h, u - half_w)
        return _Pose(z, x, y, u, v, depth, face_px, (u1 - u0, v1 - v0), box)


def _visible(box: tuple[float, float, float, float], width: int, height: int) -> float:
    top, right, bottom, left = box
    w = max(min(right, width) - max(left, 0), 0)
    h = max(min(bottom, height) - max(top, 0), 0)
    return w * h / max((right - left) * (bottom - top), 1e-9)


def _int_box(box: tuple[float, float, float, float], width: int, height: int) -> Box:
    top, right, bottom, left = (math.floor(c + 0.5) for c in box)
    return Box(top=top, right=right, bottom=bottom, left=left).clipped(height, width)


@dataclass
class _Layer:
    """A walker drawn into a piece of the frame: premultiplied BGR and alpha."""

    x0: int
    y0: int
    rgba: Float
    depth: float


def _motion_kernel(vx: float, vy: float) -> Float:
    """A line of length |(vx, vy)| along it, softened by a little lens blur."""
    length = math.hypot(vx, vy)
    half = math.ceil(length / 2) + 2
    size = 2 * half + 1
    kernel = np.zeros((size, size), np.float32)
    n = max(2, math.ceil(length * 3))
    for i in range(n):
        f = i / (n - 1) - 0.5
        x, y = half + f * vx, half + f * vy
        ix, iy = math.floor(x), math.floor(y)
        ax, ay = x - ix, y - iy
        kernel[iy, ix] += (1 - ax) * (1 - ay)
        kernel[iy, ix + 1] += ax * (1 - ay)
        kernel[iy + 1, ix] += (1 - ax) * ay
        kernel[iy + 1, ix + 1] += ax * ay
    soft = _f32(cv2.GaussianBlur(kernel, (0, 0), 0.6))
    out: Float = soft / soft.sum()
    return out


def _draw_walker(
    walker: _Walker, pose: _Pose, camera: Camera, exposure: float, gain: float
) -> _Layer | None:
    """The walker as a layer over the part of the frame it covers, motion-blurred."""
    width, height = camera.width, camera.height
    vx, vy = pose.velocity[0] * exposure, pose.velocity[1] * exposure
    margin = math.ceil(math.hypot(vx, vy) / 2) + 4
    # The body: each corner projected at the face's depth along the floor.
    parts = []
    for points, part in _body_polygons(pose.y):
        image = [camera.project(pose.x + dx, h, pose.distance_m)[:2] for dx, h in points]
        parts.append((np.array(image), part))
    # The head: the mip level just larger than needed, scaled the rest of the way.
    head = walker.head
    level = next((lv for lv in reversed(head.levels) if lv.face_w >= pose.face_px), head.levels[0])
    s = pose.face_px / level.face_w
    hx0, hy0 = pose.u - s * level.centre[0], pose.v - s * level.centre[1]
    hx1, hy1 = hx0 + s * level.rgba.shape[1], hy0 + s * level.rgba.shape[0]
    xs = [hx0, hx1, *(p[:, 0].min() for p, _ in parts), *(p[:, 0].max() for p, _ in parts)]
    ys = [hy0, hy1, *(p[:, 1].min() for p, _ in parts), *(p[:, 1].max() for p, _ in parts)]
    x0, y0 = max(math.floor(min(xs)) - margin, 0), max(math.floor(min(ys)) - margin, 0)
    x1 = min(math.ceil(max(xs)) + margin, width)
    y1 = min(math.ceil(max(ys)) + margin, height)
    if x1 <= x0 or y1 <= y0:
        return None
    # The body, opaque; parts drawn in order, each over the last.
    body = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
    colours = (walker.trousers, walker.shirt, np.array(head.skin, np.float32))
    k = 16
    for points, part in parts:
        pts = np.round((points - [x0 + 0.5, y0 + 0.5]) * k).astype(np.int32)
        colour = (*(float(c) for c in colours[part]), 255.0)
        cv2.fillPoly(body, [pts], colour, cv2.LINE_8, 4)
    rgba = body.astype(np.float32)
    rgba[..., 3] *= np.float32(1 / 255)
    # The head over it.
    bx0, by0 = max(math.floor(hx0), x0), max(math.floor(hy0), y0)
    bx1, by1 = min(math.ceil(hx1), x1), min(math.ceil(hy1), y1)
    if bx1 > bx0 and by1 > by0:
        m = np.array(
            [
                [s, 0, hx0 - bx0 + 0.5 * s - 0.5],
                [0, s, hy0 - by0 + 0.5 * s - 0.5],
            ]
        )
        warped = cv2.warpAffine(
            level.rgba, m, (bx1 - bx0, by1 - by0), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0),
        )  # fmt: skip
        under = rgba[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
        under *= 1 - warped[..., 3:4]
        under += warped
    if gain != 1.0:
        rgba[..., :3] *= np.float32(gain)
    blurred = cv2.filter2D(rgba, -1, _motion_kernel(vx, vy), borderType=cv2.BORDER_CONSTANT)
    return _Layer(x0, y0, _f32(blurred), pose.depth)


def _composite(frame: BGR, layer: _Layer) -> None:
    h, w = layer.rgba.shape[:2]
    roi = frame[layer.y0 : layer.y0 + h, layer.x0 : layer.x0 + w]
    out = roi.astype(np.float32) * (1 - layer.rgba[..., 3:4]) + layer.rgba[..., :3]
    roi[...] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _occluded(box: Box, nearer: Iterable[_Layer]) -> float:
    """The fraction of ``box`` that the nearer layers cover."""
    if box.area == 0:
        return 0.0
    clear = np.ones((box.height, box.width), np.float32)
    for layer in nearer:
        h, w = layer.rgba.shape[:2]
        x0, y0 = max(box.left, layer.x0), max(box.top, layer.y0)
        x1, y1 = min(box.right, layer.x0 + w), min(box.bottom, layer.y0 + h)
        if x1 > x0 and y1 > y0:
            alpha = layer.rgba[y0 - layer.y0 : y1 - layer.y0, x0 - layer.x0 : x1 - layer.x0, 3]
            clear[y0 - box.top : y1 - box.top, x0 - box.left : x1 - box.left] *= 1 - alpha
    return float(1 - clear.mean())


# --------------------------------------------------------------------------- room


def _corridor(camera: Camera, light: str, rng: np.random.Generator) -> tuple[BGR, BGR | None]:
    """The corridor the walkers come down, ray-cast at a low resolution (it is out of
    focus anyway), and for ``backlight`` the glare of its glazed end, added to every
    frame over the walkers."""
    step = max(2, round(camera.width / 640))
    dx, dy, dz = camera.rays(step)
    ch = camera.height_m
    backlit = light == "backlight"
    half_w = rng.uniform(1.6, 2.2)
    ceiling = rng.uniform(2.6, 3.0)
    back = rng.uniform(6.5, 7.5) if backlit else rng.uniform(10.0, 13.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = np.stack(
            [
                np.where(dy < 0, -ch / dy, np.inf),  # floor
                np.where(dy > 0, (ceiling - ch) / dy, np.inf),  # ceiling
                np.where(dx != 0, half_w / np.abs(dx), np.inf),  # side walls
                np.where(dz > 0, back / dz, np.inf),  # back wall
            ]
        )
    surface = np.argmin(ts, axis=0)
    t = np.min(ts, axis=0)
    px, py, pz = dx * t, ch + dy * t, dz * t
    img = np.zeros((*t.shape, 3), np.float64)

    def paint(where: npt.NDArray[np.bool_], colour: Sequence[float] | Array) -> None:
        img[where] = np.asarray(colour, np.float64)

    wall = rng.uniform(160, 215) * rng.uniform(0.92, 1.08, 3)  # an off-white, BGR
    floor = rng.uniform(80, 150) * rng.uniform(0.9, 1.1, 3)
    # Floor: tiles of 0.5 m, each a shade of its own, with grout.
    is_floor = surface == 0
    ix, iz = np.floor(px / 0.5), np.floor(pz / 0.5)
    shade = 0.92 + 0.08 * np.sin(ix * 12.9898 + iz * 78.233) ** 2
    fx, fz = px / 0.5 - ix, pz / 0.5 - iz
    grout = np.minimum(np.minimum(fx, 1 - fx), np.minimum(fz, 1 - fz)) < 0.025
    img[is_floor] = floor * (shade * np.where(grout, 0.7, 1.0))[is_floor][:, None]
    # Ceiling: light panels every 2.4 m.
    is_ceiling = surface == 1
    paint(is_ceiling, [205, 210, 210])
    panel = is_ceiling & (np.abs(px) < 0.3) & (np.mod(pz, 2.4) < 0.6)
    paint(panel, [250, 252, 252])
    # Side walls: paint, a skirting board, doors in white frames, notice boards.
    is_side = surface == 2
    paint(is_side, wall)
    paint(is_side & (py < 0.12), wall * 0.55)
    for _ in range(int(rng.integers(3, 6))):
        mine = is_side & (np.sign(px) == rng.choice([-1.0, 1.0]))
        z0 = rng.uniform(1.0, back - 1.5)
        door = mine & (pz > z0) & (pz < z0 + 0.95) & (py < 2.05)
        paint(mine & (pz > z0 - 0.06) & (pz < z0 + 1.01) & (py < 2.11), [235, 235, 235])
        paint(door, rng.uniform(50, 140) * np.array([0.6, 0.8, 1.0]))
    for _ in range(int(rng.integers(2, 5))):
        mine = is_side & (np.sign(px) == rng.choice([-1.0, 1.0]))
        z0, w, h = rng.uniform(0.8, back - 1.0), rng.uniform(0.4, 1.2), rng.uniform(0.4, 0.9)
        y0 = rng.uniform(1.1, 1.7)
        board = mine & (pz > z0) & (pz < z0 + w) & (py > y0) & (py < y0 + h)
        paint(board, rng.uniform(60, 200) * rng.uniform(0.7, 1.3, 3))
    # The back wall: a double door; or, in backlight, glazed onto daylight.
    is_back = surface == 3
    paint(is_back, wall * 0.95)
    daylight = np.zeros_like(is_back)
    if backlit:
        daylight = is_back & (np.abs(px) < half_w - 0.15) & (py > 0.05) & (py < ceiling - 0.1)
        paint(daylight, [252, 253, 250])
        bars = (np.mod(px + 0.04, 1.2) < 0.08) | (np.abs(py - 1.0) < 0.03)
        paint(daylight & bars, [60, 60, 60])
        daylight &= ~bars
    else:
        double_door = is_back & (np.abs(px) < 0.9) & (py < 2.1)
        paint(double_door, rng.uniform(60, 150) * np.array([0.7, 0.85, 1]))
    # Light falls off down the corridor; stains and unevenness over everything. Against
    # daylight, the camera's exposure leaves the room itself darker.
    lit = ~(panel | daylight)
    gain = (0.55 + 0.55 / (1.0 + 0.035 * np.minimum(t, 30))) * (0.6 if backlit else 1.0)
    img[lit] *= gain[lit][:, None]
    blotches = rng.normal(0, 1, (t.shape[0] // 24 + 2, t.shape[1] // 24 + 2))
    stains = cv2.resize(blotches, (t.shape[1], t.shape[0]), interpolation=cv2.INTER_CUBIC)
    img *= (1 + 0.03 * np.asarray(stains))[..., None]
    img += rng.normal(0, 2, img.shape)
    small = np.clip(img, 0, 255).astype(np.float32)
    full = _f32(cv2.resize(small, (camera.width, camera.height), interpolation=cv2.INTER_LINEAR))
    room = np.clip(full + 0.5, 0, 255).astype(np.uint8)
    glare = None
    if backlit:
        bright = np.clip((full.max(axis=2) - 235) / 15, 0, 1)
        bloom = _f32(cv2.GaussianBlur(bright, (0, 0), 0.05 * camera.width)) * 140
        glare = np.clip(np.repeat(bloom[..., None], 3, axis=2) + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(room), glare


@functools.lru_cache(maxsize=2)
def _noise_bank(width: int, height: int) -> Float:
    """Standard normal noise a little larger than a frame; each frame takes a seeded
    window of it (drawing fresh noise for every frame costs more than all the rest)."""
    rng = np.random.default_rng(20240)
    shape = (height + _NOISE_PAD, width + _NOISE_PAD, 3)
    bank = rng.standard_normal(shape, dtype=np.float32)
    bank.flags.writeable = False
    return bank


def _conditions(light: str, rng: np.random.Generator) -> dict[str, float]:
    u = rng.uniform
    if light == "dim":
        return {"noise": u(5, 8), "exposure": u(0.75, 1.0), "jpeg": int(rng.integers(60, 81)),
                "gain": u(0.45, 0.6), "gamma": u(1.15, 1.3), "walker_gain": 1.0}  # fmt: skip
    if light == "backlight":
        return {"noise": u(2, 3.5), "exposure": u(0.2, 0.4), "jpeg": int(rng.integers(65, 91)),
                "gain": 1.0, "gamma": 1.0, "walker_gain": u(0.35, 0.5)}  # fmt: skip
    return {"noise": u(1.5, 3), "exposure": u(0.25, 0.5), "jpeg": int(rng.integers(70, 91)),
            "gain": 1.0, "gamma": 1.0, "walker_gain": 1.0}  # fmt: skip


# --------------------------------------------------------------------------- render


def _frame_count(spec: SceneSpec, walkers: Sequence[_Walker], camera: Camera) -> int:
    if spec.duration_s is not None:
        return max(round(spec.duration_s * spec.fps), 1)
    last = -1
    end = max((w.spec.end_s for w in walkers), default=0.0)
    for index in range(math.floor(end * spec.fps) + 2):
        for walker in walkers:
            pose = walker.pose(camera, index / spec.fps, spec.fps)
            if pose is not None and _visible(pose.box, camera.width, camera.height) > 0:
                last = index
    return last + 1 + round(TAIL_S * spec.fps)


def render_scene(spec: SceneSpec, folder: Path, *, faces: Path = FACES) -> SceneTruth:
    """Render ``spec`` to ``folder/NAME.mp4`` and its truth to ``folder/NAME.truth.json``
    (both written under a temporary name, then renamed); return the truth."""
    camera = Camera.of(spec)
    seeds = np.random.SeedSequence(spec.seed).generate_state(4)
    walkers = [
        _Walker(i, w, _head(faces, w.photo, w.face_index), spec, int(seeds[0]))
        for i, w in enumerate(spec.walkers)
    ]
    scene_rng = np.random.default_rng(int(seeds[1]))
    conditions = _conditions(spec.light, scene_rng)
    room, glare = _corridor(camera, spec.light, scene_rng)
    lut = None
    if conditions["gain"] != 1.0 or conditions["gamma"] != 1.0:
        levels = (np.arange(256) / 255.0) ** conditions["gamma"] * conditions["gain"]
        lut = np.clip(levels * 255 + 0.5, 0, 255).astype(np.uint8)
    noise_rng = np.random.default_rng(int(seeds[2]))
    noise = np.round(_noise_bank(spec.width, spec.height) * conditions["noise"]).astype(np.int16)
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, int(conditions["jpeg"])]
    frames = _frame_count(spec, walkers, camera)
    states: list[list[WalkerFrame | None]] = [[] for _ in walkers]

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{spec.name}.mp4"
    partial = folder / f"{spec.name}.partial.mp4"
    size = (spec.width, spec.height)
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter.fourcc(*"mp4v"), spec.fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {partial} with the mp4v codec")
    try:
        for index in range(frames):
            t = index / spec.fps
            frame = room.copy()
            posed: list[tuple[_Walker, _Pose]] = []
            for walker in walkers:
                pose = walker.pose(camera, t, spec.fps)
                if pose is not None:
                    posed.append((walker, pose))
            layers: dict[int, _Layer] = {}
            for walker, pose in sorted(posed, key=lambda wp: -wp[1].depth):
                if _visible(pose.box, spec.width, spec.height) > 0:
                    layer = _draw_walker(
                        walker, pose, camera, conditions["exposure"], conditions["walker_gain"]
                    )
                    if layer is not None:
                        _composite(frame, layer)
                        layers[walker.index] = layer
            for walker, state in zip(walkers, states, strict=True):
                state.append(_truth(walker, posed, layers, camera))
            if glare is not None:
                frame = _u8(cv2.add(frame, glare))
            if lut is not None:
                frame = _u8(cv2.LUT(frame, lut))
            oy, ox = (int(n) for n in noise_rng.integers(0, _NOISE_PAD, size=2))
            window = noise[oy : oy + spec.height, ox : ox + spec.width]
            frame = _u8(cv2.add(frame, window, dtype=cv2.CV_8U))
            ok, data = cv2.imencode(".jpg", frame, jpeg)
            if not ok:
                raise RuntimeError("OpenCV could not encode a JPEG")
            writer.write(_u8(cv2.imdecode(data, cv2.IMREAD_COLOR)))
    except BaseException:
        writer.release()
        partial.unlink(missing_ok=True)
        raise
    writer.release()
    os.replace(partial, final)
    truth = SceneTruth(
        spec,
        final,
        frames,
        round(camera.focal_px, 3),
        tuple(
            WalkerTruth(w.index, w.spec, tuple(state))
            for w, state in zip(walkers, states, strict=True)
        ),
        {k: round(float(v), 4) for k, v in conditions.items()},
    )
    path = folder / f"{spec.name}.truth.json"
    temporary = path.with_suffix(".json.partial")
    temporary.write_text(json.dumps(truth.to_json(), indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return truth


def _truth(
    walker: _Walker,
    posed: Sequence[tuple[_Walker, _Pose]],
    layers: dict[int, _Layer],
    camera: Camera,
) -> WalkerFrame | None:
    pose = next((p for w, p in posed if w is walker), None)
    if pose is None:
        return None
    inside = _visible(pose.box, camera.width, camera.height)
    box = _int_box(pose.box, camera.width, camera.height) if inside > 0 else None
    if box is not None and box.area == 0:
        box = None
    occluded = 0.0
    if box is not None:
        nearer = [layers[w.index] for w, p in posed if p.depth < pose.depth and w.index in layers]
        occluded = _occluded(box, nearer)
    return WalkerFrame(
        round(pose.distance_m, 4),
        round(pose.face_px, 2),
        box,
        round(inside, 3),
        round(occluded, 3),
    )


# --------------------------------------------------------------------------- CLI


def _describe(truth: SceneTruth) -> str:
    s = truth.spec
    people = []
    for w in truth.walkers:
        widths = [f.face_px for f in w.frames if f is not None and f.box is not None]
        span = f"{min(widths):.0f}-{max(widths):.0f} px" if widths else "never seen"
        tag = " (stranger)" if w.stranger else ""
        people.append(f"{w.identity}{tag} {w.spec.speed_mps:.2f} m/s {span}")
    return (
        f"{truth.video}  {s.width}x{s.height} {s.hfov_deg:.0f} deg {s.light:9} "
        f"{truth.frames} frames  " + "; ".join(people)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("folder", type=Path, help="where the videos and truths go (created)")
    parser.add_argument("--quick", action="store_true", help="the short test-suite scenes")
    parser.add_argument("--only", action="append", metavar="NAME", help="one scene (repeatable)")
    parser.add_argument("--faces", type=Path, default=FACES, help="the shared faces folder")
    args = parser.parse_args(argv)
    if not (args.faces / "MANIFEST.csv").is_file():
        print(
            f"bench.walkby_scenes: {args.faces} is missing (the shared faces folder)",
            file=sys.stderr,
        )
        return 2
    specs = default_scenes(quick=args.quick)
    if args.only:
        names = {s.name for s in specs}
        unknown = [n for n in args.only if n not in names]
        if unknown:
            print(
                f"bench.walkby_scenes: no scene {', '.join(unknown)}; "
                f"the scenes are: {', '.join(sorted(names))}",
                file=sys.stderr,
            )
            return 2
        specs = [s for s in specs if s.name in args.only]
    for spec in specs:
        print(_describe(render_scene(spec, args.folder, faces=args.faces)), flush=True)
    print(f"{len(specs)} scenes in {args.folder} (each NAME.mp4 with NAME.truth.json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
