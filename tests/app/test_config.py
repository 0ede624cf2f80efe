"""Settings come from the environment; the README's table describes exactly these."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dashboard import PROJECT_ROOT, create_app
from dashboard.config import ConfigError, normalise_database_url, settings_from_env


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = settings_from_env({}, str(tmp_path))
    assert s["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'voxboard.db'}"
    assert s["STORAGE_BACKEND"] == "local"
    assert s["STORAGE_LOCAL_ROOT"] == str(tmp_path / "objects")
    assert s["DIRECT_URL"] is None
    assert s["SESSION_COOKIE_SECURE"] is False


def test_development_secret_key_is_generated_once_into_instance(tmp_path: Path) -> None:
    first = settings_from_env({}, str(tmp_path))["SECRET_KEY"]
    second = settings_from_env({}, str(tmp_path))["SECRET_KEY"]
    assert len(first) == 64 and first == second
    assert (tmp_path / "secret_key").read_text() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("env", [{"DASHBOARD_ENV": "production"}, {"FLASK_ENV": "production"}])
def test_production_refuses_to_start_without_secret_key(tmp_path: Path, env) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        settings_from_env(env, str(tmp_path))
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("key", ["x", "k" * 31])
def test_production_refuses_a_secret_key_too_short_to_sign_with(tmp_path: Path, key) -> None:
    env = {"DASHBOARD_ENV": "production", "SECRET_KEY": key}
    with pytest.raises(ConfigError, match=f"SECRET_KEY is {len(key)} characters long.*at least 32"):
        settings_from_env(env, str(tmp_path))


def test_a_short_secret_key_is_fine_in_development(tmp_path: Path) -> None:
    assert settings_from_env({"SECRET_KEY": "dev"}, str(tmp_path))["SECRET_KEY"] == "dev"


def test_wsgi_reports_a_config_error_in_one_line_and_exits_1(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = PROJECT_ROOT
    env = {"PATH": "/usr/bin:/bin", "DASHBOARD_ENV": "production", "SECRET_KEY": "short"}
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(root)!r}); import wsgi"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()], "one line, no traceback"
    assert "SECRET_KEY is 5 characters long" in done.stderr
    assert "Traceback" not in done.stderr


def test_storage_call_settings_have_defaults_and_refuse_nonsense(tmp_path: Path) -> None:
    s = settings_from_env({}, str(tmp_path))
    assert (s["STORAGE_CONNECT_TIMEOUT"], s["STORAGE_READ_TIMEOUT"]) == (3.0, 10.0)
    assert (s["STORAGE_MAX_ATTEMPTS"], s["STORAGE_MAX_CONCURRENT_CALLS"]) == (2, 2)
    assert s["STORAGE_READY_TIMEOUT"] < s["STORAGE_READ_TIMEOUT"]
    s = settings_from_env({"STORAGE_READ_TIMEOUT": "2.5"}, str(tmp_path))
    assert s["STORAGE_READ_TIMEOUT"] == 2.5
    for bad in ("soon", "0", "-1", "inf", "nan"):
        with pytest.raises(ConfigError, match="STORAGE_READ_TIMEOUT must be a number"):
            settings_from_env({"STORAGE_READ_TIMEOUT": bad}, str(tmp_path))


def test_production_with_secret_key_marks_cookies_secure(tmp_path: Path) -> None:
    env = {"DASHBOARD_ENV": "production", "SECRET_KEY": "k" * 64, "WEB_CONCURRENCY": "1"}
    env["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    s = settings_from_env(env, str(tmp_path))
    assert s["SECRET_KEY"] == "k" * 64
    assert s["SESSION_COOKIE_SECURE"] is True and s["SESSION_COOKIE_HTTPONLY"] is True


@pytest.mark.parametrize("workers", [None, "", "4", "2"])
def test_production_refuses_per_process_login_counters_with_several_workers(
    tmp_path: Path, workers: str | None
) -> None:
    env = {"DASHBOARD_ENV": "production", "SECRET_KEY": "k" * 64}
    if workers is not None:
        env["WEB_CONCURRENCY"] = workers
    for storage in (None, "memory://", " MEMORY:// "):
        if storage is not None:
            env["RATELIMIT_STORAGE_URI"] = storage
        with pytest.raises(ConfigError, match=r"(?is)memory://.*redis://.*WEB_CONCURRENCY=1"):
            settings_from_env(env, str(tmp_path))


def test_one_declared_worker_or_a_shared_store_may_count_logins(tmp_path: Path) -> None:
    production = {
        "DASHBOARD_ENV": "production",
        "SECRET_KEY": "k" * 64,
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    one_worker = settings_from_env({**production, "WEB_CONCURRENCY": "1"}, str(tmp_path))
    assert one_worker["RATELIMIT_STORAGE_URI"] == "memory://"
    redis = {**production, "WEB_CONCURRENCY": "4", "RATELIMIT_STORAGE_URI": "redis://r:6379/0"}
    assert settings_from_env(redis, str(tmp_path))["RATELIMIT_STORAGE_URI"] == "redis://r:6379/0"
    # Development has one process unless someone says otherwise.
    assert settings_from_env({}, str(tmp_path))["RATELIMIT_STORAGE_URI"] == "memory://"


def test_session_and_login_limit_settings_have_defaults_and_refuse_nonsense(
    tmp_path: Path,
) -> None:
    s = settings_from_env({}, str(tmp_path))
    assert (s["SESSION_IDLE_TIMEOUT_MINUTES"], s["SESSION_LIFETIME_HOURS"]) == (720, 168)
    assert s["PERMANENT_SESSION_LIFETIME"] == s["REMEMBER_COOKIE_DURATION"]
    assert s["PERMANENT_SESSION_LIFETIME"].total_seconds() == 168 * 3600
    assert (
        s["LOGIN_RATE_LIMIT"],
        s["LOGIN_ADDRESS_RATE_LIMIT"],
        s["LOGIN_ACCOUNT_RATE_LIMIT"],
    ) == (
        "5 per 5 minutes",
        "50 per 5 minutes",
        "20 per 15 minutes",
    )
    s = settings_from_env(
        {"SESSION_LIFETIME_HOURS": "24", "LOGIN_ACCOUNT_RATE_LIMIT": "10 per hour"}, str(tmp_path)
    )
    assert s["SESSION_LIFETIME_HOURS"] == 24 and s["LOGIN_ACCOUNT_RATE_LIMIT"] == "10 per hour"
    for name, bad, message in (
        ("SESSION_IDLE_TIMEOUT_MINUTES", "0", "at least 1"),
        ("SESSION_IDLE_TIMEOUT_MINUTES", "soon", "must be a number"),
        ("SESSION_LIFETIME_HOURS", "1.5", "whole number"),
        ("LOGIN_ADDRESS_RATE_LIMIT", "lots", "must read like '50 per 5 minutes'"),
    ):
        with pytest.raises(ConfigError, match=f"{name} {message}|{name} must .*{message}"):
            settings_from_env({name: bad}, str(tmp_path))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u@h/d?sslmode=require", "postgresql+psycopg://u@h/d?sslmode=require"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_urls_are_normalised_to_psycopg3(given: str, expected: str) -> None:
    assert normalise_database_url(given) == (expected, False)


def test_pgbouncer_flag_disables_server_side_prepares(tmp_path: Path) -> None:
    s = settings_from_env(
        {
            "DATABASE_URL": "postgresql://app@pooler:6543/vox?pgbouncer=true&sslmode=require",
            "DIRECT_URL": "postgresql://app@db:5432/vox",
        },
        str(tmp_path),
    )
    assert (
        s["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://app@pooler:6543/vox?sslmode=require"
    )
    assert s["DATABASE_POOLED"] is True
    assert s["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["prepare_threshold"] is None
    assert s["DIRECT_URL"] == "postgresql+psycopg://app@db:5432/vox"


def test_pooled_setting_without_flag(tmp_path: Path) -> None:
    s = settings_from_env(
        {"DATABASE_URL": "postgresql://app@pooler/vox", "DATABASE_POOLED": "1"}, str(tmp_path)
    )
    assert s["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["prepare_threshold"] is None


def test_unpooled_postgres_keeps_prepared_statements(tmp_path: Path) -> None:
    s = settings_from_env({"DATABASE_URL": "postgresql://app@db/vox"}, str(tmp_path))
    assert "prepare_threshold" not in s["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]


def test_r2_names_imply_the_r2_endpoint(tmp_path: Path) -> None:
    s = settings_from_env(
        {
            "R2_ACCOUNT_ID": "abc123",
            "R2_ACCESS_KEY_ID": "AK",
            "R2_SECRET_ACCESS_KEY": "SK",
            "R2_BUCKET_NAME": "voices",
        },
        str(tmp_path),
    )
    assert s["STORAGE_BACKEND"] == "s3"
    assert s["S3_ENDPOINT_URL"] == "https://abc123.r2.cloudflarestorage.com"
    assert s["S3_REGION"] == "auto"
    assert (s["S3_BUCKET"], s["S3_ACCESS_KEY_ID"], s["S3_SECRET_ACCESS_KEY"]) == (
        "voices",
        "AK",
        "SK",
    )


def test_explicit_s3_settings_win_over_r2(tmp_path: Path) -> None:
    s = settings_from_env(
        {
            "R2_ACCOUNT_ID": "abc",
            "S3_ENDPOINT_URL": "http://minio:9000",
            "S3_BUCKET": "b",
            "S3_REGION": "eu-west-1",
        },
        str(tmp_path),
    )
    assert s["S3_ENDPOINT_URL"] == "http://minio:9000" and s["S3_REGION"] == "eu-west-1"


def test_s3_backend_without_bucket_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        settings_from_env({"STORAGE_BACKEND": "s3"}, str(tmp_path))


def test_unknown_storage_backend_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'local' or 's3'"):
        settings_from_env({"STORAGE_BACKEND": "ftp"}, str(tmp_path))


def test_factory_has_no_side_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """create_app must not create the database, the objects folder or a boto3 client."""
    import boto3

    def no_clients(*args, **kwargs):
        raise AssertionError("create_app built a boto3 client")

    monkeypatch.setattr(boto3, "client", no_clients)
    monkeypatch.setattr(boto3.session.Session, "client", no_clients)
    db_file = tmp_path / "never.db"
    app = create_app(
        {
            "SECRET_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_file}",
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": "nowhere",
            "S3_ENDPOINT_URL": "http://127.0.0.1:9",
            "STORAGE_LOCAL_ROOT": str(tmp_path / "objects"),
        }
    )
    assert app.config["S3_BUCKET"] == "nowhere"
    assert not db_file.exists()
    assert not (tmp_path / "objects").exists()
