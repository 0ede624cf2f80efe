"""The API keys page (/o/<slug>/settings/api-keys/): who may use it, the list, creating a
key (its secret shown once), the form's refusals, and revoking."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import func, select

from dashboard import tenancy
from dashboard.api import keys
from dashboard.api.forms import end_of_day
from dashboard.extensions import db
from dashboard.models import ApiKey, ApiScope, MemberRole, Organization, utcnow
from tests import factories
from tests.api.conftest import bearer
from tests.api.helpers import element_text
from tests.http import HX, login

PAGE = "/o/acme/settings/api-keys/"
SECRET = re.compile(r"vxb_[A-Za-z0-9_-]{43}")


@pytest.fixture
def team(app):
    """Org "acme" (owner, admin, member) and org "bravo" (its own member and key).

    Returns detached users and the ids tests need.
    """
    with app.app_context():
        acme = factories.make_org(slug="acme", name="Acme Audio")
        bravo = factories.make_org(slug="bravo", name="Bravo Sound")
        users = {
            role: factories.make_user(display_name=f"Acme {role.capitalize()}")
            for role in MemberRole
        }
        for role, user in users.items():
            factories.make_membership(user, acme, MemberRole(role))
        outsider = factories.make_user(display_name="Bravo Person")
        factories.make_membership(outsider, bravo, MemberRole.OWNER)
        bravo_key, _ = factories.make_api_key(bravo, name="Bravo secret key")
        db.session.commit()
        ids = {"acme": acme.id, "bravo": bravo.id, "bravo_key": bravo_key.id}
        detached = {str(role): factories.detach(user) for role, user in users.items()}
        detached["outsider"] = factories.detach(outsider)
    return {"users": detached, **ids}


def as_user(client, team, who: str):
    login(client, team["users"][who])
    return client


def acme_keys(app, team) -> list[ApiKey]:
    """Return acme's keys, oldest first, detached."""
    with app.app_context(), tenancy.all_tenants("test: read acme's keys"):
        found = db.session.scalars(
            select(ApiKey).where(ApiKey.org_id == team["acme"]).order_by(ApiKey.created_at)
        ).all()
        for row in found:
            db.session.expunge(row)
        return list(found)


def key_count(app) -> int:
    with app.app_context(), tenancy.all_tenants("test: count keys"):
        return db.session.scalar(select(func.count()).select_from(ApiKey))


def add_key(app, team, **kw) -> tuple[uuid.UUID, str]:
    """Give acme a key directly (not through the page); return its id and secret."""
    with app.app_context():
        acme = db.session.get(Organization, team["acme"])
        key, secret = factories.make_api_key(acme, **kw)
        db.session.commit()
        return key.id, secret


def revoked_at(app, key_id) -> dt.datetime | None:
    with app.app_context(), tenancy.all_tenants("test: read a key"):
        return db.session.scalars(select(ApiKey.revoked_at).where(ApiKey.id == key_id)).one()


CREATE = {
    "name": "Website narration",
    "scopes": ["generations:write", "voices:read"],
    "monthly_character_limit": "10,000",
    "expires_on": "",
}


# ----------------------------------------------------------------------- who may see it


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ""), ("POST", ""), ("GET", "{key}/revoke"), ("POST", "{key}/revoke")],
)
def test_members_are_refused_with_403_and_nothing_changes(app, client, team, method, path):
    key_id, _ = add_key(app, team, name="Acme key")
    as_user(client, team, "member")
    response = client.open(PAGE + path.format(key=key_id), method=method, data=CREATE)
    assert response.status_code == 403
    assert "Your role in this organisation doesn&#39;t allow that." in response.get_data(
        as_text=True
    )
    assert key_count(app) == 2 and revoked_at(app, key_id) is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ""), ("POST", ""), ("GET", "{key}/revoke"), ("POST", "{key}/revoke")],
)
def test_non_members_get_404_and_nothing_changes(app, client, team, method, path):
    key_id, _ = add_key(app, team, name="Acme key")
    as_user(client, team, "outsider")  # owner of bravo, not in acme
    response = client.open(PAGE + path.format(key=key_id), method=method, data=CREATE)
    assert response.status_code == 404
    assert "Acme key" not in response.get_data(as_text=True)
    assert key_count(app) == 2 and revoked_at(app, key_id) is None


def test_anonymous_visitors_are_sent_to_log_in(client, team):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_managers_get_the_page_and_a_link_in_the_header(client, team, who):
    response = as_user(client, team, who).get(PAGE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<a href="/o/acme/settings/api-keys/" aria-current="page">API keys</a>' in html
    assert 'href="/api/docs"' in html
    assert "No keys yet." in html
    assert '<script src="/static/js/api_keys.js" defer></script>' in html


def test_members_get_no_link_to_the_page(client, team):
    html = as_user(client, team, "member").get("/o/acme/").get_data(as_text=True)
    assert "Members</a>" in html
    assert "API keys" not in html and "/settings/api-keys" not in html


# ---------------------------------------------------------------------------- the list


def test_the_list_shows_each_key_with_its_scopes_creator_usage_and_status(app, client, team):
    now = utcnow()
    admin = team["users"]["admin"]
    busy, _ = add_key(
        app,
        team,
        name="Busy robot",
        scopes=[ApiScope.GENERATIONS_WRITE, ApiScope.VOICES_READ],
        created_by=admin.id,
        monthly_character_limit=5000,
        expires_at=now + dt.timedelta(days=30),
    )
    quiet, _ = add_key(app, team, name="Quiet script", scopes=[ApiScope.VOICES_READ])
    gone, _ = add_key(app, team, name="Old key", created_by=admin.id)
    ended, _ = add_key(app, team, name="Ended key", expires_at=now - dt.timedelta(days=2))
    with app.app_context(), tenancy.org_scope(team["acme"]):
        key = db.session.scalars(select(ApiKey).where(ApiKey.id == busy)).one()
        key.last_used_at, key.last_used_ip = now - dt.timedelta(hours=3), "203.0.113.9"
        org = db.session.get(Organization, team["acme"])
        factories.make_generation(org, text="x" * 1234, api_key_id=busy)
        old = db.session.scalars(select(ApiKey).where(ApiKey.id == gone)).one()
        old.revoked_at = now - dt.timedelta(days=1)
        db.session.commit()

    html = as_user(client, team, "owner").get(PAGE).get_data(as_text=True)

    assert element_text(html, "keys-heading") == "Keys 4"
    row = element_text(html, f"key-{busy}")
    assert "Busy robot" in row
    assert ApiScope.GENERATIONS_WRITE.label in row and ApiScope.VOICES_READ.label in row
    assert ApiScope.GENERATIONS_READ.label not in row
    assert "by Acme Admin" in row and "just now" in row
    assert "3 hours ago" in row and "from 203.0.113.9" in row
    assert "1,234 characters of 5,000" in row
    assert "Active expires in 4 weeks" in row and "Revoke" in row

    row = element_text(html, f"key-{quiet}")
    assert "by a former member" in row  # made without a creator (or the creator was deleted)
    assert "never" in row and "0 characters no limit of its own" in row
    assert "Active no expiry" in row

    row = element_text(html, f"key-{gone}")
    assert "Revoked revoked 1 day ago" in row
    assert f'href="/o/acme/settings/api-keys/{gone}/revoke"' not in html
    row = element_text(html, f"key-{ended}")
    assert "Expired ended 2 days ago" in row
    assert f'href="/o/acme/settings/api-keys/{ended}/revoke"' in html

    assert "Bravo secret key" not in html
    # Newest first.
    assert html.index("Ended key") < html.index("Old key") < html.index("Busy robot")


# ----------------------------------------------------------------------------- creating


def test_creating_shows_the_secret_once_and_stores_only_its_hash(app, client, team):
    as_user(client, team, "admin")
    day = (utcnow() + dt.timedelta(days=10)).date()
    response = client.post(PAGE, data={**CREATE, "expires_on": day.isoformat()})

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    secrets = set(SECRET.findall(html))
    assert len(secrets) == 1
    (secret,) = secrets
    assert f'id="new-key-secret" value="{secret}" readonly' in html
    assert "won't be shown again" in html
    assert f"-H &#34;Authorization: Bearer {secret}&#34;" in html
    assert "curl &#34;http://localhost/api/v1/voices?limit=5&#34;" in html
    assert 'data-copy="new-key-secret" hidden>Copy key</button>' in html
    assert element_text(html, "keys-heading") == "Keys 1"

    (stored,) = acme_keys(app, team)
    with app.app_context():
        expected_hash = keys.secret_hash(secret)  # keyed by the app's configuration
    assert stored.secret_hash == expected_hash
    assert stored.last_four == secret[-4:]
    assert stored.name == "Website narration"
    assert stored.scopes == ["voices:read", "generations:write"]  # ApiScope's order
    assert stored.monthly_character_limit == 10_000
    assert stored.expires_at == end_of_day(day)
    assert stored.expires_at == dt.datetime.combine(day, dt.time(23, 59, 59, 999999), dt.UTC)
    assert stored.created_by == team["users"]["admin"].id
    for column in ApiKey.__table__.columns:
        assert secret not in str(getattr(stored, column.key)), column.key

    # The key works at once, for its own org.
    usage = client.get("/api/v1/voices", headers=bearer(secret))
    assert usage.status_code == 200


def test_the_secret_never_appears_again(app, client, team):
    as_user(client, team, "owner")
    secret = SECRET.search(client.post(PAGE, data=CREATE).get_data(as_text=True)).group()
    later = client.get(PAGE).get_data(as_text=True)
    assert secret not in later and not SECRET.search(later)
    assert f"vxb_…{secret[-4:]}" in later
    assert "won't be shown again" not in later
    with client.session_transaction() as session:
        assert secret not in repr(dict(session))


def test_creating_with_htmx_answers_the_block_with_the_secret_and_a_trigger(app, client, team):
    as_user(client, team, "owner")
    response = client.post(PAGE, data=CREATE, headers=HX)
    assert response.status_code == 201
    assert response.headers["HX-Trigger"] == "api-key-created"
    assert "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="api-keys"') and "<html" not in html
    assert SECRET.search(html).group() not in client.get(PAGE).get_data(as_text=True)


@pytest.mark.parametrize(
    ("scopes", "example"),
    [
        (["generations:read"], "curl http://localhost/api/v1/usage"),
        (["generations:write"], "curl -X POST http://localhost/api/v1/generations"),
        (["voices:write", "voices:read"], "curl &#34;http://localhost/api/v1/voices?limit=5&#34;"),
    ],
)
def test_the_curl_example_is_one_the_key_may_make(client, team, scopes, example):
    as_user(client, team, "owner")
    html = client.post(PAGE, data={**CREATE, "scopes": scopes}).get_data(as_text=True)
    assert example in html


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"scopes": []}, "scopes", "Choose at least one scope"),
        ({"scopes": ["everything"]}, "scopes", "not a valid choice"),
        ({"name": ""}, "name", "Give the key a name"),
        ({"name": "   "}, "name", "Give the key a name"),
        ({"name": "n" * 101}, "name", "Keep the name to 100 characters or fewer."),
        ({"name": "bad\x00name"}, "name", "Name"),  # refused by the base Form, inline
        ({"monthly_character_limit": "0"}, "monthly_character_limit", "a whole number"),
        ({"monthly_character_limit": "-5"}, "monthly_character_limit", "a whole number"),
        ({"monthly_character_limit": "1.5"}, "monthly_character_limit", "a whole number"),
        ({"monthly_character_limit": "lots"}, "monthly_character_limit", "a whole number"),
        ({"monthly_character_limit": str(2**31)}, "monthly_character_limit", "2,147,483,647"),
        ({"expires_on": "2001-01-01"}, "expires_on", "can't be created already expired"),
        ({"expires_on": "yesterday"}, "expires_on", "YYYY-MM-DD"),
    ],
)
def test_refused_forms_answer_422_inline_and_create_nothing(
    client, app, team, change, field, message
):
    as_user(client, team, "admin")
    response = client.post(PAGE, data={**CREATE, **change})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = element_text(html, f"{field}-error")
    assert error is not None and message in error, error
    assert not SECRET.search(html)
    assert key_count(app) == 1  # bravo's only


def test_yesterday_is_refused_and_today_is_allowed_until_its_end(app, client, team):
    as_user(client, team, "admin")
    today = utcnow().date()
    yesterday = today - dt.timedelta(days=1)
    refused = client.post(PAGE, data={**CREATE, "expires_on": yesterday.isoformat()})
    assert refused.status_code == 422
    assert client.post(PAGE, data={**CREATE, "expires_on": today.isoformat()}).status_code == 201
    (stored,) = acme_keys(app, team)
    assert stored.expires_at == end_of_day(today) and stored.expires_at > utcnow()


def test_a_refused_form_keeps_what_was_typed_and_ticked(client, team):
    as_user(client, team, "admin")
    html = client.post(
        PAGE, data={**CREATE, "monthly_character_limit": "abc"}, headers=HX
    ).get_data(as_text=True)
    assert 'value="Website narration"' in html
    assert re.search(r'value="generations:write"\s+checked', html)
    assert not re.search(r'value="generations:read"\s+checked', html)
    assert 'value="abc"' in html and 'aria-invalid="true"' in html


def test_a_refused_scope_choice_marks_the_fieldset(client, team):
    as_user(client, team, "admin")
    html = client.post(PAGE, data={**CREATE, "scopes": []}).get_data(as_text=True)
    assert (
        '<fieldset class="key-scopes" aria-invalid="true" aria-describedby="scopes-error">' in html
    )


# ----------------------------------------------------------------------------- revoking


def test_revoking_confirms_without_javascript_then_revokes(app, client, team):
    key_id, secret = add_key(app, team, name="CI pipeline")
    as_user(client, team, "admin")
    url = f"{PAGE}{key_id}/revoke"

    confirm = client.get(url)
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    assert "Revoke the key “CI pipeline”?" in html
    assert f'<form method="post" action="{url}"' in html
    assert revoked_at(app, key_id) is None

    response = client.post(url)
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    when = revoked_at(app, key_id)
    assert when is not None and utcnow() - when < dt.timedelta(minutes=1)
    with app.app_context(), tenancy.all_tenants("test"):
        stored = db.session.scalars(select(ApiKey).where(ApiKey.id == key_id)).one()
        assert stored.revoked_by == team["users"]["admin"].id

    page = client.get(PAGE).get_data(as_text=True)
    assert "The key “CI pipeline” was revoked" in page
    assert "Revoked" in element_text(page, f"key-{key_id}")
    # The API refuses it from now on.
    assert client.get("/api/v1/voices", headers=bearer(secret)).status_code == 401


def test_revoking_with_htmx_redirects_the_page(app, client, team):
    key_id, _ = add_key(app, team, name="CI pipeline")
    response = as_user(client, team, "owner").post(f"{PAGE}{key_id}/revoke", headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == PAGE
    assert revoked_at(app, key_id) is not None


def test_revoking_twice_says_so_and_keeps_the_first_time(app, client, team):
    key_id, _ = add_key(app, team, name="CI pipeline")
    as_user(client, team, "owner")
    client.post(f"{PAGE}{key_id}/revoke")
    first = revoked_at(app, key_id)
    client.get(PAGE)  # shows (and uses up) the first flash
    again = client.post(f"{PAGE}{key_id}/revoke", follow_redirects=True)
    assert "The key “CI pipeline” was already revoked." in again.get_data(as_text=True)
    assert revoked_at(app, key_id) == first
    confirm = client.get(f"{PAGE}{key_id}/revoke").get_data(as_text=True)
    assert "already revoked" in confirm and f'action="{PAGE}{key_id}/revoke"' not in confirm


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_orgs_key_is_404_and_unchanged(app, client, team, method):
    as_user(client, team, "owner")
    response = client.open(f"{PAGE}{team['bravo_key']}/revoke", method=method)
    assert response.status_code == 404
    assert "Bravo secret key" not in response.get_data(as_text=True)
    assert revoked_at(app, team["bravo_key"]) is None


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_unknown_key_is_404(client, team, method):
    as_user(client, team, "owner")
    assert client.open(f"{PAGE}{uuid.uuid4()}/revoke", method=method).status_code == 404
