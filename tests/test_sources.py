"""Tests for hardware.sources: video replay, the OpenCV camera's reconnects, the fake
camera, the picamera seam and source specs.

No real camera is ever opened: the camera tests inject a scripted capture.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from clockface.errors import ClockfaceError, SourceError
from hardware.frames import Frame, FrameSource, frames
from hardware.sources import (
    SOURCES,
    FakeSource,
    LiveReplay,
    OpenCVCameraSource,
    VideoFileSource,
    open_source,
    parse_spec,
)
from tests.helpers.shared_faces import faces_dir

CLIP = "video/short_hamilton_clip.mp4"
CLIP_FRAMES = 275
RED, GREEN, BLUE = (230, 0, 0), (0, 230, 0), (0, 0, 230)


# --- helpers ------------------------------------------------------------------------------


def clip() -> Path:
    """The shared real video (skips the test when ../shared/faces is missing)."""
    return faces_dir() / CLIP


def write_video(path: Path, colours: Sequence[tuple[int, int, int]], fps: float = 10.0) -> Path:
    """A small MJPEG .avi of solid RGB colours, one frame each (32x16 pixels)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (32, 16))
    assert writer.isOpened()
    for red, green, blue in colours:
        writer.write(np.full((16, 32, 3), (blue, green, red), np.uint8))
    writer.release()
    return path


def one_line_error(error: pytest.ExceptionInfo[SourceError], *parts: str) -> str:
    """The error's message, checked to be one line holding every part."""
    message = str(error.value)
    assert "\n" not in message
    assert isinstance(error.value, ClockfaceError)
    assert isinstance(error.value, OSError)
    for part in parts:
        assert part in message
    return message


class FakeClock:
    """A clock that only moves when slept on or told to."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


# --- Frame and frames() -------------------------------------------------------------------


def test_frame_checks_its_image() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    assert Frame(image, 0, 0.0).image is image
    with pytest.raises(ValueError, match="uint8 RGB"):
        Frame(np.zeros((4, 6), np.uint8), 0, 0.0)
    with pytest.raises(ValueError, match="uint8 RGB"):
        Frame(np.zeros((4, 6, 3), np.float32), 0, 0.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        Frame(np.zeros((6, 4, 3), np.uint8).transpose(1, 0, 2), 0, 0.0)


def test_frames_stops_at_the_end_or_max_frames() -> None:
    images = [np.full((2, 2, 3), i, np.uint8) for i in range(5)]
    assert [f.index for f in frames(FakeSource(images))] == [0, 1, 2, 3, 4]
    source = FakeSource(images)
    assert [f.index for f in frames(source, max_frames=2)] == [0, 1]
    assert [f.index for f in frames(source, max_frames=0)] == []
    assert [f.index for f in frames(source)] == [2, 3, 4]


# --- video files --------------------------------------------------------------------------


@pytest.mark.faces
def test_video_replays_every_frame_in_rgb() -> None:
    path = clip()
    reference = cv2.VideoCapture(str(path))
    with VideoFileSource(path) as source:
        assert source.size == (640, 360)
        assert source.frame_count == CLIP_FRAMES
        assert source.fps == pytest.approx(29.97, abs=0.01)
        assert source.name == f"video:{path}"
        count, last_time = 0, -1.0
        for frame in frames(source):
            ok, bgr = reference.read()
            assert ok
            assert frame.index == count
            assert frame.image.shape == (360, 640, 3)
            assert frame.image.dtype == np.uint8
            assert frame.image.flags.c_contiguous
            assert np.array_equal(frame.image, bgr[:, :, ::-1])
            assert frame.time == pytest.approx(count / source.fps)
            assert frame.time > last_time
            count, last_time = count + 1, frame.time
        assert count == CLIP_FRAMES
        assert not reference.read()[0]
        assert source.read() is None
        assert source.read() is None
    reference.release()


@pytest.mark.faces
@pytest.mark.parametrize("start", [1, 100, 250, CLIP_FRAMES - 1])
def test_video_start_frame_seeks_exactly(start: int) -> None:
    path = clip()
    reference = cv2.VideoCapture(str(path))
    for _ in range(start):
        assert reference.grab()
    ok, bgr = reference.read()
    reference.release()
    assert ok
    with VideoFileSource(path, start_frame=start) as source:
        frame = source.read()
        assert frame is not None
        assert frame.index == start
        assert frame.time == pytest.approx(start / source.fps)
        assert np.array_equal(frame.image, bgr[:, :, ::-1])
        if start >= 250:  # decoding the rest of the clip is cheap from here
            assert sum(1 for _ in frames(source)) == CLIP_FRAMES - 1 - start
            assert source.read() is None


@pytest.mark.faces
def test_video_start_frame_past_the_end() -> None:
    path = clip()
    with pytest.raises(SourceError) as error:
        VideoFileSource(path, start_frame=CLIP_FRAMES)
    one_line_error(error, f"at frame {CLIP_FRAMES}", f"it has {CLIP_FRAMES} frames")
    with pytest.raises(ValueError, match="start_frame"):
        VideoFileSource(path, start_frame=-1)


def test_video_colour_order_and_time(tmp_path: Path) -> None:
    path = write_video(tmp_path / "colours.avi", [RED, GREEN, BLUE], fps=10.0)
    with VideoFileSource(path) as source:
        assert source.fps == 10.0
        assert source.frame_count == 3
        assert source.size == (32, 16)
        got = list(frames(source))
    assert [frame.index for frame in got] == [0, 1, 2]
    assert [frame.time for frame in got] == pytest.approx([0.0, 0.1, 0.2])
    for frame, colour in zip(got, [RED, GREEN, BLUE], strict=True):
        assert np.abs(frame.image[8, 16].astype(int) - colour).max() < 12


def test_video_realtime_paces_to_the_frame_rate(tmp_path: Path) -> None:
    path = write_video(tmp_path / "pace.avi", [RED] * 8, fps=10.0)
    clock = FakeClock()
    with VideoFileSource(path, realtime=True, clock=clock, sleep=clock.sleep) as source:
        start = clock.now
        handed_out = []
        for _ in range(4):
            assert source.read() is not None
            handed_out.append(clock.now - start)
        assert handed_out == pytest.approx([0.0, 0.1, 0.2, 0.3])
        # A reader that is a little late is caught up with: no sleep, same schedule.
        clock.now += 0.15
        assert source.read() is not None  # due at 0.4, read at 0.45
        assert source.read() is not None  # due at 0.5
        assert clock.now - start == pytest.approx(0.5)
        # A reader far behind is not caught up in a burst: the schedule restarts.
        clock.now += 2.0
        before = len(clock.sleeps)
        assert source.read() is not None  # late: handed out at once
        assert len(clock.sleeps) == before
        late = clock.now
        assert source.read() is not None  # the next one a full period later
        assert clock.now - late == pytest.approx(0.1)
        assert source.read() is None
    assert sum(clock.sleeps) == pytest.approx(0.1 * 3 + 0.05 + 0.1)


def test_live_replay_drops_what_a_slow_reader_misses_and_waits_for_a_fast_one(
    tmp_path: Path,
) -> None:
    """At time scale 2 a 10 fps video delivers a frame every 0.05 s of wall time: a
    reader that takes 0.12 s per frame gets the newest one and loses those between; a
    reader that takes nothing waits for each."""
    path = write_video(tmp_path / "live.avi", [RED, GREEN, BLUE] * 10, fps=10.0)
    clock = FakeClock()
    with LiveReplay(VideoFileSource(path), 2.0, clock=clock, sleep=clock.sleep) as source:
        got = [source.read()]
        for _ in range(3):
            clock.now += 0.12  # the kiosk works on the frame for 0.12 s
            got.append(source.read())
        indices = [f.index for f in got if f is not None]
        assert indices == [0, 2, 4, 7]  # due at 0.12 s * 2 * 10 fps = 2.4, 4.8, 7.2
        assert [f.time for f in got if f is not None] == pytest.approx([0.0, 0.2, 0.4, 0.7])
        assert source.dropped == 4 and source.delivered == 4 and clock.sleeps == []
        fast = [source.read() for _ in range(3)]  # no work: waits for each next frame
        assert [f.index for f in fast if f is not None] == [8, 9, 10]
        assert clock.sleeps == pytest.approx([0.04, 0.05, 0.05])
        while source.read() is not None:
            pass
        assert source.delivered + source.dropped == 30


def test_live_replay_leaves_decoding_out_of_the_camera_clock(tmp_path: Path) -> None:
    """Decoding costs a camera's reader nothing: a replay whose decoding is slow here
    drops no frame for it."""
    path = write_video(tmp_path / "slow.avi", [RED] * 6, fps=10.0)
    clock = FakeClock()
    video = VideoFileSource(path)
    decode = video.read

    def slow_read() -> Frame | None:
        clock.now += 0.5  # a very slow decoder
        return decode()

    video.read = slow_read  # type: ignore[method-assign]
    with LiveReplay(video, 1.0, clock=clock, sleep=clock.sleep) as source:
        assert [f.index for f in iter(source.read, None)] == [0, 1, 2, 3, 4, 5]
    assert source.dropped == 0


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf"), 5000.0])
def test_live_replay_refuses_an_impossible_time_scale(tmp_path: Path, scale: float) -> None:
    path = write_video(tmp_path / "k.avi", [RED] * 2)
    with VideoFileSource(path) as video, pytest.raises(ValueError, match="time_scale"):
        LiveReplay(video, scale)


def test_video_without_realtime_never_sleeps(tmp_path: Path) -> None:
    path = write_video(tmp_path / "fast.avi", [GREEN] * 3)
    clock = FakeClock()
    with VideoFileSource(path, clock=clock, sleep=clock.sleep) as source:
        assert len(list(frames(source))) == 3
    assert clock.sleeps == []


def test_video_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.mp4"
    with pytest.raises(SourceError) as error:
        VideoFileSource(path)
    one_line_error(error, repr(str(path)), "no such file")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.txt", b"not a video at all\n" * 20, "not a video"),
        ("fake.mp4", b"not a video at all\n" * 20, "not a video"),
        ("empty.mp4", b"", "not a video"),
    ],
)
def test_video_not_a_video(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError) as error:
        VideoFileSource(path)
    one_line_error(error, repr(str(path)), expected)


def test_video_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as error:
        VideoFileSource(tmp_path)
    one_line_error(error, "folder")


def test_video_read_after_close_is_the_end(tmp_path: Path) -> None:
    source = VideoFileSource(write_video(tmp_path / "c.avi", [BLUE] * 3))
    assert source.read() is not None
    source.close()
    source.close()
    assert source.read() is None


# --- OpenCV cameras, with a scripted capture ----------------------------------------------


class FakeCamera:
    """A camera scripted read by read, shared by every capture opened on it.

    ``reads``: True delivers a frame, False fails the read; once it runs out,
    ``then`` decides. ``opens``: whether each successive open succeeds (then True).
    """

    def __init__(
        self,
        reads: Sequence[bool] = (),
        *,
        then: bool = True,
        opens: Sequence[bool] = (),
        image: npt.NDArray[np.uint8] | None = None,
    ) -> None:
        self.reads = list(reads)
        self.then = then
        self.opens = list(opens)
        self.image = np.full((4, 6, 3), (1, 2, 3), np.uint8) if image is None else image
        self.calls: list[tuple[int | str, int, list[int]]] = []
        self.captures: list[FakeCapture] = []

    def factory(self, device: int | str, api: int, params: Sequence[int]) -> FakeCapture:
        self.calls.append((device, api, list(params)))
        opened = self.opens.pop(0) if self.opens else True
        capture = FakeCapture(self, opened)
        self.captures.append(capture)
        return capture


class FakeCapture:
    def __init__(self, camera: FakeCamera, opened: bool) -> None:
        self.camera = camera
        self.opened = opened
        self.released = False
        self.props: dict[int, float] = {}

    def isOpened(self) -> bool:
        return self.opened and not self.released

    def read(self) -> tuple[bool, npt.NDArray[np.uint8] | None]:
        assert self.isOpened()
        ok = self.camera.reads.pop(0) if self.camera.reads else self.camera.then
        return (True, self.camera.image.copy()) if ok else (False, None)

    def set(self, propId: int, value: float) -> bool:
        self.props[propId] = value
        return True

    def get(self, propId: int) -> float:
        return self.props.get(propId, 0.0)

    def release(self) -> None:
        self.released = True


def camera(
    fake: FakeCamera, clock: FakeClock, device: int | str = 0, **options: Any
) -> OpenCVCameraSource:
    """An OpenCVCameraSource on the scripted camera, with the fake clock."""
    return OpenCVCameraSource(
        device, capture_factory=fake.factory, clock=clock, sleep=clock.sleep, **options
    )


def test_camera_delivers_rgb_frames_on_its_clock() -> None:
    fake, clock = FakeCamera(), FakeClock()
    with camera(fake, clock) as source:
        assert source.name == "camera:0"
        first = source.read()
        clock.now += 0.25
        second = source.read()
    assert first is not None and second is not None
    assert (first.index, second.index) == (0, 1)
    assert (first.time, second.time) == (1000.0, 1000.25)
    assert first.image[0, 0].tolist() == [3, 2, 1]  # BGR (1, 2, 3) turned to RGB
    assert first.image.flags.c_contiguous
    assert fake.calls == [(0, cv2.CAP_ANY, [])]
    assert fake.captures[0].released


def test_camera_reconnects_after_failed_reads() -> None:
    fake, clock = FakeCamera([True, False, False, True, True]), FakeClock()
    source = camera(fake, clock, reconnect_delay=2.0, max_failures=3)
    indexes = [frame.index for frame in frames(source, max_frames=3)]
    assert indexes == [0, 1, 2]
    assert len(fake.calls) == 3  # the first open and two reconnects
    assert [c.released for c in fake.captures] == [True, True, False]
    assert clock.sleeps == [2.0, 2.0]
    source.close()
    assert fake.captures[-1].released


def test_camera_failed_reopens_count_as_failures() -> None:
    fake = FakeCamera([False], opens=[True, False, False, True])
    clock = FakeClock()
    with camera(fake, clock, reconnect_delay=0.5, max_failures=4) as source:
        frame = source.read()
    assert frame is not None and frame.index == 0
    assert len(fake.calls) == 4
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_camera_that_stays_dead_raises_after_max_failures() -> None:
    fake, clock = FakeCamera(then=False), FakeClock()
    source = camera(fake, clock, reconnect_delay=0.0, max_failures=3)
    with pytest.raises(SourceError) as error:
        source.read()
    one_line_error(error, "camera:0 stopped delivering frames", "3 failures", "cable")
    assert len(fake.calls) == 3  # the first open and two reconnects
    assert clock.sleeps == []  # no delay asked for
    # A later read starts over, and the camera may have come back.
    fake.then = True
    frame = source.read()
    assert frame is not None and frame.index == 0
    source.close()


def test_camera_that_cannot_be_opened() -> None:
    fake, clock = FakeCamera(opens=[False]), FakeClock()
    with pytest.raises(SourceError) as error:
        camera(fake, clock, device=2)
    one_line_error(error, "cannot open camera:2", "/dev/video2")
    assert fake.captures[0].released


def test_stream_opens_with_timeouts_and_masks_its_password() -> None:
    url = "rtsp://admin:s3cret@10.0.0.7:554/stream1"
    fake, clock = FakeCamera(opens=[True, False]), FakeClock()
    source = camera(fake, clock, device=url, timeout=3.5, max_failures=2)
    assert source.name == "rtsp://admin:***@10.0.0.7:554/stream1"
    assert fake.calls[0] == (
        url,
        cv2.CAP_FFMPEG,
        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 3500, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 3500],
    )
    fake.then = False
    with pytest.raises(SourceError) as error:
        source.read()
    message = one_line_error(error, "admin:***@10.0.0.7", "URL")
    assert "s3cret" not in message
    assert "s3cret" not in repr(source)


def test_camera_asks_for_its_size() -> None:
    fake, clock = FakeCamera([True, False]), FakeClock()
    with camera(fake, clock, width=1280, height=720, reconnect_delay=0) as source:
        assert source.read() is not None
        assert source.read() is not None  # after a reconnect
    for capture in fake.captures:
        assert capture.props == {cv2.CAP_PROP_FRAME_WIDTH: 1280, cv2.CAP_PROP_FRAME_HEIGHT: 720}


def test_camera_gray_frames_become_rgb() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    fake, clock = FakeCamera(image=gray), FakeClock()
    with camera(fake, clock) as source:
        frame = source.read()
    assert frame is not None
    assert frame.image.shape == (3, 4, 3)
    assert np.array_equal(frame.image[:, :, 1], gray)


def test_closed_camera_reads_none() -> None:
    fake, clock = FakeCamera(), FakeClock()
    source = camera(fake, clock)
    source.close()
    source.close()
    assert source.read() is None
    assert len(fake.calls) == 1


@pytest.mark.parametrize(
    "options",
    [{"max_failures": 0}, {"reconnect_delay": -1.0}, {"timeout": 0.0}, {"width": 0}],
)
def test_camera_refuses_bad_settings(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        camera(FakeCamera(), FakeClock(), **options)


# --- the fake camera ----------------------------------------------------------------------


def test_fake_source_hands_out_its_images() -> None:
    images = [np.full((2, 3, 3), i, np.uint8) for i in range(3)]
    source: FrameSource = FakeSource(images, fps=10.0, name="lobby")
    with source:
        got = list(frames(source))
        assert source.read() is None
        assert source.read() is None
    assert [f.index for f in got] == [0, 1, 2]
    assert [f.time for f in got] == pytest.approx([0.0, 0.1, 0.2])
    assert all(np.array_equal(f.image, image) for f, image in zip(got, images, strict=True))
    assert source.name == "lobby"


def test_fake_source_can_play_a_dying_camera() -> None:
    source = FakeSource(itertools.repeat(np.zeros((2, 2, 3), np.uint8)), fail_after=2)
    assert len(list(frames(source, max_frames=2))) == 2
    for _ in range(2):
        with pytest.raises(SourceError) as error:
            source.read()
        one_line_error(error, "stopped delivering frames")


def test_fake_source_images_are_checked_and_made_contiguous() -> None:
    strided = np.zeros((4, 6, 3), np.uint8)[:, ::2]
    frame = FakeSource([strided]).read()
    assert frame is not None and frame.image.flags.c_contiguous
    with pytest.raises(ValueError, match="uint8"):
        FakeSource([np.zeros((2, 2), np.uint8)]).read()
    with pytest.raises(ValueError, match="fps"):
        FakeSource([], fps=0)
    closed = FakeSource([strided])
    closed.close()
    assert closed.read() is None


# --- the picamera seam --------------------------------------------------------------------


def test_picamera_without_picamera2_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails, as off a Pi
    with pytest.raises(SourceError) as error:
        open_source("picamera")
    one_line_error(error, "Raspberry Pi OS", "apt", "python3-picamera2")
    assert isinstance(error.value.__cause__, ImportError)


# --- specs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("video:clip.mp4", ("video", "clip.mp4")),
        ("video:/data/recording", ("video", "/data/recording")),
        ("video:a:b.avi", ("video", "a:b.avi")),
        ("clip.mp4", ("video", "clip.mp4")),
        ("/srv/lobby/Door.MKV", ("video", "/srv/lobby/Door.MKV")),
        ("old.avi", ("video", "old.avi")),
        ("phone.mov", ("video", "phone.mov")),
        ("camera:0", ("camera", "0")),
        ("camera:12", ("camera", "12")),
        ("0", ("camera", "0")),
        ("3", ("camera", "3")),
        ("rtsp://cam.local/stream", ("stream", "rtsp://cam.local/stream")),
        ("rtsps://u:p@cam/s", ("stream", "rtsps://u:p@cam/s")),
        ("http://10.0.0.5:8080/video.mjpg", ("stream", "http://10.0.0.5:8080/video.mjpg")),
        ("HTTPS://cam/x", ("stream", "HTTPS://cam/x")),
        ("picamera", ("picamera", "")),
    ],
)
def test_parse_spec(spec: str, expected: tuple[str, str]) -> None:
    assert parse_spec(spec) == expected
    assert expected[0] in SOURCES


@pytest.mark.parametrize(
    "spec",
    ["", "webcam", "camera:", "camera:front", "camera:-1", "video:", "clip.gif", "ftp://x/y",
     "rtsp:cam", "-1", "1.5", "٣"],
)  # fmt: skip
def test_parse_spec_refuses_unknown_forms(spec: str) -> None:
    with pytest.raises(SourceError) as error:
        parse_spec(spec)
    one_line_error(error, repr(spec))


def test_unknown_spec_lists_the_accepted_forms() -> None:
    with pytest.raises(SourceError) as error:
        open_source("webcam")
    one_line_error(error, "video:PATH", ".mp4", "camera:N", "rtsp://", "picamera")


def test_open_source_dispatches_through_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, str, bool]] = []

    def recorder(kind: str) -> Callable[..., FrameSource]:
        def opener(target: str, *, realtime: bool = False) -> FrameSource:
            opened.append((kind, target, realtime))
            return FakeSource([])

        return opener

    for kind in ("camera", "stream"):
        monkeypatch.setitem(SOURCES, kind, recorder(kind))
    assert isinstance(open_source("camera:1"), FakeSource)
    open_source("rtsp://cam/s", realtime=True)
    assert opened == [("camera", "1", False), ("stream", "rtsp://cam/s", True)]


def test_open_source_opens_video_files(tmp_path: Path) -> None:
    path = write_video(tmp_path / "door.avi", [RED, GREEN])
    for spec in (str(path), f"video:{path}"):
        with open_source(spec, realtime=False) as source:
            assert isinstance(source, VideoFileSource)
            assert not source.realtime
            assert len(list(frames(source))) == 2
    with open_source(str(path), realtime=True) as source:
        assert isinstance(source, VideoFileSource) and source.realtime
    with pytest.raises(SourceError) as error:
        open_source(f"video:{tmp_path / 'gone.mp4'}")
    one_line_error(error, "no such file")


def test_live_replay_hands_out_a_grey_lores_picture_like_a_pi_camera(tmp_path: Path) -> None:
    path = tmp_path / "big.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (1280, 720))
    for _ in range(3):
        writer.write(np.full((720, 1280, 3), (40, 120, 200), np.uint8))
    writer.release()
    with LiveReplay(VideoFileSource(path), 1000.0, lores=640) as source:
        frame = source.read()
    assert frame is not None and frame.small is not None
    assert frame.image.shape == (720, 1280, 3) and frame.small.shape == (360, 640, 3)
    small = frame.small.astype(int)
    assert (small[..., 0] == small[..., 1]).all() and (small[..., 1] == small[..., 2]).all()
    with LiveReplay(VideoFileSource(path), 1000.0, lores=2000) as source:
        frame = source.read()
    assert frame is not None and frame.small is None  # no smaller than the frame itself
