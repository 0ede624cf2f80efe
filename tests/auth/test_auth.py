"""Accounts: sign-up, login (safe redirects), logout, password change.

Login throttling is in test_login_throttle.py, server-side sessions in test_sessions.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard import tenancy
from dashboard.auth.passwords import hash_password
from dashboard.extensions import db
from dashboard.models import MemberRole, Membership, Organization, User
from tests import factories
from tests.http import login

PASSWORD = "correct horse battery"


@pytest.fixture
def ada(app):
    """A user with a known password, owner of the org "acme"."""
    with app.app_context(), tenancy.all_tenants("test setup"):
        user = factories.make_user(email="ada@example.com", password_hash=hash_password(PASSWORD))
        org = factories.make_org(slug="acme", name="Acme Audio")
        factories.make_membership(user, org, MemberRole.OWNER)
        db.session.commit()
        return factories.detach(user)


def signup(client, **overrides):
    data = {
        "display_name": "Grace Hopper",
        "email": "grace@example.com",
        "org_name": "Hopper Sound",
        "password": PASSWORD,
        "confirm": PASSWORD,
        **overrides,
    }
    return client.post("/signup", data=data)


def test_signup_creates_user_and_owned_org_and_logs_in(app, client):
    response = signup(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/o/hopper-sound/"
    home = client.get("/o/hopper-sound/")
    assert home.status_code == 200 and "Hopper Sound" in home.get_data(as_text=True)
    with app.app_context(), tenancy.all_tenants("test"):
        user = db.session.scalars(select(User)).one()
        membership = db.session.scalars(select(Membership)).one()
        assert user.email == "grace@example.com" and membership.role is MemberRole.OWNER
        assert user.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"email": "not-an-email"}, "Invalid email address"),
        ({"password": "short", "confirm": "short"}, "at least 10 characters"),
        ({"confirm": "something else"}, "Passwords differ."),
        ({"org_name": ""}, "Name your organisation"),
    ],
)
def test_signup_errors_are_shown_inline_and_change_nothing(app, client, overrides, message):
    response = signup(client, **overrides)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(User)).all() == []
        assert db.session.scalars(select(Organization)).all() == []


def test_signup_with_a_taken_email_any_case(app, client, ada):
    response = signup(client, email="ADA@Example.com")
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def test_login_lands_on_the_org_home(client, ada):
    response = client.post("/login", data={"email": "Ada@Example.com", "password": PASSWORD})
    assert response.status_code == 303 and response.headers["Location"] == "/home"
    landing = client.get("/home")
    assert landing.headers["Location"] == "/o/acme/"


@pytest.mark.parametrize("email", ["ada@example.com", "nobody@example.com"])
def test_wrong_credentials_get_the_same_message(client, ada, email):
    response = client.post("/login", data={"email": email, "password": "wrong password!"})
    assert response.status_code == 422
    assert "match an account" in response.get_data(as_text=True)
    assert client.get("/o/acme/").status_code == 302


def test_login_follows_a_safe_next(client, ada):
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD, "next": "/o/acme/members/"},
    )
    assert response.headers["Location"] == "/o/acme/members/"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/\tevil",
        "evil.example",
    ],
)
def test_login_refuses_open_redirects(client, ada, target):
    response = client.post(
        "/login", data={"email": "ada@example.com", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/home"


def test_unauthenticated_org_page_sends_to_login_with_next(client, ada):
    response = client.get("/o/acme/members/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fo%2Facme%2Fmembers%2F"


def test_logout_is_post_only(client, ada):
    login(client, ada)
    assert client.get("/logout").status_code == 405
    assert client.get("/o/acme/").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert client.get("/o/acme/").status_code == 302


def test_password_change_ends_other_sessions_but_keeps_this_one(app, ada):
    here, elsewhere = app.test_client(), app.test_client()
    login(here, ada)
    login(elsewhere, ada)
    new = "a brand new passphrase"
    response = here.post(
        "/account/password", data={"current": PASSWORD, "password": new, "confirm": new}
    )
    assert response.status_code == 303
    assert here.get("/o/acme/").status_code == 200
    assert elsewhere.get("/o/acme/").status_code == 302
    fresh = app.test_client()
    assert (
        fresh.post("/login", data={"email": "ada@example.com", "password": PASSWORD}).status_code
        == 422
    )
    assert (
        fresh.post("/login", data={"email": "ada@example.com", "password": new}).status_code == 303
    )


def test_password_change_needs_the_current_password(client, ada):
    login(client, ada)
    response = client.post(
        "/account/password",
        data={
            "current": "not it at all",
            "password": "another good one",
            "confirm": "another good one",
        },
    )
    assert response.status_code == 422
    assert "current password is not correct" in response.get_data(as_text=True)


def test_session_cookie_flags(app, client, ada):
    response = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert (
        app.config["SESSION_COOKIE_SECURE"] is False
    )  # development; production is tested in test_config


def test_user_without_orgs_is_asked_to_create_one(app, client):
    with app.app_context():
        user = factories.make_user()
        db.session.commit()
        factories.detach(user)
    login(client, user)
    assert client.get("/home").headers["Location"] == "/orgs/new"
    response = client.post("/orgs/new", data={"name": "Second Studio"})
    assert response.status_code == 303 and response.headers["Location"] == "/o/second-studio/"
    assert "Second Studio" in client.get("/o/second-studio/").get_data(as_text=True)


def test_org_switcher_lists_every_org_of_the_user(app, client, ada):
    with app.app_context(), tenancy.all_tenants("test setup"):
        other = factories.make_org(slug="beta", name="Beta Voices")
        factories.make_membership(db.session.merge(ada), other, MemberRole.MEMBER)
        factories.make_org(slug="stranger", name="Stranger Things Inc")
        db.session.commit()
    login(client, ada)
    html = client.get("/o/acme/").get_data(as_text=True)
    assert 'href="/o/beta/"' in html and "Beta Voices" in html
    assert "Stranger Things Inc" not in html
    assert client.get("/o/stranger/").status_code == 404


def test_signing_up_to_accept_an_invitation_needs_no_organisation(app, client):
    response = signup(client, org_name="", next="/join/acme/some-token")
    assert response.status_code == 303
    assert response.headers["Location"] == "/join/acme/some-token"
    with app.app_context(), tenancy.all_tenants("test"):
        assert db.session.scalars(select(User)).one().email == "grace@example.com"
        assert db.session.scalars(select(Organization)).all() == []


def test_signing_up_otherwise_needs_an_organisation(app, client):
    response = signup(client, org_name="   ")
    assert response.status_code == 422
    assert "Name your organisation" in response.get_data(as_text=True)
