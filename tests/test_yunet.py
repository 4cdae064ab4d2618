"""YuNet, the default face detector: the vendored model file, its checksum, and
templates that stay comparable with those made through dlib's HOG boxes (nobody has to
re-enroll when a kiosk moves to YuNet)."""

from __future__ import annotations

import shutil
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import recognition.faces as faces_module
from clockface.cli import main
from clockface.errors import ModelError
from recognition.faces import YUNET_FILE, YUNET_SHA256, FaceModels, file_sha256
from recognition.gallery import Gallery
from recognition.identify import enrollment_template, name_faces
from tests.helpers.shared_faces import faces_dir, load, manifest_photos, single_face_photos

# The same shot at four resolutions: their embeddings differ only by the encoder's own
# jitter between re-captures of one picture.
RECAPTURES = tuple(f"obama/obama-{p}.jpg" for p in ("240p", "480p", "720p", "1080p"))
# Faces cut by the image edge: there the two detectors' boxes are clipped differently.
CUT = ("obama/obama_partial_face1.jpg", "obama/obama_partial_face2.jpg")


def test_the_vendored_model_is_the_published_file() -> None:
    assert YUNET_FILE.is_file(), "recognition/models/face_detection_yunet_2023mar.onnx missing"
    assert file_sha256(YUNET_FILE) == YUNET_SHA256
    assert (YUNET_FILE.parent / "face_detection_yunet_2023mar.LICENSE").is_file()


def tampered_copy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / YUNET_FILE.name
    data = bytearray(YUNET_FILE.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed
    copy.write_bytes(bytes(data))
    return copy


def test_a_model_file_with_the_wrong_checksum_is_refused_in_one_line(tmp_path: Path) -> None:
    tampered_copy(tmp_path)
    models = FaceModels(model_dir=tmp_path)
    with pytest.raises(ModelError) as err:
        models.detect(np.zeros((64, 64, 3), dtype=np.uint8))
    message = str(err.value)
    assert "\n" not in message
    assert "is not the published file" in message and "reinstall clockface" in message


def test_a_missing_model_file_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"YuNet face detector model file .* is missing"):
        FaceModels(model_dir=tmp_path).preload()


def test_the_cli_refuses_a_tampered_model_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = faces_dir() / "obama" / "obama_small.jpg"
    monkeypatch.setattr(faces_module, "YUNET_FILE", tampered_copy(tmp_path / "models"))
    result = CliRunner().invoke(main, ["recognition", "check", str(photo)])
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert "is not the published file" in line and "Traceback" not in result.output


@pytest.fixture(scope="module")
def both() -> tuple[FaceModels, FaceModels]:
    return FaceModels("yunet"), FaceModels("hog")


@pytest.mark.faces
def test_yunet_and_hog_boxes_give_embeddings_within_the_encoders_own_jitter(
    both: tuple[FaceModels, FaceModels],
) -> None:
    """For every single-face photo, the embedding through YuNet's box (mapped to dlib's)
    and through dlib's own HOG box differ no more than re-captures of one shot do, and
    by a smaller median; a face cut by the image edge by less than 0.2 (both are named
    right: the next test)."""
    yunet, hog = both
    recaptured = [hog.encode(load(p), hog.detect(load(p)))[0] for p in RECAPTURES]
    jitter = [float(np.linalg.norm(a - b)) for a, b in combinations(recaptured, 2)]
    differences = {}
    for path in single_face_photos():
        image = load(path)
        (y_box,), (h_box,) = yunet.detect(image), hog.detect(image)
        y_emb, h_emb = yunet.encode(image, [y_box])[0], hog.encode(image, [h_box])[0]
        differences[path] = float(np.linalg.norm(y_emb - h_emb))
    assert len(differences) == 23
    assert float(np.median(list(differences.values()))) < float(np.median(jitter))
    whole = {p: d for p, d in differences.items() if p not in CUT}
    worst = max(whole, key=lambda p: whole[p])
    assert whole[worst] <= max(jitter), (worst, whole[worst], jitter)
    assert all(differences[p] < 0.2 for p in CUT), {p: differences[p] for p in CUT}


@pytest.mark.faces
def test_templates_made_through_hog_boxes_name_yunet_probes(
    both: tuple[FaceModels, FaceModels],
) -> None:
    """A kiosk enrolled before YuNet keeps its templates: probes detected by YuNet are
    named as the manifest says, strangers stay unknown."""
    yunet, hog = both
    gallery = Gallery()
    enrolled: set[str] = set()
    for photo in manifest_photos():
        person = photo.identities[0]
        if photo.faces == 1 and person not in gallery:
            template, report = enrollment_template(hog, load(photo.path))
            assert report.ok
            gallery.add(person, template)
            enrolled.add(photo.path)
    wrong = []
    for photo in manifest_photos():
        if photo.path in enrolled or photo.path.endswith(".mp4"):
            continue
        got = [f.match.person_id for f in name_faces(yunet, gallery, load(photo.path))]
        expected = [None if i == "unknown" else i for i in photo.identities]
        if got != expected:
            wrong.append(f"{photo.path}: {got}, expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_an_unknown_detector_is_refused() -> None:
    with pytest.raises(ValueError, match="detector must be one of 'yunet', 'hog', 'cnn'"):
        FaceModels("mtcnn")  # type: ignore[arg-type]


def test_the_model_ships_inside_the_package(tmp_path: Path) -> None:
    """The wheel carries the model: it lives in the recognition package's folder."""
    package = Path(faces_module.__file__).resolve().parent
    assert YUNET_FILE.resolve().parent == package / "models"
    shutil.copy(YUNET_FILE, tmp_path / YUNET_FILE.name)
    assert FaceModels(model_dir=tmp_path).detect(np.zeros((64, 64, 3), dtype=np.uint8)) == []
