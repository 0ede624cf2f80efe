"""Managing custom voices: create (upload or recording), edit, replace audio, delete.

The upload corpus is generated here with soundfile; storage and database failures are
injected into real parts (local storage, SQLite, PostgreSQL), and every refusal is
checked for what it leaves behind: no row, no object.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from sqlalchemy import insert, select
from sqlalchemy import inspect as sa_inspect
from werkzeug.datastructures import FileStorage

from dashboard import tenancy
from dashboard.extensions import db
from dashboard.models import Generation, MemberRole, Voice, VoiceCategory, VoiceVariant
from dashboard.storage import LocalStorage, StorageUnavailable, custom_voice_key, get_storage
from dashboard.tenancy.operator import operator_access
from dashboard.voices import reference_audio, services
from tests import factories
from tests.databases import BACKENDS, WEB_ROLE_BACKENDS
from tests.http import HX, login, post_multipart

OWNER, ADMIN, MEMBER = MemberRole.OWNER, MemberRole.ADMIN, MemberRole.MEMBER
MiB = 1024 * 1024
NEW = "/o/acme/voices/new"


# ------------------------------------------------------------------------ fixtures


class FailingStorage(LocalStorage):
    """Real local storage whose uploads and/or deletes fail, as in an outage."""

    def __init__(self, root: Path, *, fail_put: bool = False, fail_delete: bool = False) -> None:
        super().__init__(root)
        self.fail_put, self.fail_delete = fail_put, fail_delete

    def put(self, key, stream, *, content_type=None):
        if self.fail_put:
            raise StorageUnavailable("bucket 'voices' is unreachable (injected)")
        return super().put(key, stream, content_type=content_type)

    def delete(self, key):
        if self.fail_delete:
            raise StorageUnavailable("bucket 'voices' is unreachable (injected)")
        return super().delete(key)


def tone(seconds: float, rate: int = 16_000) -> np.ndarray:
    """A quiet 220 Hz tone: real, decodable audio of an exact length."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32")


def audio_bytes(seconds: float, rate: int = 16_000, fmt: str = "WAV", subtype=None) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, tone(seconds, rate), rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@dataclass
class World:
    users: dict[str, Any]
    narrator: uuid.UUID  # acme's custom voice, with audio, used by one generation
    narrator_key: str
    generation: uuid.UUID
    other_voice: uuid.UUID  # another org's custom voice
    system_voice: uuid.UUID
    acme: uuid.UUID


def voice_with_audio(storage, org, name: str, **kw) -> Voice:
    voice = factories.make_voice(org, name=name, language=kw.pop("language", "en-GB"), **kw)
    data = audio_bytes(12, rate=8_000)
    key = custom_voice_key(org.id, voice.id)
    storage.put(key, io.BytesIO(data), content_type="audio/wav")
    voice.audio_key, voice.audio_size = key, len(data)
    voice.audio_sha256 = hashlib.sha256(data).hexdigest()
    voice.audio_duration_ms, voice.audio_content_type = 12_000, "audio/wav"
    db.session.flush()
    return voice


@pytest.fixture
def world(app) -> World:
    with app.app_context(), operator_access("test setup spans two orgs"):
        storage = get_storage()
        acme = factories.make_org(slug="acme", name="Acme Audio")
        other = factories.make_org(slug="other", name="Other Org")
        users = {}
        for role in (OWNER, ADMIN, MEMBER):
            users[role.value] = factories.make_user(email=f"{role.value}@acme.example")
            factories.make_membership(users[role.value], acme, role)
        users["outsider"] = factories.make_user(email="owner@other.example")
        factories.make_membership(users["outsider"], other, OWNER)
        narrator = voice_with_audio(storage, acme, "Narrator", description="Warm and clear")
        other_voice = voice_with_audio(storage, other, "Outsider")
        system_voice = factories.make_voice(None, name="Aaron")
        generation = factories.make_generation(acme, narrator, text="Hello there.")
        db.session.commit()
        found = World(
            users={k: factories.detach(u) for k, u in users.items()},
            narrator=narrator.id,
            narrator_key=narrator.audio_key,
            generation=generation.id,
            other_voice=other_voice.id,
            system_voice=system_voice.id,
            acme=acme.id,
        )
    return found


def as_user(client, world: World, who: str = "owner"):
    login(client, world.users[who])
    return client


def custom_voices(app) -> dict[str, Voice]:
    """Every custom voice of every org, by name (detached)."""
    with app.app_context(), operator_access("test check"):
        voices = db.session.scalars(select(Voice).where(Voice.variant == VoiceVariant.CUSTOM))
        return {v.name: factories.detach(v) for v in voices.all()}


# Columns an edit may move by itself: the row's own clock.
CLOCK = {"updated_at"}


def voice_rows(app) -> dict[uuid.UUID, dict[str, Any]]:
    """Every voice (system and custom, every org) with every column, by id."""
    columns = [attr.key for attr in sa_inspect(Voice).column_attrs]
    with app.app_context(), operator_access("test check"):
        voices = db.session.scalars(select(Voice)).all()
        return {v.id: {c: getattr(v, c) for c in columns} for v in voices}


def assert_only_changed(before: dict, after: dict, voice_id, **expected: Any) -> None:
    """Assert that `voice_id` now has `expected` (columns), nothing else changed anywhere.

    A column given as ... must have changed to anything; the others keep their values,
    and every other voice is exactly as it was.
    """
    assert after.keys() == before.keys()
    assert {k: v for k, v in after.items() if k != voice_id} == {
        k: v for k, v in before.items() if k != voice_id
    }
    old, new = before[voice_id], after[voice_id]
    for column, value in expected.items():
        if value is ...:
            assert new[column] != old[column], column
        else:
            assert new[column] == value, (column, new[column])
    unchanged = old.keys() - expected.keys() - CLOCK
    assert {c: new[c] for c in unchanged} == {c: old[c] for c in unchanged}


def object_keys(app) -> set[str]:
    with app.app_context():
        return set(get_storage().list_keys("voices/orgs/"))


def read_object(app, key: str) -> bytes:
    with app.app_context():
        return b"".join(get_storage().open_range(key))


def html_of(response) -> str:
    return response.get_data(as_text=True)


def fields(**overrides) -> dict[str, Any]:
    data = {
        "name": "Studio Host",
        "category": "PODCAST",
        "language": "en-GB",
        "description": "Bright and quick",
        "consent": "y",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def upload(client, path: Path | None = None, url: str = NEW, headers=None, **overrides):
    """POST the form (with `path` as the audio) the way a browser does, multipart."""
    data: dict[str, Any] = fields(**overrides)
    if path is not None:
        data["audio"] = FileStorage(io.BytesIO(path.read_bytes()), filename=path.name)
    return post_multipart(client, url, data, headers)


def edit_url(voice_id) -> str:
    return f"/o/acme/voices/{voice_id}/edit"


def delete_url(voice_id) -> str:
    return f"/o/acme/voices/{voice_id}/delete"


# ------------------------------------------------------------------- upload corpus


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def truncated_wav() -> bytes:
    whole = audio_bytes(30, rate=16_000)
    return whole[: len(whole) * 6 // 10]  # 18 of 30 seconds: long enough, but cut short


CORPUS = {
    # name: (file name, bytes builder, status, what the person reads or the stored type)
    "wav-pcm16": ("speech.wav", lambda: audio_bytes(12, subtype="PCM_16"), 303, "audio/wav"),
    "wav-float": ("speech.wav", lambda: audio_bytes(12, subtype="FLOAT"), 303, "audio/wav"),
    "mp3": ("speech.mp3", lambda: audio_bytes(12, fmt="MP3"), 303, "audio/mpeg"),
    "flac": ("speech.flac", lambda: audio_bytes(12, fmt="FLAC"), 303, "audio/flac"),
    "ogg": ("speech.ogg", lambda: audio_bytes(12, fmt="OGG", subtype="VORBIS"), 303, "audio/ogg"),
    # Named and typed as WAV, but MP3 inside: decoding decides, not the name.
    "mp3-named-wav": ("speech.wav", lambda: audio_bytes(12, fmt="MP3"), 303, "audio/mpeg"),
    "html-renamed": (
        "page.wav",
        lambda: b"<!doctype html><html><body><h1>Not audio</h1></body></html>\n" * 50,
        422,
        "could not be read as audio. Upload a WAV, MP3, FLAC or OGG recording.",
    ),
    "text-renamed": (
        "notes.wav",
        lambda: b"Remember to record the intro again.\n" * 200,
        422,
        "could not be read as audio",
    ),
    "truncated-wav": ("cut.wav", truncated_wav, 422, "This WAV file is incomplete: only 59%"),
    "empty": ("empty.wav", lambda: b"", 422, "The file is empty."),
    "9-seconds": ("short.wav", lambda: audio_bytes(9), 422, "only 9.0 seconds long"),
    "6-minutes": (
        "long.wav",
        lambda: audio_bytes(360, rate=8_000),
        422,
        "6 min 0 s long; a voice can use at most 5 minutes",
    ),
    "21-MB": ("huge.wav", lambda: os.urandom(21 * MiB), 413, "larger than 20 MB"),
}


@pytest.mark.parametrize("case", CORPUS, ids=list(CORPUS))
def test_upload_corpus(app, client, world, tmp_path, case):
    filename, build, status, expected = CORPUS[case]
    data = build()
    before_keys = object_keys(app)
    response = upload(as_user(client, world), write(tmp_path, filename, data))
    assert response.status_code == status, html_of(response)[-2000:]
    voices = custom_voices(app)
    if status == 303:
        assert response.headers["Location"] == "/o/acme/voices/"
        voice = voices["Studio Host"]
        assert voice.audio_content_type == expected
        assert voice.audio_size == len(data)
        assert voice.audio_sha256 == hashlib.sha256(data).hexdigest()
        assert abs(voice.audio_duration_ms - 12_000) <= 60  # MP3 padding rounds a little
        assert voice.audio_key == custom_voice_key(world.acme, voice.id)
        assert read_object(app, voice.audio_key) == data
        assert object_keys(app) == before_keys | {voice.audio_key}
    else:
        html = html_of(response)
        assert expected in html
        assert "Traceback" not in html
        assert 'id="voice-form"' in html  # the form again, not an error page
        assert "Studio Host" not in voices
        assert object_keys(app) == before_keys


def test_accepted_upload_is_streamed_to_a_temporary_file(app, client, world, tmp_path, monkeypatch):
    seen = {}
    real = reference_audio.check_reference_audio

    def spy(stream, max_bytes):
        seen["type"] = type(stream).__name__
        seen["on_disk"] = getattr(stream, "_rolled", None)
        return real(stream, max_bytes)

    monkeypatch.setattr(reference_audio, "check_reference_audio", spy)
    path = write(tmp_path, "speech.wav", audio_bytes(12, rate=44_100))  # ~1 MB
    assert upload(as_user(client, world), path).status_code == 303
    assert seen == {"type": "SpooledTemporaryFile", "on_disk": True}


FILE_PART_HEAD = (
    b"--xyz\r\n"
    b'Content-Disposition: form-data; name="audio"; filename="endless.wav"\r\n'
    b"Content-Type: audio/wav\r\n\r\n"
)


class CountingBody(io.RawIOBase):
    """A request body of `size` bytes that records how much of it was read."""

    def __init__(self, size: int | None) -> None:
        self.size, self.pos, self.read_bytes = size, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.size is not None

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: (self.size or 0) + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        want = len(buffer)
        if self.size is not None:
            want = min(want, max(0, self.size - self.pos))
        head = FILE_PART_HEAD[self.pos : self.pos + want]
        chunk = head + b"a" * (want - len(head))
        buffer[: len(chunk)] = chunk
        self.pos += len(chunk)
        self.read_bytes += len(chunk)
        return len(chunk)


def test_oversized_body_is_refused_before_a_byte_is_read(app, client, world):
    body = CountingBody(200 * MiB)
    response = as_user(client, world).post(
        NEW, input_stream=body, content_type="multipart/form-data; boundary=xyz"
    )
    assert response.status_code == 413
    assert body.read_bytes == 0
    html = html_of(response)
    assert "larger than 20 MB, so it was refused before it was read" in html
    assert 'id="voice-form"' in html and 'name="name"' in html


def test_streamed_body_without_length_stops_at_the_limit(app, client, world):
    """A chunked upload (no Content-Length) is cut off once it passes the limit."""
    app.config["VOICE_UPLOAD_MAX_BYTES"] = 1 * MiB
    endless = CountingBody(None)
    response = as_user(client, world).post(
        NEW,
        headers={"Transfer-Encoding": "chunked"},
        # What a WSGI server that de-chunks bodies hands over: no length, a terminated stream.
        environ_overrides={
            "wsgi.input": endless,
            "wsgi.input_terminated": True,
            "CONTENT_TYPE": "multipart/form-data; boundary=xyz",
        },
    )
    assert response.status_code == 413
    assert response.request.content_length is None
    assert MiB < endless.read_bytes <= MiB + 64 * 1024 + 128 * 1024  # limit + form room + a read


def test_file_over_the_limit_inside_the_form_room_is_still_refused(app, client, world, tmp_path):
    app.config["VOICE_UPLOAD_MAX_BYTES"] = 1 * MiB
    path = write(tmp_path, "big.wav", audio_bytes(40, rate=16_000)[: MiB + 10_000])
    response = upload(as_user(client, world), path)
    assert response.status_code == 413
    assert "the limit is 1 MB" in html_of(response)
    assert "Studio Host" not in custom_voices(app)


# ------------------------------------------------------------------------- create


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_create_edit_replace_and_delete_under_row_level_security(app, client, world, tmp_path):
    """The whole life of a voice, as the RLS-bound web role on PostgreSQL."""
    as_user(client, world, "admin")
    created = upload(client, write(tmp_path, "a.wav", audio_bytes(12)), language="fr-FR")
    assert created.status_code == 303, html_of(created)
    voice = custom_voices(app)["Studio Host"]
    assert (voice.org_id, voice.category, voice.language) == (
        world.acme,
        VoiceCategory.PODCAST,
        "fr-FR",
    )
    first_key = voice.audio_key

    before = voice_rows(app)
    flac = audio_bytes(15, fmt="FLAC")
    edited = upload(
        client,
        write(tmp_path, "b.flac", flac),
        url=edit_url(voice.id),
        name="Studio Host II",
        description="",
        category="AUDIOBOOK",
    )
    assert edited.status_code == 303, html_of(edited)
    assert_only_changed(
        before,
        voice_rows(app),
        voice.id,
        name="Studio Host II",
        description=None,
        category=VoiceCategory.AUDIOBOOK,
        language="en-GB",  # the form sent en-GB this time
        audio_key=...,
        audio_sha256=hashlib.sha256(flac).hexdigest(),
        audio_size=len(flac),
        audio_duration_ms=15_000,
        audio_content_type="audio/flac",
    )
    voice = custom_voices(app)["Studio Host II"]
    assert voice.audio_key.startswith(first_key + ".")
    assert first_key not in object_keys(app) and read_object(app, voice.audio_key) == flac

    deleted = client.post(delete_url(voice.id))
    assert deleted.status_code == 303
    assert "Studio Host II" not in custom_voices(app)
    assert voice.audio_key not in object_keys(app)


def test_create_page_has_every_field_and_loads_its_script(client, world):
    response = as_user(client, world).get(NEW)
    assert response.status_code == 200
    html = html_of(response)
    assert 'enctype="multipart/form-data"' in html
    for name in ("name", "category", "language", "description", "audio", "consent"):
        assert f'name="{name}"' in html, name
    assert '<option selected value="GENERAL">General</option>' in html
    assert 'value="en-US"' in html and 'list="language-options"' in html
    assert '<option value="en-GB">English (United Kingdom)</option>' in html
    assert html.count('<option value="') > 700  # the CLDR list of language-region tags
    assert '<script src="/static/js/recorder.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"\s(on[a-z]+|style)=", html)  # the CSP forbids both
    assert "data-recorder" in html and "hidden" in html  # the recorder waits for JavaScript


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "   "}, "name", "Give the voice a name."),
        ({"name": "x" * 101}, "name", "Keep the name to 100 characters or fewer."),
        ({"description": "y" * 501}, "description", "Keep the description to 500 characters"),
        ({"language": "Klingon"}, "language", "Pick a language from the list"),
        ({"language": ""}, "language", "Pick a language from the list"),
        ({"consent": None}, "consent", "Confirm that you have the right to use this voice."),
        ({"category": "WHISPER"}, "category", "Not a valid choice."),
    ],
)
def test_invalid_fields_are_422_with_the_message_inline(
    app, client, world, tmp_path, overrides, field, message
):
    response = upload(
        as_user(client, world), write(tmp_path, "a.wav", audio_bytes(12)), **overrides
    )
    assert response.status_code == 422
    html = html_of(response)
    assert re.search(
        rf'id="{field}-error" class="field-error"[^>]*>[^<]*{re.escape(message)}', html
    )
    assert len(custom_voices(app)) == 2 and len(object_keys(app)) == 2


def test_missing_audio_is_an_inline_error(app, client, world):
    response = upload(as_user(client, world))
    assert response.status_code == 422
    assert "Choose an audio file or record one." in html_of(response)
    assert 'aria-invalid="true"' in html_of(response)


def test_what_was_typed_comes_back_after_a_refusal(client, world, tmp_path):
    response = upload(
        as_user(client, world), write(tmp_path, "a.wav", audio_bytes(5)), name="Keep me"
    )
    html = html_of(response)
    assert 'value="Keep me"' in html and "Bright and quick" in html
    assert '<option selected value="PODCAST">' in html and 'value="en-GB"' in html


def test_language_can_be_typed_as_a_label_or_in_any_case(app, client, world, tmp_path):
    as_user(client, world)
    assert (
        upload(client, write(tmp_path, "a.wav", audio_bytes(11)), language="pt_br").status_code
        == 303
    )
    assert (
        upload(
            client,
            write(tmp_path, "b.wav", audio_bytes(11)),
            name="Other",
            language="english (united kingdom)",
        ).status_code
        == 303
    )
    voices = custom_voices(app)
    assert voices["Studio Host"].language == "pt-BR" and voices["Other"].language == "en-GB"


def test_description_line_breaks_count_once(app, client, world, tmp_path):
    text = ("a" * 49 + "\r\n") * 10  # 500 characters once CRLF counts as one
    response = upload(
        as_user(client, world), write(tmp_path, "a.wav", audio_bytes(12)), description=text
    )
    assert response.status_code == 303
    assert custom_voices(app)["Studio Host"].description == text.replace("\r\n", "\n").strip()


def test_name_taken_in_the_org_is_an_inline_error(app, client, world, tmp_path):
    response = upload(
        as_user(client, world), write(tmp_path, "a.wav", audio_bytes(12)), name="narrator"
    )
    assert response.status_code == 422
    assert "Your organisation already has a voice called “narrator”." in html_of(response)
    assert len(custom_voices(app)) == 2 and len(object_keys(app)) == 2


def test_same_name_in_another_org_or_as_a_system_voice_is_fine(app, client, world, tmp_path):
    before = voice_rows(app)
    as_user(client, world)
    assert (
        upload(client, write(tmp_path, "a.wav", audio_bytes(12)), name="Outsider").status_code
        == 303
    )
    assert (
        upload(client, write(tmp_path, "b.wav", audio_bytes(12)), name="Aaron").status_code == 303
    )
    after = voice_rows(app)
    assert {k: v for k, v in after.items() if k in before} == before  # theirs, untouched
    added = [after[k] for k in after.keys() - before.keys()]
    assert sorted((v["name"], v["org_id"], v["variant"]) for v in added) == [
        ("Aaron", world.acme, VoiceVariant.CUSTOM),
        ("Outsider", world.acme, VoiceVariant.CUSTOM),
    ]


def test_org_comes_from_the_url_never_from_the_form(app, client, world, tmp_path):
    response = upload(
        as_user(client, world),
        write(tmp_path, "a.wav", audio_bytes(12)),
        org_id=str(uuid.uuid4()),
        variant="SYSTEM",
    )
    assert response.status_code == 303
    voice = custom_voices(app)["Studio Host"]
    assert voice.org_id == world.acme and voice.variant is VoiceVariant.CUSTOM


def test_htmx_create_redirects_and_refusal_returns_the_form_block(app, client, world, tmp_path):
    as_user(client, world)
    refused = upload(client, write(tmp_path, "a.wav", audio_bytes(3)), headers=HX)
    assert refused.status_code == 422
    assert html_of(refused).lstrip().startswith('<form id="voice-form"')
    assert "HX-Request" in refused.headers["Vary"]
    created = upload(client, write(tmp_path, "b.wav", audio_bytes(12)), headers=HX)
    assert created.status_code == 204
    assert created.headers["HX-Redirect"] == "/o/acme/voices/"
    voice = custom_voices(app)["Studio Host"]
    assert voice.org_id == world.acme and voice.audio_key in object_keys(app)


def test_success_flashes_on_the_library_page(client, world, tmp_path):
    as_user(client, world)
    upload(client, write(tmp_path, "a.wav", audio_bytes(12)))
    with client.session_transaction() as session:
        assert session["_flashes"] == [("success", "Studio Host was added to your voices.")]


# ------------------------------------------------------------------- failures


def test_storage_failure_during_create_changes_nothing(app, client, world, tmp_path, caplog):
    app.extensions["voxboard.storage"] = FailingStorage(tmp_path / "objects", fail_put=True)
    response = upload(as_user(client, world), write(tmp_path, "a.wav", audio_bytes(12)))
    assert response.status_code == 502
    html = html_of(response)
    assert "We couldn&#39;t save the audio right now, so nothing was changed." in html
    assert 'value="Studio Host"' in html  # the form keeps what was typed
    assert "Studio Host" not in custom_voices(app)
    assert len(object_keys(app)) == 2
    assert "unreachable (injected)" in caplog.text


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_name_taken_by_a_racing_request_is_an_inline_error_and_leaves_no_object(
    app, client, world, tmp_path, monkeypatch
):
    """Another request inserts the same name after our check and before our commit."""
    real = services.custom_name_taken
    raced = []

    def check_then_lose_the_race(name, org_id, except_id=None):
        answer = real(name, org_id, except_id)
        if not raced:
            raced.append(name)
            with db.engine.begin() as conn:  # a separate connection: another request
                conn.execute(
                    insert(Voice).values(
                        id=uuid.uuid4(),
                        org_id=world.acme,
                        variant=VoiceVariant.CUSTOM,
                        name=name,
                        category=VoiceCategory.GENERAL,
                        language="en-US",
                    )
                )
        return answer

    monkeypatch.setattr(services, "custom_name_taken", check_then_lose_the_race)
    before = object_keys(app)
    response = upload(as_user(client, world), write(tmp_path, "a.wav", audio_bytes(12)))
    assert raced == ["Studio Host"]
    assert response.status_code == 422, html_of(response)
    assert "already has a voice called “Studio Host”" in html_of(response)
    assert object_keys(app) == before
    assert custom_voices(app)["Studio Host"].audio_key is None  # only the racer's row


def test_storage_failure_while_replacing_audio_changes_nothing(app, client, world, tmp_path):
    app.extensions["voxboard.storage"] = FailingStorage(tmp_path / "objects", fail_put=True)
    before = custom_voices(app)["Narrator"]
    response = upload(
        as_user(client, world),
        write(tmp_path, "new.wav", audio_bytes(14)),
        url=edit_url(world.narrator),
        name="Renamed",
    )
    assert response.status_code == 502
    assert "nothing was changed" in html_of(response)
    after = custom_voices(app)
    assert "Renamed" not in after
    assert (after["Narrator"].audio_key, after["Narrator"].audio_sha256) == (
        before.audio_key,
        before.audio_sha256,
    )
    assert object_keys(app) == {world.narrator_key, custom_voices(app)["Outsider"].audio_key}


def test_replacing_audio_deletes_the_old_object_after_the_commit(app, client, world, tmp_path):
    before = voice_rows(app)
    data = audio_bytes(20, fmt="OGG", subtype="VORBIS")
    response = upload(
        as_user(client, world), write(tmp_path, "new.ogg", data), url=edit_url(world.narrator)
    )
    assert response.status_code == 303, html_of(response)
    assert_only_changed(
        before,
        voice_rows(app),
        world.narrator,
        name="Studio Host",
        description="Bright and quick",
        category=VoiceCategory.PODCAST,
        audio_key=...,
        audio_sha256=hashlib.sha256(data).hexdigest(),
        audio_size=len(data),
        audio_duration_ms=20_000,
        audio_content_type="audio/ogg",
    )
    voice = custom_voices(app)["Studio Host"]
    assert voice.audio_key.startswith(custom_voice_key(world.acme, world.narrator) + ".")
    assert read_object(app, voice.audio_key) == data
    assert world.narrator_key not in object_keys(app)


def test_old_audio_that_cannot_be_deleted_is_logged_and_left(app, client, world, tmp_path, caplog):
    app.extensions["voxboard.storage"] = FailingStorage(tmp_path / "objects", fail_delete=True)
    with caplog.at_level(logging.WARNING):
        response = upload(
            as_user(client, world),
            write(tmp_path, "new.wav", audio_bytes(12)),
            url=edit_url(world.narrator),
        )
    assert response.status_code == 303
    voice = custom_voices(app)["Studio Host"]
    assert voice.id == world.narrator and voice.audio_key != world.narrator_key
    assert voice.audio_sha256 == hashlib.sha256(read_object(app, voice.audio_key)).hexdigest()
    assert world.narrator_key in object_keys(app)  # for a sweep; no row points at it
    assert f"could not delete unused audio {world.narrator_key}" in caplog.text


# --------------------------------------------------------------------------- edit


def test_edit_page_shows_the_voice_and_its_audio(client, world):
    response = as_user(client, world, "admin").get(edit_url(world.narrator))
    assert response.status_code == 200
    html = html_of(response)
    assert "Edit Narrator" in html and 'value="Narrator"' in html
    assert "Warm and clear" in html and 'value="en-GB"' in html
    assert "0:12 · WAV" in html
    assert f'href="/o/acme/voices/{world.narrator}/delete"' in html


def test_edit_without_new_audio_needs_no_consent_and_keeps_the_audio(app, client, world):
    before, audio = voice_rows(app), read_object(app, world.narrator_key)
    response = upload(
        as_user(client, world),
        url=edit_url(world.narrator),
        name="Narrator",
        description="Calmer now",
        category="NARRATIVE",
        language="en-AU",
        consent=None,
    )
    assert response.status_code == 303
    assert_only_changed(
        before,
        voice_rows(app),
        world.narrator,
        description="Calmer now",
        category=VoiceCategory.NARRATIVE,
        language="en-AU",
    )
    assert read_object(app, world.narrator_key) == audio  # the same object, untouched
    with client.session_transaction() as session:
        assert session["_flashes"] == [("success", "Narrator was saved.")]


def test_new_audio_needs_the_consent_and_passes_the_same_checks(app, client, world, tmp_path):
    before, keys = voice_rows(app), object_keys(app)
    as_user(client, world)
    no_consent = upload(
        client,
        write(tmp_path, "a.wav", audio_bytes(12)),
        url=edit_url(world.narrator),
        consent=None,
    )
    assert no_consent.status_code == 422
    assert "It applies to the new audio too." in html_of(no_consent)
    short = upload(client, write(tmp_path, "b.wav", audio_bytes(4)), url=edit_url(world.narrator))
    assert short.status_code == 422 and "only 4.0 seconds long" in html_of(short)
    assert voice_rows(app) == before and object_keys(app) == keys


def test_renaming_to_a_taken_name_is_an_inline_error(app, client, world):
    with app.app_context(), tenancy.all_tenants("test setup"):
        factories.make_voice(_org(world), name="Taken")
        db.session.commit()
    before = voice_rows(app)
    response = upload(as_user(client, world), url=edit_url(world.narrator), name="TAKEN")
    assert response.status_code == 422
    assert "already has a voice called “TAKEN”" in html_of(response)
    assert voice_rows(app) == before  # nor the other fields the form sent


def _org(world: World):
    from dashboard.models import Organization

    return db.session.scalars(select(Organization).where(Organization.id == world.acme)).one()


def test_changing_only_the_case_of_the_name_is_allowed(app, client, world):
    before = voice_rows(app)
    response = upload(as_user(client, world), url=edit_url(world.narrator), name="NARRATOR")
    assert response.status_code == 303
    assert_only_changed(
        before,
        voice_rows(app),
        world.narrator,
        name="NARRATOR",
        description="Bright and quick",
        category=VoiceCategory.PODCAST,
    )


# ------------------------------------------------------------------------- delete


def test_delete_page_confirms_and_says_what_happens_to_history(client, world):
    response = as_user(client, world, "admin").get(delete_url(world.narrator))
    assert response.status_code == 200
    html = html_of(response)
    assert "Delete Narrator?" in html
    assert "1 generation used this voice. It keeps its audio" in html
    assert f'action="/o/acme/voices/{world.narrator}/delete"' in html


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_delete_keeps_generations_with_their_voice_name(app, client, world):
    before, keys = voice_rows(app), object_keys(app)
    response = as_user(client, world).post(delete_url(world.narrator))
    assert response.status_code == 303 and response.headers["Location"] == "/o/acme/voices/"
    assert voice_rows(app) == {k: v for k, v in before.items() if k != world.narrator}
    assert object_keys(app) == keys - {world.narrator_key}
    with app.app_context(), tenancy.all_tenants("test check"):
        generation = db.session.scalars(
            select(Generation).where(Generation.id == world.generation)
        ).one()
        assert (generation.voice_id, generation.voice_name) == (None, "Narrator")
    with client.session_transaction() as session:
        assert session["_flashes"] == [("success", "Narrator was deleted.")]


def test_htmx_delete_redirects_the_page(app, client, world):
    before, keys = voice_rows(app), object_keys(app)
    response = as_user(client, world).post(delete_url(world.narrator), headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/o/acme/voices/"
    assert voice_rows(app) == {k: v for k, v in before.items() if k != world.narrator}
    assert object_keys(app) == keys - {world.narrator_key}


def test_storage_failure_after_delete_is_logged_not_shown(app, client, world, tmp_path, caplog):
    app.extensions["voxboard.storage"] = FailingStorage(tmp_path / "objects", fail_delete=True)
    with caplog.at_level(logging.WARNING):
        response = as_user(client, world).post(delete_url(world.narrator))
    assert response.status_code == 303  # the voice IS deleted
    assert "Narrator" not in custom_voices(app)
    assert world.narrator_key in object_keys(app)  # an orphan for the sweep, never a dangling row
    assert f"could not delete unused audio {world.narrator_key}" in caplog.text


# ------------------------------------------------------------------- access rules


def requests_for(world: World, voice_id) -> list[tuple[str, str]]:
    return [
        ("GET", NEW),
        ("POST", NEW),
        ("GET", edit_url(voice_id)),
        ("POST", edit_url(voice_id)),
        ("GET", delete_url(voice_id)),
        ("POST", delete_url(voice_id)),
    ]


@pytest.mark.parametrize(("who", "allowed"), [("owner", True), ("admin", True), ("member", False)])
def test_only_admins_and_owners_manage_voices(app, client, world, who, allowed):
    as_user(client, world, who)
    for method, url in requests_for(world, world.narrator):
        if method == "POST":
            continue  # the writes are covered below, one per role
        response = client.open(url, method=method)
        assert response.status_code == (200 if allowed else 403), f"{method} {url}"
        if not allowed:
            assert "Your role in this organisation doesn" in html_of(response)


@pytest.mark.parametrize("request_", ["create", "edit", "delete", "oversized"], ids=lambda r: r)
def test_members_get_403_on_writes_and_nothing_changes(app, client, world, tmp_path, request_):
    as_user(client, world, "member")
    before = (voice_rows(app), object_keys(app))
    wav = write(tmp_path, "a.wav", audio_bytes(12))
    if request_ == "create":
        response = upload(client, wav)
    elif request_ == "edit":
        response = upload(client, wav, url=edit_url(world.narrator))
    elif request_ == "delete":
        response = client.post(delete_url(world.narrator))
    else:  # too large: still 403, never the manager's form
        response = upload(client, write(tmp_path, "huge.wav", os.urandom(21 * MiB)))
    assert response.status_code == 403
    assert 'id="voice-form"' not in html_of(response)
    assert (voice_rows(app), object_keys(app)) == before


def test_write_views_declare_their_roles(app):
    for endpoint in ("new", "edit", "delete"):
        assert app.view_functions[f"library.{endpoint}"].required_roles == tenancy.MANAGERS


@pytest.mark.parametrize("who", ["owner", "member"])
@pytest.mark.parametrize("target", ["system", "other_org", "missing"])
def test_system_other_org_and_missing_voices_are_404(app, client, world, who, target):
    voice_id = {
        "system": world.system_voice,
        "other_org": world.other_voice,
        "missing": uuid.uuid4(),
    }[target]
    as_user(client, world, who)
    before = (voice_rows(app), object_keys(app))
    for method, url in requests_for(world, voice_id)[2:]:
        # A form that would pass: the id alone must be what refuses it.
        response = client.open(url, method=method, data=fields(name="Hijack", consent=None))
        assert response.status_code == 404, f"{method} {url}"
    assert (voice_rows(app), object_keys(app)) == before


def test_other_orgs_slug_is_404(client, world):
    as_user(client, world)
    assert client.get("/o/other/voices/new").status_code == 404


# ---------------------------------------------------------------------------- CSRF


@pytest.fixture
def csrf_on(app):
    app.config["WTF_CSRF_ENABLED"] = True


def page_token(client, url: str) -> str:
    html = html_of(client.get(url))
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_upload_with_csrf_on_needs_the_token(app, client, world, tmp_path, csrf_on):
    as_user(client, world)
    wav = write(tmp_path, "a.wav", audio_bytes(12))
    missing = upload(client, wav)
    assert missing.status_code == 400
    assert "expired or was sent from another site" in html_of(missing)
    token = page_token(client, NEW)
    accepted = upload(client, wav, csrf_token=token)
    assert accepted.status_code == 303, html_of(accepted)
    by_header = upload(client, wav, name="Via htmx", headers={"X-CSRFToken": token, **HX})
    assert by_header.status_code == 204


def test_oversized_upload_with_csrf_on_is_413_not_400(app, client, world, tmp_path, csrf_on):
    """The size is refused before the body (and so the token) is read; nothing changes."""
    as_user(client, world)
    response = upload(client, write(tmp_path, "huge.wav", os.urandom(21 * MiB)))
    assert response.status_code == 413
    assert "Studio Host" not in custom_voices(app)


# ------------------------------------------------------------------- demo voices


def demo_voices(app) -> dict[str, Voice]:
    from dashboard.models import Organization

    with app.app_context(), operator_access("test check"):
        org = db.session.scalars(select(Organization).where(Organization.slug == "demo")).one()
        voices = db.session.scalars(select(Voice).where(Voice.org_id == org.id)).all()
        return {v.name: factories.detach(v) for v in voices}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_seed_demo_adds_custom_voices_with_audio_once(app, runner):
    first = runner.invoke(args=["seed", "--demo"])
    assert first.exit_code == 0, first.output
    voices = demo_voices(app)
    assert set(voices) == {"Studio Narrator", "Help Desk", "Morning Show"}
    for voice in voices.values():
        assert voice.variant is VoiceVariant.CUSTOM
        assert voice.audio_key == custom_voice_key(voice.org_id, voice.id)
        assert reference_audio.MIN_REFERENCE_MS <= voice.audio_duration_ms <= 30_000
        data = read_object(app, voice.audio_key)
        assert hashlib.sha256(data).hexdigest() == voice.audio_sha256
        assert len(data) == voice.audio_size and voice.audio_content_type == "audio/wav"
    assert voices["Studio Narrator"].language == "en-GB"
    keys = object_keys(app)
    assert keys == {v.audio_key for v in voices.values()}

    again = runner.invoke(args=["seed", "--demo"])
    assert again.exit_code == 0, again.output
    assert "Demo: nothing to do" in again.output
    assert {n: v.audio_key for n, v in demo_voices(app).items()} == {
        n: v.audio_key for n, v in voices.items()
    }
    assert object_keys(app) == keys


def test_seed_demo_restores_a_deleted_voice_and_leaves_edited_ones(app, runner):
    assert runner.invoke(args=["seed", "--demo"]).exit_code == 0
    with app.app_context(), tenancy.all_tenants("test setup"):
        voices = {
            v.name: v for v in db.session.scalars(select(Voice).where(Voice.org_id.isnot(None)))
        }
        voices["Help Desk"].description = "Rewritten by a person"
        gone_key = voices["Morning Show"].audio_key
        db.session.delete(voices["Morning Show"])
        db.session.commit()
        get_storage().delete(gone_key)
    assert runner.invoke(args=["seed", "--demo"]).exit_code == 0
    after = demo_voices(app)
    assert after["Help Desk"].description == "Rewritten by a person"
    assert after["Morning Show"].audio_key in object_keys(app)
    assert len(object_keys(app)) == 3


class FailingCustomUploads(LocalStorage):
    """Local storage whose `fail_on`-th upload of a custom voice fails."""

    def __init__(self, root: Path, fail_on: int) -> None:
        super().__init__(root)
        self.custom_puts, self.fail_on = 0, fail_on

    def put(self, key, stream, *, content_type=None):
        if key.startswith("voices/orgs/"):
            self.custom_puts += 1
            if self.custom_puts == self.fail_on:
                raise StorageUnavailable("bucket 'voices' is unreachable (injected)")
        return super().put(key, stream, content_type=content_type)


def test_seed_demo_failing_half_way_leaves_no_demo_voice_or_object(app, runner, tmp_path):
    app.extensions["voxboard.storage"] = FailingCustomUploads(tmp_path / "objects", fail_on=2)
    result = runner.invoke(args=["seed", "--demo"])
    assert result.exit_code == 1
    assert "seed failed: bucket 'voices' is unreachable (injected)" in result.output
    assert object_keys(app) == set()  # the first demo voice's object went with the rollback
    with app.app_context(), tenancy.all_tenants("test check"):
        assert db.session.scalars(select(Voice).where(Voice.org_id.isnot(None))).all() == []


def test_upload_limit_setting(tmp_path):
    from dashboard.config import settings_from_env

    env = {"SECRET_KEY": "x"}
    assert settings_from_env(env, str(tmp_path))["VOICE_UPLOAD_MAX_BYTES"] == 20 * MiB
    env["VOICE_UPLOAD_MAX_BYTES"] = "1048576"
    assert settings_from_env(env, str(tmp_path))["VOICE_UPLOAD_MAX_BYTES"] == MiB
