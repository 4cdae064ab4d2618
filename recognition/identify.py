"""The recognition core end to end: a template from an enrollment photo, names for faces.

Library functions over arrays (no files): the CLI reads photos and calls these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clockface.errors import PhotoRejectedError
from recognition.faces import Box, FaceModels, RGBImage
from recognition.gallery import Gallery, Match
from recognition.quality import DEFAULT_LIMITS, QualityLimits, QualityReport, assess


@dataclass(frozen=True, slots=True)
class NamedFace:
    """One face found in a photo and the gallery's answer for it."""

    box: Box
    match: Match


def enrollment_template(
    models: FaceModels, image: RGBImage, limits: QualityLimits = DEFAULT_LIMITS
) -> tuple[npt.NDArray[np.float32], QualityReport]:
    """The embedding of the one face in an enrollment photo, after the quality gates.

    Raises PhotoRejectedError, whose message lists every gate the photo misses and what
    to do, when the photo holds no face, several faces, or a face too small, blurred or
    turned away.
    """
    report = assess(models, image, limits)
    if not report.ok or report.face is None:
        raise PhotoRejectedError(report.message)
    return models.encode(image, [report.face.box])[0], report


def name_faces(models: FaceModels, gallery: Gallery, image: RGBImage) -> list[NamedFace]:
    """Every face in the photo, left to right, matched against the gallery in one batch."""
    faces = models.analyze(image)
    if not faces:
        return []
    matches = gallery.match(np.stack([face.embedding for face in faces]))
    return [NamedFace(face.box, match) for face, match in zip(faces, matches, strict=True)]
