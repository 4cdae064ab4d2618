"""kiosk/encoders.py: face crops, the in-process encoder and the worker-process pool.

The pool tests start real worker processes ("spawn": about a second or two each), so
one pool is shared by the tests that leave its workers alone; the crash test and the
start-up failure start their own.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from clockface.errors import ModelError
from hardware.feedback import RecordingFeedback
from hardware.frames import Frame
from hardware.sources import FakeSource
from kiosk.encoders import (
    Encoder,
    EncoderError,
    EncodeResult,
    InlineEncoder,
    ProcessEncoder,
    default_workers,
    face_crop,
    open_encoder,
)
from kiosk.loop import Kiosk
from kiosk.store import KioskStore
from recognition.faces import Box, FaceModels
from recognition.photos import read_image
from tests.helpers.shared_faces import faces_dir

Image = npt.NDArray[np.uint8]

# One face; a group of three; a face cut by the image's left edge.
PHOTOS = ("obama/obama1.jpg", "group/obama_and_biden.jpg", "obama/obama_partial_face1.jpg")
EDGE_PHOTO = "obama/obama_partial_face1.jpg"


# -- no photos, no processes -----------------------------------------------------------


def test_default_workers_leaves_one_core_for_the_loop() -> None:
    assert default_workers(4) == 3  # a Raspberry Pi 4
    assert default_workers(2) == 1
    assert default_workers(1) == 1
    assert default_workers(0) == 1
    assert default_workers() >= 1


def test_face_crop_grows_the_box_by_its_size_and_clips_to_the_image() -> None:
    image = np.arange(100 * 200 * 3, dtype=np.uint32).astype(np.uint8).reshape(100, 200, 3)
    box = Box(top=10, right=60, bottom=40, left=30)  # 30x30
    crop, moved = face_crop(image, box)
    # Rows 0 (clipped) .. 40+30 inclusive; columns 0 .. 60+30 inclusive.
    assert crop.shape == (71, 91, 3)
    assert crop.flags.c_contiguous
    assert moved == Box(top=10, right=60, bottom=40, left=30)
    np.testing.assert_array_equal(crop, image[0:71, 0:91])

    far = Box(top=50, right=150, bottom=70, left=130)  # 20x20, room on every side
    crop, moved = face_crop(image, far)
    assert crop.shape == (61, 61, 3)
    assert moved == Box(top=20, right=40, bottom=40, left=20)
    np.testing.assert_array_equal(crop, image[30:91, 110:171])

    outside = Box(top=300, right=500, bottom=400, left=400)
    crop, _ = face_crop(image, outside)
    assert crop.size == 0


def child_pids() -> set[int | None]:
    """This process's live children (other tests' pools included)."""
    return {child.pid for child in multiprocessing.active_children()}


def test_bad_arguments() -> None:
    before = child_pids()
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="workers must be a positive integer"):
            ProcessEncoder(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue_size"):
        ProcessEncoder(1, queue_size=0)
    with pytest.raises(ValueError, match="num_jitters"):
        ProcessEncoder(1, num_jitters=0)
    assert child_pids() == before


# -- real photos -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def models() -> FaceModels:
    faces_dir()
    return FaceModels()


@pytest.fixture(scope="module")
def photos(models: FaceModels) -> dict[str, tuple[Image, list[Box]]]:
    found = {}
    for path in PHOTOS:
        image = read_image(faces_dir() / path)
        found[path] = (image, models.detect(image))
    assert [len(boxes) for _, boxes in found.values()] == [1, 3, 1]
    return found


def scaled_about_centre(box: Box, factor: float) -> Box:
    """The box grown or shrunk about its centre (still a face to the encoder)."""
    half_w, half_h = box.width * factor / 2, box.height * factor / 2
    return Box(
        top=round(box.center_y - half_h),
        right=round(box.center_x + half_w),
        bottom=round(box.center_y + half_h),
        left=round(box.center_x - half_w),
    )


@pytest.mark.faces
@pytest.mark.parametrize("path", PHOTOS)
def test_the_crop_gives_the_full_image_embedding(
    models: FaceModels, photos: dict[str, tuple[Image, list[Box]]], path: str
) -> None:
    image, boxes = photos[path]
    full = models.encode(image, boxes)
    for box, expected in zip(boxes, full, strict=True):
        crop, moved = face_crop(image, box)
        assert crop.shape[0] < image.shape[0] and crop.shape[1] < image.shape[1]
        got = models.encode(crop, [moved])[0]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    if path == EDGE_PHOTO:
        (box,) = boxes
        assert box.left == 0, "the face is cut by the image's left edge"
        _, moved = face_crop(image, box)
        assert moved.left == 0, "so is its crop: nothing left of it to grow into"


@pytest.mark.faces
def test_inline_encoder(models: FaceModels, photos: dict[str, tuple[Image, list[Box]]]) -> None:
    image, (face,) = photos["obama/obama1.jpg"]
    small, big = scaled_about_centre(face, 0.8), scaled_about_centre(face, 1.2)
    outside = Box(top=5000, right=5100, bottom=5100, left=5000)
    encoder: Encoder
    with InlineEncoder(models) as encoder:
        assert encoder.restarts == 0
        accepted = encoder.submit(image, 1.5, [(1, small), (2, face), (3, big), (4, outside)])
        # Largest first; the box outside the picture is the smallest there is.
        assert accepted == [3, 2, 1, 4]
        assert encoder.in_flight() == {1, 2, 3, 4}
        assert encoder.submit(image, 1.6, [(2, face)]) == [], "a key in flight is refused"
        results = encoder.results(timeout=5.0)
        assert [r.key for r in results] == [3, 2, 1, 4]
        assert {r.frame_time for r in results} == {1.5}
        assert results[3].embedding is None
        np.testing.assert_array_equal(results[1].embedding, models.encode(image, [face])[0])
        for result in results[:3]:
            assert result.embedding is not None
            assert result.embedding.shape == (128,) and result.embedding.dtype == np.float32
            assert not result.embedding.flags.writeable
        assert encoder.in_flight() == frozenset()
        assert encoder.results() == []
        assert encoder.submit(image, 1.7, [(2, face)]) == [2], "returned keys are free again"
    encoder.close()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        encoder.submit(image, 1.8, [(5, face)])
    assert isinstance(open_encoder(models, 0), InlineEncoder)


# -- worker processes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessEncoder]:
    faces_dir()
    with ProcessEncoder(2) as shared:
        yield shared
    assert multiprocessing.active_children() == []


def collect(encoder: Encoder, keys: set[int], timeout: float = 60.0) -> dict[int, EncodeResult]:
    """Results until every key has come back."""
    got: dict[int, EncodeResult] = {}
    deadline = time.monotonic() + timeout
    while not keys <= got.keys():
        assert time.monotonic() < deadline, f"still waiting for {keys - got.keys()}"
        got.update((r.key, r) for r in encoder.results(timeout=deadline - time.monotonic()))
    return got


def largest_first(jobs: list[tuple[int, Box]]) -> list[int]:
    return [key for key, _ in sorted(jobs, key=lambda job: -job[1].area)]


@pytest.mark.faces
def test_pool_gives_the_inline_embeddings(
    pool: ProcessEncoder, models: FaceModels, photos: dict[str, tuple[Image, list[Box]]]
) -> None:
    assert pool.queue_size == 4 and len(set(pool.worker_pids())) == 2
    inline = InlineEncoder(models)
    for when, path in enumerate(PHOTOS):
        image, boxes = photos[path]
        jobs = [(10 * when + i, box) for i, box in enumerate(boxes)]
        assert pool.submit(image, float(when), jobs) == largest_first(jobs)
        inline.submit(image, float(when), jobs)
        expected = {r.key: r for r in inline.results()}
        got = collect(pool, set(expected))
        assert got.keys() == expected.keys()
        for key, result in got.items():
            assert result.frame_time == float(when)
            want = expected[key].embedding
            assert result.embedding is not None and want is not None
            assert result.embedding.shape == (128,) and result.embedding.dtype == np.float32
            assert not result.embedding.flags.writeable
            np.testing.assert_allclose(result.embedding, want, rtol=0, atol=1e-5)
    assert pool.in_flight() == frozenset() and pool.restarts == 0


@pytest.mark.faces
def test_pool_takes_the_largest_faces_until_full_and_refuses_keys_in_flight(
    pool: ProcessEncoder, photos: dict[str, tuple[Image, list[Box]]]
) -> None:
    image, (face,) = photos["obama/obama1.jpg"]
    factors = {1: 0.7, 2: 1.3, 3: 0.9, 4: 1.1, 5: 1.0, 6: 0.8}
    jobs = [(key, scaled_about_centre(face, f)) for key, f in factors.items()]
    # Room for four (two workers, two faces each): the four largest, largest first.
    assert pool.submit(image, 3.0, jobs) == [2, 4, 5, 3]
    assert pool.in_flight() == {2, 3, 4, 5}
    assert pool.submit(image, 3.1, [(2, face)]) == [], "a key in flight is refused"
    got = collect(pool, {2, 3, 4, 5})
    assert got.keys() == {2, 3, 4, 5}
    assert all(r.embedding is not None and r.frame_time == 3.0 for r in got.values())
    # The refused faces are offered again on a later frame; there is room now.
    assert pool.submit(image, 3.2, [jobs[0], jobs[5], (2, face)]) == [2, 6, 1]
    assert collect(pool, {1, 2, 6}).keys() == {1, 2, 6}
    outside = Box(top=5000, right=5100, bottom=5100, left=5000)
    assert pool.submit(image, 3.3, [(7, outside)]) == [7]
    (failed,) = pool.results()  # nothing to encode: failed at once
    assert (failed.key, failed.frame_time, failed.embedding) == (7, 3.3, None)
    assert pool.in_flight() == frozenset()


@pytest.mark.faces
def test_each_worker_runs_one_blas_thread_and_the_kiosk_keeps_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    before = dict(os.environ)
    with ProcessEncoder(1) as encoder:
        assert dict(os.environ) == before
        (pid,) = encoder.worker_pids()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"OPENBLAS_NUM_THREADS=1" in environ and b"OMP_NUM_THREADS=1" in environ


def test_pool_results_wait_only_when_something_is_in_flight(
    pool: ProcessEncoder, photos: dict[str, tuple[Image, list[Box]]]
) -> None:
    image, (face,) = photos["obama/obama1.jpg"]
    start = time.monotonic()
    assert pool.results(timeout=10.0) == []
    assert time.monotonic() - start < 1.0, "nothing in flight: no waiting"
    assert pool.submit(image, 4.0, [(8, face)]) == [8]
    start = time.monotonic()
    got = pool.results(timeout=0.0)
    assert time.monotonic() - start < 0.5, "timeout 0: no waiting"
    if not got:
        got = pool.results(timeout=30.0)
    assert time.monotonic() - start < 30.0
    assert [r.key for r in got] == [8] and got[0].embedding is not None


@pytest.mark.faces
def test_a_killed_worker_fails_its_face_and_is_replaced(
    photos: dict[str, tuple[Image, list[Box]]], caplog: pytest.LogCaptureFixture
) -> None:
    image, (face,) = photos["obama/obama1.jpg"]
    # Forty jitters: one face takes long enough (~0.4 s) to be killed while held.
    with ProcessEncoder(1, num_jitters=40, max_restarts=1) as encoder:
        (pid,) = encoder.worker_pids()
        assert encoder.submit(image, 5.0, [(1, face)]) == [1]
        os.kill(pid, signal.SIGKILL)
        with caplog.at_level(logging.WARNING, logger="clockface.kiosk"):
            (failed,) = encoder.results(timeout=30.0)
        assert (failed.key, failed.frame_time, failed.embedding) == (1, 5.0, None)
        assert encoder.restarts == 1 and encoder.in_flight() == frozenset()
        assert f"face encoder worker 0 (pid {pid}) stopped (killed by SIGKILL)" in caplog.text
        (new_pid,) = encoder.worker_pids()
        assert new_pid != pid
        # The new worker loads its models and takes the next face.
        assert encoder.submit(image, 6.0, [(2, face)]) == [2]
        assert collect(encoder, {2})[2].embedding is not None

        # Killed again within the window, past max_restarts: the pool gives up.
        os.kill(new_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        with pytest.raises(EncoderError, match="face encoder workers keep dying") as caught:
            while time.monotonic() < deadline:
                encoder.results()
                time.sleep(0.05)
        assert "\n" not in str(caught.value)
        assert not {pid, new_pid} & child_pids(), "closed: no worker left"
        encoder.close()  # closed already: harmless
    encoder.close()
    with pytest.raises(RuntimeError, match="closed"):
        encoder.results()


def test_a_missing_model_fails_at_start(tmp_path: Path) -> None:
    before = child_pids()
    with pytest.raises(ModelError, match=r"could not load its models: .* is missing"):
        ProcessEncoder(1, model_dir=tmp_path)
    assert child_pids() == before


def test_the_kiosk_runs_with_one_blas_thread_and_gives_the_threads_back(tmp_path: Path) -> None:
    """While Kiosk.run reads frames, numpy's BLAS runs one thread; afterwards, what it
    had before (OpenBLAS's threads would spin between the loop's small products)."""

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    seen: list[list[int]] = []

    class Watching(FakeSource):
        def read(self) -> Frame | None:
            seen.append(blas_threads())
            return super().read()

    store = KioskStore.open(tmp_path / "kiosk.db")
    try:
        with threadpool_limits(limits=2, user_api="blas"):  # as on a machine of 2 cores
            before = blas_threads()
            assert 2 in before  # numpy's OpenBLAS is loaded (others may be single-threaded)
            kiosk = Kiosk(models=FaceModels(), database=store, feedback=RecordingFeedback())
            kiosk.run(Watching([np.zeros((120, 160, 3), dtype=np.uint8)] * 3))
            assert blas_threads() == before
    finally:
        store.close()
    assert len(seen) == 4 and all(threads == [1] * len(before) for threads in seen)
