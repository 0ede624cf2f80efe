"""The outbox: an event and its deliveries, written in the transaction of what it reports.

`emit` runs inside the caller's transaction (a generation finishing, a voice created
or deleted) and flushes only: when that transaction commits, the event and one
delivery per subscribed, enabled endpoint commit with it; when it rolls back, nothing
was ever announced. Nothing is sent here. After the commit the deliveries' ids are
handed to the queue (`delivery.dispatch_committed`, called at the end of each request
and job); a process that dies in between loses nothing, because the sweep
(`delivery.sweep`, every minute) sends every pending delivery that is due.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session, scoped_session

from dashboard.extensions import db
from dashboard.models import WebhookDelivery, WebhookEndpoint, WebhookEvent, new_id, utcnow
from dashboard.webhooks.payloads import envelope

AnySession = Session | scoped_session[Session]
_PENDING_KEY = "voxboard.webhook_deliveries"

# Deliveries whose transaction has committed, waiting to be enqueued by this thread.
_committed: ContextVar[tuple[tuple[uuid.UUID, uuid.UUID], ...]] = ContextVar(
    "voxboard_webhook_committed", default=()
)


def emit(
    org_id: uuid.UUID,
    event_type: str,
    data: Callable[[], dict[str, Any]],
    *,
    session: AnySession | None = None,
) -> list[uuid.UUID]:
    """Record `event_type` for the org's subscribed endpoints (flush); return the deliveries.

    `data` is called only when some enabled endpoint subscribed to the type, so an org
    without webhooks pays one indexed read.
    """
    session = session or db.session
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
            WebhookEndpoint.org_id == org_id, WebhookEndpoint.disabled_at.is_(None)
        )
    )
    targets = [row for row in rows if event_type in (row.event_types or [])]
    if not targets:
        return []
    return record(org_id, event_type, data(), [row.id for row in targets], session=session)


def record(
    org_id: uuid.UUID,
    event_type: str,
    data: dict[str, Any],
    endpoint_ids: list[uuid.UUID],
    *,
    session: AnySession | None = None,
) -> list[uuid.UUID]:
    """Write an event and a delivery to each of `endpoint_ids` (flush); return the deliveries."""
    session = session or db.session
    now = utcnow()
    webhook_event = WebhookEvent(
        id=new_id(),
        org_id=org_id,
        event_type=event_type,
        payload=envelope(event_type, data, now),
        created_at=now,
    )
    session.add(webhook_event)
    session.flush()  # no relationship orders the two inserts: the event first
    deliveries = [
        WebhookDelivery(
            id=new_id(),
            org_id=org_id,
            event_id=webhook_event.id,
            endpoint_id=endpoint_id,
            next_attempt_at=now,
            created_at=now,
        )
        for endpoint_id in endpoint_ids
    ]
    session.add_all(deliveries)
    session.flush()
    note_pending(session, org_id, [d.id for d in deliveries])
    return [d.id for d in deliveries]


def note_pending(session: AnySession, org_id: uuid.UUID, delivery_ids: list[uuid.UUID]) -> None:
    """Enqueue `delivery_ids` once the session's transaction commits (dropped on rollback)."""
    target = session() if isinstance(session, scoped_session) else session
    pending = target.info.setdefault(_PENDING_KEY, [])
    pending.extend((delivery_id, org_id) for delivery_id in delivery_ids)


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if pending:
        _committed.set((*_committed.get(), *pending))


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def take_committed() -> tuple[tuple[uuid.UUID, uuid.UUID], ...]:
    """Return and forget this thread's committed (delivery, org) pairs, to enqueue."""
    committed = _committed.get()
    if committed:
        _committed.set(())
    return committed


def listen() -> None:
    """Follow the commits and rollbacks of every session (idempotent)."""
    if not sa_event.contains(Session, "after_commit", _after_commit):
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_rollback", _after_rollback)
