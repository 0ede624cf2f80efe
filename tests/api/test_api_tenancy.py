"""The API's tenant walls: another org's key never reaches an org's objects.

Every API rule (read from the URL map, so a new endpoint joins by itself) is called
with org B's key and org A's ids in its path, and the endpoints that take ids in the
body or the query are called with A's ids there: 404 every time, nothing of A's in
the answer, nothing changed. On SQLite and on PostgreSQL as the web role; on
PostgreSQL also with the application filter switched off, so row-level security
alone keeps the orgs apart.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from dashboard.extensions import db
from dashboard.models import Generation, UsageEntry, Voice, WebhookEndpoint
from dashboard.tenancy import scope
from dashboard.tenancy.operator import operator_access
from tests.api.conftest import Tenant
from tests.api.test_api_auth import api_endpoints, concrete
from tests.api.test_api_webhooks import make_webhook
from tests.databases import WEB_ROLE_BACKENDS

web_role = pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
web_role_on_postgresql = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql-app", marks=pytest.mark.postgres)], indirect=True
)

# Ids an endpoint reads from its body, as A's: the request names A's object there.
BODY = {
    "api_generations.create_generation": lambda a: {
        "json": {"text": "Not yours.", "voice_id": str(a.voice_id)}
    }
}
# Ids an endpoint reads from its query string, and which of A's objects to put there.
QUERY_IDS = {"api_generations.list_generations": {"voice_id": "voice_id"}}


def counts(app: Flask) -> tuple[int, ...]:
    with app.app_context(), operator_access("test check spans organisations"):
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Voice, Generation, UsageEntry, WebhookEndpoint)
        )


def assert_not_found(response, a: Tenant) -> None:
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body = response.get_data(as_text=True)
    assert "alpha" not in body.lower() and "Hello from alpha" not in body


@web_role
def test_another_orgs_ids_in_paths_bodies_and_filters_are_404(app: Flask, client, tenants):
    a, b = tenants
    a_webhook = make_webhook(app, a, "https://alpha.example.com/hooks")
    make_webhook(app, b, "https://bravo.example.com/hooks")
    before = counts(app)
    checked, rules_with_ids = 0, set()
    for method, rule, endpoint in api_endpoints(app):
        if "<" in rule:
            extra = BODY.get(endpoint, lambda _a: {})(b)  # B's own voice: only the path is A's
            path = concrete(rule, a, endpoint_id=a_webhook)
            assert_not_found(client.open(path, method=method, headers=b.headers, **extra), a)
            checked += 1
            rules_with_ids.add(rule)
        if endpoint in BODY:
            assert_not_found(
                client.open(rule, method=method, headers=b.headers, **BODY[endpoint](a)), a
            )
            checked += 1
        for param, attribute in QUERY_IDS.get(endpoint, {}).items():
            query = {param: str(getattr(a, attribute))}
            assert_not_found(
                client.open(rule, method=method, headers=b.headers, query_string=query), a
            )
            checked += 1
    assert checked >= 9
    assert {"/api/v1/webhooks/<uuid:endpoint_id>"} <= rules_with_ids
    assert counts(app) == before


@web_role
def test_lists_show_only_the_keys_own_org(app: Flask, client, tenants):
    a, b = tenants
    make_webhook(app, a, "https://alpha.example.com/hooks")
    b_webhook = make_webhook(app, b, "https://bravo.example.com/hooks")
    voices = client.get("/api/v1/voices", headers=b.headers).get_json()["data"]
    assert [v["name"] for v in voices] == ["bravo narrator"]
    generations = client.get("/api/v1/generations", headers=b.headers).get_json()["data"]
    assert [g["id"] for g in generations] == [str(b.generation_id)]
    usage = client.get("/api/v1/usage", headers=b.headers).get_json()
    assert usage["organization"]["used"] == len("Hello from bravo.")
    webhooks = client.get("/api/v1/webhooks", headers=b.headers).get_json()["data"]
    assert [w["id"] for w in webhooks] == [str(b_webhook)]


@pytest.fixture
def without_the_application_filter() -> Iterator[None]:
    """Switch the application's tenant filter off: row-level security stands alone."""
    event.remove(Session, "do_orm_execute", scope._add_tenant_criteria)
    try:
        yield
    finally:
        scope.install_tenant_filter()


@web_role_on_postgresql
def test_row_level_security_alone_keeps_api_keys_apart(
    app: Flask, client, tenants, without_the_application_filter
):
    a, b = tenants
    a_webhook = make_webhook(app, a, "https://alpha.example.com/hooks")
    for path in (
        f"/api/v1/voices/{a.voice_id}",
        f"/api/v1/generations/{a.generation_id}",
        f"/api/v1/webhooks/{a_webhook}",
    ):
        assert client.get(path, headers=b.headers).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{a_webhook}", headers=b.headers).status_code == 404
    assert client.get("/api/v1/webhooks", headers=b.headers).get_json()["data"] == []
    generations = client.get("/api/v1/generations", headers=b.headers).get_json()["data"]
    assert [g["id"] for g in generations] == [str(b.generation_id)]
    voices = client.get("/api/v1/voices", headers=b.headers).get_json()["data"]
    assert [v["name"] for v in voices] == ["bravo narrator"]
    # A's own key still works: the presented key's row is readable before any org is.
    assert client.get(f"/api/v1/voices/{a.voice_id}", headers=a.headers).status_code == 200
    assert client.get(f"/api/v1/webhooks/{a_webhook}", headers=a.headers).status_code == 200
