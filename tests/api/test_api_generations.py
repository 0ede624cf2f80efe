"""Generations through the API: submit, follow, fetch the audio, list, delete; quotas,
idempotency and what the ledger records."""

from __future__ import annotations

import uuid

from flask import Flask
from sqlalchemy import select

from dashboard import tenancy
from dashboard.extensions import db
from dashboard.models import (
    ApiKey,
    Generation,
    GenerationStatus,
    Organization,
    UsageEntry,
    UsageSource,
    Voice,
)
from tests.api.conftest import Tenant
from tests.factories import make_generation

PROBLEM = "application/problem+json"


def submit(client, tenant: Tenant, headers=None, **body):
    body.setdefault("text", "Hello from the API.")
    body.setdefault("voice_id", str(tenant.voice_id))
    return client.post(
        "/api/v1/generations", json=body, headers={**tenant.headers, **(headers or {})}
    )


def test_a_submission_is_accepted_spoken_and_charged_to_its_key(app: Flask, client, tenant):
    response = submit(client, tenant, text="  Hello from the API.  ", top_k=50)
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/generations/{body['id']}"
    assert body["text"] == "Hello from the API."  # trimmed, as the form does
    assert body["characters"] == len("Hello from the API.")
    assert body["top_k"] == 50 and body["temperature"] == 0.8  # given, and the default
    assert body["source"] == "api"
    # Jobs run immediately in tests: the status is already final.
    polled = client.get(response.headers["Location"], headers=tenant.headers).get_json()
    assert polled["status"] == "succeeded" and polled["audio_url"].endswith("/audio")
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        lines = db.session.scalars(
            select(UsageEntry).where(UsageEntry.generation_id == uuid.UUID(body["id"]))
        ).all()
        assert [(e.source, e.api_key_id, e.characters) for e in lines] == [
            (UsageSource.API, tenant.key_id, body["characters"])
        ]
        assert db.session.get(Generation, uuid.UUID(body["id"])).api_key_id == tenant.key_id


def test_the_audio_is_409_until_ready_then_served_with_range(app: Flask, client, tenant):
    queued = f"/api/v1/generations/{tenant.generation_id}/audio"
    response = client.get(queued, headers=tenant.headers)
    assert response.status_code == 409 and response.content_type == PROBLEM
    assert "no audio yet (it is queued)" in response.get_json()["detail"]
    accepted = submit(client, tenant)
    assert accepted.get_json()["status"] == "queued"  # as accepted; the job runs after
    done = client.get(accepted.headers["Location"], headers=tenant.headers).get_json()
    whole = client.get(done["audio_url"], headers=tenant.headers)
    assert whole.status_code == 200 and whole.data[:4] == b"RIFF"
    assert whole.headers["ETag"] and whole.headers["Accept-Ranges"] == "bytes"
    part = client.get(done["audio_url"], headers={**tenant.headers, "Range": "bytes=0-3"})
    assert part.status_code == 206 and part.data == b"RIFF"


def test_validation_errors_name_each_field_and_change_nothing(app: Flask, client, tenant):
    response = submit(
        client, tenant, text="   ", voice_id="not-an-id", top_k=2.5, temperature=9, colour="red"
    )
    assert response.status_code == 422 and response.content_type == PROBLEM
    problem = response.get_json()
    found = {(e["path"], e["in"]) for e in problem["errors"]}
    assert found == {
        ("text", "body"),
        ("voice_id", "body"),
        ("top_k", "body"),
        ("temperature", "body"),
        ("colour", "body"),
    }
    messages = {e["path"]: e["message"] for e in problem["errors"]}
    assert messages["temperature"] == "Creativity must be a number from 0 to 2."
    assert "5,000 characters" in messages["text"]
    assert problem["type"].endswith("#problem-validation")
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        assert (
            db.session.scalar(
                select(UsageEntry.id).where(UsageEntry.api_key_id.is_not(None)).limit(1)
            )
            is None
        )


def test_text_no_database_can_hold_is_refused_inline(client, tenant):
    response = submit(client, tenant, text="Hello\x00world")
    assert response.status_code == 422
    assert "NUL character" in response.get_json()["errors"][0]["message"]


def test_malformed_and_missing_json_are_clear_problems(client, tenant):
    broken = client.post(
        "/api/v1/generations",
        data=b'{"text": "hi", ',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert broken.status_code in (400, 422) and broken.content_type == PROBLEM
    assert broken.get_json()["detail"]
    empty = client.post("/api/v1/generations", headers=tenant.headers)
    assert empty.status_code in (400, 415, 422) and empty.content_type == PROBLEM
    not_object = client.post("/api/v1/generations", json=["text"], headers=tenant.headers)
    assert not_object.status_code == 422 and not_object.content_type == PROBLEM


def test_an_oversized_body_is_refused_before_it_is_read(app: Flask, client, tenant):
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    response = submit(client, tenant, text="x" * 100_000)
    assert response.status_code == 413 and response.content_type == PROBLEM


def test_another_orgs_voice_in_the_body_is_404(client, tenants):
    a, b = tenants
    response = submit(client, b, voice_id=str(a.voice_id))
    assert response.status_code == 404 and response.content_type == PROBLEM
    assert str(a.voice_id) in response.get_json()["detail"]


def test_the_org_quota_applies_to_the_api(app: Flask, client, tenant):
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        db.session.get(Organization, tenant.org_id).monthly_character_limit = 30
        db.session.commit()
    assert submit(client, tenant, text="x" * 10).status_code == 202  # 17 + 10 used
    refused = submit(client, tenant, text="y" * 10)
    assert refused.status_code == 422
    problem = refused.get_json()
    assert problem["type"].endswith("#problem-quota-exceeded")
    assert "only 3 of Alpha's 30 monthly characters are left" in problem["detail"]


def test_a_keys_own_monthly_limit_applies_and_is_refunded_on_failure(app: Flask, client, tenant):
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        db.session.get(ApiKey, tenant.key_id).monthly_character_limit = 25
        db.session.commit()
    assert submit(client, tenant, text="a" * 20).status_code == 202
    refused = submit(client, tenant, text="b" * 10)
    assert refused.status_code == 422
    assert "of the API key “Key" in refused.get_json()["detail"]
    assert "20 used" in refused.get_json()["detail"]
    usage = client.get("/api/v1/usage", headers=tenant.headers).get_json()
    assert usage["key"] == {"used": 20, "limit": 25, "remaining": 5}


def test_deleting_a_generation_gives_no_usage_back(app: Flask, client, tenant):
    created = submit(client, tenant, text="z" * 40).get_json()
    before = client.get("/api/v1/usage", headers=tenant.headers).get_json()
    url = f"/api/v1/generations/{created['id']}"
    deleted = client.delete(url, headers=tenant.headers)
    assert deleted.status_code == 204 and deleted.data == b""
    assert client.get(url, headers=tenant.headers).status_code == 404
    assert client.get("/api/v1/usage", headers=tenant.headers).get_json() == before
    assert before["key"]["used"] == 40


def test_an_idempotency_key_returns_the_first_result(app: Flask, client, tenant):
    headers = {"Idempotency-Key": "order-1234"}
    first = submit(client, tenant, headers=headers, text="Only once, please.")
    again = submit(client, tenant, headers=headers, text="Only once, please.")
    assert first.status_code == again.status_code == 202
    assert first.get_json()["id"] == again.get_json()["id"]
    assert first.headers["Location"] == again.headers["Location"]
    other = submit(client, tenant, headers=headers, text="Something else.")
    assert other.status_code == 422
    assert other.get_json()["type"].endswith("#problem-idempotency-mismatch")
    fresh = submit(client, tenant, headers={"Idempotency-Key": "order-1235"}, text="Again.")
    assert fresh.get_json()["id"] != first.get_json()["id"]
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        charged = db.session.scalars(
            select(UsageEntry).where(UsageEntry.api_key_id == tenant.key_id)
        ).all()
        assert len(charged) == 2  # the retry was not charged again


def test_an_expired_idempotency_key_is_free_again(app: Flask, client, tenant):
    import datetime as dt

    from dashboard.models import IdempotentRequest

    headers = {"Idempotency-Key": "nightly"}
    first = submit(client, tenant, headers=headers).get_json()
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        row = db.session.scalars(select(IdempotentRequest)).one()
        row.created_at -= dt.timedelta(hours=25)
        db.session.commit()
    second = submit(client, tenant, headers=headers, text="Tomorrow's text.")
    assert second.status_code == 202 and second.get_json()["id"] != first["id"]


def test_the_history_lists_newest_first_by_cursor_with_filters(app: Flask, client, tenant):
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        org = db.session.get(Organization, tenant.org_id)
        for n in range(7):
            make_generation(org, text=f"Batch line {n}", status=GenerationStatus.FAILED, error="x")
        db.session.commit()
    seen, cursor = [], None
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/generations", query_string=query, headers=tenant.headers)
        assert page.status_code == 200
        body = page.get_json()
        seen += [g["id"] for g in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 8
    failed = client.get(
        "/api/v1/generations", query_string={"status": "failed", "q": "line 3"},
        headers=tenant.headers,
    ).get_json()  # fmt: skip
    assert [g["text"] for g in failed["data"]] == ["Batch line 3"]
    by_voice = client.get(
        "/api/v1/generations", query_string={"voice_id": str(tenant.voice_id)},
        headers=tenant.headers,
    ).get_json()  # fmt: skip
    assert [g["id"] for g in by_voice["data"]] == [str(tenant.generation_id)]


def test_list_refuses_bad_cursors_limits_and_dates_with_problems(client, tenant):
    def get(**query):
        return client.get("/api/v1/generations", query_string=query, headers=tenant.headers)

    damaged = get(cursor="not-a-cursor")
    assert damaged.status_code == 400 and damaged.content_type == PROBLEM
    assert "Start again without `cursor`" in damaged.get_json()["detail"]
    assert get(limit=101).status_code == 422
    assert get(limit=0).status_code == 422
    swapped = get(**{"from": "2026-12-10", "to": "2026-12-01"})
    assert swapped.status_code == 422
    assert swapped.get_json()["errors"][0]["path"] == "from"
    assert get(status="lost").get_json()["errors"][0]["in"] == "query"


def test_expired_idempotency_keys_are_purged_in_every_org(app: Flask, client, tenants):
    import datetime as dt

    from dashboard.api.idempotency import purge_expired
    from dashboard.models import IdempotentRequest
    from dashboard.tenancy.operator import worker_session

    a, b = tenants
    submit(client, a, headers={"Idempotency-Key": "old"})
    submit(client, b, headers={"Idempotency-Key": "old"})
    submit(client, b, headers={"Idempotency-Key": "fresh"})
    with app.app_context(), worker_session("test") as session:
        for row in session.scalars(select(IdempotentRequest).where(IdempotentRequest.key == "old")):
            row.created_at -= dt.timedelta(hours=25)
    with app.app_context(), worker_session("test") as session:
        assert purge_expired(session) == 2
        assert session.scalars(select(IdempotentRequest.key)).all() == ["fresh"]


def test_the_fast_row_writer_equals_the_schemas_dump_for_every_kind_of_row(app: Flask, tenant):
    """`generation_json` (the list's rows) and `GenerationSchema` (the document) agree."""
    import datetime as dt

    from dashboard.api.schemas import GenerationSchema, audio_url_template, generation_json

    started = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)
    with app.test_request_context(base_url="https://voxboard.example"):
        with tenancy.org_scope(tenant.org_id):
            org = db.session.get(Organization, tenant.org_id)
            voice = db.session.get(Voice, tenant.voice_id)
            rows = [
                db.session.get(Generation, tenant.generation_id),  # queued
                make_generation(
                    org,
                    voice,
                    status=GenerationStatus.SUCCEEDED,
                    audio_key="generations/x",
                    audio_size=1234,
                    duration_ms=2500,
                    started_at=started,
                    finished_at=started + dt.timedelta(seconds=2),
                    api_key_id=tenant.key_id,
                    top_k=1000,
                    temperature=1.0,
                ),
                make_generation(
                    org, None, status=GenerationStatus.FAILED, error="The engine gave up."
                ),
                make_generation(org, voice, status=GenerationStatus.RUNNING, started_at=started),
            ]
            schema = GenerationSchema()
            template = audio_url_template()
            for row in rows:
                assert generation_json(row, template) == schema.dump(row)
            assert schema.dump(rows[1])["audio_url"] == (
                f"https://voxboard.example/api/v1/generations/{rows[1].id}/audio"
            )
            db.session.rollback()
