"""The API area's fixtures: two organisations, each with a key, voices and generations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, Response, request, request_finished
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from dashboard.api.problems import MEDIA_TYPE as PROBLEM
from dashboard.api.reference import document
from dashboard.extensions import db
from dashboard.models import ApiScope, Organization
from dashboard.tenancy.operator import operator_access
from tests.factories import make_api_key, make_generation, make_org, make_voice


@dataclass
class Tenant:
    org_id: Any
    slug: str
    key_id: Any
    secret: str
    voice_id: Any
    generation_id: Any

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.secret)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def make_tenant(name: str, **key: Any) -> Tenant:
    org = make_org(slug=name, name=name.capitalize())
    api_key, secret = make_api_key(org, **key)
    voice = make_voice(org, name=f"{name} narrator")
    generation = make_generation(org, voice, text=f"Hello from {name}.")
    return Tenant(org.id, org.slug, api_key.id, secret, voice.id, generation.id)


@pytest.fixture
def tenants(app: Flask) -> tuple[Tenant, Tenant]:
    """Org A and org B, each with a key of every scope, a custom voice and a generation."""
    with app.app_context(), operator_access("test setup spans organisations"):
        a, b = make_tenant("alpha"), make_tenant("bravo")
        db.session.commit()
    return a, b


@pytest.fixture
def tenant(tenants: tuple[Tenant, Tenant]) -> Tenant:
    return tenants[0]


@pytest.fixture
def scoped_key(app: Flask, tenant: Tenant):
    """Return a function making another key of org A with only the given scopes."""

    def make(*scopes: ApiScope, **kw: Any) -> str:
        with app.app_context(), operator_access("test setup"):
            org = db.session.get(Organization, tenant.org_id)
            _key, secret = make_api_key(org, scopes=list(scopes), **kw)
            db.session.commit()
        return secret

    return make


# ------------------------------------------------- every response against the document


@pytest.fixture(autouse=True)
def responses_match_the_document(app: Flask) -> Iterator[list[str]]:
    """Check every API response of the test against the app's own OpenAPI document.

    Each response is validated (status, content type, headers, body) by openapi-core
    while its request is still current; a streamed body (audio) is checked without
    reading it. The test fails at teardown on any mismatch.
    """
    with app.test_request_context():
        config = Config(extra_media_type_deserializers={PROBLEM: json.loads})
        openapi = OpenAPI.from_dict(document(), config=config)
    problems: list[str] = []
    checked: list[str] = []

    def check(sender: Flask, response: Response, **_extra: Any) -> None:
        if not request.path.startswith("/api/v1/") or request.path == "/api/v1/openapi.json":
            return
        if request.url_rule is None or request.method in ("OPTIONS", "HEAD"):
            return  # no such path, or HTTP's own methods: the document describes neither
        if response.is_streamed or response.direct_passthrough:
            # A copy of the headers: Response() would adopt (and change) the object itself.
            copy = Response(b"", response.status_code, headers=list(response.headers.items()))
        else:
            copy = response
        # The request as sent but without its body, which a response check never needs
        # (and which a refused, oversized one can't give).
        bodiless = Request(
            EnvironBuilder(
                path=request.path,
                method=request.method,
                query_string=request.query_string.decode("latin-1"),
                headers=[(k, v) for k, v in request.headers if k.lower() != "content-length"],
            ).get_environ()
        )
        try:
            openapi.validate_response(
                WerkzeugOpenAPIRequest(bodiless), WerkzeugOpenAPIResponse(copy)
            )
        except Exception as exc:  # noqa: BLE001 — every kind of mismatch is a failure
            detail = getattr(exc, "__cause__", None) or exc
            problems.append(f"{request.method} {request.full_path} → {response.status}: {detail!r}")
        checked.append(f"{request.method} {request.path} {response.status_code}")

    request_finished.connect(check, app)
    try:
        yield checked
    finally:
        request_finished.disconnect(check, app)
    assert not problems, "responses that break the OpenAPI document:\n" + "\n".join(problems)
