"""Analytics: daily snapshots per organisation (snapshots.py) and the analytics page."""

from dashboard.tenancy import tenant_blueprint

bp = tenant_blueprint("analytics", __name__, "/analytics")

from dashboard.analytics import routes  # noqa: E402,F401  (routes attach to the blueprint)
