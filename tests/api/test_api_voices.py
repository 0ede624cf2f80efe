"""Voices through the API: system and own voices in one list by name, filters, cursors, audio;
creating one from an upload, deleting one."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from dashboard.extensions import db
from dashboard.models import Organization, Voice, VoiceCategory
from dashboard.storage import system_voice_key
from dashboard.tenancy.operator import operator_access
from tests.factories import make_voice
from tests.http import post_multipart
from tests.stored import stored_state
from tests.tenant_world import reference_wav, store_voice_audio

PROBLEM = "application/problem+json"


def test_the_list_has_system_and_own_voices_by_name_in_pages(app: Flask, client, tenants):
    a, _b = tenants
    with app.app_context(), operator_access("test setup"):
        org = db.session.get(Organization, a.org_id)
        for name in ("Zed", "Mia", "Bob"):
            make_voice(org, name=f"Own {name}")
        for name in ("Aaron", "Walter"):
            make_voice(None, name=name)  # system voices
        db.session.commit()
    names, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/voices", query_string=query, headers=a.headers).get_json()
        names += [v["name"] for v in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    # In the database's collation (byte order on SQLite): every voice once, A before W.
    assert sorted(names) == sorted(
        ["Aaron", "alpha narrator", "Own Bob", "Own Mia", "Own Zed", "Walter"]
    )
    assert names.index("Aaron") < names.index("Own Bob") < names.index("Own Mia")
    assert names.index("Own Zed") < names.index("Walter")


def test_filters_narrow_the_list(app: Flask, client, tenants):
    a, _b = tenants
    with app.app_context(), operator_access("test setup"):
        org = db.session.get(Organization, a.org_id)
        make_voice(org, name="Calm guide", category=VoiceCategory.MEDITATION, language="en-GB")
        make_voice(None, name="Ivan", category=VoiceCategory.CHARACTERS, language="ru-RU")
        db.session.commit()

    def names(**query):
        body = client.get("/api/v1/voices", query_string=query, headers=a.headers).get_json()
        return [v["name"] for v in body["data"]]

    assert names(category="MEDITATION") == ["Calm guide"]
    assert names(language="ru-RU") == ["Ivan"]
    assert names(q="guide") == ["Calm guide"]
    refused = client.get("/api/v1/voices", query_string={"category": "JAZZ"}, headers=a.headers)
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["path"] == "category"


def test_a_voice_and_its_audio_with_range(app: Flask, client, tenants):
    a, _b = tenants
    with app.app_context(), operator_access("test setup"):
        system = make_voice(None, name="Andy")
        store_voice_audio(system, system_voice_key(system.id), reference_wav(1), 1000)
        db.session.commit()
        system_id = system.id
    shown = client.get(f"/api/v1/voices/{system_id}", headers=a.headers).get_json()
    assert shown["variant"] == "SYSTEM" and shown["audio_url"].endswith(f"{system_id}/audio")
    part = client.get(shown["audio_url"], headers={**a.headers, "Range": "bytes=0-3"})
    assert part.status_code == 206 and part.data == b"RIFF"
    own = client.get(f"/api/v1/voices/{a.voice_id}", headers=a.headers).get_json()
    assert own["audio_url"] is None  # the fixture's voice has no audio yet
    missing = client.get(f"/api/v1/voices/{a.voice_id}/audio", headers=a.headers)
    assert missing.status_code == 409 and "no preview audio" in missing.get_json()["detail"]


def stored(app: Flask) -> dict:
    """What is stored, but the key's own traffic (last use, per-day counters)."""
    return {k: v for k, v in stored_state(app).items() if k not in ("api_keys", "api_key_days")}


def post_voice(client, tenant, **fields):
    data = {
        "name": "Narrator two",
        "category": "NARRATIVE",
        "language": "en-GB",
        "description": "Warm and slow",
        "audio": FileStorage(io.BytesIO(reference_wav()), "take.wav", content_type="audio/wav"),
        "consent": "y",
    }
    data.update(fields)
    return post_multipart(
        client, "/api/v1/voices", {k: v for k, v in data.items() if v is not None}, tenant.headers
    )


def test_a_voice_is_created_from_an_upload_with_consent(app: Flask, client, tenant):
    response = post_voice(client, tenant)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/voices/{body['id']}"
    assert (body["name"], body["category"], body["language"]) == (
        "Narrator two",
        "NARRATIVE",
        "en-GB",
    )
    assert body["variant"] == "CUSTOM" and body["audio_url"]
    audio = client.get(body["audio_url"], headers=tenant.headers)
    assert audio.status_code == 200 and audio.data == reference_wav()


@pytest.mark.parametrize(
    ("fields", "path", "where"),
    [
        ({"consent": None}, "consent", "form"),
        ({"audio": None}, "audio", "files"),
        ({"name": "  "}, "name", "form"),
        ({"language": "Klingon"}, "language", "form"),
        (
            {"audio": FileStorage(io.BytesIO(b"not audio at all" * 100), "x.wav")},
            "audio",
            "files",
        ),
        ({"name": "alpha narrator"}, "name", "form"),  # the fixture's voice, any case
    ],
)
def test_refused_uploads_name_the_field_and_store_nothing(
    app: Flask, client, tenant, fields, path, where
):
    before = stored(app)
    response = post_voice(client, tenant, **fields)
    assert response.status_code == 422 and response.content_type == PROBLEM
    problem = response.get_json()
    assert [(e["path"], e["in"]) for e in problem["errors"]] == [(path, where)]
    assert stored(app) == before


def test_an_upload_over_the_limit_is_413_before_it_is_read(app: Flask, client, tenant):
    app.config["VOICE_UPLOAD_MAX_BYTES"] = 1024
    before = stored(app)
    response = post_voice(client, tenant, audio=FileStorage(io.BytesIO(b"\0" * 200_000), "big.wav"))
    assert response.status_code == 413 and response.content_type == PROBLEM
    assert "larger than" in response.get_json()["detail"]
    assert stored(app) == before


def test_storage_down_is_502_and_leaves_no_row(app: Flask, client, tenant, storage_down):
    response = post_voice(client, tenant)
    assert response.status_code == 502 and response.content_type == PROBLEM
    with app.app_context(), operator_access("test check"):
        assert db.session.scalar(select(Voice.id).where(Voice.name == "Narrator two")) is None


def test_deleting_a_voice_keeps_its_generations_names(app: Flask, client, tenant):
    objects_before = set(stored_state(app)["objects"])
    created = post_voice(client, tenant).get_json()
    generation = client.post(
        "/api/v1/generations",
        json={"text": "Said by a voice about to go.", "voice_id": created["id"]},
        headers=tenant.headers,
    ).get_json()
    gone = client.delete(f"/api/v1/voices/{created['id']}", headers=tenant.headers)
    assert gone.status_code == 204
    assert client.get(f"/api/v1/voices/{created['id']}", headers=tenant.headers).status_code == 404
    kept = client.get(f"/api/v1/generations/{generation['id']}", headers=tenant.headers).get_json()
    assert kept["voice_id"] is None and kept["voice_name"] == "Narrator two"
    added = set(stored_state(app)["objects"]) - objects_before
    assert added and all(key.startswith("generations/") for key in added)  # the voice's is gone


def test_system_voices_cannot_be_deleted(app: Flask, client, tenant):
    with app.app_context(), operator_access("test setup"):
        system = make_voice(None, name="Andy")
        db.session.commit()
        system_id = system.id
    refused = client.delete(f"/api/v1/voices/{system_id}", headers=tenant.headers)
    assert refused.status_code == 403 and "read-only" in refused.get_json()["detail"]
