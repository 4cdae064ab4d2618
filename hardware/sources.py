"""Frame sources: where the kiosk's pictures come from.

Every source is a :class:`FrameSource`: ``read()`` gives the next :class:`Frame` (an
RGB picture, its index and its time) or ``None`` once the stream has ended for good,
and ``close()`` lets the device go. Sources are context managers.

- :class:`VideoFileSource` replays a video file, as fast as it is read or paced to the
  video's frame rate (``realtime=True``): the kiosk and its benchmarks run on it.
- :class:`LiveReplay` plays a video file as a live camera delivers it, ``time_scale``
  times faster than real time, dropping the frames its reader was not ready for: the
  kiosk on this machine, at K times the video's speed, sees what it would see on a CPU
  K times slower (a Raspberry Pi).
- :class:`OpenCVCameraSource` reads a USB camera or an RTSP / HTTP stream through
  OpenCV, and reconnects when the camera drops out.
- :class:`FakeSource` hands out given pictures: the shipped fake camera for tests, as
  gpiozero ships its ``MockFactory``. It can also play a camera that dies.
- ``picamera`` is a Raspberry Pi camera through picamera2:
  :class:`hardware.picamera.Picamera2Source`, imported only when that source is opened.

:func:`open_source` turns a spec from the command line or the config (``video:PATH``,
``camera:0``, ``rtsp://...``, ``picamera``) into a source, through the explicit
:data:`SOURCES` registry. Nothing is opened at import; Pi-only modules are imported
only when their source is opened. Everything that cannot be opened, and a camera that
stops delivering frames, raises :class:`~clockface.errors.SourceError` with one line
for the operator. Sources are not thread-safe: one reader each.
"""

from __future__ import annotations

import math
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np
import numpy.typing as npt

from clockface.errors import SourceError
from clockface.files import quoted
from hardware.frames import BaseSource, Clock, Frame, FrameSource, Sleep

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")
"""File endings :func:`open_source` takes for a video file without ``video:``."""

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
"""URL schemes :func:`open_source` hands to :class:`OpenCVCameraSource`."""

DEFAULT_FPS = 30.0
"""Frame rate assumed for a video whose container does not give a usable one."""

# --- OpenCV capture, behind a small interface ----------------------------------------


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the sources use; tests pass a fake."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, cv2.typing.MatLike | None]: ...

    def set(self, propId: int, value: float) -> bool: ...

    def get(self, propId: int) -> float: ...

    def release(self) -> None: ...


CaptureFactory = Callable[[int | str, int, Sequence[int]], Capture]
"""Opens a capture: ``(device index or URL or path, OpenCV API, open parameters)``."""


def opencv_capture(device: int | str, api: int, params: Sequence[int]) -> Capture:
    """``cv2.VideoCapture(device, api, params)``: the real capture factory."""
    if isinstance(device, int):  # two calls, one per overload of the constructor
        return cv2.VideoCapture(device, api, params)
    return cv2.VideoCapture(device, api, params)


def _to_rgb(image: cv2.typing.MatLike | None) -> npt.NDArray[np.uint8] | None:
    """OpenCV's BGR (or gray, or BGRA) picture as C-contiguous RGB; None if unusable."""
    if image is None:
        return None
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.size == 0:
        return None
    if array.ndim == 2:
        code = cv2.COLOR_GRAY2RGB
    elif array.ndim == 3 and array.shape[2] == 3:
        code = cv2.COLOR_BGR2RGB
    elif array.ndim == 3 and array.shape[2] == 4:
        code = cv2.COLOR_BGRA2RGB
    else:
        return None
    return np.ascontiguousarray(cv2.cvtColor(array, code), dtype=np.uint8)


# --- video files -----------------------------------------------------------------------


class VideoFileSource(BaseSource):
    """Replays a video file, decoded by OpenCV's FFmpeg backend.

    ``time`` is ``index / fps``, with the frame rate the container gives (or 30 when it
    gives none). With ``realtime=True`` a frame is not handed out before it is due at
    the video's frame rate, counted from the first ``read()``: the replay is never
    faster than the video, and a reader that falls more than a frame behind is not
    caught up in a burst: the schedule restarts from the late frame (every frame is
    still delivered; nothing is skipped). ``clock`` and ``sleep`` are injectable for
    tests. ``start_frame`` seeks before the first frame.

    Raises SourceError when the file is missing, not a video, has no frames, or
    ``start_frame`` is past its end. A frame that fails to decode ends the replay.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        realtime: bool = False,
        start_frame: int = 0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if start_frame < 0:
            raise ValueError(f"start_frame must be 0 or more, not {start_frame}")
        self.path = Path(path)
        self.name = f"video:{os.fsdecode(path)}"
        label = f"video {quoted(path)}"
        self.realtime = realtime
        self._clock = clock
        self._sleep = sleep
        _check_readable_file(path, label)
        capture = cv2.VideoCapture(os.fsdecode(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise SourceError(
                f"cannot open {label}: it is not a video OpenCV can decode; "
                "convert it to .mp4 (H.264)"
            )
        self._capture: cv2.VideoCapture | None = capture
        fps = capture.get(cv2.CAP_PROP_FPS)
        self._fps = fps if 0 < fps <= 1000 else DEFAULT_FPS
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._frame_count = count if count > 0 else None
        self._size = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        if start_frame:
            capture.set(cv2.CAP_PROP_POS_FRAMES, start_frame)
        self._index = start_frame
        self._due: float | None = None
        # Decode the first frame now, so a file with nothing to show fails here.
        self._pending = self._decode()
        if self._pending is None:
            self.close()
            if start_frame:
                raise SourceError(
                    f"cannot start {label} at frame {start_frame}: "
                    f"it has {self._frame_count or 'no'} frames"
                )
            raise SourceError(
                f"cannot read {label}: it has no frame that can be decoded; "
                "the file may be cut short"
            )

    @property
    def fps(self) -> float:
        """Frames per second, from the container (30 when it gives none)."""
        return self._fps

    @property
    def frame_count(self) -> int | None:
        """The number of frames the container announces, or None when it does not say."""
        return self._frame_count

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels, as PIL's ``Image.size``; arrays are (H, W, 3)."""
        return self._size

    @property
    def next_index(self) -> int:
        """The index of the frame the next ``read()`` gives."""
        return self._index

    def read(self) -> Frame | None:
        image = self._pending if self._pending is not None else self._decode()
        self._pending = None
        if image is None:
            return None
        index = self._index
        self._index += 1
        if self.realtime:
            self._pace()
        return Frame(image, index, index / self._fps)

    def skip(self, count: int) -> int:
        """Pass over the next ``count`` frames without converting them; how many were
        there to pass over (fewer at the end of the video)."""
        skipped = 0
        if count > 0 and self._pending is not None:
            self._pending = None
            self._index += 1
            skipped = 1
        while skipped < count and self._capture is not None:
            if not self._capture.grab():
                break
            self._index += 1
            skipped += 1
        return skipped

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._pending = None

    def _decode(self) -> npt.NDArray[np.uint8] | None:
        if self._capture is None:
            return None
        ok, image = self._capture.read()
        return _to_rgb(image) if ok else None

    def _pace(self) -> None:
        """Wait until the frame is due; restart the schedule when a frame is late."""
        period = 1.0 / self._fps
        now = self._clock()
        due = now if self._due is None else self._due
        if due > now:
            self._sleep(due - now)
        self._due = (due if now - due < period else now) + period


class LiveReplay(BaseSource):
    """A video file played as a live camera delivers it, ``time_scale`` times faster
    than real time.

    A camera does not wait for its reader: the frame a reader gets is the newest one
    captured by then, and those it was too busy to take are gone. So ``read()`` gives the
    frame due at ``time_scale`` times the wall-clock time elapsed since the first read,
    and counts the frames passed over in ``dropped``; a reader that is ahead waits for
    the next frame, as it would for a camera. With ``time_scale = K`` a kiosk here
    takes, in video seconds, what it would take on a CPU K times slower, and its
    passes are judged as they would be there (``bench/pi_factor.py`` calibrates K for
    a Raspberry Pi). The time spent decoding the video here is left out of the clock:
    a camera's frames cost its reader nothing.

    Frames keep the video's own index and time (``index / fps``), so events stamped by
    the kiosk's video clock can be read against the video. ``lores``: also hand out,
    with each frame, a grey copy at most this many pixels on its longest side, made as
    a Raspberry Pi camera's ``lores`` stream is (:func:`hardware.picamera.lores_size`,
    the luminance only) and off the clock, as the Pi's ISP makes it for free. ``clock``
    and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        video: VideoFileSource,
        time_scale: float,
        *,
        lores: int | None = None,
        clock: Clock = time.perf_counter,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not (math.isfinite(time_scale) and 0.01 <= time_scale <= 1000):
            raise ValueError(f"time_scale must be 0.01 to 1000, not {time_scale!r}")
        self.video = video
        self.name = video.name
        self.time_scale = time_scale
        self.lores = lores
        self.dropped = 0
        self.delivered = 0
        self._clock = clock
        self._sleep = sleep
        self._first_index = video.next_index
        self._origin: float | None = None
        self._paused = 0.0  # wall seconds spent decoding: not on the camera's clock

    @property
    def fps(self) -> float:
        return self.video.fps

    def read(self) -> Frame | None:
        now = self._clock()
        if self._origin is None:
            self._origin = now
        elapsed = now - self._origin - self._paused
        due = self._first_index + math.floor(elapsed * self.time_scale * self.video.fps + 1e-9)
        wanted = self.video.next_index
        if due < wanted:  # ahead of the camera: wait for the next frame
            wait = (wanted - self._first_index) / self.video.fps / self.time_scale - elapsed
            if wait > 0:
                self._sleep(wait)
            due = wanted
        started = self._clock()
        self.dropped += self.video.skip(due - wanted)
        frame = self.video.read()
        if frame is not None and self.lores is not None:
            frame = Frame(frame.image, frame.index, frame.time, _lores(frame.image, self.lores))
        self._paused += self._clock() - started
        if frame is not None:
            self.delivered += 1
        return frame

    def close(self) -> None:
        self.video.close()


def _lores(image: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8] | None:
    """A Pi camera's ``lores`` picture of ``image``: grey, at its size (None when the
    frame is no larger)."""
    from hardware.picamera import lores_size  # a pure function; no picamera2 import

    height, width = image.shape[:2]
    size = lores_size(width, height, side)
    if size is None:
        return None
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB))


def _check_readable_file(path: str | os.PathLike[str], name: str) -> None:
    """Refuse, before OpenCV sees it, a path that is not a readable regular file."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise SourceError(f"cannot open {name}: it is a folder, not a video file")
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(f"cannot open {name}: it is not a regular file")
        with open(path, "rb"):
            pass
    except SourceError:
        raise
    except (FileNotFoundError, NotADirectoryError) as err:
        raise SourceError(f"cannot open {name}: no such file; check the path") from err
    except PermissionError as err:
        raise SourceError(f"cannot open {name}: permission denied") from err
    except OSError as err:
        reason = " ".join((err.strerror or type(err).__name__).split()).lower()
        raise SourceError(f"cannot open {name}: {reason}") from err


# --- OpenCV cameras and streams ----------------------------------------------------------


class OpenCVCameraSource(BaseSource):
    """A USB camera (an index: 0 is ``/dev/video0``) or an RTSP / HTTP stream, via OpenCV.

    A failed read releases the capture, waits ``reconnect_delay`` seconds and opens it
    again; after ``max_failures`` failures in a row (failed reads and failed reopens
    alike) ``read()`` raises SourceError. A later ``read()`` starts over. Reads never
    block forever: streams are opened through FFmpeg with ``timeout`` seconds for
    opening and for each read (``CAP_PROP_OPEN_TIMEOUT_MSEC`` and
    ``CAP_PROP_READ_TIMEOUT_MSEC``); OpenCV's V4L2 backend takes neither, but waits at
    most 10 s for a USB camera's frame (``OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT``).

    ``width`` and ``height`` are asked of the camera, which may pick another size.
    ``capture_factory``, ``clock`` and ``sleep`` are injectable for tests. The camera is
    opened in the constructor: SourceError if it cannot be. A password in a stream URL
    is masked in ``name`` and in messages.
    """

    def __init__(
        self,
        device: int | str,
        *,
        width: int | None = None,
        height: int | None = None,
        timeout: float = 10.0,
        reconnect_delay: float = 2.0,
        max_failures: int = 10,
        capture_factory: CaptureFactory = opencv_capture,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if max_failures < 1:
            raise ValueError(f"max_failures must be 1 or more, not {max_failures}")
        if reconnect_delay < 0:
            raise ValueError(f"reconnect_delay must be 0 or more, not {reconnect_delay}")
        if timeout <= 0:
            raise ValueError(f"timeout must be more than 0 seconds, not {timeout}")
        for label, value in (("width", width), ("height", height)):
            if value is not None and value < 1:
                raise ValueError(f"{label} must be 1 or more, not {value}")
        self.device = device
        self.name = f"camera:{device}" if isinstance(device, int) else _mask_password(device)
        self._width = width
        self._height = height
        self._reconnect_delay = reconnect_delay
        self._max_failures = max_failures
        self._factory = capture_factory
        self._clock = clock
        self._sleep = sleep
        if isinstance(device, int):
            self._api = cv2.CAP_ANY
            self._params: list[int] = []
        else:
            milliseconds = max(1, round(timeout * 1000))
            self._api = cv2.CAP_FFMPEG
            self._params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                milliseconds,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                milliseconds,
            ]
        self._index = 0
        self._failures = 0
        self._closed = False
        self._capture = self._open()
        if self._capture is None:
            raise SourceError(f"cannot open {self.name}: {self._advice()}")

    def read(self) -> Frame | None:
        if self._closed:
            return None
        while True:
            if self._capture is None:
                self._capture = self._open()
            if self._capture is not None:
                ok, image = self._capture.read()
                rgb = _to_rgb(image) if ok else None
                if rgb is not None:
                    self._failures = 0
                    frame = Frame(rgb, self._index, self._clock())
                    self._index += 1
                    return frame
                self._capture.release()
                self._capture = None
            self._failures += 1
            if self._failures >= self._max_failures:
                failures, self._failures = self._failures, 0
                raise SourceError(
                    f"{self.name} stopped delivering frames ({failures} failures in a row, "
                    f"reconnecting every {self._reconnect_delay:g} s): {self._advice()}"
                )
            if self._reconnect_delay > 0:
                self._sleep(self._reconnect_delay)

    def close(self) -> None:
        self._closed = True
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _open(self) -> Capture | None:
        """A capture opened with our settings, or None when the camera is not there."""
        capture = self._factory(self.device, self._api, self._params)
        if not capture.isOpened():
            capture.release()
            return None
        if self._width is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._width)
        if self._height is not None:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._height)
        return capture

    def _advice(self) -> str:
        if isinstance(self.device, int):
            return (
                f"check the camera's cable (is /dev/video{self.device} there?) "
                "and that no other program is using it"
            )
        return "check the URL, the camera's power and network, and its user and password"


def _mask_password(url: str) -> str:
    """The URL with the password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


# --- the fake camera ----------------------------------------------------------------------


class FakeSource(BaseSource):
    """Hands out the given RGB pictures as frames, with ``time = index / fps``.

    ``images`` may be any iterable, endless ones included (``itertools.repeat``); each
    must be an (H, W, 3) uint8 array (ValueError otherwise) and is made C-contiguous.
    The source ends (None) when they run out. With ``fail_after=n`` it plays a camera
    that dies: after ``n`` frames every ``read()`` raises SourceError.
    """

    def __init__(
        self,
        images: Iterable[npt.NDArray[np.uint8]],
        *,
        fps: float = 30.0,
        fail_after: int | None = None,
        name: str = "fake",
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be more than 0, not {fps}")
        if fail_after is not None and fail_after < 0:
            raise ValueError(f"fail_after must be 0 or more, not {fail_after}")
        self.name = name
        self.fps = fps
        self.fail_after = fail_after
        self._images: Iterator[npt.NDArray[np.uint8]] | None = iter(images)
        self._index = 0

    def read(self) -> Frame | None:
        if self._images is None:
            return None
        if self.fail_after is not None and self._index >= self.fail_after:
            raise SourceError(
                f"{self.name} stopped delivering frames after {self.fail_after}: "
                "check the cable or stream (a FakeSource told to fail)"
            )
        image = next(self._images, None)
        if image is None:
            self._images = None
            return None
        frame = Frame(np.ascontiguousarray(image), self._index, self._index / self.fps)
        self._index += 1
        return frame

    def close(self) -> None:
        self._images = None


# --- the Raspberry Pi camera seam -----------------------------------------------------------


def _open_picamera(target: str, *, realtime: bool = False) -> FrameSource:
    """The Pi camera through picamera2, with default settings (the kiosk's config gives
    its own through :meth:`hardware.config.HardwareConfig.open_source`)."""
    from hardware.picamera import Picamera2Source  # imports picamera2 only when built

    return Picamera2Source()


# --- specs and the registry ---------------------------------------------------------------


class SourceOpener(Protocol):
    """Opens a source from the part of the spec after its kind."""

    def __call__(self, target: str, /, *, realtime: bool = False) -> FrameSource: ...


def _open_video(target: str, *, realtime: bool = False) -> FrameSource:
    return VideoFileSource(target, realtime=realtime)


def _open_camera(target: str, *, realtime: bool = False) -> FrameSource:
    return OpenCVCameraSource(int(target))


def _open_stream(target: str, *, realtime: bool = False) -> FrameSource:
    return OpenCVCameraSource(target)


SOURCES: dict[str, SourceOpener] = {
    "video": _open_video,
    "camera": _open_camera,
    "stream": _open_stream,
    "picamera": _open_picamera,
}
"""Source kinds by name; :func:`open_source` picks one from the spec."""

_FORMS = (
    "use video:PATH or a .mp4/.avi/.mkv/.mov file, camera:N or a camera number, "
    "an rtsp:// or http(s):// URL, or picamera"
)
_NUMBER = re.compile(r"[0-9]+")


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a source spec into its kind (a key of :data:`SOURCES`) and target.

    ``video:PATH`` or a path ending in a video extension -> ``("video", PATH)``;
    ``camera:N`` or ``N`` -> ``("camera", "N")``; an ``rtsp(s)://`` or ``http(s)://``
    URL -> ``("stream", URL)``; ``picamera`` -> ``("picamera", "")``. SourceError for
    anything else.
    """
    kind, colon, target = spec.partition(":")
    if colon and kind == "video":
        if not target:
            raise SourceError(f"source {spec!r} names no file: use video:PATH")
        return "video", target
    if colon and kind == "camera":
        if not _NUMBER.fullmatch(target):
            raise SourceError(f"source {spec!r} needs a camera number: camera:0 is the first")
        return "camera", str(int(target))
    if colon and kind.lower() in STREAM_SCHEMES and target.startswith("//"):
        return "stream", spec
    if spec == "picamera":
        return "picamera", ""
    if _NUMBER.fullmatch(spec):
        return "camera", str(int(spec))
    if spec.lower().endswith(VIDEO_EXTENSIONS):
        return "video", spec
    raise SourceError(f"unknown source {spec!r}: {_FORMS}")


def open_source(spec: str, *, realtime: bool = False) -> FrameSource:
    """Open the source a spec names (see :func:`parse_spec`); ``realtime`` paces videos.

    Raises SourceError for a spec of no known form, or a source that cannot be opened.
    """
    kind, target = parse_spec(spec)
    return SOURCES[kind](target, realtime=realtime)
