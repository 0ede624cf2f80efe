"""Build the application's settings from the environment.

Every setting Voxboard reads is decided here, once, so the README's configuration
table and the code cannot drift apart: `settings_from_env` is a pure function of an
environment mapping and the instance folder, which is what the tests exercise.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from limits import parse_many as parse_rate_limits
from sqlalchemy.engine import make_url

TRUTHY = {"1", "true", "yes", "on"}
PRODUCTION_NAMES = {"production", "prod"}
SECRET_KEY_FILE = "secret_key"
ENCRYPTION_KEYS_FILE = "encryption_keys"
MAKE_ENCRYPTION_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
# Sessions and CSRF tokens are HMAC-SHA1/SHA256-signed with SECRET_KEY: 32 characters
# (`secrets.token_hex(16)` or longer) keep a key out of reach of offline guessing.
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it and says what to do."""


def is_production(env: Mapping[str, str]) -> bool:
    """Tell whether the process runs in production (`DASHBOARD_ENV` or `FLASK_ENV`)."""
    name = env.get("DASHBOARD_ENV") or env.get("FLASK_ENV") or "development"
    return name.strip().lower() in PRODUCTION_NAMES


def flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """Read a boolean variable ("1", "true", "yes", "on" mean true)."""
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in TRUTHY


def number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    """Read a number of seconds, attempts or slots; refuse text or a value below `minimum`."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}.") from None
    if not value >= minimum or value == float("inf"):
        raise ConfigError(f"{name} must be a number of at least {minimum:g}, not {raw!r}.")
    return value


def normalise_database_url(url: str) -> tuple[str, bool]:
    """Return the SQLAlchemy URL for `url` and whether it goes through a pooler.

    Hosted providers hand out `postgres://` or `postgresql://` URLs; Voxboard always
    talks psycopg 3. The Prisma-style `?pgbouncer=true` flag is not a libpq option, so
    it is removed here and turned into the "pooled" answer instead.
    """
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
            break
    if not url.startswith("postgresql"):
        return url, False
    parsed = make_url(url)
    flag_value = parsed.query.get("pgbouncer", "")
    pooled = str(flag_value).lower() in TRUTHY
    if "pgbouncer" in parsed.query:
        parsed = parsed.difference_update_query(["pgbouncer"])
    return parsed.render_as_string(hide_password=False), pooled


def redacted_url(url: str) -> str:
    """Return a database or queue URL fit for a log line or a message: no password.

    Redis URLs don't always parse as SQLAlchemy URLs; then only the part after the
    credentials is shown.
    """
    if url.startswith("sqlite"):
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  (any URL SQLAlchemy can't parse)
        return url.split("@")[-1]


def engine_options(url: str, pooled: bool) -> dict[str, Any]:
    """Choose engine options for the database behind `url`."""
    if url.startswith("postgresql"):
        connect_args: dict[str, Any] = {"connect_timeout": 5}
        if pooled:
            # pgbouncer in transaction mode hands each transaction to any server
            # connection, so prepared statements made on one are missing on the next.
            connect_args["prepare_threshold"] = None
        return {"pool_pre_ping": True, "connect_args": connect_args}
    if url.startswith("sqlite"):
        # The web server and the worker share the file: wait for locks, don't fail.
        return {"connect_args": {"timeout": 15}}
    return {}


def storage_settings(env: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Read the object-storage settings, accepting Cloudflare's `R2_*` names too."""
    r2_account = env.get("R2_ACCOUNT_ID", "").strip()
    endpoint = env.get("S3_ENDPOINT_URL", "").strip() or None
    region = env.get("S3_REGION", "").strip() or None
    if r2_account and not endpoint:
        endpoint = f"https://{r2_account}.r2.cloudflarestorage.com"
        region = region or "auto"
    bucket = (env.get("S3_BUCKET") or env.get("R2_BUCKET_NAME") or "").strip() or None
    backend = (env.get("STORAGE_BACKEND") or ("s3" if bucket else "local")).strip().lower()
    if backend not in {"local", "s3"}:
        raise ConfigError(f"STORAGE_BACKEND must be 'local' or 's3', not {backend!r}.")
    if backend == "s3" and not bucket:
        raise ConfigError("STORAGE_BACKEND=s3 needs S3_BUCKET (or R2_BUCKET_NAME).")
    return {
        "STORAGE_BACKEND": backend,
        "STORAGE_LOCAL_ROOT": env.get("STORAGE_LOCAL_ROOT")
        or os.path.join(instance_path, "objects"),
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": endpoint,
        "S3_REGION": region,
        "S3_ACCESS_KEY_ID": env.get("S3_ACCESS_KEY_ID") or env.get("R2_ACCESS_KEY_ID") or None,
        "S3_SECRET_ACCESS_KEY": env.get("S3_SECRET_ACCESS_KEY")
        or env.get("R2_SECRET_ACCESS_KEY")
        or None,
        "S3_ADDRESSING_STYLE": env.get("S3_ADDRESSING_STYLE", "").strip() or None,
        # Every S3 call: how long to wait to connect and for the next bytes, how many
        # attempts in all, and the per-process breaker and bulkhead (docs/operations.md).
        "STORAGE_CONNECT_TIMEOUT": number(env, "STORAGE_CONNECT_TIMEOUT", 3.0, minimum=0.1),
        "STORAGE_READ_TIMEOUT": number(env, "STORAGE_READ_TIMEOUT", 10.0, minimum=0.1),
        "STORAGE_MAX_ATTEMPTS": int(number(env, "STORAGE_MAX_ATTEMPTS", 2, minimum=1)),
        "STORAGE_MAX_CONCURRENT_CALLS": int(
            number(env, "STORAGE_MAX_CONCURRENT_CALLS", 2, minimum=1)
        ),
        "STORAGE_COOLDOWN_SECONDS": number(env, "STORAGE_COOLDOWN_SECONDS", 15.0, minimum=1),
        # /readyz's own storage probe: shorter than any request's wait.
        "STORAGE_READY_TIMEOUT": number(env, "STORAGE_READY_TIMEOUT", 2.0, minimum=0.1),
    }


def whole_number(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    """Read a whole number (minutes, hours); refuse text, fractions or less than `minimum`."""
    value = number(env, name, default, minimum=minimum)
    if not float(value).is_integer():
        raise ConfigError(f"{name} must be a whole number, not {env[name].strip()!r}.")
    return int(value)


def session_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Read how long a login session lasts: idle timeout and absolute lifetime.

    The cookie only names a server-side session (`dashboard/auth/login_sessions.py`), which
    ends after `SESSION_IDLE_TIMEOUT_MINUTES` without a request or `SESSION_LIFETIME_HOURS`
    after logging in, whichever comes first. Flask's permanent-session and Flask-Login's
    remember-cookie lifetimes are the same, so no cookie is meant to outlive its session.
    """
    hours = whole_number(env, "SESSION_LIFETIME_HOURS", 168)
    return {
        "SESSION_IDLE_TIMEOUT_MINUTES": whole_number(env, "SESSION_IDLE_TIMEOUT_MINUTES", 720),
        "SESSION_LIFETIME_HOURS": hours,
        "PERMANENT_SESSION_LIFETIME": dt.timedelta(hours=hours),
        "REMEMBER_COOKIE_DURATION": dt.timedelta(hours=hours),
    }


LOGIN_LIMITS = {
    # Failed logins per (account, address), per address, and per account (the last only
    # for addresses that failed on it): see dashboard/auth/throttle.py.
    "LOGIN_RATE_LIMIT": "5 per 5 minutes",
    "LOGIN_ADDRESS_RATE_LIMIT": "50 per 5 minutes",
    "LOGIN_ACCOUNT_RATE_LIMIT": "20 per 15 minutes",
}


def rate_limit_settings(env: Mapping[str, str], production: bool) -> dict[str, Any]:
    """Read the login limits and where every limit's counters live.

    `memory://` keeps the counters inside each process: with several gunicorn workers an
    attacker gets each worker's allowance, so production refuses it unless a single
    worker is declared with `WEB_CONCURRENCY=1` (the variable gunicorn reads itself).
    """
    storage = env.get("RATELIMIT_STORAGE_URI", "").strip() or "memory://"
    workers = env.get("WEB_CONCURRENCY", "").strip()
    if production and storage.lower().startswith("memory://") and workers != "1":
        raise ConfigError(
            f"RATELIMIT_STORAGE_URI is {storage}, which counts failed logins separately in "
            "each worker process, so with several workers the login limits multiply. Set "
            "RATELIMIT_STORAGE_URI to a Redis URL all workers share (redis://host:6379/0), "
            "or run one worker and declare it with WEB_CONCURRENCY=1."
        )
    limits: dict[str, str] = {}
    for name, default in LOGIN_LIMITS.items():
        limits[name] = env.get(name, "").strip() or default
        try:
            parse_rate_limits(limits[name])
        except ValueError:
            raise ConfigError(
                f"{name} must read like {default!r} (a count per a period), not {limits[name]!r}."
            ) from None
    return {
        "RATELIMIT_STORAGE_URI": storage,
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis down: count in each process's memory meanwhile, never answer 500.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        **limits,
    }


def load_secret_key(env: Mapping[str, str], instance_path: str, production: bool) -> str:
    """Return `SECRET_KEY`, generating a development key into the instance folder once.

    Production refuses to invent a key: sessions signed with a key that changes on
    every deploy (or differs between workers) would silently log everybody out.
    """
    key = env.get("SECRET_KEY", "").strip()
    make_one = "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
    if key and production and len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"SECRET_KEY is {len(key)} characters long; production needs at least "
            f"{MIN_SECRET_KEY_LENGTH} random characters to sign sessions safely; {make_one}"
        )
    if key:
        return key
    if production:
        raise ConfigError(
            f"SECRET_KEY is not set. In production Voxboard refuses to start without it; {make_one}"
        )
    return instance_secret(Path(instance_path) / SECRET_KEY_FILE, lambda: secrets.token_hex(32))


def instance_secret(path: Path, make: Callable[[], str]) -> str:
    """Return the development secret stored at `path`, writing `make()` there (0600) once."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: when two processes start at once, one writes and both read the same value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def parse_encryption_keys(raw: str, name: str = "ENCRYPTION_KEYS") -> list[str]:
    """Return the comma-separated Fernet keys in `raw`, newest first.

    A bad entry is named by its position, never shown: the message may end up in a log.
    """
    entries = [entry.strip() for entry in raw.split(",")]
    for position, entry in enumerate(entries, start=1):
        where = f"{name} entry {position} of {len(entries)}"
        if not entry:
            raise ConfigError(
                f"{where} is empty; separate the keys with single commas, the newest first."
            )
        try:
            Fernet(entry)
        except ValueError:
            raise ConfigError(
                f"{where} is not a Fernet key (32 random bytes in url-safe base64, 44 "
                f"characters); generate one with: {MAKE_ENCRYPTION_KEY}"
            ) from None
    return entries


def load_encryption_keys(env: Mapping[str, str], instance_path: str, production: bool) -> list[str]:
    """Return `ENCRYPTION_KEYS`, generating a development key into the instance folder once.

    Production refuses to invent one: secrets encrypted with a key that changes on every
    deploy (or differs between workers) could never be read again.
    """
    raw = env.get("ENCRYPTION_KEYS", "").strip()
    if raw:
        return parse_encryption_keys(raw)
    if production:
        raise ConfigError(
            "ENCRYPTION_KEYS is not set. In production Voxboard refuses to start without it: "
            "stored secrets (webhook signing secrets) are encrypted with it. Generate a key "
            f"with: {MAKE_ENCRYPTION_KEY}"
        )
    path = Path(instance_path) / ENCRYPTION_KEYS_FILE
    stored = instance_secret(path, lambda: Fernet.generate_key().decode("ascii"))
    return parse_encryption_keys(stored, name=str(path))


def webhook_settings(env: Mapping[str, str], production: bool) -> dict[str, Any]:
    """Read the webhook settings; production refuses deliveries to this machine's addresses."""
    allow_loopback = flag(env, "WEBHOOKS_ALLOW_LOOPBACK")
    if production and allow_loopback:
        raise ConfigError(
            "WEBHOOKS_ALLOW_LOOPBACK is on, which lets any organisation's webhooks reach "
            "services listening on this machine (127.0.0.1, ::1); it is for development and "
            "tests only, so production refuses it. Unset it."
        )
    return {"WEBHOOKS_ALLOW_LOOPBACK": allow_loopback, "PUBLIC_URL": public_url(env)}


def public_url(env: Mapping[str, str]) -> str | None:
    """Read `PUBLIC_URL`, where people and programs reach this server (no trailing slash).

    Workers build the links in webhook payloads (`audio_url`) from it: they have no
    request to take a host from. Unset: http://127.0.0.1:5000, right for development.
    """
    raw = env.get("PUBLIC_URL", "").strip().rstrip("/")
    if not raw:
        return None
    parsed = urlsplit(raw)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname or parsed.query:
        raise ConfigError(
            f"PUBLIC_URL must be the server's address as people reach it, like "
            f"https://voxboard.example.com, not {raw!r}."
        )
    return raw


def settings_from_env(env: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Return every setting Voxboard reads, derived from `env` (usually `os.environ`)."""
    production = is_production(env)
    default_db = "sqlite:///" + os.path.join(instance_path, "voxboard.db")
    database_url, pooled_flag = normalise_database_url(env.get("DATABASE_URL") or default_db)
    pooled = pooled_flag or flag(env, "DATABASE_POOLED")
    direct_url = env.get("DIRECT_URL")
    settings: dict[str, Any] = {
        "ENV_NAME": "production" if production else "development",
        "SECRET_KEY": load_secret_key(env, instance_path, production),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url, pooled),
        "DATABASE_POOLED": pooled,
        "DIRECT_URL": normalise_database_url(direct_url)[0] if direct_url else None,
        "RLS_REQUIRED": flag(
            env, "RLS_REQUIRED", production and database_url.startswith("postgresql")
        ),
        "OPERATOR_DATABASE_URL": normalise_database_url(env["OPERATOR_DATABASE_URL"])[0]
        if env.get("OPERATOR_DATABASE_URL")
        else None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "FORCE_HTTPS": flag(env, "FORCE_HTTPS", default=False),
        "SYSTEM_AUDIO_MAX_AGE": int(env.get("SYSTEM_AUDIO_MAX_AGE", "86400")),
        "S3_PRESIGNED_REDIRECTS": flag(env, "S3_PRESIGNED_REDIRECTS"),
        # CSRF tokens live as long as the session (htmx pages stay open for hours).
        "WTF_CSRF_TIME_LIMIT": None,
        "PASSWORD_HASH_PROFILE": "default",
        "INVITATION_TTL_HOURS": int(env.get("INVITATION_TTL_HOURS", "72")),
        # Reference audio uploads: bigger bodies are refused before they are read.
        "VOICE_UPLOAD_MAX_BYTES": int(env.get("VOICE_UPLOAD_MAX_BYTES", str(20 * 1024 * 1024))),
        "SMTP_URL": env.get("SMTP_URL", "").strip() or None,
        # Speech: which engine speaks, and where a remote one listens.
        "TTS_ENGINE": env.get("TTS_ENGINE", "espeak").strip().lower() or "espeak",
        "TTS_URL": env.get("TTS_URL", "").strip().rstrip("/") or None,
        "TTS_API_KEY": env.get("TTS_API_KEY", "").strip() or None,
        "TTS_TIMEOUT_SECONDS": float(env.get("TTS_TIMEOUT_SECONDS", "120")),
        # Background jobs (huey): a SQLite file by default, or redis:// / postgresql://.
        "JOBS_URL": env.get("JOBS_URL", "").strip()
        or "sqlite:///" + os.path.join(instance_path, "jobs.db"),
        "JOBS_IMMEDIATE": flag(env, "JOBS_IMMEDIATE"),
        "JOB_MAX_RETRIES": int(env.get("JOB_MAX_RETRIES", "3")),
        "JOB_RETRY_DELAY_SECONDS": float(env.get("JOB_RETRY_DELAY_SECONDS", "5")),
        "JOB_RUNNING_TIMEOUT_SECONDS": int(env.get("JOB_RUNNING_TIMEOUT_SECONDS", "600")),
        "GENERATION_RATE_LIMIT": env.get("GENERATION_RATE_LIMIT", "30 per minute"),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
    }
    settings.update(storage_settings(env, instance_path))
    settings.update(session_settings(env))
    settings.update(rate_limit_settings(env, production))
    settings.update(api_settings(env))
    settings.update(webhook_settings(env, production))
    settings["ENCRYPTION_KEYS"] = load_encryption_keys(env, instance_path, production)
    return settings


def api_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Return the public API's settings (`dashboard/api`, docs/api.md)."""
    return {
        # The key of the keyed hash stored for each API key's secret. Unset: derived from
        # SECRET_KEY (`api.keys.hash_key`), so rotating SECRET_KEY would void every API
        # key; set it on its own to rotate the two independently.
        "API_KEY_HASH_KEY": env.get("API_KEY_HASH_KEY", "").strip() or None,
        # Requests per key (Flask-Limiter syntax; several limits separated by ";").
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT", "120 per minute; 5000 per hour"),
        # Per-day request counters are written at most this often per process.
        "API_COUNTER_FLUSH_SECONDS": float(env.get("API_COUNTER_FLUSH_SECONDS", "5")),
        # flask-smorest: the OpenAPI document at /api/v1/openapi.json, no bundled UI.
        "API_TITLE": "Voxboard API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
    }
