"""The analytics page's cache of past days and its one live statement — on both databases.

Past days are added up once per organisation revision (`organizations.analytics_revision`,
bumped by the snapshot upsert) and kept in an in-process LRU; today, the current names
of what the past names and the month's usage come from one statement per request.
These tests pin what that must never change: a cached view equals a fresh one, a
snapshot that changes a row shows at once, names are always current, the live figures
are the snapshot's own, and the statements stay at one (warm) or two (cold) per view.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
import uuid

import pytest
from flask import Flask
from sqlalchemy import delete, select

from dashboard import tenancy
from dashboard.analytics import cache, periods, queries
from dashboard.analytics.cache import invalidate_cached_figures
from dashboard.analytics.figures import Analytics
from dashboard.analytics.live import read_fingerprint, read_live
from dashboard.analytics.snapshots import day_bounds, figures_for_day
from dashboard.extensions import db
from dashboard.generations.queries import month_start, usage
from dashboard.models import (
    GenerationStatus,
    MemberRole,
    Membership,
    Organization,
    User,
    Voice,
    utcnow,
)
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.analytics.helpers import (
    WINTER,
    D,
    add_daily_snapshots,
    add_generations_today,
    add_snapshot,
    ago,
    expected_on_d,
    get,
    kpis,
    statements_in_view,
    table_rows,
    tally,
    today,
    url,
)
from tests.databases import BACKENDS, WEB_ROLE_BACKENDS
from tests.http import HX, login

EVERY_BACKEND = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("postgresql-app", marks=pytest.mark.postgres),
]
VIEWS = [
    {"days": "7"},
    {"days": "30"},
    {"days": "90", "by": "day"},
    {"days": "90", "by": "month"},
    {"days": "365", "by": "week"},
    WINTER,
]


def load_org(org_id: uuid.UUID) -> Organization:
    return db.session.scalars(select(Organization).where(Organization.id == org_id)).one()


def analytics_of(app: Flask, org_id: uuid.UUID, args: dict[str, str]) -> Analytics:
    """Return the view's figures as the page computes them, in the org's scope."""
    with app.app_context(), tenancy.org_scope(org_id):
        period = periods.parse_period(args, today())
        return queries.analytics(load_org(org_id), period, today(), with_usage=True)


def page_of(client, page_url: str, **headers: str) -> str:
    """GET a page; its CSRF tokens (signed with a timestamp) are blanked for comparisons."""
    page = get(client, page_url, **headers)
    page = re.sub(r'"X-CSRFToken": "[^"]+"', '"X-CSRFToken": ""', page)
    return re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', page)


def revision(app: Flask, org_id: uuid.UUID) -> int:
    with app.app_context(), operator_access("test reads the revision"):
        return load_org(org_id).analytics_revision


# --------------------------------------------------------------------------- cache


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
@pytest.mark.parametrize("args", VIEWS, ids=lambda a: "&".join(f"{k}={v}" for k, v in a.items()))
def test_a_cached_view_equals_a_fresh_one(app, world, winter, count_queries, args):
    add_daily_snapshots(app, world, 3, 200)
    cache.clear_cache()
    fresh = analytics_of(app, world["acme"], args)
    with count_queries() as seen:
        cached = analytics_of(app, world["acme"], args)
    assert not [s for s in seen if "analytics_snapshots" in s]  # served from the cache
    assert cached == fresh
    cache.clear_cache()
    assert analytics_of(app, world["acme"], args) == fresh


# What each view of test_analytics_page's world shows, added up by hand from its rows:
# snapshots today-1 … today-8 and, today, 2 succeeded generations of 25 characters and
# 3 s each plus 1 failed. A week: 3+2+1+1+1 + 2 = 10 succeeded, 300+100+50+40+10 + 50
# = 550 characters, 30+12+6+4+2 + 6 = 60 s of audio. Longer periods add today-8: 2,
# 200 and 20 s. The winter range (2025-12-25 … 2026-02-03) holds nothing of it.
WEEK = {"Generations": "10", "Characters": "550", "Audio minutes": "1.0", "Active voices": "3"}
LONGER = {"Generations": "12", "Characters": "750", "Audio minutes": "1.3", "Active voices": "3"}
NOTHING = {"Generations": "0", "Characters": "0", "Audio minutes": "0.0", "Active voices": "0"}
# (voice, type, generations, failed, characters, audio seconds) rows of voices.csv.
WEEK_VOICES = [
    ["Narrator", "Custom", "6", "2", "360", "38.000"],
    ["Aaron", "System", "2", "0", "100", "12.000"],
    ["Gone Voice", "Deleted", "2", "0", "90", "10.000"],
]
LONGER_VOICES = [["Narrator", "Custom", "8", "2", "560", "58.000"], *WEEK_VOICES[1:]]
SHOWN = [
    (VIEWS[0], WEEK, WEEK_VOICES),
    *((view, LONGER, LONGER_VOICES) for view in VIEWS[1:5]),
    (WINTER, NOTHING, []),
]


def cold(client, page_url: str) -> str:
    """GET `page_url` with every analytics cache emptied first: the figures from the rows."""
    cache.clear_cache()
    return page_of(client, page_url)


def csv_rows(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.removeprefix("\ufeff"), newline="")))


ENDPOINTS = {"": "analytics.index", "export.csv": "analytics.export"}
ENDPOINTS["voices.csv"] = "analytics.voices_csv"


def test_the_cached_page_is_the_fresh_page(app, as_member, world):
    """Every view and CSV, served from one cache that all of them filled, is the fresh one.

    Fresh: the cache emptied right before that one request, and the figures checked
    against the rows (added up above). Then the cache is emptied once and every view
    is asked for in turn, so each may meet what the others left (a key that forgot the
    period would hand one view another's past), and again warm, from the cache alone.
    """
    assert [view for view, *_ in SHOWN] == VIEWS
    fresh: dict[str, str] = {}
    for args, figures, voices in SHOWN:
        for suffix in ENDPOINTS:
            page_url = url(**args).replace("/analytics/", f"/analytics/{suffix}")
            fresh[page_url] = body = cold(as_member, page_url)
            if suffix == "":
                assert {label: shown[0] for label, shown in kpis(body).items()} == figures, args
            elif suffix == "voices.csv":
                assert csv_rows(body)[1:] == voices, args
            else:  # one row per bucket: their sums are the page's
                rows = csv_rows(body)[1:]
                assert sum(int(r[2]) for r in rows) == int(figures["Generations"]), args
                assert sum(int(r[4]) for r in rows) == int(figures["Characters"]), args
    cache.clear_cache()
    for page_url, body in fresh.items():
        assert page_of(as_member, page_url) == body, page_url
    for page_url, body in fresh.items():
        endpoint = ENDPOINTS[page_url.split("/analytics/")[1].split("?")[0]]
        with statements_in_view(app, endpoint) as warm:
            assert page_of(as_member, page_url) == body, page_url
        assert not [s for s in warm if "analytics_snapshots" in s], page_url


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_a_snapshot_that_changes_a_row_bumps_the_revision_and_shows_at_once(app, client, runner):
    yesterday = today() - dt.timedelta(days=1)
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="acme", created_at=utcnow() - dt.timedelta(days=30))
        user = factories.make_user(display_name="Ada")
        factories.make_membership(user, org)
        voice = factories.make_voice(org, name="Narrator")
        factories.make_generation(
            org,
            voice,
            text="Yesterday, one.",
            created_by=user.id,
            created_at=day_bounds(yesterday)[0] + dt.timedelta(hours=9),
            status=GenerationStatus.SUCCEEDED,
            audio_key="x",
            duration_ms=1000,
        )
        db.session.commit()
        org_id, ids = org.id, {"org": org.id, "voice": voice.id, "user": user.id}
        login(client, user)
    before = revision(app, org_id)
    snapshot = ["analytics", "snapshot", "--date", yesterday.isoformat()]
    assert runner.invoke(args=snapshot).exit_code == 0
    assert revision(app, org_id) == before + 1
    assert kpis(get(client, "/o/acme/analytics/?days=7"))["Generations"][0] == "1"
    assert kpis(get(client, "/o/acme/analytics/?days=7"))["Generations"][0] == "1"  # cached

    # A re-run that finds nothing new writes nothing and keeps the cache.
    result = runner.invoke(args=snapshot)
    assert result.exit_code == 0 and "0 created, 0 updated" in result.output
    assert revision(app, org_id) == before + 1

    # A generation that finished late: the re-run updates the row, the page shows it.
    with app.app_context(), operator_access("test setup"):
        org, voice = load_org(ids["org"]), db.session.get(Voice, ids["voice"])
        factories.make_generation(
            org,
            voice,
            text="Yesterday, two.",
            created_by=ids["user"],
            created_at=day_bounds(yesterday)[0] + dt.timedelta(hours=10),
            status=GenerationStatus.SUCCEEDED,
            audio_key="x",
            duration_ms=1000,
        )
        db.session.commit()
    assert "1 updated" in runner.invoke(args=snapshot).output
    assert revision(app, org_id) == before + 2
    page = get(client, "/o/acme/analytics/?days=7")
    assert kpis(page)["Generations"][0] == "2"
    assert kpis(page)["Characters"][0] == f"{len('Yesterday, one.') + len('Yesterday, two.')}"


def test_only_orgs_whose_rows_changed_get_a_new_revision(app, runner, world):
    yesterday = today() - dt.timedelta(days=1)
    snapshot = ["analytics", "snapshot", "--date", yesterday.isoformat()]
    with app.app_context(), operator_access("test setup"):
        stable = factories.make_org(slug="stable", created_at=utcnow() - dt.timedelta(days=30)).id
        db.session.commit()
    assert runner.invoke(args=snapshot).exit_code == 0
    # acme's stored row for yesterday differed, stable had none; rival was created today.
    revisions = {name: revision(app, world[name]) for name in ("acme", "rival")}
    assert revisions == {"acme": 1, "rival": 0} and revision(app, stable) == 1
    with app.app_context(), operator_access("test setup"):
        acme = load_org(world["acme"])
        factories.make_generation(
            acme,
            db.session.get(Voice, world["narrator"]),
            created_at=day_bounds(yesterday)[0],
            status=GenerationStatus.FAILED,
            error="engine down",
        )
        db.session.commit()
    assert "1 updated, 1 unchanged" in runner.invoke(args=snapshot).output
    assert (revision(app, world["acme"]), revision(app, stable)) == (2, 1)


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_a_snapshot_written_shows_once_its_writer_invalidates_the_cached_figures(
    app, as_member, world
):
    """Whoever writes snapshots must call `invalidate_cached_figures` (the upsert does).

    Until then the page serves the past it cached, in this process and any other; the
    call, committed with the rows, makes the next page read them.
    """
    cache.clear_cache()
    before = int(kpis(get(as_member, url(days="7")))["Generations"][0])
    with app.app_context(), operator_access("test: a writer other than the upsert"):
        narrator = str(world["narrator"])
        by_voice = {narrator: tally(5, 50, 500, name="Narrator", variant="CUSTOM")}
        add_snapshot(world["acme"], ago(3), by_voice=by_voice)  # the world has no today-3
        db.session.commit()
    assert int(kpis(get(as_member, url(days="7")))["Generations"][0]) == before
    with app.app_context(), operator_access("test: a writer other than the upsert"):
        invalidate_cached_figures([world["acme"]])
        db.session.commit()
    assert int(kpis(get(as_member, url(days="7")))["Generations"][0]) == before + 5
    assert revision(app, world["acme"]) == 1 and revision(app, world["rival"]) == 0


def test_names_are_current_even_when_the_past_is_cached(app, as_member, world):
    """Deleting a voice or leaving the org changes no snapshot, and shows at once."""
    cache.clear_cache()
    page = get(as_member, url(days="7"))
    assert table_rows(page, "voices")[0] == ["Narrator", "Custom", "6", "360", "0.6"]
    with app.app_context(), operator_access("test setup"):
        db.session.delete(db.session.get(Voice, world["narrator"]))
        owner = world["users"][MemberRole.OWNER]
        db.session.execute(delete(Membership).where(Membership.user_id == owner.id))
        db.session.commit()
    page = page_of(as_member, url(days="7"))
    # Its days by id (cached) and today's by name (voice_id NULL now) are one voice.
    assert table_rows(page, "voices") == [
        ["Narrator (deleted)", "Deleted", "6", "360", "0.6"],
        ["Aaron", "System", "2", "100", "0.2"],
        ["Gone Voice (deleted)", "Deleted", "2", "90", "0.2"],
    ]
    assert kpis(page)["Active voices"][0] == "3"
    assert table_rows(page, "members") == [
        ["Zoë Member", "2", "100", "0.2"],
        ["Former members", "8", "450", "0.8"],  # Olive Owner, Lee Left and "former"
    ]
    cache.clear_cache()
    assert page_of(as_member, url(days="7")) == page


def test_two_voice_keys_that_now_name_one_deleted_voice_count_once(app, world):
    with app.app_context(), operator_access("test setup"):
        # Another voice called Narrator, deleted before that day was snapshotted.
        add_snapshot(
            world["acme"],
            ago(3),
            by_voice={"deleted:Narrator": tally(4, 40, 400, name="Narrator", variant=None)},
        )
        db.session.commit()
    cache.clear_cache()
    args = {"days": "7"}
    # Narrator, Aaron, Gone Voice and the other, deleted, Narrator.
    assert analytics_of(app, world["acme"], args).current.active_voices == 4
    with app.app_context(), operator_access("test setup"):
        db.session.delete(db.session.get(Voice, world["narrator"]))
        db.session.commit()
    data = analytics_of(app, world["acme"], args)  # the past from the cache
    # Narrator's days by id, its generations today and the other one's day: one voice.
    assert data.current.active_voices == 3
    assert [(s.label, s.generations, s.characters) for s in data.voices] == [
        ("Narrator (deleted)", 10, 400),
        ("Aaron", 2, 100),
        ("Gone Voice (deleted)", 2, 90),
    ]
    cache.clear_cache()
    assert analytics_of(app, world["acme"], args) == data


def test_the_cache_is_bounded_by_entries_and_by_size(app, world, monkeypatch):
    cache.clear_cache()
    monkeypatch.setattr(cache, "CACHE_ENTRIES", 3)
    for days in range(1, 8):
        analytics_of(app, world["acme"], {"days": str(days)})
    assert len(cache._past_cache) == 3
    monkeypatch.setattr(cache, "CACHE_WEIGHT", 1)
    analytics_of(app, world["acme"], {"days": "30"})
    assert len(cache._past_cache) == 1  # the newest entry stays, however big
    (entry,) = cache._past_cache.values()
    # Sums and keys, not the days' breakdowns.
    assert all(len(row) == 4 for row in entry.by_voice.values())
    assert cache._past_weight == entry.weight
    cache.clear_cache()
    assert cache._past_weight == 0


# ------------------------------------------------------------------- live figures


@pytest.mark.parametrize("backend", EVERY_BACKEND, indirect=True)
def test_live_figures_of_one_org_equal_figures_for_day(app, studio):
    for org_id in (studio.acme, studio.globex, studio.initech):
        for day in (D - dt.timedelta(days=1), D, D + dt.timedelta(days=1)):
            with app.app_context(), tenancy.org_scope(org_id):
                live = read_live(org_id, day)
                expected = figures_for_day(day, [org_id])[org_id]
            assert live.today == dataclasses.replace(expected, custom_voices=0, members=0)
    with app.app_context(), tenancy.org_scope(studio.acme):
        live = read_live(studio.acme, D)
    assert live.today == dataclasses.replace(
        expected_on_d(studio)[studio.acme], custom_voices=0, members=0
    )
    # Names for the page: existing voices, and only people who are still members.
    assert live.voices == {
        str(studio.narrator): ("Narrator", "Custom"),
        str(studio.aaron): ("Aaron", "System"),
        str(studio.brian): ("Brian", "System"),
    }
    assert live.members == {str(studio.ada): "Ada", str(studio.bob): "Bob"}


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_names_are_looked_up_for_the_given_ids_only_within_the_org(app, studio):
    stranger = uuid.uuid4()
    voice_ids = {v: str(v) for v in (studio.narrator, studio.aaron, studio.globe, stranger)}
    member_ids = {u: str(u) for u in (studio.ada, studio.gus, stranger)}
    with app.app_context(), tenancy.org_scope(studio.acme):
        live = read_live(studio.acme, None, voice_ids=voice_ids, member_ids=member_ids)
    assert live.today is None
    # Globex's voice and member are not acme's, whatever the caller asks for.
    assert live.voices == {
        str(studio.narrator): ("Narrator", "Custom"),
        str(studio.aaron): ("Aaron", "System"),
    }
    assert live.members == {str(studio.ada): "Ada"}


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_the_months_usage_in_the_live_statement_is_usages_definition(app):
    start = month_start()
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="acme", monthly_character_limit=1000)
        other = factories.make_org(slug="other")
        voice = factories.make_voice(org)
        for chars, status, when in (
            (10, GenerationStatus.SUCCEEDED, start),
            (20, GenerationStatus.QUEUED, utcnow()),
            (40, GenerationStatus.RUNNING, utcnow()),
            (80, GenerationStatus.FAILED, utcnow()),  # failed ones are free
            (160, GenerationStatus.SUCCEEDED, start - dt.timedelta(milliseconds=1)),
        ):
            extra = {"audio_key": "x", "duration_ms": 1}
            if status is GenerationStatus.FAILED:
                extra = {"error": "no"}
            elif status is not GenerationStatus.SUCCEEDED:
                extra = {}
            factories.make_generation(
                org, voice, text="x" * chars, status=status, created_at=when, **extra
            )
        factories.make_generation(
            other, factories.make_voice(other), text="y" * 320, status="queued"
        )
        db.session.commit()
        org_id = org.id
    with app.app_context(), tenancy.org_scope(org_id):
        live = read_live(org_id, today(), usage_since=start)
        assert live.characters_this_month == usage(load_org(org_id)).used == 70
        data = queries.analytics(
            load_org(org_id), periods.parse_period({}, today()), today(), with_usage=True
        )
        assert data.usage == usage(load_org(org_id))


# ------------------------------------------------------------------ statements


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_the_view_runs_two_statements_cold_and_one_warm(app, as_member, world, winter):
    with app.app_context(), operator_access("test setup"):
        load_org(world["acme"]).monthly_character_limit = 10_000  # the quota bar too
        db.session.commit()
    add_generations_today(app, world["acme"], world["narrator"], 200)
    add_daily_snapshots(app, world, 3, 200)
    endpoints = {"": "analytics.index", "export.csv": "analytics.export"}
    endpoints["voices.csv"] = "analytics.voices_csv"
    for args in VIEWS:
        for suffix, endpoint in endpoints.items():
            page = url(**args).replace("/analytics/", f"/analytics/{suffix}")
            cache.clear_cache()
            with statements_in_view(app, endpoint) as cold:
                body = page_of(as_member, page)
            with statements_in_view(app, endpoint) as warm:
                assert page_of(as_member, page) == body
            assert len(cold) == 2, cold  # the snapshots, then everything live
            assert len(warm) == 1, warm
            assert "analytics_snapshots" in cold[0]
            with statements_in_view(app, endpoint) as fragment:
                get(as_member, page, **HX)
            assert len(fragment) <= 1, (args, suffix)  # no quota bar in the block
    assert "of 10,000 used" in get(as_member, url(days="7"))


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_a_period_without_today_or_names_runs_nothing_warm(app, client):
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="quiet", created_at=utcnow() - dt.timedelta(days=400))
        user = factories.make_user()
        factories.make_membership(user, org)
        db.session.commit()
        login(client, user)
    page = "/o/quiet/analytics/?from=2026-01-01&to=2026-01-31"
    get(client, page)
    with statements_in_view(app) as warm:
        assert "No generations in this period" in get(client, page)
    assert warm == []


# --------------------------------------------------------------------- assembled views


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_an_assembled_view_is_served_until_today_or_a_name_changes(app, as_member, world):
    """Warm: one small statement (the fingerprint). Anything live changing rebuilds it."""
    cache.clear_cache()
    first = page_of(as_member, url(days="7"))
    with statements_in_view(app) as warm:
        assert page_of(as_member, url(days="7")) == first
    assert len(warm) == 1 and "'fingerprint'" in warm[0], warm
    generations = int(kpis(first)["Generations"][0].replace(",", ""))

    # A generation made today (another request, another process: only the data says so).
    with app.app_context(), operator_access("test setup"):
        acme = load_org(world["acme"])
        factories.make_generation(
            acme,
            db.session.get(Voice, world["narrator"]),
            status=GenerationStatus.SUCCEEDED,
            audio_key="x",
            duration_ms=1000,
        )
        db.session.commit()
    with statements_in_view(app) as rebuilt:
        page = page_of(as_member, url(days="7"))
    assert len(rebuilt) == 2  # the fingerprint, then everything live
    assert kpis(page)["Generations"][0] == f"{generations + 1:,}"

    # A voice renamed and a member renamed change no generation and no snapshot.
    with app.app_context(), operator_access("test setup"):
        db.session.get(Voice, world["narrator"]).name = "Narrator Prime"
        db.session.get(User, world["users"][MemberRole.MEMBER].id).display_name = "Zoë Renamed"
        db.session.commit()
    page = page_of(as_member, url(days="7"))
    assert table_rows(page, "voices")[0][0] == "Narrator Prime"
    assert "Zoë Renamed" in [row[0] for row in table_rows(page, "members")]
    cache.clear_cache()
    assert page_of(as_member, url(days="7")) == page


def test_the_fingerprint_names_the_org_it_reads(app, world):
    """Another org's generations, voices and members don't move this org's fingerprint."""
    with app.app_context(), tenancy.org_scope(world["acme"]):
        before = read_fingerprint(world["acme"], today())
    with app.app_context(), operator_access("test setup"):
        rival = load_org(world["rival"])
        factories.make_generation(rival, factories.make_voice(rival, name="Rival New"))
        factories.make_membership(factories.make_user(email="new@rival.example"), rival)
        db.session.commit()
    with app.app_context(), tenancy.org_scope(world["acme"]):
        assert read_fingerprint(world["acme"], today()) == before
