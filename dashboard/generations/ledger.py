"""The usage ledger: charge what was accepted, refund what finally failed, sum the month.

The one owner of "characters that count against the quota": the generate page, the
submit and retry checks and the analytics quota bar all read `counts_against_quota`.
A generation is charged when it is accepted (submitted, or retried) and refunded by a
line of its own when it finally fails, each in the transaction that changes its
status, so the sum is what was generated. Deleting a generation deletes no line.
Functions here flush only (the caller commits).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, scoped_session

from dashboard.extensions import db
from dashboard.models import Generation, UsageEntry, UsageKind, UsageSource, utcnow

AnySession = Session | scoped_session[Session]


def charge(generation: Generation, counted_at: dt.datetime | None = None) -> UsageEntry:
    """Charge the org for `generation`'s characters, counted now (or at `counted_at`).

    The line's source is the API when an API key submitted the generation.
    """
    entry = UsageEntry(
        org_id=generation.org_id,
        generation_id=generation.id,
        user_id=generation.created_by,
        api_key_id=generation.api_key_id,
        source=UsageSource.WEB if generation.api_key_id is None else UsageSource.API,
        kind=UsageKind.CHARGE,
        characters=generation.character_count,
        counted_at=counted_at or utcnow(),
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def refund(session: AnySession, generation_id: uuid.UUID) -> int:
    """Give back what `generation_id` is still charged for; return the characters.

    Called in the transaction that marks the generation failed for good. The refund
    counts in the month of the charge it answers, so a failure on the 1st gives the
    previous month its characters back, not this one.
    """
    row = session.execute(
        select(
            UsageEntry.org_id,
            UsageEntry.source,
            UsageEntry.user_id,
            UsageEntry.api_key_id,
            func.sum(UsageEntry.characters),
            func.max(UsageEntry.counted_at),
        )
        .where(UsageEntry.generation_id == generation_id)
        .group_by(UsageEntry.org_id, UsageEntry.source, UsageEntry.user_id, UsageEntry.api_key_id)
    ).first()
    if row is None or not row[4] or row[4] <= 0:
        return 0
    org_id, source, user_id, api_key_id, owed, counted_at = row
    # The refund names whoever was charged, so a key's month gets its characters back too.
    session.add(
        UsageEntry(
            org_id=org_id,
            generation_id=generation_id,
            user_id=user_id,
            api_key_id=api_key_id,
            source=source,
            kind=UsageKind.REFUND,
            characters=-int(owed),
            counted_at=counted_at,
        )
    )
    session.flush()
    return int(owed)


def counts_against_quota(org_id: uuid.UUID, since: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    """Return the criteria of the ledger lines that count against the quota since `since`."""
    return (UsageEntry.org_id == org_id, UsageEntry.counted_at >= since)


def characters_counted() -> ColumnElement[int]:
    """Return the sum of the lines a query selects (0 when there are none)."""
    return func.coalesce(func.sum(UsageEntry.characters), 0)


def characters_used(org_id: uuid.UUID, since: dt.datetime) -> int:
    """Sum the characters that count against the org's quota since `since` (one range scan)."""
    return int(
        db.session.scalar(select(characters_counted()).where(*counts_against_quota(org_id, since)))
        or 0
    )


def characters_used_by_key(api_key_id: uuid.UUID, since: dt.datetime) -> int:
    """Sum the characters that count against one API key's own limit since `since`."""
    return int(
        db.session.scalar(
            select(characters_counted()).where(
                UsageEntry.api_key_id == api_key_id, UsageEntry.counted_at >= since
            )
        )
        or 0
    )


def characters_used_by_org_and_key(
    org_id: uuid.UUID, api_key_id: uuid.UUID, since: dt.datetime
) -> tuple[int, int]:
    """Return the org's characters since `since` and, among them, one key's (one statement).

    One range of the org's `(org_id, counted_at)` index serves both sums: what the API's
    usage endpoint and a submission under both limits need.
    """
    mine = case((UsageEntry.api_key_id == api_key_id, UsageEntry.characters), else_=0)
    org_used, key_used = db.session.execute(
        select(characters_counted(), func.coalesce(func.sum(mine), 0)).where(
            *counts_against_quota(org_id, since)
        )
    ).one()
    return int(org_used or 0), int(key_used or 0)


def characters_used_by_keys(
    api_key_ids: list[uuid.UUID], since: dt.datetime
) -> dict[uuid.UUID, int]:
    """Return each key's characters since `since` (keys with none are left out)."""
    if not api_key_ids:
        return {}
    rows = db.session.execute(
        select(UsageEntry.api_key_id, characters_counted())
        .where(UsageEntry.api_key_id.in_(api_key_ids), UsageEntry.counted_at >= since)
        .group_by(UsageEntry.api_key_id)
    )
    return {key_id: int(used) for key_id, used in rows}
