"""Store audio objects on the local disk or in an S3-compatible bucket behind one interface.

Keys
    Every key is checked by :func:`validate_key` in both backends, so a key that works
    locally also works on S3 and the other way round. Keys are ``/``-separated UTF-8
    text of at most 1024 bytes (S3's limit); each segment is at most 240 bytes so the
    local backend stays under the usual 255-byte file name limit. Empty segments,
    ``.``/``..``, any segment *starting* with ``.``, backslashes and control characters
    are refused: dot-segments are reserved for the local backend's temporary and
    metadata files, so no key can ever name one of them. The layout the app uses is
    built by :func:`system_voice_key`, :func:`custom_voice_key` (and
    :func:`custom_voice_revision_key`, ``voices/orgs/{org}/{voice}.{revision}``, for
    replaced audio) and :func:`generation_key`.

Byte ranges (``open_range``)
    ``start`` and ``end`` are inclusive byte offsets, as in an HTTP ``Range`` header.
    ``start`` must be >= 0; ``end=None`` means "to the last byte"; an ``end`` past the
    last byte is clamped to it. ``start`` past the last byte of a non-empty object,
    or ``start > end``, raises :class:`ValueError`, which the HTTP layer answers with
    416. An empty object has no bytes to range over and always yields nothing.
    Suffix ranges (``bytes=-500``) are for the HTTP layer to turn into a ``start``
    using :meth:`Storage.stat`.

Errors
    Backend problems surface as :class:`StorageError` subclasses whose message names
    the failing part (bucket, endpoint, credentials, root folder), never as raw
    ``OSError``/botocore exceptions. :class:`InvalidKey` is a ``ValueError``: a bad key
    is the caller's bug, not an outage.

Local backend
    Object ``k`` is the file ``<root>/k``. Writes go to ``.tmp-*`` in the same folder,
    are fsynced, then ``os.replace``-d into place, so readers see the old or the new
    object, never half of one; an open reader keeps the bytes it started with. The
    content type lives in a sidecar ``.<name>.meta`` JSON file next to the object
    (keys carry no file extension to derive it from); the sidecar is written after
    the object, so during an overwrite a reader may briefly see the new bytes with
    the old content type; app keys are write-once UUIDs, so that never happens in
    practice. The ETag is a hash of the file's inode, size and mtime: free to
    compute, always consistent with the bytes an open handle reads, and changed by
    every put (each put is a new inode). Empty folders are left behind by deletes,
    because removing them would race with a concurrent put into the same folder.

S3 backend
    The boto3 client is built on first use, never at construction or import. Checksum
    calculation and validation are ``when_required`` because R2 and other non-AWS
    endpoints reject the CRC headers newer botocore sends by default. Uploads go
    through ``upload_fileobj``, which switches to multipart for streams over 8 MiB and
    holds at most a few parts in memory.
"""

from __future__ import annotations

import abc
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import stat as stat_module
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from flask import current_app

__all__ = [
    "CHUNK_SIZE",
    "EXTENSION_KEY",
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
    "CallGuard",
    "get_storage",
    "init_app",
    "probe_key",
    "storage_from_config",
    "system_voice_key",
    "validate_key",
]

log = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024
EXTENSION_KEY = "voxboard.storage"
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 240
# SigV4 presigned URLs cannot outlive seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

# C0 and C1 control characters (NUL, newline, DEL...) and backslash: they break
# logs, headers and Windows tools, and a backslash reads as a separator to some.
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")


class StorageError(Exception):
    """Report a storage failure with a message a person can act on."""


class ObjectNotFound(StorageError):
    """Report that no object exists under the key."""


class StorageUnavailable(StorageError):
    """Report that the backend cannot serve anyone: unreachable, refused, misconfigured."""


class InvalidKey(ValueError):
    """Refuse a key that is malformed or would escape the storage root."""


class _RangeNotSatisfiable(StorageError):
    """S3 refused a byte range (InvalidRange); `open_range` turns it into ValueError."""


@contextmanager
def _no_guard() -> Iterator[None]:
    yield


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """Describe a stored object; ``etag`` is unquoted and changes whenever the bytes do."""

    key: str
    size: int
    etag: str
    content_type: str | None
    # When the bytes were last written (aware UTC); the orphan sweep's grace period
    # reads it. Left out of equality: two reads of one object compare equal.
    modified: dt.datetime | None = field(default=None, compare=False)


def _show(key: str) -> str:
    """Quote a key for a message, shortened so a 1 KiB key doesn't swamp the log."""
    return repr(key) if len(key) <= 100 else repr(key[:100]) + "..."


def validate_key(key: str) -> str:
    """Return ``key`` unchanged, or raise InvalidKey naming what is wrong with it."""
    if not isinstance(key, str):
        raise InvalidKey(f"object key must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidKey("object key is empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(f"object key {_show(key)} is not valid UTF-8 text") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"object key is {size} bytes long; the limit is {MAX_KEY_BYTES}")
    if match := _FORBIDDEN_CHARS.search(key):
        raise InvalidKey(
            f"object key {_show(key)} contains a forbidden character {match.group()!r}"
        )
    if key.startswith("/"):
        raise InvalidKey(f"object key {_show(key)} is absolute (starts with '/')")
    if key.endswith("/"):
        raise InvalidKey(f"object key {_show(key)} ends with '/' and so names a folder")
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey(f"object key {_show(key)} has an empty segment ('//')")
        if segment in (".", ".."):
            raise InvalidKey(f"object key {_show(key)} has a {segment!r} segment")
        if segment.startswith("."):
            raise InvalidKey(
                f"object key {_show(key)} has a segment starting with '.'; "
                "those names are reserved for the storage backend's own files"
            )
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidKey(
                f"object key {_show(key)} has a segment over {MAX_SEGMENT_BYTES} bytes"
            )
    return key


def _segment(value: uuid.UUID | str, what: str) -> str:
    """Render one id as a single key segment, refusing anything that would add nesting."""
    text = str(value)
    if not text or "/" in text:
        raise InvalidKey(f"{what} {text!r} cannot be used as one key segment")
    return text


def system_voice_key(voice_id: uuid.UUID | str) -> str:
    """Return the key of a built-in voice's sample: ``voices/system/{voice_id}``."""
    return validate_key(f"voices/system/{_segment(voice_id, 'voice id')}")


def custom_voice_key(org_id: uuid.UUID | str, voice_id: uuid.UUID | str) -> str:
    """Return the key of an org's custom voice: ``voices/orgs/{org_id}/{voice_id}``."""
    org = _segment(org_id, "org id")
    return validate_key(f"voices/orgs/{org}/{_segment(voice_id, 'voice id')}")


def generation_key(
    org_id: uuid.UUID | str, generation_id: uuid.UUID | str, attempt: str | None = None
) -> str:
    """Return the key of generated audio: ``generations/orgs/{org_id}/{generation_id}``.

    The org comes first in every tenant key so one prefix lists or sweeps one tenant.
    Jobs add ``.{attempt}`` (a token unique to one run): a worker the reaper gave up on
    that finishes late can then only ever remove its own object, never the winner's.
    """
    org = _segment(org_id, "org id")
    key = f"generations/orgs/{org}/{_segment(generation_id, 'generation id')}"
    if attempt is not None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", attempt):
            raise InvalidKey(f"attempt token must be 1-64 letters, digits, - or _: {attempt!r}")
        key = f"{key}.{attempt}"
    return validate_key(key)


def probe_key(prefix: str) -> str:
    """Return a fresh key for a readiness probe object: ``{prefix}/probe/{uuid}``.

    Readiness deletes it at once; one left behind by a crash is an orphan to the sweep.
    """
    return validate_key(f"{_segment(prefix, 'prefix')}/probe/{uuid.uuid4()}")


def _validate_prefix(prefix: str) -> str:
    """Accept "" or the start of a valid key, such as ``voices/`` or ``voices/sys``."""
    if prefix:
        # Completing the prefix with one harmless character reuses every key rule,
        # including the ones about trailing '/' and '..' segments.
        validate_key(prefix + "x")
    return prefix


def _check_range(start: int, end: int | None) -> None:
    """Refuse the range rules that don't depend on the object's size."""
    if start < 0:
        raise ValueError(f"range start {start} is negative")
    if end is not None and end < start:
        raise ValueError(f"range end {end} is before its start {start}")


def _byte_range(start: int, end: int | None, size: int) -> tuple[int, int] | None:
    """Resolve an inclusive range against a size; None means there is nothing to read."""
    _check_range(start, end)
    if size == 0:
        return None
    if start > size - 1:
        raise ValueError(f"range start {start} is past the last byte ({size - 1})")
    return start, size - 1 if end is None else min(end, size - 1)


class _ChunkStream(Iterator[bytes]):
    """Yield an object's chunks and release its file or connection on close.

    A plain generator would only run its cleanup once iteration starts, so a stream
    that was opened (to surface errors early) but never read would leak its handle.
    WSGI servers call ``close()`` on response iterables, finished or not.
    """

    def __init__(self, chunks: Iterator[bytes], release: Callable[[], object]) -> None:
        self._chunks = chunks
        self._release: Callable[[], object] | None = release

    def __iter__(self) -> _ChunkStream:
        return self

    def __next__(self) -> bytes:
        if self._release is None:
            raise StopIteration
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the underlying handle; safe to call more than once."""
        release, self._release = self._release, None
        if release is not None:
            close_chunks = getattr(self._chunks, "close", None)
            if close_chunks is not None:
                close_chunks()
            release()

    def __enter__(self) -> _ChunkStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def _empty_stream() -> _ChunkStream:
    return _ChunkStream(iter(()), lambda: None)


class Storage(abc.ABC):
    """Store and serve immutable-by-convention blobs under validated keys."""

    @abc.abstractmethod
    def put(self, key: str, stream: BinaryIO, *, content_type: str | None = None) -> ObjectInfo:
        """Store ``stream`` under ``key`` in chunks, atomically replacing any old object."""

    @abc.abstractmethod
    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Return the bytes ``start..end`` (inclusive) in chunks of at most 64 KiB.

        Errors (ObjectNotFound, InvalidKey, ValueError for a bad range) are raised by
        this call, before any chunk, so the caller can still choose a status code.
        The iterator has ``close()``; call it (WSGI does) when stopping early.
        """

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Describe the object under ``key`` or raise ObjectNotFound."""

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under ``key``."""
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object under ``key``; a missing object is not an error."""

    @abc.abstractmethod
    def presigned_url(
        self, key: str, *, expires_in: int = 300, filename: str | None = None
    ) -> str | None:
        """Return a temporary direct-download URL, or None when the backend has none.

        With ``filename`` the download is served as an attachment of that name.
        """

    @abc.abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailable naming the failing part unless the backend is usable."""

    @abc.abstractmethod
    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Yield every valid key starting with ``prefix``, in no promised order."""

    def for_probe(self, timeout: float) -> Storage:
        """Return this backend as readiness should ask it: within ``timeout``, no retries.

        Backends with nothing to wait on (local files) return themselves.
        """
        return self


# --------------------------------------------------------------------------- guard


class CallGuard:
    """Keep a backend that stops answering from taking every thread of the process.

    Two rules, per process (one guard per storage object):

    - **Bulkhead**: at most ``max_concurrent`` calls wait on the backend at once. A call
      that can't get a slot within ``queue_seconds`` fails at once with
      StorageUnavailable, so however slow the backend, the other threads stay free for
      requests that don't need it (health checks, logins, pages).
    - **Breaker**: after ``threshold`` calls in a row fail with StorageUnavailable
      (timeouts, refused connections, 5xx), calls fail at once for ``cooldown``
      seconds; then one trial call goes through, and its outcome closes the breaker or
      opens it again. A backend that answers, even "no such key", counts as healthy.
    """

    def __init__(
        self,
        *,
        max_concurrent: int = 2,
        threshold: int = 3,
        cooldown: float = 15.0,
        queue_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrent < 1 or threshold < 1:
            raise ValueError("a call guard needs at least one slot and a threshold of one")
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._threshold = threshold
        self._cooldown = cooldown
        self._queue_seconds = queue_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._trial_running = False

    @property
    def is_open(self) -> bool:
        """Tell whether calls are being refused without asking the backend."""
        with self._lock:
            return self._failures >= self._threshold and (
                self._clock() < self._open_until or self._trial_running
            )

    def _admit(self) -> bool:
        """Refuse a call while the breaker is open; return whether it is the trial call."""
        with self._lock:
            if self._failures < self._threshold:
                return False
            wait = self._open_until - self._clock()
            if wait > 0 or self._trial_running:
                raise StorageUnavailable(
                    f"storage stopped answering ({self._failures} failures in a row); "
                    f"not asking it again for {max(wait, 0):.0f} s"
                )
            self._trial_running = True
            return True

    def _record(self, healthy: bool, trial: bool) -> None:
        with self._lock:
            if trial:
                self._trial_running = False
            if healthy:
                self._failures = 0
                return
            self._failures += 1
            if self._failures >= self._threshold:
                self._open_until = self._clock() + self._cooldown

    @contextmanager
    def call(self) -> Iterator[None]:
        """Run one backend call inside the block, or raise StorageUnavailable at once."""
        trial = self._admit()
        if not self._slots.acquire(timeout=self._queue_seconds):
            if trial:
                self._record(True, trial)  # nothing was learnt; let the next call try
            raise StorageUnavailable(
                "storage is answering too slowly: too many requests are already waiting on it"
            )
        healthy = False
        try:
            yield
            healthy = True
        except StorageUnavailable as exc:
            healthy = _endpoint_answered(exc)
            raise
        except BaseException:
            healthy = True  # the backend answered (not found, bad range...) or we failed
            raise
        finally:
            self._slots.release()
            self._record(healthy, trial)


def _endpoint_answered(exc: BaseException) -> bool:
    """Tell whether an "unavailable" error still came from an endpoint that answered.

    A missing bucket or a refused key is a 4xx answer: the endpoint is up, so the
    breaker must not open on it (operators fix settings, not wait). Timeouts, refused
    connections and 5xx answers are the endpoint failing.
    """
    cause = exc.__cause__
    if isinstance(cause, ClientError):
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return 0 < int(status) < 500
    return False


# --------------------------------------------------------------------------- local


def _local_etag(st: os.stat_result) -> str:
    # Inode changes on every put (new temp file), mtime/size catch in-place edits.
    raw = f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def _mtime(st: os.stat_result) -> dt.datetime:
    return dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.meta")


def _read_file_range(handle: BinaryIO, first: int, last: int) -> Iterator[bytes]:
    handle.seek(first)
    remaining = last - first + 1
    while remaining > 0:
        chunk = handle.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


class LocalStorage(Storage):
    """Keep objects as files under a root folder; the default for development and tests."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # absolute() reads the cwd but touches nothing: the folder is made on first put.
        self._root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self._root)!r})"

    @property
    def root(self) -> Path:
        """The folder objects live under (it may not exist yet)."""
        return self._root

    def _path(self, key: str) -> Path:
        """Map a key to its real file path, refusing one that lands outside the root."""
        validate_key(key)
        # Resolve both sides on every call: the root may be created (or be a symlink)
        # after construction, and a symlink inside it may point anywhere.
        root = self._root.resolve()
        try:
            path = (root / key).resolve()
        except (RuntimeError, OSError) as exc:  # symlink loop
            raise InvalidKey(f"object key {_show(key)} cannot be resolved: {exc}") from exc
        if path == root or not path.is_relative_to(root):
            raise InvalidKey(f"object key {_show(key)} resolves outside the storage root")
        return path

    def _os_error(self, exc: OSError, action: str, key: str) -> StorageError:
        """Describe an OSError from our own file work as a StorageError saying what failed."""
        reason = exc.strerror or str(exc)
        where = f"under {self._root}"
        if not self._root.is_dir():
            # Blame the root itself (a file, unwritable parent...) rather than the key.
            return StorageUnavailable(
                f"cannot {action} {_show(key)}: local storage root {self._root} "
                f"is not a usable folder ({reason})"
            )
        if isinstance(exc, PermissionError) or exc.errno in (
            errno.EROFS,
            errno.ENOSPC,
            errno.EDQUOT,
        ):
            return StorageUnavailable(f"cannot {action} {_show(key)} {where}: {reason}")
        if isinstance(exc, NotADirectoryError | FileExistsError | IsADirectoryError):
            return StorageError(
                f"cannot {action} {_show(key)} {where}: another object's key is a "
                f"folder of this one or the other way round ({reason})"
            )
        return StorageError(f"cannot {action} {_show(key)} {where}: {reason}")

    @contextmanager
    def _os_errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise self._os_error(exc, action, key) from exc

    def put(self, key: str, stream: BinaryIO, *, content_type: str | None = None) -> ObjectInfo:
        path = self._path(key)
        with self._os_errors("store", key):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = stream.read(CHUNK_SIZE)  # the caller's errors pass through untouched
                    if not chunk:
                        break
                    with self._os_errors("store", key):
                        out.write(chunk)
                with self._os_errors("store", key):
                    out.flush()
                    os.fsync(out.fileno())
                    # rename keeps inode, size and mtime, so this is the final ETag.
                    st = os.fstat(out.fileno())
            with self._os_errors("store", key):
                os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        with self._os_errors("store the content type of", key):
            self._write_content_type(path, content_type)
        return ObjectInfo(key, st.st_size, _local_etag(st), content_type, _mtime(st))

    def _write_content_type(self, path: Path, content_type: str | None) -> None:
        sidecar = _sidecar(path)
        if content_type is None:
            sidecar.unlink(missing_ok=True)
            return
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"content_type": content_type}, out)
            os.replace(tmp_name, sidecar)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def _read_content_type(self, path: Path) -> str | None:
        try:
            meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable storage sidecar for %s: %s", path, exc)
            return None
        value = meta.get("content_type") if isinstance(meta, dict) else None
        return value if isinstance(value, str) else None

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        try:
            # Closed by the _ChunkStream, or below if the range is refused.
            handle = open(path, "rb", buffering=0)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(f"no object {_show(key)} under {self._root}") from None
        except OSError as exc:
            raise self._os_error(exc, "read", key) from exc
        try:
            st = os.fstat(handle.fileno())
            if not stat_module.S_ISREG(st.st_mode):
                raise ObjectNotFound(f"no object {_show(key)} under {self._root}")
            span = _byte_range(start, end, st.st_size)
        except BaseException:
            handle.close()
            raise
        if span is None:
            handle.close()
            return _empty_stream()
        return _ChunkStream(_read_file_range(handle, *span), handle.close)

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"no object {_show(key)} under {self._root}") from None
        except OSError as exc:
            raise self._os_error(exc, "read", key) from exc
        if not stat_module.S_ISREG(st.st_mode):
            raise ObjectNotFound(f"no object {_show(key)} under {self._root}")
        return ObjectInfo(
            key, st.st_size, _local_etag(st), self._read_content_type(path), _mtime(st)
        )

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._os_errors("delete", key):
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                # Nothing stored there (a folder is not an object): already deleted.
                pass
            _sidecar(path).unlink(missing_ok=True)

    def presigned_url(
        self, key: str, *, expires_in: int = 300, filename: str | None = None
    ) -> str | None:
        self._path(key)  # refuse bad keys exactly as the other operations do
        return None

    def check(self) -> None:
        root = self._root
        if root.exists() and not root.is_dir():
            raise StorageUnavailable(f"local storage root {root} exists but is not a folder")
        try:
            # Creating the root here is what the first put would do anyway.
            root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=root, prefix=".probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StorageUnavailable(
                f"local storage root {root} is not writable: {exc.strerror or exc}"
            ) from exc

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        _validate_prefix(prefix)
        root = self._root.resolve()
        folder = (root / prefix.rpartition("/")[0]).resolve()
        if not folder.is_relative_to(root) or not folder.is_dir():
            return

        def fail(exc: OSError) -> None:
            raise StorageError(
                f"cannot list objects under {self._root}: {exc.strerror or exc}"
            ) from exc

        for dirpath, dirnames, filenames in os.walk(folder, onerror=fail):
            # Dot-names are temp files, sidecars or not ours; sorting makes runs repeatable.
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                if name.startswith(".") or os.path.islink(full):
                    continue
                key = Path(os.path.relpath(full, root)).as_posix()
                if key.startswith(prefix) and _is_valid_key(key):
                    yield key


def _is_valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidKey:
        return False
    return True


# --------------------------------------------------------------------------- S3

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})
_WRONG_REGION_CODES = frozenset(
    {"PermanentRedirect", "301", "AuthorizationHeaderMalformed", "IncorrectEndpoint"}
)
_SERVER_TROUBLE_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError"})
_ADDRESSING_STYLES = frozenset({"auto", "virtual", "path"})


def _transfer_config() -> TransferConfig:
    """Send small audio in one PutObject and bigger streams as multipart uploads.

    At most ``max_concurrency`` parts of ``multipart_chunksize`` sit in memory. A fresh
    object per upload because s3transfer may adjust the config it is given.
    """
    return TransferConfig(
        multipart_threshold=8 * 1024 * 1024,
        multipart_chunksize=8 * 1024 * 1024,
        max_concurrency=4,
    )


def _attachment_disposition(filename: str) -> str:
    """Build a Content-Disposition that survives quotes and non-ASCII (RFC 6266)."""
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\/' else "_" for ch in filename)
    quoted = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{fallback or 'download'}\"; filename*=UTF-8''{quoted}"


def _slice_chunks(chunks: Iterable[bytes], first: int, last: int | None) -> Iterator[bytes]:
    """Cut bytes first..last out of a whole-object stream."""
    offset = 0
    for chunk in chunks:
        begin, offset = offset, offset + len(chunk)
        if offset <= first:
            continue
        piece = chunk[max(first - begin, 0) :]
        if last is not None:
            piece = piece[: max(last + 1 - max(begin, first), 0)]
        if piece:
            yield piece
        if last is not None and offset > last:
            return


class _FullReads:
    """Make ``read(n)`` return ``n`` bytes unless the stream has ended.

    s3transfer reads a non-seekable stream's first part with ``read(threshold)`` and,
    when that comes back short, takes the rest with ``read()``. A socket-like stream
    returning short reads would then be pulled into memory whole.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._ended = False

    def read(self, size: int | None = -1) -> bytes:
        if self._ended:
            return b""
        wanted = None if size is None or size < 0 else size
        parts: list[bytes] = []
        while wanted is None or wanted > 0:
            chunk = self._stream.read(CHUNK_SIZE if wanted is None else wanted)
            if not chunk:
                self._ended = True
                break
            parts.append(chunk)
            if wanted is not None:
                wanted -= len(chunk)
        return b"".join(parts)


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


class S3Storage(Storage):
    """Keep objects in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO...)."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: str | None = None,
        connect_timeout: float = 3,
        read_timeout: float = 10,
        max_attempts: int = 2,
        session: boto3.session.Session | None = None,
        guard: CallGuard | None = None,
    ) -> None:
        """Remember the settings; the client is built on first use.

        ``connect_timeout`` and ``read_timeout`` bound each attempt (a read timeout is
        the longest wait for the next bytes), ``max_attempts`` counts the first try, so
        one call waits at most about ``max_attempts × (connect + read)`` seconds.
        ``guard`` (default: a fresh :class:`CallGuard`) fails calls fast while the
        endpoint doesn't answer; pass ``False``-y only through :meth:`for_probe`.
        ``session`` lets tests share one boto3 session, so each storage doesn't parse
        the S3 service model again (~50 ms); by default each storage gets its own.
        """
        if not bucket:
            raise StorageError("S3 storage needs a bucket name")
        if bool(access_key_id) != bool(secret_access_key):
            raise StorageError(
                "set both the S3 access key id and secret access key, or neither "
                "to use the default AWS credential chain"
            )
        if addressing_style is not None and addressing_style not in _ADDRESSING_STYLES:
            raise StorageError(
                f"unknown S3 addressing style {addressing_style!r}: "
                f"use one of {', '.join(sorted(_ADDRESSING_STYLES))}"
            )
        self._bucket = bucket
        self._endpoint_url = endpoint_url
        self._region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._addressing_style = addressing_style
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_attempts = max_attempts
        self._session = session
        self._guard: CallGuard | None = CallGuard() if guard is None else guard
        self._client_obj: Any = None
        self._client_lock = threading.Lock()
        # HEAD answers carry no error body, so a 404 cannot tell a missing key from a
        # missing bucket; the first one is settled with head_bucket, later ones trust this.
        self._bucket_seen = False

    def __repr__(self) -> str:
        # Never show the credentials.
        return f"S3Storage(bucket={self._bucket!r}, endpoint_url={self._endpoint_url!r})"

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def guard(self) -> CallGuard | None:
        """The breaker and bulkhead in front of the endpoint (None on a probe copy)."""
        return self._guard

    def for_probe(self, timeout: float) -> S3Storage:
        """Return a copy that waits at most ``timeout`` per attempt, tries once, no guard.

        Readiness must see the endpoint itself, not the breaker's memory of it.
        """
        probe = S3Storage(
            bucket=self._bucket,
            endpoint_url=self._endpoint_url,
            region=self._region,
            access_key_id=self._access_key_id,
            secret_access_key=self._secret_access_key,
            addressing_style=self._addressing_style,
            connect_timeout=min(self._connect_timeout, timeout),
            read_timeout=timeout,
            max_attempts=1,
            session=self._session,
        )
        probe._guard = None
        return probe

    @contextmanager
    def _calling(self, key: str | None) -> Iterator[None]:
        """Make one endpoint call through the guard, translating botocore's errors."""
        with self._guard.call() if self._guard else _no_guard():
            try:
                yield
            except (ClientError, BotoCoreError) as exc:
                raise self._error(exc, key) from exc

    @property
    def endpoint_url(self) -> str | None:
        return self._endpoint_url

    @property
    def _where(self) -> str:
        if self._endpoint_url:
            return self._endpoint_url
        return f"AWS S3 ({self._region})" if self._region else "AWS S3"

    def _client(self) -> Any:
        """Return the boto3 client, building it on first use; clients are thread-safe."""
        if self._client_obj is None:
            with self._client_lock:
                if self._client_obj is None:
                    self._client_obj = self._build_client()
        return self._client_obj

    def _build_client(self) -> Any:
        config = Config(
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # botocore's "max_attempts" counts retries only; ours counts every attempt.
            retries={"total_max_attempts": self._max_attempts, "mode": "standard"},
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            s3={"addressing_style": self._addressing_style} if self._addressing_style else None,
        )
        try:
            # Not boto3's default session: building clients from it isn't thread-safe.
            session = self._session or boto3.session.Session()
            return session.client(
                "s3",
                endpoint_url=self._endpoint_url,
                region_name=self._region,
                aws_access_key_id=self._access_key_id,
                aws_secret_access_key=self._secret_access_key,
                config=config,
            )
        except (BotoCoreError, ValueError) as exc:
            raise StorageUnavailable(
                f"cannot set up the S3 client for bucket {self._bucket!r} at {self._where}: {exc}"
            ) from exc

    def _error(self, exc: Exception, key: str | None = None) -> StorageError:
        """Translate a botocore failure into a StorageError naming bucket and endpoint.

        ``key`` is None for bucket-level calls, where a bare 404 means the bucket.
        """
        bucket, where = self._bucket, self._where
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = error.get("Message") or code
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if code == "InvalidRange":
                return _RangeNotSatisfiable(f"range not satisfiable for {_show(key or '')}")
            if code == "NoSuchBucket" or (key is None and code in _NOT_FOUND_CODES):
                return StorageUnavailable(f"S3 bucket {bucket!r} does not exist at {where}")
            if code in _NOT_FOUND_CODES and key is not None:
                return ObjectNotFound(f"no object {_show(key)} in S3 bucket {bucket!r}")
            if code == "InvalidAccessKeyId":
                return StorageUnavailable(
                    f"{where} rejected the access key id used for bucket {bucket!r}; "
                    "check S3_ACCESS_KEY_ID"
                )
            if code == "SignatureDoesNotMatch":
                return StorageUnavailable(
                    f"{where} rejected the request signature for bucket {bucket!r}; "
                    "check S3_SECRET_ACCESS_KEY"
                )
            if code in _DENIED_CODES:
                return StorageUnavailable(
                    f"access to S3 bucket {bucket!r} at {where} was denied; the credentials "
                    "are wrong or lack permission"
                )
            if code in _WRONG_REGION_CODES:
                return StorageUnavailable(
                    f"S3 bucket {bucket!r} is not in the configured region "
                    f"({self._region or 'default'}) at {where}; check S3_REGION"
                )
            if status >= 500 or code in _SERVER_TROUBLE_CODES:
                return StorageUnavailable(
                    f"{where} failed while serving bucket {bucket!r}: {code} {message}"
                )
            return StorageError(f"S3 request on bucket {bucket!r} at {where} failed: {message}")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StorageUnavailable(
                f"no usable S3 credentials for bucket {bucket!r}; set S3_ACCESS_KEY_ID and "
                "S3_SECRET_ACCESS_KEY"
            )
        if isinstance(exc, BotoConnectionError | HTTPClientError):
            return StorageUnavailable(
                f"cannot reach the S3 endpoint {where} for bucket {bucket!r}: {exc}"
            )
        return StorageError(f"S3 request on bucket {bucket!r} at {where} failed: {exc}")

    def _info(self, key: str, head: Mapping[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            etag=str(head.get("ETag", "")).strip('"'),
            content_type=head.get("ContentType"),
            modified=head.get("LastModified"),
        )

    def put(self, key: str, stream: BinaryIO, *, content_type: str | None = None) -> ObjectInfo:
        validate_key(key)
        extra = {"ContentType": content_type} if content_type else None
        with self._calling(key):
            self._client().upload_fileobj(
                stream if _seekable(stream) else _FullReads(stream),
                self._bucket,
                key,
                ExtraArgs=extra,
                Config=_transfer_config(),
            )
        self._bucket_seen = True
        # upload_fileobj returns nothing, and the ETag is what callers cache on.
        return self.stat(key)

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        validate_key(key)
        # S3 silently ignores an inverted range, so refuse it before asking.
        _check_range(start, end)
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        ranged = start > 0 or end is not None
        if ranged:
            params["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            with self._calling(key):
                response = self._client().get_object(**params)
        except _RangeNotSatisfiable:
            # Either the object is empty (nothing to read) or start is past its end.
            size = self.stat(key).size
            if size == 0:
                return _empty_stream()
            raise ValueError(
                f"range start {start} is past the last byte ({size - 1}) of {_show(key)}"
            ) from None
        self._bucket_seen = True
        body = response["Body"]
        chunks: Iterator[bytes] = body.iter_chunks(CHUNK_SIZE)
        if ranged and not response.get("ContentRange"):
            # The endpoint ignored Range and sent everything; cut the slice out here.
            chunks = _slice_chunks(chunks, start, end)
        return _ChunkStream(self._translate_stream(chunks, key), body.close)

    def _translate_stream(self, chunks: Iterator[bytes], key: str) -> Iterator[bytes]:
        """Re-raise failures in mid-download (timeouts, cut connections) as StorageErrors."""
        try:
            yield from chunks
        except BotoCoreError as exc:
            raise self._error(exc, key) from exc

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        try:
            with self._calling(key):
                head = self._client().head_object(Bucket=self._bucket, Key=key)
        except ObjectNotFound:
            if not self._bucket_seen:
                self.check()  # raises StorageUnavailable if the bucket is what's missing
            raise
        self._bucket_seen = True
        return self._info(key, head)

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._calling(key):
            # S3 answers 204 for a missing key, so deletes are idempotent for free.
            self._client().delete_object(Bucket=self._bucket, Key=key)

    def presigned_url(
        self, key: str, *, expires_in: int = 300, filename: str | None = None
    ) -> str | None:
        validate_key(key)
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be 1..{MAX_PRESIGN_SECONDS} seconds")
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = _attachment_disposition(filename)
        try:
            return str(
                self._client().generate_presigned_url(
                    "get_object", Params=params, ExpiresIn=expires_in
                )
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key) from exc

    def check(self) -> None:
        try:
            with self._calling(None):
                self._client().head_bucket(Bucket=self._bucket)
        except StorageUnavailable:
            raise
        except StorageError as exc:
            raise StorageUnavailable(str(exc)) from exc
        self._bucket_seen = True

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        _validate_prefix(prefix)
        paginator = self._client().get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self._bucket, Prefix=prefix))
        while True:
            # One guarded call per page, never held while the caller works on the keys.
            with self._calling(None):
                page = next(pages, None)
            if page is None:
                return
            for item in page.get("Contents", ()):
                # Keys written by other tools may break our rules; leave them alone.
                if _is_valid_key(item["Key"]):
                    yield item["Key"]


# --------------------------------------------------------------------------- wiring


def _setting(config: Mapping[str, Any], name: str) -> Any:
    """Read a config value, treating unset, None and blank strings alike."""
    value = config.get(name)
    if isinstance(value, str):
        value = value.strip()
    return value or None


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
            connect_timeout=float(config.get("STORAGE_CONNECT_TIMEOUT", 3)),
            read_timeout=float(config.get("STORAGE_READ_TIMEOUT", 10)),
            max_attempts=int(config.get("STORAGE_MAX_ATTEMPTS", 2)),
            guard=CallGuard(
                max_concurrent=int(config.get("STORAGE_MAX_CONCURRENT_CALLS", 2)),
                cooldown=float(config.get("STORAGE_COOLDOWN_SECONDS", 15)),
            ),
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


def custom_voice_revision_key(
    org_id: uuid.UUID | str, voice_id: uuid.UUID | str, revision: uuid.UUID | str
) -> str:
    """Return the key of a custom voice's replacement audio: ``…/{voice_id}.{revision}``.

    A replacement is written under a new key so the old object keeps serving until the
    row points at the new one; the shared ``voices/orgs/{org_id}/{voice_id}`` prefix
    lists every revision of one voice (for a sweep).
    """
    base = custom_voice_key(org_id, voice_id)
    return validate_key(f"{base}.{_segment(revision, 'revision')}")
