"""Shared fixtures: a fresh app per test on a real database, storage under tmp_path.

SQLite runs always. PostgreSQL runs when TEST_DATABASE_URL is set; otherwise those
tests are skipped with the reason (and REQUIRE_POSTGRES=1, as CI sets, turns the
skip into a failure so CI can never pass without them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, text

from dashboard import create_app
from dashboard.extensions import db
from tests import pg_roles
from tests.databases import (
    PG_SKIP_REASON,
    PG_URL,
    make_config,
    pg_url,
    truncate_all,
)
from tests.s3server import start_moto_server, use_s3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PG_URL:
        return
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
    skip = pytest.mark.skip(reason=PG_SKIP_REASON)
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """Migrate the PostgreSQL test database once per session, from an empty schema."""
    url = pg_url()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    from flask_migrate import upgrade

    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    pg_roles.require_owner_bypass(url)
    if pg_roles.APP_PG_URL:
        pg_roles.grant_test_app_role(url)
    yield url


@pytest.fixture(scope="session")
def pg_app_url(pg_schema: str) -> str:
    """Return the web role's URL (TEST_APP_DATABASE_URL): row-level security binds it."""
    return pg_roles.require_app_url()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Name the database under test: "sqlite" unless a test parametrises it."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Return a URL to an empty, migrated-schema database for this test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("pg_schema")


@pytest.fixture
def app(
    database_url: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Flask]:
    """Build a fresh app on an empty database."""
    config = make_config(database_url, tmp_path)
    if backend == "postgresql-app":
        config = make_config(
            request.getfixturevalue("pg_app_url"), tmp_path, OPERATOR_DATABASE_URL=database_url
        )
    app = create_app(config)
    with app.app_context():
        if backend == "sqlite":
            db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if backend.startswith("postgresql"):
        truncate_all(database_url)


@pytest.fixture
def storage_down(app: Flask) -> str:
    """Point the app's storage at an S3 endpoint nobody listens on; return its URL."""
    endpoint = "http://127.0.0.1:9"
    use_s3(app, endpoint)
    return endpoint


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Serve moto's S3 over real HTTP on loopback for the whole session."""
    with start_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def count_queries(app: Flask) -> Callable[[], contextmanager]:
    """Record every SQL statement the app's engine runs inside the returned context."""

    @contextmanager
    def counting() -> Iterator[list[str]]:
        with app.app_context():
            engine = db.engine
        seen: list[str] = []

        def record(_conn, _cursor, statement, *_rest) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return counting
