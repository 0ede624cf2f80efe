"""Voxboard: a server-rendered dashboard for a multi-tenant text-to-speech platform."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Every script, style and sound comes from this origin: no inline code, no CDN.
CONTENT_SECURITY_POLICY: dict[str, str | list[str]] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": ["'self'", "data:"],
    "media-src": ["'self'", "blob:"],
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def content_security_policy(config: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Return the CSP; presigned audio redirects (S3) add the bucket's origin to media-src."""
    if not (config.get("S3_PRESIGNED_REDIRECTS") and config.get("STORAGE_BACKEND") == "s3"):
        return CONTENT_SECURITY_POLICY
    from urllib.parse import urlsplit

    # boto3 signs path-style URLs for a custom endpoint and virtual-hosted ones for AWS,
    # unless S3_ADDRESSING_STYLE says otherwise.
    bucket, style = config.get("S3_BUCKET"), config.get("S3_ADDRESSING_STYLE")
    endpoint = urlsplit(config.get("S3_ENDPOINT_URL") or "https://s3.amazonaws.com")
    hosts = [endpoint.netloc]
    if not config.get("S3_ENDPOINT_URL"):
        hosts.append(f"s3.{config.get('S3_REGION') or 'us-east-1'}.amazonaws.com")
    if style == "virtual" or (style != "path" and not config.get("S3_ENDPOINT_URL")):
        hosts = [f"{bucket}.{host}" for host in hosts]
    origins = [f"{endpoint.scheme}://{host}" for host in hosts]
    return {**CONTENT_SECURITY_POLICY, "media-src": ["'self'", "blob:", *origins]}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build a configured application without touching the database, storage or network."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    register_config(app, test_config)
    register_input_checks(app)
    register_extensions(app)
    register_blueprints(app)
    register_cli(app)
    register_template_helpers(app)
    register_error_handlers(app)
    return app


def register_config(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    """Load settings from the environment, then let `test_config` override them."""
    from dashboard.config import engine_options, settings_from_env

    env = dict(os.environ)
    if test_config and "SECRET_KEY" in test_config:
        # Tests bring their own key; don't generate one into the real instance folder.
        env["SECRET_KEY"] = str(test_config["SECRET_KEY"])
    if test_config and test_config.get("ENCRYPTION_KEYS"):
        keys = test_config["ENCRYPTION_KEYS"]
        env["ENCRYPTION_KEYS"] = keys if isinstance(keys, str) else ",".join(keys)
    app.config.update(settings_from_env(env, app.instance_path))
    if test_config:
        app.config.update(test_config)
        if "SQLALCHEMY_ENGINE_OPTIONS" not in test_config:
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
                app.config["SQLALCHEMY_DATABASE_URI"], app.config["DATABASE_POOLED"]
            )


def register_input_checks(app: Flask) -> None:
    """Refuse text no page or database can hold in the path and query, before any other hook."""
    from dashboard import edge

    edge.init_app(app)


def register_extensions(app: Flask) -> None:
    """Bind the extension singletons; none of them connects anywhere yet."""
    from dashboard import queue, storage, tenancy
    from dashboard.analytics import snapshots
    from dashboard.api import auth as api_auth
    from dashboard.api import idempotency
    from dashboard.auth import login_sessions
    from dashboard.database import install_sqlite_pragmas
    from dashboard.extensions import (
        csrf,
        db,
        htmx_flask,
        limiter,
        login_manager,
        migrate,
        talisman,
    )
    from dashboard.generations import jobs as generation_jobs
    from dashboard.tenancy import rls
    from dashboard.webhooks import delivery as webhook_delivery

    install_sqlite_pragmas()
    tenancy.install_tenant_filter()
    db.init_app(app)
    rls.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_sessions.init_login(login_manager)
    # Before the limiter's own hook: the API's limit counts per key, so the key is known first.
    api_auth.init_app(app)
    limiter.init_app(app)
    app.before_request(tenancy.claim_session_user)
    app.teardown_request(tenancy.leave_org)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    htmx_flask.init_app(app)
    talisman.init_app(
        app,
        force_https=app.config["FORCE_HTTPS"],
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        content_security_policy=content_security_policy(app.config),
        # No inline script anywhere, so no nonces are needed.
        content_security_policy_nonce_in=[],
        referrer_policy="strict-origin-when-cross-origin",
        frame_options="DENY",
    )
    storage.init_app(app)
    queue.init_app(
        app,
        tasks=[
            generation_jobs.register_tasks,
            snapshots.register_tasks,
            login_sessions.register_tasks,
            idempotency.register_tasks,
            webhook_delivery.register_tasks,
        ],
    )
    webhook_delivery.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Mount each area's blueprints; importing an area's view modules attaches its views."""
    from dashboard import (
        analytics,
        api,
        auth,
        generations,
        health,
        history,
        members,
        orgs,
        voices,
        webhooks,
    )
    from dashboard.analytics import routes as _analytics_views  # noqa: F401
    from dashboard.api import manage as _api_key_views  # noqa: F401
    from dashboard.api import reference
    from dashboard.api import routes as _api_views  # noqa: F401
    from dashboard.api import webhooks as _api_webhook_views  # noqa: F401
    from dashboard.auth import routes as _auth_views  # noqa: F401
    from dashboard.generations import routes as _generation_views  # noqa: F401
    from dashboard.history import routes as _history_views  # noqa: F401
    from dashboard.members import routes as _member_views  # noqa: F401
    from dashboard.orgs import routes as _org_views  # noqa: F401
    from dashboard.voices import manage as _voice_manage_views  # noqa: F401
    from dashboard.voices import routes as _voice_views  # noqa: F401
    from dashboard.webhooks import manage as _webhook_views  # noqa: F401

    for blueprint in (
        health.bp,
        auth.bp,
        orgs.bp,
        orgs.org_bp,
        members.bp,
        members.public_bp,
        voices.bp,
        voices.library_bp,
        generations.generate_bp,
        generations.bp,
        history.bp,
        analytics.bp,
        api.keys_bp,
        webhooks.webhooks_bp,
    ):
        app.register_blueprint(blueprint)
    reference.init_app(app)


def register_cli(app: Flask) -> None:
    """Add the operator commands (`flask seed`, ...)."""
    from dashboard.cli import register_commands

    register_commands(app)


def register_template_helpers(app: Flask) -> None:
    """Expose small formatting helpers to every template."""
    from dashboard import templating

    templating.init_app(app)


def register_error_handlers(app: Flask) -> None:
    """Answer errors with a readable page (or plain text for htmx and media requests)."""
    from dashboard.errors import init_app

    init_app(app)
