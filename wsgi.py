"""WSGI entry point: `gunicorn wsgi:app`, and `FLASK_APP` for the `flask` command."""

from dotenv import load_dotenv

from dashboard import create_app
from dashboard.rls import verify_web_role

# `flask` loads .env itself; gunicorn doesn't, so do it here for both.
load_dotenv()
app = create_app()
# Once per process, outside the factory (which must not connect): with RLS_REQUIRED on,
# refuse to serve as a database role that row-level security doesn't bind.
verify_web_role(app)
