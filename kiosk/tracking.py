"""Follow faces from one detection to the next, so a person is one track, not many frames.

A track is a face box that persists across detections: each new detection's boxes are
matched to the existing tracks by overlap (intersection over union), greedily from the
best overlap down. A box that overlaps no track starts a new one; a track that gets no
box for ``max_age`` seconds of source time has left, and is handed back as finished.

Pure: boxes and source times in, tracks out. The kiosk hangs its per-pass state (votes,
liveness evidence, whether an event was logged) on each track.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from kiosk.voting import Votes
from recognition.faces import Box
from recognition.liveness import FaceMotion


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

    def due_for_encoding(self, now: float, *, max_encodings: int, min_gap: float) -> bool:
        """Encode a few times per pass, spaced out, not on every frame."""
        if self.decided or len(self.encoded_at) >= max_encodings:
            return False
        return not self.encoded_at or now - self.encoded_at[-1] >= min_gap


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    width = min(a.right, b.right) - max(a.left, b.left)
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.area + b.area - inter)


class Tracker:
    """Associates each detection's boxes with the tracks of the previous ones."""

    def __init__(self, *, min_iou: float = 0.25, max_age: float = 1.0) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], not {min_iou!r}")
        if max_age <= 0:
            raise ValueError(f"max_age must be positive, not {max_age!r}")
        self.min_iou = min_iou
        self.max_age = max_age
        self._tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    @property
    def tracks(self) -> list[Track]:
        """The live tracks, oldest first."""
        return list(self._tracks.values())

    def update(self, boxes: list[Box], now: float) -> tuple[list[Track], list[Track]]:
        """Fold one detection into the tracks; returns (live tracks, finished tracks)."""
        pairs = sorted(
            (
                (overlap, track_id, i)
                for track_id, track in self._tracks.items()
                for i, box in enumerate(boxes)
                if (overlap := iou(track.box, box)) >= self.min_iou
            ),
            reverse=True,
        )
        taken_tracks: set[int] = set()
        taken_boxes: set[int] = set()
        for _, track_id, i in pairs:
            if track_id in taken_tracks or i in taken_boxes:
                continue
            track = self._tracks[track_id]
            track.box, track.last_seen, track.hits = boxes[i], now, track.hits + 1
            taken_tracks.add(track_id)
            taken_boxes.add(i)
        for i, box in enumerate(boxes):
            if i not in taken_boxes:
                track_id = next(self._ids)
                self._tracks[track_id] = Track(track_id, box, first_seen=now, last_seen=now)
        gone = self.expire(now)
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
