"""Tests for hardware.picamera: the Raspberry Pi camera source, against a fake picamera2.

The fake ``picamera2`` and ``libcamera`` modules are put into ``sys.modules``; they
record every call and hand out real arrays stored B, G, R (as ``"RGB888"`` is), so the
colour order, the contiguity and the release of every request are really checked.
"""

from __future__ import annotations

import enum
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pytest

from clockface.errors import SourceError
from hardware.config import HardwareConfig
from hardware.picamera import Picamera2Source, bgr_to_rgb, focus_controls, lores_size
from hardware.sources import open_source

RED_RGB = (200, 10, 30)
LUMA, PADDING = 77, 250  # the fake lores picture's grey level, and its row padding
CM3 = {"Model": "imx708", "Location": 2, "Rotation": 180, "Id": "/base/soc/i2c0mux/imx708@1a"}
CM3_CONTROLS: dict[str, Any] = {
    "AfMode": (0, 2, 0),
    "LensPosition": (0.0, 15.0, 1.0),
    "FrameDurationLimits": (33333, 120000000, 33333),
    "ExposureTime": (1, 66666, 20000),
}
V2_CONTROLS: dict[str, Any] = {"FrameDurationLimits": (47183, 11767556, 33333)}


class AfModeEnum(enum.IntEnum):
    Manual = 0
    Auto = 1
    Continuous = 2


class Transform:
    def __init__(self, hflip: int = 0, vflip: int = 0) -> None:
        self.hflip, self.vflip = hflip, vflip


class FakeRequest:
    def __init__(self, camera: FakePicamera2, array: object) -> None:
        self.camera = camera
        self.array = array
        self.released = False

    def make_array(self, name: str) -> object:
        self.camera.calls.append(("make_array", name))
        if isinstance(self.array, BaseException):
            raise self.array
        return self.array

    def make_buffer(self, name: str) -> bytes:
        """A YUV420 lores buffer: the Y plane at LUMA, its row padding (stride beyond the
        width) at PADDING, so a reader that ignores the stride is caught; then U and V."""
        self.camera.calls.append(("make_buffer", name))
        stream = self.camera.stream_configuration(name)
        (width, height), stride = stream["size"], stream["stride"]
        rows = np.full((height, stride), PADDING, np.uint8)
        rows[:, :width] = LUMA
        chroma = np.full(stride * height // 2, 128, np.uint8)
        return rows.tobytes() + chroma.tobytes()

    def release(self) -> None:
        assert not self.released, "a request released twice"
        self.released = True
        self.camera.calls.append(("release",))


class FakePicamera2:
    """Plays picamera2's Picamera2 with the behaviour a test sets on the class."""

    cameras: ClassVar[list[dict[str, Any]]] = [CM3]
    controls: ClassVar[dict[str, Any]] = CM3_CONTROLS
    busy: ClassVar[bool] = False
    script: ClassVar[list[object]] = []  # what capture_request gives: arrays, or errors
    instances: ClassVar[list[FakePicamera2]] = []

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return FakePicamera2.cameras

    def __init__(self, camera_num: int = 0) -> None:
        if FakePicamera2.busy:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.camera_num = camera_num
        self.calls: list[tuple[Any, ...]] = [("init", camera_num)]
        self.config: dict[str, Any] | None = None
        self.requests: list[FakeRequest] = []
        self.to_give = list(FakePicamera2.script)
        FakePicamera2.instances.append(self)

    @property
    def camera_controls(self) -> dict[str, Any]:
        return dict(FakePicamera2.controls)

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("create_video_configuration", kwargs))
        main = dict(kwargs["main"])
        return {"main": main, "buffer_count": kwargs.get("buffer_count", 6), **kwargs}

    def configure(self, config: dict[str, Any]) -> None:
        self.calls.append(("configure",))
        self.config = config

    def set_controls(self, controls: dict[str, Any]) -> None:
        self.calls.append(("set_controls", controls))

    def start(self) -> None:
        self.calls.append(("start",))

    def stop(self) -> None:
        self.calls.append(("stop",))

    def close(self) -> None:
        self.calls.append(("close",))

    def stream_configuration(self, name: str) -> dict[str, Any]:
        assert self.config is not None
        (width, _), form = self.config[name]["size"], self.config[name]["format"]
        # Rows padded to 128 bytes: more than the Pi's alignment, to exercise the stride.
        stride = -(-width * (3 if form == "RGB888" else 1) // 128) * 128
        return {"size": self.config[name]["size"], "format": form, "stride": stride}

    def capture_request(self, wait: object = None) -> FakeRequest:
        self.calls.append(("capture_request", wait))
        item = self.to_give.pop(0) if self.to_give else bgr_frame(self)
        if isinstance(item, TimeoutError | RuntimeError):  # capture_request itself fails
            raise item
        request = FakeRequest(self, item)
        self.requests.append(request)
        return request

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]


def bgr_frame(camera: FakePicamera2) -> npt.NDArray[np.uint8]:
    """A frame of the configured size, red in RGB, stored B, G, R as "RGB888" is."""
    assert camera.config is not None
    width, height = camera.config["main"]["size"]
    red, green, blue = RED_RGB
    return np.full((height, width, 3), (blue, green, red), np.uint8)


@pytest.fixture
def picamera2(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakePicamera2]]:
    """Fake picamera2 and libcamera modules in sys.modules; the fake camera class."""
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    libcamera = types.ModuleType("libcamera")
    libcamera.Transform = Transform  # type: ignore[attr-defined]
    libcamera.controls = types.SimpleNamespace(AfModeEnum=AfModeEnum)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)
    monkeypatch.setattr(FakePicamera2, "cameras", [CM3])
    monkeypatch.setattr(FakePicamera2, "controls", CM3_CONTROLS)
    monkeypatch.setattr(FakePicamera2, "busy", False)
    monkeypatch.setattr(FakePicamera2, "script", [])
    monkeypatch.setattr(FakePicamera2, "instances", [])
    yield FakePicamera2
    for camera in FakePicamera2.instances:  # every camera opened is closed again
        assert camera.named("close"), "a camera was left open"


def one_line(error: pytest.ExceptionInfo[SourceError], *parts: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, (part, message)


# --- opening -------------------------------------------------------------------------------


def test_without_picamera2_one_line_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails, as off a Pi
    openers: list[Callable[[], object]] = [Picamera2Source, lambda: open_source("picamera")]
    for opening in openers:
        with pytest.raises(SourceError) as error:
            opening()
        one_line(
            error,
            "picamera2 is not installed",
            "sudo apt install python3-picamera2",
            "--system-site-packages",
        )
        assert isinstance(error.value.__cause__, ImportError)


def test_a_picamera2_without_its_class_is_called_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", types.ModuleType("picamera2"))
    with pytest.raises(SourceError) as error:
        open_source("picamera")
    one_line(error, "has no Picamera2 class", "apt install --reinstall python3-picamera2")


def test_the_camera_is_configured_as_the_manual_says(picamera2: type[FakePicamera2]) -> None:
    with Picamera2Source(width=1280, height=720, fps=20, timeout=3.0) as source:
        camera = picamera2.instances[0]
        assert source.size == (1280, 720) and source.model == "imx708"
        assert source.name == "picamera"
        ((_, config),) = camera.named("create_video_configuration")
        assert config["main"] == {"size": (1280, 720), "format": "RGB888"}
        assert config["lores"] == {"size": (1024, 576), "format": "YUV420"}  # detect on it
        assert config["queue"] is False and config["buffer_count"] == 4
        assert config["controls"] == {"FrameDurationLimits": (50000, 50000)}  # 20 fps
        order = [call[0] for call in camera.calls]
        assert order == ["init", "create_video_configuration", "configure", "set_controls", "start"]
        source.read()
        assert camera.named("capture_request") == [("capture_request", 3.0)]
    assert [call[0] for call in camera.calls][-2:] == ["stop", "close"]


def test_frames_are_rgb_c_contiguous_and_every_request_is_released(
    picamera2: type[FakePicamera2],
) -> None:
    height, width = 6, 8
    red, green, blue = RED_RGB
    # As picamera2 pads rows to the stride: a view into wider rows, not contiguous.
    padded = np.zeros((height, width + 4, 3), np.uint8)
    padded[:, :width] = (blue, green, red)
    padded[0, 0] = (1, 2, 3)  # B, G, R of the top-left pixel
    picamera2.script = [padded[:, :width]]
    clock = iter([10.0, 10.5]).__next__
    with Picamera2Source(width=8, height=6, clock=clock) as source:
        first, second = source.read(), source.read()
        camera = picamera2.instances[0]
    assert first is not None and second is not None
    for frame in (first, second):
        assert frame.image.shape == (height, width, 3) and frame.image.dtype == np.uint8
        assert frame.image.flags.c_contiguous
    assert tuple(first.image[1, 1]) == RED_RGB and tuple(second.image[5, 7]) == RED_RGB
    assert tuple(first.image[0, 0]) == (3, 2, 1)  # R, G, B
    assert (first.index, first.time, second.index, second.time) == (0, 10.0, 1, 10.5)
    assert len(camera.requests) == 2 and all(r.released for r in camera.requests)


def test_bgr_to_rgb_refuses_what_is_not_rgb888() -> None:
    with pytest.raises(SourceError, match="must be RGB888"):
        bgr_to_rgb(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(SourceError, match="uint8"):
        bgr_to_rgb(np.zeros((4, 4, 3), np.float32))


def test_focus_fixed_in_dioptres_continuous_or_left_alone(
    picamera2: type[FakePicamera2],
) -> None:
    manual = focus_controls(CM3_CONTROLS, 0.5)
    assert manual == {"AfMode": AfModeEnum.Manual, "LensPosition": 2.0}  # 1 / 0.5 m
    assert focus_controls(CM3_CONTROLS, 0.02)["LensPosition"] == 15.0  # clamped to the lens
    assert focus_controls(CM3_CONTROLS, None) == {"AfMode": AfModeEnum.Continuous}
    assert focus_controls(V2_CONTROLS, 1.0) == {}  # no autofocus: nothing to set
    with Picamera2Source(focus=1.25):
        (call,) = picamera2.instances[0].named("set_controls")
        assert call[1] == {"AfMode": AfModeEnum.Manual, "LensPosition": 0.8}
    picamera2.controls = V2_CONTROLS
    with Picamera2Source(focus=1.25):
        assert picamera2.instances[1].named("set_controls") == []


def test_a_camera_mounted_upside_down_is_turned(picamera2: type[FakePicamera2]) -> None:
    with Picamera2Source(rotate_180=True):
        ((_, config),) = picamera2.instances[0].named("create_video_configuration")
        transform = config["transform"]
        assert isinstance(transform, Transform) and (transform.hflip, transform.vflip) == (1, 1)


def test_no_camera_another_number_or_a_busy_camera(picamera2: type[FakePicamera2]) -> None:
    picamera2.cameras = []
    with pytest.raises(SourceError) as error:
        Picamera2Source()
    one_line(error, "no Raspberry Pi camera found", "ribbon cable", "--list-cameras")
    picamera2.cameras = [CM3]
    with pytest.raises(SourceError) as error:
        Picamera2Source(1)
    one_line(error, "there is no picamera:1", "1 camera found")
    picamera2.busy = True
    with pytest.raises(SourceError) as error:
        Picamera2Source()
    one_line(error, "cannot open picamera (imx708)", "another program")
    picamera2.busy = False
    with Picamera2Source() as source:  # a failed open does not hold the camera
        assert source.read() is not None


def test_the_camera_is_opened_once_per_process(picamera2: type[FakePicamera2]) -> None:
    first = Picamera2Source()
    with pytest.raises(SourceError) as error:
        Picamera2Source()
    one_line(error, "picamera is already open in this process")
    assert len(picamera2.instances) == 1  # refused before libcamera was asked
    first.close()
    first.close()  # closing twice is harmless
    assert first.read() is None
    with Picamera2Source():
        pass
    assert len(picamera2.instances) == 2


def test_a_hung_camera_is_lost_for_good(picamera2: type[FakePicamera2]) -> None:
    picamera2.script = [TimeoutError()]
    with Picamera2Source(timeout=2.5) as source:
        with pytest.raises(SourceError) as error:
            source.read()
        one_line(error, "picamera delivered no frame in 2.5 s", "restart")
        with pytest.raises(SourceError):
            source.read()
        assert len(picamera2.instances[0].named("capture_request")) == 1  # not asked again


def test_a_failing_camera_releases_the_request_and_says_so(
    picamera2: type[FakePicamera2],
) -> None:
    picamera2.script = [RuntimeError("Dequeue timer of 1000000.00us has expired!")]
    with Picamera2Source() as source, pytest.raises(SourceError) as error:
        source.read()
    one_line(error, "picamera stopped delivering frames", "Dequeue timer")
    picamera2.script = [OSError("buffer gone")]  # fails in make_array
    with Picamera2Source() as source, pytest.raises(SourceError):
        source.read()
    (request,) = picamera2.instances[1].requests
    assert request.released


def test_a_camera_that_cannot_be_configured_is_closed(
    picamera2: type[FakePicamera2], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: FakePicamera2, config: dict[str, Any]) -> None:
        raise RuntimeError("Bad format RGB888 in stream main")

    monkeypatch.setattr(FakePicamera2, "configure", refuse)
    with pytest.raises(SourceError) as error:
        Picamera2Source()
    one_line(error, "cannot start picamera (imx708) at 1280x720", "Bad format")
    assert picamera2.instances[0].named("close")


def test_the_config_opens_the_pi_camera_with_its_settings(
    picamera2: type[FakePicamera2],
) -> None:
    config = HardwareConfig(camera_width=640, camera_height=480, camera_fps=15, camera_focus=2.0)
    with config.open_source("picamera") as source:
        assert isinstance(source, Picamera2Source) and source.size == (640, 480)
        camera = picamera2.instances[0]
        ((_, made),) = camera.named("create_video_configuration")
        assert made["main"]["size"] == (640, 480)
        assert made["controls"]["FrameDurationLimits"] == (66667, 66667)
        assert camera.named("set_controls")[0][1]["LensPosition"] == 0.5
    with open_source("picamera") as plain:  # the registry's default settings
        assert isinstance(plain, Picamera2Source) and plain.size == (1280, 720)


def test_faces_are_detected_on_the_lores_stream_at_the_detectors_size(
    picamera2: type[FakePicamera2],
) -> None:
    with Picamera2Source(width=1280, height=720, detect_max_side=320) as source:
        (camera,) = picamera2.instances
        (config,) = [kw for call, *kw in camera.calls if call == "create_video_configuration"]
        assert config[0]["lores"] == {"size": (320, 180), "format": "YUV420"}
        frame = source.read()
    assert frame is not None and frame.small is not None
    assert frame.image.shape == (720, 1280, 3) and frame.small.shape == (180, 320, 3)
    assert frame.small.flags.c_contiguous
    assert (frame.small == LUMA).all()  # the Y plane, read with its stride, no padding
    assert ("make_buffer", "lores") in camera.calls and camera.requests[-1].released


def test_no_lores_stream_when_main_is_already_the_detectors_size(
    picamera2: type[FakePicamera2],
) -> None:
    with Picamera2Source(width=640, height=480, detect_max_side=640) as source:
        (camera,) = picamera2.instances
        (config,) = [kw for call, *kw in camera.calls if call == "create_video_configuration"]
        assert "lores" not in config[0]
        frame = source.read()
    assert frame is not None and frame.small is None


@pytest.mark.parametrize(
    ("main", "side", "lores"),
    [((1280, 720), 320, (320, 180)), ((1920, 1080), 1024, (1024, 576)), ((640, 480), 1024, None)],
)
def test_lores_size(main: tuple[int, int], side: int, lores: tuple[int, int] | None) -> None:
    assert lores_size(*main, side) == lores
