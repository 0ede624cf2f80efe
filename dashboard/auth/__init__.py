"""Accounts: sign up, log in, log out, change password."""

from __future__ import annotations

import uuid

from flask import Blueprint
from flask_login import LoginManager

bp = Blueprint("auth", __name__)


def init_login(login_manager: LoginManager) -> None:
    """Teach Flask-Login how to load users and where the login page is."""
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_user)


def load_user(session_id: str):
    """Return the user for a session id "<uuid>:<token>", or None if it was revoked."""
    from dashboard.extensions import db
    from dashboard.models import User

    user_id, _, token = session_id.partition(":")
    try:
        uid = uuid.UUID(user_id)
    except ValueError:
        return None
    user = db.session.get(User, uid)
    if user is None or not token or user.session_token != token:
        return None
    return user


from dashboard.auth import routes  # noqa: E402,F401  (routes attach to bp)
