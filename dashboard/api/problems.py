"""Errors of the public API as RFC 9457 problem details (`application/problem+json`).

Every error under /api/v1 answers with a JSON object: `type` (a link to the
problem's explanation in the API reference, or `about:blank` for a plain HTTP
error), `title` (the status's phrase), `status`, `detail` (a sentence a person
understands: what went wrong and what to do), and for validation errors `errors`, one
entry per problem with the field's `path`, where it was sent (`in`: body, query,
header, files, form) and the `message`.
"""

from __future__ import annotations

import http
import json
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Response, request, url_for
from werkzeug.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"
API_PREFIX = "/api/v1"

# Problems a client may want to tell apart, each explained in the API reference.
KINDS = {
    "invalid-key": "The API key is missing, malformed, unknown, expired or revoked.",
    "missing-scope": "The API key exists but wasn't given the scope this endpoint needs.",
    "validation": "A field of the request is missing or wrong; `errors` lists each one.",
    "quota-exceeded": "The organisation's or the key's monthly characters don't fit the text.",
    "not-ready": "The generation has no audio yet; poll it until `status` is `succeeded`.",
    "idempotency-mismatch": "The Idempotency-Key was used before with a different request.",
    "rate-limited": "The key sent too many requests; wait `Retry-After` seconds.",
}
# webargs' names for where a value was sent, in OpenAPI's words.
LOCATIONS = {"json": "body", "querystring": "query", "query": "query", "headers": "header"}


class ApiProblem(HTTPException):
    """An API error with a problem kind (see KINDS) and, optionally, field errors."""

    def __init__(
        self,
        status: int,
        detail: str,
        kind: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = status
        self.kind = kind
        self.errors = errors
        self.extra_headers = dict(headers or {})


def is_api_path() -> bool:
    """Tell whether the request is for the public API (errors answer as problems)."""
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def problem_type(kind: str | None) -> str:
    """Return the URL that explains `kind` (the API reference's anchor), or about:blank."""
    if kind is None:
        return "about:blank"
    return url_for("api_docs.reference", _external=True, _anchor=f"problem-{kind}")


def render(
    status: int,
    detail: str,
    kind: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Return the problem response."""
    body: dict[str, Any] = {
        "type": problem_type(kind),
        "title": http.HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body, ensure_ascii=False), status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def from_http_error(error: HTTPException, detail: str, headers: Mapping[str, str]) -> Response:
    """Turn any HTTP error raised under /api/v1 into a problem (`errors.handle_http_error`)."""
    status = error.code or 500
    if isinstance(error, ApiProblem):
        return render(status, detail, error.kind, error.errors, {**headers, **error.extra_headers})
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if status == 422 and isinstance(messages, Mapping):
        errors = list(field_errors(messages))
        summary = "; ".join(
            f"{e['path'] or 'the request'}: {e['message'].rstrip('.')}" for e in errors[:3]
        )
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return render(
            422,
            f"The request has {_count(len(errors))}: {summary}{more}.",
            "validation",
            errors,
            headers,
        )
    kind = "rate-limited" if status == 429 else None
    return render(status, detail, kind, None, headers)


def _count(n: int) -> str:
    return "a problem" if n == 1 else f"{n} problems"


def field_errors(messages: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    """Flatten webargs' `{location: {field: [message, …]}}` into one entry per message."""
    for location, fields in messages.items():
        where = LOCATIONS.get(location, location)
        yield from _walk(fields, "", where)


def _walk(node: Any, path: str, where: str) -> Iterator[dict[str, str]]:
    if isinstance(node, Mapping):
        for name, child in node.items():
            if name == "_schema":
                yield from _walk(child, path, where)
            else:
                yield from _walk(child, f"{path}.{name}" if path else str(name), where)
    elif isinstance(node, list | tuple):
        for child in node:
            yield from _walk(child, path, where)
    else:
        yield {"path": path, "in": where, "message": str(node)}
