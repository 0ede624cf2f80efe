"""The one place that knows htmx's headers: fragment-or-page and response headers."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template
from htmx_flask import request
from jinja2_fragments.flask import render_block


def wants_fragment() -> bool:
    """Tell whether to answer with a fragment: an htmx request that isn't a history restore."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_page(template: str, block: str | None = None, **context: Any) -> Response:
    """Render `template` whole, or only its `block` for htmx; vary the cache on it."""
    if block and wants_fragment():
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    response = Response(body, mimetype="text/html")
    response.vary.add("HX-Request")
    return response


def redirect_to(location: str) -> Response:
    """Redirect after a write: 303 for plain forms, `HX-Redirect` for htmx requests."""
    if request.htmx:
        response = Response(status=204)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location, code=303)


def trigger(response: Response, event: str) -> Response:
    """Tell the page an event happened (`HX-Trigger`), e.g. to refresh a list."""
    response.headers["HX-Trigger"] = event
    return response
