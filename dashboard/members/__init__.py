"""Members, roles and invitations of an organisation."""

from flask import Blueprint

from dashboard.tenancy import tenant_blueprint

bp = tenant_blueprint("members", __name__, "/members")
# Accepting an invitation happens before the person is a member, so it lives outside
# the tenant blueprint (the token, not the URL's org, decides which org it joins).
public_bp = Blueprint("invitations", __name__)
