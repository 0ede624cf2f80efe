"""Sign-up: a new account and, unless the person is joining one, the organisation they own.

The one write that spans accounts and organisations, so it sits above both services
(organisation writes refuse with the accounts' `AccountError`). Flushes; the request commits.
"""

from __future__ import annotations

from dashboard.auth.services import create_user
from dashboard.models import Organization, User
from dashboard.orgs.services import create_org


def sign_up(
    email: str, display_name: str, password: str, org_name: str | None
) -> tuple[User, Organization | None]:
    """Create a user and, when `org_name` is given, a new organisation they own."""
    user = create_user(email, display_name, password)
    org = create_org(org_name, owner=user) if org_name and org_name.strip() else None
    return user, org
