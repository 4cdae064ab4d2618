"""The motion gate: did anything move since the last motion? (Detection is skipped on
frames where nothing did and nobody is being followed.)"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt


class MotionGate:
    """Did anything move since the last motion?

    The frame is shrunk to 64x36 cells (20x20 px of a 720p frame) of grey. Motion is a
    mean change of ``threshold`` grey levels over the whole picture (a crowd, the lights)
    or a change of ``cell_threshold`` in any one cell: a person far down a corridor
    changes a few cells a lot and the mean hardly at all. Changes are measured against
    the picture at the last motion, not the previous frame, so a slow walker's changes
    add up until they count.
    """

    def __init__(self, threshold: float, cell_threshold: float = 16.0) -> None:
        self.threshold = threshold
        self.cell_threshold = cell_threshold
        self._reference: npt.NDArray[np.int16] | None = None

    def moved(self, image: npt.NDArray[np.uint8]) -> bool:
        small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.int16)
        if self._reference is not None:
            change = np.abs(grey - self._reference)
            if float(change.mean()) < self.threshold and change.max() < self.cell_threshold:
                return False
        self._reference = grey
        return True
