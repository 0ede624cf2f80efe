"""CSRF: with protection on (as in production), every state-changing route refuses a
request without a valid token; the token htmx sends in `X-CSRFToken` is accepted."""

from __future__ import annotations

import re

import pytest
from werkzeug.routing import Rule

from dashboard import tenancy
from dashboard.api import API_BLUEPRINT_NAMES
from dashboard.extensions import db
from dashboard.models import MemberRole
from tests import factories
from tests.http import login
from tests.tenant_world import OBJECT_ARGS

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def csrf_app(app):
    app.config["WTF_CSRF_ENABLED"] = True
    return app


@pytest.fixture
def owner(csrf_app):
    with csrf_app.app_context(), tenancy.all_tenants("test setup"):
        user = factories.make_user()
        factories.make_membership(user, factories.make_org(slug="acme"), MemberRole.OWNER)
        db.session.commit()
        return factories.detach(user)


def is_api(rule: Rule) -> bool:
    return rule.endpoint.partition(".")[0] in API_BLUEPRINT_NAMES


def write_rules(app, api: bool = False) -> list[tuple[Rule, str]]:
    """State-changing routes of the cookie-authenticated site (or, `api`, of the API)."""
    found = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if is_api(rule) == api
        for method in sorted((rule.methods or set()) & WRITE_METHODS)
    ]
    assert found, "no state-changing routes found"
    return found


def url_for_rule(app, rule: Rule) -> str:
    import uuid

    from flask import url_for

    values = {}
    for arg in rule.arguments:
        if arg == "org_slug":
            values[arg] = "acme"
        elif arg in OBJECT_ARGS:
            values[arg] = uuid.uuid4()
        else:
            values[arg] = "x" * 12
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def test_every_write_route_refuses_a_missing_token(csrf_app, client, owner):
    login(client, owner)
    for rule, method in write_rules(csrf_app):
        url = url_for_rule(csrf_app, rule)
        response = client.open(url, method=method, data={"anything": "1"})
        assert response.status_code == 400, f"{method} {url} accepted a request without a token"
        assert "expired or was sent from another site" in response.get_data(as_text=True)


def test_every_write_route_refuses_a_forged_token(csrf_app, client, owner):
    login(client, owner)
    for rule, method in write_rules(csrf_app):
        url = url_for_rule(csrf_app, rule)
        response = client.open(url, method=method, headers={"X-CSRFToken": "forged"})
        assert response.status_code == 400, f"{method} {url}"


def test_api_writes_need_no_token_because_a_session_cookie_never_gets_in(csrf_app, client, owner):
    """The API is exempt from CSRF on purpose: it reads no cookie, only a bearer key."""
    login(client, owner)
    for rule, method in write_rules(csrf_app, api=True):
        url = url_for_rule(csrf_app, rule)
        response = client.open(url, method=method, json={"text": "hi"})
        assert response.status_code == 401, f"{method} {url}"
        assert response.content_type == "application/problem+json"


def page_token(client, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)


def test_token_in_htmx_header_is_accepted(csrf_app, client, owner):
    login(client, owner)
    token = page_token(client, "/o/acme/")
    response = client.post("/logout", headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/login"


def test_login_form_carries_a_working_token(csrf_app, client):
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post(
        "/login", data={"csrf_token": token, "email": "x@example.com", "password": "whatever!!"}
    )
    assert response.status_code == 422  # got past CSRF to the credentials check
