"""Kiosk and admin tokens: their text, and how a secret is checked against its hash.

A token is ``cfk_<id>_<secret>`` (a kiosk) or ``cfa_<id>_<secret>`` (an HR admin): the
id (16 hex digits) finds the row, the secret (``secrets.token_urlsafe(32)``, 256 bits)
proves the holder. The database keeps the SHA-256 of the secret only, so a copy of the
database grants nothing; a secret is compared in constant time. A token is shown once,
when it is made (``clockface central kiosk add`` / ``rotate``, ``admin add``), and
never logged.

The store (:class:`central.store.CentralStore`) does the rest: ``create_kiosk``,
``rotate_kiosk_token``, ``revoke_kiosk``, ``create_admin``, ``revoke_admin``,
``authenticate``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from clockface.errors import AuthenticationError

TokenKind = Literal["kiosk", "admin"]
PREFIX: dict[TokenKind, str] = {"kiosk": "cfk", "admin": "cfa"}
_KIND_OF = {prefix: kind for kind, prefix in PREFIX.items()}
_TOKEN = re.compile(r"^(cfk|cfa)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
# Compared against when the id is unknown, so that case takes as long as a wrong secret.
_NO_SECRET_HASH = hashlib.sha256(b"no such token").hexdigest()


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: ``text`` goes to its holder once; the rest is stored."""

    kind: TokenKind
    token_id: str
    secret_sha256: str
    text: str

    def __repr__(self) -> str:  # never show the secret in a traceback or log
        return f"NewToken(kind={self.kind!r}, token_id={self.token_id!r})"


@dataclass(frozen=True, slots=True)
class PresentedToken:
    """A token as a client presented it, split into its parts."""

    kind: TokenKind
    token_id: str
    secret: str

    def __repr__(self) -> str:
        return f"PresentedToken(kind={self.kind!r}, token_id={self.token_id!r})"


def new_token(kind: TokenKind) -> NewToken:
    """A fresh random token of ``kind``."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewToken(
        kind=kind,
        token_id=token_id,
        secret_sha256=hash_secret(secret),
        text=f"{PREFIX[kind]}_{token_id}_{secret}",
    )


def parse_token(text: str) -> PresentedToken:
    """Split a token's text; AuthenticationError when it is not a clockface token."""
    match = _TOKEN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise AuthenticationError("not a clockface token (cfk_... or cfa_...)")
    prefix, token_id, secret = match.groups()
    return PresentedToken(kind=_KIND_OF[prefix], token_id=token_id, secret=secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored_sha256: str | None) -> bool:
    """Whether ``secret`` hashes to ``stored_sha256``, in constant time (None: no row)."""
    expected = _NO_SECRET_HASH if stored_sha256 is None else stored_sha256
    same = hmac.compare_digest(hash_secret(secret), expected)
    return same and stored_sha256 is not None
