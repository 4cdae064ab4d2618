"""Turn image bytes into RGB arrays, and shrink them for detection.

Pure: takes bytes, touches no files (``clockface.files`` reads them). Every way the
bytes can be unusable ends in an :class:`~clockface.errors.ImageError` subclass whose
message is one line for a person: what is wrong and what to do.

Only the formats in :data:`FORMATS` are tried, so Pillow never hands a file to a
plugin that shells out (EPS runs Ghostscript) or that we have not tested. The pixel
count is checked from the header, before any pixel data is decoded. Pillow's own
warnings about odd files are silenced while decoding (locally, with
``warnings.catch_warnings``, which is process-wide while it is active): the outcome is
a clean array or an error, never a warning.

Pillow reads one process-wide switch, ``ImageFile.LOAD_TRUNCATED_IMAGES``, that makes
it decode truncated files silently, and ``import face_recognition`` turns it on.
:func:`decode_image` turns it off for the length of its own decoding (under a lock) and
puts it back afterwards, so a truncated photo is refused whatever else was imported.
"""

from __future__ import annotations

import io
import re
import threading
import warnings

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from clockface.errors import (
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    TruncatedImageError,
)

MAX_PIXELS = 50_000_000
"""Default pixel limit: a 50-megapixel phone photo is legitimate, a bomb is not."""

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""The Pillow formats :func:`decode_image` tries; anything else is not an image."""

_FORMAT_NAMES = "JPEG, PNG, WebP, GIF, BMP or TIFF"
_SAVE_AS = "save or export it as JPEG or PNG and try again"
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_16_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_STRICT_LOCK = threading.Lock()  # guards Pillow's process-wide truncation switch


def decode_image(
    data: bytes, *, max_pixels: int = MAX_PIXELS, subject: str = "the data"
) -> npt.NDArray[np.uint8]:
    """Decode image bytes into a new C-contiguous RGB uint8 array of shape (H, W, 3).

    Applies the EXIF orientation, composites transparency onto white, maps greyscale,
    16-bit, palette, CMYK and 1-bit images to RGB, and takes the first frame of an
    animation. ``subject`` names the input in error messages, e.g. ``"photo 'ann.jpg'"``.
    Pillow's own bomb limit (twice ``Image.MAX_IMAGE_PIXELS``) still applies on top of
    ``max_pixels``.

    Raises NotAnImageError (empty, unknown format, unusable colour mode),
    TruncatedImageError (cut short, corrupt, no pixels) or ImageTooLargeError.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be at least 1, got {max_pixels}")
    if not data:
        raise NotAnImageError(f"{subject} is empty (0 bytes); choose the photo again")
    with _STRICT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        was = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            return _decode(data, max_pixels, subject)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = was


def _decode(data: bytes, max_pixels: int, subject: str) -> npt.NDArray[np.uint8]:
    with _open(data, max_pixels, subject) as image:
        try:
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return _to_rgb(image, subject)
        except ImageError:
            raise
        except Exception as err:  # Pillow's decoders raise many types on bad data
            raise TruncatedImageError(_corrupt(subject, err)) from err


def downscale(image: npt.NDArray[np.uint8], max_side: int) -> tuple[npt.NDArray[np.uint8], float]:
    """Shrink ``image`` so its longer side is at most ``max_side``; return it and the scale.

    The scale is small/original: divide coordinates found on the small image by it to
    map them back. An image already small enough comes back as the same object, with
    scale 1.0; otherwise the result is a new C-contiguous array (area interpolation).
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)
    # cv2 drops a trailing channel axis of length 1; put the input's layout back.
    small = np.ascontiguousarray(small, dtype=np.uint8).reshape(size[1], size[0], *image.shape[2:])
    return small, scale


def _open(data: bytes, max_pixels: int, subject: str) -> Image.Image:
    """Open lazily (header only) and refuse unknown formats, bombs and empty images."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as err:
        match = re.search(r"\((\d+) pixels\)", str(err))
        pixels = int(match.group(1)) if match else None
        raise ImageTooLargeError(_too_large(subject, pixels, max_pixels)) from err
    except UnidentifiedImageError as err:
        claimed = _signature(data)
        if claimed:  # Pillow refused the header of a format it reads: zero size, bad CRC...
            raise TruncatedImageError(
                f"{subject} looks like a {claimed} image but its header is damaged; "
                "copy or export the photo again"
            ) from err
        raise NotAnImageError(_not_an_image(subject, data)) from err
    except Exception as err:  # a known format whose header is cut short or damaged
        raise TruncatedImageError(_corrupt(subject, err)) from err
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageTooLargeError(_too_large(subject, width * height, max_pixels, image.size))
    if width < 1 or height < 1:
        image.close()
        raise TruncatedImageError(
            f"{subject} has no pixels ({width}x{height}), so it is corrupt; export the photo again"
        )
    return image


def _to_rgb(image: Image.Image, subject: str) -> npt.NDArray[np.uint8]:
    """Convert a loaded image of any mode to a new (H, W, 3) uint8 array."""
    if image.mode in _16_BIT_MODES or image.mode in ("I", "F"):
        values = np.asarray(image).astype(np.float64)
        if image.mode in _16_BIT_MODES or values.max(initial=0.0) > 255:
            values = np.clip(values, 0, 65535) * (255 / 65535)  # a 16-bit range
        grey = np.rint(np.clip(np.nan_to_num(values), 0, 255)).astype(np.uint8)
        return np.repeat(grey[:, :, np.newaxis], 3, axis=2)
    try:
        if image.has_transparency_data:
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
        else:
            rgb = image.convert("RGB")
    except ValueError as err:  # a colour mode Pillow cannot convert, e.g. LAB
        raise NotAnImageError(
            f"{subject} uses the {image.mode} colour mode, which clockface cannot convert; "
            "save it as an RGB JPEG and try again"
        ) from err
    return np.ascontiguousarray(np.array(rgb, dtype=np.uint8))


def _signature(data: bytes) -> str | None:
    """The format of :data:`FORMATS` whose signature the data starts with, if any."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WebP"
    return None


def _not_an_image(subject: str, data: bytes) -> str:
    """Say what the data looks like when no format we read recognises it."""
    brand = data[8:12] if data[4:8] == b"ftyp" else b""
    if brand in _HEIF_BRANDS:
        found = "it is a HEIC photo, as iPhones take by default"
    elif brand in _AVIF_BRANDS:
        found = "it is an AVIF image"
    elif data.startswith(b"%PDF"):
        found = "it is a PDF document"
    else:
        found = f"expected {_FORMAT_NAMES}"
    return f"{subject} is not an image clockface can read ({found}); {_SAVE_AS}"


def _corrupt(subject: str, err: BaseException) -> str:
    """Message for data that is cut short or damaged, with Pillow's reason on one line."""
    reason = " ".join(str(err).split())[:120] or type(err).__name__
    return f"{subject} is cut short or corrupt ({reason}); copy or export the photo again"


def _too_large(
    subject: str, pixels: int | None, max_pixels: int, size: tuple[int, int] | None = None
) -> str:
    """Message for an image with more pixels than allowed."""
    dims = f"{size[0]}x{size[1]} = " if size else ""
    count = f"{dims}{pixels:,} pixels" if pixels else "too many pixels"
    return (
        f"{subject} is too large ({count}, the limit is {max_pixels:,}); "
        "resize it to a smaller photo and try again"
    )
