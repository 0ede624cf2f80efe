"""Read an organisation's webhook endpoints, their delivery logs and deliveries.

Every read runs in the org in scope (both tenant walls), so another org's endpoint or
delivery is simply not found. The settings pages cost one statement each for their
own content: the list reads each endpoint with its latest attempt in one statement,
an endpoint's page its row and then its log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import aliased

from dashboard.extensions import db
from dashboard.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from dashboard.webhooks.delivery import LOG_SIZE


@dataclass(frozen=True, slots=True)
class EndpointRow:
    """One endpoint as the list shows it, with its latest attempt (None: never tried)."""

    endpoint: WebhookEndpoint
    last_attempt: WebhookAttempt | None


def list_endpoints(org_id: uuid.UUID) -> list[EndpointRow]:
    """Return the org's endpoints, newest first, each with its latest attempt (one statement)."""
    latest = aliased(WebhookAttempt)
    latest_id = (
        select(latest.id)
        .where(latest.endpoint_id == WebhookEndpoint.id)
        .order_by(latest.attempted_at.desc(), latest.id.desc())
        .limit(1)
        .correlate(WebhookEndpoint)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(WebhookEndpoint, WebhookAttempt)
        .outerjoin(WebhookAttempt, WebhookAttempt.id == latest_id)
        .where(WebhookEndpoint.org_id == org_id)
        .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
    ).all()
    return [EndpointRow(endpoint, attempt) for endpoint, attempt in rows]


def find_endpoint(endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
    """Return one of the org in scope's endpoints (None for another org's or no endpoint)."""
    return db.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    ).one_or_none()


def recent_attempts(endpoint_id: uuid.UUID, limit: int = LOG_SIZE) -> list[WebhookAttempt]:
    """Return the endpoint's delivery log: its latest `limit` attempts, newest first."""
    return list(
        db.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.endpoint_id == endpoint_id)
            .order_by(WebhookAttempt.attempted_at.desc(), WebhookAttempt.id.desc())
            .limit(limit)
        )
    )


def find_delivery(endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery | None:
    """Return the endpoint's delivery `delivery_id` (None when it is another endpoint's)."""
    return db.session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
        )
    ).one_or_none()
