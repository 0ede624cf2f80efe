"""WSGI entry point: `gunicorn wsgi:app`, and `FLASK_APP` for the `flask` command."""

from dotenv import load_dotenv

from dashboard import create_app

# `flask` loads .env itself; gunicorn doesn't, so do it here for both.
load_dotenv()
app = create_app()
