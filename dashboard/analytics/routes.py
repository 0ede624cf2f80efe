"""The analytics page (being written)."""

from dashboard.analytics import bp


@bp.get("/", endpoint="index")
def index():
    return "Analytics is being built."
