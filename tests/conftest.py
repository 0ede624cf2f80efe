"""Shared fixtures: a fresh app per test on a real database, storage under tmp_path.

SQLite runs always. PostgreSQL runs when TEST_DATABASE_URL is set; otherwise those
tests are skipped with the reason (and REQUIRE_POSTGRES=1, as CI sets, turns the
skip into a failure so CI can never pass without them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from dashboard import create_app
from dashboard.config import engine_options, normalise_database_url
from dashboard.extensions import db
from tests import pg_roles

PG_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
PG_SKIP_REASON = (
    "PostgreSQL tests skipped: TEST_DATABASE_URL is not set "
    "(e.g. TEST_DATABASE_URL=postgresql://voxboard_test@127.0.0.1/voxboard_test; .ci/run sets it)"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# PostgreSQL as production runs it: the app connects as the web role, which row-level
# security binds; test setup goes through `operator_access` (the owner here).
WEB_ROLE_BACKENDS = ["sqlite", pytest.param("postgresql-app", marks=pytest.mark.postgres)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PG_URL:
        return
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
    skip = pytest.mark.skip(reason=PG_SKIP_REASON)
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pg_url() -> str:
    """Return TEST_DATABASE_URL in the form the app uses."""
    return normalise_database_url(PG_URL)[0]


def make_config(database_url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """Return the settings every test app starts from."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url, pooled=False),
        "DIRECT_URL": None,
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_ROOT": str(tmp_path / "objects"),
        "FORCE_HTTPS": False,
        "PASSWORD_HASH_PROFILE": "test",
        # The CSRF suite (test_csrf.py) turns these back on; elsewhere they'd only
        # add noise to every form post and make limits leak between tests.
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        # Jobs run inside the request that enqueues them, retries without waiting.
        "JOBS_IMMEDIATE": True,
        "JOB_RETRY_DELAY_SECONDS": 0,
        "TTS_ENGINE": "espeak",
        **extra,
    }


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


def truncate_all(owner_url: str) -> None:
    """Empty every table as the owner (PostgreSQL tests share one migrated schema)."""
    names = ", ".join(t.name for t in db.metadata.sorted_tables)
    engine = create_engine(owner_url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))
    engine.dispose()


@pytest.fixture
def storage_down(app: Flask) -> str:
    """Point the app's storage at an S3 endpoint nobody listens on; return its URL."""
    endpoint = "http://127.0.0.1:9"
    app.config.update(
        STORAGE_BACKEND="s3",
        S3_BUCKET="voices",
        S3_ENDPOINT_URL=endpoint,
        S3_REGION="us-east-1",
        S3_ACCESS_KEY_ID="k",
        S3_SECRET_ACCESS_KEY="s",
    )
    app.extensions["voxboard.storage"] = None  # rebuilt from the new settings on next use
    return endpoint


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Serve moto's S3 over real HTTP on loopback for the whole session."""
    from tests.s3server import start_moto_server

    with start_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def login(client, user) -> str:
    """Log `user` in on `client` as the login form would; return the session's login id.

    The server-side session row is committed in an app context of its own (a database
    session and connection of its own), so a caller's open transaction is left alone.
    """
    from dashboard.auth import login_sessions

    with client.application.app_context():
        login_id = login_sessions.start(user, "pytest", "127.0.0.1")
        db.session.commit()
    with client.session_transaction() as session:
        session["_user_id"] = login_id
        session["_fresh"] = True
    return login_id


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


@contextmanager
def private_schema_app(owner_url: str, tmp_path: Path, prefix: str) -> Iterator[Flask]:
    """Yield an app on a fresh, empty PostgreSQL schema (dropped afterwards).

    Migration tests upgrade and downgrade there without touching the shared schema.
    """
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    owner = create_engine(owner_url)
    with owner.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    config = make_config(owner_url, tmp_path)
    config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"options": f"-csearch_path={schema}"}}
    app = create_app(config)
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        with owner.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        owner.dispose()
