"""The analytics page: KPIs and changes, buckets, missing snapshots, tenancy, statement
counts, htmx fragments, bad periods and CSP-clean charts — on both databases.

Past days are `AnalyticsSnapshot` rows written straight into the database; today is
real generations (factories), which the page reads live. Expected figures are added
up by hand from the rows below, not recomputed with the code under test.
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from dashboard.analytics import charts, figures, past, periods
from dashboard.extensions import db
from dashboard.models import (
    utcnow,
)
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.analytics.helpers import (
    RIVAL_CHARACTERS,
    ROLES,
    WINTER,
    add_daily_snapshots,
    add_generations_today,
    get,
    kpis,
    statements_in_view,
    svgs,
    table_rows,
    tally,
    url,
)
from tests.databases import BACKENDS, WEB_ROLE_BACKENDS
from tests.http import HX, login

# ------------------------------------------------------------------------ the world


# ------------------------------------------------------------------------- figures


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_every_role_sees_kpis_and_changes_against_the_previous_period(client, world, role):
    login(client, world["users"][role])
    response = client.get(url(days="7"))
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    page = response.get_data(as_text=True)
    # Succeeded: 3 + 2 + 1 + 1 + 1 + 2 today = 10, failed 1 + 1 today; before: 2.
    # Characters: 300 + 100 + 50 + 40 + 10 + 25 + 25 = 550; before 200 → +175 %.
    # Audio: 30 + 12 + 6 + 4 + 2 + 3 + 3 s = 60 s = 1.0 min; before 20 s = 0.3 min → +200 %.
    # Voices: Narrator, Aaron, Gone Voice (by id, then by name: one voice); before 1.
    assert kpis(page) == {
        "Generations": ("10", "up", "▲ 400 %"),
        "Characters": ("550", "up", "▲ 175 %"),
        "Audio minutes": ("1.0", "up", "▲ 200 %"),
        "Active voices": ("3", "up", "▲ 200 %"),
    }
    assert "2 failed" in page
    assert "previous 7 days: 2" in page
    assert "up 400 % from the previous period" in page  # words, not only colour and shape


def test_changes_say_down_new_and_no_change():
    assert figures.Change(1, 2).text == "▼ 50 %"
    assert figures.Change(5, 0).text == "new"
    assert figures.Change(0, 0).text == "no change"
    assert figures.Change(3, 3).text == "no change"
    assert figures.Change(1001, 1000).text == "▲ <1 %"
    assert figures.Change(0, 4).words == "down 100 % from the previous period"


def test_missing_snapshots_count_as_zero_and_are_pointed_out(as_member):
    page = get(as_member, url(days="7"))
    # today-3 has no row; of the 7 days before, six have none.
    assert "No snapshot yet for 1 of these 7 days, and for 6 of the 7 before" in page
    rows = table_rows(page, "generations")
    assert [r[1:] for r in rows] == [
        ["1", "0"],  # today-6
        ["1", "0"],
        ["1", "0"],
        ["0", "0"],  # today-3: no snapshot → zeros
        ["2", "0"],
        ["3", "1"],
        ["2", "1"],  # today, live
    ]


def test_days_before_the_org_existed_are_not_missing(app, as_member, world):
    with app.app_context(), operator_access("test setup"):
        from dashboard.models import Organization

        org = db.session.get(Organization, world["acme"])
        org.created_at = utcnow() - dt.timedelta(days=3)  # today-3 is its first day
        db.session.commit()
    page = get(as_member, url(days="7"))
    assert "No snapshot yet for 1 of these 7 days;" in page  # today-3 only; none before


def test_breakdowns_name_deleted_voices_and_former_members(as_member):
    page = get(as_member, url(days="7"))
    assert table_rows(page, "voices") == [
        ["Narrator", "Custom", "6", "360", "0.6"],  # 3 + 1 + 2 today; 300 + 10 + 50
        ["Aaron", "System", "2", "100", "0.2"],
        ["Gone Voice (deleted)", "Deleted", "2", "90", "0.2"],
    ]
    assert table_rows(page, "members") == [
        ["Olive Owner", "6", "360", "0.6"],
        ["Zoë Member", "2", "100", "0.2"],
        ["Former members", "2", "90", "0.2"],  # Lee Left (no longer a member) + "former"
    ]
    assert "Lee Left" not in page
    assert table_rows(page, "categories") == [
        ["General", "6", "60 %", "360"],
        ["Narrative", "2", "20 %", "100"],
        ["Deleted voices", "1", "10 %", "40"],
        ["Podcast", "1", "10 %", "50"],
    ]


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_other_orgs_figures_never_leak(as_member):
    pages = [
        get(as_member, url(days="7")),
        get(as_member, url(days="90", by="month")),
        get(as_member, url(days="7"), **HX),
        get(as_member, url(days="7").replace("/analytics/", "/analytics/export.csv")),
        get(as_member, url(days="30").replace("/analytics/", "/analytics/voices.csv")),
    ]
    for page in pages:
        for secret in (
            f"{RIVAL_CHARACTERS:,}",
            str(RIVAL_CHARACTERS),
            "Rival Secret",
            "Rival Person",
            "Advertising",
            "987.7M",
            "988M",
        ):
            assert secret not in page


# ------------------------------------------------------------------------- buckets


def test_weeks_start_on_monday_and_are_clipped_to_the_period(as_member, winter):
    page = get(as_member, url(**WINTER, by="week"))
    rows = table_rows(page, "generations")
    assert [r[0] for r in rows] == [
        "25 – 28 Dec 2025",
        "29 Dec 2025 – 4 Jan 2026",
        "5 – 11 Jan 2026",
        "12 – 18 Jan 2026",
        "19 – 25 Jan 2026",
        "26 Jan – 1 Feb 2026",
        "2 – 3 Feb 2026",
    ]
    assert [r[1] for r in rows] == ["1", "2", "0", "0", "0", "12", "16"]


def test_months_are_calendar_months_clipped_to_the_period(as_member, winter):
    page = get(as_member, url(**WINTER, by="month"))
    rows = table_rows(page, "generations")
    assert [(r[0], r[1]) for r in rows] == [
        ("25 – 31 Dec 2025", "3"),
        ("January 2026", "4"),
        ("1 – 3 Feb 2026", "24"),
    ]
    # The previous 41 days had nothing; a custom range that ends before today is all
    # snapshots (no live figures).
    assert kpis(page)["Generations"] == ("31", "new", "new")


def test_days_are_the_default_grouping_for_a_month_and_weeks_for_a_quarter(as_member):
    page = get(as_member, url(days="30"))
    assert len(table_rows(page, "generations")) == 30
    assert 'id="by-day" href="/o/acme/analytics/?days=30&amp;by=day" hx-get' in page
    page = get(as_member, url(days="90"))
    assert "by week" in page
    assert 13 <= len(table_rows(page, "generations")) <= 14


def test_period_parsing():
    day = dt.date(2026, 3, 10)
    assert periods.parse_period({}, day) == periods.Period(dt.date(2026, 2, 9), day, "day", 30)
    period = periods.parse_period({"days": "90", "by": "month"}, day)
    assert (period.start, period.grouping, period.grouping_chosen) == (
        dt.date(2025, 12, 11),
        "month",
        True,
    )
    assert period.args() == {"days": "90", "by": "month"}
    assert [(b.start, b.end) for b in period.buckets()] == [
        (dt.date(2025, 12, 11), dt.date(2025, 12, 31)),
        (dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
        (dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        (dt.date(2026, 3, 1), dt.date(2026, 3, 10)),
    ]
    assert period.previous == (dt.date(2025, 9, 12), dt.date(2025, 12, 10))
    custom = periods.parse_period({"from": "2026-03-01", "to": "2026-03-10", "days": "7"}, day)
    assert (custom.preset, custom.days, custom.args()) == (
        None,
        10,
        {"from": "2026-03-01", "to": "2026-03-10"},
    )


# ------------------------------------------------------------------- bad periods


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"days": "abc"}, "isn't a number of days"),
        ({"days": "0"}, "isn't a number of days"),
        ({"days": "367"}, "isn't a number of days"),
        ({"by": "year"}, "Group by day, week or month"),
        ({"from": "2026-13-01", "to": "2026-01-02"}, "isn't a date"),
        ({"from": "2026-01-05"}, "needs a end date as well"),
        ({"from": "2026-01-05", "to": "2026-01-01"}, "is after the end date"),
        ({"from": "2024-01-01", "to": "2025-06-01"}, "choose at most 366 days"),
        ({"from": "2025-01-01", "to": "2999-01-01"}, "is in the future"),
    ],
)
def test_bad_periods_answer_400_with_the_reason(as_member, params, message):
    page = get(as_member, url(**params), status=400)
    assert message in html.unescape(page)
    assert "<svg" not in page
    assert 'id="analytics-from"' in page  # the controls stay, to fix it
    fragment = get(as_member, url(**params), status=400, **HX)
    assert message in html.unescape(fragment) and "<h1>" not in fragment
    response = as_member.get(url(**params).replace("/analytics/", "/analytics/export.csv"))
    assert response.status_code == 400
    assert message in html.unescape(response.get_data(as_text=True))


# ----------------------------------------------------------------------------- htmx


def test_htmx_gets_only_the_results_block(as_member):
    response = as_member.get(url(days="7"), headers=HX)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="analytics-results"')
    assert "<html" not in fragment and "<h1>" not in fragment
    assert kpis(fragment)["Generations"] == ("10", "up", "▲ 400 %")
    assert len(svgs(fragment)) == 12
    # A history restore gets the whole page.
    restore = get(as_member, url(days="7"), **HX, **{"HX-History-Restore-Request": "true"})
    assert "<h1>Analytics</h1>" in restore


def test_links_and_form_work_without_javascript_and_with_htmx(as_member):
    page = get(as_member, url(days="7", by="week"))
    for days in (7, 30, 90):
        href = f"/o/acme/analytics/?days={days}&amp;by=week"
        assert f'id="period-{days}" href="{href}" hx-get="{href}"' in page
    assert 'id="period-7" href="/o/acme/analytics/?days=7&amp;by=week" hx-get' in page
    assert re.search(r'<form method="get" action="/o/acme/analytics/" hx-get=', page)
    assert '<input type="hidden" name="by" value="week">' in page
    assert 'hx-target="this" hx-swap="outerHTML" hx-push-url="true"' in page
    assert 'href="/o/acme/analytics/export.csv?days=7&amp;by=week"' in page


# --------------------------------------------------------------------------- charts


def test_charts_are_csp_clean_accessible_svg_with_tables(as_member):
    page = get(as_member, url(days="30"))
    images = svgs(page)
    # Six charts, each drawn for wide screens and for phones (the full-width one also at
    # full width), except the donut, which has no text to shrink.
    assert len(images) == 12
    for svg in images:
        assert "<style" not in svg and " style=" not in svg and "<script" not in svg
        assert "<desc" not in svg and " id=" not in svg
        assert 'role="img"' in svg and 'aria-label="' in svg and "<title>" in svg
        assert "viewBox=" in svg and " width=" not in svg.split(">", 1)[0]
    assert page.count('class="vx-chart chart-categories chart-any"') == 1
    assert "General · 67 %" in page  # the donut's HTML legend: 8 of 12 generations
    assert ' style="' not in page and "<style" not in page
    assert page.count("<summary>Show the numbers</summary>") == 6
    assert page.count('<table class="chart-table">') == 6
    assert "<title>Mon " in page or "<title>Tue " in page  # native tooltips per bar


def test_svg_filter_strips_everything_pygal_adds_for_javascript():
    import pygal

    chart = pygal.Bar(**charts._box(charts.HALF))
    chart.add("Series", [{"value": 3, "tooltip": "three", "color": "red"}, 4])
    svg = charts.render(chart, "A <label>", "test", "wide")
    assert "<style" not in svg and "style=" not in svg and "<script" not in svg
    assert "tooltip-overlay" not in svg and "<!--" not in svg
    assert 'aria-label="A &lt;label&gt;"' in svg and "<title>three</title>" in svg


def test_integer_ticks():
    assert charts.integer_ticks(0) == [0, 1]
    assert charts.integer_ticks(3) == [0, 1, 2, 3]
    assert charts.integer_ticks(37) == [0, 10, 20, 30, 40]
    assert charts.integer_ticks(123_456) == [0, 50_000, 100_000, 150_000]
    assert charts.compact_for(9_000)(9_000) == "9,000"
    assert charts.compact_for(150_000)(5_000) == "5k"
    assert charts.compact_for(1_500_000)(500_000) == "0.5M"


def test_an_empty_period_shows_a_friendly_state_instead_of_charts(app, client):
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="quiet")
        user = factories.make_user()
        factories.make_membership(user, org)
        db.session.commit()
        user = factories.detach(user)
    login(client, user)
    page = get(client, "/o/quiet/analytics/?days=7")
    assert "No generations in this period" in page
    assert "<svg" not in page
    assert kpis(page)["Generations"] == ("0", "same", "no change")
    assert "No snapshot yet" not in page  # the org is new: those days are zeros for real


# --------------------------------------------------------------------------- quota


def test_the_quota_bar_shows_when_the_org_has_a_monthly_limit(app, as_member, world):
    assert "quota-card" not in get(as_member, url())
    with app.app_context(), operator_access("test setup"):
        from dashboard.models import Organization

        db.session.get(Organization, world["acme"]).monthly_character_limit = 1000
        db.session.commit()
    page = get(as_member, url())
    assert "quota-card" in page
    assert "of 1,000 used" in page  # the month's characters, live from generations
    assert "quota-card" not in get(as_member, url(days="7"), **HX)  # not in the block


# ------------------------------------------------------------------ statement counts


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_statements_per_page_do_not_grow_with_generations_or_days(
    app, as_member, world, count_queries
):
    def measure(page_url: str) -> tuple[int, int, int]:
        """Return (all statements, without RLS settings, the view's) of a warm request."""
        get(as_member, page_url)  # warm: the login's own queries are done, the past cached
        with count_queries() as seen, statements_in_view(app) as in_view:
            get(as_member, page_url)
        app_side = [s for s in seen if "set_config(" not in s]
        assert sum("FROM generations" in s for s in app_side) <= 1  # today only, grouped
        return len(seen), len(app_side), len(in_view)

    few = measure(url(days="7"))
    add_generations_today(app, world["acme"], world["narrator"], 500)
    many = measure(url(days="7"))
    assert few == many
    add_daily_snapshots(app, world, 3, 180)
    week, quarter = measure(url(days="7")), measure(url(days="90", by="day"))
    assert week == quarter == many
    total, app_side, in_view = many
    # The view: one statement (today live, with the names the cached past days need).
    assert in_view == 1
    assert app_side <= 4  # + the user, memberships and orgs
    assert total <= 6
    print(f"\nstatements per analytics page (all, app side, view): {many}")


def test_the_chart_cache_returns_the_same_svg_for_the_same_data_only():
    import pygal

    charts.clear_cache()
    built: list[tuple[int, ...]] = []

    def bars(values: tuple[int, ...]):
        def build(size: charts.Size) -> pygal.Graph:
            built.append(values)
            chart = pygal.Bar(**charts._box(size))
            chart.add("Series", list(values))
            return chart

        return build

    def draw(values: tuple[int, ...]) -> str:
        return charts._rendered(bars(values), charts.HALF, values, "Label", "test", "wide")

    first, again, other = draw((1, 2, 3)), draw((1, 2, 3)), draw((1, 2, 4))
    assert first == again and other != first
    assert built == [(1, 2, 3), (1, 2, 4)]  # the second drawing came from the cache
    assert first == charts.render(bars((1, 2, 3))(charts.HALF), "Label", "test", "wide")


def test_the_page_draws_the_same_charts_with_and_without_the_cache(as_member):
    charts.clear_cache()
    fresh = svgs(get(as_member, url(days="30")))
    assert svgs(get(as_member, url(days="30"))) == fresh
    assert svgs(get(as_member, url(days="7"))) != fresh


def test_breakdowns_add_up_alike_on_the_fast_and_the_exact_path():
    from decimal import Decimal

    days = [
        {"a": tally(2, 10, 100, failed=1), "b": {"generations": 1, "characters": 5}},
        {"a": tally(3, 20, 200), "b": tally(1, 1, 1, failed=2), "c": tally(0, 0, 0)},
        {"a": {**tally(1, 1, 1), "audio_ms": Decimal(7)}, "c": {**tally(1, 1, 1), "failed": 2.9}},
    ]
    known = {"a": 1}
    rename = lambda key, _tally: "other"  # noqa: E731
    expected = past._sum_exactly(days, known, rename)
    assert expected == {"a": [6, 1, 31, 307], "other": [3, 4, 7, 2]}
    assert past._sum_tallies(days, known, rename) == expected
    assert list(past._sum_tallies(days, known, rename)) == ["a", "other"]
    nulls = [*days, {"a": {**tally(1, 1, 1), "failed": None}}]
    assert past._sum_tallies(nulls) == past._sum_exactly(nulls, None, None)
