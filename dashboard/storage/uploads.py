"""Receive file uploads without reading more of the body than a view allows.

Flask-WTF checks CSRF in an app-wide `before_request` by reading `request.form`, which
parses the whole body before any view runs, so a view that lowers the size limit
itself would be too late: a 2 GB upload would be spooled to disk first. Views that
take files are therefore wrapped in `receives_upload(setting)`, which:

1. sets this request's own limit (`request.max_content_length`, Flask ≥ 3.1) to the
   setting plus room for the other form fields;
2. parses the body. Werkzeug refuses a declared `Content-Length` over the limit before
   reading a byte, and stops a chunked body as soon as it passes the limit; file parts
   go to temporary files that spill to disk past `SPOOL_BYTES`, so nothing large sits
   in memory;
3. checks the CSRF token exactly as the automatic check would have (the view is
   exempt from that one, and only from that one).

A body over the limit is not parsed: the wrapped view still runs (so it can answer 404
or 403 first, as it would for any body) and learns from `body_too_large()` that it
should answer 413 with its own page, without reading the form. Such a refusal skips
the CSRF check, which needs the body; it changes nothing, so there is nothing to forge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import wraps
from tempfile import SpooledTemporaryFile
from typing import Any, BinaryIO

from flask import current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from dashboard.extensions import csrf

# Room for the fields that travel with the file (name, description, CSRF token) and
# the multipart boundaries: a file of exactly the allowed size must still get in.
FORM_OVERHEAD_BYTES = 64 * 1024
# File parts stay in memory up to this size, then spill to a temporary file.
SPOOL_BYTES = 512 * 1024
READ_CHUNK = 64 * 1024


def upload_limit(setting: str) -> int:
    """Return the largest file, in bytes, the setting `setting` allows."""
    return int(current_app.config[setting])


def receives_upload(setting: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a view whose POST carries a file of at most `current_app.config[setting]` bytes."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if request.method in current_app.config["WTF_CSRF_METHODS"]:
                if parse_body_within(upload_limit(setting) + FORM_OVERHEAD_BYTES):
                    _check_csrf()
                else:
                    g.upload_body_too_large = True
            return view(*args, **kwargs)

        # The automatic check would parse the body before the limit is set; the
        # wrapper above runs the same check right after setting it.
        return csrf.exempt(wrapped)

    return decorator


def parse_body_within(max_bytes: int) -> bool:
    """Parse the request body if it fits in `max_bytes`; return False when it doesn't.

    File parts go to temporary files that spill to disk past `SPOOL_BYTES`. Werkzeug
    abandons the file it was writing when a body turns out too large half-way (a
    chunked upload); those are closed here instead of waiting for the garbage collector.
    """
    request.max_content_length = max_bytes
    opened: list[SpooledTemporaryFile[bytes]] = []

    def spool(*_args: Any, **_kwargs: Any) -> SpooledTemporaryFile[bytes]:
        opened.append(SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b"))
        return opened[-1]

    # Werkzeug's documented hook for where file parts go, set for this request only.
    request._get_file_stream = spool  # type: ignore[method-assign]
    try:
        request.files  # noqa: B018  (parses the body under the limit)
    except RequestEntityTooLarge:
        for stream in opened:
            stream.close()
        return False
    except BaseException:
        for stream in opened:
            stream.close()
        raise
    return True


def _check_csrf() -> None:
    config = current_app.config
    if config.get("WTF_CSRF_ENABLED", True) and config.get("WTF_CSRF_CHECK_DEFAULT", True):
        csrf.protect()


def body_too_large() -> bool:
    """Tell whether this request's body was refused for its size (and so never parsed)."""
    return bool(g.get("upload_body_too_large"))


def stream_size(stream: BinaryIO) -> int:
    """Return the number of bytes in a seekable stream, leaving it rewound."""
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def read_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Yield a seekable stream's bytes from the start in 64 KiB chunks, then rewind it."""
    stream.seek(0)
    try:
        while chunk := stream.read(READ_CHUNK):
            yield chunk
    finally:
        stream.seek(0)
