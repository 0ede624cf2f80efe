"""Server-side login sessions: logout, password changes and disabling end them for good.

A session cookie only names a `user_sessions` row, so a copy of the cookie stops working
the moment the row goes (issue 20, item 2). Runs on SQLite and on PostgreSQL as the web
role; timestamps are moved back instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid

import pytest
from sqlalchemy import func, select, update

from dashboard.auth import login_sessions
from dashboard.auth.passwords import hash_password
from dashboard.extensions import db
from dashboard.models import Invitation, MemberRole, UserSession, utcnow
from dashboard.queue import get_huey
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import WEB_ROLE_BACKENDS
from tests.http import login

pytestmark = pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def ada(app):
    """A user with a known password, owner of the org "acme"."""
    with app.app_context(), operator_access("test setup"):
        user = factories.make_user(email="ada@example.com", password_hash=hash_password(PASSWORD))
        factories.make_membership(
            user, factories.make_org(slug="acme", name="Acme Audio"), MemberRole.OWNER
        )
        db.session.commit()
        return factories.detach(user)


def log_in(client, password: str = PASSWORD, csrf_token: str | None = None):
    data = {"email": "ada@example.com", "password": password}
    if csrf_token is not None:
        data["csrf_token"] = csrf_token
    return client.post("/login", data=data)


def session_rows(app) -> list[UserSession]:
    with app.app_context():
        rows = db.session.scalars(select(UserSession).order_by(UserSession.created_at)).all()
        for row in rows:
            db.session.expunge(row)
        return list(rows)


def move_back(app, *, last_seen: dt.timedelta | None = None, created: dt.timedelta | None = None):
    """Pretend every session was last used `last_seen` ago and started `created` ago."""
    now = utcnow()
    values = {}
    if last_seen is not None:
        values["last_seen_at"] = now - last_seen
    if created is not None:
        values["created_at"] = now - created
    with app.app_context():
        db.session.execute(update(UserSession).values(**values))
        db.session.commit()


def copy_of_cookie(client) -> str:
    return client.get_cookie("session").value


def client_with_cookie(app, value: str):
    other = app.test_client()
    other.set_cookie("session", value)
    return other


def is_sent_to_login(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


# ------------------------------------------------------------------------------ logout


def test_a_copied_cookie_stops_working_after_logout(app, client, ada):
    assert log_in(client).status_code == 303
    copy = copy_of_cookie(client)
    assert client_with_cookie(app, copy).get("/o/acme/").status_code == 200  # a working copy

    assert client.post("/logout").status_code == 303
    assert session_rows(app) == []
    assert is_sent_to_login(client_with_cookie(app, copy).get("/o/acme/"))


def test_a_copied_cookie_cannot_post_after_logout_even_with_its_csrf_token(app, client, ada):
    app.config["WTF_CSRF_ENABLED"] = True
    login_page = client.get("/login").get_data(as_text=True)
    form_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page)
    assert log_in(client, csrf_token=form_token.group(1)).status_code == 303
    page = client.get("/o/acme/members/").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    copy = copy_of_cookie(client)

    def invite(who, email: str):
        return who.post(
            "/o/acme/members/invitations",
            data={"email": email, "role": "member"},
            headers={"X-CSRFToken": token},
        )

    # The page's token works while the session lives: the refusal below is the session's.
    assert invite(client_with_cookie(app, copy), "before@example.com").status_code == 303
    assert client.post("/logout", headers={"X-CSRFToken": token}).status_code == 303

    refused = invite(client_with_cookie(app, copy), "after@example.com")
    assert is_sent_to_login(refused)
    with app.app_context(), operator_access("test check"):
        emails = db.session.scalars(select(Invitation.email)).all()
    assert emails == ["before@example.com"]


def test_switching_account_on_an_invitation_ends_the_session_too(app, client, ada):
    assert log_in(client).status_code == 303
    copy = copy_of_cookie(client)
    client.post("/join/acme/some-token/switch-account")
    assert session_rows(app) == []
    assert is_sent_to_login(client_with_cookie(app, copy).get("/o/acme/"))


# ---------------------------------------------------------------------------- timeouts


def test_an_idle_session_expires(app, client, ada):
    app.config["SESSION_IDLE_TIMEOUT_MINUTES"] = 30
    login(client, ada)
    move_back(app, last_seen=dt.timedelta(minutes=29))
    assert client.get("/o/acme/").status_code == 200  # and that request counts as use
    move_back(app, last_seen=dt.timedelta(minutes=29))
    assert client.get("/o/acme/").status_code == 200
    move_back(app, last_seen=dt.timedelta(minutes=31))
    assert is_sent_to_login(client.get("/o/acme/"))


def test_a_session_ends_at_its_lifetime_however_busy(app, client, ada):
    app.config["SESSION_LIFETIME_HOURS"] = 2
    login(client, ada)
    move_back(app, created=dt.timedelta(minutes=119), last_seen=dt.timedelta(0))
    assert client.get("/o/acme/").status_code == 200
    move_back(app, created=dt.timedelta(minutes=121), last_seen=dt.timedelta(0))
    assert is_sent_to_login(client.get("/o/acme/"))


def test_the_cookie_lifetimes_follow_the_session_lifetime(app):
    lifetime = dt.timedelta(hours=app.config["SESSION_LIFETIME_HOURS"])
    assert (app.config["SESSION_IDLE_TIMEOUT_MINUTES"], lifetime) == (720, dt.timedelta(days=7))
    assert app.permanent_session_lifetime == lifetime
    assert app.config["REMEMBER_COOKIE_DURATION"] == lifetime


def test_last_seen_is_recorded_at_most_once_a_minute(app, client, ada, count_queries):
    login(client, ada)
    (started,) = session_rows(app)
    with count_queries() as statements:
        for _ in range(3):
            assert client.get("/o/acme/").status_code == 200
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    # The session row is read in the user's own statement: one per request, no more.
    assert len([s for s in statements if "user_sessions" in s]) == 3
    assert session_rows(app)[0].last_seen_at == started.last_seen_at

    move_back(app, last_seen=dt.timedelta(minutes=2))
    with count_queries() as statements:
        assert client.get("/o/acme/").status_code == 200
        assert client.get("/o/acme/").status_code == 200
    assert len([s for s in statements if s.lstrip().upper().startswith("UPDATE")]) == 1
    assert utcnow() - session_rows(app)[0].last_seen_at < dt.timedelta(seconds=30)


# ------------------------------------------------------------------------ the cookie


def test_the_database_keeps_only_a_hash_of_the_cookie_secret(app, client, ada):
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD},
        headers={"User-Agent": "Firefox/999 " + "x" * 300},
        environ_base={"REMOTE_ADDR": "10.2.3.4"},
    )
    assert response.status_code == 303
    with client.session_transaction() as session:
        user_id, session_id, secret = session["_user_id"].split(":")
    (row,) = session_rows(app)
    assert (str(row.user_id), str(row.id)) == (user_id, session_id)
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest() != secret
    assert len(secret) >= 43
    assert row.user_agent.startswith("Firefox/999") and len(row.user_agent) == 200
    assert row.ip_address == "10.2.3.4"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda user_id, session_id, secret: f"{user_id}:{session_id}:{secret[:-2]}xy",
        lambda user_id, session_id, secret: f"{user_id}:{session_id}:",
        lambda user_id, session_id, secret: f"{user_id}:{secret}",  # the pre-0009 shape
        lambda user_id, session_id, secret: f"{session_id}:{session_id}:{secret}",
    ],
)
def test_a_login_id_that_does_not_match_its_session_acts_for_nobody(app, client, ada, tamper):
    login_id = login(client, ada)
    with client.session_transaction() as session:
        session["_user_id"] = tamper(*login_id.split(":"))
    assert is_sent_to_login(client.get("/o/acme/"))


# ---------------------------------------------------------------------- password change


def test_password_change_ends_the_other_sessions_but_not_this_one(app, ada):
    here, elsewhere = app.test_client(), app.test_client()
    login(elsewhere, ada)
    kept = login(here, ada).split(":")[1]
    response = here.post(
        "/account/password",
        data={"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303
    assert [str(row.id) for row in session_rows(app)] == [kept]
    assert here.get("/o/acme/").status_code == 200
    assert is_sent_to_login(elsewhere.get("/o/acme/"))


def test_set_password_from_the_cli_ends_every_session(app, runner, ada):
    first, second = app.test_client(), app.test_client()
    login(first, ada)
    login(second, ada)
    result = runner.invoke(
        args=["users", "set-password", "ada@example.com", "--password-stdin"],
        input=NEW_PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert session_rows(app) == []
    assert is_sent_to_login(first.get("/o/acme/")) and is_sent_to_login(second.get("/o/acme/"))


# --------------------------------------------------------------------------- disabling


def test_disabling_a_user_ends_their_sessions_and_stops_them_logging_in(app, client, runner, ada):
    login(client, ada)
    login(app.test_client(), ada)
    result = runner.invoke(args=["users", "disable", "ada@example.com"])
    assert result.exit_code == 0, result.output
    assert "Disabled ada@example.com; 2 open session(s) ended" in result.output
    assert session_rows(app) == []
    assert is_sent_to_login(client.get("/o/acme/"))

    right = log_in(client)
    assert right.status_code == 403
    assert "This account is disabled" in right.get_data(as_text=True)
    wrong = log_in(client, password="not the password")
    assert wrong.status_code == 422
    text = wrong.get_data(as_text=True)
    assert "match an account" in text and "disabled" not in text
    assert session_rows(app) == []

    again = runner.invoke(args=["users", "disable", "ada@example.com"])
    assert "ada@example.com is already disabled; nothing changed." in again.output


def test_enabling_a_user_lets_them_log_in_again(app, client, runner, ada):
    assert runner.invoke(args=["users", "disable", "ada@example.com"]).exit_code == 0
    result = runner.invoke(args=["users", "enable", "ada@example.com"])
    assert result.exit_code == 0, result.output
    assert "Enabled ada@example.com; they can log in again." in result.output
    assert log_in(client).status_code == 303
    assert client.get("/o/acme/").status_code == 200
    again = runner.invoke(args=["users", "enable", "ada@example.com"])
    assert "ada@example.com is not disabled; nothing changed." in again.output


def test_disable_and_enable_refuse_unknown_users(runner, ada):
    for command in ("disable", "enable"):
        result = runner.invoke(args=["users", command, "nobody@example.com"])
        assert result.exit_code == 1 and "no user with email 'nobody@example.com'" in result.output


# ------------------------------------------------------------------------------ purging


def three_sessions(app, ada) -> dict[str, str]:
    """Start a live, an idle-expired and a lifetime-expired session; return their ids."""
    ids = {}
    for name, last_seen, created in (
        ("live", dt.timedelta(minutes=5), dt.timedelta(hours=1)),
        ("idle", dt.timedelta(minutes=721), dt.timedelta(hours=13)),
        ("old", dt.timedelta(minutes=1), dt.timedelta(hours=169)),
    ):
        session_id = login(app.test_client(), ada).split(":")[1]
        with app.app_context():
            db.session.execute(
                update(UserSession)
                .where(UserSession.id == uuid.UUID(session_id))
                .values(last_seen_at=utcnow() - last_seen, created_at=utcnow() - created)
            )
            db.session.commit()
        ids[name] = session_id
    return ids


def test_purging_deletes_expired_sessions_only(app, runner, ada):
    ids = three_sessions(app, ada)
    result = runner.invoke(args=["users", "purge-sessions"])
    assert result.exit_code == 0, result.output
    assert "Deleted 2 expired session(s)." in result.output
    assert [str(row.id) for row in session_rows(app)] == [ids["live"]]
    assert "Deleted 0 expired session(s)." in runner.invoke(args=["users", "purge-sessions"]).output


def test_the_worker_purges_expired_sessions_every_hour(app, ada):
    ids = three_sessions(app, ada)
    huey = get_huey(app)
    hour = utcnow().replace(minute=0, second=0, microsecond=0, tzinfo=None)
    due = huey.read_periodic(hour + dt.timedelta(minutes=37))
    assert "purge-sessions" in {task.name for task in due}
    assert "purge-sessions" not in {t.name for t in huey.read_periodic(hour)}
    (task,) = [task for task in due if task.name == "purge-sessions"]
    huey.execute(task)
    assert [str(row.id) for row in session_rows(app)] == [ids["live"]]
    with app.app_context():
        assert login_sessions.purge_expired() == 0
        assert db.session.scalar(select(func.count()).select_from(UserSession)) == 1


def test_a_stored_user_agent_holds_no_unholdable_character(app):
    """Second line behind the edge's header check: what is stored is always storable."""
    with app.app_context(), operator_access("test setup"):
        user = factories.make_user(email="ua@example.com")
        login_sessions.start(user, "Agent\x00/1.0\x7f", "10.0.0.1")
        db.session.commit()
        stored = db.session.scalars(select(UserSession.user_agent)).one()
    assert stored == "Agent\ufffd/1.0\ufffd"
