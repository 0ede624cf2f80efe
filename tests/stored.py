"""What the database and object storage hold, to prove that a refused request wrote nothing."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import Engine, select

from dashboard.extensions import db
from dashboard.storage import get_storage
from dashboard.tenancy.operator import operator_access


def stored_state(app: Flask, engine: Engine | None = None) -> dict[str, Any]:
    """Return every row of every table and every object key, comparable with `==`.

    Every table the models declare, so a table added later is covered by itself; read
    as the operator (past row-level security) outside any request, or through
    `engine` (a connection that row-level security doesn't bind) when given: opening
    the operator's connection for each call costs more than the reading.
    """
    state: dict[str, Any] = {}
    with app.app_context():
        if engine is not None:
            with engine.connect() as conn:
                for table in db.metadata.sorted_tables:
                    rows = conn.execute(select(table)).all()
                    state[table.name] = sorted(repr(tuple(row)) for row in rows)
        else:
            with operator_access("test check spans orgs"):
                for table in db.metadata.sorted_tables:
                    rows = db.session.execute(select(table)).all()
                    state[table.name] = sorted(repr(tuple(row)) for row in rows)
                db.session.rollback()
        state["objects"] = sorted(get_storage().list_keys(""))
    return state


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Return the tables (and "objects") whose content differs, with what was added/removed."""
    found = {}
    for name in before.keys() | after.keys():
        old, new = set(before.get(name, ())), set(after.get(name, ()))
        if old != new:
            found[name] = {"added": sorted(new - old)[:3], "removed": sorted(old - new)[:3]}
    return found
