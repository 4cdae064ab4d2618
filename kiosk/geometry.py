"""How far from the camera a face is big enough: the kiosk's camera geometry.

A pinhole camera whose frames are ``width`` pixels across a horizontal field of view of
``hfov_deg`` has a focal length of

    focal_px = (width / 2) / tan(hfov / 2)

pixels, and draws a face ``FACE_WIDTH_M`` wide (dlib's face box: about 0.16 m on an
adult) at ``distance`` metres as ``focal_px * FACE_WIDTH_M / distance`` pixels. So a
face of ``px`` pixels is at ``focal_px * FACE_WIDTH_M / px`` metres. The kiosk encodes
faces from ``KioskSettings.encode_min_face`` pixels and finds them from the detector's
smallest face (``recognition.faces.smallest_face_px``) in the detection copy: the
distances below are where those begin. Field of view: Raspberry Pi Camera Module 3,
66 degrees; Camera Module 3 Wide, 102 degrees; a typical USB webcam, 60-78 degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FACE_WIDTH_M = 0.16
"""The width of an adult face as dlib's detector boxes it, in metres."""


def focal_px(width: int, hfov_deg: float) -> float:
    """The focal length in pixels of frames ``width`` pixels across ``hfov_deg``."""
    if not 1.0 <= hfov_deg < 180.0:
        raise ValueError(f"a horizontal field of view is 1 to 179 degrees, not {hfov_deg!r}")
    return (width / 2) / math.tan(math.radians(hfov_deg) / 2)


def distance_for_face(face_px: float, width: int, hfov_deg: float) -> float:
    """How far (metres) a face ``face_px`` pixels wide is from the camera."""
    return focal_px(width, hfov_deg) * FACE_WIDTH_M / face_px


@dataclass(frozen=True)
class Reach:
    """How far the kiosk sees faces with a camera and its settings."""

    width: int
    height: int
    hfov_deg: float
    detect_side: int  # the detection copy's longest side
    found_px: float  # the smallest face found, full-frame pixels
    encoded_px: int  # the smallest face encoded, full-frame pixels

    @property
    def found_m(self) -> float:
        return distance_for_face(self.found_px, self.width, self.hfov_deg)

    @property
    def encoded_m(self) -> float:
        return distance_for_face(self.encoded_px, self.width, self.hfov_deg)

    def describe(self) -> str:
        return (
            f"{self.width}x{self.height} at {self.hfov_deg:g} degrees, faces detected on a "
            f"{self.detect_side} px copy: found from {self.found_m:.1f} m "
            f"({self.found_px:.0f} px), encoded from {self.encoded_m:.1f} m "
            f"({self.encoded_px} px)"
        )
