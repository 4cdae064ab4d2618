"""A synthetic head for the liveness tests: 68 landmarks in dlib's order, seen by a camera.

The head is a rough 3-D model in dlib's 68-point order (jaw, brows, nose, eyes, mouth,
with the nose in front and the jaw's sides behind), seen by a pinhole camera with its
face about 90 px wide, as at the kiosk. A photo attack is that head's picture at one
moment, printed flat (``photo_plane``). Landmark noise of 0.6 px stands in for the
detector's jitter.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Points = npt.NDArray[np.float64]
FOCAL = 560.0
DISTANCE = 9.0  # head units (eye distance about 1) from the camera: a ~90 px face
NOISE = 0.6  # px


def _set(points: Points, first: int, x: object, y: object, z: object) -> None:
    n = len(np.atleast_1d(np.asarray(x)))
    for axis, values in enumerate((x, y, z)):
        points[first : first + n, axis] = np.broadcast_to(np.asarray(values, float), (n,))


def head() -> Points:
    """(68, 3) points of a head, x right, y down, z towards the camera; eyes 1 apart."""
    points = np.zeros((68, 3))
    t = np.linspace(0.05 * math.pi, 0.95 * math.pi, 17)
    # The jaw, ear to ear under the chin; its sides are further back than the chin.
    _set(points, 0, -1.1 * np.cos(t), -0.15 + 1.05 * np.sin(t), -0.9 * (1 - np.sin(t)))
    brow = np.linspace(-0.9, -0.15, 5)
    arch = -0.55 - 0.08 * np.sin(np.linspace(0, 3, 5))
    _set(points, 17, brow, arch, 0.05)
    _set(points, 22, -brow[::-1], arch[::-1], 0.05)
    _set(points, 27, np.zeros(4), np.linspace(-0.3, 0.3, 4), [0.2, 0.3, 0.4, 0.5])
    _set(points, 31, np.linspace(-0.25, 0.25, 5), 0.4, [0.2, 0.3, 0.35, 0.3, 0.2])
    angles = np.linspace(0, 2 * math.pi, 7)[:6] + math.pi  # outer corner first
    for first, centre in ((36, -0.5), (42, 0.5)):
        _set(points, first, centre + 0.22 * np.cos(angles), -0.25 + 0.08 * np.sin(angles), 0)
    mouth = np.linspace(0, 2 * math.pi, 13)[:12] + math.pi
    _set(points, 48, 0.45 * np.cos(mouth), 0.75 + 0.15 * np.sin(mouth), 0.15)
    inner = np.linspace(0, 2 * math.pi, 9)[:8] + math.pi
    _set(points, 60, 0.3 * np.cos(inner), 0.75 + 0.06 * np.sin(inner), 0.12)
    return points


def rotation(yaw: float, pitch: float, roll: float) -> Points:
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    out: Points = rz @ ry @ rx
    return out


def project(
    points: Points,
    *,
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    shift: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Points:
    """The 2-D picture (pixels) of 3-D points turned about their origin, then moved."""
    turned = points @ rotation(yaw, pitch, roll).T
    # Camera z points away from the camera; the model's z points towards it.
    x = turned[:, 0] + shift[0]
    y = turned[:, 1] + shift[1]
    z = DISTANCE + shift[2] - turned[:, 2]
    out: Points = np.column_stack([320 + FOCAL * x / z, 180 + FOCAL * y / z])
    return out


def noisy(points: Points, rng: np.random.Generator) -> Points:
    out: Points = points + rng.normal(0, NOISE, points.shape)
    return out


def photo_plane() -> Points:
    """A frontal photo of the head, printed life size: its picture put on a plane (z=0),
    in the head's units."""
    picture = project(head())
    flat = np.zeros((68, 3))
    flat[:, 0] = (picture[:, 0] - 320) * DISTANCE / FOCAL
    flat[:, 1] = (picture[:, 1] - 180) * DISTANCE / FOCAL
    return flat


def wave(i: int, amplitude: float, period: float = 8.0) -> float:
    return amplitude * math.sin(2 * math.pi * i / period)
