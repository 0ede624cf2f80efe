"""The object-key layout: the rules every key obeys, the builders of the app's keys,
and the reading of a key back into the row it belongs to.

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
    replaced audio), :func:`generation_key` and :func:`probe_key`, and read back by
    :func:`row_of` and :func:`is_probe_key`.
"""

from __future__ import annotations

import re
import uuid

from dashboard.storage.base import InvalidKey

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 240

# C0 and C1 control characters (NUL, newline, DEL...) and backslash: they break
# logs, headers and Windows tools, and a backslash reads as a separator to some.
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")


def quote_key(key: str) -> str:
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
        raise InvalidKey(f"object key {quote_key(key)} is not valid UTF-8 text") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"object key is {size} bytes long; the limit is {MAX_KEY_BYTES}")
    if match := _FORBIDDEN_CHARS.search(key):
        raise InvalidKey(
            f"object key {quote_key(key)} contains a forbidden character {match.group()!r}"
        )
    if key.startswith("/"):
        raise InvalidKey(f"object key {quote_key(key)} is absolute (starts with '/')")
    if key.endswith("/"):
        raise InvalidKey(f"object key {quote_key(key)} ends with '/' and so names a folder")
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey(f"object key {quote_key(key)} has an empty segment ('//')")
        if segment in (".", ".."):
            raise InvalidKey(f"object key {quote_key(key)} has a {segment!r} segment")
        if segment.startswith("."):
            raise InvalidKey(
                f"object key {quote_key(key)} has a segment starting with '.'; "
                "those names are reserved for the storage backend's own files"
            )
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidKey(
                f"object key {quote_key(key)} has a segment over {MAX_SEGMENT_BYTES} bytes"
            )
    return key


def is_valid_key(key: str) -> bool:
    """Tell whether ``key`` obeys every key rule (listings skip foreign keys that don't)."""
    try:
        validate_key(key)
    except InvalidKey:
        return False
    return True


def validate_prefix(prefix: str) -> str:
    """Accept "" or the start of a valid key, such as ``voices/`` or ``voices/sys``."""
    if prefix:
        # Completing the prefix with one harmless character reuses every key rule,
        # including the ones about trailing '/' and '..' segments.
        validate_key(prefix + "x")
    return prefix


def _segment(value: uuid.UUID | str, what: str) -> str:
    """Render one id as a single key segment, refusing anything that would add nesting."""
    text = str(value)
    if not text or "/" in text:
        raise InvalidKey(f"{what} {text!r} cannot be used as one key segment")
    return text


# The app's top-level folders: every key it builds starts with one of these (a sweep
# lists them, readiness probes each).
TOP_LEVEL_FOLDERS = ("voices", "generations")


def system_voice_key(voice_id: uuid.UUID | str) -> str:
    """Return the key of a built-in voice's sample: ``voices/system/{voice_id}``."""
    return validate_key(f"voices/system/{_segment(voice_id, 'voice id')}")


def custom_voice_key(org_id: uuid.UUID | str, voice_id: uuid.UUID | str) -> str:
    """Return the key of an org's custom voice: ``voices/orgs/{org_id}/{voice_id}``."""
    org = _segment(org_id, "org id")
    return validate_key(f"voices/orgs/{org}/{_segment(voice_id, 'voice id')}")


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


# Reading keys back: the builders above, as patterns. Ids are UUIDs as `str()` writes
# them; a revision or attempt suffix (`.{token}`) belongs to the same row.
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SUFFIX = r"(?:\.[A-Za-z0-9_-]+)?"
_ROW_KEYS = (
    ("voices", re.compile(rf"^voices/system/(?P<id>{_UUID})$")),
    ("voices", re.compile(rf"^voices/orgs/{_UUID}/(?P<id>{_UUID}){_SUFFIX}$")),
    ("generations", re.compile(rf"^generations/orgs/{_UUID}/(?P<id>{_UUID}){_SUFFIX}$")),
)
_PROBE_KEY = re.compile(rf"^(?:{'|'.join(TOP_LEVEL_FOLDERS)})/probe/{_UUID}$")


def row_of(key: str) -> tuple[str, uuid.UUID] | None:
    """Return the table and row id a key was built for, or None for keys the app never builds."""
    for table, pattern in _ROW_KEYS:
        if match := pattern.match(key):
            return table, uuid.UUID(match["id"])
    return None


def is_probe_key(key: str) -> bool:
    """Tell whether ``key`` is a readiness probe object's (see :func:`probe_key`)."""
    return _PROBE_KEY.match(key) is not None
