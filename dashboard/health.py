"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from dashboard.database import describe_database_error
from dashboard.extensions import db
from dashboard.storage import StorageError, get_storage

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Answer 200 while the process can serve requests; checks nothing else on purpose."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Answer 200 when the database and storage answer, else 503 naming what failed."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        db.session.rollback()
        checks["database"] = describe_database_error(exc, str(db.engine.url))
    try:
        get_storage().check()
        checks["storage"] = "ok"
    except StorageError as exc:
        checks["storage"] = str(exc)
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503
