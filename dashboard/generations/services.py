"""Write generations: submit one (quota checked, charged to the ledger). Flush only."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.generations import ledger, queries
from dashboard.models import ApiKey, Generation, GenerationStatus, Organization, Voice
from dashboard.tts import SynthesisParams


class QuotaExceeded(Exception):
    """The org's monthly character limit doesn't leave room; the message says how much."""


def _lock_org(org: Organization) -> None:
    """Serialise submissions of one org on PostgreSQL so two can't both fit the last room."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            select(Organization.id).where(Organization.id == org.id).with_for_update()
        )


def check_quota(org: Organization, characters: int, api_key: ApiKey | None = None) -> None:
    """Raise QuotaExceeded when `characters` don't fit this month's limits.

    Both limits, the org's and (for the API) the key's own, are read under one lock
    on the org's row, so two submissions at once can't both take the last room; with
    neither limit set nothing is read. Both set: one statement sums both.
    """
    org_limit = org.monthly_character_limit
    key_limit = None if api_key is None else api_key.monthly_character_limit
    if org_limit is None and key_limit is None:
        return
    _lock_org(org)
    start = queries.month_start()
    resets = f"{queries.next_month(start):%-d %B}"
    org_used = key_used = 0
    if api_key is not None and key_limit is not None and org_limit is not None:
        org_used, key_used = ledger.characters_used_by_org_and_key(org.id, api_key.id, start)
    elif org_limit is not None:
        org_used = ledger.characters_used(org.id, start)
    elif api_key is not None:
        key_used = ledger.characters_used_by_key(api_key.id, start)
    if org_limit is not None and org_used + characters > org_limit:
        left = max(0, org_limit - org_used)
        raise QuotaExceeded(
            f"This text has {characters:,} characters, but only {left:,} of {org.name}'s "
            f"{org_limit:,} monthly characters are left ({org_used:,} used). "
            f"Shorten the text, or wait until the limit resets on {resets}."
        )
    if api_key is not None and key_limit is not None and key_used + characters > key_limit:
        raise QuotaExceeded(
            f"This text has {characters:,} characters, but only "
            f"{max(0, key_limit - key_used):,} of the API key “{api_key.name}”'s "
            f"{key_limit:,} monthly characters are left ({key_used:,} used). "
            f"Shorten the text, raise the key's limit, or wait until it resets on {resets}."
        )


def submit_generation(
    org: Organization,
    user_id: uuid.UUID | None,
    voice: Voice,
    text: str,
    params: SynthesisParams,
    api_key: ApiKey | None = None,
) -> Generation:
    """Add a queued generation (voice name snapshot, character count) after the quota check,
    and charge its characters to the ledger in the same transaction.

    `api_key`: the key that submitted it through the API (its own limit applies too).
    The caller commits and then enqueues the job (`generations.jobs.enqueue_generation`).
    """
    check_quota(org, len(text), api_key)
    generation = Generation(
        org_id=org.id,
        voice_id=voice.id,
        created_by=user_id,
        api_key_id=None if api_key is None else api_key.id,
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
