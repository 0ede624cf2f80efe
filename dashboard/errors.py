"""Readable error responses: a page for browsers, a fragment for htmx, text for the rest,
and problem details (RFC 9457) for the public API."""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from werkzeug.exceptions import Conflict, HTTPException, InternalServerError, ServiceUnavailable

from dashboard.api import problems
from dashboard.encryption import SecretUnreadable
from dashboard.extensions import db, login_manager
from dashboard.htmx import wants_fragment

log = logging.getLogger(__name__)

# What a person should read, when the code that raised the error said nothing better.
FRIENDLY = {
    400: "The request was not understood. Go back, check what you entered and try again.",
    401: "This needs you to sign in (or, for the API, a valid API key).",
    403: "You don't have permission to do that.",
    404: "There is nothing here. The link may be wrong, or the item was deleted.",
    405: "That action isn't available here.",
    413: "That upload is too large.",
    429: "Too many requests. Please wait a moment and try again.",
    500: "Something went wrong on our side. It has been logged; please try again.",
    503: "The service is unavailable for a moment. Please try again shortly.",
}
TITLES = {
    429: "Slow down",
    500: "Server error",
    403: "Not allowed",
    404: "Not found",
    409: "Changed meanwhile",
    503: "Unavailable",
}
DATABASE_UNAVAILABLE = (
    "The database isn't answering right now, so this couldn't be completed. "
    "Please try again in a moment."
)
DATABASE_TOO_SLOW = (
    "The database took too long to answer, so this was stopped and not completed. "
    "Please try again in a moment."
)
CHANGED_MEANWHILE = (
    "Someone else changed the same thing at the same moment, so this wasn't saved. "
    "Reload the page and try again."
)
SECRET_UNREADABLE = (
    "A stored secret couldn't be decrypted with this server's encryption keys. "
    "An operator can run `flask secrets check`."
)


def message_for(error: HTTPException) -> str:
    """Return the sentence to show for `error`."""
    default_description = type(error).description
    if error.description and error.description != default_description:
        return error.description
    message = FRIENDLY.get(error.code or 500, error.description or error.name)
    retry = (error.response.headers.get("Retry-After") if error.response else None) or (
        dict(error.get_headers()).get("Retry-After")
    )
    if error.code == 429 and retry and retry.isdigit():
        message = f"Too many requests. Try again in {retry} seconds."
    return message


def handle_http_error(error: HTTPException):
    """Render HTTP errors with the site's layout, as a fragment, or as text."""
    if error.code is None or error.code < 400:
        return error
    if error.response is not None and error.response.status_code == error.code:
        return error.response  # a view already built the right answer (e.g. login's 429)
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    message = message_for(error)
    if problems.is_api_path():
        return problems.from_http_error(error, message, headers)
    best = request.accept_mimetypes.best_match(["text/html", "text/plain"], "text/html")
    if request.path.endswith("/audio") or best != "text/html":
        return message + "\n", error.code, {**headers, "Content-Type": "text/plain; charset=utf-8"}
    title = TITLES.get(error.code, error.name)
    if wants_fragment():
        body = render_template(
            "error.html", code=error.code, title=title, message=message, fragment=True
        )
    else:
        body = render_template("error.html", code=error.code, title=title, message=message)
    return body, error.code, {**headers, "Content-Type": "text/html; charset=utf-8"}


def handle_csrf_error(error: CSRFError):
    """Explain a missing or stale CSRF token in words a person understands."""
    error.description = (
        "This form has expired or was sent from another site. Reload the page and try again."
    )
    return handle_http_error(error)


def handle_unexpected(error: Exception):
    """Log an unhandled exception, roll back, and answer a friendly 500."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return handle_http_error(InternalServerError())


def handle_secret_unreadable(error: SecretUnreadable):
    """Answer a stored secret no configured key opens with a 500 that says so, and log it."""
    log.error("stored secret unreadable on %s %s", request.method, request.path, exc_info=error)
    db.session.rollback()
    return handle_http_error(InternalServerError(SECRET_UNREADABLE))


def _rollback_quietly() -> None:
    """Roll back after a database fault; the error page then asks the database nothing.

    The failed flush or commit has expired every loaded object, so the page's header
    renders without the user's name and org switcher (`templating.navigation`).
    """
    try:
        db.session.rollback()
    except DBAPIError:
        log.warning("rollback failed after a database error; the connection is discarded")
    g.database_fault = True
    if "_login_user" not in g:
        # Loading the user was what failed: the page is drawn for an anonymous visitor
        # rather than asking the database for the user once more.
        g._login_user = login_manager.anonymous_user()


def _is_timeout(error: DBAPIError) -> bool:
    # PostgreSQL cancels a statement past statement_timeout / lock_timeout (SQLSTATE
    # 57014 query_canceled, 55P03 lock_not_available); SQLite says "database is locked".
    code = getattr(error.orig, "sqlstate", None)
    return code in {"57014", "55P03"} or "database is locked" in str(error.orig)


def handle_database_error(error: DBAPIError):
    """Answer a database that failed mid-request with a page, not a traceback.

    A lost connection, a timeout or a constraint lost to a concurrent request is a
    fault of the moment, not a bug: 503 (retry shortly) or 409 (reload), logged with
    the driver's message. The transaction is rolled back, so nothing half-done stays.
    """
    log.error(
        "database error on %s %s: %s", request.method, request.path, error.orig, exc_info=error
    )
    _rollback_quietly()
    if isinstance(error, IntegrityError):
        return handle_http_error(Conflict(CHANGED_MEANWHILE))
    if _is_timeout(error):
        return handle_http_error(ServiceUnavailable(DATABASE_TOO_SLOW))
    unavailable = ServiceUnavailable(DATABASE_UNAVAILABLE)
    response = handle_http_error(unavailable)
    body, status, headers = response
    return body, status, {**headers, "Retry-After": "5"}


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    # Faults of the moment get their page in tests too: they are behaviour, not bugs.
    for fault in (OperationalError, InterfaceError, IntegrityError):
        app.register_error_handler(fault, handle_database_error)
    # A key missing from ENCRYPTION_KEYS is an operator's fix, not a bug: its own page.
    app.register_error_handler(SecretUnreadable, handle_secret_unreadable)
    if not app.testing:
        # Tests want the real traceback; production wants a page and a log line.
        app.register_error_handler(Exception, handle_unexpected)
