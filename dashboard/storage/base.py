"""The storage interface every backend implements, its errors, and the byte-range and
chunk-stream rules the backends share.

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
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

CHUNK_SIZE = 64 * 1024


class StorageError(Exception):
    """Report a storage failure with a message a person can act on."""


class ObjectNotFound(StorageError):
    """Report that no object exists under the key."""


class StorageUnavailable(StorageError):
    """Report that the backend cannot serve anyone: unreachable, refused, misconfigured."""


class InvalidKey(ValueError):
    """Refuse a key that is malformed or would escape the storage root."""


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


def check_range(start: int, end: int | None) -> None:
    """Refuse the range rules that don't depend on the object's size."""
    if start < 0:
        raise ValueError(f"range start {start} is negative")
    if end is not None and end < start:
        raise ValueError(f"range end {end} is before its start {start}")


def byte_range(start: int, end: int | None, size: int) -> tuple[int, int] | None:
    """Resolve an inclusive range against a size; None means there is nothing to read."""
    check_range(start, end)
    if size == 0:
        return None
    if start > size - 1:
        raise ValueError(f"range start {start} is past the last byte ({size - 1})")
    return start, size - 1 if end is None else min(end, size - 1)


class ChunkStream(Iterator[bytes]):
    """Yield an object's chunks and release its file or connection on close.

    A plain generator would only run its cleanup once iteration starts, so a stream
    that was opened (to surface errors early) but never read would leak its handle.
    WSGI servers call ``close()`` on response iterables, finished or not.
    """

    def __init__(self, chunks: Iterator[bytes], release: Callable[[], object]) -> None:
        self._chunks = chunks
        self._release: Callable[[], object] | None = release

    def __iter__(self) -> ChunkStream:
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

    def __enter__(self) -> ChunkStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def empty_stream() -> ChunkStream:
    """Return a stream with no chunks and nothing to release (an empty object)."""
    return ChunkStream(iter(()), lambda: None)


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
