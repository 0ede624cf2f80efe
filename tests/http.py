"""Talking to the app as a browser would: htmx's request header, and logging in."""

from __future__ import annotations

from typing import Any

from werkzeug.test import stream_encode_multipart

from dashboard.auth import login_sessions
from dashboard.extensions import db

# What htmx sends with every request it makes (`dashboard.htmx` answers a fragment).
HX = {"HX-Request": "true"}


def login(client, user) -> str:
    """Log `user` in on `client` as the login form would; return the session's login id.

    The server-side session row is committed in an app context of its own (a database
    session and connection of its own), so a caller's open transaction is left alone.
    """
    with client.application.app_context():
        login_id = login_sessions.start(user, "pytest", "127.0.0.1")
        db.session.commit()
    with client.session_transaction() as session:
        session["_user_id"] = login_id
        session["_fresh"] = True
    return login_id


def post_multipart(client, url: str, data: dict[str, Any], headers: dict[str, str] | None = None):
    """POST `data` as a browser posts a form with a file.

    Encoded in memory: the test client would spool big bodies to a temporary file that
    nothing closes (a ResourceWarning, which this suite turns into an error).
    """
    body, length, boundary = stream_encode_multipart(data, use_tempfile=False)
    return client.post(
        url,
        input_stream=body,
        content_length=length,
        content_type=f'multipart/form-data; boundary="{boundary}"',
        headers=headers or {},
    )
