"""A photo file read and decoded, for the CLIs, the benches and the tests.

The file is read by :func:`clockface.files.read_bytes` (size-checked, one-line errors
that name it) and decoded by :func:`recognition.images.decode_image`. This is the one
module of recognition that opens a file, on behalf of a command; the detection, encoding
and matching pipeline works on arrays only.
"""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

from clockface.files import MAX_PHOTO_BYTES, quoted, read_bytes
from recognition.images import MAX_PIXELS, decode_image


def read_image(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_PHOTO_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> npt.NDArray[np.uint8]:
    """Read and decode a photo into an (H, W, 3) RGB uint8 array.

    Raises InputFileError when the file cannot be read, and the ImageError subclasses of
    :func:`recognition.images.decode_image` with the file named in the message.
    """
    data = read_bytes(path, max_bytes=max_bytes, what="photo")
    return decode_image(data, max_pixels=max_pixels, subject=f"photo {quoted(path)}")
