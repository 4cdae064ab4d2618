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
    ├── StoreError (RuntimeError)          a database cannot be opened, read or written
    │   ├── StoreValueError (ValueError)   a value the store refuses: an empty id, a bad template
    │   │   ├── DuplicatePersonError       a person id the roster already holds
    │   │   ├── RosterRuleError            an id, name, team or template the roster's rules refuse
    │   │   └── CentralValueError          unknown site or kiosk, a name taken, a bad zone
    │   │       ├── CentralNotFoundError (LookupError)  no such site, kiosk or admin
    │   │       └── CentralConflictError   a name or id already taken on the service
    │   ├── UnknownPersonError (LookupError)  a person id the roster does not hold
    │   ├── CentralStoreError              the central database unreachable, newer, failing
    │   ├── TemplateKeyError               the template key missing, loose, or not this one
    │   └── RosterManagedError             a kiosk's roster is managed by the central service
    ├── EnrollmentError (ValueError)       an enrollment refused: bad photos, a face enrolled twice
    │   ├── ImportFolderError              an import folder, manifest.csv or person.toml unusable
    │   └── ConsentRequiredError           no consent record where the legal basis is consent
    ├── RosterFileError (ValueError)       a roster file that is malformed or in the way
    ├── ConfigError (ValueError)           a config file or variable: unknown key, bad value
    ├── AuthenticationError (PermissionError)  a token missing, unknown or revoked
    ├── NotAllowedError (PermissionError)  a valid token of the wrong kind
    ├── AdminApiError (RuntimeError)       an answer the admin API does not give
    │   └── AdminUnavailableError (ConnectionError)  the service unreachable, timed out, 5xx
    ├── SyncError (RuntimeError)           syncing with the central service failed
    │   ├── SyncUnavailableError (ConnectionError)  unreachable or "not now": try again later
    │   ├── SyncAuthError (PermissionError)  the kiosk's token refused (401, 403)
    │   ├── SyncTooLargeError (ValueError)   a request body refused as too large (413)
    │   ├── SyncRefusedError (ValueError)    a request refused as invalid (other 4xx)
    │   └── SyncProtocolError (ValueError)   an answer the wire protocol does not allow
    ├── OutputError (OSError)              a GPIO output that cannot be opened or driven
    ├── ScreenError (OSError)              the kiosk screen's port in use, a bad address
    ├── ScheduleError (ValueError)         a schedule file or value that is malformed
    ├── ReportError (ValueError)           a report that cannot be made as asked
    ├── ReportOutputError (OSError)        a report file that cannot be written
    ├── SupervisorError (ValueError)       a supervisor account change refused
    │   └── SupervisorNotFoundError (LookupError)  no such supervisor
    └── LoginRefusedError (PermissionError)  a sign-in to the web page refused
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


class RosterRuleError(StoreValueError):
    """An id, name, team or face template that breaks the roster's rules
    (:mod:`clockface.roster`), wherever it was given: a store, the admin API, a roster
    file, a folder import, the command line, a gallery delta."""


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


class ScheduleError(ClockfaceError, ValueError):
    """A work schedule that cannot be used: a schedule file with a bad row or field, an
    unknown site or time zone, two patterns that claim the same person on the same day."""


class ReportError(ClockfaceError, ValueError):
    """A report that cannot be made as asked: an empty date range, an unknown format."""


class ReportOutputError(ClockfaceError, OSError):
    """A report file that cannot be written: it exists (without --force), a bad path."""


class CentralStoreError(StoreError):
    """The central database cannot be opened, read or written: PostgreSQL unreachable, a
    schema newer than this clockface, a file of some other application."""


class CentralValueError(StoreValueError):
    """A value the central service refuses: an unknown site or kiosk, a name already
    taken, a time zone that does not exist, a roster version a kiosk cannot hold."""


class CentralNotFoundError(CentralValueError, LookupError):
    """A site, kiosk or admin the central service does not know."""


class CentralConflictError(CentralValueError):
    """A name or id the central service already holds (a site, kiosk or admin)."""


class AuthenticationError(ClockfaceError, PermissionError):
    """A token that is missing, malformed, unknown or revoked."""


class NotAllowedError(ClockfaceError, PermissionError):
    """A valid token used where it does not belong (an admin token on a kiosk endpoint)."""


class RosterManagedError(StoreError):
    """A local roster change refused: this kiosk's roster is managed by the central service
    it is attached to (``clockface sync detach`` returns it to local management)."""


class SyncError(ClockfaceError, RuntimeError):
    """Syncing with the central service failed; the message says what to do.

    Subclasses say whether trying again can help (:class:`SyncUnavailableError`) or not.
    """


class SyncUnavailableError(SyncError, ConnectionError):
    """The central service could not be reached, or answered "not now" (a network error,
    a timeout, 5xx, 408, 429): worth trying again after ``retry_after`` seconds at least
    (None: the service did not say)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SyncAuthError(SyncError, PermissionError):
    """The central service refused this kiosk's token (401 or 403)."""


class SyncTooLargeError(SyncError, ValueError):
    """The central service refused a request body as too large (413)."""


class SyncRefusedError(SyncError, ValueError):
    """The central service refused a request as invalid (a 4xx other than 401, 403, 408,
    413 and 429); sending it again unchanged will not help. ``status`` is the HTTP status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class SyncProtocolError(SyncError, ValueError):
    """The central service answered something the wire protocol does not allow."""


class OutputError(ClockfaceError, OSError):
    """A GPIO output (LED, buzzer, door relay) that cannot be opened or driven."""


class ScreenError(ClockfaceError, OSError):
    """The kiosk screen's local web page cannot be served: its port is in use, or the
    address it should listen on is not one of this machine's."""


# The admin API's 401 / 403 / 404 / 409 / 422 come out as AuthenticationError,
# NotAllowedError, UnknownPersonError, DuplicatePersonError and StoreValueError, as from
# the stores; AdminApiError is for what none of those covers.
class AdminApiError(ClockfaceError, RuntimeError):
    """The central service's admin API answered something it should not (an unexpected
    status, a body that is not the documented model): a wrong URL, or another version."""


class AdminUnavailableError(AdminApiError, ConnectionError):
    """The central service could not be reached (connection refused, a timeout, a
    dropped connection) or answered 5xx: try again later, or check the URL."""


# The supervisors' web page (central/web/): accounts and sign-in.
class SupervisorError(ClockfaceError, ValueError):
    """A supervisor account change refused: a bad name, a password too short, a name
    already taken."""


class SupervisorNotFoundError(SupervisorError, LookupError):
    """A supervisor name the central service does not know."""


class LoginRefusedError(ClockfaceError, PermissionError):
    """A sign-in refused: a wrong name or password, a locked or disabled account. The
    message says no more than that (which of them is in the audit log only)."""


class TemplateKeyError(StoreError):
    """The key that seals templates at rest is missing, loosely protected or does not open
    the stored templates (clockface.template_key)."""


# The biometric-privacy lifecycle (enrollment/lawful_basis.py, enroll purge).
class ConsentRequiredError(EnrollmentError):
    """An enrollment without the person's consent record where the legal basis is consent
    (the default): give the consent, or declare another legal basis in the configuration."""
