"""The Raspberry Pi camera through picamera2 (Raspberry Pi OS only).

``picamera2`` (and ``libcamera``, which comes with it) is imported in the constructor,
never at import time: elsewhere the kiosk uses a USB camera or a video file, and a
missing picamera2 is one SourceError line saying how to install it.

How the camera is driven, following the Picamera2 manual:

- **Detect small, crop big.** The ``main`` stream (1280x720 RGB by default) is what
  faces are encoded from; a ``lores`` stream of the same moment, scaled by the ISP to
  the detector's size (``detect_max_side``, 1024 px, width a multiple of 64), is what
  they are detected on, so the CPU shrinks nothing. ``lores`` is YUV420 (the only
  format a Pi 4 gives it); its Y plane, read with the stream's stride as in picamera2's
  ``opencv_face_detect_3.py``, is the grey picture the HOG detector needs, handed over
  as (H, W, 3) in :attr:`~hardware.sources.Frame.small`. No ``lores`` when ``main`` is
  no larger than the detector's size.
- **Fresh frames.** ``create_video_configuration(..., queue=False)``: picamera2 keeps
  no finished frame back, so ``capture_request()`` waits for the next frame the camera
  completes rather than handing out one that waited while the kiosk was busy.
  ``buffer_count=4`` (the preview default) is enough for a reader that hands every
  request back at once.
- **Requests released at once.** ``capture_request()``, ``make_array("main")``, then
  ``request.release()`` in ``finally``: the buffer goes back to the camera even when
  the copy fails. (``captured_request()``, the context manager, is newer than the
  picamera2 of early Bookworm images; this works with both.)
- **Colour order.** ``"RGB888"`` is libcamera's name for pixels stored B, G, R (what
  OpenCV calls BGR); dlib wants R, G, B, so the channels are reversed and made
  C-contiguous (``np.ascontiguousarray(array[:, :, ::-1])``).
- **Focus (Camera Module 3).** Faces pass at a known distance, so a fixed focus there
  never hunts: ``AfMode`` Manual with ``LensPosition = 1 / metres`` (dioptres, clamped
  to the lens's range); ``"auto"`` is ``AfMode`` Continuous. Cameras without autofocus
  (``AfMode`` not among their controls) are left alone.
- **Frame rate** through ``FrameDurationLimits`` (microseconds per frame, both ends
  equal), which every Pi camera advertises.
- **A hung camera.** ``capture_request(wait=timeout)`` gives up after ``timeout``
  seconds on picamera2 versions that take a number there (older ones wait for ever:
  the systemd watchdog, pinged only after good frames, is the backstop). A camera
  that failed once is lost: later reads raise again and the kiosk restarts.
- **Opened once per process.** A camera can be held by one ``Picamera2`` at a time;
  a second source for the same camera in this process is refused with a clear line
  instead of libcamera's "Camera __init__ sequence did not complete".
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from clockface.errors import SourceError
from hardware.frames import BaseSource, Clock, Frame

log = logging.getLogger("clockface.hardware")

MISSING = (
    "picamera2 is not installed: on Raspberry Pi OS `sudo apt install python3-picamera2` "
    "and create the venv with --system-site-packages"
)
BUFFER_COUNT = 4
"""Buffers per stream: the preview default; the kiosk returns each one at once."""

_open_lock = threading.Lock()
_open_cameras: set[int] = set()


class Picamera2Source(BaseSource):
    """Frames from a Raspberry Pi camera, (H, W, 3) RGB uint8, C-contiguous.

    ``camera_number`` picks the camera (0: the first); ``width`` x ``height`` is the
    frame size asked of the ISP (it may align it: see ``size``); ``fps`` the frame
    rate; ``focus`` the distance in metres to fix the focus at, or None for continuous
    autofocus; ``rotate_180`` for a camera mounted upside down; ``timeout`` the
    seconds to wait for a frame before the camera counts as lost. ``clock`` gives each
    frame's ``time`` (``time.monotonic`` at capture).

    Raises SourceError when picamera2 is missing, no camera is found, the camera is
    busy or cannot be configured; ``read()`` raises it when the camera stops.
    """

    def __init__(
        self,
        camera_number: int = 0,
        *,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        focus: float | None = None,
        rotate_180: bool = False,
        timeout: float = 5.0,
        detect_max_side: int | None = 1024,
        clock: Clock = time.monotonic,
    ) -> None:
        if camera_number < 0:
            raise ValueError(f"camera_number must be 0 or more, not {camera_number}")
        if width < 2 or height < 2 or width % 2 or height % 2:
            raise ValueError(f"width and height must be even and positive, not {width}x{height}")
        if not fps > 0:
            raise ValueError(f"fps must be more than 0, not {fps}")
        if focus is not None and not focus > 0:
            raise ValueError(f"focus must be a distance in metres (more than 0), not {focus}")
        if not timeout > 0:
            raise ValueError(f"timeout must be more than 0 seconds, not {timeout}")
        self.camera_number = camera_number
        self.name = "picamera" if camera_number == 0 else f"picamera:{camera_number}"
        self.model = "unknown"
        self._timeout = timeout
        self._clock = clock
        self._index = 0
        self._lost: str | None = None
        self._camera: Any = None
        self._lores = lores_size(width, height, detect_max_side)
        self._lores_stride = 0
        picamera2 = _import("picamera2", MISSING)
        factory = getattr(picamera2, "Picamera2", None)
        if factory is None:
            raise SourceError(
                f"the picamera2 module found ({getattr(picamera2, '__file__', '?')}) has no "
                "Picamera2 class: reinstall it with "
                "`sudo apt install --reinstall python3-picamera2`"
            )
        with _open_lock:
            if camera_number in _open_cameras:
                raise SourceError(
                    f"{self.name} is already open in this process: "
                    "open the camera once and read every frame from that source"
                )
            _open_cameras.add(camera_number)
        try:
            self._camera = self._open(factory, width, height, fps, focus, rotate_180)
        except BaseException:
            with _open_lock:
                _open_cameras.discard(camera_number)
            raise
        width, height = self._camera.stream_configuration("main")["size"]
        self.size: tuple[int, int] = (int(width), int(height))
        """``(width, height)`` of the frames, as the camera configured them."""
        log.info("%s (%s) open: %dx%d at %g fps", self.name, self.model, *self.size, fps)

    def _open(
        self,
        factory: Any,
        width: int,
        height: int,
        fps: float,
        focus: float | None,
        rotate_180: bool,
    ) -> Any:
        cameras = list(factory.global_camera_info())
        if not cameras:
            raise SourceError(
                "no Raspberry Pi camera found: check the ribbon cable (contacts the right "
                "way round, latch closed), then run `rpicam-hello --list-cameras`"
            )
        if self.camera_number >= len(cameras):
            raise SourceError(
                f"there is no {self.name}: {len(cameras)} camera"
                f"{'' if len(cameras) == 1 else 's'} found; the first is picamera (number 0)"
            )
        self.model = str(cameras[self.camera_number].get("Model", "unknown"))
        try:
            camera = factory(self.camera_number)
        except Exception as err:
            raise SourceError(
                f"cannot open {self.name} ({self.model}): {_first_line(err)}; "
                "is another program (rpicam-*, a second kiosk) using it?"
            ) from err
        try:
            available = camera.camera_controls
            controls: dict[str, Any] = {}
            if "FrameDurationLimits" in available:
                period = round(1_000_000 / fps)
                controls["FrameDurationLimits"] = (period, period)
            options: dict[str, Any] = {}
            if rotate_180:
                libcamera = _import("libcamera", _LIBCAMERA_MISSING)
                options["transform"] = libcamera.Transform(hflip=1, vflip=1)
            if self._lores is not None:
                options["lores"] = {"size": self._lores, "format": "YUV420"}
            config = camera.create_video_configuration(
                main={"size": (width, height), "format": "RGB888"},
                buffer_count=BUFFER_COUNT,
                queue=False,
                controls=controls,
                **options,
            )
            camera.configure(config)
            if self._lores is not None:
                self._lores_stride = int(camera.stream_configuration("lores")["stride"])
            focusing = focus_controls(available, focus)
            if focusing:
                camera.set_controls(focusing)
            camera.start()
        except Exception as err:
            _close_quietly(camera, self.name)
            if isinstance(err, SourceError):
                raise
            raise SourceError(
                f"cannot start {self.name} ({self.model}) at {width}x{height}: {_first_line(err)}"
            ) from err
        return camera

    def read(self) -> Frame | None:
        camera = self._camera
        if camera is None:
            return None
        if self._lost is not None:
            raise SourceError(self._lost)
        try:
            request = camera.capture_request(wait=self._timeout)
            try:
                array = request.make_array("main")
                lores = None if self._lores is None else request.make_buffer("lores")
            finally:
                request.release()
        except TimeoutError as err:
            self._lost = (
                f"{self.name} delivered no frame in {self._timeout:g} s: check the ribbon "
                "cable and the power supply, then restart the kiosk"
            )
            raise SourceError(self._lost) from err
        except Exception as err:
            self._lost = (
                f"{self.name} stopped delivering frames ({_first_line(err)}): check the "
                "ribbon cable and the power supply, then restart the kiosk"
            )
            raise SourceError(self._lost) from err
        small = None
        if self._lores is not None and lores is not None:
            small = lores_grey(lores, *self._lores, self._lores_stride, self.name)
        frame = Frame(bgr_to_rgb(array, self.name), self._index, self._clock(), small)
        self._index += 1
        return frame

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        try:
            _close_quietly(camera, self.name)
        finally:
            with _open_lock:
                _open_cameras.discard(self.camera_number)


def focus_controls(available: dict[str, Any], focus: float | None) -> dict[str, Any]:
    """The controls that set the focus: continuous (None) or fixed at ``focus`` metres.

    Empty for a camera without autofocus. ``LensPosition`` is in dioptres (1 / metres),
    clamped to the lens's range when the camera gives one.
    """
    if "AfMode" not in available:
        log.info("the camera has a fixed-focus lens: camera_focus is ignored")
        return {}
    enums = _import("libcamera", _LIBCAMERA_MISSING).controls.AfModeEnum
    if focus is None:
        return {"AfMode": enums.Continuous}
    dioptres = 1.0 / focus
    limits = available.get("LensPosition")
    if limits is not None:
        low, high = limits[0], limits[1]
        if isinstance(low, int | float) and isinstance(high, int | float) and low <= high:
            dioptres = min(max(dioptres, float(low)), float(high))
    return {"AfMode": enums.Manual, "LensPosition": dioptres}


def lores_size(width: int, height: int, detect_max_side: int | None) -> tuple[int, int] | None:
    """The ``lores`` stream's size for a ``main`` of width x height: the detector's size,
    the width a multiple of 64 (so rows carry no padding on either Pi) and the height
    even; None when ``main`` is no larger than that."""
    if detect_max_side is None or max(width, height) <= detect_max_side:
        return None
    scale = detect_max_side / max(width, height)
    lores_width = max(64, int(width * scale) // 64 * 64)
    lores_height = max(2, round(lores_width * height / width / 2) * 2)
    return lores_width, lores_height


def lores_grey(
    buffer: object, width: int, height: int, stride: int, name: str = "picamera"
) -> npt.NDArray[np.uint8]:
    """The Y (luminance) plane of a YUV420 ``lores`` buffer as (H, W, 3) grey uint8."""
    flat = np.frombuffer(buffer, dtype=np.uint8)  # type: ignore[call-overload]
    stride = max(stride, width)
    if flat.size < stride * height:
        raise SourceError(
            f"{name} gave a {flat.size}-byte lores buffer; {width}x{height} YUV420 "
            f"with stride {stride} needs at least {stride * height}"
        )
    luma = flat[: stride * height].reshape(height, stride)[:, :width]
    return np.ascontiguousarray(np.repeat(luma[:, :, None], 3, axis=2))


def bgr_to_rgb(array: object, name: str = "picamera") -> npt.NDArray[np.uint8]:
    """An ``"RGB888"`` picture (stored B, G, R) as C-contiguous RGB uint8."""
    image = np.asarray(array)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise SourceError(
            f"{name} gave a {image.dtype} {image.shape} picture, not (H, W, 3) uint8: "
            "the main stream must be RGB888"
        )
    return np.ascontiguousarray(image[:, :, ::-1])


_LIBCAMERA_MISSING = (
    "libcamera's Python module is missing: on Raspberry Pi OS `sudo apt install "
    "python3-picamera2` brings it; create the venv with --system-site-packages"
)


def _import(module: str, missing: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise SourceError(missing) from err


def _close_quietly(camera: Any, name: str) -> None:
    """Stop and close the camera; a failure is logged, never raised (we are leaving)."""
    for step in ("stop", "close"):
        try:
            getattr(camera, step)()
        except Exception as err:
            log.warning("%s: %s failed while closing: %s", name, step, _first_line(err))


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
