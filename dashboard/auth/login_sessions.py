"""Server-side login sessions: what a session cookie names, and every way it ends.

The protocol:

1. **Start.** Logging in inserts a `UserSession` row and hands Flask-Login the id
   "<user id>:<session id>:<secret>", which goes into the signed session cookie. The
   secret is `secrets.token_urlsafe(32)`; the row keeps only its SHA-256.
2. **Check.** On every request `load_user` reads the user, their memberships and
   the session row in one statement, refusing a disabled user and a session past
   `live()` (idle longer than `SESSION_IDLE_TIMEOUT_MINUTES`, or older than
   `SESSION_LIFETIME_HOURS`), then compares the secret's hash in constant time. The
   user id leads the cookie's id so `tenancy.claim_session_user` can put the user in
   scope before that statement (row-level security lets a user read their own
   memberships).
3. **Touch.** `last_seen_at` moves forward at most once per `TOUCH_INTERVAL` (a page
   view is not a write), committed at once when the loading statement opened the
   request's transaction, so a GET that changes nothing else keeps its session alive.
4. **End.** Logout deletes the row (every `logout_user()`, through Flask-Login's
   `user_logged_out` signal); a password change deletes the user's other rows
   (web) or all of them (CLI); disabling a user deletes all. A copy of the cookie then
   names nothing and acts for nobody. Expired rows are deleted by `purge_expired`
   (hourly in the worker, or `flask users purge-sessions`).

Functions here flush (the caller commits), except `touch` and `purge_from_worker`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import uuid

from flask import Flask, current_app
from flask_login import LoginManager, user_logged_out
from huey import Huey, crontab
from sqlalchemy import ColumnElement, and_, delete, not_, select, update
from sqlalchemy.orm import joinedload

from dashboard import edge, tenancy
from dashboard.database import task_transaction
from dashboard.extensions import db
from dashboard.models import Membership, User, UserSession, utcnow

log = logging.getLogger(__name__)

TOUCH_INTERVAL = dt.timedelta(minutes=1)
USER_AGENT_CHARS = 200
ADDRESS_CHARS = 45


def hash_secret(secret: str) -> str:
    """Return the hex SHA-256 the row stores for a session's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def start(user: User, user_agent: str | None, address: str | None) -> str:
    """Open a session for `user` and return its login id (also set on `user.login_id`)."""
    secret = secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user.id,
        token_hash=hash_secret(secret),
        # The edge refuses control characters in headers; scrub anyway, as this is stored.
        user_agent=edge.scrub(user_agent or "")[:USER_AGENT_CHARS] or None,
        ip_address=(address or "")[:ADDRESS_CHARS] or None,
    )
    db.session.add(row)
    db.session.flush()
    user.login_id = f"{user.id}:{row.id}:{secret}"
    return user.login_id


def parse(login_id: str) -> tuple[uuid.UUID, uuid.UUID, str] | None:
    """Split a login id into (user id, session id, secret); None when it isn't one."""
    user_part, session_part, secret = (login_id.split(":", 2) + ["", ""])[:3]
    try:
        return uuid.UUID(user_part), uuid.UUID(session_part), secret
    except ValueError:
        return None


def live(now: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    """Return the conditions a session row meets while neither idle nor too old."""
    config = current_app.config
    idle = dt.timedelta(minutes=config["SESSION_IDLE_TIMEOUT_MINUTES"])
    lifetime = dt.timedelta(hours=config["SESSION_LIFETIME_HOURS"])
    return (UserSession.last_seen_at > now - idle, UserSession.created_at > now - lifetime)


def secret_matches(secret: str, token_hash: str) -> bool:
    """Compare a cookie's secret with the stored hash in constant time."""
    return bool(secret) and hmac.compare_digest(hash_secret(secret), token_hash)


def touch_due(last_seen_at: dt.datetime, now: dt.datetime) -> bool:
    """Tell whether a session's `last_seen_at` is old enough to be worth a write."""
    return now - last_seen_at >= TOUCH_INTERVAL


def touch(session_id: uuid.UUID, now: dt.datetime) -> None:
    """Record that the session was used now, and commit.

    Only for `login_sessions.load_user`, when its statement opened the transaction: nothing else
    can be in it yet, so committing here commits only this. The user it loaded is kept
    as it is (nothing about it changed), so the request doesn't read it again.
    """
    db.session.execute(
        update(UserSession).where(UserSession.id == session_id).values(last_seen_at=now)
    )
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def end(login_id: str) -> None:
    """End the session `login_id` names (logout)."""
    parsed = parse(login_id)
    if parsed is None:
        return
    user_id, session_id, _ = parsed
    db.session.execute(
        delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user_id)
    )


def end_on_logout(_app: object, user: User | None = None, **_extra: object) -> None:
    """End the server-side session whenever Flask-Login logs someone out (a signal handler).

    Every `logout_user()` (the logout button, switching account on an invitation) goes
    through here, so revoking is not a step a view can leave out; the view commits.
    """
    login_id = getattr(user, "login_id", None)
    if login_id:
        end(login_id)


def end_all(user: User, keep: str | None = None) -> int:
    """End every session of `user` but the one `keep` names; return how many ended."""
    stmt = delete(UserSession).where(UserSession.user_id == user.id)
    kept = parse(keep) if keep else None
    if kept is not None:
        stmt = stmt.where(UserSession.id != kept[1])
    return db.session.execute(stmt).rowcount or 0


def purge_expired(now: dt.datetime | None = None) -> int:
    """Delete the sessions that can no longer be used; return how many."""
    now = now or utcnow()
    result = db.session.execute(delete(UserSession).where(not_(and_(*live(now)))))
    return result.rowcount or 0


def purge_from_worker() -> int:
    """Purge expired sessions in a worker process (the periodic task); commits."""
    with task_transaction():
        return purge_expired()


def register_tasks(huey: Huey, app: Flask) -> None:
    """Drop the rows of sessions past their idle timeout or lifetime (they act for nobody)."""

    @huey.periodic_task(crontab(minute="37"), name="purge-sessions")
    def purge_sessions() -> None:
        with app.app_context():
            removed = purge_from_worker()
        if removed:
            log.info("purged %d expired login session(s)", removed)


# ------------------------------------------------------------------------ Flask-Login


def init_login(login_manager: LoginManager) -> None:
    """Teach Flask-Login how to load users, where the login page is, and to end sessions."""
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_user)
    # Every logout_user() also deletes the server-side session (blinker connects it once).
    user_logged_out.connect(end_on_logout, weak=False)


def load_user(login_id: str):
    """Return the user a session cookie's login id names, or None when that session ended.

    One statement brings the user, their memberships and those memberships'
    organisations, and the server-side session row (`dashboard/auth/py`): a
    session that was logged out, replaced, idle too long or too old, or whose user is
    disabled, matches no row. Every org page needs the memberships (which org, which
    role, the org switcher), and `tenancy.web` reads them from here instead of
    asking again. The query names the user, so it spans organisations on purpose; on
    PostgreSQL the policy `memberships_own_read` admits exactly these rows because
    `tenancy.claim_session_user` put the user in scope before the first statement.
    """
    parsed = parse(login_id)
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
                *live(now),
            )
            .options(joinedload(User.memberships).joinedload(Membership.org))
            .execution_options(skip_tenant_scope=True)
        )
        .unique()
        .one_or_none()
    )
    if row is None or not secret_matches(secret, row.token_hash):
        # An ended session acts for nobody, whoever holds a copy of its cookie.
        tenancy.forget_session_user()
        return None
    if first_statement and touch_due(row.last_seen_at, now):
        touch(session_id, now)
    user = row.User
    user.login_id = login_id
    return user
