"""Write user accounts: create, authenticate, passwords, disable and enable.

Functions flush; the caller (the request or the CLI command) commits.
"""

from __future__ import annotations

from dashboard.auth import login_sessions
from dashboard.auth.passwords import hash_password, needs_rehash, verify_password
from dashboard.auth.queries import find_user
from dashboard.extensions import db
from dashboard.models import User, normalise_email, utcnow


class AccountError(ValueError):
    """A request that can't be honoured; the message is for the person who made it."""


DISABLED_MESSAGE = "This account is disabled. Ask your Voxboard administrator to enable it."

# Verifying against a real hash when the email is unknown keeps the response time the
# same, so timing doesn't reveal which emails have accounts.
_DUMMY_HASH: dict[str, str] = {}


def create_user(email: str, display_name: str, password: str) -> User:
    """Create a user; the caller has validated the password's strength."""
    email = normalise_email(email)
    if find_user(email) is not None:
        raise AccountError("An account with that email already exists.")
    user = User(
        email=email, display_name=display_name.strip(), password_hash=hash_password(password)
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the user whose email and password match, or None.

    A disabled account raises `AccountError` instead, and only after the right password:
    whoever can't type it learns nothing more than "no match".
    """
    user = find_user(email)
    if user is None:
        dummy = _DUMMY_HASH.setdefault("h", hash_password("not the password of anyone"))
        verify_password(dummy, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if user.disabled_at is not None:
        raise AccountError(DISABLED_MESSAGE)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_password(user: User, password: str, keep_session: str | None = None) -> None:
    """Change `user`'s password and end every session they have open but `keep_session`.

    The web keeps the session that made the change (its login id); the CLI ends all.
    """
    user.password_hash = hash_password(password)
    login_sessions.end_all(user, keep=keep_session)
    db.session.flush()


def change_password(user: User, current: str, new: str) -> None:
    """Change `user`'s password after checking the current one; ends their other sessions."""
    if not verify_password(user.password_hash, current):
        raise AccountError("Your current password is not correct.")
    set_password(user, new, keep_session=user.get_id())


def disable_user(user: User) -> int | None:
    """Stop `user` logging in and end their sessions; return how many, None if already off."""
    if user.disabled_at is not None:
        return None
    user.disabled_at = utcnow()
    ended = login_sessions.end_all(user)
    db.session.flush()
    return ended


def enable_user(user: User) -> bool:
    """Let a disabled `user` log in again; return False when they weren't disabled."""
    if user.disabled_at is None:
        return False
    user.disabled_at = None
    db.session.flush()
    return True
