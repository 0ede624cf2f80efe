"""WSGI entry point: `gunicorn wsgi:app`, and `FLASK_APP` for the `flask` command."""

import sys

from dotenv import load_dotenv

from dashboard import create_app
from dashboard.config import ConfigError
from dashboard.tenancy.rls import verify_web_role

# `flask` loads .env itself; gunicorn doesn't, so do it here for both.
load_dotenv()
try:
    app = create_app()
    # Once per process, outside the factory (which must not connect): with RLS_REQUIRED
    # on, refuse to serve as a database role that row-level security doesn't bind.
    verify_web_role(app)
except ConfigError as exc:
    # A setting an operator must fix: one line saying what, not a traceback.
    print(f"voxboard: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(1) from None
