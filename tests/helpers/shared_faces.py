"""The real face photos in ../shared/faces (see its MANIFEST.csv), for tests.

Every accessor skips the calling test, with the reason, when the folder is missing;
CI always has it. The photos are read in place, never copied into the repository.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from recognition.faces import Box, Face, FaceModels
from recognition.images import decode_image

FACES = Path(__file__).resolve().parents[3] / "shared" / "faces"


@dataclass(frozen=True)
class Photo:
    path: str
    identities: tuple[str, ...]
    faces: int


def faces_dir() -> Path:
    if not (FACES / "MANIFEST.csv").is_file():
        pytest.skip(f"the real test photos are missing: no {FACES}/MANIFEST.csv (CI has them)")
    return FACES


def manifest_photos() -> list[Photo]:
    with (faces_dir() / "MANIFEST.csv").open(newline="", encoding="utf-8") as handle:
        return [
            Photo(row["path"], tuple(row["identity"].split(";")), int(row["faces"]))
            for row in csv.DictReader(handle)
            if row["faces"].isdigit()
        ]


def load(path: str) -> npt.NDArray[np.uint8]:
    return decode_image((faces_dir() / path).read_bytes(), subject=path)


class Analysed:
    """One FaceModels for the module, and each photo analysed at most once."""

    def __init__(self) -> None:
        self.models = FaceModels()
        self._images: dict[str, npt.NDArray[np.uint8]] = {}
        self._boxes: dict[str, list[Box]] = {}
        self._faces: dict[str, list[Face]] = {}

    def image(self, path: str) -> npt.NDArray[np.uint8]:
        if path not in self._images:
            self._images[path] = load(path)
        return self._images[path]

    def boxes(self, path: str) -> list[Box]:
        if path not in self._boxes:
            self._boxes[path] = self.models.detect(self.image(path))
        return self._boxes[path]

    def faces(self, path: str) -> list[Face]:
        """What analyze() gives, from the cached boxes (test_non_contiguous_photo...
        checks that analyze() agrees)."""
        if path not in self._faces:
            image, boxes = self.image(path), self.boxes(path)
            embeddings = self.models.encode(image, boxes)
            embeddings.flags.writeable = False
            self._faces[path] = [
                Face(box, self.models.landmarks(image, box), embedding)
                for box, embedding in zip(boxes, embeddings, strict=True)
            ]
        return self._faces[path]


def single_face_photos() -> list[str]:
    """The manifest's photos of exactly one face."""
    return [photo.path for photo in manifest_photos() if photo.faces == 1]
