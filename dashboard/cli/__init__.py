"""Operator commands; each module holds one command group and wraps services."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    """Attach every command to `app.cli`."""
    from dashboard.cli.seed import seed_command

    app.cli.add_command(seed_command)
