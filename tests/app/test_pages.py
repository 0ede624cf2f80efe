"""The first page, the system-voice audio endpoint and the health probes."""

from __future__ import annotations

import hashlib
import io
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.extensions import db
from dashboard.models import VoiceCategory
from dashboard.storage import get_storage, system_voice_key
from tests import factories
from tests.databases import make_config

AUDIO = bytes(range(256)) * 40  # 10,240 bytes with a different value at each offset


@pytest.fixture
def system_voice(app):
    """A system voice whose reference audio is in storage."""
    with app.app_context():
        voice = factories.make_voice(
            name="Abigail",
            language="en-GB",
            category=VoiceCategory.CONVERSATIONAL,
            description="Friendly and conversational",
        )
        key = system_voice_key(voice.id)
        get_storage().put(key, io.BytesIO(AUDIO), content_type="audio/wav")
        voice.audio_key = key
        voice.audio_size = len(AUDIO)
        voice.audio_sha256 = hashlib.sha256(AUDIO).hexdigest()
        voice.audio_content_type = "audio/wav"
        voice.audio_duration_ms = 61_000
        db.session.commit()
        return voice.id


def audio_url(voice_id) -> str:
    return f"/voices/{voice_id}/audio"


def test_home_lists_system_voices_with_players(client, system_voice):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Abigail" in html and "Friendly and conversational" in html
    assert "English (United Kingdom)" in html and "Conversational" in html
    assert f'src="{audio_url(system_voice)}"' in html
    assert "1:01" in html
    assert "HX-Request" in response.headers["Vary"]


def test_home_without_voices_says_how_to_seed(client):
    html = client.get("/").get_data(as_text=True)
    assert "No voices yet" in html and "flask seed" in html


def test_home_never_lists_custom_voices(app, client, system_voice):
    with app.app_context():
        factories.make_voice(factories.make_org(), name="Secret Clone")
        db.session.commit()
    assert "Secret Clone" not in client.get("/").get_data(as_text=True)


def test_pages_send_a_strict_content_security_policy(client):
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert client.get("/").headers["X-Content-Type-Options"] == "nosniff"


def test_full_audio_get(client, system_voice):
    response = client.get(audio_url(system_voice))
    assert response.status_code == 200
    assert response.data == AUDIO
    assert response.headers["Content-Type"] == "audio/wav"
    assert response.headers["Content-Length"] == str(len(AUDIO))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{hashlib.sha256(AUDIO).hexdigest()}"'
    assert response.headers["Cache-Control"].startswith("private")


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-299", 100, 299),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10200-999999", 10200, 10239),
    ],
)
def test_range_get_returns_exact_bytes(client, system_voice, header, start, end):
    response = client.get(audio_url(system_voice), headers={"Range": header})
    assert response.status_code == 206
    assert response.data == AUDIO[start : end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(AUDIO)}"
    assert response.headers["Content-Length"] == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=999999-1000000"])
def test_unsatisfiable_range_is_416(client, system_voice, header):
    response = client.get(audio_url(system_voice), headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(AUDIO)}"


def test_stale_if_range_gets_the_whole_object(client, system_voice):
    response = client.get(
        audio_url(system_voice), headers={"Range": "bytes=0-9", "If-Range": '"old-etag"'}
    )
    assert response.status_code == 200 and response.data == AUDIO


def test_matching_etag_is_304(client, system_voice):
    etag = client.get(audio_url(system_voice)).headers["ETag"]
    response = client.get(audio_url(system_voice), headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.data == b""


def test_unknown_voice_audio_is_404(client, system_voice):
    response = client.get(audio_url(uuid.uuid4()))
    assert response.status_code == 404
    assert "No such voice" in response.get_data(as_text=True)


def test_custom_voice_audio_is_not_served_publicly(app, client):
    with app.app_context():
        voice = factories.make_voice(
            factories.make_org(), name="Private", audio_key="voices/orgs/x/y", audio_size=3
        )
        db.session.commit()
        voice_id = voice.id
    assert client.get(audio_url(voice_id)).status_code == 404


def test_audio_missing_from_storage_is_a_502_storage_fault(app, client, system_voice, caplog):
    with app.app_context():
        get_storage().delete(system_voice_key(system_voice))
    with caplog.at_level("ERROR", logger="dashboard.storage.media"):
        response = client.get(audio_url(system_voice))
    assert response.status_code == 502
    assert "should be in storage but can't be found" in response.get_data(as_text=True)
    assert "is missing from storage" in caplog.text


def test_audio_with_storage_down_is_502(client, system_voice, storage_down):
    response = client.get(audio_url(system_voice))
    assert response.status_code == 502
    assert "storage is unavailable" in response.get_data(as_text=True)


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "storage": "ok"}


def test_readyz_names_the_failing_storage(client, storage_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"] == "ok"
    assert storage_down.removeprefix("http://") in body["checks"]["storage"]


def test_readyz_names_the_failing_database(tmp_path):
    from dashboard import create_app

    app = create_app(make_config("postgresql+psycopg://u:pw@127.0.0.1:9/none", tmp_path))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "database unreachable" in response.get_json()["checks"]["database"]
    assert "pw" not in response.get_json()["checks"]["database"]


def test_unknown_page_is_a_readable_404(client):
    response = client.get("/nope", headers={"Accept": "text/html"})
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Not found" in html and "The link may be wrong" in html


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=st.integers(0, 12_000), length=st.integers(0, 12_000) | st.none())
def test_any_single_range_gives_the_exact_slice_or_416(client, system_voice, first, length):
    last = None if length is None else first + length
    header = f"bytes={first}-{'' if last is None else last}"
    response = client.get(audio_url(system_voice), headers={"Range": header})
    if first >= len(AUDIO):
        assert response.status_code == 416
        return
    end = len(AUDIO) - 1 if last is None else min(last, len(AUDIO) - 1)
    assert response.status_code == 206
    assert response.data == AUDIO[first : end + 1]
    assert response.headers["Content-Range"] == f"bytes {first}-{end}/{len(AUDIO)}"
