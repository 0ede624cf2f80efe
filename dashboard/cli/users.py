"""`flask users ...`: create logins, manage memberships, set passwords, disable logins.

Passwords come from a hidden prompt or stdin, never from an argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click
from flask.cli import AppGroup

from dashboard.auth import login_sessions
from dashboard.auth.queries import find_user, list_users
from dashboard.auth.services import create_user, disable_user, enable_user, set_password
from dashboard.cli.helpers import (
    ROLE_CHOICE,
    echo_table,
    operator_transaction,
    password_stdin_option,
    read_new_password,
    require_org,
    require_user,
    valid_email,
)
from dashboard.formatting import table_time
from dashboard.members.services import add_member, set_member_role
from dashboard.models import MemberRole, Organization, User

Outcome = TypeVar("Outcome")

users_group = AppGroup(
    "users", help="Create users, manage memberships, set passwords, disable and enable logins."
)


@users_group.command("create")
@click.argument("email")
@click.option("--name", required=True, help="The name shown in the dashboard.")
@click.option("--org", "org_slug", metavar="SLUG", help="Also add the user to this organisation.")
@click.option("--role", type=ROLE_CHOICE, help="Role in --org (default: member).")
@password_stdin_option
def create_user_command(
    email: str, name: str, org_slug: str | None, role: str | None, password_stdin: bool
) -> None:
    """Create a user; the password is asked twice (or read from stdin)."""
    email = valid_email(email)
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise click.ClickException("--name needs 1–100 characters")
    if role is not None and org_slug is None:
        raise click.ClickException("--role needs --org")
    # Check before asking for the password, so nobody types one for nothing.
    with operator_transaction("users create: check"):
        if find_user(email) is not None:
            raise click.ClickException(f"{email} already has an account")
        if org_slug is not None:
            require_org(org_slug)
    password = read_new_password(password_stdin)
    with operator_transaction("users create"):
        user = create_user(email, name, password)
        summary = f"Created {user.email} ({user.display_name})"
        if org_slug is not None:
            org = require_org(org_slug)
            add_member(org, user, MemberRole(role or MemberRole.MEMBER))
            summary += f", {role or MemberRole.MEMBER} of {org.slug}"
    click.echo(summary + ".")


@users_group.command("add-member")
@click.argument("email")
@click.argument("org_slug", metavar="ORG")
@click.option("--role", type=ROLE_CHOICE, required=True, help="Role to give (or change to).")
def add_member_command(email: str, org_slug: str, role: str) -> None:
    """Add a user to an organisation, or change their role in it."""
    new_role = MemberRole(role)
    with operator_transaction("users add-member"):
        user, org = require_user(email), require_org(org_slug)
        previous = set_member_role(org, user, new_role)
        who, where = user.email, org.slug
    if previous is None:
        click.echo(f"Added {who} to {where} as {new_role}.")
    elif previous is new_role:
        click.echo(f"{who} is already {new_role} of {where}; nothing changed.")
    else:
        click.echo(f"Changed {who}'s role in {where} from {previous} to {new_role}.")


@users_group.command("set-password")
@click.argument("email")
@password_stdin_option
def set_password_command(email: str, password_stdin: bool) -> None:
    """Set a user's password and end every session they have open."""
    with operator_transaction("users set-password: check"):
        require_user(email)
    password = read_new_password(password_stdin)
    who, _ = update_user("users set-password", email, lambda user: set_password(user, password))
    click.echo(f"Password changed for {who}; their open sessions have ended, so they log in again.")


@users_group.command("disable")
@click.argument("email")
def disable_command(email: str) -> None:
    """Stop a user logging in and end every session they have open."""
    who, ended = update_user("users disable", email, disable_user)
    if ended is None:
        click.echo(f"{who} is already disabled; nothing changed.")
    else:
        click.echo(
            f"Disabled {who}; {ended} open session(s) ended (`flask users enable` undoes it)."
        )


@users_group.command("enable")
@click.argument("email")
def enable_command(email: str) -> None:
    """Let a disabled user log in again."""
    who, changed = update_user("users enable", email, enable_user)
    if changed:
        click.echo(f"Enabled {who}; they can log in again.")
    else:
        click.echo(f"{who} is not disabled; nothing changed.")


@users_group.command("purge-sessions")
def purge_sessions_command() -> None:
    """Delete login sessions past their idle timeout or lifetime (workers do it hourly)."""
    with operator_transaction("users purge-sessions"):
        removed = login_sessions.purge_expired()
    click.echo(f"Deleted {removed} expired session(s).")


@users_group.command("list")
@click.option("--org", "org_slug", metavar="SLUG", help="Only this organisation's members.")
def list_users_command(org_slug: str | None) -> None:
    """List users by email with their organisations and roles."""
    with operator_transaction("users list"):
        org = require_org(org_slug) if org_slug is not None else None
        rows = [
            (
                user.email,
                user.display_name,
                memberships_cell(memberships, with_org=org is None),
                table_time(user.created_at),
            )
            for user, memberships in list_users(org)
        ]
    headers = ("EMAIL", "NAME", "ROLE" if org_slug else "ORGANISATIONS", "CREATED (UTC)")
    if not rows:
        click.echo(f"No members in {org_slug}." if org_slug else "No users yet.")
        return
    echo_table(headers, rows)


def update_user(command: str, email: str, change: Callable[[User], Outcome]) -> tuple[str, Outcome]:
    """Apply `change` to the user with `email` in one operator transaction.

    Return their email (read before the commit expires the row) and what `change` returned.
    """
    with operator_transaction(command):
        user = require_user(email)
        outcome = change(user)
        who = user.email
    return who, outcome


def memberships_cell(memberships: list[tuple[Organization, MemberRole]], with_org: bool) -> str:
    """Format a user's memberships as "acme (owner), demo (member)", or only the role."""
    if not memberships:
        return "-"
    return ", ".join(f"{org.slug} ({role})" if with_org else str(role) for org, role in memberships)
