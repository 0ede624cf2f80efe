"""Store audio objects on the local disk or in an S3-compatible bucket behind one interface.

This front builds the configured backend once per app (``get_storage``) and re-exports
the names callers import; each is defined in one module beside it: ``base`` (the
interface, ``ObjectInfo``, errors), ``keys`` (the key layout), ``guard`` (``CallGuard``),
``local`` (``LocalStorage``) and ``s3`` (``S3Storage``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from flask import current_app

from dashboard.storage.base import (
    CHUNK_SIZE,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageUnavailable,
)
from dashboard.storage.guard import CallGuard
from dashboard.storage.keys import (
    custom_voice_key,
    custom_voice_revision_key,
    generation_key,
    probe_key,
    system_voice_key,
    validate_key,
)
from dashboard.storage.local import LocalStorage
from dashboard.storage.s3 import S3Storage

__all__ = [
    "CHUNK_SIZE",
    "EXTENSION_KEY",
    "CallGuard",
    "InvalidKey",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFound",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "custom_voice_key",
    "custom_voice_revision_key",
    "generation_key",
    "get_storage",
    "init_app",
    "probe_key",
    "storage_from_config",
    "system_voice_key",
    "validate_key",
]

EXTENSION_KEY = "voxboard.storage"

# Optional numeric settings and the constructor argument each one sets; an unset one
# leaves the constructor's own default, so every default has one home.
_S3_OPTIONS = (
    ("STORAGE_CONNECT_TIMEOUT", "connect_timeout", float),
    ("STORAGE_READ_TIMEOUT", "read_timeout", float),
    ("STORAGE_MAX_ATTEMPTS", "max_attempts", int),
)
_GUARD_OPTIONS = (
    ("STORAGE_MAX_CONCURRENT_CALLS", "max_concurrent", int),
    ("STORAGE_COOLDOWN_SECONDS", "cooldown", float),
)


def _setting(config: Mapping[str, Any], name: str) -> Any:
    """Read a config value, treating unset, None and blank strings alike."""
    value = config.get(name)
    if isinstance(value, str):
        value = value.strip()
    return value or None


def _options(config: Mapping[str, Any], table: tuple[tuple[str, str, type], ...]) -> dict[str, Any]:
    """Return the constructor arguments of the settings in ``table`` that are set."""
    return {
        option: convert(config[name])
        for name, option, convert in table
        if config.get(name) is not None
    }


def storage_from_config(config: Mapping[str, Any]) -> Storage:
    """Build the configured backend without touching the disk or the network."""
    backend = str(_setting(config, "STORAGE_BACKEND") or "local").lower()
    if backend == "local":
        root = _setting(config, "STORAGE_LOCAL_ROOT")
        if root is None:
            raise StorageError("STORAGE_BACKEND is 'local' but STORAGE_LOCAL_ROOT is not set")
        return LocalStorage(root)
    if backend == "s3":
        bucket = _setting(config, "S3_BUCKET")
        if bucket is None:
            raise StorageError("STORAGE_BACKEND is 's3' but S3_BUCKET is not set")
        return S3Storage(
            bucket=bucket,
            endpoint_url=_setting(config, "S3_ENDPOINT_URL"),
            region=_setting(config, "S3_REGION"),
            access_key_id=_setting(config, "S3_ACCESS_KEY_ID"),
            secret_access_key=_setting(config, "S3_SECRET_ACCESS_KEY"),
            addressing_style=_setting(config, "S3_ADDRESSING_STYLE"),
            guard=CallGuard(**_options(config, _GUARD_OPTIONS)),
            **_options(config, _S3_OPTIONS),
        )
    raise StorageError(f"unknown STORAGE_BACKEND {backend!r}; use 'local' or 's3'")


_build_lock = threading.Lock()


def get_storage() -> Storage:
    """Return the current app's storage, building it on first use.

    Tests may place their own backend in ``app.extensions[EXTENSION_KEY]`` beforehand.
    """
    extensions = current_app.extensions
    storage = extensions.get(EXTENSION_KEY)
    if storage is None:
        with _build_lock:
            storage = extensions.get(EXTENSION_KEY)
            if storage is None:
                config = dict(current_app.config)
                if _setting(config, "STORAGE_LOCAL_ROOT") is None:
                    config["STORAGE_LOCAL_ROOT"] = os.path.join(
                        current_app.instance_path, "objects"
                    )
                storage = storage_from_config(config)
                extensions[EXTENSION_KEY] = storage
    return storage


def init_app(app: Any) -> None:
    """Reserve the app's storage slot; the backend itself is built by get_storage()."""
    app.extensions.setdefault(EXTENSION_KEY, None)
