"""Supervisors' passwords: scrypt hashes that carry their own parameters and salt.

A hash is text in the PHC string format, ``$scrypt$ln=17,r=8,p=1$<salt>$<key>`` (salt
16 random bytes, key 32 bytes, both unpadded base64): n = 2**ln, r and p as stored, so
old hashes keep working when the defaults grow, and :func:`needs_rehash` says when a
stored hash is weaker than the cost asked for (sign-in then stores a new one).
:data:`DEFAULT_COST` is OWASP's minimum for scrypt, N = 2**17, r = 8, p = 1: 128 MiB of
memory (128 * r * N bytes) and about 0.4 s of one core here per hash. A password is
checked by deriving the key again and comparing with :func:`hmac.compare_digest`.
:func:`dummy_verify` does the same work, at the same cost, against a hash no password
matches, for names that do not exist, so the time an answer takes does not tell which
names do.

Every function that makes a hash takes its cost as ``cost=`` (:class:`ScryptCost`), so
tests that make many accounts can ask for a cheap one; the service uses the default.

Passwords are at least :data:`MIN_LENGTH` characters; they are never logged or stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from clockface.errors import SupervisorError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # scrypt reads the whole password: bound the work one request can ask for
SALT_BYTES = 16
KEY_BYTES = 32
_MAX_LOG_N = 20  # a hash asking for more is refused, not computed (1 GiB of memory)
_MAXMEM = 2**31 - 1
_HASH = re.compile(
    r"^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$"
)
# No password derives this key (it is random bytes): what unknown names are checked
# against, with this salt, at the cost a real hash would have.
_DUMMY_SALT = "Fd1gxo3M0h4uPx2Yb1qZ3A"
_DUMMY_KEY = "mO9y8yZ6hJb4S5bq2d7gXz0kQm8vY1bH3cV4nF6tR2E"


@dataclass(frozen=True, slots=True)
class ScryptCost:
    """scrypt's work factors: n = 2**log_n, block size r, parallelism p."""

    log_n: int = 17
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.log_n <= _MAX_LOG_N and 1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise ValueError(f"scrypt cost out of range: {self}")

    @property
    def memory_bytes(self) -> int:
        return 128 * self.r * (1 << self.log_n)

    def weaker_than(self, other: ScryptCost) -> bool:
        """Whether any factor is below ``other``'s."""
        return self.log_n < other.log_n or self.r < other.r or self.p < other.p

    def phc(self) -> str:
        return f"ln={self.log_n},r={self.r},p={self.p}"


DEFAULT_COST = ScryptCost()
"""What the service hashes with: OWASP's minimum for scrypt (N = 2**17, r = 8, p = 1)."""


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


def hash_password(password: str, cost: ScryptCost = DEFAULT_COST) -> str:
    """A new hash of ``password`` (checked first), with a fresh salt."""
    check_password(password)
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, cost)
    return f"$scrypt${cost.phc()}${_b64(salt)}${_b64(key)}"


def stored_cost(stored: str) -> ScryptCost | None:
    """The cost a stored hash was made with; None when it cannot be read or asks for
    absurd work."""
    found = _HASH.match(stored)
    if found is None:
        return None
    try:
        return ScryptCost(*(int(found.group(i)) for i in (1, 2, 3)))
    except ValueError:
        return None


def needs_rehash(stored: str, cost: ScryptCost = DEFAULT_COST) -> bool:
    """Whether ``stored`` was made with a weaker cost than ``cost`` (or cannot be read):
    after a successful sign-in, store a new hash of the password."""
    found = stored_cost(stored)
    return found is None or found.weaker_than(cost)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from. A hash that cannot be
    read (or asks for absurd work) matches nothing."""
    found = _HASH.match(stored)
    cost = stored_cost(stored)
    if found is None or cost is None or len(password) > MAX_LENGTH:
        return False
    try:
        salt, key = _unb64(found.group(4)), _unb64(found.group(5))
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(_derive(password, salt, cost, len(key)), key)


def dummy_verify(password: str, cost: ScryptCost = DEFAULT_COST) -> bool:
    """The work of :func:`verify_password` on a hash of ``cost``, against a hash nothing
    matches: False."""
    verify_password(password[:MAX_LENGTH], f"$scrypt${cost.phc()}${_DUMMY_SALT}${_DUMMY_KEY}")
    return False


def _derive(password: str, salt: bytes, cost: ScryptCost, size: int = KEY_BYTES) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=1 << cost.log_n,
        r=cost.r,
        p=cost.p,
        maxmem=_MAXMEM,
        dklen=size,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
