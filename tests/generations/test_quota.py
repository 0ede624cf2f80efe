"""What counts against the monthly quota: one rule, read alike by every page that shows it.

`generations.queries.counts_against_quota` is the rule; the generation page and the
submit check (`usage`), and the analytics page's quota bar (a branch of its live
statement) both read through it. These tests pin what the rule says today, on both
databases, and that both readers give the same number for every case.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import Flask
from sqlalchemy import select

from dashboard import tenancy
from dashboard.analytics.live import read_live
from dashboard.extensions import db
from dashboard.generations.queries import characters_used, month_start, usage
from dashboard.history.services import delete_generation
from dashboard.models import Generation, GenerationStatus, Organization, User, Voice
from dashboard.tenancy.operator import operator_access
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
def test_a_deleted_voice_or_creator_still_counts_a_deleted_generation_does_not(app: Flask):
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
    # The row whose voice and creator are gone (both set NULL) keeps its characters;
    # a generation deleted from the history takes its characters with it.
    assert counted(app, org_id) == 1 + 2
