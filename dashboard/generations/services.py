"""Write generations: submit one (quota checked, charged to the ledger). Flush only."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.generations import ledger, queries
from dashboard.models import Generation, GenerationStatus, Organization, Voice
from dashboard.tts import SynthesisParams


class QuotaExceeded(Exception):
    """The org's monthly character limit doesn't leave room; the message says how much."""


def _lock_org(org: Organization) -> None:
    """Serialise submissions of one org on PostgreSQL so two can't both fit the last room."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            select(Organization.id).where(Organization.id == org.id).with_for_update()
        )


def check_quota(org: Organization, characters: int) -> queries.Usage:
    """Return the month's usage, or raise QuotaExceeded when `characters` don't fit."""
    if org.monthly_character_limit is not None:
        _lock_org(org)
    usage = queries.usage(org)
    if usage.limit is not None and usage.used + characters > usage.limit:
        left = usage.left or 0
        resets = f"{usage.resets_on:%-d %B}"
        raise QuotaExceeded(
            f"This text has {characters:,} characters, but only {left:,} of {org.name}'s "
            f"{usage.limit:,} monthly characters are left ({usage.used:,} used). "
            f"Shorten the text, or wait until the limit resets on {resets}."
        )
    return usage


def submit_generation(
    org: Organization,
    user_id: uuid.UUID | None,
    voice: Voice,
    text: str,
    params: SynthesisParams,
) -> Generation:
    """Add a queued generation (voice name snapshot, character count) after the quota check,
    and charge its characters to the ledger in the same transaction.

    The caller commits and then enqueues the job (`generations.jobs.enqueue_generation`).
    """
    check_quota(org, len(text))
    generation = Generation(
        org_id=org.id,
        voice_id=voice.id,
        created_by=user_id,
        text=text,
        voice_name=voice.name,
        character_count=len(text),
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,
        repetition_penalty=params.repetition_penalty,
        status=GenerationStatus.QUEUED,
    )
    db.session.add(generation)
    db.session.flush()
    ledger.charge(generation, counted_at=generation.created_at)
    return generation
