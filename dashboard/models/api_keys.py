"""API keys: how an organisation's programs call the public API, and what each has done."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.models.accounts import User
from dashboard.models.base import Base, TimestampMixin, UTCDateTime, new_id, utcnow


class ApiScope(enum.StrEnum):
    """What a key may do; each API endpoint needs exactly one of these."""

    VOICES_READ = "voices:read"
    VOICES_WRITE = "voices:write"
    GENERATIONS_READ = "generations:read"
    GENERATIONS_WRITE = "generations:write"
    WEBHOOKS_MANAGE = "webhooks:manage"

    @property
    def label(self) -> str:
        """Return what the scope allows, in words."""
        return SCOPE_LABELS[self]


SCOPE_LABELS = {
    ApiScope.VOICES_READ: "List voices and play their reference audio",
    ApiScope.VOICES_WRITE: "Create and delete custom voices",
    ApiScope.GENERATIONS_READ: "Read generations, their audio and the usage",
    ApiScope.GENERATIONS_WRITE: "Submit and delete generations",
    ApiScope.WEBHOOKS_MANAGE: "Add, list and delete webhook endpoints",
}

NAME_MAX = 100


class ApiKey(TimestampMixin, Base):
    """One organisation API key. The secret is shown once; only its keyed hash is kept.

    `secret_hash` is HMAC-SHA256 of the whole secret under the server's key-hash key
    (`dashboard/api/keys.py`): the secrets are 32 random bytes, so a fast keyed hash is
    as strong as a slow one and costs nothing per request. A key is never deleted
    while its org lives (revoking sets `revoked_at`), so the usage of a revoked key
    stays readable. On PostgreSQL the policy `api_keys_own_read` lets a request read
    the one row whose hash it presents, before any org is in scope.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(f"length(name) BETWEEN 1 AND {NAME_MAX}", name="name_length"),
        CheckConstraint("length(last_four) = 4", name="last_four_length"),
        CheckConstraint(
            "monthly_character_limit IS NULL OR monthly_character_limit >= 1",
            name="monthly_character_limit_positive",
        ),
        # The target of the composite foreign keys of the per-day counters.
        UniqueConstraint("org_id", "id", name="uq_api_keys_org_id_id"),
        Index("ix_api_keys_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_four: Mapped[str] = mapped_column(String(4))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # Characters this key may generate per calendar month (UTC); NULL: only the org's limit.
    monthly_character_limit: Mapped[int | None] = mapped_column(Integer())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # Moved forward at most once a minute (`api.services.LAST_USED_INTERVAL`).
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_ip: Mapped[str | None] = mapped_column(String(45))

    creator: Mapped[User | None] = relationship(foreign_keys=[created_by], lazy="raise")

    def has_scope(self, scope: ApiScope) -> bool:
        """Tell whether the key was given `scope`."""
        return scope.value in self.scopes

    def refusal(self, now: dt.datetime) -> str | None:
        """Say why the key can't be used at `now` (revoked, expired), or None."""
        if self.revoked_at is not None:
            return "This API key was revoked. Create a new key in the organisation's settings."
        if self.expires_at is not None and self.expires_at <= now:
            return (
                f"This API key expired on {self.expires_at:%Y-%m-%d %H:%M} UTC. "
                "Create a new key in the organisation's settings."
            )
        return None

    def __repr__(self) -> str:
        return f"<ApiKey {self.name} …{self.last_four}>"


class ApiKeyDay(Base):
    """One key's API traffic on one day (UTC): requests, errors and characters submitted.

    Upserted (`INSERT … ON CONFLICT DO UPDATE`) at the end of each API request, so a
    busy key adds one row a day, not one per request. Request counters, not billing:
    the usage ledger is what is billed.
    """

    __tablename__ = "api_key_days"
    __table_args__ = (
        ForeignKeyConstraint(
            ["org_id", "api_key_id"],
            ["api_keys.org_id", "api_keys.id"],
            name="fk_api_key_days_org_id_api_keys",
            ondelete="CASCADE",
        ),
        CheckConstraint(
            "requests >= 0 AND errors >= 0 AND characters >= 0", name="counts_positive"
        ),
        Index("ix_api_key_days_org_id_day", "org_id", "day"),
    )

    api_key_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date(), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    requests: Mapped[int] = mapped_column(default=0, server_default="0")
    errors: Mapped[int] = mapped_column(default=0, server_default="0")
    characters: Mapped[int] = mapped_column(default=0, server_default="0")


class IdempotentRequest(Base):
    """A `POST /api/v1/generations` made with an `Idempotency-Key`, kept 24 hours.

    A retry with the same key and the same body gets the generation the first request
    created; the same key with another body is refused (422). `fingerprint` is the
    SHA-256 of the request's method, path and body.
    """

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (
        ForeignKeyConstraint(
            ["org_id", "api_key_id"],
            ["api_keys.org_id", "api_keys.id"],
            name="fk_api_idempotency_keys_org_id_api_keys",
            ondelete="CASCADE",
        ),
        UniqueConstraint("api_key_id", "key", name="uq_api_idempotency_keys_api_key_id_key"),
        Index("ix_api_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    api_key_id: Mapped[uuid.UUID] = mapped_column()
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    generation_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
