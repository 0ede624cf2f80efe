"""Generation history: browse, filter, play, download and delete an org's generations."""

from dashboard.tenancy import tenant_blueprint

bp = tenant_blueprint("history", __name__, "/history")
