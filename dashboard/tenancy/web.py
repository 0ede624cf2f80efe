"""How a web request enters an organisation: `/o/<org_slug>/…` blueprints and roles.

A tenant blueprint resolves the slug among the caller's own memberships (404 for
anyone else), puts that org in scope (`scope.enter_org`) and exposes `g.org` and
`g.membership`; `require_role` guards the views only managers may use.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, g, request
from flask_login import current_user, login_required

from dashboard.models import MemberRole
from dashboard.tenancy.scope import enter_org


def tenant_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    """Return a blueprint under `/o/<org_slug>{url_prefix}` whose views run in that org.

    Anonymous callers are sent to log in; callers who aren't members get 404, so the
    existence of an organisation isn't revealed either.
    """
    bp = Blueprint(name, import_name, url_prefix=f"/o/<org_slug>{url_prefix}")
    bp.url_value_preprocessor(_pop_org_slug)
    bp.url_defaults(_add_org_slug)
    bp.before_request(_resolve_org)
    return bp


def _pop_org_slug(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.org_slug = (values or {}).pop("org_slug", None)


def _add_org_slug(endpoint: str, values: dict[str, Any]) -> None:
    if "org_slug" not in values and getattr(g, "org", None) is not None:
        values["org_slug"] = g.org.slug


@login_required
def _resolve_org() -> None:
    """Find the org by slug among the caller's own memberships: no query of its own.

    `login_sessions.load_user` loaded the memberships and their orgs with the user (one statement
    for "who, which org, which role, which other orgs"); the same rows are the header's
    organisation switcher (`g._nav_orgs`).
    """
    slug = g.get("org_slug") or ""
    rows = sorted(
        ((m.org, m) for m in current_user.memberships),
        key=lambda pair: (pair[0].name.casefold(), pair[0].slug),
    )
    found = next(((org, m) for org, m in rows if org.slug == slug), None)
    if found is None:
        abort(404)
    enter_org(found[0].id, current_user.id)
    g.org, g.membership = found
    g._nav_orgs = [(org, m.role) for org, m in rows]


def require_role(*roles: MemberRole) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Allow the view only to members whose role is one of `roles` (403 otherwise)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            membership = g.get("membership")
            if membership is None or membership.role not in roles:
                abort(403, "Your role in this organisation doesn't allow that.")
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]  # read by the tests
        return wrapped

    return decorator


MANAGERS = (MemberRole.OWNER, MemberRole.ADMIN)


def is_manager() -> bool:
    """Tell whether the caller may manage voices and members in the current org."""
    membership = g.get("membership")
    return membership is not None and membership.role in MANAGERS


def request_is_for_org() -> bool:
    """Tell whether the current request is under `/o/<org_slug>/`."""
    return request.blueprint is not None and g.get("org_slug") is not None
