"""The one root of every error clockface raises on purpose.

Each subclass also inherits the built-in exception it resembles, so callers can catch
either (``except ValueError`` keeps working). Third-party errors are re-raised from
these at the boundary, ``from err``.

    ClockfaceError
    ├── ImageError (ValueError)            an image that cannot be used
    │   ├── NotAnImageError                not a picture in any format we read
    │   ├── TruncatedImageError            cut short or corrupt
    │   └── ImageTooLargeError             too many pixels (decompression bomb) or bytes
    ├── ModelError (RuntimeError)          a face model package is missing or broken
    ├── GalleryError (ValueError)          a template of the wrong shape, an unknown person
    ├── PhotoRejectedError (ValueError)    a photo that fails the enrollment quality gates
    ├── InputFileError (OSError)           a file that cannot be read: missing, a folder, too big
    ├── SourceError (OSError)              a camera or video that cannot be opened; a lost camera
    ├── StoreError (RuntimeError)          the kiosk database cannot be opened, read or written
    │   ├── StoreValueError (ValueError)   a value the store refuses: an empty id, a bad template
    │   │   └── DuplicatePersonError       a person id the roster already holds
    │   └── UnknownPersonError (LookupError)  a person id the roster does not hold
    ├── EnrollmentError (ValueError)       an enrollment refused: bad photos, a face enrolled twice
    │   └── ImportFolderError              an import folder, manifest.csv or person.toml unusable
    ├── RosterFileError (ValueError)       a roster file that is malformed or in the way
    └── ConfigError (ValueError)           a config file or variable: unknown key, bad value
"""


class ClockfaceError(Exception):
    """Base of every clockface error; its message is one line meant for a person."""


class ImageError(ClockfaceError, ValueError):
    """An image that cannot be used."""


class NotAnImageError(ImageError):
    """The data is not an image in a format clockface reads."""


class TruncatedImageError(ImageError):
    """The image file is cut short or corrupt."""


class ImageTooLargeError(ImageError):
    """The image has more pixels or bytes than clockface accepts."""


class ModelError(ClockfaceError, RuntimeError):
    """A face model could not be loaded."""


class GalleryError(ClockfaceError, ValueError):
    """A template of the wrong shape or values, or a person the gallery does not hold."""


class InputFileError(ClockfaceError, OSError):
    """A file the command line was asked to read is missing, unreadable or too big."""


class PhotoRejectedError(ClockfaceError, ValueError):
    """A photo that fails the enrollment quality gates; the message says why and what to do."""


class SourceError(ClockfaceError, OSError):
    """A camera or video that cannot be opened, or a camera that stopped delivering frames."""


class StoreError(ClockfaceError, RuntimeError):
    """The kiosk database cannot be opened, read or written: corrupt, newer, read-only, full."""


class StoreValueError(StoreError, ValueError):
    """A value the kiosk store refuses: an empty id or name, a bad template, an unknown zone."""


class DuplicatePersonError(StoreValueError):
    """A person id the roster already holds."""


class UnknownPersonError(StoreError, LookupError):
    """A person id the roster does not hold."""


class EnrollmentError(ClockfaceError, ValueError):
    """An enrollment refused as a whole: every photo rejected, a face already enrolled as
    someone else, an id already taken; nothing was written."""


class ImportFolderError(EnrollmentError):
    """A bulk-import folder, its ``manifest.csv`` or a ``person.toml`` that cannot be used."""


class RosterFileError(ClockfaceError, ValueError):
    """A roster file (export / import) that is malformed, of another version, or in the way."""


class ConfigError(ClockfaceError, ValueError):
    """A configuration file or environment variable clockface cannot use."""
