"""Login throttling: failed attempts per (account, address), per address, per account.

Knowing someone's email must not be enough to lock them out: the right password from
an address that hasn't failed on the account always gets in (issue 20, items 5 and 6).
"""

from __future__ import annotations

import os
import re

import pytest

from dashboard import tenancy
from dashboard.auth.passwords import hash_password
from dashboard.extensions import db, limiter
from dashboard.models import MemberRole
from tests import factories

PASSWORD = "correct horse battery"


@pytest.fixture
def ada(app):
    """A user with a known password, owner of the org "acme"."""
    with app.app_context(), tenancy.all_tenants("test setup"):
        user = factories.make_user(email="ada@example.com", password_hash=hash_password(PASSWORD))
        factories.make_membership(user, factories.make_org(slug="acme"), MemberRole.OWNER)
        db.session.commit()
        return factories.detach(user)


@pytest.fixture
def limited(app):
    """Turn the limiter on with the settings' defaults, on in-process storage."""

    def configure(**limits: str) -> None:
        app.config.update(RATELIMIT_ENABLED=True, **limits)
        limiter.init_app(app)
        limiter.reset()

    configure()
    yield configure
    limiter.reset()


def attempt(client, password: str, email: str = "ada@example.com", address: str = "10.0.0.1"):
    return client.post(
        "/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def fail_login(client, email: str = "ada@example.com", address: str = "10.0.0.1"):
    return attempt(client, "wrong password!", email, address)


def assert_throttled(response, window_seconds: int) -> None:
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= window_seconds
    text = response.get_data(as_text=True)
    assert re.search(r"Too many failed attempts\. Try again in \d+ seconds\.", text)


def test_the_defaults_are_the_documented_ones(app):
    assert app.config["LOGIN_RATE_LIMIT"] == "5 per 5 minutes"
    assert app.config["LOGIN_ADDRESS_RATE_LIMIT"] == "50 per 5 minutes"
    assert app.config["LOGIN_ACCOUNT_RATE_LIMIT"] == "20 per 15 minutes"


def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out(client, ada, limited):
    for _ in range(5):
        assert fail_login(client, address="10.0.0.1").status_code == 422
    assert_throttled(fail_login(client, address="10.0.0.1"), 300)
    # The owner, elsewhere, with the right password: straight in.
    response = attempt(client, PASSWORD, address="10.0.0.2")
    assert response.status_code == 303 and response.headers["Location"] == "/home"


def test_the_right_password_waits_at_an_address_that_used_up_its_attempts(client, ada, limited):
    for _ in range(5):
        assert fail_login(client, address="10.0.0.1").status_code == 422
    assert_throttled(attempt(client, PASSWORD, address="10.0.0.1"), 300)
    assert client.get("/o/acme/").status_code == 302  # not logged in


def test_one_address_trying_many_accounts_hits_the_address_limit(client, ada, limited):
    limited(LOGIN_ADDRESS_RATE_LIMIT="4 per minute")
    for i in range(4):
        assert fail_login(client, email=f"user{i}@example.com").status_code == 422
    assert_throttled(fail_login(client, email="someone-else@example.com"), 60)
    assert_throttled(attempt(client, PASSWORD), 60)
    assert attempt(client, PASSWORD, address="10.0.0.2").status_code == 303


def test_the_account_limit_stops_a_distributed_attack_but_not_the_owner(client, ada, limited):
    limited(LOGIN_RATE_LIMIT="3 per minute", LOGIN_ACCOUNT_RATE_LIMIT="4 per minute")
    for i in range(4):
        assert fail_login(client, address=f"10.0.1.{i}").status_code == 422
    # Every address that failed on the account is held, each with attempts of its own left.
    for i in range(4):
        assert_throttled(fail_login(client, address=f"10.0.1.{i}"), 60)
    assert_throttled(attempt(client, PASSWORD, address="10.0.1.0"), 60)
    # A fresh address has one guess; once it fails it is held like the others.
    assert fail_login(client, address="10.0.1.99").status_code == 422
    assert_throttled(fail_login(client, address="10.0.1.99"), 60)
    # The owner, from an address that never failed, gets in.
    assert attempt(client, PASSWORD, address="10.0.2.1").status_code == 303


def test_successful_logins_do_not_count(client, ada, limited):
    limited(LOGIN_RATE_LIMIT="3 per minute")
    for _ in range(5):
        assert attempt(client, PASSWORD).status_code == 303
        client.post("/logout")
    assert fail_login(client).status_code == 422


def test_invalid_forms_do_not_count(client, ada, limited):
    limited(LOGIN_RATE_LIMIT="2 per minute")
    for _ in range(3):
        response = client.post("/login", data={"email": "ada@example.com", "password": ""})
        assert response.status_code == 422
    assert fail_login(client, address="127.0.0.1").status_code == 422


def redis_url() -> str | None:
    import redis

    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return None
    return url


def test_login_limits_work_on_redis_storage(app, client, ada):
    """Production keeps counters in Redis so every worker sees the same ones."""
    url = redis_url()
    if url is None:
        reason = "Redis not reachable on 127.0.0.1:6379: the Redis rate-limit test is skipped"
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"REQUIRE_REDIS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    app.config.update(
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT="2 per minute",
        LOGIN_ACCOUNT_RATE_LIMIT="2 per minute",
        RATELIMIT_STORAGE_URI=url,
    )
    limiter.init_app(app)
    try:
        limiter.reset()
        email = f"redis-{id(app)}@example.com"
        assert fail_login(client, email=email, address="10.1.0.1").status_code == 422
        assert fail_login(client, email=email, address="10.1.0.2").status_code == 422
        assert_throttled(fail_login(client, email=email, address="10.1.0.1"), 60)
        assert fail_login(client, email=email, address="10.1.0.3").status_code == 422
        # The counters really live in Redis, where every worker process sees them.
        import redis

        keys = redis.Redis.from_url(url).keys("*login-account*")
        assert any(email.encode() in key for key in keys)
    finally:
        limiter.reset()


def test_redis_down_keeps_logins_working_and_still_throttles_per_process(app, client, ada, caplog):
    """A real refused connection (nothing listens on port 1): no 500, no open door."""
    app.config.update(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    limiter.init_app(app)
    try:
        with caplog.at_level("ERROR"):
            for _ in range(5):
                assert fail_login(client).status_code == 422
            # The counters fell back to this process's memory: the pair limit still binds.
            assert_throttled(fail_login(client), 300)
            assert attempt(client, PASSWORD, address="10.9.9.9").status_code in (302, 303)
        assert "login counters unavailable" in caplog.text
        # Other limits (generation) fall back too instead of answering 500.
        assert client.get("/o/acme/generate/").status_code == 200
    finally:
        from dashboard.auth import throttle

        throttle._down_until = 0.0  # noqa: SLF001  (the next test's store is up)
        app.config["RATELIMIT_STORAGE_URI"] = "memory://"
        limiter.init_app(app)
        limiter.reset()
