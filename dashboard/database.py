"""Database helpers shared by the app, the CLI and the tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Integer, Select, event, func, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased, scoped_session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE, Subquery

from dashboard.config import redacted_url
from dashboard.extensions import db


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


@contextmanager
def task_transaction() -> Iterator[scoped_session[Session]]:
    """Run a task outside a request on `db.session` as a request would: commit at the
    end, roll back on error, and remove the session afterwards (a worker thread's
    session must not outlive its task)."""
    try:
        yield db.session
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        db.session.remove()


def describe_database_error(exc: BaseException, url: str) -> str:
    """Turn a connection failure into one line that names the database and the cause."""
    safe = redacted_url(url)
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return f"database unreachable ({safe}): {cause}"


# --------------------------------------------------------------- query building blocks


def numbered(
    stmt: Select[Any], part: int, order: Sequence[Any], limit: int | None = None
) -> Subquery:
    """Return `stmt` ordered (and bounded) as a subquery whose rows say their part and place.

    For one `UNION ALL` of several ordered, limited lists: each list becomes a subquery
    (so its ORDER BY and LIMIT bind only it, on SQLite too) with a `part` and a `pos`
    (`row_number()` in its own order), and the caller sorts the union by both, keeping
    the database's order (its collation, its ranking) rather than Python's.
    """
    stmt = stmt.add_columns(
        literal(part, Integer).label("part"), func.row_number().over(order_by=order).label("pos")
    ).order_by(*order)
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt.subquery()


def loose_scan(
    model: type,
    column: str,
    criteria: Callable[[Any], Sequence[ColumnElement[bool]]],
    name: str,
    cap: Any = None,
) -> CTE:
    """Return a recursive CTE of the distinct values of `model.column`, ascending: `value`, `pos`.

    A loose index scan: each step asks an index leading with the `criteria` columns and
    then `column` for the first value after the last one, so the cost follows the number
    of distinct values, not of rows (a DISTINCT reads every row). `criteria(alias)` gives
    the conditions on an alias of `model`; `cap` (a number or a bound parameter) stops
    after that many values plus one, so a caller can tell it was reached. The last row's
    `value` is NULL (the step that found nothing): filter on `value IS NOT NULL`. Build
    it once with bound parameters: building costs more than running it.
    """

    def first_after(after: Any = None) -> Any:
        row = aliased(model)
        stmt = select(func.min(getattr(row, column))).where(*criteria(row))
        if after is not None:
            stmt = stmt.where(getattr(row, column) > after)
        return stmt.scalar_subquery()

    found = select(first_after().label("value"), literal(1).label("pos")).cte(name, recursive=True)
    going = [found.c.value.is_not(None)]
    if cap is not None:
        going.append(found.c.pos <= cap)
    return found.union_all(select(first_after(found.c.value), found.c.pos + 1).where(*going))
