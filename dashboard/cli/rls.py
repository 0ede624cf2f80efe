"""`flask rls ...`: give the web role its privileges, and check it as start-up does."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from dashboard.database import describe_database_error
from dashboard.extensions import db
from dashboard.tenancy import rls

rls_group = AppGroup("rls", help="Row-level security: the web role's privileges and checks.")


@rls_group.command("grant")
@click.argument("role")
def grant_command(role: str) -> None:
    """Give ROLE (the web app's role) DML on the app's tables and nothing else.

    Append-only tables (the usage ledger) get SELECT and INSERT only.

    Connects like `flask db upgrade` (DIRECT_URL, the owner, when set) and is idempotent:
    run it after every upgrade, so tables added since get their grants too.
    """
    url = owner_url()
    require_postgresql(url, "DIRECT_URL (or DATABASE_URL)")
    engine = owner_engine()
    try:
        with engine.begin() as connection:
            groups = rls.grant_app_role(connection, role)
    except rls.GrantError as exc:
        raise click.ClickException(f"grant failed: {exc}") from exc
    except DBAPIError as exc:
        raise click.ClickException(f"grant failed: {describe_database_error(exc, url)}") from exc
    finally:
        if engine is not db.engine:
            engine.dispose()
    granted = "; ".join(
        f"{', '.join(privileges)} on {', '.join(names)}"
        + (" (append-only)" if privileges == rls.APPEND_ONLY else "")
        for privileges, names in groups.items()
    )
    click.echo(f"{role}: {granted}; nothing else.")


@rls_group.command("check")
def check_command() -> None:
    """Check DATABASE_URL's role as start-up does, and that the policies are in place."""
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    require_postgresql(url, "DATABASE_URL")
    try:
        problem = rls.web_role_problem(url, current_app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        with db.engine.connect() as connection:
            unprotected = rls.tables_without_rls(connection)
    except DBAPIError as exc:
        raise click.ClickException(f"check failed: {describe_database_error(exc, url)}") from exc
    if problem:
        raise click.ClickException(problem)
    if unprotected:
        raise click.ClickException(
            f"{', '.join(unprotected)}: row-level security is not enabled and forced; "
            "run `flask db upgrade`"
        )
    click.echo("Row-level security binds the web role; every tenant table is protected.")


def owner_url() -> str:
    """Return the URL migrations use: DIRECT_URL when set, else DATABASE_URL."""
    return current_app.config.get("DIRECT_URL") or current_app.config["SQLALCHEMY_DATABASE_URI"]


def owner_engine() -> Engine:
    """Connect as `migrations/env.py` does; GRANT needs the tables' owner."""
    direct_url = current_app.config.get("DIRECT_URL")
    if direct_url:
        return create_engine(direct_url, poolclass=NullPool)
    return db.engine


def require_postgresql(url: str, name: str) -> None:
    """Stop with an error unless `url` is PostgreSQL (the only database with RLS)."""
    if make_url(url).get_backend_name() != "postgresql":
        raise click.ClickException(
            f"row-level security needs PostgreSQL, and {name} is {make_url(url).get_backend_name()}"
        )
