"""Supervisors' passwords: scrypt hashes that carry their own parameters and salt.

A hash is text in the PHC string format, ``$scrypt$ln=14,r=8,p=1$<salt>$<key>`` (salt
16 random bytes, key 32 bytes, both unpadded base64): n = 2**ln, r and p as stored, so
old hashes keep working if the defaults grow. A password is checked by deriving the key
again and comparing with :func:`hmac.compare_digest`. :func:`dummy_verify` does the same
work against a hash no password matches, for names that do not exist, so the time an
answer takes does not tell which names do.

Passwords are at least :data:`MIN_LENGTH` characters; they are never logged or stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from clockface.errors import SupervisorError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # scrypt reads the whole password: bound the work one request can ask for
LOG_N = 14  # n = 2**14
BLOCK_SIZE = 8  # r
PARALLELISM = 1  # p
SALT_BYTES = 16
KEY_BYTES = 32
_MAX_LOG_N = 20  # a hash asking for more is refused, not computed (1 GiB of memory)
_MAXMEM = 2**31 - 1
_HASH = re.compile(
    r"^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$"
)
# No password derives this key (it is random bytes): what unknown names are checked against.
_DUMMY_HASH = (
    "$scrypt$ln=14,r=8,p=1$Fd1gxo3M0h4uPx2Yb1qZ3A$mO9y8yZ6hJb4S5bq2d7gXz0kQm8vY1bH3cV4nF6tR2E"
)


def check_password(password: str) -> str:
    """``password`` if it may be used; SupervisorError saying why not."""
    if not isinstance(password, str):
        raise SupervisorError("a password must be text")
    if len(password) < MIN_LENGTH:
        raise SupervisorError(
            f"the password is too short: use at least {MIN_LENGTH} characters "
            "(a few words make a good one)"
        )
    if len(password) > MAX_LENGTH:
        raise SupervisorError(f"the password is too long: at most {MAX_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    """A new hash of ``password`` (checked first), with a fresh salt."""
    check_password(password)
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, LOG_N, BLOCK_SIZE, PARALLELISM)
    return f"$scrypt$ln={LOG_N},r={BLOCK_SIZE},p={PARALLELISM}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from. A hash that cannot be
    read (or asks for absurd work) matches nothing."""
    found = _HASH.match(stored)
    if found is None or len(password) > MAX_LENGTH:
        return False
    log_n, r, p = (int(found.group(i)) for i in (1, 2, 3))
    if not (1 <= log_n <= _MAX_LOG_N and 1 <= r <= 32 and 1 <= p <= 16):
        return False
    try:
        salt, key = _unb64(found.group(4)), _unb64(found.group(5))
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(_derive(password, salt, log_n, r, p, len(key)), key)


def dummy_verify(password: str) -> bool:
    """The work of :func:`verify_password`, against a hash nothing matches: False."""
    verify_password(password[:MAX_LENGTH], _DUMMY_HASH)
    return False


def _derive(password: str, salt: bytes, log_n: int, r: int, p: int, size: int = KEY_BYTES) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=2**log_n, r=r, p=p, maxmem=_MAXMEM, dklen=size
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
