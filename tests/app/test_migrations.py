"""Migrations run up, down and up again on both databases, and match the models."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, current_app
from flask_migrate import check, downgrade, upgrade
from sqlalchemy import inspect, text

from dashboard import create_app
from dashboard.extensions import db
from tests.databases import BACKENDS, make_config, pg_url, private_schema_app

EXPECTED_TABLES = {"organizations", "users", "memberships", "voices", "generations", "invitations"}


@pytest.fixture
def empty_db_app(backend: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty database (PostgreSQL: a private schema, dropped afterwards)."""
    if backend == "sqlite":
        yield create_app(make_config(f"sqlite:///{tmp_path / 'mig.db'}", tmp_path))
        return
    with private_schema_app(pg_url(), tmp_path, "mig") as app:
        yield app


def table_names() -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_upgrade_downgrade_upgrade(empty_db_app: Flask) -> None:
    with empty_db_app.app_context():
        upgrade()
        assert EXPECTED_TABLES <= table_names()
        downgrade(revision="base")
        assert table_names() == set()
        upgrade()
        assert EXPECTED_TABLES <= table_names()
        assert current_revision() == head_revision()


def current_revision() -> str:
    return db.session.scalar(text("SELECT version_num FROM alembic_version"))


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    config = current_app.extensions["migrate"].migrate.get_config()
    return ScriptDirectory.from_config(config).get_current_head()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_models_and_migrations_agree(empty_db_app: Flask) -> None:
    """`flask db check` finds no drift (it exits non-zero when it does)."""
    with empty_db_app.app_context():
        upgrade()
        check()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_stored_snapshots_get_their_billed_characters_by_source(empty_db_app: Flask) -> None:
    """0012 fills in `characters_billed` and `by_source` of snapshots stored before it."""
    org, key = "0" * 31 + "1", "0" * 31 + "2"
    as_uuid = {value: str(uuid.UUID(value)) for value in (org, key)}
    with empty_db_app.app_context():
        upgrade(revision="0011_api_keys")
        postgres = db.engine.dialect.name == "postgresql"

        def ident(value: str) -> str:
            return as_uuid[value] if postgres else value

        db.session.execute(
            text("INSERT INTO organizations (id, slug, name) VALUES (:id, 'acme', 'Acme')"),
            {"id": ident(org)},
        )
        db.session.execute(
            text(
                "INSERT INTO api_keys (id, org_id, name, secret_hash, last_four, scopes) "
                "VALUES (:id, :org, 'CI pipeline', :hash, 'abcd', '[]')"
            ),
            {"id": ident(key), "org": ident(org), "hash": "f" * 64},
        )
        lines = [
            # (source, key, kind, characters, counted at)
            ("web", None, "charge", 30, "2026-03-04 09:00:00"),
            ("web", None, "charge", 25, "2026-03-04 23:59:59"),
            ("api", key, "charge", 40, "2026-03-04 10:00:00"),
            ("api", key, "charge", 7, "2026-03-04 11:00:00"),
            ("api", key, "refund", -7, "2026-03-04 11:00:00"),  # it failed for good
            ("web", None, "charge", 99, "2026-03-05 00:00:00"),  # the next day
        ]
        for n, (source, api_key, kind, characters, counted_at) in enumerate(lines, 10):
            db.session.execute(
                text(
                    "INSERT INTO usage_ledger (id, org_id, generation_id, api_key_id, source, "
                    "kind, characters, counted_at) VALUES "
                    "(:id, :org, :id, :key, :source, :kind, :characters, :at)"
                ),
                {
                    "id": str(uuid.UUID(int=n)) if postgres else f"{n:032x}",
                    "org": ident(org),
                    "key": api_key and ident(api_key),
                    "source": source,
                    "kind": kind,
                    "characters": characters,
                    "at": counted_at + ("+00" if postgres else ".000000"),
                },
            )
        for n, day in enumerate(("2026-03-04", "2026-03-06"), 20):
            db.session.execute(
                text(
                    "INSERT INTO analytics_snapshots (id, org_id, day, generations_succeeded, "
                    "generations_failed, characters, audio_ms, voices_used, custom_voices, "
                    "members, by_voice, by_category, by_member) VALUES "
                    "(:id, :org, :day, 3, 1, 95, 0, 1, 0, 1, '{}', '{}', '{}')"
                ),
                {
                    "id": str(uuid.UUID(int=n)) if postgres else f"{n:032x}",
                    "org": ident(org),
                    "day": day,
                },
            )
        db.session.commit()
        upgrade()
        rows = db.session.execute(
            text("SELECT day, characters_billed, by_source FROM analytics_snapshots ORDER BY day")
        ).all()
    by_day = {str(day): (billed, _json(by_source)) for day, billed, by_source in rows}
    assert by_day == {
        "2026-03-04": (
            95,
            {
                "web": {"name": "Dashboard", "kind": "web", "submissions": 2, "characters": 55},
                as_uuid[key]: {
                    "name": "CI pipeline",
                    "kind": "api",
                    "submissions": 2,
                    "characters": 40,
                },
            },
        ),
        # Nothing counted that day (the 5th has no snapshot row to fill in).
        "2026-03-06": (0, {}),
    }


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
