"""Follow faces from one detection to the next, so a person is one track, not many frames.

A track is a face box that persists across detections. At a door people walk towards
the camera at 1-1.5 m/s: near it a face moves and grows a good part of its own width
between two detections (more on a slow CPU, where detections are further apart), so
plain overlap with the last box loses it. Each track therefore keeps its velocity (of
its centre, in pixels per second) and its growth (of its width, per second), and
predicts where its box is now. A new box is associated with a track when

- it overlaps the predicted box (intersection over union at least ``min_iou``), or its
  centre is within ``max_shift`` box widths of the predicted centre; and
- its size is consistent with the predicted size (within a factor ``max_scale``): a
  far face passing behind a near one is not the near one.

Pairs are taken greedily, overlapping pairs first (best overlap first), then the
nearest centres; each box and track is used once. A box left over starts a new track;
a track that gets no box for ``max_age`` seconds of source time has left, and is handed
back as finished.

Pure: boxes and source times in, tracks out. The kiosk hangs its per-pass state (votes,
liveness evidence, whether an event was logged) on each track.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kiosk.voting import Votes
from recognition.faces import Box
from recognition.liveness import FaceMotion

_SMOOTHING = 0.6  # weight of the newest velocity against the running estimate
_MAX_GROWTH = 3.0  # |d ln(width) / dt| at most, per second, when predicting


@dataclass(eq=False)
class Track:
    """One face followed across detections: one person's pass in front of the camera."""

    track_id: int
    box: Box
    first_seen: float
    last_seen: float
    hits: int = 1
    encoded_at: list[float] = field(default_factory=list)
    votes: Votes = field(default_factory=Votes)
    decided: bool = False  # an event was logged, or the pass was judged unknown or a spoof
    motion: FaceMotion | None = None  # liveness evidence, when the kiosk requires it
    velocity: tuple[float, float] = (0.0, 0.0)  # centre, pixels per second of source time
    growth: float = 0.0  # d ln(width) / dt, per second
    turn: float | None = None  # how far the head is turned at last sight (Detection.turn)
    embeddings: list[npt.NDArray[np.float32]] = field(default_factory=list)  # in memory only

    def due_for_encoding(
        self, now: float, *, max_encodings: int, min_gap: float, slow_gap: float = math.inf
    ) -> bool:
        """Encode a few times per pass (``max_encodings``, ``min_gap`` apart), not on
        every frame; after that, while the pass is undecided, once every ``slow_gap``
        seconds (someone who looked away or down at first may still look up)."""
        if self.decided:
            return False
        if not self.encoded_at:
            return True
        gap = min_gap if len(self.encoded_at) < max_encodings else slow_gap
        return now - self.encoded_at[-1] >= gap

    def predicted(self, now: float) -> Box:
        """Where the box should be at ``now``, moving and growing as it did."""
        dt = max(0.0, now - self.last_seen)
        if dt == 0.0 or self.hits < 2:
            return self.box
        scale = math.exp(max(-_MAX_GROWTH, min(_MAX_GROWTH, self.growth)) * dt)
        cx = self.box.center_x + self.velocity[0] * dt
        cy = self.box.center_y + self.velocity[1] * dt
        half_w, half_h = self.box.width * scale / 2, self.box.height * scale / 2
        return Box(
            top=round(cy - half_h),
            right=round(cx + half_w),
            bottom=round(cy + half_h),
            left=round(cx - half_w),
        )

    def follow(self, box: Box, now: float) -> None:
        """The track's face was seen at ``box`` at ``now``: update its motion."""
        dt = now - self.last_seen
        if dt > 0 and box.width > 0 and self.box.width > 0:
            vx = (box.center_x - self.box.center_x) / dt
            vy = (box.center_y - self.box.center_y) / dt
            growth = math.log(box.width / self.box.width) / dt
            if self.hits < 2:
                self.velocity, self.growth = (vx, vy), growth
            else:
                keep = 1.0 - _SMOOTHING
                self.velocity = (
                    _SMOOTHING * vx + keep * self.velocity[0],
                    _SMOOTHING * vy + keep * self.velocity[1],
                )
                self.growth = _SMOOTHING * growth + keep * self.growth
        self.box, self.last_seen, self.hits = box, now, self.hits + 1


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    width = min(a.right, b.right) - max(a.left, b.left)
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.area + b.area - inter)


def affinity(
    predicted: Box, box: Box, *, min_iou: float, max_shift: float, max_scale: float
) -> float:
    """How well ``box`` continues a track predicted at ``predicted``: above 1 for an
    overlap of at least ``min_iou`` (1 + the overlap), 0 to 1 for a centre within
    ``max_shift`` widths (1 at the same centre), and 0 for no association at all
    (too far, or a size more than ``max_scale`` times larger or smaller)."""
    if predicted.width <= 0 or box.width <= 0:
        return 0.0
    ratio = box.width / predicted.width
    if not 1 / max_scale <= ratio <= max_scale:
        return 0.0
    overlap = iou(predicted, box)
    if overlap >= min_iou:
        return 1.0 + overlap
    size = max(predicted.width, box.width)
    shift = math.hypot(box.center_x - predicted.center_x, box.center_y - predicted.center_y) / size
    if shift > max_shift:
        return 0.0
    return max(1e-6, 1.0 - shift / max_shift)


class Tracker:
    """Associates each detection's boxes with the tracks of the previous ones."""

    def __init__(
        self,
        *,
        min_iou: float = 0.25,
        max_age: float = 1.0,
        max_shift: float = 1.0,
        max_scale: float = 1.6,
    ) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], not {min_iou!r}")
        if max_age <= 0:
            raise ValueError(f"max_age must be positive, not {max_age!r}")
        if not max_shift > 0:
            raise ValueError(f"max_shift must be positive, not {max_shift!r}")
        if not max_scale > 1:
            raise ValueError(f"max_scale must be more than 1, not {max_scale!r}")
        self.min_iou = min_iou
        self.max_age = max_age
        self.max_shift = max_shift
        self.max_scale = max_scale
        self._tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    @property
    def tracks(self) -> list[Track]:
        """The live tracks, oldest first."""
        return list(self._tracks.values())

    def update(self, boxes: list[Box], now: float) -> tuple[list[Track], list[Track]]:
        """Fold one detection into the tracks; returns (live tracks, finished tracks)."""
        gone = self.expire(now)
        predicted = {track_id: t.predicted(now) for track_id, t in self._tracks.items()}
        pairs = sorted(
            (
                (score, track_id, i)
                for track_id, guess in predicted.items()
                for i, box in enumerate(boxes)
                if (
                    score := affinity(
                        guess,
                        box,
                        min_iou=self.min_iou,
                        max_shift=self.max_shift,
                        max_scale=self.max_scale,
                    )
                )
                > 0
            ),
            reverse=True,
        )
        taken_tracks: set[int] = set()
        taken_boxes: set[int] = set()
        for _, track_id, i in pairs:
            if track_id in taken_tracks or i in taken_boxes:
                continue
            self._tracks[track_id].follow(boxes[i], now)
            taken_tracks.add(track_id)
            taken_boxes.add(i)
        for i, box in enumerate(boxes):
            if i not in taken_boxes:
                track_id = next(self._ids)
                self._tracks[track_id] = Track(track_id, box, first_seen=now, last_seen=now)
        return self.tracks, gone

    def expire(self, now: float) -> list[Track]:
        """Remove and return the tracks unseen for longer than ``max_age``."""
        gone = [t for t in self._tracks.values() if now - t.last_seen > self.max_age]
        for track in gone:
            del self._tracks[track.track_id]
        return gone

    def finish_all(self) -> list[Track]:
        """End every track (the stream ended)."""
        gone = list(self._tracks.values())
        self._tracks.clear()
        return gone
