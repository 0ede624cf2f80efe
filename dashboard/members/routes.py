"""Members page: list, invite, change roles, remove, leave; and accepting an invitation.

Every write answers a plain form with a 303 back to the page and a flash, and an htmx
request with the affected block of the same page (`members` or `invitations`) carrying
its message inline. Refusals re-render the page (or block) with the message and the
status the rule chose (403, 409, 410, 422).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from werkzeug.wrappers import Response

from dashboard import htmx, tenancy
from dashboard.extensions import db
from dashboard.formatting import time_until
from dashboard.members import bp, public_bp, queries, services
from dashboard.members.forms import ConfirmForm, InviteForm, RoleForm, role_choices
from dashboard.members.services import MemberError
from dashboard.models import Invitation, MemberRole, Membership, utcnow

PAGE = "members/index.html"
# A new invitation's link crosses the redirect after a plain POST in the session (the
# inviter's own cookie) and is popped by the next page view: shown exactly once.
NEW_INVITE_KEY = "members.new_invite"


def page(status: int = 200, block: str | None = None, **context: Any) -> Response:
    """Render the members page (or one of its blocks for htmx) with everything it shows."""
    me: Membership = g.membership
    members = queries.list_members()
    # Every membership is on the page, so the owners are read off it (no query of their own).
    owners = sorted(m.membership.id for m in members if m.membership.role is MemberRole.OWNER)
    invite_form = context.pop("invite_form", None) or InviteForm(formdata=None)
    invite_form.role.choices = role_choices(services.assignable_roles(me))
    rows = [
        {
            "member": member,
            "roles": services.offered_roles(me, member.membership, owners),
            "removable": member.membership.id != me.id
            and services.removal_problem(me, member.membership, owners) is None,
        }
        for member in members
    ]
    response = htmx.render_page(
        PAGE,
        block,
        org=g.org,
        me=me,
        manager=tenancy.is_manager(),
        sole_owner=list(owners) == [me.id],
        rows=rows,
        invitations=queries.list_pending_invitations(),
        invite_form=invite_form,
        notices=context.pop("notices", {}),
        new_invite=context.pop("new_invite", None),
        **context,
    )
    response.status_code = status
    return response


def done(block: str, message: str | None, **context: Any) -> Response:
    """Answer a successful write: the block for htmx, else flash and 303 to the page."""
    if htmx.wants_fragment():
        notices = {block: ("success", message)} if message else {}
        return page(200, block, notices=notices, **context)
    if message:
        flash(message, "success")  # shown at the top of the page, so no #anchor then
    if new_invite := context.get("new_invite"):
        session[NEW_INVITE_KEY] = new_invite
        return redirect(url_for(".index", _anchor="invitations"), code=303)
    return redirect(url_for(".index"), code=303)


def refused(error: MemberError, block: str, form: Any = None) -> Response:
    """Answer a write the rules refused: the page or block with the reason, inline."""
    if form is not None and error.field:
        getattr(form, error.field).errors.append(error.message)
        return page(error.status, block, invite_form=form)
    return page(error.status, block, notices={block: ("error", error.message)}, invite_form=form)


def scoped(arg: str, name: str, load: Callable[[Any], Any]) -> Callable[..., Any]:
    """Replace the URL's `arg` by the row `load` finds in this org (404 when it can't).

    Applied outside `require_role`, so another organisation's id answers 404 to every
    caller, before any question of role comes up.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(**kwargs: Any) -> Any:
            kwargs[name] = load(kwargs.pop(arg))
            return view(**kwargs)

        return wrapped

    return decorator


def load_membership(membership_id: Any) -> Membership:
    return queries.get_membership(membership_id) or abort(404)


def load_pending_invitation(invitation_id: Any) -> Invitation:
    return queries.get_pending_invitation(invitation_id) or abort(404)


# ------------------------------------------------------------------------------ views


@bp.get("/")
def index():
    """List members and pending invitations; managers also get the forms."""
    return page(new_invite=session.pop(NEW_INVITE_KEY, None))


@bp.post("/invitations")
@tenancy.require_role(*tenancy.MANAGERS)
def invite():
    """Create an invitation and show its link once (and email it when SMTP is set up)."""
    form = InviteForm()
    if not form.validate_on_submit():
        return page(422, "invitations", invite_form=form)
    try:
        created = services.invite(g.membership, form.email.data, form.chosen_role, ttl_hours())
    except MemberError as exc:
        return refused(exc, "invitations", form)
    db.session.commit()
    link = url_for("invitations.accept", org_slug=g.org.slug, token=created.token, _external=True)
    delivery = services.email_invitation(created.invitation, current_user, link, ttl_hours())
    return done("invitations", None, new_invite=announce(created, link, delivery))


@bp.post("/invitations/<uuid:invitation_id>/revoke")
@scoped("invitation_id", "invitation", load_pending_invitation)
@tenancy.require_role(*tenancy.MANAGERS)
def revoke(invitation):
    """Delete a pending invitation: its link stops working."""
    email = invitation.email
    services.revoke(invitation)
    db.session.commit()
    return done("invitations", f"The invitation for {email} was revoked.")


@bp.post("/<uuid:membership_id>/role")
@scoped("membership_id", "target", load_membership)
@tenancy.require_role(*tenancy.MANAGERS)
def change_role(target: Membership):
    """Change a member's role (owners may also step down themselves)."""
    form = RoleForm()
    if not form.validate_on_submit():
        return page(422, "members", notices={"members": ("error", "Choose a valid role.")})
    try:
        changed = services.change_role(g.membership, target, form.chosen_role)
    except MemberError as exc:
        return refused(exc, "members")
    db.session.commit()
    message = f"{target.user.display_name} is now {with_article(target.role.value)}."
    if changed and target.id == g.membership.id:
        # Stepping down changes what this whole page offers: reload it, not a block.
        flash(message, "success")
        return htmx.redirect_to(url_for(".index"))
    return done("members", message if changed else None)


@bp.route("/<uuid:membership_id>/remove", methods=["GET", "POST"])
@scoped("membership_id", "target", load_membership)
@tenancy.require_role(*tenancy.MANAGERS)
def remove(target: Membership):
    """Confirm (GET, for browsers without JavaScript) and remove (POST) a member."""
    if target.id == g.membership.id:
        return redirect(url_for(".leave"), code=303 if request.method == "POST" else 302)
    if request.method == "GET":
        return confirmation("remove", target)
    return removed(target)


@bp.route("/leave", methods=["GET", "POST"])
def leave():
    """Confirm (GET) and leave (POST) the organisation; any member may, but the last owner."""
    if request.method == "GET":
        return confirmation("leave", g.membership)
    return removed(g.membership)


def confirmation(action: str, target: Membership) -> tuple[str, int]:
    problem = services.removal_problem(g.membership, target, queries.owner_ids(g.org.id))
    html = render_template(
        "members/confirm.html",
        action=action,
        org=g.org,
        target=target,
        problem=problem,
        form=ConfirmForm(),
    )
    return html, 200


def removed(target: Membership) -> Response:
    """Remove `target` (leave, when it is the caller) and answer; shared by remove and leave."""
    leaving = target.id == g.membership.id
    name = target.user.display_name
    try:
        services.remove_member(g.membership, target)
    except MemberError as exc:
        return refused(exc, "members")
    db.session.commit()
    if leaving:
        flash(f"You left {g.org.name}.", "success")
        return htmx.redirect_to(url_for("orgs.landing"))
    return done("members", f"{name} was removed from {g.org.name}.")


# ------------------------------------------------------------------ invitation helpers


def ttl_hours() -> int:
    return int(current_app.config["INVITATION_TTL_HOURS"])


def with_article(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def announce(
    created: services.NewInvitation, link: str, delivery: services.Delivery
) -> dict[str, Any]:
    """Return what the page shows of a new invitation, once (it crosses the session)."""
    invitation = created.invitation
    return {
        "email": invitation.email,
        "role": invitation.role.value,
        "link": link,
        "expires": time_until(invitation.expires_at),
        "replaced": created.replaced,
        "mailed": delivery is services.Delivery.SENT,
        "mail_error": True if delivery is services.Delivery.FAILED else None,
    }


# ----------------------------------------------------------------- accepting (public)


@public_bp.route("/join/<org_slug>/<token>", methods=["GET", "POST"])
def accept(org_slug: str, token: str):
    """Show "Join <org> as <role>?" (GET) and join (POST); log in or sign up first."""
    org = queries.org_by_slug(org_slug) or abort(404)
    user = current_user._get_current_object() if current_user.is_authenticated else None
    # On PostgreSQL, row-level security shows only this org's invitations inside the scope.
    with tenancy.org_scope(org.id, user.id if user else None):
        invitation = queries.find_invitation(services.hash_token(token))
        if invitation is None:
            abort(404, "This invitation link isn't valid. Check that you copied all of it.")
        if user is not None and queries.membership_of(org.id, user.id) is not None:
            flash(f"You are already a member of {org.name}.", "info")
            return redirect(url_for("org.home", org_slug=org.slug))
        if problem := services.gone_problem(invitation, utcnow()):
            return join_page(org, invitation, problem)
        if user is None:
            flash(f"Log in or create an account as {invitation.email} to join {org.name}.", "info")
            return redirect(url_for("auth.login", next=request.path))
        if request.method == "GET":
            problem = services.acceptance_problem(invitation, user, utcnow())
            return join_page(org, invitation, problem)
        try:
            role = services.accept(invitation, user).role
        except MemberError as exc:
            return join_page(org, invitation, exc)
        db.session.commit()  # inside the scope: row-level security checks the new rows
        name, slug = org.name, org.slug
    flash(f"Welcome to {name}. You joined as {with_article(role.value)}.", "success")
    return htmx.redirect_to(url_for("org.home", org_slug=slug))


@public_bp.post("/join/<org_slug>/<token>/switch-account")
def switch_account(org_slug: str, token: str):
    """Log out and come back to the invitation, which then asks to log in as its addressee."""
    logout_user()  # ends the server-side session too (`login_sessions.end_on_logout`)
    db.session.commit()
    return htmx.redirect_to(url_for("invitations.accept", org_slug=org_slug, token=token))


def join_page(org, invitation, problem: MemberError | None) -> tuple[str, int]:
    html = render_template(
        "members/join.html",
        org=org,
        invitation=invitation,
        inviter=queries.user_name(invitation.invited_by),
        problem=problem,
        form=ConfirmForm(),
        token=request.view_args["token"],
    )
    return html, problem.status if problem else 200
