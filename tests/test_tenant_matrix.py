"""The cross-tenant matrix: every route under /o/<org_slug>/ answers 404 to other orgs.

Routes are read from the app's URL map, so a route added later joins the matrix by
itself; a route whose URL names an object type this file doesn't know fails loudly
until it is taught here (OBJECT_ARGS).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest
from flask import Flask
from sqlalchemy import text
from werkzeug.routing import Rule

from dashboard import rls
from dashboard.extensions import db
from dashboard.models import Invitation, MemberRole
from tests.conftest import WEB_ROLE_BACKENDS, login
from tests.factories import (
    detach,
    make_generation,
    make_membership,
    make_org,
    make_user,
    make_voice,
)

ROLES = [MemberRole.OWNER, MemberRole.ADMIN, MemberRole.MEMBER]
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# URL argument → the kind of object it names (keys of the `world` fixture's objects).
OBJECT_ARGS = {
    "voice_id": "voice",
    "generation_id": "generation",
    "membership_id": "membership",
    "member_id": "membership",
    "invitation_id": "invitation",
}


def org_rules(app: Flask) -> list[Rule]:
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/o/<org_slug>")]
    assert rules, "no tenant routes found; the matrix would prove nothing"
    return sorted(rules, key=lambda r: (r.rule, r.endpoint))


def methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


@pytest.fixture
def world(app):
    """Orgs A and B, each with an owner, an admin, a member and one object of each kind."""
    data: dict[str, dict] = {}
    with app.app_context(), rls.operator_access("test setup spans both orgs"):
        for label in ("a", "b"):
            org = make_org(slug=f"tenant-{label}")
            users = {}
            memberships = {}
            for role in ROLES:
                user = make_user(email=f"{role.value}@{label}.example")
                memberships[role] = make_membership(user, org, role)
                users[role] = user
            voice = make_voice(org, name=f"Custom {label}")
            invitation = Invitation(
                org_id=org.id,
                email=f"invitee@{label}.example",
                role=MemberRole.MEMBER,
                token_hash=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            )
            db.session.add(invitation)
            db.session.flush()
            data[label] = {
                "slug": org.slug,
                "users": users,
                "objects": {
                    "voice": voice.id,
                    "generation": make_generation(org, voice).id,
                    "membership": memberships[MemberRole.MEMBER].id,
                    "invitation": invitation.id,
                },
            }
        db.session.commit()
        for label in data:
            data[label]["users"] = {r: detach(u) for r, u in data[label]["users"].items()}
    return data


def build_url(app: Flask, rule: Rule, slug: str, objects: dict[str, uuid.UUID]) -> str:
    values: dict[str, object] = {"org_slug": slug}
    for arg in rule.arguments - {"org_slug"}:
        kind = OBJECT_ARGS.get(arg)
        assert kind, f"teach tests/test_tenant_matrix.py which object {rule.rule} <{arg}> names"
        values[arg] = objects[kind]
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_other_orgs_routes_and_objects_answer_404(app, client, world, role, backend):
    """As a member of A: B's slug → 404, and A's slug with B's object ids → 404."""
    if backend == "postgresql-app":
        with app.app_context():
            bypass = db.session.scalar(
                text("SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user")
            )
            assert bypass is False, "the matrix must run as the RLS-bound web role"
    login(client, world["a"]["users"][role])
    checked = 0
    for rule in org_rules(app):
        for method in methods(rule):
            urls = [build_url(app, rule, world["b"]["slug"], world["b"]["objects"])]
            if rule.arguments - {"org_slug"}:
                urls.append(build_url(app, rule, world["a"]["slug"], world["b"]["objects"]))
            for url in urls:
                response = client.open(url, method=method, data={})
                assert response.status_code == 404, f"{method} {url} as {role.value} of A"
                checked += 1
    assert checked >= len(org_rules(app))


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_own_org_pages_are_reachable(app, client, world):
    """The control: the same GET routes work for A's owner with A's objects."""
    login(client, world["a"]["users"][MemberRole.OWNER])
    for rule in org_rules(app):
        if "GET" not in methods(rule):
            continue
        url = build_url(app, rule, world["a"]["slug"], world["a"]["objects"])
        assert client.get(url).status_code in {200, 409}, url


def test_anonymous_callers_are_sent_to_login(app, client, world):
    for rule in org_rules(app):
        for method in methods(rule):
            url = build_url(app, rule, world["a"]["slug"], world["a"]["objects"])
            response = client.open(url, method=method, data={})
            assert response.status_code in {302, 401}, f"{method} {url}"


# Statements a page may cost, all included (the target): on PostgreSQL two of
# them are the row-level-security settings (the user, then the org).
MAX_STATEMENTS_PER_PAGE = 5


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_every_org_page_costs_at_most_five_statements(app, client, world, count_queries):
    """Each GET route under /o/<slug>/, as A's owner with A's objects, warm."""
    login(client, world["a"]["users"][MemberRole.OWNER])
    costs: dict[str, list[str]] = {}
    for rule in org_rules(app):
        if "GET" not in methods(rule):
            continue
        url = build_url(app, rule, world["a"]["slug"], world["a"]["objects"])
        client.get(url).close()  # warm: first-use work (caches, lazy loads) is not the page's
        with count_queries() as seen:
            response = client.get(url)
            response.get_data()  # streamed bodies run their statements while they're read
            response.close()
        costs[url] = list(seen)
    over = {url: len(seen) for url, seen in costs.items() if len(seen) > MAX_STATEMENTS_PER_PAGE}
    listing = [
        f"{url}: {len(costs[url])} statements: "
        + " | ".join(" ".join(s.split())[:90] for s in costs[url])
        for url in over
    ]
    assert not over, "\n".join(listing)
