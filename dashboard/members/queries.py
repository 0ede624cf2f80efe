"""Read members and invitations of the organisation in scope (the tenant filter scopes them).

What the last-owner rule and the operator commands read names its organisation too: the
CLI runs across organisations, with no filter to lean on.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased, joinedload

from dashboard.extensions import db
from dashboard.models import Invitation, MemberRole, Membership, Organization, User, utcnow

# Owners first, then admins, then members: the order people scan a team in.
ROLE_RANK = case(
    {MemberRole.OWNER: 0, MemberRole.ADMIN: 1, MemberRole.MEMBER: 2}, value=Membership.role
)


@dataclass(frozen=True, slots=True)
class Member:
    """One row of the members table."""

    membership: Membership
    user: User


@dataclass(frozen=True, slots=True)
class PendingInvitation:
    """One row of the pending-invitations table."""

    invitation: Invitation
    invited_by_name: str | None


def list_members() -> list[Member]:
    """Return the organisation's members, owners first, then by name."""
    rows = db.session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .order_by(ROLE_RANK, func.lower(User.display_name), User.email)
    ).all()
    return [Member(membership, user) for membership, user in rows]


def list_pending_invitations(now: dt.datetime | None = None) -> list[PendingInvitation]:
    """Return invitations that can still be accepted (not used, not expired), newest first."""
    inviter = aliased(User)
    rows = db.session.execute(
        select(Invitation, inviter.display_name)
        .outerjoin(inviter, inviter.id == Invitation.invited_by)
        .where(Invitation.accepted_at.is_(None), Invitation.expires_at > (now or utcnow()))
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
    ).all()
    return [PendingInvitation(invitation, name) for invitation, name in rows]


def get_membership(membership_id: Any) -> Membership | None:
    """Return the org's membership with `membership_id` and its user, in one query."""
    try:
        membership_id = uuid.UUID(str(membership_id))
    except ValueError:
        return None
    return db.session.scalars(
        select(Membership)
        .where(Membership.id == membership_id)
        .options(joinedload(Membership.user))
    ).one_or_none()


def get_pending_invitation(invitation_id: uuid.UUID) -> Invitation | None:
    """Return the unaccepted invitation with `invitation_id`, or None (used ones are history)."""
    return db.session.scalars(
        select(Invitation).where(Invitation.id == invitation_id, Invitation.accepted_at.is_(None))
    ).one_or_none()


def owner_ids(org_id: uuid.UUID, lock: bool = False) -> list[uuid.UUID]:
    """Return the ids of the org's owners' memberships; `lock` holds them until commit.

    The lock is `FOR UPDATE` (PostgreSQL); by id, so concurrent lockers queue in one order.
    """
    stmt = (
        select(Membership.id)
        .where(Membership.org_id == org_id, Membership.role == MemberRole.OWNER)
        .order_by(Membership.id)
    )
    if lock:
        stmt = stmt.with_for_update()
    return list(db.session.scalars(stmt))


def is_member_email(email: str) -> bool:
    """Tell whether someone with `email` (already normalised) is a member."""
    found = db.session.scalar(
        select(Membership.id).join(User, User.id == Membership.user_id).where(User.email == email)
    )
    return found is not None


def membership_of(org_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
    """Return the membership of `user_id` in `org_id`, or None."""
    return db.session.scalars(
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
    ).one_or_none()


def role_in(org: Organization, user: User) -> MemberRole | None:
    """Return `user`'s role in `org`, or None when they aren't a member."""
    return db.session.scalar(
        select(Membership.role).where(Membership.org_id == org.id, Membership.user_id == user.id)
    )


def find_invitation(token_hash: str) -> Invitation | None:
    """Return the invitation whose token hashes to `token_hash`, or None."""
    return db.session.scalars(
        select(Invitation).where(Invitation.token_hash == token_hash)
    ).one_or_none()


def org_by_slug(slug: str) -> Organization | None:
    """Return the organisation at `slug` (organisations aren't tenant rows), or None."""
    return db.session.scalars(select(Organization).where(Organization.slug == slug)).one_or_none()


def user_name(user_id: uuid.UUID | None) -> str | None:
    """Return the display name of `user_id` (an inviter, say), or None."""
    if user_id is None:
        return None
    return db.session.scalar(select(User.display_name).where(User.id == user_id))
