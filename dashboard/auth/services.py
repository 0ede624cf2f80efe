"""Account operations. Functions flush; the request commits."""

from __future__ import annotations

from dashboard.auth.passwords import hash_password, needs_rehash, verify_password
from dashboard.models import Organization, User
from dashboard.orgs.services import AccountError, create_org, create_user, find_user, set_password

# Verifying against a real hash when the email is unknown keeps the response time the
# same, so timing doesn't reveal which emails have accounts.
_DUMMY_HASH: dict[str, str] = {}


DISABLED_MESSAGE = "This account is disabled. Ask your Voxboard administrator to enable it."


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


def sign_up(
    email: str, display_name: str, password: str, org_name: str | None
) -> tuple[User, Organization | None]:
    """Create a user and, when `org_name` is given, a new organisation they own."""
    user = create_user(email, display_name, password)
    org = create_org(org_name, owner=user) if org_name and org_name.strip() else None
    return user, org


def change_password(user: User, current: str, new: str) -> None:
    """Change `user`'s password after checking the current one; ends their other sessions."""
    if not verify_password(user.password_hash, current):
        raise AccountError("Your current password is not correct.")
    set_password(user, new, keep_session=user.get_id())
