"""The demo organisation that `flask seed --demo` creates, with documented logins.

Development only: the passwords are published in the README and printed by the seed,
so the command refuses to run in production. Later issues add the demo's voices,
history and snapshots to `seed_demo`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.models import MemberRole, Organization
from dashboard.orgs.services import (
    AccountError,
    add_member,
    create_org,
    create_user,
    find_org,
    find_user,
    role_in,
)
from dashboard.passwords import verify_password

DEMO_ORG_NAME = "Demo Studio"
DEMO_ORG_SLUG = "demo"


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """A demo login as the README documents it."""

    role: MemberRole
    email: str
    display_name: str
    password: str


DEMO_ACCOUNTS = (
    DemoAccount(MemberRole.OWNER, "owner@demo.voxboard.test", "Demo Owner", "demo-owner-2026"),
    DemoAccount(MemberRole.ADMIN, "admin@demo.voxboard.test", "Demo Admin", "demo-admin-2026"),
    DemoAccount(MemberRole.MEMBER, "member@demo.voxboard.test", "Demo Member", "demo-member-2026"),
)


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """What one demo account looks like after the seed."""

    account: DemoAccount
    role: MemberRole  # the role it has now (someone may have changed it since)
    created: bool
    joined: bool  # (re-)added to the demo organisation by this run
    password_works: bool  # False: changed since it was seeded, and left alone


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What `seed_demo` found and did."""

    org_name: str
    org_slug: str
    org_created: bool
    logins: tuple[DemoLogin, ...]

    @property
    def changed(self) -> bool:
        return self.org_created or any(login.created or login.joined for login in self.logins)


def seed_demo() -> DemoReport:
    """Create whatever is missing of the demo organisation and its logins; flush only.

    Never overwrites what a person changed since (a password, a role): the report says so
    instead. Runs inside `tenancy.all_tenants`, since memberships are tenant rows.
    """
    org = find_org(DEMO_ORG_SLUG)
    org_created = org is None
    if org is None:
        org = create_org(DEMO_ORG_NAME, slug=DEMO_ORG_SLUG)
    else:
        _refuse_foreign_org(org)
    logins = tuple(_ensure_login(org, account) for account in DEMO_ACCOUNTS)
    return DemoReport(org.name, org.slug, org_created, logins)


def _ensure_login(org: Organization, account: DemoAccount) -> DemoLogin:
    user = find_user(account.email)
    created = user is None
    if user is None:
        user = create_user(account.email, account.display_name, account.password)
    password_works = created or verify_password(user.password_hash, account.password)
    role = role_in(org, user)
    joined = role is None
    if role is None:
        add_member(org, user, account.role)
        role = account.role
    return DemoLogin(account, role, created, joined, password_works)


def _refuse_foreign_org(org: Organization) -> None:
    """Refuse to add the demo logins to someone's real organisation that took the slug."""
    member_emails = {m.user.email for m in org.memberships}
    if member_emails and not member_emails & {a.email for a in DEMO_ACCOUNTS}:
        raise AccountError(
            f"the slug {DEMO_ORG_SLUG!r} belongs to {org.name!r}, which isn't the demo "
            "(none of its members is a demo login); nothing was changed"
        )
