"""Database helpers shared by the app, the CLI and the tests."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys unless asked, and ON DELETE CASCADE / SET NULL
    # are part of the schema's promises.
    cursor.execute("PRAGMA foreign_keys = ON")
    # WAL lets the web server read while the worker or a CLI command writes.
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def install_sqlite_pragmas() -> None:
    """Turn on foreign keys and WAL for every SQLite connection (idempotent)."""
    if not event.contains(Engine, "connect", _on_sqlite_connect):
        event.listen(Engine, "connect", _on_sqlite_connect)


def describe_database_error(exc: BaseException, url: str) -> str:
    """Turn a connection failure into one line that names the database and the cause."""
    from sqlalchemy.engine import make_url

    safe = make_url(url).render_as_string(hide_password=True)
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return f"database unreachable ({safe}): {cause}"
