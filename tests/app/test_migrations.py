"""Migrations run up, down and up again on both databases, and match the models."""

from __future__ import annotations

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
