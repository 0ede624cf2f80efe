"""The operator role: cross-organisation work past both tenant walls, never in a request.

Operator commands (`flask seed`, `flask storage sweep`, …) and the worker's periodic
tasks (the reaper, the nightly snapshot) act for every organisation. They lift the
application filter with `tenancy.all_tenants(reason)` and, on PostgreSQL, connect as
`OPERATOR_DATABASE_URL` (a BYPASSRLS role) when it is set; without it (development,
SQLite, tests) they use the app's own connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app, has_request_context
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, scoped_session

from dashboard import tenancy
from dashboard.config import engine_options
from dashboard.database import task_transaction
from dashboard.extensions import db

OPERATOR_ENGINE_KEY = "voxboard.operator_engine"


@contextmanager
def operator_access(reason: str) -> Iterator[None]:
    """Run an operator command's block across organisations, past row-level security.

    `tenancy.all_tenants(reason)` lifts the application filter; on the database side the
    block runs on `OPERATOR_DATABASE_URL` (a BYPASSRLS role) when it is set. Without it
    (development, SQLite, tests) the app's own connection is used. CLI only: the web
    app never leaves its role.
    """
    if has_request_context():
        raise RuntimeError("operator_access() is for operator commands, never for requests")
    url = current_app.config.get("OPERATOR_DATABASE_URL")
    with tenancy.all_tenants(reason):
        if not url:
            yield
            return
        with _default_engine(url):
            yield


@contextmanager
def _default_engine(url: str) -> Iterator[None]:
    """Point `db.session` and `db.engine` at `url` for the block (one CLI process only)."""
    if db.session().in_transaction():
        raise RuntimeError("commit or roll back before switching to the operator role")
    engine = create_engine(url, **engine_options(url, pooled=False))
    # Flask-SQLAlchemy hands out the app's live engine mapping; the session picks its
    # default engine from it on every transaction, so swapping the entry is enough.
    engines: dict[str | None, Engine] = db.engines  # type: ignore[assignment]
    web_engine = engines[None]
    engines[None] = engine
    try:
        yield
    finally:
        # The block commits its work; whatever is left belongs to the operator connection.
        db.session.close()
        engines[None] = web_engine
        engine.dispose()


def operator_engine(url: str) -> Engine:
    """Return the worker's engine for the operator role, built once per app."""
    engine = current_app.extensions.get(OPERATOR_ENGINE_KEY)
    if engine is None:
        engine = create_engine(url, **engine_options(url, pooled=False))
        current_app.extensions[OPERATOR_ENGINE_KEY] = engine
    return engine


@contextmanager
def worker_session(reason: str) -> Iterator[Session | scoped_session[Session]]:
    """Yield the session a worker's periodic task spans organisations with; commit at the end.

    On `OPERATOR_DATABASE_URL` it is a session of its own on the operator engine, never
    the app's engine swapped under the worker's other threads; without it, `db.session`
    through `database.task_transaction`.
    """
    url = current_app.config.get("OPERATOR_DATABASE_URL")
    with tenancy.all_tenants(reason):
        if url:
            with Session(operator_engine(url)) as session:
                yield session
                session.commit()
            return
        with task_transaction() as session:
            yield session
