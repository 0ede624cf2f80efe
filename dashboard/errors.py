"""Readable error responses: an HTML page for browsers, plain text for the rest."""

from __future__ import annotations

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from dashboard.htmx import wants_fragment


def handle_http_error(error: HTTPException) -> tuple[str, int, dict[str, str]] | HTTPException:
    """Render HTTP errors with the site's layout unless the client wants text."""
    if error.code is None or error.code < 400:
        return error
    headers = dict(error.get_headers())
    headers.pop("Content-Type", None)
    best = request.accept_mimetypes.best_match(["text/html", "text/plain"])
    if wants_fragment() or best != "text/html" or request.path.endswith("/audio"):
        return (
            (error.description or error.name) + "\n",
            error.code,
            {**headers, "Content-Type": "text/plain; charset=utf-8"},
        )
    body = render_template("error.html", error=error)
    return body, error.code, {**headers, "Content-Type": "text/html; charset=utf-8"}


def init_app(app: Flask) -> None:
    """Register the handler for every HTTP error."""
    app.register_error_handler(HTTPException, handle_http_error)
