"""The voice library: system voices now, each organisation's custom voices later."""

from flask import Blueprint

bp = Blueprint("voices", __name__)

from dashboard.voices import routes  # noqa: E402,F401  (routes attach to bp)
