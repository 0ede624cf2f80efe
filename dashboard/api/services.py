"""Write API keys and their traffic: create, revoke, note a use, count a request. Flush only."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from dashboard.api import keys
from dashboard.extensions import db
from dashboard.models import ApiKey, ApiKeyDay, ApiScope, utcnow

# A key's "last used" moves at most this often, so a busy key doesn't write on every call.
LAST_USED_INTERVAL = dt.timedelta(minutes=1)


def create_key(
    org_id: uuid.UUID,
    created_by: uuid.UUID | None,
    name: str,
    scopes: Iterable[ApiScope],
    monthly_character_limit: int | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiKey, str]:
    """Add a key; return it and its secret, which is never stored and can't be shown again."""
    made = keys.new_secret()
    key = ApiKey(
        org_id=org_id,
        name=name,
        secret_hash=made.secret_hash,
        last_four=made.last_four,
        # In the order of ApiScope, whatever order they were ticked in.
        scopes=[scope.value for scope in ApiScope if scope in set(scopes)],
        monthly_character_limit=monthly_character_limit,
        expires_at=expires_at,
        created_by=created_by,
    )
    db.session.add(key)
    db.session.flush()
    return key, made.secret


def revoke_key(key: ApiKey, revoked_by: uuid.UUID | None, now: dt.datetime | None = None) -> bool:
    """Revoke `key` from its next request on; return False when it already was."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = now or utcnow()
    key.revoked_by = revoked_by
    db.session.flush()
    return True


def note_use(key: ApiKey, address: str | None, now: dt.datetime) -> bool:
    """Move the key's "last used" (time and address) forward, at most once a minute.

    A plain UPDATE guarded by the old value, so two workers noting the same minute
    write once, and the loaded row isn't marked dirty.
    Return whether it wrote (the caller then has something to commit).
    """
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_INTERVAL:
        return False
    guard = (
        ApiKey.last_used_at.is_(None)
        if key.last_used_at is None
        else ApiKey.last_used_at == key.last_used_at
    )
    db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id, guard)
        .values(last_used_at=now, last_used_ip=(address or "")[:45] or None)
        .execution_options(synchronize_session=False)
    )
    return True


def count_requests(
    api_key_id: uuid.UUID,
    org_id: uuid.UUID,
    day: dt.date,
    requests: int,
    errors: int,
    characters: int,
) -> None:
    """Add requests, errors and characters to a key's day: one upsert, never a row each."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ApiKeyDay).values(
        api_key_id=api_key_id,
        day=day,
        org_id=org_id,
        requests=requests,
        errors=errors,
        characters=characters,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[ApiKeyDay.api_key_id, ApiKeyDay.day],
        set_={
            "requests": ApiKeyDay.requests + requests,
            "errors": ApiKeyDay.errors + errors,
            "characters": ApiKeyDay.characters + characters,
        },
    )
    db.session.execute(statement)
