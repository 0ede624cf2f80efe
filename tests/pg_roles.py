"""PostgreSQL roles for the tests: the owner that migrates, the web ("app") role RLS binds.

The suite's own fixtures (factories under `tenancy.all_tenants`) connect as the owner of
TEST_DATABASE_URL, which must have BYPASSRLS, like the operator role in production.
The row-level security tests connect as TEST_APP_DATABASE_URL's role instead.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from dashboard.config import normalise_database_url
from dashboard.tenancy.rls import grant_app_role

APP_PG_URL = os.environ.get("TEST_APP_DATABASE_URL", "").strip()
APP_SKIP_REASON = (
    "row-level security tests skipped: TEST_APP_DATABASE_URL is not set (a LOGIN "
    "NOSUPERUSER NOBYPASSRLS role on TEST_DATABASE_URL's database, e.g. "
    "CREATE ROLE voxboard_test_app LOGIN; "
    "TEST_APP_DATABASE_URL=postgresql://voxboard_test_app@127.0.0.1/voxboard_test; "
    ".ci/run sets it)"
)


def app_pg_url() -> str:
    """Return TEST_APP_DATABASE_URL in the form the app uses."""
    return normalise_database_url(APP_PG_URL)[0]


def app_role_name() -> str:
    """Return the web role's name (TEST_APP_DATABASE_URL's user)."""
    name = make_url(app_pg_url()).username
    assert name, "TEST_APP_DATABASE_URL names no user"
    return name


def require_app_url() -> str:
    """Return the web role's URL; skip without it, or fail when PostgreSQL is required."""
    if APP_PG_URL:
        return app_pg_url()
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"REQUIRE_POSTGRES=1 but {APP_SKIP_REASON}", pytrace=False)
    pytest.skip(APP_SKIP_REASON)


def require_owner_bypass(owner_url: str) -> None:
    """Fail with the fix when the test owner can't see every org past row-level security."""
    engine = create_engine(owner_url, poolclass=NullPool)
    with engine.connect() as conn:
        name, bypass = conn.execute(
            text(
                "SELECT rolname, rolsuper OR rolbypassrls FROM pg_roles "
                "WHERE rolname = current_user"
            )
        ).one()
    engine.dispose()
    if not bypass:
        pytest.fail(
            f"TEST_DATABASE_URL's role {name} needs BYPASSRLS: the tests' fixtures create "
            "rows of many organisations at once, which the FORCE ROW LEVEL SECURITY policies "
            f"refuse otherwise. Run (as a superuser): ALTER ROLE {name} BYPASSRLS",
            pytrace=False,
        )


def grant_test_app_role(owner_url: str) -> None:
    """Give the web role of TEST_APP_DATABASE_URL its privileges, as `flask rls grant` does."""
    engine = create_engine(owner_url, poolclass=NullPool)
    with engine.begin() as conn:
        grant_app_role(conn, app_role_name())
    engine.dispose()
