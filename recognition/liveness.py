"""Liveness: a living head in front of the kiosk, or a photo held up to it?

A print or a phone screen is flat. However it is moved, turned or tilted, the picture
of a plane in one frame maps onto its picture in another by one homography (a 3x3
projective map), so the 68 landmarks of a photographed face, followed across a pass,
fit one homography per pair of frames, up to the landmark detector's noise. A real head
is not flat: when it turns or nods, the nose moves against the outline of the face
(parallax), and when the face moves (talking, blinking, a smile) its features move
against each other. No homography explains that.

So, for two frames of one pass, the *planar residual* is the root-mean-square distance
between the landmarks of the second frame and those of the first mapped by the
homography that fits them best, in units of the distance between the eyes (scale-free:
a near or far face, a big or small print score alike). :class:`FaceMotion` collects a
few landmark samples per pass and says :attr:`LivenessVerdict.LIVE` once at least
``min_pairs`` pairs of frames, no two sharing a frame, each have a residual above
``min_residual`` (so one frame whose landmarks went wrong cannot make a photo look
alive), and :attr:`LivenessVerdict.SPOOF` when ``max_samples`` samples gave no such evidence.

Chosen by measurement (``uv run python -m bench.liveness``: 33 print, cut-out and phone
attacks built from the shared photos by ``bench/attacks.py``, and the real clip): on
the same 12 landmark samples per pass, this score kept every real pass at 0.158 or
more and every attack at 0.062 or less (the threshold, 0.11, sits between them, about
1.5x from each side); eye blinks, the usual cue (the eye aspect ratio's dip), did not
separate them at all at the kiosk's face sizes (about 90 px wide: an eye is 15 px, and
landmark jitter dips the ratio of a photo as much as of the real clip, where no clear
blink happens). A blink moves 8 of the 68 points, too few to pass this check alone.

What this does not stop: a video of the person replayed on a screen, a 3-D mask, a
print bent or folded while shown. What it refuses: a real person who neither turns,
nods, talks nor changes expression during the whole window (12 samples, about 2 s).
The real data behind the threshold is one expressive performer; a calm walk straight
at the camera scores lower, so re-measure with recordings from the actual door before
requiring liveness there.

Pure: landmark arrays and times in, a verdict out; numpy only, no files or models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

Points = npt.NDArray[np.float64]

LANDMARKS = 68
_RIGHT_EYE = slice(36, 42)  # the eye on the image's left (the subject's right)
_LEFT_EYE = slice(42, 48)

# Chosen with bench/liveness.py (see above).
DEFAULT_MIN_RESIDUAL = 0.11
DEFAULT_MIN_PAIRS = 3
DEFAULT_MAX_SAMPLES = 12
DEFAULT_MIN_GAP = 0.15
MAX_PAIRS = 5  # bounds on the limits: the disjoint-pairs search grows fast beyond them
MAX_SAMPLES = 40


class LivenessVerdict(StrEnum):
    """What the evidence of one pass says so far."""

    UNDECIDED = "undecided"
    LIVE = "live"
    SPOOF = "spoof"


def _as_points(landmarks: npt.ArrayLike) -> Points:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (LANDMARKS, 2):
        raise ValueError(f"68 landmarks need an array of shape (68, 2), not {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks must be finite numbers")
    return points


def eye_distance(landmarks: npt.ArrayLike) -> float:
    """Distance between the two eye centres (mean of each eye's six points), pixels."""
    points = _as_points(landmarks)
    return float(np.linalg.norm(points[_RIGHT_EYE].mean(0) - points[_LEFT_EYE].mean(0)))


def _normaliser(points: Points) -> Points:
    """Hartley's normalisation, per set: (k, n, 2) -> (k, 3, 3) moving each set's
    centroid to 0 and its RMS distance from it to sqrt(2)."""
    centre = points.mean(axis=1)
    spread = np.sqrt(((points - centre[:, None, :]) ** 2).sum(axis=2).mean(axis=1) / 2)
    spread = np.where(spread > 0, spread, 1.0)
    t = np.zeros((len(points), 3, 3))
    t[:, 0, 0] = t[:, 1, 1] = 1 / spread
    t[:, 0, 2] = -centre[:, 0] / spread
    t[:, 1, 2] = -centre[:, 1] / spread
    t[:, 2, 2] = 1
    return t


def _homogeneous(points: Points) -> Points:
    return np.concatenate([points, np.ones((*points.shape[:-1], 1))], axis=-1)


def fit_homographies(src: npt.ArrayLike, dst: npt.ArrayLike) -> Points:
    """The homography mapping each ``src`` point set onto its ``dst`` set best, in the
    least-squares (normalised direct linear transform) sense.

    ``src``, ``dst``: (k, n, 2) arrays of k pairs of n >= 4 points, or (n, 2) for one
    pair; the result is (k, 3, 3), or (3, 3), scaled so its bottom-right entry is 1
    where that is possible.
    """
    a, b = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    single = a.ndim == 2
    if single:
        a, b = a[None], b[None]
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 2 or a.shape[1] < 4:
        raise ValueError(f"need two matching (k, n>=4, 2) point arrays, not {a.shape}/{b.shape}")
    ta, tb = _normaliser(a), _normaliser(b)
    pa = np.einsum("kij,knj->kni", ta, _homogeneous(a))
    pb = np.einsum("kij,knj->kni", tb, _homogeneous(b))
    x, y = pa[..., 0], pa[..., 1]
    u, v = pb[..., 0], pb[..., 1]
    zero, one = np.zeros_like(x), np.ones_like(x)
    rows_u = np.stack([-x, -y, -one, zero, zero, zero, u * x, u * y, u], axis=-1)
    rows_v = np.stack([zero, zero, zero, -x, -y, -one, v * x, v * y, v], axis=-1)
    system = np.concatenate([rows_u, rows_v], axis=1)  # (k, 2n, 9)
    _, _, vt = np.linalg.svd(system, full_matrices=False)
    h = vt[:, -1, :].reshape(-1, 3, 3)
    h = np.linalg.inv(tb) @ h @ ta
    corner = h[:, 2, 2]
    h = np.where(np.abs(corner)[:, None, None] > 1e-12, h / corner[:, None, None], h)
    out: Points = h[0] if single else h
    return out


def planar_residuals(src: npt.ArrayLike, dst: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """For each pair of landmark sets, the RMS distance (pixels) between ``dst`` and
    ``src`` mapped by the best homography: about the landmark noise for a flat face."""
    a, b = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    single = a.ndim == 2
    if single:
        a, b = a[None], b[None]
    h = fit_homographies(a, b)
    mapped = np.einsum("kij,knj->kni", h, _homogeneous(a))
    w = mapped[..., 2:]
    w = np.where(np.abs(w) > 1e-12, w, 1e-12)
    error: Points = np.sqrt(((mapped[..., :2] / w - b) ** 2).sum(axis=2).mean(axis=1))
    return error


def planar_residual(first: npt.ArrayLike, second: npt.ArrayLike) -> float:
    """How far two frames' 68 landmarks are from one plane's picture, in eye distances.

    0 for a flat face moved any way (a print, a screen), up to the landmark noise; a
    head that turned, nodded or changed expression between the frames scores higher.
    """
    a, b = _as_points(first), _as_points(second)
    scale = eye_distance(b)
    if scale <= 0:
        raise ValueError("the two eyes' landmarks coincide: not a face")
    return float(planar_residuals(a, b)[0]) / scale


@dataclass(frozen=True)
class LivenessLimits:
    """When a pass counts as live; the defaults are measured (bench/liveness.py)."""

    min_residual: float = DEFAULT_MIN_RESIDUAL
    min_pairs: int = DEFAULT_MIN_PAIRS
    max_samples: int = DEFAULT_MAX_SAMPLES
    min_gap: float = DEFAULT_MIN_GAP  # seconds at least between two samples

    def __post_init__(self) -> None:
        if not self.min_residual > 0:
            raise ValueError(f"min_residual must be more than 0, not {self.min_residual!r}")
        if not 1 <= self.min_pairs <= MAX_PAIRS:
            raise ValueError(f"min_pairs must be 1 to {MAX_PAIRS}, not {self.min_pairs!r}")
        if self.max_samples > MAX_SAMPLES:
            raise ValueError(f"max_samples must be {MAX_SAMPLES} at most, not {self.max_samples!r}")
        if self.max_samples < 2 * self.min_pairs:
            raise ValueError(
                f"max_samples must be at least 2 * min_pairs ({2 * self.min_pairs}), "
                f"not {self.max_samples!r}: each pair needs two frames of its own"
            )
        if not self.min_gap >= 0:
            raise ValueError(f"min_gap must be 0 or more, not {self.min_gap!r}")


def has_disjoint_pairs(pairs: Sequence[tuple[int, int]], count: int) -> bool:
    """Whether ``count`` of these pairs of frames can be chosen with no frame in two."""
    if count <= 0:
        return True
    if len(pairs) < count:
        return False
    if count == 1:
        return True
    if len({frame for pair in pairs for frame in pair}) < 2 * count:
        return False  # too few frames among them
    (i, j), rest = pairs[0], pairs[1:]
    apart = [p for p in rest if i not in p and j not in p]
    return has_disjoint_pairs(apart, count - 1) or has_disjoint_pairs(rest, count)


def disjoint_score(residuals: Mapping[tuple[int, int], float], count: int) -> float:
    """The largest t such that ``count`` pairs, no two sharing a frame, each have a
    residual of at least t (0 when there are not enough frames)."""
    ranked = sorted(residuals.items(), key=lambda item: -item[1])
    pairs = [pair for pair, _ in ranked]
    if not has_disjoint_pairs(pairs, count):
        return 0.0
    low, high = count, len(ranked)  # the fewest top pairs holding them: binary search
    while low < high:
        middle = (low + high) // 2
        if has_disjoint_pairs(pairs[:middle], count):
            high = middle
        else:
            low = middle + 1
    return ranked[low - 1][1]


@dataclass
class FaceMotion:
    """The landmark samples of one pass, and what they say about liveness."""

    limits: LivenessLimits = field(default_factory=LivenessLimits)
    times: list[float] = field(default_factory=list)
    _points: list[Points] = field(default_factory=list, repr=False)
    _residuals: dict[tuple[int, int], float] = field(default_factory=dict, repr=False)
    _verdict: LivenessVerdict = LivenessVerdict.UNDECIDED

    @property
    def samples(self) -> int:
        return len(self._points)

    def due(self, now: float) -> bool:
        """Whether a sample taken at ``now`` would be used (undecided, spaced out)."""
        if self._verdict is not LivenessVerdict.UNDECIDED:
            return False
        if self.samples >= self.limits.max_samples:
            return False
        return not self.times or now - self.times[-1] >= self.limits.min_gap

    def add(self, now: float, landmarks: npt.ArrayLike) -> LivenessVerdict:
        """Add one frame's 68 landmarks (pixels, (68, 2)); the verdict so far."""
        points = _as_points(landmarks)
        if self._verdict is not LivenessVerdict.UNDECIDED:
            return self._verdict
        scale = eye_distance(points)
        if scale > 0 and self._points:
            earlier = np.stack(self._points)
            found = planar_residuals(earlier, np.broadcast_to(points, earlier.shape)) / scale
            new = len(self._points)
            self._residuals.update({(i, new): float(r) for i, r in enumerate(found)})
        self._points.append(points)
        self.times.append(now)
        if self.score >= self.limits.min_residual:
            self._verdict = LivenessVerdict.LIVE
        elif self.samples >= self.limits.max_samples:
            self._verdict = LivenessVerdict.SPOOF
        return self._verdict

    @property
    def verdict(self) -> LivenessVerdict:
        return self._verdict

    @property
    def score(self) -> float:
        """The ``min_pairs``-th highest residual among disjoint pairs (0 while short):
        the number compared with ``min_residual``."""
        return disjoint_score(self._residuals, self.limits.min_pairs)
