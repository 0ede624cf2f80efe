"""Hold both storage backends to one contract: local files and S3 (moto's real server)."""

from __future__ import annotations

import ast
import functools
import gc
import io
import os
import socket
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import dashboard.storage as storage_package
from dashboard.storage import (
    CHUNK_SIZE,
    EXTENSION_KEY,
    CallGuard,
    InvalidKey,
    LocalStorage,
    ObjectInfo,
    ObjectNotFound,
    S3Storage,
    Storage,
    StorageError,
    StorageUnavailable,
    custom_voice_key,
    custom_voice_revision_key,
    generation_key,
    get_storage,
    init_app,
    probe_key,
    storage_from_config,
    system_voice_key,
    validate_key,
)
from dashboard.storage.keys import is_probe_key, row_of
from dashboard.storage.s3 import _slice_chunks
from tests.s3server import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    REGION,
    make_bucket,
    s3_client,
)

ORG = uuid.UUID("0192f0c4-7a55-7c3e-9d1a-5b1f0e6a2c11")
VOICE = uuid.UUID("0192f0c4-7a55-7c3e-9d1a-5b1f0e6a2c22")
GENERATION = uuid.UUID("0192f0c4-7a55-7c3e-9d1a-5b1f0e6a2c33")
KEY = generation_key(ORG, GENERATION)


def payload(size: int, seed: int = 0) -> bytes:
    """Return `size` deterministic bytes whose offsets are easy to tell apart."""
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (size // len(block) + 1))[:size]


def read(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(storage.open_range(key, start, end))


class TrickleStream(io.RawIOBase):
    """A non-seekable upload body that, like a socket, hands out at most 64 KiB a read.

    It records how much each read asked for, so tests can tell "read in chunks"
    from "read everything".
    """

    def __init__(self, data: bytes, *, fail_after: int | None = None) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._fail_after = fail_after
        self.requests: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.requests.append(size)
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise ConnectionResetError("the uploading client went away")
        n = min(len(buffer), len(self._data) - self._pos, 64 * 1024)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


# --------------------------------------------------------------------------- fixtures


@functools.cache
def shared_session() -> boto3.session.Session:
    """Share one session so each test's client skips re-parsing the S3 model."""
    return boto3.session.Session()


def make_s3(endpoint: str, bucket: str, **overrides: Any) -> S3Storage:
    options: dict[str, Any] = {
        "session": shared_session(),
        "bucket": bucket,
        "endpoint_url": endpoint,
        "region": REGION,
        "access_key_id": FAKE_KEY_ID,
        "secret_access_key": FAKE_SECRET,
        "addressing_style": "path",
        **overrides,
    }
    return S3Storage(**options)


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    endpoint = request.getfixturevalue("s3_endpoint")
    return make_s3(endpoint, make_bucket(endpoint))


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


@pytest.fixture
def s3(s3_endpoint: str) -> S3Storage:
    return make_s3(s3_endpoint, make_bucket(s3_endpoint))


# --------------------------------------------------------------------------- contract


def test_put_stat_exists_delete_round_trip(storage: Storage) -> None:
    data = payload(1000)

    info = storage.put(KEY, io.BytesIO(data), content_type="audio/wav")

    assert info == storage.stat(KEY)
    assert (info.key, info.size, info.content_type) == (KEY, 1000, "audio/wav")
    assert info.etag and '"' not in info.etag
    assert storage.exists(KEY)
    assert read(storage, KEY) == data

    storage.delete(KEY)

    assert not storage.exists(KEY)
    with pytest.raises(ObjectNotFound):
        storage.stat(KEY)


def test_put_streams_a_large_body_in_bounded_reads(storage: Storage) -> None:
    data = payload(1024 * 1024 + 123)
    stream = TrickleStream(data)

    info = storage.put(KEY, stream)

    assert info.size == len(data)
    assert read(storage, KEY) == data
    # Never "read everything": every read asked for a bounded amount.
    assert stream.requests and all(0 <= size <= 8 * 1024 * 1024 for size in stream.requests)
    # A slice straddling the chunk boundary comes back exactly.
    assert (
        read(storage, KEY, CHUNK_SIZE - 5, CHUNK_SIZE + 5) == data[CHUNK_SIZE - 5 : CHUNK_SIZE + 6]
    )


def test_reads_come_in_chunks_of_at_most_64_kib(storage: Storage) -> None:
    data = payload(3 * CHUNK_SIZE + 1)
    storage.put(KEY, io.BytesIO(data))

    chunks = list(storage.open_range(KEY))

    assert b"".join(chunks) == data
    assert len(chunks) >= 4 and all(len(chunk) <= CHUNK_SIZE for chunk in chunks)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(0, 0, slice(0, 1), id="first-byte"),
        pytest.param(100, 199, slice(100, 200), id="middle"),
        pytest.param(999, 999, slice(999, 1000), id="last-byte"),
        pytest.param(990, None, slice(990, 1000), id="open-ended"),
        pytest.param(0, None, slice(0, 1000), id="whole"),
        pytest.param(995, 5000, slice(995, 1000), id="end-clamped"),
        pytest.param(0, 999, slice(0, 1000), id="exact-span"),
    ],
)
def test_byte_ranges_are_inclusive(
    storage: Storage, start: int, end: int | None, expected: slice
) -> None:
    data = payload(1000)
    storage.put(KEY, io.BytesIO(data))

    assert read(storage, KEY, start, end) == data[expected]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(-1, None, id="negative-start"),
        pytest.param(10, 9, id="end-before-start"),
        pytest.param(1000, None, id="start-at-size"),
        pytest.param(1500, 2000, id="start-past-size"),
    ],
)
def test_unsatisfiable_ranges_raise_value_error_before_streaming(
    storage: Storage, start: int, end: int | None
) -> None:
    storage.put(KEY, io.BytesIO(payload(1000)))

    with pytest.raises(ValueError):
        storage.open_range(KEY, start, end)  # not iterated: the call itself must raise


def test_empty_object_yields_nothing(storage: Storage) -> None:
    info = storage.put(KEY, io.BytesIO(b""))

    assert info.size == 0 == storage.stat(KEY).size
    assert read(storage, KEY) == b""
    assert read(storage, KEY, 0, 10) == b""


def test_missing_key_raises_object_not_found_eagerly(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        storage.stat(KEY)
    with pytest.raises(ObjectNotFound):
        storage.open_range(KEY)  # before the first chunk, so a route can still 404
    with pytest.raises(ObjectNotFound):
        storage.open_range(KEY, 5, 10)
    assert not storage.exists(KEY)


def test_delete_of_a_missing_key_is_fine(storage: Storage) -> None:
    storage.delete(KEY)
    storage.put(KEY, io.BytesIO(b"x"))
    storage.delete(KEY)
    storage.delete(KEY)

    assert not storage.exists(KEY)


def test_overwrite_replaces_content_and_etag(storage: Storage) -> None:
    first = storage.put(KEY, io.BytesIO(payload(500, seed=1)), content_type="audio/wav")
    # Same size on purpose: the ETag must not depend on size alone.
    second = storage.put(KEY, io.BytesIO(payload(500, seed=2)), content_type="audio/mpeg")

    assert second.etag != first.etag
    assert storage.stat(KEY) == second
    assert storage.stat(KEY).content_type == "audio/mpeg"
    assert read(storage, KEY) == payload(500, seed=2)


def test_etag_is_stable_while_the_object_is_unchanged(storage: Storage) -> None:
    info = storage.put(KEY, io.BytesIO(b"stable"))
    read(storage, KEY)

    assert storage.stat(KEY).etag == info.etag == storage.stat(KEY).etag


@pytest.mark.parametrize("content_type", ["audio/wav", "audio/ogg; codecs=opus"])
def test_content_type_round_trips(storage: Storage, content_type: str) -> None:
    info = storage.put(KEY, io.BytesIO(b"RIFF"), content_type=content_type)

    assert info.content_type == content_type
    assert storage.stat(KEY).content_type == content_type


def test_list_keys_filters_by_prefix(storage: Storage) -> None:
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    keys = [
        generation_key(org_a, uuid.uuid4()),
        generation_key(org_a, uuid.uuid4()),
        generation_key(org_b, uuid.uuid4()),
        custom_voice_key(org_a, uuid.uuid4()),
        system_voice_key(uuid.uuid4()),
    ]
    for key in keys:
        storage.put(key, io.BytesIO(b"x"), content_type="audio/wav")

    assert sorted(storage.list_keys()) == sorted(keys)
    assert sorted(storage.list_keys(f"generations/orgs/{org_a}/")) == sorted(keys[:2])
    assert sorted(storage.list_keys("generations/")) == sorted(keys[:3])
    assert list(storage.list_keys("voices/sys")) == [keys[4]]  # a prefix, not a folder
    assert list(storage.list_keys("nothing/here/")) == []


def test_list_keys_refuses_an_escaping_prefix(storage: Storage) -> None:
    with pytest.raises(InvalidKey):
        list(storage.list_keys("../"))


BAD_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("../x", id="parent"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("a/../../b", id="parent-inside"),
    pytest.param("a/./b", id="dot-segment"),
    pytest.param("a//b", id="empty-segment"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("..\\..\\x", id="windows-parent"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("a/.meta", id="hidden-segment"),
    pytest.param("\udcff", id="lone-surrogate"),
    pytest.param("k" * 1025, id="too-long"),
    pytest.param("é" * 513, id="too-many-utf8-bytes"),
    pytest.param("a/" + "s" * 241, id="segment-too-long"),
]

OPERATIONS: dict[str, Callable[[Storage, str], object]] = {
    "put": lambda storage, key: storage.put(key, io.BytesIO(b"x")),
    "stat": lambda storage, key: storage.stat(key),
    "exists": lambda storage, key: storage.exists(key),
    "open_range": lambda storage, key: storage.open_range(key),
    "delete": lambda storage, key: storage.delete(key),
    "presigned_url": lambda storage, key: storage.presigned_url(key),
}


@pytest.mark.parametrize("key", BAD_KEYS)
def test_validate_key_refuses_malformed_and_escaping_keys(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../b", "a//b", "a\\b", "a\x00b", ""])
def test_every_operation_refuses_bad_keys(
    storage: Storage, tmp_path: Path, operation: str, key: str
) -> None:
    with pytest.raises(InvalidKey):
        OPERATIONS[operation](storage, key)
    # Refused before touching the disk: not even the root folder was created.
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "key",
    ["a", "voices/system/x", "a-b_c.d/e~f", "é/ü/名前", "k" * 240, "a/" * 400 + "b"],
)
def test_validate_key_returns_good_keys_unchanged(key: str) -> None:
    assert validate_key(key) is key


def test_check_passes_on_a_good_config(storage: Storage) -> None:
    storage.check()


def test_an_unread_stream_releases_its_handle(storage: Storage) -> None:
    storage.put(KEY, io.BytesIO(payload(3 * CHUNK_SIZE)))

    abandoned = storage.open_range(KEY)
    partial = storage.open_range(KEY)
    next(partial)
    partial.close()  # type: ignore[attr-defined]  # WSGI servers call this
    del abandoned, partial
    # A leaked file or socket would surface here as an unraisable ResourceWarning,
    # which filterwarnings=error turns into a failure.
    gc.collect()

    assert read(storage, KEY, 0, 0) == payload(1)


def test_a_failed_upload_leaves_no_object(storage: Storage, tmp_path: Path) -> None:
    stream = TrickleStream(payload(300_000), fail_after=100_000)

    with pytest.raises(ConnectionResetError):
        storage.put(KEY, stream)

    assert not storage.exists(KEY)
    assert list(storage.list_keys()) == []
    if isinstance(storage, LocalStorage):
        leftovers = [p.name for p in storage.root.rglob("*") if p.is_file()]
        assert leftovers == []


# --------------------------------------------------------------------------- local only


def test_local_storage_creates_its_root_only_on_put(tmp_path: Path) -> None:
    root = tmp_path / "later" / "objects"
    storage = LocalStorage(root)

    assert not root.exists()
    assert not storage.exists(KEY)
    assert list(storage.list_keys()) == []
    assert not root.exists()

    storage.put(KEY, io.BytesIO(b"x"))

    assert (root / KEY).read_bytes() == b"x"


def test_local_keeps_content_type_in_a_hidden_sidecar(local: LocalStorage) -> None:
    local.put(KEY, io.BytesIO(b"x"), content_type="audio/wav")
    folder = (local.root / KEY).parent

    assert sorted(p.name for p in folder.iterdir()) == [f".{GENERATION}.meta", str(GENERATION)]
    assert list(local.list_keys()) == [KEY]

    # Putting without a type must not leave the old one behind.
    info = local.put(KEY, io.BytesIO(b"y"))

    assert info.content_type is None
    assert local.stat(KEY).content_type is None
    assert sorted(p.name for p in folder.iterdir()) == [str(GENERATION)]


def test_local_reader_keeps_the_bytes_it_started_with(local: LocalStorage) -> None:
    old, new = payload(3 * CHUNK_SIZE, seed=1), payload(3 * CHUNK_SIZE, seed=2)
    local.put(KEY, io.BytesIO(old))
    stream = local.open_range(KEY)
    first = next(stream)

    local.put(KEY, io.BytesIO(new))

    assert first + b"".join(stream) == old
    assert read(local, KEY) == new


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_local_refuses_a_symlinked_folder_pointing_outside(
    local: LocalStorage, tmp_path: Path, operation: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    local.root.mkdir()
    (local.root / "evil").symlink_to(outside, target_is_directory=True)

    with pytest.raises(InvalidKey, match="outside"):
        OPERATIONS[operation](local, "evil/secret")

    assert (outside / "secret").read_bytes() == b"secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_local_refuses_a_symlinked_file_pointing_outside(
    local: LocalStorage, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    local.root.mkdir()
    (local.root / "link").symlink_to(secret)

    for operation in OPERATIONS.values():
        with pytest.raises(InvalidKey):
            operation(local, "link")
    assert list(local.list_keys()) == []
    assert secret.read_bytes() == b"secret"


def test_local_key_used_as_a_folder_is_a_storage_error(local: LocalStorage) -> None:
    local.put("a", io.BytesIO(b"x"))

    with pytest.raises(StorageError, match="folder"):
        local.put("a/b", io.BytesIO(b"y"))
    with pytest.raises(ObjectNotFound):
        local.stat("a/b")


def test_local_check_names_a_root_that_is_not_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    root.write_text("oops")

    with pytest.raises(StorageUnavailable, match=str(root)):
        LocalStorage(root).check()


def test_local_has_no_presigned_urls(local: LocalStorage) -> None:
    local.put(KEY, io.BytesIO(b"x"))

    assert local.presigned_url(KEY, filename="a.wav") is None


# Segments mixing ordinary text with the pieces path attacks are made of.
_segments = st.one_of(
    st.sampled_from(["", ".", "..", "...", ".x", "a", "é", "\\", "\x00", "~", "..\\"]),
    st.text(min_size=1, max_size=6),
)
_keys = st.one_of(
    st.lists(_segments, min_size=1, max_size=5).map("/".join),
    st.text(max_size=30),
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,  # keep the checkout free of a .hypothesis folder
    suppress_health_check=[HealthCheck.too_slow],
)
@given(key=_keys)
def test_any_accepted_key_stays_inside_the_local_root(
    tmp_path_factory: pytest.TempPathFactory, key: str
) -> None:
    base = tmp_path_factory.mktemp("fuzz")
    storage = LocalStorage(base / "root")
    try:
        validate_key(key)
    except InvalidKey:
        event("refused")  # --hypothesis-show-statistics shows the accepted/refused mix
        with pytest.raises(InvalidKey):
            storage.put(key, io.BytesIO(b"x"))
        assert list(base.iterdir()) == []
        return
    event("accepted")

    storage.put(key, io.BytesIO(b"x"))

    root = (base / "root").resolve()
    written = [p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(written) == 1
    assert written[0].resolve().is_relative_to(root)
    assert written[0].resolve() == (root / key).resolve()
    assert list(storage.list_keys()) == [key]
    assert read(storage, key) == b"x"


# --------------------------------------------------------------------------- S3 only


def test_s3_client_is_built_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a boto3 client was built too early")

    monkeypatch.setattr(boto3.session.Session, "client", refuse)

    S3Storage(bucket="lazy-bucket", endpoint_url="http://127.0.0.1:1")
    storage_from_config({"STORAGE_BACKEND": "s3", "S3_BUCKET": "lazy-bucket"})


def test_s3_etag_matches_the_bucket_without_quotes(s3: S3Storage, s3_endpoint: str) -> None:
    info = s3.put(KEY, io.BytesIO(b"hello"), content_type="audio/wav")
    raw = s3_client(s3_endpoint).head_object(Bucket=s3.bucket, Key=KEY)

    assert raw["ETag"] == f'"{info.etag}"'
    assert raw["ContentType"] == "audio/wav"


def test_s3_large_non_seekable_stream_goes_up_in_parts(s3: S3Storage) -> None:
    data = payload(8 * 1024 * 1024 + 1)  # just over the multipart threshold
    stream = TrickleStream(data)

    info = s3.put(KEY, stream, content_type="audio/wav")

    assert info.size == len(data)
    assert info.etag.endswith("-2")  # S3's multipart ETag: <hash>-<part count>
    assert info.content_type == "audio/wav"
    assert read(s3, KEY, len(data) - 3) == data[-3:]
    assert max(stream.requests) <= 8 * 1024 * 1024


@settings(database=None)
@given(
    data=st.binary(max_size=300),
    cuts=st.lists(st.integers(1, 64), max_size=10),
    first=st.integers(0, 320),
    length=st.none() | st.integers(0, 320),
)
def test_ignored_range_is_cut_out_locally(
    data: bytes, cuts: list[int], first: int, length: int | None
) -> None:
    # Some S3-compatible servers answer a Range request with the whole object.
    chunks, rest = [], data
    for cut in cuts:
        chunks.append(rest[:cut])
        rest = rest[cut:]
    chunks.append(rest)
    last = None if length is None else first + length

    sliced = b"".join(_slice_chunks(iter(chunks), first, last))

    assert sliced == data[first : None if last is None else last + 1]


def test_s3_presigned_url_downloads_with_plain_urllib(s3: S3Storage) -> None:
    data = payload(2048)
    s3.put(KEY, io.BytesIO(data), content_type="audio/wav")

    url = s3.presigned_url(KEY, expires_in=60, filename='Grüße "take 1".wav')

    assert url is not None and url.startswith(s3.endpoint_url or "")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        body = response.read()
        disposition = response.headers["Content-Disposition"]
    assert body == data
    assert disposition.startswith('attachment; filename="Gr__e _take 1_.wav"')
    assert "filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22take%201%22.wav" in disposition


def test_s3_presigned_url_refuses_silly_lifetimes(s3: S3Storage) -> None:
    with pytest.raises(ValueError):
        s3.presigned_url(KEY, expires_in=0)
    with pytest.raises(ValueError):
        s3.presigned_url(KEY, expires_in=8 * 24 * 3600)


MISSING_BUCKET_OPERATIONS: dict[str, Callable[[S3Storage], object]] = {
    "check": lambda storage: storage.check(),
    "stat": lambda storage: storage.stat(KEY),
    "exists": lambda storage: storage.exists(KEY),
    "open_range": lambda storage: storage.open_range(KEY),
    "put": lambda storage: storage.put(KEY, io.BytesIO(b"x")),
    "delete": lambda storage: storage.delete(KEY),
    "list_keys": lambda storage: list(storage.list_keys()),
}


@pytest.mark.parametrize("operation", list(MISSING_BUCKET_OPERATIONS))
def test_s3_missing_bucket_is_unavailable_and_named(s3_endpoint: str, operation: str) -> None:
    storage = make_s3(s3_endpoint, "voxboard-no-such-bucket")

    with pytest.raises(StorageUnavailable) as caught:
        MISSING_BUCKET_OPERATIONS[operation](storage)

    assert "'voxboard-no-such-bucket' does not exist" in str(caught.value)
    assert s3_endpoint in str(caught.value)


def test_s3_unreachable_endpoint_fails_fast_and_names_it() -> None:
    # A bound socket that never listens: connections are refused, and no other
    # process can take the port while the test runs.
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{placeholder.getsockname()[1]}"
        storage = make_s3(
            endpoint, "voxboard-bucket", connect_timeout=1, read_timeout=1, max_attempts=1
        )
        sent: list[str] = []
        storage._client().meta.events.register(  # noqa: SLF001  (count real attempts)
            "before-send.s3", lambda request, **_: sent.append(request.url)
        )

        with pytest.raises(StorageUnavailable) as caught:
            storage.check()

    assert len(sent) == 1  # one attempt, as configured: no retry loop behind a refusal
    assert endpoint in str(caught.value)
    assert "'voxboard-bucket'" in str(caught.value)


def test_s3_without_credentials_says_so(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    # A fresh session: the shared one might have cached credentials from the environment.
    storage = make_s3(
        s3_endpoint, "voxboard-bucket", access_key_id=None, secret_access_key=None, session=None
    )

    with pytest.raises(StorageUnavailable, match="credentials"):
        storage.check()


def test_s3_half_a_credential_pair_is_a_config_error() -> None:
    with pytest.raises(StorageError, match="both"):
        S3Storage(bucket="voxboard-bucket", access_key_id="AKIA")


def test_s3_repr_hides_the_secret() -> None:
    storage = S3Storage(bucket="b-b-b", access_key_id="id", secret_access_key="hunter2")

    assert "hunter2" not in repr(storage)


def test_s3_skips_foreign_keys_that_break_our_rules(s3: S3Storage, s3_endpoint: str) -> None:
    s3_client(s3_endpoint).put_object(Bucket=s3.bucket, Key="a//b", Body=b"x")
    s3.put("a/c", io.BytesIO(b"x"))

    assert list(s3.list_keys("a/")) == ["a/c"]


# --------------------------------------------------------------------------- keys


def test_key_builders_follow_the_documented_layout() -> None:
    assert system_voice_key(VOICE) == f"voices/system/{VOICE}"
    assert custom_voice_key(ORG, VOICE) == f"voices/orgs/{ORG}/{VOICE}"
    assert generation_key(ORG, GENERATION) == f"generations/orgs/{ORG}/{GENERATION}"
    assert system_voice_key(str(VOICE)) == system_voice_key(VOICE)


@pytest.mark.parametrize("bad_id", ["", "..", "a/b", "../../etc", ".hidden"])
def test_key_builders_refuse_ids_that_would_change_the_layout(bad_id: str) -> None:
    for build in (
        lambda: system_voice_key(bad_id),
        lambda: custom_voice_key(bad_id, VOICE),
        lambda: custom_voice_key(ORG, bad_id),
        lambda: generation_key(bad_id, GENERATION),
    ):
        with pytest.raises(InvalidKey):
            build()


def test_keys_read_back_the_row_their_builder_was_given() -> None:
    assert row_of(system_voice_key(VOICE)) == ("voices", VOICE)
    assert row_of(custom_voice_key(ORG, VOICE)) == ("voices", VOICE)
    assert row_of(custom_voice_revision_key(ORG, VOICE, GENERATION.hex)) == ("voices", VOICE)
    assert row_of(generation_key(ORG, GENERATION)) == ("generations", GENERATION)
    assert row_of(generation_key(ORG, GENERATION, "a-1_b")) == ("generations", GENERATION)
    assert row_of(probe_key("voices")) is None and is_probe_key(probe_key("generations"))
    assert not is_probe_key(system_voice_key(VOICE))
    assert row_of(f"voices/system/{VOICE}/extra") is None


# --------------------------------------------------------------------------- guard


def test_the_guard_stays_closed_when_the_backend_says_the_endpoint_answered() -> None:
    guard = CallGuard(threshold=1)

    def fail(answered: Callable[[StorageUnavailable], bool] | None = None) -> None:
        with pytest.raises(StorageUnavailable):
            with guard.call(answered) if answered else guard.call():
                raise StorageUnavailable("the bucket is missing")

    fail(lambda exc: True)
    assert not guard.is_open
    fail()  # by default an unavailable backend did not answer
    assert guard.is_open


# --------------------------------------------------------------------------- package


def test_each_storage_name_has_one_home_and_the_front_exports_it() -> None:
    package = Path(storage_package.__file__).parent
    homes: dict[str, list[str]] = {}
    for path in sorted(package.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                continue
            for name in names:
                homes.setdefault(name, []).append(path.stem)

    assert {name: where for name, where in homes.items() if len(where) > 1} == {
        "log": ["consistency", "local", "media"]  # each module's own logger
    }
    for name in storage_package.__all__:
        assert hasattr(storage_package, name), name
        assert name in homes, name


# --------------------------------------------------------------------------- config


def test_storage_from_config_builds_local_by_default(tmp_path: Path) -> None:
    storage = storage_from_config({"STORAGE_LOCAL_ROOT": str(tmp_path / "o")})

    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "o"


def test_storage_from_config_builds_s3() -> None:
    storage = storage_from_config(
        {
            "STORAGE_BACKEND": "S3",
            "S3_BUCKET": "voxboard-media",
            "S3_ENDPOINT_URL": "https://example.r2.cloudflarestorage.com",
            "S3_REGION": "auto",
            "S3_ACCESS_KEY_ID": "id",
            "S3_SECRET_ACCESS_KEY": "secret",
            "S3_ADDRESSING_STYLE": "",
        }
    )

    assert isinstance(storage, S3Storage)
    assert storage.bucket == "voxboard-media"
    assert storage.endpoint_url == "https://example.r2.cloudflarestorage.com"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"STORAGE_BACKEND": "s3"}, "S3_BUCKET"),
        ({"STORAGE_BACKEND": "s3", "S3_BUCKET": "  "}, "S3_BUCKET"),
        ({"STORAGE_BACKEND": "ftp"}, "unknown STORAGE_BACKEND 'ftp'"),
        ({"STORAGE_BACKEND": "local"}, "STORAGE_LOCAL_ROOT"),
        ({"STORAGE_BACKEND": "s3", "S3_BUCKET": "b-b-b", "S3_ADDRESSING_STYLE": "x"}, "x"),
    ],
)
def test_storage_from_config_explains_bad_settings(config: dict[str, Any], message: str) -> None:
    with pytest.raises(StorageError, match=message):
        storage_from_config(config)


def test_init_app_reserves_a_slot_and_get_storage_fills_it_once(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(STORAGE_BACKEND="local", STORAGE_LOCAL_ROOT=None)

    init_app(app)

    assert app.extensions[EXTENSION_KEY] is None
    with app.app_context():
        storage = get_storage()
        assert get_storage() is storage
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "instance" / "objects"
    assert not storage.root.exists()


def test_storage_from_config_passes_set_limits_and_leaves_the_others_default() -> None:
    storage = storage_from_config(
        {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": "voxboard-media",
            "STORAGE_READ_TIMEOUT": 4,
            "STORAGE_MAX_ATTEMPTS": None,
        }
    )
    default = S3Storage(bucket="voxboard-media")

    assert isinstance(storage, S3Storage) and storage.guard is not None
    assert storage._read_timeout == 4.0  # noqa: SLF001
    assert storage._connect_timeout == default._connect_timeout  # noqa: SLF001
    assert storage._max_attempts == default._max_attempts  # noqa: SLF001


def test_get_storage_uses_a_backend_placed_by_a_test(tmp_path: Path) -> None:
    app = Flask(__name__)
    init_app(app)
    placed = LocalStorage(tmp_path)
    app.extensions[EXTENSION_KEY] = placed

    with app.app_context():
        assert get_storage() is placed


def test_object_info_is_a_frozen_value() -> None:
    info = ObjectInfo(key="k", size=1, etag="e", content_type=None)

    with pytest.raises(AttributeError):
        info.size = 2  # type: ignore[misc]
    assert info == ObjectInfo("k", 1, "e", None)


def test_os_errors_do_not_escape_as_oserror(local: LocalStorage, tmp_path: Path) -> None:
    blocker = tmp_path / "objects"
    blocker.write_text("a file where the root should be")

    with pytest.raises(StorageUnavailable, match="root") as caught:
        local.put(KEY, io.BytesIO(b"x"))

    assert not isinstance(caught.value, OSError)
    assert str(blocker) in str(caught.value)
    assert os.path.isfile(blocker)
