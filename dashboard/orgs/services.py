"""Write organisations, users and memberships. Functions flush; the caller commits."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import func, select

from dashboard import tenancy
from dashboard.auth import login_sessions
from dashboard.auth.passwords import hash_password
from dashboard.extensions import db
from dashboard.models import MemberRole, Membership, Organization, User, normalise_email, utcnow

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])$")
RESERVED_SLUGS = frozenset({"new", "admin", "api", "static", "login", "logout", "signup"})


class AccountError(ValueError):
    """A request that can't be honoured; the message is for the person who made it."""


def slugify(name: str) -> str:
    """Turn an organisation name into a URL slug ("Acme Audio, Ltd." → "acme-audio-ltd")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:63].strip("-")
    return slug if len(slug) >= 2 else f"org-{slug}".strip("-")


def slug_problem(slug: str) -> str | None:
    """Return why `slug` can't be used, or None."""
    if not SLUG_RE.match(slug):
        return "Use 2–63 lower-case letters, digits and hyphens (not at either end)."
    if slug in RESERVED_SLUGS:
        return "That address is reserved."
    if db.session.scalar(select(Organization.id).where(Organization.slug == slug)):
        return "That address is taken."
    return None


def unique_slug(name: str) -> str:
    """Return a free slug derived from `name`, adding -2, -3… when needed."""
    base = slugify(name)
    candidate, n = base, 1
    while slug_problem(candidate) is not None:
        n += 1
        candidate = f"{base[:58]}-{n}"
    return candidate


def create_org(name: str, owner: User | None = None, slug: str | None = None) -> Organization:
    """Create an organisation (and make `owner` its owner)."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise AccountError("An organisation name needs 1–100 characters.")
    if slug is None:
        slug = unique_slug(name)
    elif problem := slug_problem(slug):
        raise AccountError(problem)
    org = Organization(name=name, slug=slug)
    db.session.add(org)
    db.session.flush()
    if owner is not None:
        with tenancy.org_scope(org.id, owner.id):
            add_member(org, owner, MemberRole.OWNER)
    return org


def find_user(email: str) -> User | None:
    """Return the user with `email` (any case), or None."""
    return db.session.scalars(
        select(User).where(User.email == normalise_email(email))
    ).one_or_none()


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


def set_password(user: User, password: str, keep_session: str | None = None) -> None:
    """Change `user`'s password and end every session they have open but `keep_session`.

    The web keeps the session that made the change (its login id); the CLI ends all.
    """
    user.password_hash = hash_password(password)
    login_sessions.end_all(user, keep=keep_session)
    db.session.flush()


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


def add_member(org: Organization, user: User, role: MemberRole) -> Membership:
    """Make `user` a member of `org` with `role`, or change the role they have."""
    membership = db.session.scalars(
        select(Membership).where(Membership.user_id == user.id, Membership.org_id == org.id)
    ).one_or_none()
    if membership is None:
        membership = Membership(user_id=user.id, org_id=org.id, role=role)
        db.session.add(membership)
    else:
        membership.role = role
    db.session.flush()
    return membership


# ------------------------------------------------------------------- operator commands
# The CLI calls these inside `tenancy.all_tenants(...)`: they span organisations.


def find_org(slug: str) -> Organization | None:
    """Return the organisation with `slug` (any case), or None."""
    return db.session.scalars(
        select(Organization).where(Organization.slug == slug.strip().lower())
    ).one_or_none()


def list_orgs() -> list[tuple[Organization, int]]:
    """Return every organisation with its number of members, by name."""
    rows = db.session.execute(
        select(Organization, func.count(Membership.id))
        .outerjoin(Membership, Membership.org_id == Organization.id)
        .group_by(Organization.id)
        .order_by(func.lower(Organization.name), Organization.slug)
    ).all()
    return [(org, members) for org, members in rows]


def list_users(
    org: Organization | None = None,
) -> list[tuple[User, list[tuple[Organization, MemberRole]]]]:
    """Return users by email, each with their organisations and roles (only `org`'s, if given)."""
    stmt = (
        select(User, Organization, Membership.role)
        .outerjoin(Membership, Membership.user_id == User.id)
        .outerjoin(Organization, Organization.id == Membership.org_id)
        .order_by(User.email, func.lower(Organization.name))
    )
    if org is not None:
        stmt = stmt.where(Membership.org_id == org.id)
    users: dict[str, tuple[User, list[tuple[Organization, MemberRole]]]] = {}
    for user, member_of, role in db.session.execute(stmt):
        entry = users.setdefault(user.email, (user, []))
        if member_of is not None:
            entry[1].append((member_of, role))
    return list(users.values())


def role_in(org: Organization, user: User) -> MemberRole | None:
    """Return `user`'s role in `org`, or None when they aren't a member."""
    return db.session.scalar(
        select(Membership.role).where(Membership.user_id == user.id, Membership.org_id == org.id)
    )


def set_member_role(org: Organization, user: User, role: MemberRole) -> MemberRole | None:
    """Add `user` to `org` with `role`, or change their role; return the role they had.

    Refuses to demote the last owner: nobody could manage the organisation after that.
    The owners' rows are locked first (PostgreSQL), so two demotions at once can't both pass.
    """
    owners = set(
        db.session.scalars(
            select(Membership.user_id)
            .where(Membership.org_id == org.id, Membership.role == MemberRole.OWNER)
            .with_for_update()
        )
    )
    previous = role_in(org, user)
    if previous is MemberRole.OWNER and role is not MemberRole.OWNER and owners == {user.id}:
        raise AccountError(
            f"{user.email} is the last owner of {org.slug}; make another member owner first."
        )
    add_member(org, user, role)
    return previous
