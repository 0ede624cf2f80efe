"""The analytics page and its CSV files: `?days=N` or `?from=&to=`, and `?by=`.

Every member may read the organisation's analytics. A period that can't be shown is a
400 with the reason: the page keeps its controls to fix it; the CSV answers in words.
"""

from __future__ import annotations

from flask import Response, abort, g, request

from dashboard import htmx
from dashboard.analytics import bp, charts, export, periods, queries
from dashboard.analytics.figures import Analytics
from dashboard.generations.queries import usage
from dashboard.models import utcnow
from dashboard.storage.media import content_disposition

INDEX = "analytics/index.html"


@bp.get("/", endpoint="index")
def index():
    """Show KPIs and charts for the period; htmx gets only the results block."""
    today = utcnow().date()
    context = {"org": g.org, "today": today, "presets": periods.PRESETS}
    # The quota bar is outside the results block: only whole pages show it.
    with_usage = not htmx.wants_fragment() and g.org.monthly_character_limit is not None
    try:
        period = periods.parse_period(request.args, today)
    except periods.InvalidPeriod as exc:
        fallback = periods.parse_period({}, today)
        if with_usage:
            context["usage"] = usage(g.org)
        response = htmx.render_page(INDEX, "results", period=fallback, problem=str(exc), **context)
        response.status_code = 400
        return response
    data = queries.analytics(g.org, period, today, with_usage=with_usage)
    return htmx.render_page(
        INDEX,
        "results",
        period=period,
        data=data,
        charts=charts.charts(data),
        usage=data.usage,
        **context,
    )


@bp.get("/export.csv", endpoint="export")
def export_buckets():
    """Download the current view's figures, one row per day, week or month."""
    data = _data_or_400()
    return _csv(export.buckets_csv(data), export.filename(g.org.slug, "analytics", data))


@bp.get("/voices.csv", endpoint="voices_csv")
def export_voices():
    """Download the current period's figures per voice."""
    data = _data_or_400()
    return _csv(export.voices_csv(data), export.filename(g.org.slug, "voices", data))


@bp.get("/sources.csv", endpoint="sources_csv")
def export_sources():
    """Download the current period's billed characters per source (dashboard, API keys)."""
    data = _data_or_400()
    return _csv(export.sources_csv(data), export.filename(g.org.slug, "sources", data))


def _data_or_400() -> Analytics:
    today = utcnow().date()
    try:
        period = periods.parse_period(request.args, today)
    except periods.InvalidPeriod as exc:
        abort(400, str(exc))
    return queries.analytics(g.org, period, today)


def _csv(body: str, name: str) -> Response:
    return Response(
        body.encode("utf-8"),
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": content_disposition(name),
            "Cache-Control": "private, no-store",
        },
    )
