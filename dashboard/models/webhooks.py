"""Webhooks: an organisation's endpoints, the events for them (the outbox) and the attempts.

An event is written in the transaction of the change it reports (a generation
finishing, a voice created or deleted) together with one delivery per endpoint that
subscribed to its type: the outbox. Workers send deliveries after the commit and
record every attempt; nothing is sent from a request or from inside the transaction
that made the event. Composite foreign keys on `(org_id, …)` keep a delivery, an
attempt and its endpoint in one organisation.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.models.base import Base, TimestampMixin, UTCDateTime, new_id, utcnow
from dashboard.models.enums import db_enum

URL_MAX = 2000
DESCRIPTION_MAX = 200
EXCERPT_MAX = 1000
ERROR_MAX = 500


class WebhookEventType(enum.StrEnum):
    """What an endpoint can subscribe to."""

    GENERATION_SUCCEEDED = "generation.succeeded"
    GENERATION_FAILED = "generation.failed"
    VOICE_CREATED = "voice.created"
    VOICE_DELETED = "voice.deleted"

    @property
    def label(self) -> str:
        return EVENT_LABELS[self]


EVENT_LABELS = {
    WebhookEventType.GENERATION_SUCCEEDED: "A generation's audio is ready",
    WebhookEventType.GENERATION_FAILED: "A generation failed for good",
    WebhookEventType.VOICE_CREATED: "A custom voice was created",
    WebhookEventType.VOICE_DELETED: "A custom voice was deleted",
}
# Sent by "Send a test event" only, to whichever types the endpoint subscribed to.
TEST_EVENT = "webhook.test"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every retry failed, or it could not be sent at all
    CANCELLED = "cancelled"  # its endpoint was disabled or deleted first


class WebhookEndpoint(TimestampMixin, Base):
    """Where an organisation wants its events sent, and the secret deliveries are signed with.

    `secret` (and `previous_secret` for 24 hours after a rotation) are Fernet tokens
    (`dashboard.encryption`): `flask secrets rotate` finds them by `info["encrypted"]`.
    `consecutive_failures` counts failed attempts since the last success; past the
    limit the endpoint is disabled (`disabled_at`, `disabled_reason` say when and why).
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint(f"length(url) BETWEEN 1 AND {URL_MAX}", name="url_length"),
        CheckConstraint(f"length(description) <= {DESCRIPTION_MAX}", name="description_length"),
        CheckConstraint("consecutive_failures >= 0", name="failures_positive"),
        UniqueConstraint("org_id", "id", name="uq_webhook_endpoints_org_id_id"),
        Index("ix_webhook_endpoints_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(URL_MAX))
    description: Mapped[str] = mapped_column(String(DESCRIPTION_MAX), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(Text(), info={"encrypted": True})
    previous_secret: Mapped[str | None] = mapped_column(Text(), info={"encrypted": True})
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(String(ERROR_MAX))
    consecutive_failures: Mapped[int] = mapped_column(Integer(), default=0)
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def subscribes_to(self, event_type: str) -> bool:
        return event_type in self.event_types

    def __repr__(self) -> str:
        return f"<WebhookEndpoint {self.url}>"


class WebhookEvent(Base):
    """One thing that happened, as its payload will be sent (`webhook-id` is its id)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_webhook_events_org_id_id"),
        Index("ix_webhook_events_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def message_id(self) -> str:
        """The `webhook-id` header: the same on every attempt and every endpoint."""
        return f"msg_{self.id.hex}"


class WebhookDelivery(Base):
    """One event for one endpoint: the outbox row a worker sends and retries."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["org_id", "endpoint_id"],
            ["webhook_endpoints.org_id", "webhook_endpoints.id"],
            name="fk_webhook_deliveries_endpoint",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["org_id", "event_id"],
            ["webhook_events.org_id", "webhook_events.id"],
            name="fk_webhook_deliveries_event",
            ondelete="CASCADE",
        ),
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
        CheckConstraint("attempts >= 0", name="attempts_positive"),
        # The sweep: pending deliveries whose next attempt is due, oldest first.
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column()
    endpoint_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[DeliveryStatus] = mapped_column(
        db_enum(DeliveryStatus, "webhook_delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer(), default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A worker sending it holds it until then; another worker leaves it alone meanwhile.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    """One try at sending a delivery: the endpoint's log keeps its last 100."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["org_id", "endpoint_id"],
            ["webhook_endpoints.org_id", "webhook_endpoints.id"],
            name="fk_webhook_attempts_endpoint",
            ondelete="CASCADE",
        ),
        Index("ix_webhook_attempts_endpoint_id_attempted_at", "endpoint_id", "attempted_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column()
    # No foreign key: the log outlives a delivery only as long as its endpoint keeps it.
    delivery_id: Mapped[uuid.UUID | None] = mapped_column()
    event_id: Mapped[uuid.UUID | None] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(40))
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer())
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX))
    duration_ms: Mapped[int] = mapped_column(Integer(), default=0)
    response_excerpt: Mapped[str] = mapped_column(String(EXCERPT_MAX), default="")

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
