"""A generation's audio: whole or by byte range, ETag revalidation, names, refusals.

The audio is real eSpeak speech stored through the app's storage (local files here);
the bytes served are compared with the stored object, never with a fixture copy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from dashboard.extensions import db
from dashboard.models import GenerationStatus, MemberRole, User
from dashboard.storage import get_storage
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import both_databases, web_role
from tests.http import login

TEXT = "Hello from Voxboard, and welcome to the studio."


@dataclass
class World:
    owner: User
    outsider: User
    generation: uuid.UUID  # acme's, succeeded, with audio
    audio: bytes  # its stored object
    sha256: str
    other_generation: uuid.UUID  # the other org's, succeeded
    unfinished: dict[str, uuid.UUID]  # acme's queued / running / failed ones


@pytest.fixture
def world(app) -> World:
    with app.app_context(), operator_access("test setup spans two orgs"):
        storage = get_storage()
        acme = factories.make_org(slug="acme", name="Acme Audio")
        other = factories.make_org(slug="other", name="Other Org")
        owner, outsider = factories.make_user(), factories.make_user()
        factories.make_membership(owner, acme, MemberRole.OWNER)
        factories.make_membership(outsider, other, MemberRole.OWNER)
        aaron = factories.make_voice(None, name="Aaron")
        generation = factories.finish_generation(
            factories.make_generation(acme, aaron, text=TEXT), storage
        )
        theirs = factories.finish_generation(
            factories.make_generation(other, aaron, text="Their words."), storage
        )
        unfinished = {
            "queued": factories.make_generation(acme, aaron),
            "running": factories.make_generation(acme, aaron, status=GenerationStatus.RUNNING),
            "failed": factories.make_generation(
                acme, aaron, status=GenerationStatus.FAILED, error="The engine timed out."
            ),
        }
        db.session.commit()
        audio = b"".join(storage.open_range(generation.audio_key))
        return World(
            owner=factories.detach(owner),
            outsider=factories.detach(outsider),
            generation=generation.id,
            audio=audio,
            sha256=generation.audio_sha256,
            other_generation=theirs.id,
            unfinished={status: g.id for status, g in unfinished.items()},
        )


@pytest.fixture
def owner(client, world):
    login(client, world.owner)
    return client


def audio_url(generation_id, slug: str = "acme") -> str:
    return f"/o/{slug}/generations/{generation_id}/audio"


# ---------------------------------------------------------------------- whole, ranges


@web_role
def test_the_whole_audio_is_the_stored_object(owner, world):
    response = owner.get(audio_url(world.generation))
    assert response.status_code == 200
    assert response.data == world.audio and response.data[:4] == b"RIFF"
    assert response.mimetype == "audio/wav"
    assert response.content_length == len(world.audio)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{world.sha256}"'
    assert response.headers["Cache-Control"].startswith("private")
    assert "HX-Request" not in response.headers.get("Vary", "")


@both_databases
@pytest.mark.parametrize(
    ("header", "piece"),
    [
        ("bytes=0-99", slice(0, 100)),
        ("bytes=-100", slice(-100, None)),
        ("bytes=100-", slice(100, None)),
        ("bytes=1000-1999", slice(1000, 2000)),
        ("bytes=0-0", slice(0, 1)),
        ("bytes=10-999999999", slice(10, None)),  # an end past the last byte is clamped
    ],
    ids=["first-100", "suffix-100", "open-ended", "middle", "one-byte", "end-clamped"],
)
def test_a_byte_range_is_206_with_exactly_those_bytes(owner, world, header, piece):
    size = len(world.audio)
    expected = world.audio[piece]
    start = piece.indices(size)[0]
    response = owner.get(audio_url(world.generation), headers={"Range": header})
    assert response.status_code == 206
    assert response.data == expected
    assert response.content_length == len(expected)
    assert response.headers["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{size}"
    assert response.headers["ETag"] == f'"{world.sha256}"'


def test_the_first_100_bytes_are_exactly_100(owner, world):
    response = owner.get(audio_url(world.generation), headers={"Range": "bytes=0-99"})
    assert response.status_code == 206 and len(response.data) == 100
    assert response.headers["Content-Range"] == f"bytes 0-99/{len(world.audio)}"


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{end}"])
def test_an_unsatisfiable_range_is_416_with_the_real_length(owner, world, header):
    size = len(world.audio)
    response = owner.get(
        audio_url(world.generation),
        headers={"Range": header.format(size=size, end=size + 10)},
    )
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"
    assert response.get_data(as_text=True) == "Requested range not satisfiable.\n"


def test_head_sends_the_headers_only(owner, world):
    response = owner.head(audio_url(world.generation))
    assert response.status_code == 200 and response.data == b""
    assert response.content_length == len(world.audio)
    assert response.headers["ETag"] == f'"{world.sha256}"'


def test_several_ranges_are_answered_with_the_whole_object(owner, world):
    response = owner.get(audio_url(world.generation), headers={"Range": "bytes=0-1,10-20"})
    assert response.status_code == 200 and response.data == world.audio


def test_if_range_with_a_stale_etag_sends_the_whole_new_object(owner, world):
    stale = {"Range": "bytes=0-99", "If-Range": '"an-older-version"'}
    response = owner.get(audio_url(world.generation), headers=stale)
    assert response.status_code == 200 and response.data == world.audio
    current = {"Range": "bytes=0-99", "If-Range": f'"{world.sha256}"'}
    response = owner.get(audio_url(world.generation), headers=current)
    assert response.status_code == 206 and response.data == world.audio[:100]


# ----------------------------------------------------------------- caching and names


def test_a_matching_if_none_match_is_304_without_a_body(owner, world):
    first = owner.get(audio_url(world.generation))
    etag = first.headers["ETag"]
    again = owner.get(audio_url(world.generation), headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"].startswith("private")
    other = owner.get(audio_url(world.generation), headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.data == world.audio


def test_the_audio_is_inline_and_named_after_its_text(owner, world):
    response = owner.get(audio_url(world.generation))
    name = f"hello-from-voxboard-and-welcome-to-the-studio-{world.generation.hex[-6:]}.wav"
    assert response.headers["Content-Disposition"] == (
        f"inline; filename=\"{name}\"; filename*=UTF-8''{name}"
    )


def test_download_1_makes_it_an_attachment(owner, world):
    response = owner.get(audio_url(world.generation) + "?download=1")
    assert response.status_code == 200 and response.data == world.audio
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="hello-from-voxboard-')


def test_a_non_ascii_text_gets_a_utf8_filename(app, owner, world):
    with app.app_context(), operator_access("test setup"):
        from dashboard.models import Generation, Organization

        acme = db.session.get(Organization, db.session.get(Generation, world.generation).org_id)
        generation = factories.finish_generation(
            factories.make_generation(acme, None, voice_name="Ivan", text="Привет, мир! Как дела?"),
            get_storage(),
        )
        db.session.commit()
        generation_id = generation.id
    response = owner.get(audio_url(generation_id) + "?download=1")
    assert response.status_code == 200
    name = f"привет-мир-как-дела-{generation_id.hex[-6:]}.wav"
    disposition = response.headers["Content-Disposition"]
    assert f"filename*=UTF-8''{quote(name)}" in disposition
    ascii_part = disposition.split(";")[1].strip()
    assert ascii_part.startswith('filename="') and ascii_part.isascii()


# -------------------------------------------------------------------------- refusals


@both_databases
@pytest.mark.parametrize("status", ["queued", "running", "failed"])
def test_a_generation_without_audio_yet_is_409_in_words(owner, world, status):
    response = owner.get(audio_url(world.unfinished[status]))
    assert response.status_code == 409
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == (
        f"This generation has no audio yet (it is {status}).\n"
    )


@web_role
def test_another_orgs_audio_is_404_under_either_slug(owner, world):
    mine_slug = owner.get(audio_url(world.other_generation))
    their_slug = owner.get(audio_url(world.other_generation, slug="other"))
    my_audio_their_slug = owner.get(audio_url(world.generation, slug="other"))
    assert [r.status_code for r in (mine_slug, their_slug, my_audio_their_slug)] == [404] * 3
    assert all(r.data != world.audio and b"RIFF" not in r.data for r in (mine_slug, their_slug))


def test_an_unknown_generation_is_404(owner, world):
    assert owner.get(audio_url(uuid.uuid4())).status_code == 404


@both_databases
def test_storage_down_is_502_with_a_readable_text(owner, world, storage_down):
    response = owner.get(audio_url(world.generation))
    assert response.status_code == 502
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == (
        "Audio storage is unavailable right now; please try again shortly.\n"
    )


def test_a_missing_object_is_a_logged_storage_fault(app, owner, world, caplog):
    # The row says the audio exists: its absence is storage's fault (502), not a 404.
    with app.app_context(), operator_access("test setup"):
        from dashboard.models import Generation

        key = db.session.get(Generation, world.generation).audio_key
        get_storage().delete(key)
    with caplog.at_level("ERROR", logger="dashboard.storage.media"):
        response = owner.get(audio_url(world.generation))
    assert response.status_code == 502
    assert "should be in storage but can't be found" in response.get_data(as_text=True)
    assert key not in response.get_data(as_text=True)
    assert f"object {key} is missing from storage" in caplog.text


def test_local_storage_gone_is_502_not_404(app, owner, world):
    import shutil

    shutil.rmtree(app.config["STORAGE_LOCAL_ROOT"])
    response = owner.get(audio_url(world.generation))
    assert response.status_code == 502


def test_anonymous_callers_are_sent_to_log_in(client, world):
    response = client.get(audio_url(world.generation))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
