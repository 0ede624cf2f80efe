"""Read user accounts: one by email, and every user with their organisations (operators)."""

from __future__ import annotations

from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import MemberRole, Membership, Organization, User, normalise_email


def find_user(email: str) -> User | None:
    """Return the user with `email` (any case), or None."""
    return db.session.scalars(
        select(User).where(User.email == normalise_email(email))
    ).one_or_none()


def list_users(
    org: Organization | None = None,
) -> list[tuple[User, list[tuple[Organization, MemberRole]]]]:
    """Return users by email, each with their organisations and roles (only `org`'s, if given).

    Spans organisations: the CLI calls it inside `tenancy.all_tenants(...)`.
    """
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
