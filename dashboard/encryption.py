"""Secrets at rest: every stored secret is a Fernet token made with `ENCRYPTION_KEYS`.

- `ENCRYPTION_KEYS` (`dashboard.config`) is a list of Fernet keys, newest first: the first
  encrypts, every one decrypts (`MultiFernet`), built once per app and rebuilt when the
  setting changes.
- A column holding a secret is declared with `info={"encrypted": True}` and stores the
  token as text; code reads it with `decrypt` and writes it with `encrypt`, and
  `encrypted_columns(metadata)` finds every such column for `flask secrets …`.
- Rotation: prepend a new key and deploy (old tokens still open), run
  `flask secrets rotate` (re-encrypts every token not under the first key), and remove
  the old key once `flask secrets check` is clean.
- A token no configured key opens raises `SecretUnreadable`: never an empty secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Column, MetaData, Table

from dashboard.config import ConfigError, parse_encryption_keys

EXTENSION_KEY = "voxboard.encryption"
UNREADABLE = (
    "A stored secret can't be decrypted with the configured ENCRYPTION_KEYS: it was "
    "encrypted with a key that is no longer listed, or it is damaged. Put the old key "
    "back at the end of ENCRYPTION_KEYS, or set the secret again; run `flask secrets check` "
    "to list every such row."
)


class EncryptionError(Exception):
    """A secret couldn't be encrypted or decrypted with the configured keys."""


class SecretUnreadable(EncryptionError):
    """No key in ENCRYPTION_KEYS opens a stored token (an old key removed, or damage)."""

    def __init__(self, message: str = UNREADABLE) -> None:
        super().__init__(message)


class _Keys(NamedTuple):
    keys: tuple[str, ...]
    first: Fernet
    every: MultiFernet


def _keys() -> _Keys:
    """Return the app's Fernets, built from `ENCRYPTION_KEYS` once (again if it changed)."""
    configured = current_app.config.get("ENCRYPTION_KEYS")
    if isinstance(configured, str):
        configured = parse_encryption_keys(configured)
    keys = tuple(configured or ())
    cached: _Keys | None = current_app.extensions.get(EXTENSION_KEY)
    if cached is not None and cached.keys == keys:
        return cached
    if not keys:
        raise ConfigError("ENCRYPTION_KEYS is empty; stored secrets need at least one key.")
    fernets = [Fernet(key) for key in keys]
    built = _Keys(keys, fernets[0], MultiFernet(fernets))
    current_app.extensions[EXTENSION_KEY] = built
    return built


def encrypt(plaintext: str) -> str:
    """Return the Fernet token (text) of `plaintext`, made with the first key."""
    return _keys().every.encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """Return the secret in `token`; raise `SecretUnreadable` when no key opens it."""
    try:
        return _keys().every.decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable() from None


def needs_rotation(token: str) -> bool:
    """Tell whether `token` opens with an older key only; raise `SecretUnreadable` if with none."""
    keys = _keys()
    try:
        keys.first.decrypt(token.encode())
    except InvalidToken:
        decrypt(token)  # readable with an older key, or SecretUnreadable
        return True
    return False


def rotate(token: str) -> str:
    """Return `token` re-encrypted with the first key (same secret, same timestamp)."""
    try:
        return _keys().every.rotate(token.encode()).decode("ascii")
    except InvalidToken:
        raise SecretUnreadable() from None


class EncryptedColumn(NamedTuple):
    """A column of Fernet tokens, with its table and the primary key to walk it by."""

    table: Table
    key: Column
    column: Column


def encrypted_columns(metadata: MetaData) -> Sequence[EncryptedColumn]:
    """Return every column declared with `info={"encrypted": True}`, by table and name.

    `flask secrets` walks each in batches by primary key, so a table with such a column
    needs a single-column primary key.
    """
    found = []
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        for column in sorted(table.columns, key=lambda c: c.name):
            if not column.info.get("encrypted"):
                continue
            primary = list(table.primary_key.columns)
            if len(primary) != 1:
                raise ValueError(
                    f"{table.name}.{column.name} is encrypted, so {table.name} needs exactly "
                    "one primary-key column (`flask secrets` walks it by that key)"
                )
            found.append(EncryptedColumn(table, primary[0], column))
    return found
