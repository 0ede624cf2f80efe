"""The databases the suite runs on, and how a test asks for them.

SQLite runs always. PostgreSQL runs when TEST_DATABASE_URL is set; otherwise those
tests are skipped with the reason (REQUIRE_POSTGRES=1, as CI sets, makes that a
failure). `both_databases` runs a test on SQLite and PostgreSQL as the owner;
`web_role` on SQLite and PostgreSQL as the web role that row-level security binds.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from dashboard import create_app
from dashboard.config import engine_options, normalise_database_url
from dashboard.extensions import db

PG_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
PG_SKIP_REASON = (
    "PostgreSQL tests skipped: TEST_DATABASE_URL is not set "
    "(e.g. TEST_DATABASE_URL=postgresql://voxboard_test@127.0.0.1/voxboard_test; .ci/run sets it)"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# PostgreSQL as production runs it: the app connects as the web role, which row-level
# security binds; test setup goes through `operator_access` (the owner here).
WEB_ROLE_BACKENDS = ["sqlite", pytest.param("postgresql-app", marks=pytest.mark.postgres)]

both_databases = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
web_role = pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
PG_ONLY = [pytest.param("postgresql", marks=pytest.mark.postgres)]


def pg_url() -> str:
    """Return TEST_DATABASE_URL in the form the app uses."""
    return normalise_database_url(PG_URL)[0]


def make_config(database_url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """Return the settings every test app starts from."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        # A fixed Fernet key, like SECRET_KEY: tests that rotate keys set their own.
        "ENCRYPTION_KEYS": ["dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMhISE="],
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
        # API request counters written on every request, so a test sees them at once.
        "API_COUNTER_FLUSH_SECONDS": 0,
        **extra,
    }


def truncate_all(owner_url: str) -> None:
    """Empty every table as the owner (PostgreSQL tests share one migrated schema)."""
    names = ", ".join(t.name for t in db.metadata.sorted_tables)
    engine = create_engine(owner_url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))
    engine.dispose()


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
