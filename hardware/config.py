"""The ``[hardware]`` table of kiosk.toml: the Raspberry Pi camera and the GPIO outputs.

    [hardware]
    camera_focus = 1.2        # metres to the faces: Camera Module 3 focuses there
    green_led = 17            # BCM numbers (GPIO17), as gpiozero names pins
    red_led = 27
    buzzer = 22
    relay = ""                # "" = not connected

Only ``[hardware]`` is read here (other tables belong to other parts); an unknown key
in it, a wrong type or an impossible value is refused with one line naming the file and
the key. ``CLOCKFACE_HARDWARE_<KEY>`` in the environment overrides a key. Every output
is optional: with no pin configured, gpiozero is never imported.

:meth:`HardwareConfig.open_source` opens the camera a source spec names, with the
camera settings from this table when the spec is ``picamera``.
:meth:`HardwareConfig.open_outputs` opens the configured LEDs, buzzer and relay.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clockface.config_values import read_table, to_toml, warn_unknown
from clockface.errors import ConfigError

if TYPE_CHECKING:
    from hardware.frames import FrameSource
    from hardware.gpio import GpioOutputs

ENV_PREFIX = "CLOCKFACE_HARDWARE_"
TABLE = "hardware"

Pin = int | str
"""A GPIO pin as gpiozero names it: a BCM number (17) or a name ("GPIO17", "BOARD11")."""


@dataclass(frozen=True)
class HardwareConfig:
    """The Pi camera's settings and the pins of the optional outputs (None: not there)."""

    camera_number: int = 0
    camera_width: int = 1280
    camera_height: int = 720
    camera_fps: float = 30.0
    camera_focus: float | None = None  # metres; None: continuous autofocus
    camera_hfov_deg: float = 66.0
    camera_rotate_180: bool = False
    camera_timeout_seconds: float = 5.0
    green_led: Pin | None = None
    red_led: Pin | None = None
    buzzer: Pin | None = None
    relay: Pin | None = None
    led_active_high: bool = True
    buzzer_active_high: bool = True
    relay_active_high: bool = True
    relay_seconds: float = 3.0

    def __post_init__(self) -> None:
        for name in ("camera_width", "camera_height"):
            value = getattr(self, name)
            if not 64 <= value <= 4608 or value % 2:
                raise ValueError(f"{name} must be an even number of pixels, 64 to 4608")
        if self.camera_number < 0:
            raise ValueError(f"camera_number must be 0 or more, not {self.camera_number}")
        if not 1 <= self.camera_fps <= 120:
            raise ValueError(f"camera_fps must be 1 to 120, not {self.camera_fps:g}")
        if self.camera_focus is not None and not 0.05 <= self.camera_focus <= 100:
            raise ValueError(
                f'camera_focus must be "auto" or a distance of 0.05 to 100 metres, '
                f"not {self.camera_focus:g}"
            )
        if not 20 <= self.camera_hfov_deg <= 170:
            raise ValueError(
                f"camera_hfov_deg must be 20 to 170 degrees, not {self.camera_hfov_deg:g}"
            )
        if not 0.5 <= self.camera_timeout_seconds <= 120:
            raise ValueError("camera_timeout_seconds must be 0.5 to 120")
        if not 0.1 <= self.relay_seconds <= 60:
            raise ValueError(f"relay_seconds must be 0.1 to 60, not {self.relay_seconds:g}")
        seen: dict[str, str] = {}
        for name in OUTPUTS:
            pin = getattr(self, name)
            if pin is None:
                continue
            if isinstance(pin, int) and not 0 <= pin <= 53:
                raise ValueError(f"{name} must be a GPIO number 0 to 53, not {pin}")
            key = _pin_key(pin)
            if key in seen:
                raise ValueError(f"{seen[key]} and {name} are both on pin {pin}")
            seen[key] = name

    @property
    def outputs(self) -> dict[str, Pin]:
        """The configured outputs by key (``green_led``, ...), with their pins."""
        return {name: pin for name in OUTPUTS if (pin := getattr(self, name)) is not None}

    def open_source(
        self, spec: str, *, realtime: bool = False, detect_max_side: int | None = 1024
    ) -> FrameSource:
        """The source the spec names; ``picamera`` is opened with this table's settings,
        its ``lores`` stream at the detector's size (``detect_max_side``)."""
        from hardware.sources import open_source, parse_spec

        if parse_spec(spec)[0] != "picamera":
            return open_source(spec, realtime=realtime)
        from hardware.picamera import Picamera2Source

        return Picamera2Source(
            self.camera_number,
            width=self.camera_width,
            height=self.camera_height,
            fps=self.camera_fps,
            focus=self.camera_focus,
            rotate_180=self.camera_rotate_180,
            timeout=self.camera_timeout_seconds,
            detect_max_side=detect_max_side,
        )

    def open_outputs(self, *, pin_factory: object | None = None) -> GpioOutputs | None:
        """The configured LEDs, buzzer and relay, or None when no pin is configured.

        ``pin_factory`` is gpiozero's (None: its default, which
        ``GPIOZERO_PIN_FACTORY=mock`` turns into the mock pins). Raises OutputError.
        """
        if not self.outputs:
            return None
        from hardware.gpio import GpioOutputs

        return GpioOutputs(
            green_led=self.green_led,
            red_led=self.red_led,
            buzzer=self.buzzer,
            relay=self.relay,
            led_active_high=self.led_active_high,
            buzzer_active_high=self.buzzer_active_high,
            relay_active_high=self.relay_active_high,
            relay_seconds=self.relay_seconds,
            pin_factory=pin_factory,
        )


OUTPUTS = ("green_led", "red_led", "buzzer", "relay")
"""The keys that name GPIO pins."""

HELP: dict[str, str] = {
    "camera_number": 'which Raspberry Pi camera (source = "picamera"): 0 is the first '
    "(`rpicam-hello --list-cameras` lists them)",
    "camera_width": "width of the frames the kiosk gets, in pixels (the camera's ISP "
    "scales the sensor down to it)",
    "camera_height": "height of the frames, in pixels; 1280x720 fits a door at 1 to 3 m",
    "camera_fps": "frames per second the camera delivers (fewer: longer exposures in dim light)",
    "camera_focus": 'Camera Module 3: "auto" focuses continuously; a number of metres '
    "fixes the focus at that distance (where faces pass); other cameras ignore it",
    "camera_hfov_deg": "the camera's horizontal field of view in degrees (Camera Module 3: "
    "66, its Wide model: 102; a USB webcam: see its data sheet): `kiosk selftest` works "
    "out from it how far away faces are found and encoded",
    "camera_rotate_180": "true when the camera is mounted upside down",
    "camera_timeout_seconds": "seconds without a frame after which the camera counts as lost",
    "green_led": 'GPIO pin of the green LED (BCM number, e.g. 17, or "GPIO17"); "" = none',
    "red_led": 'GPIO pin of the red LED; "" = none',
    "buzzer": 'GPIO pin of an active buzzer; "" = none',
    "relay": 'GPIO pin of the door relay, pulsed on each "in"; "" = none. Before the kiosk '
    "starts and after it stops the pin is an input held only by its default pull (on a Pi 4: "
    "GPIO0-8 up, GPIO9-27 down): pick a pin and wiring that leave the door locked then",
    "led_active_high": "true when an LED lights with its pin high (LED to ground)",
    "buzzer_active_high": "true when the buzzer sounds with its pin high",
    "relay_active_high": "true when the relay unlocks with its pin high; many opto-isolated "
    "relay boards unlock on low: set false. The kiosk drives it locked from the start",
    "relay_seconds": 'how long the door stays unlocked after an "in"',
}

_DEFAULTS = HardwareConfig()


def load_hardware(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> HardwareConfig:
    """The defaults, then the file's ``[hardware]`` table (if given), then the environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path is not None:
        where = str(path)
        for name, value in _read_table(Path(path)).items():
            values[name] = _from_toml(name, value, where)
    warn_unknown(environ, ENV_PREFIX, HELP)
    for name in HELP:
        env = ENV_PREFIX + name.upper()
        if env in environ:
            values[name] = _from_env(name, environ[env], env)
    where = str(path) if path is not None else "the environment"
    try:
        return HardwareConfig(**values)
    except ValueError as err:
        raise ConfigError(f"{where}: [hardware] {err}") from None


def default_section() -> str:
    """The ``[hardware]`` table with every key at its default, each commented."""
    lines = [
        '# The Raspberry Pi camera (source = "picamera") and the optional GPIO outputs.',
        f"# {ENV_PREFIX}<KEY> in the environment overrides a key.",
        f"[{TABLE}]",
    ]
    for name, text in HELP.items():
        lines += textwrap.wrap(
            text, width=88, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False
        )
        lines.append(f"{name} = {_toml_value(name, getattr(_DEFAULTS, name))}")
    return "\n".join(lines) + "\n"


def describe(config: HardwareConfig) -> list[str]:
    """``key = value`` for every key, as in the file."""
    return [f"{name} = {_toml_value(name, getattr(config, name))}" for name in HELP]


# --------------------------------------------------------------------------- internals


def _read_table(path: Path) -> dict[str, Any]:
    return read_table(path, TABLE, HELP, command="clockface kiosk default-config")


def _kind(name: str) -> str:
    if name in OUTPUTS:
        return "pin"
    if name == "camera_focus":
        return "focus"
    return type(getattr(_DEFAULTS, name)).__name__  # bool, int, float


def _from_toml(name: str, value: object, where: str) -> object:
    kind = _kind(name)
    if kind == "pin":
        if isinstance(value, str):
            return _pin_text(value, name, where)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f'{where}: {name} must be a GPIO number, a pin name or "", not {value!r}')
    if kind == "focus":
        if isinstance(value, str) and value.strip().lower() == "auto":
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _finite(float(value), name, where)
        raise ConfigError(f'{where}: {name} must be "auto" or a number of metres, not {value!r}')
    ok = (
        (kind == "bool" and isinstance(value, bool))
        or (kind == "int" and isinstance(value, int) and not isinstance(value, bool))
        or (kind == "float" and isinstance(value, int | float) and not isinstance(value, bool))
    )
    if not ok:
        wanted = {"bool": "true or false", "int": "a whole number"}.get(kind, "a number")
        raise ConfigError(f"{where}: {name} must be {wanted}, not {value!r}")
    return _finite(float(value), name, where) if kind == "float" else value  # type: ignore[arg-type]


def _from_env(name: str, text: str, where: str) -> object:
    kind = _kind(name)
    stripped = text.strip()
    if kind == "pin":
        return int(stripped) if stripped.isdigit() else _pin_text(stripped, name, where)
    try:
        if kind == "focus":
            return None if stripped.lower() == "auto" else _finite(float(stripped), name, where)
        if kind == "bool":
            lowered = stripped.lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(text)
            return lowered in ("1", "true", "yes", "on")
        if kind == "int":
            return int(stripped)
        return _finite(float(stripped), name, where)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a valid {name}") from None


def _finite(value: float, name: str, where: str) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {name} must be a finite number, not {value!r}")
    return value


def _pin_text(text: str, name: str, where: str) -> str | None:
    """A pin name as given, or None for "" (not connected)."""
    text = text.strip()
    if not text:
        return None
    if not text.replace(":", "").replace("_", "").isalnum():
        raise ConfigError(f'{where}: {name} {text!r} is not a pin name such as "GPIO17"')
    return text


def _pin_key(pin: Pin) -> str:
    """One spelling per BCM pin, to find a pin given twice (17, "GPIO17", "BCM17")."""
    if isinstance(pin, int):
        return str(pin)
    upper = pin.upper()
    for prefix in ("GPIO", "BCM"):
        if upper.startswith(prefix) and upper[len(prefix) :].isdigit():
            return str(int(upper[len(prefix) :]))
    return upper


def _toml_value(name: str, value: object) -> str:
    if value is None:
        return '"auto"' if name == "camera_focus" else '""'
    return to_toml(value)
