"""`flask orgs ...`: create and list organisations, set their monthly quota."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from dashboard.cli.helpers import (
    echo_table,
    operator_transaction,
    require_org,
    require_user,
)
from dashboard.formatting import table_time
from dashboard.orgs import queries, services

# The column is a 32-bit INTEGER on PostgreSQL; anything larger is "unlimited" anyway.
MAX_LIMIT = 2**31 - 1

orgs_group = AppGroup("orgs", help="Create and list organisations.")


@orgs_group.command("create")
@click.argument("name")
@click.option("--slug", help="URL slug (/o/SLUG/); derived from NAME when omitted.")
@click.option("--owner", "owner_email", metavar="EMAIL", help="An existing user to make owner.")
def create_org_command(name: str, slug: str | None, owner_email: str | None) -> None:
    """Create an organisation and print its slug."""
    with operator_transaction("orgs create"):
        owner = require_user(owner_email) if owner_email else None
        if slug is not None and (problem := services.slug_problem(slug)):
            raise click.ClickException(f"slug {slug!r}: {problem}")
        org = services.create_org(name, owner=owner, slug=slug)
        created_slug = org.slug
    click.echo(created_slug)


@orgs_group.command("list")
def list_orgs_command() -> None:
    """List organisations by name with their member counts."""
    with operator_transaction("orgs list"):
        rows = [
            (org.slug, org.name, members, table_time(org.created_at))
            for org, members in queries.list_orgs()
        ]
    if not rows:
        click.echo("No organisations yet; create one with `flask orgs create NAME`.")
        return
    echo_table(("SLUG", "NAME", "MEMBERS", "CREATED (UTC)"), rows)


@orgs_group.command("set-quota")
@click.argument("slug")
@click.argument("limit", metavar="CHARACTERS|none")
def set_quota_command(slug: str, limit: str) -> None:
    """Set an organisation's monthly character limit ("none": unlimited)."""
    if limit.strip().lower() in {"none", "unlimited", "off"}:
        value = None
    else:
        try:
            value = int(limit.replace(",", "").replace("_", ""))
        except ValueError:
            raise click.BadParameter(
                f"{limit!r} is not a whole number of characters (or 'none')", param_hint="LIMIT"
            ) from None
        if value < 0:
            raise click.BadParameter("a limit can't be negative", param_hint="LIMIT")
        if value > MAX_LIMIT:
            raise click.BadParameter(
                f"a limit can be at most {MAX_LIMIT:,} characters (or 'none')", param_hint="LIMIT"
            )
    with operator_transaction("orgs set-quota"):
        org = require_org(slug)
        org.monthly_character_limit = value
        name = org.name
    if value is None:
        click.echo(f"{name} ({slug}) has no monthly character limit now.")
    else:
        click.echo(f"{name} ({slug}) may generate {value:,} characters per calendar month (UTC).")
