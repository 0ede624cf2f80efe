"""Baseline A: the least a keyset page over the same rows can cost.

A minimal Flask + Flask-SQLAlchemy app listing the big organisation's generations 50
at a time, newest first, by keyset on `(created_at, id)` (the same index, the same
cursor format as the history page) in a tiny Jinja table: no login, no tenancy, no
row-level security (it connects as the owner), no layout, no CSRF or security
headers. The org's id is looked up once per worker. Voxboard's history page is
measured against it: what is left is the price of everything the dashboard adds.

Served as `gunicorn 'bench.baseline_keyset:create_app()'` with `BENCH_DATABASE_URL`.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from flask import Flask, abort, render_template_string, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select, tuple_
from sqlalchemy.orm import defer

from dashboard.history.queries import decode_cursor, encode_cursor
from dashboard.keyset import InvalidCursor
from dashboard.models import Generation, Organization

PAGE_SIZE = 50
TABLE = """<!doctype html>
<title>Generations</title>
<table>
{% for g in rows %}<tr><td>{{ g.created_at.isoformat() }}</td><td>{{ g.voice_name }}</td>
<td>{{ g.status.value }}</td><td>{{ g.text }}</td><td>{{ g.character_count }}</td></tr>
{% endfor %}</table>
{% if next_cursor %}<a href="?after={{ next_cursor }}">Older</a>{% endif %}
"""

db = SQLAlchemy()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the baseline app (`BENCH_DATABASE_URL` names the database)."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("BENCH_DATABASE_URL", "sqlite://")
    app.config.update(config or {})
    db.init_app(app)
    org_ids: dict[str, uuid.UUID] = {}

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    @app.get("/o/<slug>/")
    def page(slug: str) -> str:
        if slug not in org_ids:
            org_id = db.session.scalar(select(Organization.id).where(Organization.slug == slug))
            if org_id is None:
                abort(404)
            org_ids[slug] = org_id
        try:
            after = decode_cursor(request.args.get("after"))
        except InvalidCursor:
            abort(400)
        stmt = (
            select(Generation)
            .where(Generation.org_id == org_ids[slug])
            .order_by(Generation.created_at.desc(), Generation.id.desc())
            .options(defer(Generation.peaks))
            .limit(PAGE_SIZE + 1)
            # The baseline has no tenancy on purpose; Voxboard's tenant filter, a
            # global Session hook once any Voxboard app exists in the process, must
            # not refuse it (it does in the test suite's process).
            .execution_options(skip_tenant_scope=True)
        )
        if after is not None:
            stmt = stmt.where(
                tuple_(Generation.created_at, Generation.id) < tuple_(after.created_at, after.id)
            )
        rows = db.session.scalars(stmt).all()
        next_cursor = encode_cursor(rows[PAGE_SIZE - 1]) if len(rows) > PAGE_SIZE else None
        return render_template_string(TABLE, rows=rows[:PAGE_SIZE], next_cursor=next_cursor)

    return app
