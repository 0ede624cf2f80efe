"""Change an organisation's webhook endpoints: add, rotate the secret, disable, delete, test.

Functions flush only (callers commit). Secrets are encrypted before they reach a row
(`dashboard.encryption`) and shown in plain text exactly once, by the caller that made
them. URLs are checked here with the rules deliveries apply (`transport.check_url`);
the address a URL resolves to is checked again at every delivery.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import update

from dashboard import encryption
from dashboard.extensions import db
from dashboard.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
    utcnow,
)
from dashboard.models.webhooks import TEST_EVENT
from dashboard.webhooks import delivery, events, signing, transport


class EndpointError(ValueError):
    """A change that can't be made, with a message for the person who asked."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def check_url(url: str) -> str:
    """Return the URL trimmed, or raise EndpointError saying what is wrong with it."""
    url = url.strip()
    try:
        transport.check_url(url, require_https=delivery.transport_options()["require_https"])
    except transport.UnsafeUrl as exc:
        raise EndpointError(str(exc), "url") from None
    return url


def event_types(chosen: Iterable[str]) -> list[str]:
    """Return the chosen event types in their canonical order, refusing unknown ones."""
    wanted = set(chosen)
    unknown = wanted - {t.value for t in WebhookEventType}
    if unknown:
        raise EndpointError(
            f"Unknown event type {', '.join(sorted(unknown))}; choose from "
            f"{', '.join(t.value for t in WebhookEventType)}.",
            "event_types",
        )
    if not wanted:
        raise EndpointError("Choose at least one event to send.", "event_types")
    return [t.value for t in WebhookEventType if t.value in wanted]


def create_endpoint(
    org_id: uuid.UUID,
    created_by: uuid.UUID | None,
    url: str,
    description: str,
    chosen_events: Iterable[str],
) -> NewEndpoint:
    """Add an endpoint with a fresh secret (flush); return it with the secret in plain text."""
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        org_id=org_id,
        url=check_url(url),
        description=description.strip(),
        event_types=event_types(chosen_events),
        secret=encryption.encrypt(secret),
        created_by=created_by,
    )
    db.session.add(endpoint)
    db.session.flush()
    return NewEndpoint(endpoint, secret)


def rotate_secret(endpoint: WebhookEndpoint, now: dt.datetime | None = None) -> str:
    """Give the endpoint a new secret (returned); the old one keeps signing for 24 hours."""
    now = now or utcnow()
    secret = signing.new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + signing.PREVIOUS_SECRET_VALID
    endpoint.secret = encryption.encrypt(secret)
    db.session.flush()
    return secret


def disable(endpoint: WebhookEndpoint, reason: str, now: dt.datetime | None = None) -> None:
    """Stop sending to the endpoint; its pending deliveries are cancelled (flush)."""
    now = now or utcnow()
    endpoint.disabled_at, endpoint.disabled_reason = now, reason
    db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.CANCELLED, finished_at=now, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()


def enable(endpoint: WebhookEndpoint) -> None:
    """Send to the endpoint again, from the next event on; its run of failures starts over."""
    endpoint.disabled_at = endpoint.disabled_reason = None
    endpoint.consecutive_failures, endpoint.failing_since = 0, None
    db.session.flush()


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries and log (flush)."""
    db.session.delete(endpoint)
    db.session.flush()


def send_test_event(endpoint: WebhookEndpoint) -> uuid.UUID:
    """Queue a `webhook.test` event for this endpoint alone (flush); return its delivery."""
    data = {
        "endpoint_id": str(endpoint.id),
        "message": "This is a test event from Voxboard. Your endpoint is set up.",
    }
    (delivery_id,) = events.record(endpoint.org_id, TEST_EVENT, data, [endpoint.id])
    return delivery_id


def redeliver(found: WebhookDelivery, now: dt.datetime | None = None) -> None:
    """Send a delivery again now, whatever became of it (flush)."""
    found.status = DeliveryStatus.PENDING
    found.next_attempt_at = now or utcnow()
    found.claimed_until = found.finished_at = None
    db.session.flush()
    events.note_pending(db.session, found.org_id, [found.id])
