"""The key that seals face templates at rest, and sealing / opening one template.

Templates are biometric data: in both databases (kiosk and central) each template blob is
sealed with AES-256-GCM under a key that lives *outside* the database, in a file of 32
random bytes readable by its owner only (mode 0600, or a systemd credential).

Where the key comes from (:func:`resolve_key_file`), first found wins:

1. an explicit path (``KioskStore.open(path, key_file=...)``, the central config's
   ``template_key_file``);
2. ``$CREDENTIALS_DIRECTORY/template-key`` (systemd ``LoadCredential=template-key:...``);
3. ``$CLOCKFACE_TEMPLATE_KEY_FILE``;
4. a default beside the database, ``<database file>.key`` (created on first use, 0600),
   except on a machine set up by ``systemd/install.sh``: there the services seal with
   the key it wrote (:data:`SYSTEM_KEY_FILES`), and a command run by hand without that
   key is refused instead of making a second key the services could not use.

A sealed blob (:data:`SEALED_BYTES` = 549 bytes)::

    version (1 byte, 0x01) | key id (8 bytes) | nonce (12 bytes) | ciphertext+tag (528 bytes)

The key id is the first 8 bytes of SHA-256 of the key, so a blob names the key that
sealed it without revealing it. The associated data is ``b"clockface-template\\0" +
version + key id + person id (UTF-8)``: a blob moved to another person's row, or one with
any bit of its header changed, fails to open. A wrong key, a moved blob and a flipped bit
all raise :class:`~clockface.errors.TemplateKeyError` with one line that says so; garbage
embeddings never come out.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from clockface.errors import TemplateKeyError

KEY_BYTES = 32
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
VERSION = 1
HEADER_BYTES = 1 + KEY_ID_BYTES
PLAIN_BYTES = 512  # 128 float32
SEALED_BYTES = HEADER_BYTES + NONCE_BYTES + PLAIN_BYTES + TAG_BYTES
CREDENTIAL_NAME = "template-key"
ENV_VAR = "CLOCKFACE_TEMPLATE_KEY_FILE"
SYSTEM_KEY_FILES = (
    Path("/etc/clockface/template-key"),
    Path("/etc/clockface/central-template-key"),
)
"""The keys ``systemd/install.sh`` writes and the units load as the credential."""
_AD_PREFIX = b"clockface-template\0"
_NOT_OPEN = "the template key does not open this database's templates"


def key_id_of(key: bytes) -> bytes:
    """The 8-byte id of a key: the first 8 bytes of its SHA-256."""
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


@dataclass(frozen=True, slots=True)
class TemplateKey:
    """An AES-256 key and the file it came from. Its repr never shows the key."""

    key: bytes
    path: Path

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise TemplateKeyError(f"{self.path}: a template key is {KEY_BYTES} bytes")

    def __repr__(self) -> str:
        return f"TemplateKey({str(self.path)!r}, id={self.key_id.hex()})"

    @property
    def key_id(self) -> bytes:
        return key_id_of(self.key)

    def seal(self, person_id: str, plain: bytes) -> bytes:
        """Seal one template (512 bytes) for ``person_id``'s row."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(plain) != PLAIN_BYTES:
            raise TemplateKeyError(f"a template to seal is {PLAIN_BYTES} bytes, not {len(plain)}")
        header = bytes([VERSION]) + self.key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, plain, _ad(header, person_id))
        return header + nonce + sealed

    def open(self, person_id: str, blob: bytes) -> bytes:
        """The 512 plaintext bytes of a sealed template of ``person_id``; raises
        TemplateKeyError for a wrong key, a blob of another person or a damaged blob."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        blob = bytes(blob)
        if len(blob) != SEALED_BYTES or blob[0] != VERSION:
            raise TemplateKeyError(
                f"{_NOT_OPEN}: a stored template is not a sealed template of version "
                f"{VERSION} ({len(blob)} bytes); the database is damaged or not yet migrated"
            )
        header, nonce, sealed = (
            blob[:HEADER_BYTES],
            blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES],
            blob[HEADER_BYTES + NONCE_BYTES :],
        )
        check_key_id(self, header[1:])
        try:
            return AESGCM(self.key).decrypt(nonce, sealed, _ad(header, person_id))
        except InvalidTag as err:
            raise TemplateKeyError(
                f"{_NOT_OPEN}: a template of {person_id!r} fails its integrity check "
                "(altered, or moved from another person's row)"
            ) from err

    def open_many(self, rows: list[tuple[str, bytes]]) -> list[bytes]:
        """Open ``(person_id, blob)`` rows in order."""
        return [self.open(pid, blob) for pid, blob in rows]


def check_key_id(key: TemplateKey, sealed_under: bytes) -> None:
    """Raise TemplateKeyError unless ``key`` is the key of id ``sealed_under``."""
    if sealed_under != key.key_id:
        raise TemplateKeyError(
            f"{_NOT_OPEN}: they are sealed under key id {sealed_under.hex()}, "
            f"{key.path} has key id {key.key_id.hex()}; use the key file they were sealed with"
        )


def _ad(header: bytes, person_id: str) -> bytes:
    return _AD_PREFIX + header + person_id.encode("utf-8")


def new_key_file(path: str | Path) -> TemplateKey:
    """Write a new random key to ``path`` (which must not exist), mode 0600."""
    where = Path(path)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as err:
        raise TemplateKeyError(f"{where}: already exists; a new key needs a new file") from err
    except OSError as err:
        raise TemplateKeyError(f"{where}: cannot create the key file: {err.strerror}") from err
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return TemplateKey(key, where)


def load_key_file(path: str | Path) -> TemplateKey:
    """Read a key file: exactly 32 bytes, not readable or writable by group or others."""
    where = Path(path)
    try:
        fd = os.open(where, os.O_RDONLY)
    except FileNotFoundError as err:
        raise TemplateKeyError(f"{where}: no such template key file") from err
    except OSError as err:
        raise TemplateKeyError(f"{where}: cannot read the template key: {err.strerror}") from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TemplateKeyError(f"{where}: a template key must be a regular file")
        if info.st_mode & 0o077:
            raise TemplateKeyError(
                f"{where}: template key file has mode {stat.S_IMODE(info.st_mode):04o}, "
                f"readable by others; run: chmod 600 {where}"
            )
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise TemplateKeyError(
            f"{where}: a template key file holds exactly {KEY_BYTES} bytes, not {len(key)}"
        )
    return TemplateKey(key, where)


def resolve_key_file(
    explicit: str | Path | None,
    *,
    default: Path | None,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """Where the key is: ``explicit``, the systemd credential, ``$CLOCKFACE_TEMPLATE_KEY_FILE``,
    else ``default`` (the module docstring gives the order)."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return Path(explicit)
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL_NAME).exists():
        return Path(creds) / CREDENTIAL_NAME
    named = env.get(ENV_VAR)
    if named:
        return Path(named)
    return default


class KeySource:
    """A key file read on first need (so a store that never touches templates never needs
    the key), and created there when it is the default beside the database and missing."""

    def __init__(self, path: Path | None, *, create_if_missing: bool) -> None:
        self.path = path
        self.create_if_missing = create_if_missing
        self._key: TemplateKey | None = None

    def __repr__(self) -> str:
        return f"KeySource({str(self.path)!r})"

    def get(self, *, may_create: bool = True) -> TemplateKey:
        """The key; ``may_create=False`` when the database already holds sealed templates
        (a missing default key is then an error, never silently a new key)."""
        if self.path is None:
            raise TemplateKeyError(
                "no template key given for a database with no file of its own (PostgreSQL): "
                f"set template_key_file in the config, ${ENV_VAR} or the systemd credential "
                f"{CREDENTIAL_NAME!r}"
            )
        if self._key is None:
            if self.create_if_missing and may_create and not self.path.exists():
                _refuse_beside_installed_keys(self.path)
                try:
                    self._key = new_key_file(self.path)
                except TemplateKeyError:
                    if not self.path.exists():
                        raise
                    self._key = load_key_file(self.path)  # created meanwhile by another
            else:
                try:
                    self._key = load_key_file(self.path)
                except TemplateKeyError as err:
                    if self.path.exists():
                        raise
                    raise TemplateKeyError(
                        f"{_NOT_OPEN}: no key file at {self.path}; give the key it was "
                        f"sealed with (key_file, ${ENV_VAR} or the systemd credential "
                        f"{CREDENTIAL_NAME!r})"
                    ) from err
        return self._key


def _refuse_beside_installed_keys(default: Path) -> None:
    """TemplateKeyError when this machine's services seal with a key install.sh wrote:
    a new ``default`` key would seal templates those services cannot open."""
    installed = []
    for path in SYSTEM_KEY_FILES:
        try:
            os.stat(path)
        except FileNotFoundError:
            continue
        except OSError:
            pass  # there, but not ours to look at
        installed.append(str(path))
    if installed:
        raise TemplateKeyError(
            f"this machine's clockface services seal templates with {' or '.join(installed)} "
            f"(the systemd credential {CREDENTIAL_NAME!r}); a new key at {default} would "
            f"seal templates they cannot open: run this as root with "
            f"{ENV_VAR}={installed[0]}, or set template_key_file in the config"
        )


def key_source(
    explicit: str | Path | None,
    *,
    database: Path | None,
    environ: Mapping[str, str] | None = None,
) -> KeySource:
    """The key source of a database file: :func:`resolve_key_file`, default ``<db>.key``,
    created on first use only when it is that default. ``database`` None (PostgreSQL):
    no default, the key must be given."""
    default = None if database is None else database.with_name(database.name + ".key")
    path = resolve_key_file(explicit, default=default, environ=environ)
    return KeySource(path, create_if_missing=path is not None and path == default)


def open_or_create_key_file(path: str | Path) -> tuple[TemplateKey, bool]:
    """The key in ``path``, made there (random, 0600) if there is no file; and whether it
    was made."""
    where = Path(path)
    if where.exists():
        return load_key_file(where), False
    return new_key_file(where), True


def rotation_report(
    count: int, old: Path | None, new: TemplateKey, *, default: Path | None
) -> list[str]:
    """What a rotate-key command tells the operator (never a key, only key ids)."""
    lines = [f"re-sealed {count} templates under key id {new.key_id.hex()} ({new.path})"]
    if old is not None and old != new.path:
        lines.append(
            f"the old key file {old} opens nothing any more: destroy it (shred -u {old}) "
            "once no backup sealed under it is needed; clockface leaves it as it is"
        )
    if default is not None and old == default:
        lines.append(
            f"from now on the key is looked for at {default}: after destroying the old one, "
            f"mv {new.path} {default} (or give the new file: ${ENV_VAR}, the config, or "
            f"systemd LoadCredential={CREDENTIAL_NAME}:{new.path})"
        )
    else:
        lines.append(
            f"from now on give the new key file {new.path} (${ENV_VAR}, the config, or "
            f"systemd LoadCredential={CREDENTIAL_NAME}:{new.path})"
        )
    return lines
