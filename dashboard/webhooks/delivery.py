"""Sending a delivery: claim it, sign it, POST it with no transaction open, record the try.

A run, inside the delivery's organisation (`tenancy.org_scope`: both tenant walls apply
to the worker too):

1. **Claim**: `UPDATE … SET attempts = attempts + 1, claimed_until = now + CLAIM
   WHERE id = … AND status = 'pending' AND next_attempt_at <= now AND (claimed_until
   IS NULL OR claimed_until < now)`, committed. A duplicate message, the sweep and a
   second worker find nothing to claim, so one event is never sent twice at once.
2. **Send** the event's payload, signed with the endpoint's secrets, through
   `transport.deliver` (the address checks, timeouts and no redirects live there).
3. **Record** the attempt in the endpoint's log (the last `LOG_SIZE` kept), then
   settle the delivery: succeeded; or pending again after the next backoff delay
   (with jitter) while `RETRY_DELAYS` last, about a day; or failed. Failures in a
   row count on the endpoint; `DISABLE_AFTER_FAILURES` of them spanning at least
   `DISABLE_AFTER` disable it, with the reason on its page.

A worker that dies after sending and before recording leaves the claim to expire: the
sweep sends the delivery again with the same `webhook-id`, which receivers use to
recognise a repeat (the specification's at-least-once delivery).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import uuid
from dataclasses import dataclass

from flask import Flask, current_app
from huey import Huey, crontab
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session, scoped_session

from dashboard import encryption, tenancy
from dashboard.extensions import db
from dashboard.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    utcnow,
)
from dashboard.queue import get_huey
from dashboard.tenancy.operator import worker_session
from dashboard.webhooks import events, signing, transport

log = logging.getLogger(__name__)
AnySession = Session | scoped_session[Session]

# After the first try: about a day of retries in all (23.6 h before jitter).
RETRY_DELAYS = tuple(
    dt.timedelta(seconds=s) for s in (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
)
JITTER = 0.2  # each delay ± 20 %, so endpoints that failed together don't retry together
CLAIM = dt.timedelta(seconds=60)  # > the transport's 15 s total timeout
LOG_SIZE = 100
DISABLE_AFTER_FAILURES = 20
DISABLE_AFTER = dt.timedelta(hours=24)
SWEEP_BATCH = 500
UNREADABLE_SECRET = (
    "The endpoint's signing secret can't be decrypted with this server's encryption "
    "keys, so nothing was sent. An operator can run `flask secrets check`."
)


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: uuid.UUID
    attempt: int
    claimed_until: dt.datetime


def deliver(delivery_id: uuid.UUID, org_id: uuid.UUID, now: dt.datetime | None = None) -> str:
    """Send one delivery of `org_id` if it is due (see the module doc); return the outcome."""
    with tenancy.org_scope(org_id):
        try:
            return _deliver(delivery_id, now or utcnow())
        finally:
            db.session.remove()


def _deliver(delivery_id: uuid.UUID, now: dt.datetime) -> str:
    claim = _claim(delivery_id, now)
    if claim is None:
        return "skipped"
    row = db.session.execute(
        select(WebhookDelivery, WebhookEvent, WebhookEndpoint)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id)
    ).one_or_none()
    if row is None:  # deleted with its endpoint since the claim
        db.session.commit()
        return "skipped"
    delivery, webhook_event, endpoint = row
    if not endpoint.enabled:
        _settle(claim, DeliveryStatus.CANCELLED, now)
        db.session.commit()
        return "cancelled"
    body = json.dumps(webhook_event.payload, separators=(",", ":")).encode()
    try:
        # Stamped with the real time of sending: receivers refuse stale timestamps.
        headers = signing.signed_headers(
            webhook_event.message_id, utcnow(), body, signing_secrets(endpoint, now)
        )
    except encryption.SecretUnreadable:
        log.error("webhook endpoint %s: signing secret unreadable", endpoint.id)
        result = transport.DeliveryResult(None, UNREADABLE_SECRET, 0, "")
    else:
        url, event_type = endpoint.url, webhook_event.event_type
        db.session.commit()  # hold no transaction while the endpoint answers
        result = transport.deliver(url, body, headers, **transport_options())
        log.info(
            "webhook %s %s → %s: %s",
            event_type,
            delivery_id,
            url,
            result.status_code or result.error,
        )
    _record(claim, result, now)
    return "succeeded" if result.ok else "failed"


def signing_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """Return the secrets that sign a delivery now: the current one, and a recent previous one."""
    found = [encryption.decrypt(endpoint.secret)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        found.append(encryption.decrypt(endpoint.previous_secret))
    return found


def transport_options() -> dict[str, bool]:
    """Production: `https://` only and never loopback; `WEBHOOKS_ALLOW_LOOPBACK` in development."""
    config = current_app.config
    production = config.get("ENV_NAME") == "production"
    return {
        "allow_loopback": bool(config.get("WEBHOOKS_ALLOW_LOOPBACK")) and not production,
        "require_https": production,
    }


# ------------------------------------------------------------------------ claim


def _claim(delivery_id: uuid.UUID, now: dt.datetime) -> Claim | None:
    claimed_until = now + CLAIM
    row = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
        )
        .values(attempts=WebhookDelivery.attempts + 1, claimed_until=claimed_until)
        .returning(WebhookDelivery.attempts)
        .execution_options(synchronize_session=False)
    ).first()
    db.session.commit()
    return None if row is None else Claim(delivery_id, row[0], claimed_until)


def _ours(claim: Claim):  # type: ignore[no-untyped-def]
    """The delivery as this run claimed it (not re-claimed by another run meanwhile)."""
    return and_(
        WebhookDelivery.id == claim.delivery_id,
        WebhookDelivery.attempts == claim.attempt,
        WebhookDelivery.claimed_until == claim.claimed_until,
    )


# ------------------------------------------------------------------------ record


def _record(claim: Claim, result: transport.DeliveryResult, now: dt.datetime) -> None:
    """Log the attempt, settle the delivery and count the endpoint's run of failures."""
    row = db.session.execute(
        select(WebhookDelivery, WebhookEvent.event_type, WebhookEndpoint)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(_ours(claim))
    ).one_or_none()
    if row is None:  # deleted meanwhile, or the claim expired and another run took it
        db.session.commit()
        return
    delivery, event_type, endpoint = row
    db.session.add(
        WebhookAttempt(
            org_id=delivery.org_id,
            endpoint_id=endpoint.id,
            delivery_id=delivery.id,
            event_id=delivery.event_id,
            event_type=event_type,
            attempted_at=now,
            status_code=result.status_code,
            error=(result.error or None) and result.error[:500],
            duration_ms=result.duration_ms,
            response_excerpt=result.response_excerpt[:1000],
        )
    )
    if result.ok:
        _settle(claim, DeliveryStatus.SUCCEEDED, now)
        endpoint.consecutive_failures, endpoint.failing_since = 0, None
    else:
        retry = next_delay(claim.attempt)
        if retry is None:
            _settle(claim, DeliveryStatus.FAILED, now)
        else:
            db.session.execute(
                update(WebhookDelivery)
                .where(_ours(claim))
                .values(next_attempt_at=now + retry, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
        _count_failure(endpoint, result, now)
    db.session.flush()
    _prune_log(endpoint.id)
    db.session.commit()


def next_delay(attempt: int, rng: random.Random | None = None) -> dt.timedelta | None:
    """Return the wait after failed try number `attempt` (1-based), or None: give up."""
    if attempt > len(RETRY_DELAYS):
        return None
    base = RETRY_DELAYS[attempt - 1]
    return base * (rng or random).uniform(1 - JITTER, 1 + JITTER)


def _settle(claim: Claim, status: DeliveryStatus, now: dt.datetime) -> None:
    db.session.execute(
        update(WebhookDelivery)
        .where(_ours(claim))
        .values(status=status, claimed_until=None, finished_at=now)
        .execution_options(synchronize_session=False)
    )


def _count_failure(
    endpoint: WebhookEndpoint, result: transport.DeliveryResult, now: dt.datetime
) -> None:
    endpoint.consecutive_failures += 1
    endpoint.failing_since = endpoint.failing_since or now
    if (
        endpoint.enabled
        and endpoint.consecutive_failures >= DISABLE_AFTER_FAILURES
        and now - endpoint.failing_since >= DISABLE_AFTER
    ):
        last = result.error or f"HTTP {result.status_code}"
        endpoint.disabled_at = now
        endpoint.disabled_reason = (
            f"Disabled after {endpoint.consecutive_failures} failed attempts in a row since "
            f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC. The last one: {last}"
        )[:500]
        # The org's audit log records this once it exists (operator console issue).
        log.warning(
            "webhook endpoint %s of org %s disabled: %s",
            endpoint.id,
            endpoint.org_id,
            endpoint.disabled_reason,
        )


def _prune_log(endpoint_id: uuid.UUID) -> None:
    """Keep the endpoint's newest LOG_SIZE attempts."""
    keep = (
        select(WebhookAttempt.id)
        .where(WebhookAttempt.endpoint_id == endpoint_id)
        .order_by(WebhookAttempt.attempted_at.desc(), WebhookAttempt.id.desc())
        .limit(LOG_SIZE)
    )
    db.session.execute(
        delete(WebhookAttempt)
        .where(WebhookAttempt.endpoint_id == endpoint_id, WebhookAttempt.id.not_in(keep))
        .execution_options(synchronize_session=False)
    )


# ------------------------------------------------------------------------ queue


def dispatch_committed() -> int:
    """Enqueue this thread's committed deliveries (at the end of a request or a job)."""
    committed = events.take_committed()
    for delivery_id, org_id in committed:
        enqueue_delivery(delivery_id, org_id)
    return len(committed)


def init_app(app: Flask) -> None:
    """Collect deliveries as their transactions commit; enqueue them as each request ends."""
    events.listen()

    @app.teardown_request
    def _dispatch(_exc: BaseException | None) -> None:
        dispatch_committed()


def enqueue_delivery(delivery_id: uuid.UUID, org_id: uuid.UUID) -> bool:
    """Queue one delivery; on a broker failure the sweep sends it later."""
    try:
        get_huey().voxboard_deliver(str(delivery_id), str(org_id))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001  (any broker failure: the sweep retries it)
        log.exception("could not enqueue webhook delivery %s; the sweep will", delivery_id)
        return False
    return True


def due_deliveries(
    session: AnySession, now: dt.datetime, limit: int = SWEEP_BATCH
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Return (delivery, org) of pending deliveries that are due and unclaimed, oldest first.

    `session` spans organisations (`worker_session`).
    """
    return [
        (row.id, row.org_id)
        for row in session.execute(
            select(WebhookDelivery.id, WebhookDelivery.org_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    ]


def sweep(now: dt.datetime | None = None) -> int:
    """Enqueue every due delivery of every organisation (the periodic task's body)."""
    with worker_session("webhooks: due deliveries of every organisation") as session:
        found = due_deliveries(session, now or utcnow())
    for delivery_id, org_id in found:
        enqueue_delivery(delivery_id, org_id)
    return len(found)


def register_tasks(huey: Huey, app: Flask) -> None:
    """The delivery task and the sweep (every minute, in every worker)."""

    @huey.task(name="deliver-webhook")
    def deliver_webhook(delivery_id: str, org_id: str) -> None:
        with app.app_context():
            deliver(uuid.UUID(delivery_id), uuid.UUID(org_id))
            dispatch_committed()

    @huey.periodic_task(crontab(minute="*"), name="sweep-webhooks")
    def sweep_webhooks() -> None:
        with app.app_context():
            sweep()

    huey.voxboard_deliver = deliver_webhook  # type: ignore[attr-defined]
