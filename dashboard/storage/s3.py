"""The S3 backend: objects in an S3-compatible bucket through boto3, with botocore's
failures translated into storage errors in one place.

The boto3 client is built on first use, never at construction or import. Checksum
calculation and validation are ``when_required`` because R2 and other non-AWS endpoints
reject the CRC headers newer botocore sends by default. Uploads go through
``upload_fileobj``, which switches to multipart for streams over 8 MiB and holds at
most a few parts in memory. Every call to the endpoint goes through the storage's
:class:`~dashboard.storage.guard.CallGuard`.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
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

from dashboard.storage.base import (
    CHUNK_SIZE,
    ChunkStream,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageUnavailable,
    check_range,
    empty_stream,
)
from dashboard.storage.guard import CallGuard
from dashboard.storage.keys import is_valid_key, quote_key, validate_key, validate_prefix

# SigV4 presigned URLs cannot outlive seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})
_WRONG_REGION_CODES = frozenset(
    {"PermanentRedirect", "301", "AuthorizationHeaderMalformed", "IncorrectEndpoint"}
)
_SERVER_TROUBLE_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError"})
_ADDRESSING_STYLES = frozenset({"auto", "virtual", "path"})


class _RangeNotSatisfiable(StorageError):
    """S3 refused a byte range (InvalidRange); `open_range` turns it into ValueError."""


def _http_status(exc: ClientError) -> int:
    """Return the HTTP status of the endpoint's answer, 0 when botocore recorded none."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _endpoint_answered(exc: StorageUnavailable) -> bool:
    """Tell whether an "unavailable" error still came from an endpoint that answered.

    A missing bucket or a refused key is a 4xx answer: the endpoint is up, so the
    breaker must not open on it (operators fix settings, not wait). Timeouts, refused
    connections and 5xx answers are the endpoint failing.
    """
    cause = exc.__cause__
    if isinstance(cause, ClientError):
        return 0 < _http_status(cause) < 500
    return False


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
    def _botocore_errors(self, key: str | None) -> Iterator[None]:
        """Re-raise botocore's failures inside the block as StorageErrors (see `_error`)."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key) from exc

    @contextmanager
    def _calling(self, key: str | None) -> Iterator[None]:
        """Make one endpoint call through the guard, translating botocore's errors."""
        guarded = self._guard.call(_endpoint_answered) if self._guard else nullcontext()
        with guarded, self._botocore_errors(key):
            yield

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
            status = _http_status(exc)
            if code == "InvalidRange":
                return _RangeNotSatisfiable(f"range not satisfiable for {quote_key(key or '')}")
            if code == "NoSuchBucket" or (key is None and code in _NOT_FOUND_CODES):
                return StorageUnavailable(f"S3 bucket {bucket!r} does not exist at {where}")
            if code in _NOT_FOUND_CODES and key is not None:
                return ObjectNotFound(f"no object {quote_key(key)} in S3 bucket {bucket!r}")
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
        check_range(start, end)
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
                return empty_stream()
            raise ValueError(
                f"range start {start} is past the last byte ({size - 1}) of {quote_key(key)}"
            ) from None
        self._bucket_seen = True
        body = response["Body"]
        chunks: Iterator[bytes] = body.iter_chunks(CHUNK_SIZE)
        if ranged and not response.get("ContentRange"):
            # The endpoint ignored Range and sent everything; cut the slice out here.
            chunks = _slice_chunks(chunks, start, end)
        return ChunkStream(self._translate_stream(chunks, key), body.close)

    def _translate_stream(self, chunks: Iterator[bytes], key: str) -> Iterator[bytes]:
        """Re-raise failures in mid-download (timeouts, cut connections) as StorageErrors."""
        with self._botocore_errors(key):
            yield from chunks

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
        # Signing happens here, without a call to the endpoint: nothing to guard.
        with self._botocore_errors(key):
            return str(
                self._client().generate_presigned_url(
                    "get_object", Params=params, ExpiresIn=expires_in
                )
            )

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
        validate_prefix(prefix)
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
                if is_valid_key(item["Key"]):
                    yield item["Key"]
