"""The voice library: the public system-voice page, and each organisation's library."""

from flask import Blueprint

from dashboard.tenancy import tenant_blueprint

bp = Blueprint("voices", __name__)
# /o/<org_slug>/voices/…: browsing and previews (routes.py), managing (manage.py).
library_bp = tenant_blueprint("library", __name__, "/voices")
