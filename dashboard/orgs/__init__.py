"""Organisations: the landing redirect, creating one, and each org's home page."""

from flask import Blueprint

from dashboard.tenancy import tenant_blueprint

bp = Blueprint("orgs", __name__)
org_bp = tenant_blueprint("org", __name__)
