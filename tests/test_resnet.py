"""dlib's face-recognition ResNet in numpy (recognition/resnet.py): the same embeddings
as dlib's own, on every face of the shared photos, and a changed model file refused."""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest

from clockface.errors import ModelError
from recognition.faces import FaceModels, Model
from recognition.gallery import EMBEDDING_DIM
from recognition.resnet import CHIP_SIZE, ResNet, load_resnet
from tests.helpers.shared_faces import load, manifest_photos


@pytest.fixture(scope="module")
def models() -> FaceModels:
    return FaceModels()


@pytest.fixture(scope="module")
def model_file(models: FaceModels) -> Path:
    return models._model_file(Model.ENCODER)


@pytest.fixture(scope="module")
def net(model_file: Path) -> ResNet:
    return load_resnet(model_file)


@pytest.mark.faces
def test_every_shared_face_embeds_as_dlib_embeds_it(models: FaceModels, model_file: Path) -> None:
    """Every face found in every shared photo: the numpy network's embedding equals
    dlib-bin's ``compute_face_descriptor`` (the one face_recognition calls) on the same
    landmarks, component by component."""
    theirs = dlib.face_recognition_model_v1(str(model_file))
    faces = 0
    for photo in manifest_photos():
        image = load(photo.path)
        boxes = models.detect(image)
        if not boxes:
            continue
        ours = models.encode(image, boxes)
        assert ours.dtype == np.float32 and ours.shape == (len(boxes), EMBEDDING_DIM)
        for box, embedding in zip(boxes, ours, strict=True):
            shape = models._shape(image, box, Model.SHAPE_5)
            expected = np.asarray(theirs.compute_face_descriptor(image, shape, 1))
            np.testing.assert_allclose(embedding, expected, rtol=0, atol=1e-5, err_msg=photo.path)
            faces += 1
    assert faces >= 28  # the manifest's 30 faces, less any the detector misses


@pytest.mark.faces
def test_faces_embedded_together_equal_faces_embedded_alone(
    models: FaceModels, net: ResNet
) -> None:
    image = load("group/obama_and_biden.jpg")
    shapes = [models._shape(image, box, Model.SHAPE_5) for box in models.detect(image)]
    chips = np.stack([dlib.get_face_chip(image, s, size=CHIP_SIZE, padding=0.25) for s in shapes])
    assert len(chips) == 3
    together = net.embed(chips)
    alone = np.concatenate([net.embed(chip) for chip in chips])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)
    # Three people: three different embeddings.
    assert min(np.linalg.norm(together[i] - together[j]) for i, j in ((0, 1), (0, 2), (1, 2))) > 0.4


@pytest.mark.faces
def test_jittered_embeddings_average_near_the_plain_one() -> None:
    image = load("obama/obama1.jpg")
    plain_models, jittered_models = FaceModels(), FaceModels(num_jitters=5)
    (box,) = plain_models.detect(image)
    (plain,) = plain_models.encode(image, [box])
    (jittered,) = jittered_models.encode(image, [box])
    gap = float(np.linalg.norm(plain - jittered))
    assert 0.0 < gap < 0.15, gap  # jittered copies move it a little, not to someone else


def test_chips_of_the_wrong_shape_are_refused(net: ResNet) -> None:
    assert net.embed(np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)).shape == (0, EMBEDDING_DIM)
    with pytest.raises(ValueError, match=r"face chips must have shape \(n, 150, 150, 3\)"):
        net.embed(np.zeros((2, 100, 100, 3), np.uint8))


def test_an_embedding_depends_on_the_chip(net: ResNet) -> None:
    rng = np.random.default_rng(5)
    chips = rng.integers(0, 256, (2, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
    first, second = net.embed(chips)
    assert np.isfinite(first).all() and np.linalg.norm(first - second) > 0.0


def _changed(model_file: Path, tmp_path: Path, change: str) -> Path:
    data = bytearray(model_file.read_bytes())
    if change == "truncated":
        data = data[: len(data) // 2]
    elif change == "empty":
        data = bytearray()
    elif change == "other model":
        data[4:17] = b"loss_mmod_xx_"
    elif change == "stride":
        # The stem convolution's stride (2), written after its filters as 0x01 0x02.
        at = data.index(b"\x01\x05con_4")
        tail = data.index(b"\x01\x07affine_", at)
        shape = data.index(b"\x01\x20\x01\x07\x01\x07\x01\x02\x01\x02\x01\x00\x01\x00", at)
        assert shape < tail
        data[shape + 7] = 1  # stride_y
    elif change == "layer":
        at = data.index(b"\x01\x07affine_", data.index(b"\x01\x05con_4") + 10)
        data[at + 2 : at + 9] = b"relu_xx"
    elif change == "not finite":
        # The stem's third filter value: after the name, the tensor's version and sizes.
        at = data.index(b"\x01\x05con_4") + 7 + 11 + 8
        data[at : at + 4] = b"\x00\x00\xc0\x7f"  # a NaN
    path = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("truncated", "the file ends early"),
        ("empty", "the file ends early"),
        ("other model", "does not start as dlib's metric-learning network"),
        ("stride", r"a convolution with filters/size/stride/padding \[32, 7, 7, 1, 2, 0, 0\]"),
        ("layer", "layer con_4 where dlib's network has affine_"),
        ("not finite", "non-finite values"),
    ],
)
def test_a_changed_model_file_is_refused_in_one_line(
    model_file: Path, tmp_path: Path, change: str, reason: str
) -> None:
    path = _changed(model_file, tmp_path, change)
    with pytest.raises(ModelError, match=reason) as caught:
        load_resnet(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert message.endswith("reinstall face_recognition_models")
    # Through FaceModels too, on first use of the encoder.
    with pytest.raises(ModelError, match=reason):
        FaceModels(model_dir=tmp_path)._model(Model.ENCODER)


def test_an_unreadable_model_file_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        ModelError, match=r"cannot read the face encoder model .* \(Is a directory\)"
    ):
        load_resnet(tmp_path)
