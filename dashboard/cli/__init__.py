"""Operator commands; each module holds one command group and wraps services."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    """Attach every command to `app.cli`."""
    from dashboard.cli.analytics import analytics_group
    from dashboard.cli.api_keys import api_keys_group
    from dashboard.cli.generations import generations_group, worker_command
    from dashboard.cli.orgs import orgs_group
    from dashboard.cli.rls import rls_group
    from dashboard.cli.secrets import secrets_group
    from dashboard.cli.seed import seed_command
    from dashboard.cli.storage import storage_group
    from dashboard.cli.users import users_group

    app.cli.add_command(seed_command)
    app.cli.add_command(orgs_group)
    app.cli.add_command(users_group)
    app.cli.add_command(rls_group)
    app.cli.add_command(storage_group)
    app.cli.add_command(generations_group)
    app.cli.add_command(worker_command)
    app.cli.add_command(analytics_group)
    app.cli.add_command(api_keys_group)
    app.cli.add_command(secrets_group)
