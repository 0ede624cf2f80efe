"""Serve objects from storage over HTTP with Range, ETag and caching headers."""

from __future__ import annotations

import logging
from urllib.parse import quote

from flask import Response, abort, request

from dashboard.storage.base import ObjectNotFound, Storage, StorageError

log = logging.getLogger(__name__)


def send_stored_object(
    storage: Storage,
    key: str,
    *,
    size: int,
    etag: str,
    content_type: str,
    max_age: int = 0,
    download_name: str | None = None,
    inline: bool = False,
) -> Response:
    """Stream `key` whole (200) or one byte range of it (206), without buffering it.

    `size` and `etag` come from the database row, so the first byte leaves without
    an extra round trip to the bucket. A multi-range request is answered whole, which
    RFC 9110 allows; an unsatisfiable range gets 416 with the real length.
    """
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": f"private, max-age={max_age}" if max_age else "private, no-cache",
    }
    if download_name:
        headers["Content-Disposition"] = content_disposition(download_name, inline=inline)

    if request.if_none_match.contains(etag):
        response = Response(status=304, headers=headers)
        response.set_etag(etag)
        return response

    byte_range = request.range
    if byte_range is not None and request.if_range.etag and request.if_range.etag != etag:
        byte_range = None  # the client's copy is stale: send the whole new object
    if byte_range is not None and len(byte_range.ranges) != 1:
        byte_range = None

    status, start, end = 200, 0, size - 1
    if byte_range is not None:
        bounds = byte_range.range_for_length(size)
        if bounds is None:
            response = Response(
                "Requested range not satisfiable.\n",
                status=416,
                mimetype="text/plain",
                headers={**headers, "Content-Range": f"bytes */{size}"},
            )
            response.set_etag(etag)
            return response
        status, (start, end) = 206, (bounds[0], bounds[1] - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"

    try:
        chunks = storage.open_range(key, start, end) if size else iter(())
    except ObjectNotFound:
        # The row says the bytes exist, so this is storage losing them (or the wrong
        # root or bucket configured), not a wrong link: a fault for operators to see.
        log.error("object %s is missing from storage although its row says it exists", key)
        abort(
            502,
            "This audio should be in storage but can't be found there. The fault has been "
            "logged for the operators; please try again later.",
        )
    except StorageError as exc:
        log.error("storage failed while opening %s: %s", key, exc)
        abort(502, "Audio storage is unavailable right now; please try again shortly.")

    response = Response(
        chunks, status=status, mimetype=content_type, headers=headers, direct_passthrough=True
    )
    response.content_length = end - start + 1 if size else 0
    response.set_etag(etag)
    return response


def content_disposition(filename: str, inline: bool = False) -> str:
    """Return an attachment (or inline) header that survives non-ASCII names (RFC 6266/5987).

    Inline still names the file, so "Save audio as…" in the browser suggests it.
    """
    ascii_name = filename.encode("ascii", "ignore").decode() or "audio"
    ascii_name = ascii_name.replace('"', "").replace("\\", "")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
