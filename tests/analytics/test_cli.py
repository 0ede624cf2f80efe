"""`flask analytics snapshot` and the demo's snapshots (`flask seed --demo`).

Through the real commands on SQLite and PostgreSQL, also as the RLS-bound web role
with the operator role configured, as production runs them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import func, select

from dashboard.analytics.snapshots import day_bounds
from dashboard.cli.demo import DEMO_ORG_SLUG, SNAPSHOT_DAYS
from dashboard.extensions import db
from dashboard.models import AnalyticsSnapshot, Generation, GenerationStatus, Organization, utcnow
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import both_databases, web_role

TODAY = utcnow().date()
YESTERDAY = TODAY - dt.timedelta(days=1)


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


@dataclass
class Orgs:
    acme: uuid.UUID
    globex: uuid.UUID


@pytest.fixture
def orgs(app: Flask) -> Orgs:
    """acme and globex, a month old; each generated once a day for the last five days."""
    with app.app_context(), operator_access("test setup spans organisations"):
        made = []
        for slug in ("acme", "globex"):
            org = factories.make_org(slug=slug, created_at=day_bounds(days_ago(30))[0])
            user = factories.make_user()
            factories.make_membership(user, org).created_at = day_bounds(days_ago(30))[0]
            voice = factories.make_voice(org)
            voice.created_at = day_bounds(days_ago(30))[0]
            for n in range(1, 6):
                factories.make_generation(
                    org,
                    voice,
                    created_by=user.id,
                    created_at=day_bounds(days_ago(n))[0] + dt.timedelta(hours=9),
                    status=GenerationStatus.SUCCEEDED,
                    audio_key="generations/test",
                    duration_ms=1000,
                )
            made.append(org.id)
        db.session.commit()
    return Orgs(*made)


def snapshots(app: Flask) -> dict[tuple[uuid.UUID, dt.date], AnalyticsSnapshot]:
    with app.app_context(), operator_access("test reads every snapshot"):
        rows = db.session.scalars(select(AnalyticsSnapshot)).all()
        db.session.expunge_all()
        return {(row.org_id, row.day): row for row in rows}


def invoke(runner, *args: str):
    result = runner.invoke(args=["analytics", "snapshot", *args])
    assert result.exit_code == 0, result.output
    return result.output


def summary(output: str) -> str:
    return output.strip().splitlines()[-1]


# ------------------------------------------------------------------------- snapshot


@web_role
def test_by_default_it_snapshots_yesterday_for_every_org(app, runner, orgs):
    output = invoke(runner)
    assert summary(output).startswith(
        f"Snapshotted 1 day × 2 orgs ({YESTERDAY}): 2 created, 0 updated, 0 unchanged in "
    )
    assert "Snapshotting" not in output  # no progress bar for one day
    rows = snapshots(app)
    assert set(rows) == {(orgs.acme, YESTERDAY), (orgs.globex, YESTERDAY)}
    assert rows[(orgs.acme, YESTERDAY)].generations_succeeded == 1
    assert rows[(orgs.acme, YESTERDAY)].members == 1


@both_databases
def test_a_rerun_says_nothing_changed_and_leaves_the_rows_alone(app, runner, orgs):
    invoke(runner)
    before = {key: row.updated_at for key, row in snapshots(app).items()}
    assert "0 created, 0 updated, 2 unchanged" in summary(invoke(runner))
    assert {key: row.updated_at for key, row in snapshots(app).items()} == before


@web_role
def test_a_backfill_writes_one_row_per_org_and_day_with_progress(app, runner, orgs):
    since, until = days_ago(7), days_ago(2)
    output = invoke(runner, "--since", str(since), "--until", str(until))
    assert "Snapshotting" in output
    assert summary(output).startswith(
        f"Snapshotted 6 days × 2 orgs ({since} to {until}): 12 created, 0 updated, 0 unchanged"
    )
    rows = snapshots(app)
    assert sorted({day for _org, day in rows}) == [days_ago(n) for n in range(7, 1, -1)]
    # Days 7 and 6 were quiet; 5 to 2 had one generation each.
    per_day = {
        day: row.generations_succeeded for (org, day), row in rows.items() if org == orgs.acme
    }
    assert per_day == {days_ago(n): (0 if n > 5 else 1) for n in range(7, 1, -1)}
    assert all(row.members == 1 and row.custom_voices == 1 for row in rows.values())
    again = invoke(runner, "--since", str(days_ago(8)), "--until", str(until))
    assert "2 created, 0 updated, 12 unchanged" in summary(again)


@both_databases
def test_since_alone_runs_up_to_yesterday(app, runner, orgs):
    output = invoke(runner, "--since", str(days_ago(3)))
    assert f"3 days × 2 orgs ({days_ago(3)} to {YESTERDAY}): 6 created" in summary(output)


@both_databases
def test_one_date(app, runner, orgs):
    invoke(runner, "--date", str(days_ago(4)))
    assert set(snapshots(app)) == {(orgs.acme, days_ago(4)), (orgs.globex, days_ago(4))}


@web_role
def test_org_touches_only_that_org(app, runner, orgs):
    invoke(runner, "--date", str(days_ago(2)))
    before = snapshots(app)[(orgs.globex, days_ago(2))]
    with app.app_context(), operator_access("test: more work for both orgs"):
        for org_id in (orgs.acme, orgs.globex):
            factories.make_generation(
                db.session.get(Organization, org_id),
                created_at=day_bounds(days_ago(2))[0],
                status=GenerationStatus.FAILED,
                error="The speech service did not answer.",
            )
        db.session.commit()

    output = invoke(
        runner, "--org", "ACME", "--since", str(days_ago(3)), "--until", str(days_ago(2))
    )
    assert "2 days × 1 org (" in summary(output)
    assert "1 created, 1 updated, 0 unchanged" in summary(output)
    rows = snapshots(app)
    assert rows[(orgs.acme, days_ago(2))].generations_failed == 1
    assert (orgs.globex, days_ago(3)) not in rows
    after = rows[(orgs.globex, days_ago(2))]
    assert (after.generations_failed, after.updated_at) == (0, before.updated_at)


@both_databases
def test_today_needs_include_today(app, runner, orgs):
    with app.app_context(), operator_access("test: a generation today"):
        factories.make_generation(
            db.session.get(Organization, orgs.acme),
            created_at=day_bounds(TODAY)[0],
            status=GenerationStatus.SUCCEEDED,
            audio_key="generations/test",
        )
        db.session.commit()
    output = invoke(runner, "--date", str(TODAY), "--include-today")
    assert "1 day × 2 orgs" in summary(output)
    assert snapshots(app)[(orgs.acme, TODAY)].generations_succeeded == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-02-30"], "--date '2026-02-30' is not a date; use YYYY-MM-DD"),
        (["--date", "yesterday"], "--date 'yesterday' is not a date"),
        (["--since", "01/03/2026"], "--since '01/03/2026' is not a date"),
        (["--date", str(TODAY + dt.timedelta(days=1))], "is in the future"),
        (["--since", str(days_ago(3)), "--until", str(TODAY + dt.timedelta(days=2))], "future"),
        (["--since", str(TODAY + dt.timedelta(days=1))], "is in the future"),
        (["--date", str(TODAY)], "is today (UTC) and not over yet; pass --include-today"),
        (["--since", str(days_ago(3)), "--until", str(TODAY)], "pass --include-today"),
        (["--since", str(days_ago(2)), "--until", str(days_ago(5))], "the range is reversed"),
        (["--until", str(days_ago(2))], "--until needs --since"),
        (["--date", str(days_ago(2)), "--since", str(days_ago(3))], "either --date or --since"),
        (["--org", "nobody"], "no organisation with slug 'nobody'"),
    ],
)
def test_bad_dates_and_ranges_are_one_error_line(app, runner, orgs, args, message):
    result = runner.invoke(args=["analytics", "snapshot", *args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message in lines[0]
    assert snapshots(app) == {}


# --------------------------------------------------------------------------- demo


@both_databases
def test_the_demo_seed_fills_90_days_of_snapshots_once(app, runner):
    first = runner.invoke(args=["seed", "--demo"])
    assert first.exit_code == 0, first.output
    assert "Demo analytics: 90 daily snapshots (90 created, 0 updated, 0 unchanged)." in (
        first.output
    )
    with app.app_context(), operator_access("test reads the demo"):
        org = db.session.scalars(
            select(Organization).where(Organization.slug == DEMO_ORG_SLUG)
        ).one()
        rows = db.session.scalars(
            select(AnalyticsSnapshot)
            .where(AnalyticsSnapshot.org_id == org.id)
            .order_by(AnalyticsSnapshot.day)
        ).all()
        assert [row.day for row in rows] == [days_ago(n) for n in range(SNAPSHOT_DAYS, 0, -1)]
        # The snapshots add up to the history before today, and see the whole studio.
        before_today = (
            Generation.org_id == org.id,
            Generation.created_at < day_bounds(TODAY)[0],
        )
        succeeded, characters = db.session.execute(
            select(func.count(), func.sum(Generation.character_count)).where(
                *before_today, Generation.status == GenerationStatus.SUCCEEDED
            )
        ).one()
        failed = db.session.scalar(
            select(func.count()).where(*before_today, Generation.status == GenerationStatus.FAILED)
        )
        assert sum(row.generations_succeeded for row in rows) == succeeded > 0
        assert sum(row.characters for row in rows) == characters
        assert sum(row.generations_failed for row in rows) == failed
        assert {(row.members, row.custom_voices) for row in rows} == {(3, 3)}
        assert any("deleted:Launch Trailer" in row.by_voice for row in rows)
        ids = {row.id for row in rows}

    again = runner.invoke(args=["seed", "--demo"])
    assert again.exit_code == 0, again.output
    assert "Demo analytics: 90 daily snapshots (0 created, 0 updated, 90 unchanged)." in (
        again.output
    )
    with app.app_context(), operator_access("test reads the demo"):
        assert set(db.session.scalars(select(AnalyticsSnapshot.id))) == ids
