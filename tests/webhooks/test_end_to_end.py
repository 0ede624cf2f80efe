"""End to end: a generation submitted through the API reaches the org's endpoint, signed.

Everything is real: the public API, the job queue (huey in immediate mode: the speech
job and then the delivery job run as soon as they are enqueued), eSpeak, the outbox,
the transport and a loopback receiver that verifies with the `standardwebhooks`
package. Then the receiver goes away: the next delivery fails, is retried by the
sweep, and arrives once the receiver is back on its port.
"""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from sqlalchemy import select
from standardwebhooks import Webhook

from dashboard.extensions import db
from dashboard.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEventType,
    utcnow,
)
from dashboard.tenancy.operator import operator_access
from dashboard.webhooks import delivery, services
from tests import factories
from tests.databases import both_databases
from tests.webhooks.receiver import webhook_receiver

SUCCEEDED = WebhookEventType.GENERATION_SUCCEEDED.value
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def app(app: Flask) -> Flask:
    app.config["WEBHOOKS_ALLOW_LOOPBACK"] = True
    return app


def submit(client, secret: str, voice_id, text: str):
    response = client.post(
        "/api/v1/generations",
        json={"text": text, "voice_id": str(voice_id)},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def log_of(app: Flask, endpoint_id) -> list[WebhookAttempt]:
    with app.app_context(), operator_access("test reads the delivery log"):
        found = db.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.endpoint_id == endpoint_id)
            .order_by(WebhookAttempt.attempted_at)
        ).all()
        db.session.expunge_all()
        return list(found)


@both_databases
def test_a_generation_is_announced_once_and_retried_until_the_receiver_is_back(app: Flask, client):
    with webhook_receiver() as receiver:
        with app.app_context(), operator_access("test setup"):
            org = factories.make_org(slug="hooked")
            _key, secret = factories.make_api_key(org)
            voice = factories.make_voice(org, name="Narrator")
            made = services.create_endpoint(org.id, None, receiver.url, "CI", [SUCCEEDED])
            db.session.commit()
            voice_id, endpoint_id = voice.id, made.endpoint.id
        signing_secret = made.secret
        port = receiver.port

        first = submit(client, secret, voice_id, "Hello from the webhook test.")
        receiver.wait_for(1)
        (request,) = receiver.requests  # exactly one delivery
        payload = Webhook(signing_secret).verify(request.body, request.headers)
        assert payload["type"] == SUCCEEDED
        assert payload["data"]["id"] == first["id"]
        assert payload["data"]["status"] == "succeeded"
        # The same JSON as the API returns for the generation.
        shown = client.get(
            f"/api/v1/generations/{first['id']}", headers={"Authorization": f"Bearer {secret}"}
        ).get_json()
        assert payload["data"] == shown

    # The receiver is gone: the next delivery fails and waits for its retry.
    second = submit(client, secret, voice_id, "Nobody is listening now.")
    with app.app_context(), operator_access("test reads the outbox"):
        (pending,) = db.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.status == DeliveryStatus.PENDING)
        ).all()
        assert pending.next_attempt_at > utcnow()  # after a backoff delay
    attempts = log_of(app, endpoint_id)
    assert [a.ok for a in attempts] == [True, False]
    assert "refused" in attempts[-1].error.lower()

    with webhook_receiver(port=port) as back:
        # Not due yet: the sweep leaves it alone.
        with app.app_context():
            assert delivery.sweep() == 0
        # The backoff has passed (time moved on, not waited for): the sweep sends it.
        with app.app_context(), operator_access("test: the retry is due"):
            db.session.get(WebhookDelivery, pending.id).next_attempt_at = utcnow() - SECOND
            db.session.commit()
        with app.app_context():
            assert delivery.sweep() == 1
        back.wait_for(1)
        (request,) = back.requests
        payload = Webhook(signing_secret).verify(request.body, request.headers)
        assert payload["data"]["id"] == second["id"]

    attempts = log_of(app, endpoint_id)
    assert [(a.ok, a.event_type) for a in attempts] == [
        (True, SUCCEEDED),
        (False, SUCCEEDED),
        (True, SUCCEEDED),
    ]
    assert attempts[-1].status_code == 200 and attempts[-1].delivery_id == pending.id
