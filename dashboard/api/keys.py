"""API key secrets: how one is made, what is stored of it, and how a request presents it.

A secret is `vxb_` followed by 32 random bytes in unpadded URL-safe base64 (43
characters). It is shown to its creator once. What is stored is HMAC-SHA256 of the
whole secret under the key-hash key (`API_KEY_HASH_KEY`, else derived from
`SECRET_KEY`): a fast keyed hash is right for 256 random bits (nothing to guess, so
nothing for a slow hash to slow down), and a copy of the database alone can't test
guesses. The last four characters are kept so people can tell their keys apart.

A request presents it as `Authorization: Bearer vxb_…`; `parse_authorization` reads
that header strictly, and says in words what is wrong with one it refuses.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from flask import current_app

PREFIX = "vxb_"
SECRET_BYTES = 32
_SECRET = re.compile(r"vxb_[A-Za-z0-9_-]{43}")
# Context for the key derived from SECRET_KEY, so the derived key is used for nothing else.
_DERIVATION = b"voxboard api key hash v1"


@dataclass(frozen=True, slots=True)
class NewSecret:
    """A freshly made secret, what is stored of it, and its last four characters."""

    secret: str
    secret_hash: str
    last_four: str


def hash_key() -> bytes:
    """Return the key of the keyed hash (configured, or derived from SECRET_KEY)."""
    configured = current_app.config.get("API_KEY_HASH_KEY")
    if configured:
        return str(configured).encode()
    return hmac.new(str(current_app.config["SECRET_KEY"]).encode(), _DERIVATION, "sha256").digest()


def secret_hash(secret: str) -> str:
    """Return what is stored for `secret`: its HMAC-SHA256, 64 hex digits."""
    return hmac.new(hash_key(), secret.encode(), hashlib.sha256).hexdigest()


def new_secret() -> NewSecret:
    """Make a new secret."""
    secret = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    return NewSecret(secret, secret_hash(secret), secret[-4:])


class MalformedKey(ValueError):
    """The Authorization header holds no API key this server could have made."""


def parse_authorization(header: str | None) -> str:
    """Return the secret in an `Authorization: Bearer vxb_…` header; raise MalformedKey."""
    if not header:
        raise MalformedKey(
            "This request has no API key. Send it as “Authorization: Bearer vxb_…”; "
            "create a key in the organisation's settings, under API keys."
        )
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MalformedKey(
            "The Authorization header must use the Bearer scheme: “Authorization: Bearer vxb_…”."
        )
    credentials = credentials.strip()
    if not _SECRET.fullmatch(credentials):
        raise MalformedKey(
            "The Authorization header doesn't hold a Voxboard API key (they start with "
            "“vxb_” and have 47 characters). Copy the whole key and try again."
        )
    return credentials
