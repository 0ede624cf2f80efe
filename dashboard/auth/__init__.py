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
    """Return the user for a session id "<uuid>:<token>", or None if it was revoked.

    The user comes with their memberships and those memberships' organisations, in one
    statement: every org page needs them (which org, which role, the org switcher), and
    `tenancy.resolve_org` reads them from here instead of asking again. The query names
    the user, so it spans organisations on purpose; on PostgreSQL the policy
    `memberships_own_read` admits exactly these rows because `tenancy.claim_session_user`
    put the user in scope before the request's first statement.
    """
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    from dashboard import tenancy
    from dashboard.extensions import db
    from dashboard.models import Membership, User

    user_id, _, token = session_id.partition(":")
    try:
        uid = uuid.UUID(user_id)
    except ValueError:
        return None
    user = (
        db.session.scalars(
            select(User)
            .where(User.id == uid)
            .options(joinedload(User.memberships).joinedload(Membership.org))
            .execution_options(skip_tenant_scope=True)
        )
        .unique()
        .one_or_none()
    )
    if user is None or not token or user.session_token != token:
        # A revoked session (password changed elsewhere) acts for nobody.
        tenancy.forget_session_user()
        return None
    return user


from dashboard.auth import routes  # noqa: E402,F401  (routes attach to bp)
