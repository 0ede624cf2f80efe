"""`flask api-keys ...`: list every organisation's API keys, revoke one by id.

A key's secret is never stored, so no command can show one; operators see the last
four characters, as the settings page does.
"""

from __future__ import annotations

import uuid

import click
from flask.cli import AppGroup

from dashboard.api import services
from dashboard.api.queries import find_any_key, key_status, list_all_keys
from dashboard.cli.helpers import echo_table, operator_transaction, require_org
from dashboard.formatting import table_time

api_keys_group = AppGroup("api-keys", help="List organisations' API keys and revoke them.")


@api_keys_group.command("list")
@click.option("--org", "org_slug", metavar="SLUG", help="Only this organisation's keys.")
def list_command(org_slug: str | None) -> None:
    """List API keys by organisation, newest first, with their scopes and status."""
    with operator_transaction("api-keys list"):
        org = require_org(org_slug) if org_slug is not None else None
        rows = [
            (
                key.id,
                org.slug,
                key.name,
                ",".join(key.scopes),
                table_time(key.created_at),
                table_time(key.last_used_at) if key.last_used_at else "never",
                key_status(key),
            )
            for key, org in list_all_keys(org.id if org else None)
        ]
    if not rows:
        click.echo(f"No API keys in {org_slug}." if org_slug else "No API keys yet.")
        return
    headers = ("ID", "ORG", "NAME", "SCOPES", "CREATED (UTC)", "LAST USED (UTC)", "STATUS")
    echo_table(headers, rows)


@api_keys_group.command("revoke")
@click.argument("key_id", metavar="ID")
def revoke_command(key_id: str) -> None:
    """Revoke the API key with this id (see `flask api-keys list`): its requests are refused."""
    try:
        parsed = uuid.UUID(key_id.strip())
    except ValueError:
        raise click.ClickException(
            f"{key_id!r} is not an API key id; ids look like the first column of "
            "`flask api-keys list` (a UUID)"
        ) from None
    with operator_transaction("api-keys revoke"):
        found = find_any_key(parsed)
        if found is None:
            raise click.ClickException(f"no API key with id {parsed} (see `flask api-keys list`)")
        key, org = found
        revoked = services.revoke_key(key, None)
        what = f"“{key.name}” (vxb_…{key.last_four}) of {org.slug}"
        when = table_time(key.revoked_at)
    if revoked:
        click.echo(f"Revoked the key {what}; requests with it are refused from now on.")
    else:
        click.echo(f"The key {what} was already revoked on {when} UTC; nothing changed.")
