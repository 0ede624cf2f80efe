"""Who gets into the API: bearer keys only, scopes per endpoint, limits per key, counters."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from dashboard import tenancy
from dashboard.api import API_BLUEPRINT_NAMES, counters
from dashboard.api.reference import document
from dashboard.api.services import revoke_key
from dashboard.extensions import db, limiter
from dashboard.models import ApiKey, ApiKeyDay, ApiScope, MemberRole, Organization, utcnow
from dashboard.tenancy.operator import operator_access
from tests.api.conftest import Tenant, bearer
from tests.api.test_api_webhooks import make_webhook
from tests.databases import web_role
from tests.factories import detach, make_membership, make_user
from tests.http import login

PROBLEM = "application/problem+json"


def api_endpoints(app: Flask) -> list[tuple[str, str, str]]:
    """Every (method, rule, endpoint) of the API blueprints."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.partition(".")[0] in API_BLUEPRINT_NAMES:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((method, rule.rule, rule.endpoint))
    return found


def concrete(rule: str, tenant: Tenant, **ids: Any) -> str:
    """Fill a rule's ids in: the tenant's voice and generation, and any of `ids`."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(ids[name] if name in ids else getattr(tenant, name))

    return re.sub(r"<uuid:(\w+)>", value, rule)


def assert_invalid_key(response, *words: str) -> None:
    assert response.status_code == 401
    assert response.content_type == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    problem = response.get_json()
    assert problem["type"].endswith("#problem-invalid-key")
    for word in words:
        assert word in problem["detail"]


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (None, ["has no API key", "Bearer vxb_"]),
        ("Basic dXNlcjpwYXNz", ["Bearer scheme"]),
        ("Bearer", ["doesn't hold a Voxboard API key"]),
        ("Bearer vxb_short", ["47 characters"]),
        ("Bearer " + "vxb_" + "A" * 42 + "!", ["doesn't hold"]),
        ("Bearer vxb_" + "A" * 43, ["isn't known"]),
    ],
)
def test_a_missing_malformed_or_unknown_key_is_401(client, tenant, header, words):
    headers = {} if header is None else {"Authorization": header}
    assert_invalid_key(client.get("/api/v1/voices", headers=headers), *words)


def test_every_api_endpoint_needs_a_key(app: Flask, client, tenant):
    endpoints = api_endpoints(app)
    assert len(endpoints) >= 8
    endpoint_id = make_webhook(app, tenant)
    for method, rule, _endpoint in endpoints:
        response = client.open(concrete(rule, tenant, endpoint_id=endpoint_id), method=method)
        assert_invalid_key(response)


def test_a_revoked_key_is_refused_from_its_next_request(app: Flask, client, tenant):
    assert client.get("/api/v1/voices", headers=tenant.headers).status_code == 200
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        revoke_key(db.session.get(ApiKey, tenant.key_id), None)
        db.session.commit()
    assert_invalid_key(client.get("/api/v1/voices", headers=tenant.headers), "revoked")


def test_an_expired_key_is_refused(app: Flask, client, scoped_key):
    secret = scoped_key(ApiScope.VOICES_READ, expires_at=utcnow() - dt.timedelta(seconds=1))
    assert_invalid_key(client.get("/api/v1/voices", headers=bearer(secret)), "expired on")


def test_a_key_of_a_deleted_org_is_refused(app: Flask, client, tenant):
    with app.app_context():
        db.session.delete(db.session.get(Organization, tenant.org_id))
        db.session.commit()
    assert_invalid_key(client.get("/api/v1/voices", headers=tenant.headers), "isn't known")


def test_a_session_cookie_is_no_key_and_a_key_is_no_session(app: Flask, client, tenant):
    with app.app_context():
        user = make_user()
        make_membership(user, db.session.get(Organization, tenant.org_id), MemberRole.OWNER)
        db.session.commit()
        user = detach(user)
    login(client, user)
    # Logged in, but no key: the API doesn't read the cookie.
    response = client.get("/api/v1/voices")
    assert_invalid_key(response)
    assert "Set-Cookie" not in response.headers
    # A key on a dashboard page is not a login.
    client.delete_cookie("session")
    page = client.get(f"/o/{tenant.slug}/voices/", headers=tenant.headers)
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_state_changes_need_no_csrf_token(app: Flask, client, tenant):
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.delete(f"/api/v1/generations/{tenant.generation_id}", headers=tenant.headers)
    assert response.status_code == 204


SCOPE_OF = {
    "api_voices.list_voices": ApiScope.VOICES_READ,
    "api_voices.get_voice": ApiScope.VOICES_READ,
    "api_voices.audio": ApiScope.VOICES_READ,
    "api_voices.create_voice": ApiScope.VOICES_WRITE,
    "api_voices.delete_voice": ApiScope.VOICES_WRITE,
    "api_generations.create_generation": ApiScope.GENERATIONS_WRITE,
    "api_generations.list_generations": ApiScope.GENERATIONS_READ,
    "api_generations.get_generation": ApiScope.GENERATIONS_READ,
    "api_generations.audio": ApiScope.GENERATIONS_READ,
    "api_generations.delete_generation": ApiScope.GENERATIONS_WRITE,
    "api_usage.usage": ApiScope.GENERATIONS_READ,
    "api_webhooks.list_webhooks": ApiScope.WEBHOOKS_MANAGE,
    "api_webhooks.get_webhook": ApiScope.WEBHOOKS_MANAGE,
    "api_webhooks.create_webhook": ApiScope.WEBHOOKS_MANAGE,
    "api_webhooks.delete_webhook": ApiScope.WEBHOOKS_MANAGE,
}


def test_every_endpoint_declares_the_scope_it_needs(app: Flask):
    declared = {}
    for _method, _rule, endpoint in api_endpoints(app):
        declared[endpoint] = getattr(app.view_functions[endpoint], "required_scope", None)
    assert declared == SCOPE_OF
    # The document says the same, per operation (OpenAPI 3.1 scopes on a bearer scheme).
    with app.test_request_context():
        paths = document()["paths"]
    for method, rule, endpoint in api_endpoints(app):
        path = re.sub(r"<uuid:(\w+)>", r"{\1}", rule)
        operation = paths[path][method.lower()]
        assert operation["security"] == [{"apiKey": [SCOPE_OF[endpoint].value]}], endpoint


# The body of a POST the scope matrix sends where a generation's wouldn't do.
POST_BODIES = {
    "api_webhooks.create_webhook": {
        "json": {"url": "https://hooks.example.com/matrix", "event_types": ["generation.failed"]}
    },
}


def test_scope_matrix_each_endpoint_refuses_every_other_scope(
    app: Flask, client, tenant, scoped_key
):
    """A key with every scope but the one an endpoint needs gets 403 naming it."""
    secrets = {scope: scoped_key(*[s for s in ApiScope if s is not scope]) for scope in ApiScope}
    only = {scope: scoped_key(scope) for scope in ApiScope}
    endpoint_id = make_webhook(app, tenant)
    for method, rule, endpoint in api_endpoints(app):
        needed = SCOPE_OF[endpoint]
        url = concrete(rule, tenant, endpoint_id=endpoint_id)
        body = POST_BODIES.get(endpoint, {})
        if method == "POST" and not body:
            body = {"json": {"text": "hi", "voice_id": str(tenant.voice_id)}}
        refused = client.open(url, method=method, headers=bearer(secrets[needed]), **body)
        assert refused.status_code == 403, (method, url)
        problem = refused.get_json()
        assert problem["type"].endswith("#problem-missing-scope")
        assert f"“{needed.value}” scope" in problem["detail"]
        allowed = client.open(url, method=method, headers=bearer(only[needed]), **body)
        assert allowed.status_code not in (401, 403), (method, url, allowed.get_json())


def test_last_used_moves_at_most_once_a_minute(app: Flask, client, tenant):
    def last_used():
        with app.app_context(), tenancy.org_scope(tenant.org_id):
            key = db.session.get(ApiKey, tenant.key_id)
            return key.last_used_at, key.last_used_ip

    assert last_used() == (None, None)
    client.get("/api/v1/voices", headers=tenant.headers, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    first, address = last_used()
    assert first is not None and address == "10.1.2.3"
    client.get("/api/v1/voices", headers=tenant.headers, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert last_used() == (first, "10.1.2.3")  # within the minute: not written again
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        db.session.get(ApiKey, tenant.key_id).last_used_at = first - dt.timedelta(minutes=2)
        db.session.commit()
    client.get("/api/v1/voices", headers=tenant.headers, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    later, address = last_used()
    assert later > first and address == "10.9.9.9"


@web_role
def test_each_request_is_counted_on_its_keys_day(app: Flask, client, tenant):
    client.get("/api/v1/voices", headers=tenant.headers)
    client.get("/api/v1/generations/00000000-0000-0000-0000-000000000000", headers=tenant.headers)
    created = client.post(
        "/api/v1/generations",
        json={"text": "Twelve chars", "voice_id": str(tenant.voice_id)},
        headers=tenant.headers,
    )
    assert created.status_code == 202
    client.get("/api/v1/voices")  # no key: nobody to count it against
    with app.app_context(), operator_access("test check"):
        days = db.session.scalars(select(ApiKeyDay)).all()
    assert [(d.api_key_id, d.day, d.requests, d.errors, d.characters) for d in days] == [
        (tenant.key_id, utcnow().date(), 3, 1, 12)
    ]


@pytest.fixture
def limited(app: Flask):
    app.config.update(RATELIMIT_ENABLED=True, API_RATE_LIMIT="3 per minute")
    limiter.init_app(app)
    yield
    limiter.reset()


def test_the_rate_limit_counts_per_key_across_endpoints(limited, client, tenants):
    a, b = tenants
    seen = []
    for url in ("/api/v1/voices", "/api/v1/usage", "/api/v1/generations"):
        response = client.get(url, headers=a.headers)
        assert response.status_code == 200
        seen.append(response.headers["RateLimit-Remaining"])
        assert response.headers["RateLimit-Limit"] == "3"
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
    assert seen == ["2", "1", "0"]
    refused = client.get("/api/v1/voices", headers=a.headers)
    assert refused.status_code == 429 and refused.content_type == PROBLEM
    assert refused.get_json()["type"].endswith("#problem-rate-limited")
    assert int(refused.headers["Retry-After"]) > 0
    # Another key (of another org) has its own budget.
    assert client.get("/api/v1/voices", headers=b.headers).status_code == 200


@web_role
def test_counters_wait_for_their_interval_and_cover_every_org(app: Flask, client, tenants):
    """Counts are added up in the process and written once the interval is over, each
    org's in its own scope (on PostgreSQL row-level security checks every row)."""
    a, b = tenants
    with app.app_context():
        counters.add(a.key_id, a.org_id, utcnow().date(), failed=False, characters=0)
        counters.take_due()  # the interval starts now (and what was pending is dropped)
    app.config["API_COUNTER_FLUSH_SECONDS"] = 3600
    for tenant in (a, b, a):
        assert client.get("/api/v1/voices", headers=tenant.headers).status_code == 200

    def days():
        with app.app_context(), operator_access("test check"):
            return {(d.org_id, d.requests) for d in db.session.scalars(select(ApiKeyDay))}

    assert days() == set()  # not yet written
    app.config["API_COUNTER_FLUSH_SECONDS"] = 0
    client.get("/api/v1/usage", headers=b.headers)
    assert days() == {(a.org_id, 2), (b.org_id, 2)}
