"""The outbox and the delivery job: what is written with an event, what a receiver gets.

Real parts throughout: the database (SQLite, and PostgreSQL where marked), a real
loopback receiver (`tests/webhooks/receiver.py`), signatures checked with the
`standardwebhooks` package a receiver would use. Times are passed in, so retries
and the disabling rule run without waiting.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import func, select
from standardwebhooks import Webhook, WebhookVerificationError

from dashboard import encryption, tenancy
from dashboard.extensions import db
from dashboard.generations import jobs
from dashboard.models import (
    DeliveryStatus,
    Organization,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
    utcnow,
)
from dashboard.tenancy.operator import operator_access
from dashboard.voices import services as voice_services
from dashboard.webhooks import delivery, events, services
from tests import factories
from tests.databases import both_databases
from tests.webhooks.receiver import Reply, webhook_receiver

VOICE_CREATED = WebhookEventType.VOICE_CREATED.value
GENERATION_SUCCEEDED = WebhookEventType.GENERATION_SUCCEEDED.value


@dataclass
class Hook:
    org_id: uuid.UUID
    endpoint_id: uuid.UUID
    secret: str
    url: str


@pytest.fixture
def app(app: Flask) -> Flask:
    app.config["WEBHOOKS_ALLOW_LOOPBACK"] = True
    return app


@pytest.fixture
def receiver() -> Iterator:
    with webhook_receiver() as running:
        yield running


def add_endpoint(app: Flask, url: str, types=(VOICE_CREATED,), org_id=None) -> Hook:
    with app.app_context(), operator_access("test setup"):
        org = db.session.get(Organization, org_id) if org_id else factories.make_org()
        made = services.create_endpoint(org.id, None, url, "test", list(types))
        db.session.commit()
        return Hook(org.id, made.endpoint.id, made.secret, url)


def emit(app: Flask, hook: Hook, event_type: str = VOICE_CREATED, commit: bool = True):
    """Write an event in a transaction of the org, as a service would; return the deliveries."""
    with app.app_context(), tenancy.org_scope(hook.org_id):
        ids = events.emit(hook.org_id, event_type, lambda: {"id": "v1", "name": "Narrator"})
        if commit:
            db.session.commit()
        else:
            db.session.rollback()
        return ids


def deliver(app: Flask, hook: Hook, delivery_id: uuid.UUID, now: dt.datetime) -> str:
    with app.app_context():
        return delivery.deliver(delivery_id, hook.org_id, now)


def rows(app: Flask, model, **where):
    with app.app_context(), operator_access("test reads"):
        found = db.session.scalars(select(model).filter_by(**where)).all()
        db.session.expunge_all()
        return found


def only_delivery(app: Flask, delivery_id: uuid.UUID) -> WebhookDelivery:
    (found,) = rows(app, WebhookDelivery, id=delivery_id)
    return found


# --------------------------------------------------------------------------- outbox


@both_databases
def test_an_event_and_its_deliveries_commit_with_the_change_and_vanish_with_a_rollback(
    app, receiver, monkeypatch
):
    sent: list[uuid.UUID] = []
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda d, _o: sent.append(d) or True)
    hook = add_endpoint(app, receiver.url)
    other = add_endpoint(app, receiver.url, types=(GENERATION_SUCCEEDED,), org_id=hook.org_id)
    assert emit(app, hook, commit=False)
    assert rows(app, WebhookEvent) == [] and rows(app, WebhookDelivery) == []
    with app.app_context():
        assert delivery.dispatch_committed() == 0  # nothing committed, nothing enqueued
    (delivery_id,) = emit(app, hook)
    (event,) = rows(app, WebhookEvent)
    assert event.event_type == VOICE_CREATED
    assert event.payload["type"] == VOICE_CREATED and event.payload["data"]["name"] == "Narrator"
    (found,) = rows(app, WebhookDelivery)
    # Only the endpoint subscribed to the type gets a delivery.
    assert (found.id, found.endpoint_id, found.status) == (
        delivery_id,
        hook.endpoint_id,
        DeliveryStatus.PENDING,
    )
    assert other.endpoint_id != found.endpoint_id
    with app.app_context():
        assert delivery.dispatch_committed() == 1
    assert sent == [delivery_id]
    assert receiver.requests == []  # enqueued, not sent from the transaction


def test_nothing_is_written_for_an_org_without_subscribers(app, receiver):
    hook = add_endpoint(app, receiver.url, types=(GENERATION_SUCCEEDED,))
    assert emit(app, hook, VOICE_CREATED) == []
    with app.app_context(), operator_access("test"):
        services.disable(db.session.get(WebhookEndpoint, hook.endpoint_id), "test")
        db.session.commit()
    assert emit(app, hook, GENERATION_SUCCEEDED) == []
    assert rows(app, WebhookEvent) == []


# ------------------------------------------------------------------------- delivery


@both_databases
def test_a_delivery_reaches_the_receiver_signed_as_the_standard_says(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, receiver.url)
    (delivery_id,) = emit(app, hook)
    now = utcnow()
    assert deliver(app, hook, delivery_id, now) == "succeeded"
    (request,) = receiver.requests
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    payload = Webhook(hook.secret).verify(request.body, request.headers)
    assert payload["type"] == VOICE_CREATED and payload["data"] == {"id": "v1", "name": "Narrator"}
    (event,) = rows(app, WebhookEvent)
    assert request.headers["webhook-id"] == event.message_id
    assert abs(int(request.headers["webhook-timestamp"]) - now.timestamp()) < 5
    with pytest.raises(WebhookVerificationError):
        Webhook(services.signing.new_secret()).verify(request.body, request.headers)
    found = only_delivery(app, delivery_id)
    assert (found.status, found.attempts, found.claimed_until) == (
        DeliveryStatus.SUCCEEDED,
        1,
        None,
    )
    (attempt,) = rows(app, WebhookAttempt)
    assert (attempt.status_code, attempt.error, attempt.response_excerpt) == (200, None, "ok")
    assert attempt.event_type == VOICE_CREATED and attempt.delivery_id == delivery_id
    # Delivered once: running the job again sends nothing.
    assert deliver(app, hook, delivery_id, now + dt.timedelta(hours=1)) == "skipped"
    assert len(receiver.requests) == 1


def test_a_claimed_delivery_is_not_sent_twice_at_once(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, receiver.url)
    (delivery_id,) = emit(app, hook)
    now = utcnow()
    with app.app_context(), tenancy.org_scope(hook.org_id):
        claim = delivery._claim(delivery_id, now)
    assert claim is not None and claim.attempt == 1
    # Another worker (or the sweep) within the claim finds nothing to do.
    assert deliver(app, hook, delivery_id, now + dt.timedelta(seconds=5)) == "skipped"
    with app.app_context(), operator_access("test"):
        assert delivery.due_deliveries(db.session, now + dt.timedelta(seconds=5)) == []
        # Once the claim has expired (its worker died), the sweep picks it up again.
        later = now + delivery.CLAIM + dt.timedelta(seconds=1)
        assert delivery.due_deliveries(db.session, later) == [(delivery_id, hook.org_id)]
    assert receiver.requests == []


def test_after_a_rotation_both_secrets_verify_for_a_day(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, receiver.url)
    now = utcnow()
    with app.app_context(), operator_access("test"):
        endpoint = db.session.get(WebhookEndpoint, hook.endpoint_id)
        new_secret = services.rotate_secret(endpoint, now)
        db.session.commit()
    (first,) = emit(app, hook)
    deliver(app, hook, first, now + dt.timedelta(hours=1))
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(new_secret).verify(request.body, request.headers)
    Webhook(hook.secret).verify(request.body, request.headers)
    (second,) = emit(app, hook)
    deliver(app, hook, second, now + dt.timedelta(hours=25))
    request = receiver.requests[-1]
    Webhook(new_secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):  # the old secret has stopped signing
        Webhook(hook.secret).verify(request.body, request.headers)


def test_secrets_are_stored_encrypted(app, receiver):
    hook = add_endpoint(app, receiver.url)
    (endpoint,) = rows(app, WebhookEndpoint, id=hook.endpoint_id)
    assert hook.secret not in endpoint.secret and endpoint.secret.startswith("gAAAA")
    with app.app_context():
        assert encryption.decrypt(endpoint.secret) == hook.secret


# ------------------------------------------------------------------------- failures


def test_a_failed_attempt_is_retried_with_backoff_then_succeeds(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, receiver.url)
    (delivery_id,) = emit(app, hook)
    receiver.reply_next(Reply(503, b"busy, try later"))
    now = utcnow()
    assert deliver(app, hook, delivery_id, now) == "failed"
    found = only_delivery(app, delivery_id)
    assert found.status is DeliveryStatus.PENDING and found.claimed_until is None
    wait = found.next_attempt_at - now
    first = delivery.RETRY_DELAYS[0]
    assert first * (1 - delivery.JITTER) <= wait <= first * (1 + delivery.JITTER)
    # Not due yet: nothing is sent before the backoff has passed.
    assert deliver(app, hook, delivery_id, now + first * 0.5) == "skipped"
    assert deliver(app, hook, delivery_id, now + first * 2) == "succeeded"
    attempts = sorted(rows(app, WebhookAttempt), key=lambda a: a.attempted_at)
    assert [(a.status_code, a.response_excerpt) for a in attempts] == [
        (503, "busy, try later"),
        (200, "ok"),
    ]
    # Both tries carried the same webhook-id: a receiver can tell a retry.
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    (endpoint,) = rows(app, WebhookEndpoint, id=hook.endpoint_id)
    assert (endpoint.consecutive_failures, endpoint.failing_since) == (0, None)


def test_a_delivery_gives_up_after_a_day_of_retries(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, receiver.url)
    (delivery_id,) = emit(app, hook)
    receiver.reply_always(Reply(500, b"broken"))
    now = utcnow()
    for _ in range(len(delivery.RETRY_DELAYS) + 1):
        assert deliver(app, hook, delivery_id, now) == "failed"
        now = only_delivery(app, delivery_id).next_attempt_at
    found = only_delivery(app, delivery_id)
    assert found.status is DeliveryStatus.FAILED and found.finished_at is not None
    assert found.attempts == len(delivery.RETRY_DELAYS) + 1
    span = sum(delivery.RETRY_DELAYS, dt.timedelta())
    assert dt.timedelta(hours=18) < span * (1 - delivery.JITTER) and span < dt.timedelta(hours=25)
    assert deliver(app, hook, delivery_id, now + dt.timedelta(days=2)) == "skipped"


def test_an_endpoint_failing_for_a_day_is_disabled_with_the_reason(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, f"http://127.0.0.1:{free_port()}")
    start = utcnow() + dt.timedelta(seconds=1)  # every delivery below is due by then
    step = delivery.DISABLE_AFTER / (delivery.DISABLE_AFTER_FAILURES - 1) + dt.timedelta(seconds=1)
    for n in range(delivery.DISABLE_AFTER_FAILURES):
        (delivery_id,) = emit(app, hook)
        deliver(app, hook, delivery_id, start + step * n)
        (endpoint,) = rows(app, WebhookEndpoint, id=hook.endpoint_id)
        if n < delivery.DISABLE_AFTER_FAILURES - 1:
            assert endpoint.enabled, n
    assert not endpoint.enabled
    assert endpoint.disabled_reason.startswith(
        f"Disabled after {delivery.DISABLE_AFTER_FAILURES} failed attempts in a row"
    )
    assert "Connection refused" in endpoint.disabled_reason
    # Disabled: no new deliveries, and pending ones are cancelled when picked up.
    assert emit(app, hook) == []
    pending = [d for d in rows(app, WebhookDelivery) if d.status is DeliveryStatus.PENDING]
    for found in pending:
        assert deliver(app, hook, found.id, found.next_attempt_at) == "cancelled"


def test_many_failures_in_a_short_outage_do_not_disable(app, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, f"http://127.0.0.1:{free_port()}")
    now = utcnow() + dt.timedelta(seconds=1)
    for n in range(delivery.DISABLE_AFTER_FAILURES + 5):
        (delivery_id,) = emit(app, hook)
        deliver(app, hook, delivery_id, now + dt.timedelta(minutes=n))
    (endpoint,) = rows(app, WebhookEndpoint, id=hook.endpoint_id)
    assert endpoint.enabled and endpoint.consecutive_failures == delivery.DISABLE_AFTER_FAILURES + 5


def test_a_refused_address_is_logged_and_nothing_is_sent(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, receiver.url)
    app.config["WEBHOOKS_ALLOW_LOOPBACK"] = False  # checked again at delivery time
    (delivery_id,) = emit(app, hook)
    assert deliver(app, hook, delivery_id, utcnow()) == "failed"
    assert receiver.requests == []
    (attempt,) = rows(app, WebhookAttempt)
    assert attempt.status_code is None and "loopback" in attempt.error.lower()


def test_an_unreadable_secret_is_an_attempt_with_a_clear_error(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, receiver.url)
    (delivery_id,) = emit(app, hook)
    # The server's keys changed and none of them opens the stored secret.
    app.config["ENCRYPTION_KEYS"] = [Fernet.generate_key().decode()]
    assert deliver(app, hook, delivery_id, utcnow()) == "failed"
    assert receiver.requests == []
    (attempt,) = rows(app, WebhookAttempt)
    assert attempt.error == delivery.UNREADABLE_SECRET


def test_the_log_keeps_the_last_hundred_attempts(app, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    monkeypatch.setattr(delivery, "LOG_SIZE", 3)
    hook = add_endpoint(app, f"http://127.0.0.1:{free_port()}")
    now = utcnow() + dt.timedelta(seconds=1)
    for n in range(5):
        (delivery_id,) = emit(app, hook)
        deliver(app, hook, delivery_id, now + dt.timedelta(seconds=n))
    kept = rows(app, WebhookAttempt, endpoint_id=hook.endpoint_id)
    assert len(kept) == 3
    assert min(a.attempted_at for a in kept) == now + dt.timedelta(seconds=2)


def test_the_sweep_enqueues_due_deliveries_of_every_org(app, receiver, monkeypatch):
    queued: list[tuple[uuid.UUID, uuid.UUID]] = []
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda d, o: queued.append((d, o)) or True)
    first, second = add_endpoint(app, receiver.url), add_endpoint(app, receiver.url)
    (a,) = emit(app, first)
    (b,) = emit(app, second)
    queued.clear()
    with app.app_context():
        assert delivery.sweep(utcnow() + dt.timedelta(seconds=1)) == 2
    assert sorted(queued) == sorted([(a, first.org_id), (b, second.org_id)])


def test_redeliver_sends_a_finished_delivery_again(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, receiver.url)
    (delivery_id,) = emit(app, hook)
    now = utcnow()
    deliver(app, hook, delivery_id, now)
    with app.app_context(), tenancy.org_scope(hook.org_id):
        services.redeliver(db.session.get(WebhookDelivery, delivery_id), now)
        db.session.commit()
    assert deliver(app, hook, delivery_id, now) == "succeeded"
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    with app.app_context(), operator_access("test"):
        count = db.session.scalar(select(func.count()).select_from(WebhookAttempt))
    assert count == 2


# ------------------------------------------------------------------------- helpers


def free_port() -> int:
    """Return a loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------- what emits events


def test_a_generation_that_fails_for_good_is_announced_with_its_error(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(app, receiver.url, types=(WebhookEventType.GENERATION_FAILED.value,))
    with app.app_context(), operator_access("test setup"):
        org = db.session.get(Organization, hook.org_id)
        voice = factories.make_voice(org, name="Soon gone")
        generation = factories.make_generation(org, voice)
        db.session.delete(voice)  # deleted before the job could speak it
        db.session.commit()
        generation_id = generation.id
    with app.app_context():
        assert jobs.run_generation(generation_id, hook.org_id).status == "failed"
    (event,) = rows(app, WebhookEvent)
    assert event.event_type == "generation.failed"
    data = event.payload["data"]
    assert (data["id"], data["status"]) == (str(generation_id), "failed")
    assert "was deleted before this could be spoken" in data["error"]


def test_creating_and_deleting_a_voice_are_announced(app, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda *_: True)
    hook = add_endpoint(
        app, receiver.url, types=(VOICE_CREATED, WebhookEventType.VOICE_DELETED.value)
    )
    with app.app_context(), tenancy.org_scope(hook.org_id):
        voice = factories.make_voice(db.session.get(Organization, hook.org_id), name="Temp")
        voice_services.delete_custom_voice(voice)
        db.session.commit()
        voice_id = str(voice.id)
    (event,) = rows(app, WebhookEvent)
    # The voice as it was, for the `voice.deleted` event.
    assert event.event_type == "voice.deleted"
    assert (event.payload["data"]["id"], event.payload["data"]["name"]) == (voice_id, "Temp")
