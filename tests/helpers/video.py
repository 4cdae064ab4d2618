"""A small video file for the tests that replay one."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: int = 8) -> Path:
    """A small MJPEG .avi of grey 64x48 frames (no faces)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 60 + 10 * i, np.uint8))
    writer.release()
    return path
