"""What counts against the monthly quota: the usage ledger, read alike by every page.

`generations.ledger.counts_against_quota` is the rule; the generation page and the
submit check (`usage`), and the analytics page's quota bar (a branch of its live
statement) both read through it. A generation is charged when it is accepted and
refunded by a line of its own when it finally fails; deleting anything changes
nothing. These tests pin that on both databases (PostgreSQL as the web role), and that
both readers give the same number for every case.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from flask import Flask
from sqlalchemy import select

from dashboard import tenancy
from dashboard.analytics.live import read_live
from dashboard.extensions import db
from dashboard.generations import services
from dashboard.generations.jobs import reap_stuck, reset_for_retry
from dashboard.generations.ledger import characters_used
from dashboard.generations.queries import month_start, usage
from dashboard.history.services import delete_generation
from dashboard.models import (
    ApiKey,
    Generation,
    GenerationStatus,
    Organization,
    UsageEntry,
    UsageKind,
    User,
    Voice,
    utcnow,
)
from dashboard.tenancy.operator import operator_access
from dashboard.tts import SynthesisParams
from tests import factories
from tests.databases import WEB_ROLE_BACKENDS

FINISHED = {"audio_key": "x", "duration_ms": 1}


def add(org: Organization, voice: Voice, characters: int, **kw) -> Generation:
    """Add a generation of `characters` characters: one power of two per case, so a sum
    says exactly which cases counted."""
    if kw.get("status") is GenerationStatus.SUCCEEDED:
        kw = {**FINISHED, **kw}
    return factories.make_generation(org, voice, text="x" * characters, **kw)


def counted(app: Flask, org_id: uuid.UUID) -> int:
    """Return the month's characters as each reader sees them; they must agree."""
    with app.app_context(), tenancy.org_scope(org_id):
        org = db.session.scalars(select(Organization).where(Organization.id == org_id)).one()
        start = month_start()
        by_generations = characters_used(org_id, start)
        assert usage(org).used == by_generations
        by_analytics = read_live(org_id, None, usage_since=start).characters_this_month
        assert by_analytics == by_generations
        return by_generations


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_the_quota_counts_this_months_generations_that_did_not_fail(app: Flask):
    start = month_start()
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="acme", monthly_character_limit=10_000)
        other = factories.make_org(slug="other")
        voice = factories.make_voice(org)
        add(org, voice, 1, status=GenerationStatus.SUCCEEDED)
        add(org, voice, 2, status=GenerationStatus.QUEUED)  # counts before it runs
        add(org, voice, 4, status=GenerationStatus.RUNNING)
        add(org, voice, 8, status=GenerationStatus.FAILED, error="engine down")  # free
        # The month's first instant counts; the one before it is last month's.
        add(org, voice, 16, status=GenerationStatus.SUCCEEDED, created_at=start)
        before = start - dt.timedelta(milliseconds=1)
        add(org, voice, 32, status=GenerationStatus.SUCCEEDED, created_at=before)
        add(other, factories.make_voice(other), 64, status=GenerationStatus.QUEUED)  # another org's
        db.session.commit()
        org_id = org.id
    assert counted(app, org_id) == 1 + 2 + 4 + 16


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_deleting_a_voice_a_creator_or_the_generation_itself_gives_nothing_back(app: Flask):
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="acme", monthly_character_limit=10_000)
        creator = factories.make_user(email="ada@acme.example")
        factories.make_membership(creator, org)
        voice = factories.make_voice(org, name="Soon gone")
        kept = factories.make_voice(org, name="Kept")
        add(org, voice, 1, status=GenerationStatus.SUCCEEDED, created_by=creator.id)
        add(org, kept, 2, status=GenerationStatus.SUCCEEDED)
        removed = add(org, kept, 4, status=GenerationStatus.SUCCEEDED)
        db.session.commit()
        org_id, ids = org.id, (voice.id, creator.id, removed.id)
    assert counted(app, org_id) == 1 + 2 + 4

    voice_id, creator_id, removed_id = ids
    with app.app_context(), operator_access("test: delete the voice, the account, a row"):
        db.session.delete(db.session.get(Voice, voice_id))
        db.session.delete(db.session.get(User, creator_id))
        delete_generation(db.session.get(Generation, removed_id))
        db.session.commit()
    # What was generated is what is billed: the ledger has no foreign key to any of them.
    assert counted(app, org_id) == 1 + 2 + 4


def ledger_lines(app: Flask, generation_id: uuid.UUID) -> list[tuple[UsageKind, int]]:
    with app.app_context(), operator_access("test check"):
        rows = db.session.execute(
            select(UsageEntry.kind, UsageEntry.characters)
            .where(UsageEntry.generation_id == generation_id)
            .order_by(UsageEntry.created_at, UsageEntry.kind)
        ).all()
    return [(kind, characters) for kind, characters in rows]


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_a_final_failure_is_refunded_by_a_line_of_its_own_and_a_retry_charges_again(
    app: Flask,
):
    long_ago = utcnow() - dt.timedelta(hours=2)
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="acme", monthly_character_limit=10_000)
        running = add(
            org, factories.make_voice(org), 8, status=GenerationStatus.RUNNING, attempts=4,
            started_at=long_ago, updated_at=long_ago,
        )  # fmt: skip
        db.session.commit()
        org_id, generation_id = org.id, running.id
    assert counted(app, org_id) == 8

    # The reaper gives up on it (the worker died on every attempt): the characters come back.
    with app.app_context(), operator_access("test: reap"):
        report = reap_stuck(db.session, dt.timedelta(minutes=10), max_retries=3)
    assert report.failed == [generation_id]
    assert counted(app, org_id) == 0
    assert ledger_lines(app, generation_id) == [(UsageKind.CHARGE, 8), (UsageKind.REFUND, -8)]

    # Retrying is a new acceptance: charged again, and the earlier lines stay as they were.
    with app.app_context(), tenancy.org_scope(org_id):
        reset_for_retry(db.session.get(Generation, generation_id))
        db.session.commit()
    assert counted(app, org_id) == 8
    assert [kind for kind, _ in ledger_lines(app, generation_id)] == [
        UsageKind.CHARGE,
        UsageKind.REFUND,
        UsageKind.CHARGE,
    ]


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_a_refund_counts_in_the_month_of_its_charge(app: Flask):
    """Charged last month, failed this month: last month gets it back, not this one."""
    last_month = month_start() - dt.timedelta(days=2)
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="acme", monthly_character_limit=10_000)
        voice = factories.make_voice(org)
        add(org, voice, 16, status=GenerationStatus.SUCCEEDED)
        late = add(
            org, voice, 8, status=GenerationStatus.RUNNING, attempts=4,
            created_at=last_month, started_at=last_month, updated_at=last_month,
        )  # fmt: skip
        db.session.commit()
        org_id, late_id = org.id, late.id
    with app.app_context(), operator_access("test: reap"):
        assert reap_stuck(db.session, dt.timedelta(minutes=10), max_retries=3).failed
    assert counted(app, org_id) == 16
    with app.app_context(), operator_access("test check"):
        refund_month = db.session.scalar(
            select(UsageEntry.counted_at).where(
                UsageEntry.generation_id == late_id, UsageEntry.kind == UsageKind.REFUND
            )
        )
    assert refund_month < month_start()


@pytest.mark.parametrize("backend", [WEB_ROLE_BACKENDS[1]], indirect=True)
@pytest.mark.parametrize("limit_on", ["org", "api key"])
def test_two_submissions_at_once_can_never_exceed_the_quota(app: Flask, limit_on: str):
    """The second submission waits on the first's org lock, then sees its charge.

    The same lock serves the org's quota and an API key's own monthly limit.
    """
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(
            slug="acme", monthly_character_limit=300 if limit_on == "org" else None
        )
        voice = factories.make_voice(org)
        key, _secret = factories.make_api_key(
            org, monthly_character_limit=300 if limit_on == "api key" else None
        )
        db.session.commit()
        org_id, voice_id, key_id = org.id, voice.id, key.id
    first_in, second_started = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def submit(name: str, before_commit=None) -> None:
        with app.app_context(), tenancy.org_scope(org_id):
            org = db.session.get(Organization, org_id)
            voice = db.session.get(Voice, voice_id)
            key = db.session.get(ApiKey, key_id)
            try:
                services.submit_generation(
                    org, None, voice, "x" * 200, SynthesisParams(), api_key=key
                )
                if before_commit:
                    before_commit()
                db.session.commit()
                outcome[name] = ("accepted", time.monotonic())
            except services.QuotaExceeded:
                db.session.rollback()
                outcome[name] = ("refused", time.monotonic())
            finally:
                db.session.remove()

    def hold_the_lock() -> None:
        first_in.set()
        second_started.wait(5)
        time.sleep(0.3)  # the second is now blocked on the org row, or would have read 0
        outcome["first committed at"] = time.monotonic()

    def second() -> None:
        first_in.wait(5)
        second_started.set()
        submit("second")

    threads = [
        threading.Thread(target=submit, args=("first", hold_the_lock)),
        threading.Thread(target=second),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcome["first"][0] == "accepted"
    assert outcome["second"][0] == "refused"
    assert outcome["second"][1] >= outcome["first committed at"]  # it waited for the lock
    assert counted(app, org_id) == 200
