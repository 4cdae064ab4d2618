"""Values the stores check and convert: ids, names, numbers, zones, UTC times, templates.

Shared by the kiosk store (``kiosk/store/``) and the central store
(``central/store.py``) so both refuse and store the same things the same way. Each
check raises :class:`~clockface.errors.StoreValueError` with one line naming ``what``.
"""

from __future__ import annotations

import getpass
import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from clockface.errors import StoreError, StoreValueError

EMBEDDING_DIM = 128
"""The length of a face template: dlib's face descriptor (recognition makes them)."""
FloatArray = npt.NDArray[np.float32]
TEMPLATE_BYTES = EMBEDDING_DIM * 4  # float32
TEMPLATE_DTYPE = np.dtype("<f4")  # little-endian on disk, whatever the machine
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
"""The grammar of person ids, kiosk names and admin names (match it whole)."""
ID_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def system_clock() -> datetime:
    return datetime.now(UTC)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


def check_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise StoreValueError(f"{what} must be a non-empty string, not {value!r}")
    if value != value.strip():
        raise StoreValueError(f"{what} must not start or end with spaces: {value!r}")
    return value


def check_number(value: object, what: str, *, allow_inf: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise StoreValueError(f"{what} must be a number, not {value!r}")
    number = float(value)
    if math.isnan(number) or number < 0 or (math.isinf(number) and not allow_inf):
        raise StoreValueError(f"{what} must be a finite number of zero or more, not {number!r}")
    return number


def check_signed(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise StoreValueError(f"{what} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise StoreValueError(f"{what} must be a finite number, not {number!r}")
    return number


def one_line(value: object, what: str) -> str:
    """Text on one line (runs of white space, newlines included, become one space)."""
    if not isinstance(value, str) or not value.strip():
        raise StoreValueError(f"{what} must be a non-empty string, not {value!r}")
    return " ".join(value.split())


def zone_info(tz: object) -> ZoneInfo:
    if not isinstance(tz, str) or not tz:
        raise StoreValueError(f"tz must be an IANA time zone name, not {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise StoreValueError(
            f"unknown time zone {tz!r}: give an IANA name such as 'Europe/Paris'"
        ) from err


def as_utc(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise StoreValueError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 UTC, microseconds, Z: ``2024-05-01T07:57:03.120000Z``."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def day_window(day: date) -> tuple[str, str]:
    """UTC bounds, as stored text, that hold every instant of ``day`` in any zone.

    Zones lie between UTC-12 and UTC+14, so the day before to the day after will do.
    """
    try:
        lo = iso_utc(datetime.combine(day - timedelta(days=1), time(), UTC))
    except OverflowError:
        lo = ""
    try:
        hi = iso_utc(datetime.combine(day + timedelta(days=2), time(), UTC))
    except OverflowError:
        hi = "A"  # after every digit
    return lo, hi


def from_blobs(blobs: list[bytes]) -> FloatArray:
    if any(len(blob) != TEMPLATE_BYTES for blob in blobs):
        raise StoreError("a stored template is not 512 bytes: the database is damaged")
    flat = np.frombuffer(b"".join(blobs), dtype=TEMPLATE_DTYPE)
    out: FloatArray = flat.reshape(-1, EMBEDDING_DIM).astype(np.float32)  # native, writable
    return out
