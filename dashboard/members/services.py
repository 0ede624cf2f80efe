"""Write memberships and invitations. Functions flush; the caller commits.

The rules of who may do what live here, not in the views, templates or commands, so
every path to a change (form, htmx, a crafted POST, the CLI) meets the same checks:

- admins invite and assign `admin` or `member`; only owners grant `owner` or touch an
  owner's membership;
- nobody changes their own role, except an owner stepping down while another owner
  remains; anyone may leave, except the last owner;
- an organisation always keeps at least one owner.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete, update

from dashboard.extensions import db
from dashboard.members import mail, queries
from dashboard.models import (
    Invitation,
    MemberRole,
    Membership,
    Organization,
    User,
    normalise_email,
    utcnow,
)


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


# ------------------------------------------------------------------ the last owner
# The rule's only home. Every change that can take the owner role away (a role change
# or a removal on the web, leaving, `flask users add-member`) meets it in `keep_an_owner`,
# under a lock; pages ask `last_owner_problem` (through `role_change_problem` and
# `removal_problem`) what to offer.

NEEDS_AN_OWNER = "An organisation needs at least one owner."


def last_owner_problem(
    target: Membership, role: MemberRole | None, owners: Sequence[uuid.UUID], by_self: bool
) -> MemberError | None:
    """Return why `target` can't take `role` (None: leave) as the org's only owner, or None.

    `owners` are the ids of the owners' memberships; `by_self` says `target` is asking,
    who is told what to do instead.
    """
    if role is MemberRole.OWNER or target.role is not MemberRole.OWNER:
        return None
    if list(owners) != [target.id]:
        return None
    if not by_self:
        return MemberError(NEEDS_AN_OWNER)
    if role is None:
        return MemberError(
            "You are the only owner. Make someone else an owner before you leave, "
            "so the organisation isn't left without one."
        )
    return MemberError("You are the only owner. Make someone else an owner before stepping down.")


def keep_an_owner(target: Membership, role: MemberRole | None, actor: Membership | None) -> None:
    """Refuse to give `target` `role` (None: remove them) if that leaves their org no owner.

    `actor` is who asks (None: an operator). The owners' rows are locked first
    (PostgreSQL), so two owners demoting or removing each other at once take turns and
    can't both pass.
    """
    owners = queries.owner_ids(target.org_id, lock=True)
    by_self = actor is not None and actor.id == target.id
    if problem := last_owner_problem(target, role, owners, by_self):
        raise problem


# --------------------------------------------------------------- roles and removals


def _role_permission_problem(
    actor: Membership, target: Membership, role: MemberRole
) -> MemberError | None:
    """Return why `actor` may not give `target` the role `role`, owners aside, or None."""
    if target.id == actor.id:
        if actor.role is not MemberRole.OWNER:
            return MemberError("You can't change your own role.", status=403)
        return None
    if target.role is MemberRole.OWNER and actor.role is not MemberRole.OWNER:
        return MemberError("Only owners can change an owner's role.", status=403)
    if role not in assignable_roles(actor):
        return MemberError("Only owners can make someone an owner.", status=403)
    return None


def _removal_permission_problem(actor: Membership, target: Membership) -> MemberError | None:
    """Return why `actor` may not remove `target`, owners aside, or None (anyone may leave)."""
    if target.id == actor.id:
        return None
    if actor.role not in (MemberRole.OWNER, MemberRole.ADMIN):
        return MemberError("Only admins and owners can remove members.", status=403)
    if target.role is MemberRole.OWNER and actor.role is not MemberRole.OWNER:
        return MemberError("Only owners can remove an owner.", status=403)
    return None


def role_change_problem(
    actor: Membership, target: Membership, role: MemberRole, owners: Sequence[uuid.UUID]
) -> MemberError | None:
    """Return why `actor` may not give `target` the role `role`, or None."""
    return _role_permission_problem(actor, target, role) or last_owner_problem(
        target, role, owners, by_self=target.id == actor.id
    )


def removal_problem(
    actor: Membership, target: Membership, owners: Sequence[uuid.UUID]
) -> MemberError | None:
    """Return why `actor` may not remove `target` (or leave, when it's themselves), or None."""
    return _removal_permission_problem(actor, target) or last_owner_problem(
        target, None, owners, by_self=target.id == actor.id
    )


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


def add_member(org: Organization, user: User, role: MemberRole) -> Membership:
    """Make `user`, not yet a member of `org`, a member with `role`.

    Only adds: a role changes through `change_role` or `set_member_role`, which keep an owner.
    """
    membership = Membership(user_id=user.id, org_id=org.id, role=role)
    db.session.add(membership)
    db.session.flush()
    return membership


def change_role(actor: Membership, target: Membership, role: MemberRole) -> bool:
    """Give `target` the role `role`; return whether anything changed."""
    if problem := _role_permission_problem(actor, target, role):
        raise problem
    keep_an_owner(target, role, actor)
    if target.role is role:
        return False
    target.role = role
    db.session.flush()
    return True


def set_member_role(org: Organization, user: User, role: MemberRole) -> MemberRole | None:
    """Add `user` to `org` with `role`, or change their role; return the role they had.

    The operator's way in (`flask users add-member`): nobody's permissions to check, but
    the organisation still keeps an owner.
    """
    membership = queries.membership_of(org.id, user.id)
    if membership is None:
        add_member(org, user, role)
        return None
    previous = membership.role
    keep_an_owner(membership, role, actor=None)
    membership.role = role
    db.session.flush()
    return previous


def remove_member(actor: Membership, target: Membership) -> None:
    """Remove `target` from the organisation (their voices and generations stay)."""
    if problem := _removal_permission_problem(actor, target):
        raise problem
    keep_an_owner(target, None, actor)
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


class Delivery(enum.Enum):
    """What became of an invitation's email."""

    NOT_CONFIGURED = "not configured"  # no SMTP_URL: the link is only shown
    SENT = "sent"
    FAILED = "failed"


def email_invitation(invitation: Invitation, inviter: User, link: str, ttl_hours: int) -> Delivery:
    """Email the invitation's `link` when SMTP is configured; a failure is logged, not raised.

    Called after the commit, so nobody is mailed a link to an invitation never saved. The
    page shows the link either way; the mail server's address and answer go to the log.
    """
    if not mail.mail_enabled():
        return Delivery.NOT_CONFIGURED
    try:
        mail.send_invitation(
            invitation.email,
            invitation.org.name,
            inviter.display_name,
            invitation.role.value,
            link,
            ttl_hours,
        )
    except mail.MailError as exc:
        current_app.logger.warning("invitation email failed: %s", exc)
        return Delivery.FAILED
    return Delivery.SENT


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
    return add_member(invitation.org, user, invitation.role)
