"""Tests for recognition.images (decoding, downscaling) and clockface.files (reading)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from clockface.errors import (
    ClockfaceError,
    ImageError,
    ImageTooLargeError,
    InputFileError,
    NotAnImageError,
    TruncatedImageError,
)
from clockface.files import read_bytes
from recognition.images import MAX_PIXELS, decode_image, downscale
from recognition.photos import read_image
from tests.helpers.shared_faces import FACES

RED = (220, 20, 20)
BLUE = (20, 20, 220)


# --- helpers -------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    """Save ``image`` in ``fmt`` to bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with a correct CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` 8-bit grey pixels but holds no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


def two_halves(width: int = 40, height: int = 20, mode: str = "RGB") -> Image.Image:
    """An image whose left half is RED and right half BLUE."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image.convert(mode)


def assert_rgb_array(array: npt.NDArray[np.uint8], height: int, width: int) -> None:
    """The decoder's contract: a new, writable, C-contiguous (H, W, 3) uint8 array."""
    assert array.shape == (height, width, 3)
    assert array.dtype == np.uint8
    assert array.flags.c_contiguous
    assert array.flags.writeable


def assert_close(pixel: npt.NDArray[np.uint8], expected: tuple[int, int, int], tol: int) -> None:
    """``pixel`` is within ``tol`` of ``expected`` on every channel."""
    difference = np.abs(pixel.astype(int) - np.array(expected))
    assert difference.max() <= tol, f"{pixel.tolist()} is not close to {expected}"


def assert_message(err: BaseException, *words: str) -> None:
    """The message is one non-empty line that contains every one of ``words``."""
    message = str(err)
    assert message.strip()
    assert "\n" not in message and "\r" not in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


# --- decoding: every mode and format ---------------------------------------------------


def test_jpeg_decodes_to_rgb() -> None:
    array = decode_image(encode(two_halves(), "JPEG", quality=95))
    assert_rgb_array(array, 20, 40)
    assert_close(array[10, 5], RED, 12)
    assert_close(array[10, 35], BLUE, 12)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("GIF", {}),
    ],
)
def test_lossless_formats_decode_exactly(fmt: str, options: dict[str, Any]) -> None:
    source = two_halves()
    array = decode_image(encode(source, fmt, **options))
    assert_rgb_array(array, 20, 40)
    np.testing.assert_array_equal(array, np.asarray(source))


def test_rgba_alpha_is_composited_onto_white() -> None:
    source = Image.new("RGBA", (4, 1))
    source.putpixel((0, 0), (255, 0, 0, 255))  # opaque red stays red
    source.putpixel((1, 0), (0, 0, 255, 0))  # fully transparent becomes white
    source.putpixel((2, 0), (0, 0, 0, 128))  # half-transparent black becomes mid grey
    source.putpixel((3, 0), (0, 200, 0, 255))
    array = decode_image(encode(source, "PNG"))
    assert_rgb_array(array, 1, 4)
    assert array[0, 0].tolist() == [255, 0, 0]
    assert array[0, 1].tolist() == [255, 255, 255]
    assert_close(array[0, 2], (127, 127, 127), 1)
    assert array[0, 3].tolist() == [0, 200, 0]


def test_la_alpha_is_composited_onto_white() -> None:
    source = Image.new("LA", (2, 1))
    source.putpixel((0, 0), (100, 255))
    source.putpixel((1, 0), (0, 0))
    array = decode_image(encode(source, "PNG"))
    assert_rgb_array(array, 1, 2)
    assert array[0].tolist() == [[100, 100, 100], [255, 255, 255]]


def test_greyscale_is_repeated_into_three_channels() -> None:
    array = decode_image(encode(Image.new("L", (3, 2), 77), "PNG"))
    assert_rgb_array(array, 2, 3)
    assert (array == 77).all()


def test_palette_without_transparency() -> None:
    source = Image.new("P", (2, 1))
    source.putpalette([10, 20, 30, 200, 100, 50] + [0, 0, 0] * 254)
    source.putpixel((1, 0), 1)
    array = decode_image(encode(source, "PNG"))
    assert array[0].tolist() == [[10, 20, 30], [200, 100, 50]]


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency(fmt: str) -> None:
    source = Image.new("P", (2, 1))
    source.putpalette([0, 0, 0, 200, 100, 50] + [0, 0, 0] * 254)
    source.putpixel((1, 0), 1)
    array = decode_image(encode(source, fmt, transparency=0))
    assert array[0].tolist() == [[255, 255, 255], [200, 100, 50]]


def test_palette_with_alpha_palette() -> None:
    source = Image.new("P", (2, 1))
    source.putpalette([0, 0, 0, 0, 200, 100, 50, 255] + [0, 0, 0, 255] * 254, "RGBA")
    source.putpixel((1, 0), 1)
    array = decode_image(encode(source, "PNG"))
    assert array[0].tolist() == [[255, 255, 255], [200, 100, 50]]


def test_16_bit_greyscale_is_scaled_to_8_bits() -> None:
    source = Image.new("I;16", (3, 1))
    for x, value in enumerate((0, 32896, 65535)):
        source.putpixel((x, 0), value)
    data = encode(source, "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "I;16"  # what Pillow hands the decoder
    array = decode_image(data)
    assert_rgb_array(array, 1, 3)
    assert array[0, :, 0].tolist() == [0, 128, 255]
    assert (array == array[:, :, :1]).all()


def test_32_bit_integer_greyscale() -> None:
    wide = Image.new("I", (2, 1))
    wide.putpixel((1, 0), 65535)
    assert decode_image(encode(wide, "TIFF"))[0, :, 0].tolist() == [0, 255]
    narrow = Image.new("I", (2, 1), 200)  # values that already fit 8 bits are kept
    assert decode_image(encode(narrow, "TIFF"))[0, :, 0].tolist() == [200, 200]


def test_cmyk_jpeg() -> None:
    data = encode(Image.new("CMYK", (8, 8), (0, 255, 0, 0)), "JPEG", quality=95)
    array = decode_image(data)
    assert_rgb_array(array, 8, 8)
    assert_close(array[4, 4], (255, 0, 255), 8)  # no cyan, full magenta: magenta


def test_one_bit() -> None:
    source = Image.new("1", (2, 1))
    source.putpixel((1, 0), 1)
    array = decode_image(encode(source, "PNG"))
    assert array[0].tolist() == [[0, 0, 0], [255, 255, 255]]


def exif_jpeg(orientation: int) -> bytes:
    """A 40 wide, 20 tall JPEG (left half RED) whose EXIF asks for ``orientation``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(two_halves(), "JPEG", quality=95, exif=exif)


def test_exif_orientation_6_rotates_clockwise() -> None:
    array = decode_image(exif_jpeg(6))
    assert_rgb_array(array, 40, 20)  # transposed: 40 rows
    assert_close(array[5, 10], RED, 16)  # the left half is now on top
    assert_close(array[35, 10], BLUE, 16)


def test_exif_orientation_8_rotates_anticlockwise() -> None:
    array = decode_image(exif_jpeg(8))
    assert_rgb_array(array, 40, 20)
    assert_close(array[5, 10], BLUE, 16)  # the left half is now at the bottom
    assert_close(array[35, 10], RED, 16)


def test_exif_orientation_3_rotates_half_a_turn() -> None:
    array = decode_image(exif_jpeg(3))
    assert_rgb_array(array, 20, 40)
    assert_close(array[10, 5], BLUE, 16)
    assert_close(array[10, 35], RED, 16)


def test_exif_orientation_1_changes_nothing() -> None:
    array = decode_image(exif_jpeg(1))
    assert_rgb_array(array, 20, 40)
    assert_close(array[10, 5], RED, 16)


def test_animated_gif_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (6, 4), colour) for colour in (RED, BLUE, (20, 220, 20))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    with Image.open(io.BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 3
    array = decode_image(data)
    assert_rgb_array(array, 4, 6)
    assert (array == RED).all()


def test_multi_page_tiff_gives_the_first_page() -> None:
    pages = [Image.new("RGB", (5, 3), RED), Image.new("RGB", (7, 2), BLUE)]
    array = decode_image(encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]))
    assert_rgb_array(array, 3, 5)
    assert (array == RED).all()


def test_result_is_a_new_array_each_time() -> None:
    data = encode(two_halves(), "PNG")
    first = decode_image(data)
    first[:] = 0
    assert decode_image(data)[10, 5].tolist() == list(RED)


def test_decoding_leaves_pillow_globals_alone() -> None:
    before = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS)
    with pytest.raises(TruncatedImageError):
        decode_image(encode(two_halves(), "PNG")[:60])
    decode_image(exif_jpeg(6))
    assert before == (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_refused_even_when_pillow_is_told_to_accept_them(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``import face_recognition`` sets LOAD_TRUNCATED_IMAGES process-wide; we don't care."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    rng = np.random.default_rng(5)
    data = encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), fmt)
    with pytest.raises(TruncatedImageError):
        decode_image(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # put back as it was


@pytest.mark.faces
def test_shared_rgba_photo_decodes_to_rgb() -> None:
    path = FACES / "odd" / "rgba_32bit.png"
    if not path.is_file():
        pytest.skip(f"shared face photos not found: {path} is missing (CI has ../shared/faces)")
    with Image.open(path) as original:
        assert original.mode == "RGBA"
        pixels = np.asarray(original.convert("RGBA"))
    array = decode_image(path.read_bytes())
    assert_rgb_array(array, pixels.shape[0], pixels.shape[1])
    opaque = pixels[:, :, 3] == 255
    np.testing.assert_array_equal(array[opaque], pixels[:, :, :3][opaque])


# --- decoding: refusals ----------------------------------------------------------------


def test_empty_bytes() -> None:
    with pytest.raises(NotAnImageError) as caught:
        decode_image(b"")
    assert_message(caught.value, "empty")


@pytest.mark.parametrize(
    "data",
    [
        b"Name,Arrival\nAnn,08:59\n",
        bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)),
        b"\x00" * 100,
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        # EPS: Pillow would run Ghostscript on it; we never offer it to that plugin
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
        b"8BPS" + bytes(40),  # Photoshop
    ],
    ids=["text", "random", "zeros", "svg", "eps", "psd"],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(NotAnImageError) as caught:
        decode_image(data)
    assert_message(caught.value, "not an image", "JPEG", "PNG")
    assert isinstance(caught.value, ValueError)
    assert caught.value.__cause__ is not None


def test_heic_gets_a_hint() -> None:
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    with pytest.raises(NotAnImageError) as caught:
        decode_image(data)
    assert_message(caught.value, "HEIC", "JPEG")


def test_pdf_gets_a_hint() -> None:
    with pytest.raises(NotAnImageError) as caught:
        decode_image(b"%PDF-1.7\n" + bytes(64))
    assert_message(caught.value, "PDF")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"])
def test_truncated_in_half(fmt: str) -> None:
    rng = np.random.default_rng(3)
    noisy = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = encode(noisy, fmt)
    with pytest.raises(TruncatedImageError) as caught:
        decode_image(data[: len(data) // 2])
    assert_message(caught.value, "cut short or corrupt")
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_only_the_header_left(fmt: str) -> None:
    with pytest.raises(TruncatedImageError) as caught:
        decode_image(encode(two_halves(), fmt)[:20])
    message = str(caught.value)
    assert_message(caught.value, "photo again")
    assert "cut short or corrupt" in message or f"looks like a {fmt}" in message


def test_png_with_a_bad_header_checksum() -> None:
    data = bytearray(encode(two_halves(), "PNG"))
    data[29] ^= 0xFF  # inside the IHDR CRC
    with pytest.raises(TruncatedImageError):
        decode_image(bytes(data))


def test_png_with_corrupt_pixel_data() -> None:
    data = bytearray(encode(Image.new("RGB", (64, 64), RED), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start + 2 : start + 40] = bytes(38)  # wreck the zlib stream
    with pytest.raises(TruncatedImageError):
        decode_image(bytes(data))


@pytest.mark.parametrize(("width", "height"), [(0, 5), (5, 0), (0, 0)])
def test_zero_size_image(width: int, height: int) -> None:
    with pytest.raises(TruncatedImageError) as caught:
        decode_image(png_header_only(width, height))
    assert_message(caught.value, "PNG", "damaged")


def test_zero_size_gif() -> None:
    data = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    descriptor = data.index(b",")
    data[6:10] = bytes(4)  # screen 0x0
    data[descriptor + 5 : descriptor + 9] = bytes(4)  # frame 0x0
    with pytest.raises(TruncatedImageError):
        decode_image(bytes(data))


def test_header_claiming_too_many_pixels_is_refused_before_decoding() -> None:
    # No pixel data at all: only the header was read, or this would be "truncated".
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(png_header_only(10_000, 6_000))
    assert_message(caught.value, "too large", "10000x6000", "60,000,000", "50,000,000")


def test_header_over_pillows_own_limit() -> None:
    # 400 megapixels: Pillow raises DecompressionBombError itself, reported as ours.
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(png_header_only(20_000, 20_000))
    assert_message(caught.value, "too large", "400,000,000")
    assert caught.value.__cause__ is not None


@pytest.fixture(scope="module")
def bomb_png() -> bytes:
    """A real 12000x12000 (144 megapixel) 1-bit PNG of zeros: a few kilobytes."""
    return encode(Image.new("1", (12_000, 12_000)), "PNG")


def test_real_decompression_bomb(bomb_png: bytes) -> None:
    # Over Pillow's warning threshold (89.5 megapixels): its DecompressionBombWarning
    # must not escape (pytest turns warnings into errors here) and must not mask ours.
    assert len(bomb_png) < 100_000
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(bomb_png)
    assert_message(caught.value, "12000x12000", "144,000,000")


def test_small_pixel_limit() -> None:
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(encode(Image.new("RGB", (200, 200)), "PNG"), max_pixels=10_000)
    assert_message(caught.value, "200x200", "10,000")
    exactly = decode_image(encode(Image.new("RGB", (100, 100)), "PNG"), max_pixels=10_000)
    assert_rgb_array(exactly, 100, 100)


def test_default_pixel_limit() -> None:
    assert MAX_PIXELS == 50_000_000


def test_max_pixels_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        decode_image(b"x", max_pixels=0)


def test_subject_names_the_input() -> None:
    with pytest.raises(NotAnImageError) as caught:
        decode_image(b"hello", subject="upload 'ann.png'")
    assert str(caught.value).startswith("upload 'ann.png' is not an image")


def test_all_image_errors_share_the_root() -> None:
    for cls in (NotAnImageError, TruncatedImageError, ImageTooLargeError):
        assert issubclass(cls, ImageError)
        assert issubclass(cls, ClockfaceError)
        assert issubclass(cls, ValueError)


def _valid_images() -> list[bytes]:
    """Small valid images in every format, as seeds for mutation."""
    source = two_halves(16, 12)
    return [
        encode(source, "JPEG"),
        encode(source.convert("RGBA"), "PNG"),
        encode(source.convert("P"), "GIF"),
        encode(source, "BMP"),
        encode(source, "TIFF"),
        encode(source, "WEBP"),
        encode(source.convert("L"), "PNG"),
        exif_jpeg(6),
    ]


def _decode_or_refuse(data: bytes) -> None:
    """Decoding either works and keeps its contract or raises an ImageError."""
    try:
        array = decode_image(data, max_pixels=1_000_000)
    except ImageError as err:
        assert_message(err)
    else:
        assert array.ndim == 3 and array.shape[2] == 3
        assert array.dtype == np.uint8 and array.flags.c_contiguous
        assert array.shape[0] * array.shape[1] <= 1_000_000


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_only_raise_image_errors(data: bytes) -> None:
    _decode_or_refuse(data)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.sampled_from(_valid_images()),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    keep=st.floats(0.0, 1.0),
)
def test_damaged_images_only_raise_image_errors(
    seed: bytes, edits: list[tuple[int, int]], keep: float
) -> None:
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    _decode_or_refuse(bytes(data[: max(1, round(len(data) * keep))]))


# --- downscale ---------------------------------------------------------------------------


def test_downscale_leaves_small_images_alone() -> None:
    image = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    copy = image.copy()
    for max_side in (5, 6, 1000):
        small, scale = downscale(image, max_side)
        assert small is image
        assert scale == 1.0
    np.testing.assert_array_equal(image, copy)


def test_downscale_shrinks_the_longer_side() -> None:
    image = np.full((1000, 500, 3), 90, dtype=np.uint8)
    small, scale = downscale(image, 100)
    assert small.shape == (100, 50, 3)
    assert scale == pytest.approx(0.1)
    assert small.dtype == np.uint8 and small.flags.c_contiguous
    assert (small == 90).all()
    assert not np.shares_memory(small, image)


def test_downscale_wide_image() -> None:
    small, scale = downscale(np.zeros((300, 1200, 3), dtype=np.uint8), 400)
    assert small.shape == (100, 400, 3)
    assert scale == pytest.approx(1 / 3)


def test_downscale_averages_pixels() -> None:
    board = np.zeros((4, 4, 3), dtype=np.uint8)
    board[::2, ::2] = 255
    board[1::2, 1::2] = 255
    small, scale = downscale(board, 2)
    assert scale == 0.5
    assert ((small >= 127) & (small <= 128)).all()  # INTER_AREA: each 2x2 block's mean


def test_downscale_keeps_the_channel_layout() -> None:
    grey, _ = downscale(np.zeros((40, 20), dtype=np.uint8), 10)
    assert grey.shape == (10, 5)
    single, _ = downscale(np.zeros((40, 20, 1), dtype=np.uint8), 10)
    assert single.shape == (10, 5, 1)


def test_downscale_takes_non_contiguous_views() -> None:
    image = np.zeros((200, 400, 3), dtype=np.uint8)[:, ::2]
    assert not image.flags.c_contiguous
    small, scale = downscale(image, 100)
    assert small.shape == (100, 100, 3) and small.flags.c_contiguous
    assert scale == 0.5


def test_downscale_very_thin_image_keeps_one_row() -> None:
    small, _ = downscale(np.zeros((3, 1000, 3), dtype=np.uint8), 100)
    assert small.shape == (1, 100, 3)


def test_downscale_refuses_a_silly_size() -> None:
    with pytest.raises(ValueError, match="max_side"):
        downscale(np.zeros((4, 4, 3), dtype=np.uint8), 0)


@settings(max_examples=100, deadline=None)
@given(height=st.integers(1, 300), width=st.integers(1, 300), max_side=st.integers(1, 300))
def test_downscale_fits_and_reports_its_scale(height: int, width: int, max_side: int) -> None:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    small, scale = downscale(image, max_side)
    assert max(small.shape[:2]) == min(max(height, width), max_side)
    assert 0 < scale <= 1.0
    assert abs(small.shape[0] - height * scale) <= 1
    assert abs(small.shape[1] - width * scale) <= 1


# --- reading files -----------------------------------------------------------------------


def test_read_bytes_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello")
    assert read_bytes(path, max_bytes=5) == b"hello"
    assert read_bytes(str(path), max_bytes=100, what="note") == b"hello"


def test_read_bytes_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    with pytest.raises(InputFileError) as caught:
        read_bytes(path, max_bytes=100, what="photo")
    assert str(caught.value) == f"cannot read photo {str(path)!r}: no such file"
    assert isinstance(caught.value, OSError)
    assert isinstance(caught.value, ClockfaceError)
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_read_bytes_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "no-such-folder" / "x.jpg"
    with pytest.raises(InputFileError) as caught:
        read_bytes(path, max_bytes=100)
    assert_message(caught.value, "x.jpg", "no such file")


def test_read_bytes_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"")
    with pytest.raises(InputFileError) as caught:
        read_bytes(tmp_path / "plain" / "x.jpg", max_bytes=100)
    assert_message(caught.value, "x.jpg", "no such file")


def test_read_bytes_directory(tmp_path: Path) -> None:
    with pytest.raises(InputFileError) as caught:
        read_bytes(tmp_path, max_bytes=100, what="photo")
    assert_message(caught.value, "cannot read photo", tmp_path.name, "folder")


def test_read_bytes_too_big(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(bytes(101))
    assert len(read_bytes(path, max_bytes=101)) == 101
    with pytest.raises(InputFileError) as caught:
        read_bytes(path, max_bytes=100, what="photo")
    assert_message(caught.value, "big.jpg", "101 bytes", "100 byte")


def test_read_bytes_too_big_in_mebibytes(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    with path.open("wb") as file:
        file.truncate(3 * 2**20)  # sparse: no real disk use
    with pytest.raises(InputFileError) as caught:
        read_bytes(path, max_bytes=2**20)
    assert_message(caught.value, "huge.jpg", "3.0 MiB", "1.0 MiB")


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions only")
def test_read_bytes_permission_denied(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root, which reads files whatever their permissions")
    path = tmp_path / "secret.jpg"
    path.write_bytes(b"x")
    path.chmod(0)
    try:
        with pytest.raises(InputFileError) as caught:
            read_bytes(path, max_bytes=100)
    finally:
        path.chmod(0o600)
    assert_message(caught.value, "secret.jpg", "permission denied")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermissionError(13, "Permission denied"), "permission denied"),
        (OSError(5, "Input/output error"), "input/output error"),
    ],
)
def test_read_bytes_open_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, reason: str
) -> None:
    # Works as root too: the failure comes from a stand-in for the built-in open().
    def failing_open(*args: object, **kwargs: object) -> None:
        raise error

    path = tmp_path / "ann.jpg"
    path.write_bytes(b"x")
    monkeypatch.setattr("clockface.files.open", failing_open, raising=False)
    with pytest.raises(InputFileError) as caught:
        read_bytes(path, max_bytes=100, what="photo")
    assert str(caught.value) == f"cannot read photo {str(path)!r}: {reason}"
    assert caught.value.__cause__ is error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_read_bytes_refuses_a_pipe(tmp_path: Path) -> None:
    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)
    with pytest.raises(InputFileError) as caught:  # and does not block reading it
        read_bytes(path, max_bytes=100)
    assert_message(caught.value, "pipe.jpg", "not a regular file")


def test_read_bytes_odd_name_stays_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "two\nlines.jpg"
    with pytest.raises(InputFileError) as caught:
        read_bytes(path, max_bytes=100)
    assert_message(caught.value, "lines.jpg", "no such file")


def test_read_image_reads_a_photo(tmp_path: Path) -> None:
    path = tmp_path / "ann.jpg"
    path.write_bytes(exif_jpeg(6))
    array = read_image(path)
    assert_rgb_array(array, 40, 20)
    assert_close(array[5, 10], RED, 16)


def test_read_image_missing(tmp_path: Path) -> None:
    with pytest.raises(InputFileError) as caught:
        read_image(tmp_path / "x.jpg")
    assert_message(caught.value, "cannot read photo", "x.jpg", "no such file")


def test_read_image_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    path.write_text("this is not a photo\n")
    with pytest.raises(NotAnImageError) as caught:
        read_image(path)
    assert_message(caught.value, f"photo {str(path)!r} is not an image", "JPEG")


def test_read_image_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(NotAnImageError) as caught:
        read_image(path)
    assert_message(caught.value, "empty.png", "empty")


def test_read_image_truncated(tmp_path: Path) -> None:
    data = encode(Image.new("RGB", (64, 64), RED), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedImageError) as caught:
        read_image(path)
    assert_message(caught.value, "photo", "cut.jpg", "cut short")


def test_read_image_too_many_pixels(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(20_000, 20_000))
    with pytest.raises(ImageTooLargeError) as caught:
        read_image(path)
    assert_message(caught.value, "photo", "bomb.png", "too large")
    path.write_bytes(encode(Image.new("L", (200, 200)), "PNG"))
    with pytest.raises(ImageTooLargeError):
        read_image(path, max_pixels=10_000)


def test_read_image_too_many_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(encode(Image.new("RGB", (64, 64), RED), "PNG"))
    with pytest.raises(InputFileError) as caught:
        read_image(path, max_bytes=100)
    assert_message(caught.value, "cannot read photo", "big.png", "over the")
