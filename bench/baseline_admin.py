"""Baseline B: what a stock admin list costs on the same rows (Flask-Admin `ModelView`).

The generations of the big organisation (`get_query`/`get_count_query` filter on its
id, looked up once per worker), 50 a page, newest first, read-only. Flask-Admin pages
with OFFSET and shows a total from COUNT(*): both read every row before the page, so
page 0 pays for the count and the last page also for walking 300,000 index entries.
Like baseline A it connects as the owner (no row-level security) and has no login.

Served as `gunicorn 'bench.baseline_admin:create_app()'` with `BENCH_DATABASE_URL`.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from flask import Flask
from flask_admin import Admin
from flask_admin.contrib.sqla import ModelView
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select

from dashboard.models import Generation, Organization

PAGE_SIZE = 50
ORG_SLUG = os.environ.get("BENCH_ORG_SLUG", "big")

db = SQLAlchemy()


class OrgGenerations(ModelView):
    """One organisation's generations, as an operator's admin would list them."""

    can_create = can_edit = can_delete = False
    can_view_details = False
    page_size = PAGE_SIZE
    column_list = ("created_at", "voice_name", "status", "text", "character_count", "duration_ms")
    column_default_sort = [("created_at", True), ("id", True)]
    _org_id: uuid.UUID | None = None

    def org_id(self) -> uuid.UUID:
        if self._org_id is None:
            found = db.session.scalar(select(Organization.id).where(Organization.slug == ORG_SLUG))
            if found is None:
                raise LookupError(f"no organisation {ORG_SLUG!r}")
            type(self)._org_id = found
        return self._org_id

    def get_query(self):  # type: ignore[no-untyped-def]
        return super().get_query().filter(Generation.org_id == self.org_id())

    def get_count_query(self):  # type: ignore[no-untyped-def]
        return super().get_count_query().filter(Generation.org_id == self.org_id())


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the admin app (`BENCH_DATABASE_URL` names the database)."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("BENCH_DATABASE_URL", "sqlite://")
    app.config["SECRET_KEY"] = os.environ.get("BENCH_SECRET_KEY", "bench-admin")
    app.config.update(config or {})
    db.init_app(app)
    admin = Admin(app, name="Voxboard data")
    admin.add_view(OrgGenerations(Generation, db, name="Generations", endpoint="generations"))

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app
