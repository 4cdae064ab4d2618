"""Reading users' files for the command-line tools, with one-line errors for people.

The recognition package's pipeline never touches files; the CLIs read through here (a
photo through :func:`recognition.photos.read_image`, which decodes what this reads).
"""

from __future__ import annotations

import os
import stat

from clockface.errors import InputFileError

MAX_PHOTO_BYTES = 40 * 1024 * 1024
"""Default size limit for a photo file (40 MiB)."""


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int, what: str = "file") -> bytes:
    """Read a whole regular file of at most ``max_bytes`` bytes.

    ``what`` names the file in messages: ``cannot read photo 'x.jpg': no such file``.
    The size is checked before reading, and at most ``max_bytes + 1`` bytes are read in
    case the file grows meanwhile. Raises InputFileError.
    """
    label = f"{what} {quoted(path)}"
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise InputFileError(f"cannot read {label}: it is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):  # a pipe or device could block or never end
            raise InputFileError(f"cannot read {label}: it is not a regular file")
        if info.st_size > max_bytes:
            raise InputFileError(_too_big(label, info.st_size, max_bytes))
        with open(path, "rb") as file:
            data = file.read(max_bytes + 1)
    except InputFileError:
        raise
    except OSError as err:
        raise InputFileError(f"cannot read {label}: {_reason(err)}") from err
    if len(data) > max_bytes:
        raise InputFileError(_too_big(label, None, max_bytes))
    return data


def quoted(path: str | os.PathLike[str]) -> str:
    """The path quoted on one line, whatever characters its name holds."""
    return repr(os.fsdecode(path))


def _reason(err: OSError) -> str:
    """A short reason for an OSError, in words."""
    if isinstance(err, FileNotFoundError | NotADirectoryError):
        return "no such file"
    if isinstance(err, IsADirectoryError):
        return "it is a folder, not a file"
    if isinstance(err, PermissionError):
        return "permission denied"
    return " ".join((err.strerror or str(err) or type(err).__name__).split()).lower()


def _too_big(label: str, size: int | None, max_bytes: int) -> str:
    """Message for a file over the size limit."""
    limit = _mib(max_bytes)
    if size is not None and _mib(size) == limit:  # too close to tell apart when rounded
        return f"cannot read {label}: it is {size:,} bytes, over the {max_bytes:,} byte limit"
    found = f"it is {_mib(size)}" if size is not None else "it is too big"
    return f"cannot read {label}: {found}, over the {limit} limit"


def _mib(count: int) -> str:
    """A byte count in words, e.g. ``3.2 MiB`` or ``512 bytes``."""
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count:,} bytes"
