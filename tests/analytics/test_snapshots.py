"""Daily analytics snapshots: the figures of a UTC day, stored once per org and day.

Real databases (SQLite, PostgreSQL as the owner and as the RLS-bound web role); data
from the factories, set up past row-level security with `operator_access`. The
expected figures are worked out by hand from the fixture, not recomputed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from dashboard import tenancy
from dashboard.analytics.snapshots import (
    DayFigures,
    UpsertReport,
    day_bounds,
    figures_for_day,
    snapshot_from_worker,
    upsert_snapshots,
)
from dashboard.extensions import db
from dashboard.models import (
    AnalyticsSnapshot,
    Organization,
    User,
    Voice,
    utcnow,
)
from dashboard.queue import get_huey
from dashboard.tenancy.operator import OPERATOR_ENGINE_KEY, operator_access
from tests import factories
from tests.analytics.helpers import (
    FAILED,
    D,
    add_generation,
    at,
    day_tally,
    expected_on_d,
)
from tests.databases import both_databases, web_role


def figures(app: Flask, day: dt.date, org_ids=None) -> dict[uuid.UUID, DayFigures]:
    with app.app_context(), operator_access("test: figures of every org"):
        return figures_for_day(day, org_ids)


def stored(app: Flask) -> dict[tuple[uuid.UUID, dt.date], AnalyticsSnapshot]:
    """Every snapshot row, detached, by (org, day)."""
    with app.app_context(), operator_access("test reads every snapshot"):
        rows = db.session.scalars(select(AnalyticsSnapshot)).all()
        db.session.expunge_all()
        return {(row.org_id, row.day): row for row in rows}


def row_values(row: AnalyticsSnapshot) -> dict:
    return {c.key: getattr(row, c.key) for c in AnalyticsSnapshot.__table__.columns}


# ------------------------------------------------------------------------- figures


@both_databases
def test_a_days_figures_equal_the_hand_computed_ones(app, studio):
    # newco was created after D: no row for it; initech did nothing and still gets one.
    assert figures(app, D) == expected_on_d(studio)


@both_databases
def test_the_day_boundaries_are_utc_midnights(app, studio):
    before, after = figures(app, D - dt.timedelta(days=1)), figures(app, D + dt.timedelta(days=1))
    # D-1 23:59:59.999 belongs to D-1 and D+1 00:00:00.000 to D+1, never to D.
    assert (before[studio.acme].generations_succeeded, before[studio.acme].characters) == (1, 11)
    assert (after[studio.acme].generations_succeeded, after[studio.acme].characters) == (1, 12)
    assert (before[studio.acme].members, after[studio.acme].members) == (2, 3)  # Cy on D+1


@both_databases
def test_a_day_without_activity_still_counts_members_and_voices(app, studio):
    quiet = figures(app, D + dt.timedelta(days=2))
    assert set(quiet) == {studio.acme, studio.globex, studio.initech, studio.newco}
    # Ada, Bob, Cy; Narrator and Later (created at 00:30 that day).
    assert quiet[studio.acme] == DayFigures(custom_voices=2, members=3)
    assert quiet[studio.newco] == DayFigures()


@both_databases
def test_named_orgs_get_a_row_each_whatever_they_did(app, studio):
    named = figures(app, D, [studio.globex, studio.newco, uuid.uuid4()])
    # Only those that exist; newco even though it was created after D.
    assert named == {
        studio.globex: expected_on_d(studio)[studio.globex],
        studio.newco: DayFigures(),
    }


def test_figures_need_a_tenant_scope(app, studio):
    with app.app_context(), pytest.raises(tenancy.TenantScopeError):
        figures_for_day(D)


@both_databases
def test_in_an_org_scope_figures_are_that_orgs_only(app, studio):
    with app.app_context(), tenancy.org_scope(studio.acme):
        assert figures_for_day(D) == {studio.acme: expected_on_d(studio)[studio.acme]}
        assert figures_for_day(D, [studio.acme]) == {
            studio.acme: expected_on_d(studio)[studio.acme]
        }
        # Another org's rows are invisible here: its figures would be silently zero.
        with pytest.raises(tenancy.TenantScopeError, match="other orgs"):
            figures_for_day(D, [studio.acme, studio.globex])


def statements_for_a_day(app, count_queries, orgs: int) -> int:
    """Fill a fresh day with `orgs` busy orgs; count what `figures_for_day` sends."""
    day = D - dt.timedelta(days=20 + orgs)
    with app.app_context(), operator_access("test setup"):
        system = factories.make_voice(name=f"System {orgs}")
        for _ in range(orgs):
            org = factories.make_org(created_at=day_bounds(day)[0] - dt.timedelta(days=1))
            users = [factories.make_user(), factories.make_user()]
            for user in users:
                factories.make_membership(user, org)
            voices = [system, factories.make_voice(org)]
            for n, (user, voice) in enumerate(zip(users, voices, strict=True)):
                add_generation(org, voice, user, day_bounds(day)[0] + dt.timedelta(hours=n + 1))
            add_generation(org, None, None, day_bounds(day)[0], FAILED)
        db.session.commit()
    with app.app_context(), operator_access("test: count statements"):
        with count_queries() as seen:
            result = figures_for_day(day)
        assert len(result) >= orgs
    return len(seen)


@both_databases
def test_statements_per_day_do_not_grow_with_the_orgs(app, count_queries):
    few = statements_for_a_day(app, count_queries, 2)
    many = statements_for_a_day(app, count_queries, 20)
    assert few == many
    # Orgs, grouped generations (with voice and user names), ledger lines by source
    # (with key names), members, custom voices; PostgreSQL adds the transaction's
    # row-level-security settings.
    assert few <= 6


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql-app", marks=pytest.mark.postgres)], indirect=True
)
def test_the_web_role_computes_today_for_its_own_org_only(app, studio):
    today_start = day_bounds(utcnow().date())[0]
    with app.app_context(), operator_access("test setup: both orgs generate today"):
        acme, globex = (db.session.get(Organization, i) for i in (studio.acme, studio.globex))
        aaron, globe = (db.session.get(Voice, i) for i in (studio.aaron, studio.globe))
        ada, gus = (db.session.get(User, i) for i in (studio.ada, studio.gus))
        add_generation(acme, aaron, ada, today_start, chars=9, audio_ms=900)
        add_generation(globex, aaron, gus, today_start, chars=99, audio_ms=9900)
        add_generation(globex, globe, gus, today_start, chars=999, audio_ms=99900)
        db.session.commit()
    with app.app_context(), tenancy.org_scope(studio.acme, studio.ada):
        today = figures_for_day(utcnow().date(), [studio.acme])
    assert list(today) == [studio.acme]
    assert today[studio.acme].by_voice == {
        str(studio.aaron): day_tally(1, 0, 9, 900, name="Aaron", variant="SYSTEM")
    }
    assert (today[studio.acme].characters, today[studio.acme].members) == (9, 3)
    # The database wall on its own: with the application filter lifted, the web role
    # still reads no org's generations (no org is set for row-level security).
    with app.app_context(), tenancy.all_tenants("test: RLS alone"):
        unscoped = figures_for_day(utcnow().date(), [studio.acme, studio.globex])
    assert unscoped == {studio.acme: DayFigures(), studio.globex: DayFigures()}


# --------------------------------------------------------------------------- upsert


def snapshot(app: Flask, day: dt.date, org_ids=None) -> UpsertReport:
    with app.app_context(), operator_access("test: snapshot"):
        report = upsert_snapshots(day, figures_for_day(day, org_ids))
        db.session.commit()
        return report


@both_databases
def test_snapshots_store_the_figures_and_a_rerun_changes_nothing(app, studio):
    assert snapshot(app, D) == UpsertReport(created=3)
    first = stored(app)
    assert set(first) == {(studio.acme, D), (studio.globex, D), (studio.initech, D)}
    for (org_id, _day), row in first.items():
        assert DayFigures.from_snapshot(row) == expected_on_d(studio)[org_id]

    again = snapshot(app, D)
    assert again == UpsertReport(unchanged=3) and again.changed == 0
    # Identical rows: same ids, same values, not even updated_at moved.
    assert {k: row_values(r) for k, r in stored(app).items()} == {
        k: row_values(r) for k, r in first.items()
    }


@both_databases
def test_a_rerun_after_a_change_updates_only_that_org(app, studio):
    snapshot(app, D)
    before = stored(app)
    with app.app_context(), operator_access("test: a late generation"):
        org = db.session.get(Organization, studio.globex)
        add_generation(org, db.session.get(Voice, studio.globe), None, at(0, 20), chars=2)
        db.session.commit()
    assert snapshot(app, D) == UpsertReport(updated=1, unchanged=2)
    after = stored(app)
    globex = after[(studio.globex, D)]
    assert (globex.generations_succeeded, globex.characters) == (2, 10)
    assert globex.id == before[(studio.globex, D)].id
    assert globex.by_member["former"] == day_tally(1, 0, 2, 1000, name="Former member")
    assert row_values(after[(studio.acme, D)]) == row_values(before[(studio.acme, D)])


@both_databases
def test_upserts_go_out_in_batches(app, studio, monkeypatch):
    from dashboard.analytics import snapshots

    monkeypatch.setattr(snapshots, "UPSERT_BATCH", 2)
    assert snapshot(app, D) == UpsertReport(created=3)
    assert snapshot(app, D) == UpsertReport(unchanged=3)
    assert len(stored(app)) == 3


@both_databases
def test_an_upsert_over_a_row_written_meanwhile_replaces_it(app, studio):
    """ON CONFLICT settles a concurrent writer that stored the day first."""
    with app.app_context(), operator_access("test: a stale concurrent row"):
        db.session.add(AnalyticsSnapshot(org_id=studio.globex, day=D, generations_succeeded=99))
        db.session.commit()
    with app.app_context(), operator_access("test: upsert"):
        day_figures = figures_for_day(D, [studio.globex])
        report = upsert_snapshots(D, day_figures)
        db.session.commit()
    assert report == UpsertReport(updated=1)
    row = stored(app)[(studio.globex, D)]
    assert DayFigures.from_snapshot(row) == expected_on_d(studio)[studio.globex]


# --------------------------------------------------------------------------- worker


@pytest.fixture
def worker(app: Flask) -> Iterator[Flask]:
    """The app as a worker process uses it; its operator engine is closed afterwards."""
    yield app
    if operator := app.extensions.pop(OPERATOR_ENGINE_KEY, None):
        operator.dispose()


@web_role
def test_the_worker_snapshots_every_org_across_the_walls(app, worker, studio):
    # On postgresql-app the app is the RLS-bound web role: the worker must use the
    # operator role's own session to see every org.
    with app.app_context():
        assert snapshot_from_worker(D) == UpsertReport(created=3)
        assert snapshot_from_worker(D) == UpsertReport(unchanged=3)
    rows = stored(app)
    assert DayFigures.from_snapshot(rows[(studio.acme, D)]) == expected_on_d(studio)[studio.acme]


@web_role
def test_the_daily_task_runs_at_0015_utc_and_snapshots_yesterday(app, worker, studio):
    huey = get_huey(app)
    yesterday = utcnow().date() - dt.timedelta(days=1)  # D+2: a quiet day
    due = huey.read_periodic(dt.datetime.combine(yesterday, dt.time(0, 15)))
    assert "snapshot" in {task.name for task in due}
    late = huey.read_periodic(dt.datetime.combine(yesterday, dt.time(0, 16)))
    assert "snapshot" not in {task.name for task in late}
    (task,) = [task for task in due if task.name == "snapshot"]
    huey.execute(task)
    rows = stored(app)
    assert {day for _org, day in rows} == {yesterday}
    assert DayFigures.from_snapshot(rows[(studio.acme, yesterday)]) == DayFigures(
        custom_voices=2, members=3
    )
