"""Billed characters by source: the usage ledger, split into the dashboard and each API key.

One org, "acme", bills from the dashboard and from its key "CI pipeline" yesterday
(snapshotted) and today (live); some of those generations fail for good (refunded) or
are deleted afterwards (still billed). Org "rival" bills through its own key on the
same days and must never show. The figures are worked out by hand:

    day        source        generation                    chars   billed
    yesterday  dashboard     succeeded                        30       30
    yesterday  dashboard     succeeded, then deleted          25       25
    yesterday  CI pipeline   succeeded                        40       40
    yesterday  CI pipeline   failed for good (refunded)        7        0
    today      dashboard     succeeded                        11       11
    today      dashboard     succeeded, then deleted           5        5
    today      CI pipeline   queued                           13       13
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import func, select

from dashboard import tenancy
from dashboard.analytics import export
from dashboard.analytics.snapshots import day_bounds, figures_for_day, upsert_snapshots
from dashboard.extensions import db
from dashboard.generations import ledger
from dashboard.generations.queries import month_start
from dashboard.models import GenerationStatus, MemberRole, UsageEntry, utcnow
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.analytics.helpers import get, kpis, table_rows, web_source
from tests.analytics.test_export import read_csv
from tests.databases import WEB_ROLE_BACKENDS
from tests.http import login

SUCCEEDED, QUEUED = GenerationStatus.SUCCEEDED, GenerationStatus.QUEUED


@dataclass(frozen=True)
class Billing:
    acme: uuid.UUID
    key: uuid.UUID
    rival_key: uuid.UUID
    member: object
    yesterday: dt.date


def _generate(org, voice, when, chars, status=SUCCEEDED, api_key=None):
    extra = {"audio_key": "generations/test", "duration_ms": 100} if status is SUCCEEDED else {}
    return factories.make_generation(
        org,
        voice,
        text="x" * chars,
        created_at=when,
        status=status,
        api_key_id=api_key.id if api_key else None,
        **extra,
    )


@pytest.fixture
def billing(app: Flask) -> Billing:
    today = utcnow().date()
    yesterday = today - dt.timedelta(days=1)
    y_noon = day_bounds(yesterday)[0] + dt.timedelta(hours=12)
    t_start = day_bounds(today)[0]
    with app.app_context(), operator_access("test setup spans organisations"):
        acme = factories.make_org(
            slug="acme", name="Acme", monthly_character_limit=10_000, created_at=y_noon
        )
        rival = factories.make_org(slug="rival", name="Rival", created_at=y_noon)
        member = factories.make_user(display_name="Mo")
        factories.make_membership(member, acme, MemberRole.MEMBER)
        voice = factories.make_voice(acme, name="Narrator")
        rival_voice = factories.make_voice(rival, name="Rival voice")
        key, _ = factories.make_api_key(acme, name="CI pipeline")
        rival_key, _ = factories.make_api_key(rival, name="Rival key")

        _generate(acme, voice, y_noon, 30)
        db.session.delete(_generate(acme, voice, y_noon, 25))
        _generate(acme, voice, y_noon, 40, api_key=key)
        failed = _generate(acme, voice, y_noon, 7, status=GenerationStatus.RUNNING, api_key=key)
        failed.status = GenerationStatus.FAILED
        failed.error = "The speech service did not answer."
        ledger.refund(db.session, failed.id)
        _generate(rival, rival_voice, y_noon, 777, api_key=rival_key)

        _generate(acme, voice, t_start, 11)
        db.session.delete(_generate(acme, voice, t_start, 5))
        _generate(acme, voice, t_start, 13, status=QUEUED, api_key=key)
        _generate(rival, rival_voice, t_start, 888, api_key=rival_key)
        db.session.flush()
        upsert_snapshots(yesterday, figures_for_day(yesterday))
        db.session.commit()
        return Billing(acme.id, key.id, rival_key.id, factories.detach(member), yesterday)


def ledger_sum(app: Flask, org_id: uuid.UUID, start: dt.datetime, end: dt.datetime) -> int:
    """Add up the org's ledger lines counted in [start, end), straight from the table."""
    with app.app_context(), tenancy.org_scope(org_id):
        return int(
            db.session.scalar(
                select(func.coalesce(func.sum(UsageEntry.characters), 0)).where(
                    UsageEntry.org_id == org_id,
                    UsageEntry.counted_at >= start,
                    UsageEntry.counted_at < end,
                )
            )
        )


def test_a_days_figures_split_the_ledger_by_source(app, billing):
    with app.app_context(), tenancy.org_scope(billing.acme):
        found = figures_for_day(billing.yesterday)[billing.acme]
    assert found.by_source == {
        "web": web_source(submissions=2, characters=55),
        str(billing.key): {
            "name": "CI pipeline",
            "kind": "api",
            "submissions": 2,
            "characters": 40,
        },
    }
    assert found.characters_billed == 95
    assert found.characters_billed == ledger_sum(app, billing.acme, *day_bounds(billing.yesterday))
    # Succeeded generations that still exist: 30 and 40 (the 25 was deleted).
    assert found.characters == 70


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_the_page_shows_billed_characters_by_source(app, client, billing):
    login(client, billing.member)
    page = get(client, "/o/acme/analytics/?days=7")
    # Yesterday's snapshot and today's live lines: 95 + 29.
    assert kpis(page)["Characters"][0] == "124"
    assert "81 in succeeded generations" in page  # 30 + 40 + 11: deletions still bill
    assert table_rows(page, "sources") == [
        ["Dashboard", "4", "71", "57 %"],
        ["API key “CI pipeline”", "3", "53", "43 %"],
    ]
    assert "Rival" not in page and "777" not in page and "888" not in page


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_the_months_characters_agree_with_the_quota_bar_and_the_ledger(app, client, billing):
    login(client, billing.member)
    today = utcnow().date()
    start = month_start()
    page = get(client, f"/o/acme/analytics/?from={start.date()}&to={today}")
    billed = ledger_sum(app, billing.acme, start, day_bounds(today)[1])
    # Yesterday is in this month unless today is the 1st.
    assert billed == (124 if billing.yesterday >= start.date() else 29)
    assert kpis(page)["Characters"][0] == f"{billed:,}"
    quota = re.search(r"<strong>([\d,]+)</strong> of 10,000 used", page)
    assert quota and quota.group(1) == f"{billed:,}"
    sources = table_rows(page, "sources")
    assert sum(int(row[2].replace(",", "")) for row in sources) == billed


def test_the_sources_csv_names_each_key(app, client, billing):
    login(client, billing.member)
    response = client.get("/o/acme/analytics/sources.csv?days=7")
    assert response.status_code == 200
    assert "acme-sources-" in response.headers["Content-Disposition"]
    assert read_csv(response) == [
        list(export.SOURCE_HEADERS),
        ["Dashboard", "Dashboard", "", "4", "71"],
        ["CI pipeline", "API", str(billing.key), "3", "53"],
    ]
