"""Read API keys: the key a request presents, an org's keys with their month and status,
every org's keys (operators), a day's traffic.

`ApiKey.refusal` owns "can this key be used now"; `key_status` only names the answer
(revoked wins over expired, as the refusal says). `list_all_keys` and `find_any_key`
span organisations, so operator commands call them inside `tenancy.all_tenants(...)`.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.generations import ledger
from dashboard.generations.queries import month_start, next_month
from dashboard.models import ApiKey, ApiKeyDay, Organization, User, utcnow


def key_for_request(secret_hash: str) -> tuple[ApiKey, Organization] | None:
    """Return the key whose secret hashes to `secret_hash` and its org, or None.

    Spans organisations on purpose (the key is what names the org): the application
    filter is skipped for this one statement, and on PostgreSQL the policy
    `api_keys_own_read` admits exactly this row because `tenancy.present_api_key`
    put its hash in scope first.
    """
    row = db.session.execute(
        select(ApiKey, Organization)
        .join(Organization, Organization.id == ApiKey.org_id)
        .where(ApiKey.secret_hash == secret_hash)
        .execution_options(skip_tenant_scope=True)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One key as the settings page lists it."""

    key: ApiKey
    creator: User | None
    used_this_month: int

    @property
    def status(self) -> KeyStatus:
        return key_status(self.key)

    @property
    def active(self) -> bool:
        return self.status is KeyStatus.ACTIVE


def list_keys(org_id: uuid.UUID) -> list[KeyRow]:
    """Return the org's keys, newest first, with their creators and this month's usage.

    Two statements whatever the number of keys: the keys with their creators, and one
    grouped sum over the ledger's (api_key_id, counted_at) index.
    """
    rows = db.session.execute(
        select(ApiKey, User)
        .outerjoin(User, User.id == ApiKey.created_by)
        .where(ApiKey.org_id == org_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    ).all()
    used = ledger.characters_used_by_keys([key.id for key, _ in rows], month_start())
    return [KeyRow(key, creator, used.get(key.id, 0)) for key, creator in rows]


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


def key_status(key: ApiKey, now: dt.datetime | None = None) -> KeyStatus:
    """Return whether `key` works at `now` and, if not, why (revoked, expired)."""
    if key.refusal(now or utcnow()) is None:
        return KeyStatus.ACTIVE
    return KeyStatus.REVOKED if key.revoked_at is not None else KeyStatus.EXPIRED


def list_all_keys(org_id: uuid.UUID | None = None) -> list[tuple[ApiKey, Organization]]:
    """Return every key (or one org's) with its org, by org slug, newest first (operators)."""
    statement = (
        select(ApiKey, Organization)
        .join(Organization, Organization.id == ApiKey.org_id)
        .order_by(Organization.slug, ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    if org_id is not None:
        statement = statement.where(ApiKey.org_id == org_id)
    return [(key, org) for key, org in db.session.execute(statement)]


def find_any_key(key_id: uuid.UUID) -> tuple[ApiKey, Organization] | None:
    """Return the key with `key_id` and its org, whichever org it is (operators)."""
    row = db.session.execute(
        select(ApiKey, Organization)
        .join(Organization, Organization.id == ApiKey.org_id)
        .where(ApiKey.id == key_id)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def find_key(key_id: uuid.UUID) -> ApiKey | None:
    """Return one of the org in scope's keys (None for another org's or no key)."""
    return db.session.scalars(select(ApiKey).where(ApiKey.id == key_id)).one_or_none()


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """A key's month against its own limit."""

    used: int
    limit: int | None
    resets_on: dt.date


def key_usage(key: ApiKey, now: dt.datetime | None = None) -> KeyUsage:
    """Return the key's characters this month and its limit (one statement)."""
    start = month_start(now)
    return KeyUsage(
        ledger.characters_used_by_key(key.id, start), key.monthly_character_limit, next_month(start)
    )


def traffic(key_id: uuid.UUID, since: dt.date) -> list[ApiKeyDay]:
    """Return the key's per-day counters from `since` on, oldest first."""
    return list(
        db.session.scalars(
            select(ApiKeyDay)
            .where(ApiKeyDay.api_key_id == key_id, ApiKeyDay.day >= since)
            .order_by(ApiKeyDay.day)
        )
    )
