"""The optional live preview: the camera's latest frame, small, with the faces being
followed boxed (green once the pass is decided), as a JPEG for the page.

Off unless the operator turns it on. It lives in memory only: never written to disk,
served with ``Cache-Control: no-store``, and taken only while a page is asking for it:
:class:`PreviewSource` wraps the camera and, on the loop's thread, copies a downscaled
frame at most every ``every`` seconds while the page has asked in the last
``wanted_for`` seconds. The JPEG is drawn and encoded on the web server's thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from clockface.closing import Closing

if TYPE_CHECKING:
    from hardware.frames import Frame, FrameSource
    from recognition.faces import Box

Faces = Callable[[], Sequence[tuple["Box", bool]]]
"""The faces being followed now: each box (full-frame pixels) and whether its pass is decided."""

DECIDED = (0, 200, 0)  # RGB
FOLLOWED = (255, 200, 0)


@dataclass(frozen=True)
class Snapshot:
    image: npt.NDArray[np.uint8]  # RGB, already downscaled
    boxes: tuple[tuple[int, int, int, int, bool], ...]  # top, right, bottom, left, decided


class Preview:
    """The latest downscaled frame, kept only while someone asks for it."""

    def __init__(
        self,
        *,
        max_side: int = 640,
        every: float = 0.2,
        wanted_for: float = 3.0,
        quality: int = 70,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_side = max_side
        self.every = every
        self.wanted_for = wanted_for
        self.quality = quality
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._taken = -float("inf")
        self._asked = -float("inf")

    def wanted(self) -> bool:
        """Whether a page asked recently and the last copy is old enough to replace."""
        now = self._clock()
        return now - self._asked <= self.wanted_for and now - self._taken >= self.every

    def offer(self, image: npt.NDArray[np.uint8], faces: Sequence[tuple[Box, bool]]) -> None:
        """Keep a small copy of ``image`` (RGB) and its face boxes, if wanted now."""
        if not self.wanted():
            return
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small: npt.NDArray[np.uint8]
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
        else:
            small = image.copy()
        boxes = tuple(
            (
                round(box.top * scale),
                round(box.right * scale),
                round(box.bottom * scale),
                round(box.left * scale),
                decided,
            )
            for box, decided in faces
        )
        with self._lock:
            self._snapshot = Snapshot(small, boxes)
            self._taken = self._clock()

    def jpeg(self) -> bytes | None:
        """The latest copy as a JPEG with its boxes drawn; None when there is none yet
        (the first ask after a quiet spell starts the copying)."""
        with self._lock:
            self._asked = self._clock()
            snapshot = self._snapshot
            if snapshot is not None and self._asked - self._taken > self.wanted_for:
                snapshot = self._snapshot = None  # stale: nobody asked for a while
        if snapshot is None:
            return None
        canvas = cv2.cvtColor(snapshot.image, cv2.COLOR_RGB2BGR)
        for top, right, bottom, left, decided in snapshot.boxes:
            red, green, blue = DECIDED if decided else FOLLOWED
            cv2.rectangle(canvas, (left, top), (right, bottom), (blue, green, red), 2)
        ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        return bytes(encoded) if ok else None

    def forget(self) -> None:
        with self._lock:
            self._snapshot = None


class PreviewSource(Closing):
    """A :class:`~hardware.sources.FrameSource` that passes frames through and offers
    each handled frame to the preview, with the faces ``faces()`` gives.

    The frame read before is offered when the next is read: by then the loop has
    handled it, so its boxes are the tracker's for that frame.
    """

    def __init__(self, source: FrameSource, preview: Preview, faces: Faces) -> None:
        self.source = source
        self.name = source.name
        self.preview = preview
        self.faces = faces
        self._handled: Frame | None = None

    def read(self) -> Frame | None:
        if self._handled is not None and self.preview.wanted():
            self.preview.offer(self._handled.image, self.faces())
        self._handled = frame = self.source.read()
        return frame

    def close(self) -> None:
        self._handled = None
        self.preview.forget()
        self.source.close()
