"""Voices through the API: system and own voices in one list by name, filters, cursors, audio."""

from __future__ import annotations

from flask import Flask

from dashboard.extensions import db
from dashboard.models import Organization, VoiceCategory
from dashboard.storage import system_voice_key
from dashboard.tenancy.operator import operator_access
from tests.factories import make_voice
from tests.tenant_world import reference_wav, store_voice_audio


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
