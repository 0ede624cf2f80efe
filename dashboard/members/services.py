"""Write memberships and invitations. Functions flush; the request commits.

The rules of who may do what live here, not in the views or templates, so every path
to a change (form, htmx, a crafted POST) meets the same checks:

- admins invite and assign `admin` or `member`; only owners grant `owner` or touch an
  owner's membership;
- nobody changes their own role, except an owner stepping down while another owner
  remains; anyone may leave, except the last owner;
- an organisation always keeps at least one owner.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, update

from dashboard.extensions import db
from dashboard.members import queries
from dashboard.models import Invitation, MemberRole, Membership, User, normalise_email, utcnow


class MemberError(Exception):
    """A change the rules refuse; `message` is for the person who asked, `status` for HTTP.

    `field` names the form field the message belongs to, when it is about one input.
    """

    def __init__(self, message: str, status: int = 409, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


USED = "This invitation has already been used: each link works once. Ask for a new one."


class InvitationGone(MemberError):
    """The invitation was already used or has expired (HTTP 410)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=410)


def assignable_roles(actor: Membership) -> list[MemberRole]:
    """Return the roles `actor` may hand out, most powerful first."""
    if actor.role is MemberRole.OWNER:
        return list(MemberRole)
    if actor.role is MemberRole.ADMIN:
        return [MemberRole.ADMIN, MemberRole.MEMBER]
    return []


def _last_owner(target: Membership, owners: Sequence[uuid.UUID]) -> bool:
    """Tell whether `target` is the organisation's only owner (`owners`: their membership ids)."""
    return target.role is MemberRole.OWNER and list(owners) == [target.id]


def role_change_problem(
    actor: Membership, target: Membership, role: MemberRole, owners: Sequence[uuid.UUID]
) -> MemberError | None:
    """Return why `actor` may not give `target` the role `role`, or None."""
    if target.id == actor.id:
        if actor.role is not MemberRole.OWNER:
            return MemberError("You can't change your own role.", status=403)
        if role is not MemberRole.OWNER and _last_owner(target, owners):
            return MemberError(
                "You are the only owner. Make someone else an owner before stepping down."
            )
        return None
    if target.role is MemberRole.OWNER and actor.role is not MemberRole.OWNER:
        return MemberError("Only owners can change an owner's role.", status=403)
    if role not in assignable_roles(actor):
        return MemberError("Only owners can make someone an owner.", status=403)
    if role is not MemberRole.OWNER and _last_owner(target, owners):
        return MemberError("An organisation needs at least one owner.")
    return None


def removal_problem(
    actor: Membership, target: Membership, owners: Sequence[uuid.UUID]
) -> MemberError | None:
    """Return why `actor` may not remove `target` (or leave, when it's themselves), or None."""
    if target.id == actor.id:
        if _last_owner(target, owners):
            return MemberError(
                "You are the only owner. Make someone else an owner before you leave, "
                "so the organisation isn't left without one."
            )
        return None
    if actor.role not in (MemberRole.OWNER, MemberRole.ADMIN):
        return MemberError("Only admins and owners can remove members.", status=403)
    if target.role is MemberRole.OWNER and actor.role is not MemberRole.OWNER:
        return MemberError("Only owners can remove an owner.", status=403)
    if _last_owner(target, owners):
        return MemberError("An organisation needs at least one owner.")
    return None


def offered_roles(
    actor: Membership, target: Membership, owners: Sequence[uuid.UUID]
) -> list[MemberRole]:
    """Return the roles a role picker for `target` offers (theirs included); [] for none."""
    options = [
        role
        for role in MemberRole
        if role is target.role or role_change_problem(actor, target, role, owners) is None
    ]
    return options if len(options) > 1 else []


def change_role(actor: Membership, target: Membership, role: MemberRole) -> bool:
    """Give `target` the role `role`; return whether anything changed."""
    # Locking the owners' rows makes two owners demoting each other at once take turns.
    owners = queries.owner_ids(lock=True)
    if problem := role_change_problem(actor, target, role, owners):
        raise problem
    if target.role is role:
        return False
    target.role = role
    db.session.flush()
    return True


def remove_member(actor: Membership, target: Membership) -> None:
    """Remove `target` from the organisation (their voices and generations stay)."""
    owners = queries.owner_ids(lock=True)
    if problem := removal_problem(actor, target, owners):
        raise problem
    db.session.delete(target)
    db.session.flush()


# ------------------------------------------------------------------------ invitations


def hash_token(token: str) -> str:
    """Return what is stored for an invitation token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewInvitation:
    """An invitation just created, with the only copy of its token."""

    invitation: Invitation
    token: str
    replaced: bool


def invite(actor: Membership, email: str, role: MemberRole, ttl_hours: int) -> NewInvitation:
    """Invite `email` to the actor's organisation; replaces a pending invitation for it.

    Only the token's hash is stored: the caller shows the token once and forgets it.
    """
    if role not in assignable_roles(actor):
        raise MemberError("Only owners can invite an owner.", status=403)
    email = normalise_email(email)
    if queries.is_member_email(email):
        raise MemberError(f"{email} is already a member.", status=422, field="email")
    # Unaccepted invitations for the same address (pending or expired) are replaced,
    # so each address has at most one live link.
    replaced = db.session.execute(
        delete(Invitation).where(Invitation.email == email, Invitation.accepted_at.is_(None))
    ).rowcount
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        org_id=actor.org_id,
        email=email,
        role=role,
        token_hash=hash_token(token),
        expires_at=utcnow() + dt.timedelta(hours=ttl_hours),
        invited_by=actor.user_id,
    )
    db.session.add(invitation)
    db.session.flush()
    return NewInvitation(invitation, token, replaced=bool(replaced))


def revoke(invitation: Invitation) -> None:
    """Delete a pending invitation, so its link stops working."""
    db.session.delete(invitation)
    db.session.flush()


def gone_problem(invitation: Invitation, now: dt.datetime) -> InvitationGone | None:
    """Return why nobody can accept `invitation` any more (used, expired), or None."""
    if invitation.accepted_at is not None:
        return InvitationGone(USED)
    if invitation.expires_at <= now:
        return InvitationGone(
            "This invitation has expired. Ask the person who invited you for a new link."
        )
    return None


def acceptance_problem(invitation: Invitation, user: User, now: dt.datetime) -> MemberError | None:
    """Return why `user` can't accept `invitation` now, or None."""
    if problem := gone_problem(invitation, now):
        return problem
    if invitation.email != user.email:
        return MemberError(
            f"This invitation is for {invitation.email}, but you are logged in as "
            f"{user.email}. Log out and sign in (or sign up) as {invitation.email}.",
            status=403,
        )
    return None


def accept(invitation: Invitation, user: User) -> Membership:
    """Make `user` a member with the invitation's role and use the invitation up.

    The conditional update makes the link single-use even when two requests race.
    """
    now = utcnow()
    if problem := acceptance_problem(invitation, user, now):
        raise problem
    used = db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None))
        .values(accepted_at=now, accepted_by=user.id)
    ).rowcount
    if used != 1:
        raise InvitationGone(USED)
    membership = Membership(user_id=user.id, org_id=invitation.org_id, role=invitation.role)
    db.session.add(membership)
    db.session.flush()
    return membership
