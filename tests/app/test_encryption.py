"""Secrets at rest: `dashboard.encryption` and the settings it reads (ENCRYPTION_KEYS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from flask import Flask
from sqlalchemy import Column, Integer, MetaData, String, Table, Text

from dashboard import config, create_app
from dashboard.config import ConfigError, settings_from_env
from dashboard.encryption import (
    SecretUnreadable,
    decrypt,
    encrypt,
    encrypted_columns,
    needs_rotation,
    rotate,
)
from tests.databases import make_config

PRODUCTION = {"DASHBOARD_ENV": "production", "SECRET_KEY": "k" * 64, "WEB_CONCURRENCY": "1"}
MAKE_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


def new_key() -> str:
    return Fernet.generate_key().decode()


def use_keys(app: Flask, *keys: str) -> None:
    app.config["ENCRYPTION_KEYS"] = list(keys)


# ------------------------------------------------------------------ the module


def test_a_secret_comes_back_as_it_went_in(app: Flask) -> None:
    with app.app_context():
        token = encrypt("whsec_abc déjà")
        assert token != "whsec_abc déjà" and "whsec" not in token
        assert decrypt(token) == "whsec_abc déjà"
        # A fresh IV every time: equal secrets don't give equal tokens.
        assert encrypt("whsec_abc déjà") != token


def test_test_apps_have_a_working_key(app: Flask) -> None:
    (key,) = app.config["ENCRYPTION_KEYS"]
    Fernet(key)


def test_the_first_key_encrypts_and_every_key_decrypts(app: Flask) -> None:
    first, second = new_key(), new_key()
    use_keys(app, first, second)
    with app.app_context():
        token = encrypt("s3cret")
        assert Fernet(first).decrypt(token.encode()) == b"s3cret"
        with pytest.raises(InvalidToken):
            Fernet(second).decrypt(token.encode())
        under_second = Fernet(second).encrypt(b"older").decode()
        assert decrypt(under_second) == "older"


def test_prepending_a_new_key_keeps_old_secrets_readable_until_rotated(app: Flask) -> None:
    old, new = new_key(), new_key()
    use_keys(app, old)
    with app.app_context():
        token = encrypt("signing secret")
        assert needs_rotation(token) is False
    use_keys(app, new, old)
    with app.app_context():
        assert decrypt(token) == "signing secret"
        assert needs_rotation(token) is True
        rotated = rotate(token)
        assert needs_rotation(rotated) is False
        assert Fernet(new).decrypt(rotated.encode()) == b"signing secret"
    use_keys(app, new)  # the old key removed after `flask secrets rotate`
    with app.app_context():
        assert decrypt(rotated) == "signing secret"
        with pytest.raises(SecretUnreadable):
            decrypt(token)


@pytest.mark.parametrize("token", ["stranger", "", "not a token at all"])
def test_a_token_no_key_opens_is_an_error_a_person_understands(app: Flask, token: str) -> None:
    if token == "stranger":
        token = Fernet(new_key()).encrypt(b"x").decode()
    with app.app_context():
        with pytest.raises(SecretUnreadable) as caught:
            decrypt(token)
        message = str(caught.value)
        assert "can't be decrypted with the configured ENCRYPTION_KEYS" in message
        assert "flask secrets check" in message
        with pytest.raises(SecretUnreadable):
            needs_rotation(token)
        with pytest.raises(SecretUnreadable):
            rotate(token)


def test_each_app_uses_its_own_keys(tmp_path: Path) -> None:
    first = create_app(make_config(f"sqlite:///{tmp_path / 'a.db'}", tmp_path))
    second = create_app(make_config(f"sqlite:///{tmp_path / 'b.db'}", tmp_path))
    use_keys(second, new_key())
    with first.app_context():
        token = encrypt("one app's secret")
    with second.app_context():
        with pytest.raises(SecretUnreadable):
            decrypt(token)
    with first.app_context():
        assert decrypt(token) == "one app's secret"


def test_encrypted_columns_are_found_by_their_info() -> None:
    metadata = MetaData()
    hooks = Table(
        "hooks",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("url", String(100)),
        Column("secret", Text, info={"encrypted": True}),
        Column("previous_secret", Text, info={"encrypted": True}),
    )
    Table("plain", metadata, Column("id", Integer, primary_key=True), Column("note", Text))
    found = encrypted_columns(metadata)
    assert [(t.name, k.name, c.name) for t, k, c in found] == [
        ("hooks", "id", "previous_secret"),
        ("hooks", "id", "secret"),
    ]
    assert found[0].table is hooks and found[0].key is hooks.c.id


def test_an_encrypted_column_needs_a_single_column_primary_key() -> None:
    metadata = MetaData()
    Table(
        "pairs",
        metadata,
        Column("a", Integer, primary_key=True),
        Column("b", Integer, primary_key=True),
        Column("secret", Text, info={"encrypted": True}),
    )
    with pytest.raises(ValueError, match="pairs.secret.*one primary-key column"):
        encrypted_columns(metadata)


# ------------------------------------------------------------ the error pages


def unreadable_token() -> str:
    return Fernet(new_key()).encrypt(b"lost").decode()


def test_an_unreadable_secret_in_a_page_gets_an_error_page(app: Flask) -> None:
    @app.get("/reads-a-secret")
    def reads_a_secret():
        return decrypt(unreadable_token())

    response = app.test_client().get("/reads-a-secret", headers={"Accept": "text/html"})
    html = response.get_data(as_text=True)
    assert response.status_code == 500 and response.content_type.startswith("text/html")
    assert "<html" in html and "Traceback" not in html
    assert "couldn&#39;t be decrypted with this server&#39;s encryption keys" in html
    assert "flask secrets check" in html


def test_an_unreadable_secret_in_the_api_is_a_problem(app: Flask) -> None:
    @app.get("/api/v1/reads-a-secret")
    def api_reads_a_secret():
        return decrypt(unreadable_token())

    response = app.test_client().get("/api/v1/reads-a-secret")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    problem = json.loads(response.get_data(as_text=True))
    assert problem["status"] == 500
    assert problem["detail"] == (
        "A stored secret couldn't be decrypted with this server's encryption keys. "
        "An operator can run `flask secrets check`."
    )


# ---------------------------------------------------------------- the settings


def test_development_key_is_generated_once_into_instance(tmp_path: Path) -> None:
    first = settings_from_env({}, str(tmp_path))["ENCRYPTION_KEYS"]
    second = settings_from_env({}, str(tmp_path))["ENCRYPTION_KEYS"]
    assert len(first) == 1 and first == second
    Fernet(first[0])
    stored = tmp_path / "encryption_keys"
    assert stored.read_text().strip() == first[0]
    assert stored.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if "encryption" in p.name] == ["encryption_keys"]


def test_keys_are_read_newest_first_from_the_setting(tmp_path: Path) -> None:
    new, old = new_key(), new_key()
    keys = settings_from_env({"ENCRYPTION_KEYS": f" {new} ,{old}\n"}, str(tmp_path))
    assert keys["ENCRYPTION_KEYS"] == [new, old]
    assert not (tmp_path / "encryption_keys").exists()


def test_production_refuses_to_start_without_encryption_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS is not set") as caught:
        settings_from_env(PRODUCTION, str(tmp_path))
    assert MAKE_KEY in str(caught.value)
    assert not (tmp_path / "encryption_keys").exists()
    key = new_key()
    assert settings_from_env({**PRODUCTION, "ENCRYPTION_KEYS": key}, str(tmp_path))[
        "ENCRYPTION_KEYS"
    ] == [key]


@pytest.mark.parametrize("env", [{}, PRODUCTION])
@pytest.mark.parametrize(
    ("entries", "position", "problem"),
    [
        (["GOOD", "not-a-fernet-key"], 2, "is not a Fernet key"),
        (["c2hvcnQ="], 1, "is not a Fernet key"),  # valid base64, 5 bytes
        (["GOOD", "", "GOOD"], 2, "is empty"),
        (["GOOD", "GOOD", ""], 3, "is empty"),
    ],
)
def test_invalid_key_entries_are_named_by_position_never_shown(
    tmp_path: Path, env: dict[str, str], entries: list[str], position: int, problem: str
) -> None:
    raw = ",".join(new_key() if e == "GOOD" else e for e in entries)
    with pytest.raises(ConfigError, match=f"ENCRYPTION_KEYS entry {position} of ") as caught:
        settings_from_env({**env, "ENCRYPTION_KEYS": raw}, str(tmp_path))
    message = str(caught.value)
    assert problem in message
    for entry in raw.split(","):
        if entry:
            assert entry not in message


def test_a_damaged_development_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "encryption_keys").write_text("garbage")
    with pytest.raises(ConfigError, match="encryption_keys entry 1 of 1 is not a Fernet key"):
        settings_from_env({}, str(tmp_path))


@pytest.mark.parametrize(("value", "allowed"), [(None, False), ("1", True), ("0", False)])
def test_webhooks_may_reach_loopback_only_when_asked(
    tmp_path: Path, value: str | None, allowed: bool
) -> None:
    env = {} if value is None else {"WEBHOOKS_ALLOW_LOOPBACK": value}
    assert settings_from_env(env, str(tmp_path))["WEBHOOKS_ALLOW_LOOPBACK"] is allowed


def test_production_refuses_webhooks_to_loopback(tmp_path: Path) -> None:
    production = {**PRODUCTION, "ENCRYPTION_KEYS": new_key()}
    assert settings_from_env(production, str(tmp_path))["WEBHOOKS_ALLOW_LOOPBACK"] is False
    with pytest.raises(ConfigError, match="WEBHOOKS_ALLOW_LOOPBACK.*production"):
        settings_from_env({**production, "WEBHOOKS_ALLOW_LOOPBACK": "1"}, str(tmp_path))


def test_public_url_is_read_trimmed_and_checked():
    assert config.public_url({}) is None
    assert config.public_url({"PUBLIC_URL": " https://voxboard.example.com/ "}) == (
        "https://voxboard.example.com"
    )
    for wrong in ("voxboard.example.com", "ftp://voxboard.example.com", "https://"):
        with pytest.raises(ConfigError, match="PUBLIC_URL"):
            config.public_url({"PUBLIC_URL": wrong})
