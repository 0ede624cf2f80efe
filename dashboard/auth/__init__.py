"""Accounts: sign up, log in, log out, change password."""

from __future__ import annotations

from flask import Blueprint
from flask_login import LoginManager, user_logged_out

bp = Blueprint("auth", __name__)


def init_login(login_manager: LoginManager) -> None:
    """Teach Flask-Login how to load users, where the login page is, and to end sessions."""
    from dashboard import login_sessions

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_user)
    # Every logout_user() also deletes the server-side session (blinker connects it once).
    user_logged_out.connect(login_sessions.end_on_logout, weak=False)


def load_user(login_id: str):
    """Return the user a session cookie's login id names, or None when that session ended.

    One statement brings the user, their memberships and those memberships'
    organisations, and the server-side session row (`dashboard/login_sessions.py`): a
    session that was logged out, replaced, idle too long or too old, or whose user is
    disabled, matches no row. Every org page needs the memberships (which org, which
    role, the org switcher), and `tenancy.resolve_org` reads them from here instead of
    asking again. The query names the user, so it spans organisations on purpose; on
    PostgreSQL the policy `memberships_own_read` admits exactly these rows because
    `tenancy.claim_session_user` put the user in scope before the first statement.
    """
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    from dashboard import login_sessions, tenancy
    from dashboard.extensions import db
    from dashboard.models import Membership, User, UserSession, utcnow

    parsed = login_sessions.parse(login_id)
    if parsed is None:
        tenancy.forget_session_user()
        return None
    user_id, session_id, secret = parsed
    now = utcnow()
    # Usually this is the request's first statement; only then may `touch` commit.
    first_statement = not db.session().in_transaction()
    row = (
        db.session.execute(
            select(User, UserSession.token_hash, UserSession.last_seen_at)
            .join(UserSession, UserSession.user_id == User.id)
            .where(
                User.id == user_id,
                User.disabled_at.is_(None),
                UserSession.id == session_id,
                *login_sessions.live(now),
            )
            .options(joinedload(User.memberships).joinedload(Membership.org))
            .execution_options(skip_tenant_scope=True)
        )
        .unique()
        .one_or_none()
    )
    if row is None or not login_sessions.secret_matches(secret, row.token_hash):
        # An ended session acts for nobody, whoever holds a copy of its cookie.
        tenancy.forget_session_user()
        return None
    if first_statement and login_sessions.touch_due(row.last_seen_at, now):
        login_sessions.touch(session_id, now)
    user = row.User
    user.login_id = login_id
    return user


from dashboard.auth import routes  # noqa: E402,F401  (routes attach to bp)
