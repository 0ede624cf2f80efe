"""`flask api-keys list` and `flask api-keys revoke`: every org's keys, revoking one by id."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from dashboard import tenancy
from dashboard.extensions import db
from dashboard.models import ApiKey, ApiScope, utcnow
from tests import factories


@pytest.fixture
def keys(app):
    """Org "acme" with an active, a revoked and an expired key; org "bravo" with one."""
    now = utcnow()
    with app.app_context():
        acme = factories.make_org(slug="acme", name="Acme")
        bravo = factories.make_org(slug="bravo", name="Bravo")
        active, secret = factories.make_api_key(
            acme, name="Website", scopes=[ApiScope.VOICES_READ, ApiScope.GENERATIONS_WRITE]
        )
        active.last_used_at = dt.datetime(2026, 3, 4, 14, 5, tzinfo=dt.UTC)
        revoked, _ = factories.make_api_key(acme, name="Old laptop")
        revoked.revoked_at = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
        expired, _ = factories.make_api_key(
            acme, name="Trial", expires_at=now - dt.timedelta(days=1)
        )
        other, _ = factories.make_api_key(bravo, name="Bravo batch", scopes=[ApiScope.VOICES_READ])
        db.session.commit()
        return {
            "active": active.id,
            "revoked": revoked.id,
            "expired": expired.id,
            "other": other.id,
            "active_secret": secret,
        }


def lines_by_id(output: str) -> dict[str, str]:
    return {line.split()[0]: line for line in output.splitlines()[1:]}


def stored(app, key_id) -> ApiKey:
    with app.app_context(), tenancy.all_tenants("test: read a key"):
        key = db.session.scalars(select(ApiKey).where(ApiKey.id == key_id)).one()
        db.session.expunge(key)
        return key


def test_list_shows_every_orgs_keys_with_scopes_times_and_status(runner, keys):
    result = runner.invoke(args=["api-keys", "list"])
    assert result.exit_code == 0, result.output
    header, *_ = result.output.splitlines()
    assert header.split() == [
        "ID",
        "ORG",
        "NAME",
        "SCOPES",
        "CREATED",
        "(UTC)",
        "LAST",
        "USED",
        "(UTC)",
        "STATUS",
    ]
    rows = lines_by_id(result.output)
    assert set(rows) == {str(keys[k]) for k in ("active", "revoked", "expired", "other")}
    active = rows[str(keys["active"])].split()
    assert active[1:4] == ["acme", "Website", "voices:read,generations:write"]
    assert "2026-03-04 14:05" in rows[str(keys["active"])] and active[-1] == "active"
    assert rows[str(keys["revoked"])].split()[-1] == "revoked"
    assert rows[str(keys["expired"])].split()[-1] == "expired"
    assert "never" in rows[str(keys["expired"])]
    # By org, then newest first.
    order = [line.split()[0] for line in result.output.splitlines()[1:]]
    assert order == [str(keys[k]) for k in ("expired", "revoked", "active", "other")]
    assert keys["active_secret"] not in result.output and "vxb_" not in result.output


def test_list_for_one_org(runner, keys):
    result = runner.invoke(args=["api-keys", "list", "--org", "bravo"])
    assert result.exit_code == 0
    assert set(lines_by_id(result.output)) == {str(keys["other"])}
    assert "Website" not in result.output


def test_list_for_an_unknown_org_says_so(runner, keys):
    result = runner.invoke(args=["api-keys", "list", "--org", "nope"])
    assert result.exit_code == 1
    assert "Error: no organisation with slug 'nope'" in result.output


def test_list_without_keys(runner, app):
    with app.app_context():
        factories.make_org(slug="empty")
        db.session.commit()
    assert runner.invoke(args=["api-keys", "list"]).output == "No API keys yet.\n"
    result = runner.invoke(args=["api-keys", "list", "--org", "empty"])
    assert result.exit_code == 0 and result.output == "No API keys in empty.\n"


def test_revoke_revokes_that_key_only(app, runner, keys):
    result = runner.invoke(args=["api-keys", "revoke", str(keys["active"])])
    assert result.exit_code == 0, result.output
    assert "Revoked the key “Website”" in result.output and "of acme" in result.output
    key = stored(app, keys["active"])
    assert key.revoked_at is not None and utcnow() - key.revoked_at < dt.timedelta(minutes=1)
    assert key.revoked_by is None  # an operator, not a member
    assert stored(app, keys["other"]).revoked_at is None
    listed = lines_by_id(runner.invoke(args=["api-keys", "list"]).output)
    assert listed[str(keys["active"])].split()[-1] == "revoked"


def test_revoking_a_revoked_key_says_so_and_changes_nothing(app, runner, keys):
    result = runner.invoke(args=["api-keys", "revoke", str(keys["revoked"])])
    assert result.exit_code == 0
    assert "was already revoked on 2026-01-02 03:04 UTC; nothing changed." in result.output
    assert stored(app, keys["revoked"]).revoked_at == dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)


@pytest.mark.parametrize("key_id", ["not-a-uuid", "123", ""])
def test_revoke_refuses_a_malformed_id(runner, keys, key_id):
    result = runner.invoke(args=["api-keys", "revoke", key_id])
    assert result.exit_code == 1
    assert f"Error: {key_id!r} is not an API key id" in result.output


def test_revoke_refuses_an_unknown_id(app, runner, keys):
    missing = uuid.uuid4()
    result = runner.invoke(args=["api-keys", "revoke", str(missing)])
    assert result.exit_code == 1
    assert f"Error: no API key with id {missing}" in result.output
    assert stored(app, keys["active"]).revoked_at is None
