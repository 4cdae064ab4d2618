"""What a frame is, and what a source of frames does: the types every frame source
(:mod:`hardware.sources`, :mod:`hardware.picamera`) and every reader of frames (the
kiosk loop, the benchmarks) share, apart from the concrete sources.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from clockface.closing import Closable, Closing

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Frame:
    """One picture from a source.

    ``image`` is (H, W, 3) RGB uint8 and C-contiguous (checked on construction).
    ``index`` counts frames from 0: for a video file it is the frame's position in the
    file (a replay from ``start_frame=100`` starts at 100), for a camera the number of
    frames it has delivered before this one. ``time`` is in seconds on the source's
    clock: the position in the video for files, ``time.monotonic()`` at capture for
    cameras.
    """

    image: npt.NDArray[np.uint8]
    index: int
    time: float
    small: npt.NDArray[np.uint8] | None = None
    """The same moment at a lower resolution, from the camera itself (picamera2's
    ``lores`` stream): faces are detected on it, for free, instead of on a copy the CPU
    shrinks; they are encoded from ``image``. Same checks as ``image``."""

    def __post_init__(self) -> None:
        for image in (self.image, self.small):
            if image is None:
                continue
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(
                    f"a frame must be an (H, W, 3) uint8 RGB array, not {image.dtype} {image.shape}"
                )
            if not image.flags.c_contiguous:
                raise ValueError("a frame's image must be C-contiguous (np.ascontiguousarray)")


class FrameSource(Closable, Protocol):
    """Anything that delivers frames: a camera, a video file, a fake."""

    name: str
    """Names the source in logs and messages, as a spec: ``camera:0``, ``video:a.mp4``."""

    def read(self) -> Frame | None:
        """The next frame, or None when the stream has ended for good (or was closed).

        Raises SourceError when a camera is lost and cannot be got back.
        """
        ...


class BaseSource(Closing, ABC):
    """What every source shares: the context manager that closes it."""

    name: str

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None when the stream has ended for good (or was closed)."""

    @abstractmethod
    def close(self) -> None:
        """Let the device or file go; closing twice is harmless."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def frames(source: FrameSource, *, max_frames: int | None = None) -> Iterator[Frame]:
    """Iterate over ``source``'s frames until it ends, or at most ``max_frames`` of them.

    The source is not closed: whoever opened it closes it (``with``).
    """
    count = 0
    while max_frames is None or count < max_frames:
        frame = source.read()
        if frame is None:
            return
        yield frame
        count += 1
