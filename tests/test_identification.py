"""The recognition core end to end on the real faces in ../shared/faces.

Each of the 6 identities is enrolled from one photo (its first in MANIFEST.csv), through
the enrollment quality gates; then every other photo's faces must be named exactly as
the manifest says, and the face of nobody enrolled must come out unknown.
"""

from __future__ import annotations

import numpy as np
import pytest

from recognition.gallery import Gallery
from recognition.identify import enrollment_template, name_faces
from tests.helpers.shared_faces import Analysed, manifest_photos

pytestmark = pytest.mark.faces


@pytest.fixture(scope="module")
def enrolled(analysed: Analysed) -> tuple[Gallery, set[str]]:
    gallery = Gallery()
    photos: set[str] = set()
    for photo in manifest_photos():
        (person,) = photo.identities[:1]
        if photo.faces == 1 and person not in gallery:
            template, report = enrollment_template(analysed.models, analysed.image(photo.path))
            assert report.ok
            gallery.add(person, template)
            photos.add(photo.path)
    assert len(gallery.people) == 6
    return gallery, photos


def test_every_other_single_face_photo_is_its_person(
    analysed: Analysed, enrolled: tuple[Gallery, set[str]]
) -> None:
    gallery, enrollment_photos = enrolled
    probes = [p for p in manifest_photos() if p.faces == 1 and p.path not in enrollment_photos]
    assert len(probes) == 17  # 23 single-face photos (the RGBA copy too) less 6 enrolled
    wrong = []
    for photo in probes:
        named = name_faces(analysed.models, gallery, analysed.image(photo.path))
        got = [face.match.person_id for face in named]
        if got != [photo.identities[0]]:
            wrong.append(f"{photo.path}: {got} ({[face.match for face in named]})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("group/two_people.jpg", ["obama", "biden"]),
        ("group/obama_and_biden.jpg", ["biden", "obama", None]),
        ("group/kit_with_rose.jpg", ["rose_leslie", "kit_harington"]),
    ],
)
def test_group_photos_are_named_left_to_right(
    analysed: Analysed, enrolled: tuple[Gallery, set[str]], path: str, expected: list[str | None]
) -> None:
    gallery, _ = enrolled
    manifest = {p.path: p for p in manifest_photos()}[path]
    assert [None if i == "unknown" else i for i in manifest.identities] == expected
    named = name_faces(analysed.models, gallery, analysed.image(path))
    assert [face.match.person_id for face in named] == expected
    lefts = [face.box.left for face in named]
    assert lefts == sorted(lefts)


def test_the_stranger_is_unknown_for_the_right_reason(
    analysed: Analysed, enrolled: tuple[Gallery, set[str]]
) -> None:
    gallery, _ = enrolled
    stranger = name_faces(analysed.models, gallery, analysed.image("group/obama_and_biden.jpg"))[2]
    assert stranger.match.person_id is None
    assert stranger.match.nearest_id is not None
    assert stranger.match.distance > gallery.threshold


def test_no_photo_is_ever_named_as_someone_else_even_with_a_loose_threshold(
    analysed: Analysed, enrolled: tuple[Gallery, set[str]]
) -> None:
    """With dlib's 1:1 threshold of 0.6 the margin still prevents any wrong name."""
    gallery, _ = enrolled
    loose = Gallery(threshold=0.6, margin=gallery.margin)
    for person in gallery.people:
        loose.add(person, gallery.templates_of(person))
    for photo in manifest_photos():
        named = name_faces(analysed.models, loose, analysed.image(photo.path))
        for face, truth in zip(named, photo.identities, strict=True):
            assert face.match.person_id in (None, truth), photo.path


def test_rgba_photo_is_obama(analysed: Analysed, enrolled: tuple[Gallery, set[str]]) -> None:
    gallery, _ = enrolled
    image = analysed.image("odd/rgba_32bit.png")
    assert image.shape[2] == 3 and image.dtype == np.uint8
    named = name_faces(analysed.models, gallery, image)
    assert [face.match.person_id for face in named] == ["obama"]
