"""Webhook endpoints through the API: added with their secret shown once, listed newest
first by cursor, shown and deleted; refusals name the field and store nothing; another
org's endpoint is 404; everything needs `webhooks:manage`."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from flask import Flask
from sqlalchemy import func, select
from standardwebhooks import Webhook

from dashboard import tenancy
from dashboard.extensions import db
from dashboard.models import ApiScope, Organization, WebhookEndpoint, WebhookEventType, utcnow
from dashboard.tenancy.operator import operator_access
from dashboard.webhooks import delivery, services, signing
from tests.api.conftest import Tenant, bearer
from tests.factories import make_membership, make_user

PROBLEM = "application/problem+json"
URL = "https://hooks.example.com/voxboard"
EVENT_TYPES = [t.value for t in WebhookEventType]
SHOWN = {
    "id",
    "url",
    "description",
    "event_types",
    "enabled",
    "disabled_reason",
    "consecutive_failures",
    "created_at",
}


def make_webhook(
    app: Flask,
    tenant: Tenant,
    url: str = URL,
    event_types: tuple[str, ...] = ("generation.failed",),
) -> uuid.UUID:
    """Add an endpoint to the tenant's org through the service the API calls; return its id.

    By default it hears of failed generations only, which no API call makes (workers do),
    so the other tests' calls write no events.
    """
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        new = services.create_endpoint(tenant.org_id, None, url, "", event_types)
        db.session.commit()
        return new.endpoint.id


def stored_endpoints(app: Flask) -> int:
    with app.app_context(), operator_access("test check spans organisations"):
        return db.session.scalar(select(func.count()).select_from(WebhookEndpoint))


def test_an_endpoint_is_added_listed_shown_and_deleted(app: Flask, client, tenant, scoped_key):
    with app.app_context():
        user = make_user()
        make_membership(user, db.session.get(Organization, tenant.org_id))
        db.session.commit()
        user_id = user.id
    h = bearer(scoped_key(ApiScope.WEBHOOKS_MANAGE, created_by=user_id))
    created = client.post(
        "/api/v1/webhooks",
        json={
            "url": f"  {URL}  ",
            "description": " Narration finished ",
            "event_types": ["voice.created", "generation.succeeded", "voice.created"],
        },
        headers=h,
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert set(body) == SHOWN | {"secret"}
    assert body["secret"].startswith(signing.SECRET_PREFIX)
    assert created.headers["Location"] == f"/api/v1/webhooks/{body['id']}"
    assert body["url"] == URL and body["description"] == "Narration finished"
    assert body["event_types"] == ["generation.succeeded", "voice.created"]  # canonical order
    assert body["enabled"] is True and body["disabled_reason"] is None
    assert body["consecutive_failures"] == 0
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        row = db.session.get(WebhookEndpoint, uuid.UUID(body["id"]))
        assert row.created_by == user_id  # the key's creator
        assert body["secret"] not in row.secret  # encrypted at rest
    shown = {k: v for k, v in body.items() if k != "secret"}

    listed = client.get("/api/v1/webhooks", headers=h)
    assert listed.get_json() == {"data": [shown], "next_cursor": None}
    one = client.get(created.headers["Location"], headers=h)
    assert one.status_code == 200 and one.get_json() == shown
    for answer in (listed, one):
        assert body["secret"] not in answer.get_data(as_text=True)

    deleted = client.delete(created.headers["Location"], headers=h)
    assert deleted.status_code == 204 and deleted.data == b""
    gone = client.get(created.headers["Location"], headers=h)
    assert gone.status_code == 404 and gone.content_type == PROBLEM
    assert client.get("/api/v1/webhooks", headers=h).get_json()["data"] == []
    assert stored_endpoints(app) == 0


def test_an_endpoint_added_with_a_key_nobody_made_has_no_creator(app: Flask, client, tenant):
    created = client.post(
        "/api/v1/webhooks", json={"url": URL, "event_types": EVENT_TYPES}, headers=tenant.headers
    )
    assert created.status_code == 201
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        row = db.session.get(WebhookEndpoint, uuid.UUID(created.get_json()["id"]))
        assert row.created_by is None and row.description == ""


def test_the_answered_secret_verifies_what_deliveries_are_signed_with(app: Flask, client, tenant):
    created = client.post(
        "/api/v1/webhooks",
        json={"url": URL, "event_types": ["generation.failed"]},
        headers=tenant.headers,
    ).get_json()
    now = utcnow()
    payload = json.dumps({"type": "webhook.test", "timestamp": now.isoformat(), "data": {}})
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        endpoint = db.session.get(WebhookEndpoint, uuid.UUID(created["id"]))
        headers = signing.signed_headers(
            "msg_1", now, payload.encode(), delivery.signing_secrets(endpoint, now)
        )
    # What a receiver does with the secret it was given (docs/api.md, "Webhooks").
    assert Webhook(created["secret"]).verify(payload, headers) == json.loads(payload)


BAD_BODIES = [
    ({"url": "ftp://hooks.example.com/x", "event_types": EVENT_TYPES}, ["url"]),
    ({"url": "https://user:secret@hooks.example.com/x", "event_types": EVENT_TYPES}, ["url"]),
    ({"url": "not a url", "event_types": EVENT_TYPES}, ["url"]),
    ({"url": "   ", "event_types": EVENT_TYPES}, ["url"]),
    ({"url": "https://hooks.example.com/" + "x" * 2000, "event_types": EVENT_TYPES}, ["url"]),
    ({"event_types": EVENT_TYPES}, ["url"]),
    ({"url": URL}, ["event_types"]),
    ({"url": URL, "event_types": []}, ["event_types"]),
    ({"url": URL, "event_types": ["voice.renamed"]}, ["event_types.0"]),
    ({"url": URL, "event_types": "voice.created"}, ["event_types"]),
    ({"url": URL, "event_types": EVENT_TYPES, "description": "d" * 201}, ["description"]),
    ({"url": URL, "event_types": EVENT_TYPES, "description": "a\x00b"}, ["description"]),
    ({"url": URL, "event_types": EVENT_TYPES, "secret": "whsec_mine"}, ["secret"]),
]


@pytest.mark.parametrize(("body", "paths"), BAD_BODIES)
def test_refusals_name_the_field_and_store_nothing(app: Flask, client, tenant, body, paths):
    refused = client.post("/api/v1/webhooks", json=body, headers=tenant.headers)
    assert refused.status_code == 422, refused.get_json()
    assert refused.content_type == PROBLEM
    problem = refused.get_json()
    assert problem["type"].endswith("#problem-validation")
    assert [e["path"] for e in problem["errors"]] == paths
    assert {e["in"] for e in problem["errors"]} == {"body"}
    assert stored_endpoints(app) == 0


def test_production_takes_https_urls_only(app: Flask, client, tenant):
    app.config["ENV_NAME"] = "production"
    refused = client.post(
        "/api/v1/webhooks",
        json={"url": "http://hooks.example.com/x", "event_types": EVENT_TYPES},
        headers=tenant.headers,
    )
    assert refused.status_code == 422
    assert [e["path"] for e in refused.get_json()["errors"]] == ["url"]
    assert "https" in refused.get_json()["detail"]
    assert stored_endpoints(app) == 0
    accepted = client.post(
        "/api/v1/webhooks", json={"url": URL, "event_types": EVENT_TYPES}, headers=tenant.headers
    )
    assert accepted.status_code == 201


def test_another_orgs_endpoint_is_404_to_show_and_to_delete(app: Flask, client, tenants):
    a, b = tenants
    theirs = make_webhook(app, a)
    for method in ("GET", "DELETE"):
        response = client.open(f"/api/v1/webhooks/{theirs}", method=method, headers=b.headers)
        assert response.status_code == 404 and response.content_type == PROBLEM
        assert str(theirs) in response.get_json()["detail"]
    assert client.get("/api/v1/webhooks", headers=b.headers).get_json()["data"] == []
    assert client.get(f"/api/v1/webhooks/{theirs}", headers=a.headers).status_code == 200


def test_every_webhook_call_needs_the_webhooks_manage_scope(app: Flask, client, tenant, scoped_key):
    own = make_webhook(app, tenant)
    others = bearer(scoped_key(*[s for s in ApiScope if s is not ApiScope.WEBHOOKS_MANAGE]))
    calls = [
        ("GET", "/api/v1/webhooks", None),
        ("GET", f"/api/v1/webhooks/{own}", None),
        ("POST", "/api/v1/webhooks", {"url": URL, "event_types": EVENT_TYPES}),
        ("DELETE", f"/api/v1/webhooks/{own}", None),
    ]
    for method, url, body in calls:
        refused = client.open(url, method=method, json=body, headers=others)
        assert refused.status_code == 403, (method, url)
        problem = refused.get_json()
        assert problem["type"].endswith("#problem-missing-scope")
        assert "“webhooks:manage” scope" in problem["detail"]
    assert stored_endpoints(app) == 1


def test_the_list_pages_newest_first_by_cursor(app: Flask, client, tenant):
    made = [make_webhook(app, tenant, f"https://hooks.example.com/{n}") for n in range(5)]
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        # Two share a timestamp: the id breaks the tie, so neither is skipped or repeated.
        same = utcnow() - dt.timedelta(hours=1)
        for endpoint_id in made[1:3]:
            db.session.get(WebhookEndpoint, endpoint_id).created_at = same
        db.session.commit()
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/webhooks", query_string=query, headers=tenant.headers)
        page = body.get_json()
        seen += [uuid.UUID(e["id"]) for e in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert seen == [made[4], made[3], made[0], *sorted(made[1:3], reverse=True)]


@pytest.mark.parametrize(
    ("query", "status"),
    [({"cursor": "not-a-cursor!"}, 400), ({"limit": 0}, 422), ({"limit": 101}, 422)],
)
def test_the_list_refuses_bad_cursors_and_limits(client, tenant, query, status):
    refused = client.get("/api/v1/webhooks", query_string=query, headers=tenant.headers)
    assert refused.status_code == status and refused.content_type == PROBLEM
    if status == 400:
        assert "Start again without `cursor`" in refused.get_json()["detail"]
