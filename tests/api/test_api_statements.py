"""What API calls cost in SQL statements, on SQLite and as the web role.

Counted like the pages' (`tests/tenancy/test_matrix.py`): a warm call first, then the
statements the app's engine runs for the same call, body read. PostgreSQL's include
the row-level-security settings. As in production, the per-key request counters are
written in batches (`API_COUNTER_FLUSH_SECONDS`), not by the request, and a
generation's job runs in a worker, not in the request that queued it.

Reads and deletes: at most five. A submission writes its generation, its ledger line
and its `Idempotency-Key` in one transaction, so it gets a budget of its own; creating
or deleting a voice also reads the org's webhook endpoints for the outbox (one more).
"""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from sqlalchemy import event

from dashboard.extensions import db
from tests.api.conftest import Tenant
from tests.api.test_api_voices import post_voice
from tests.api.test_api_webhooks import make_webhook
from tests.databases import WEB_ROLE_BACKENDS

MAX_STATEMENTS = 5
# The key's hash set, the key with its org, the org set, the Idempotency-Key, the
# voice, the generation, its ledger line, the Idempotency-Key's row.
MAX_SUBMISSION_STATEMENTS = 8
# Five, and the outbox's read of the org's endpoints (`webhooks.events.emit`).
MAX_VOICE_WRITE_STATEMENTS = 6


def statements(app: Flask, call) -> list[str]:
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_rest) -> None:
        seen.append(" ".join(statement.split())[:100])

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = call()
        response.get_data()
        response.close()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


@pytest.fixture
def as_in_production(app: Flask, monkeypatch):
    """Counters in batches, jobs queued for a worker (recorded, not run)."""
    monkeypatch.setitem(app.config, "API_COUNTER_FLUSH_SECONDS", 3600)
    queued: list[uuid.UUID] = []
    monkeypatch.setattr(
        "dashboard.api.routes.enqueue_generation", lambda gid, _org: queued.append(gid)
    )
    return queued


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_every_api_call_costs_at_most_five_statements(
    app: Flask, client, tenant: Tenant, as_in_production
):
    h = tenant.headers
    voice, generation = tenant.voice_id, tenant.generation_id
    webhook = make_webhook(app, tenant)
    reads = [
        "/api/v1/voices?limit=100",
        f"/api/v1/voices/{voice}",
        f"/api/v1/voices/{voice}/audio",
        "/api/v1/generations?limit=100",
        f"/api/v1/generations?voice_id={voice}&status=queued&q=hello&from=2026-01-01",
        f"/api/v1/generations/{generation}",
        f"/api/v1/generations/{generation}/audio",
        "/api/v1/usage",
        "/api/v1/webhooks?limit=100",
        f"/api/v1/webhooks/{webhook}",
    ]
    costs: dict[str, list[str]] = {}
    for url in reads:
        client.get(url, headers=h).close()  # warm
        costs[f"GET {url}"] = statements(app, lambda url=url: client.get(url, headers=h))

    def submit():
        return client.post(
            "/api/v1/generations",
            json={"text": "Counting statements.", "voice_id": str(voice)},
            headers={**h, "Idempotency-Key": str(uuid.uuid4())},
        )

    submit().close()
    submission = statements(app, submit)
    assert len(as_in_production) == 2  # queued, not spoken in the request
    made = submit().get_json()["id"]
    costs["DELETE /api/v1/generations/{id}"] = statements(
        app, lambda: client.delete(f"/api/v1/generations/{made}", headers=h)
    )
    post_voice(client, tenant, name="Warm-up voice").close()
    created: list[str] = []

    def create_voice():
        response = post_voice(client, tenant, name="Counted voice")
        created.append(response.get_json()["id"])
        return response

    voice_writes = {
        "POST /api/v1/voices": statements(app, create_voice),
        "DELETE /api/v1/voices/{id}": statements(
            app, lambda: client.delete(f"/api/v1/voices/{created[0]}", headers=h)
        ),
    }
    hook = {"url": "https://hooks.example.com/counted", "event_types": ["generation.failed"]}
    added: list[str] = []

    def add_webhook():
        response = client.post("/api/v1/webhooks", json=hook, headers=h)
        added.append(response.get_json()["id"])
        return response

    costs["POST /api/v1/webhooks"] = statements(app, add_webhook)
    costs["DELETE /api/v1/webhooks/{id}"] = statements(
        app, lambda: client.delete(f"/api/v1/webhooks/{added[0]}", headers=h)
    )
    over = {call: seen for call, seen in costs.items() if len(seen) > MAX_STATEMENTS}
    assert not over, "\n".join(
        f"{call}: {len(seen)}: " + " | ".join(seen) for call, seen in over.items()
    )
    assert len(submission) <= MAX_SUBMISSION_STATEMENTS, " | ".join(submission)
    for call, seen in voice_writes.items():
        assert len(seen) <= MAX_VOICE_WRITE_STATEMENTS, f"{call}: " + " | ".join(seen)
