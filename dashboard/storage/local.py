"""The local backend: objects as files under a root folder (development and tests).

Object ``k`` is the file ``<root>/k``. Writes go to ``.tmp-*`` in the same folder, are
fsynced, then ``os.replace``-d into place, so readers see the old or the new object,
never half of one; an open reader keeps the bytes it started with. The content type
lives in a sidecar ``.<name>.meta`` JSON file next to the object (keys carry no file
extension to derive it from); the sidecar is written after the object, so during an
overwrite a reader may briefly see the new bytes with the old content type; app keys
are write-once UUIDs, so that never happens in practice. The ETag is a hash of the
file's inode, size and mtime: free to compute, always consistent with the bytes an
open handle reads, and changed by every put (each put is a new inode). Empty folders
are left behind by deletes, because removing them would race with a concurrent put
into the same folder.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import os
import stat as stat_module
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from dashboard.storage.base import (
    CHUNK_SIZE,
    ChunkStream,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageUnavailable,
    byte_range,
    empty_stream,
)
from dashboard.storage.keys import is_valid_key, quote_key, validate_key, validate_prefix

log = logging.getLogger(__name__)


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
            raise InvalidKey(f"object key {quote_key(key)} cannot be resolved: {exc}") from exc
        if path == root or not path.is_relative_to(root):
            raise InvalidKey(f"object key {quote_key(key)} resolves outside the storage root")
        return path

    def _os_error(self, exc: OSError, action: str, key: str) -> StorageError:
        """Describe an OSError from our own file work as a StorageError saying what failed."""
        reason = exc.strerror or str(exc)
        where = f"under {self._root}"
        if not self._root.is_dir():
            # Blame the root itself (a file, unwritable parent...) rather than the key.
            return StorageUnavailable(
                f"cannot {action} {quote_key(key)}: local storage root {self._root} "
                f"is not a usable folder ({reason})"
            )
        if isinstance(exc, PermissionError) or exc.errno in (
            errno.EROFS,
            errno.ENOSPC,
            errno.EDQUOT,
        ):
            return StorageUnavailable(f"cannot {action} {quote_key(key)} {where}: {reason}")
        if isinstance(exc, NotADirectoryError | FileExistsError | IsADirectoryError):
            return StorageError(
                f"cannot {action} {quote_key(key)} {where}: another object's key is a "
                f"folder of this one or the other way round ({reason})"
            )
        return StorageError(f"cannot {action} {quote_key(key)} {where}: {reason}")

    @contextmanager
    def _os_errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise self._os_error(exc, action, key) from exc

    def _not_found(self, key: str) -> ObjectNotFound:
        return ObjectNotFound(f"no object {quote_key(key)} under {self._root}")

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
            # Closed by the ChunkStream, or below if the range is refused.
            handle = open(path, "rb", buffering=0)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise self._not_found(key) from None
        except OSError as exc:
            raise self._os_error(exc, "read", key) from exc
        try:
            st = os.fstat(handle.fileno())
            if not stat_module.S_ISREG(st.st_mode):
                raise self._not_found(key)
            span = byte_range(start, end, st.st_size)
        except BaseException:
            handle.close()
            raise
        if span is None:
            handle.close()
            return empty_stream()
        return ChunkStream(_read_file_range(handle, *span), handle.close)

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(key) from None
        except OSError as exc:
            raise self._os_error(exc, "read", key) from exc
        if not stat_module.S_ISREG(st.st_mode):
            raise self._not_found(key)
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
        validate_prefix(prefix)
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
                if key.startswith(prefix) and is_valid_key(key):
                    yield key
