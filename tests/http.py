"""Talking to the app as a browser would: htmx's request header, and logging in."""

from __future__ import annotations

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
