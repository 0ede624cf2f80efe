"""No webhook signing secret is stored in plain text: the whole database, dumped, is searched.

SQLite: the database file's bytes (with its write-ahead log, if any). PostgreSQL:
`pg_dump` of the test database, as a backup would be made. Both after endpoints were
created and one of them rotated, so current and previous secrets are looked for.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from dashboard.extensions import db
from dashboard.models import WebhookEndpoint
from dashboard.tenancy.operator import operator_access
from dashboard.webhooks import services
from tests import factories
from tests.databases import both_databases


def forms_of(secret: str) -> list[bytes]:
    """The secret as text, and the raw key bytes it encodes (either would be a leak)."""
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    return [secret.encode(), secret.removeprefix("whsec_").encode(), raw, raw.hex().encode()]


def dump(database_url: str) -> bytes:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    command = [
        "pg_dump",
        "--no-owner",
        "--host", url.host or "127.0.0.1",
        "--port", str(url.port or 5432),
        "--username", url.username or "postgres",
        url.database or "postgres",
    ]  # fmt: skip
    return subprocess.run(command, check=True, capture_output=True, timeout=120).stdout


@both_databases
def test_a_database_dump_holds_no_signing_secret(app: Flask, database_url: str):
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org()
        made = [
            services.create_endpoint(
                org.id, None, f"https://hooks{n}.example.com/x", "", ["voice.created"]
            )
            for n in range(3)
        ]
        secrets = [m.secret for m in made]
        secrets.append(services.rotate_secret(made[0].endpoint))
        stored = db.session.query(WebhookEndpoint).count()
        db.session.commit()  # SQLite: in the file or its write-ahead log, both read below
    assert stored == 3
    found = dump(database_url)
    assert b"webhook_endpoints" in found  # the dump has the table
    for secret in secrets:
        for form in forms_of(secret):
            assert form not in found, "a signing secret is in the dump in plain text"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_dump_check_would_see_a_secret_stored_in_plain_text(app: Flask, database_url: str):
    """The search above can find what it looks for: a plain secret in a row is seen."""
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org()
        made = services.create_endpoint(
            org.id, None, "https://hooks.example.com/x", "", ["voice.created"]
        )
        made.endpoint.description = made.secret[:200]
        db.session.commit()
    assert made.secret.encode() in dump(database_url)
