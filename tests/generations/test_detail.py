"""One generation's page: player, text, voice, parameters, actions; tenancy; query count."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

import pytest
from flask import Flask

from dashboard.extensions import db
from dashboard.models import Generation, GenerationStatus, MemberRole, Organization, User, Voice
from dashboard.storage import get_storage
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import BACKENDS, WEB_ROLE_BACKENDS
from tests.http import login

TEXT = "First line of the script.\nSecond line, straight after.\n\nA new paragraph."
PARAMS = {"temperature": 1.3, "top_p": 0.5, "top_k": 250, "repetition_penalty": 1.2}


# ------------------------------------------------------------------------ fixtures


def stub_missing_endpoints(app: Flask) -> None:
    """Give the app `history.delete` if the history half hasn't landed yet."""
    if "history.delete" not in app.view_functions:
        app.add_url_rule(
            "/o/<org_slug>/history/<uuid:generation_id>/delete",
            endpoint="history.delete",
            view_func=lambda **_: "stub",
            methods=["GET", "POST"],
        )


@pytest.fixture
def world(app: Flask) -> dict[str, Any]:
    """Org "acme" (owner Olive, member Max, a custom voice and a system voice) with a
    finished generation by Olive; org "rival" with a generation of its own."""
    stub_missing_endpoints(app)
    with app.app_context(), operator_access("test setup spans both orgs"):
        acme = factories.make_org(slug="acme", name="Acme Audio")
        rival = factories.make_org(slug="rival", name="Rival Sound")
        olive = factories.make_user(email="olive@acme.example", display_name="Olive Owner")
        max_ = factories.make_user(email="max@acme.example", display_name="Max Member")
        factories.make_membership(olive, acme, MemberRole.OWNER)
        factories.make_membership(max_, acme, MemberRole.MEMBER)
        narrator = factories.make_voice(acme, name="Studio Narrator")
        aaron = factories.make_voice(name="Aaron")
        done = factories.make_generation(acme, narrator, text=TEXT, created_by=olive.id, **PARAMS)
        factories.finish_generation(done, get_storage())
        theirs = factories.make_generation(rival, aaron, text="Rival secrets.")
        factories.finish_generation(theirs, get_storage())
        db.session.commit()
        return {
            "acme": acme.id,
            "narrator": narrator.id,
            "aaron": aaron.id,
            "done": done.id,
            "theirs": theirs.id,
            "olive": factories.detach(olive),
            "max": factories.detach(max_),
        }


def add_generation(app: Flask, world: dict, voice: str | None = "aaron", **fields: Any):
    """Insert another acme generation (queued unless `fields` say otherwise); return its id."""
    with app.app_context(), operator_access("test setup"):
        acme = db.session.get(Organization, world["acme"])
        voice_row = db.session.get(Voice, world[voice]) if voice else None
        generation = factories.make_generation(acme, voice_row, **fields)
        db.session.commit()
        return generation.id


def url(generation_id, slug: str = "acme") -> str:
    return f"/o/{slug}/generations/{generation_id}"


def get_page(client, path: str, **headers: str) -> str:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def hrefs(page: str) -> set[str]:
    return {html.unescape(h) for h in re.findall(r'href="([^"]+)"', page)}


def fact(page: str, term: str) -> str:
    """Return the text of the <dd> after the <dt> named `term`, tags and spacing removed."""
    match = re.search(rf"<dt[^>]*>{re.escape(term)}</dt>\s*<dd>(.*?)</dd>", page, re.S)
    assert match, f"no {term!r} in the details"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_succeeded_generation_shows_player_text_details_and_actions(client, world):
    login(client, world["max"])
    gid = world["done"]
    page = get_page(client, url(gid))

    # The player: a server-drawn waveform of 160 bars over a native <audio> baseline.
    assert page.count('<svg class="waveform"') == 1
    assert 'aria-label="Waveform: Speech by Studio Narrator"' in page
    bars = re.search(r'<g id="waveform-[^"]+-bars" class="waveform-bars">(.*?)</g>', page).group(1)
    assert bars.count("<rect ") == 160
    audio_src = f"/o/acme/generations/{gid}/audio"
    assert f'<audio controls preload="metadata" src="{audio_src}"' in page
    assert "data-player " in page and "data-player-toggle" in page
    assert re.search(r"data-player-total>0:0[1-9]<", page)  # eSpeak's few seconds

    # The whole text, line breaks kept (player.css sets pre-wrap on it).
    assert f'<p class="spoken-text">{html.escape(TEXT)}</p>' in page
    assert fact(page, "Voice") == "Studio Narrator"
    assert fact(page, "Engine") == "espeak-ng (test)"
    assert fact(page, "Characters") == str(len(TEXT))
    assert re.fullmatch(r"0:0[1-9]", fact(page, "Duration"))
    assert fact(page, "Created by") == "Olive Owner"
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC just now", fact(page, "Created"))
    assert "Attempts" not in page and "Error" not in page
    assert fact(page, "Creativity") == "1.30"
    assert fact(page, "Voice variety") == "0.50"
    assert fact(page, "Expression range") == "250"
    assert fact(page, "Natural flow") == "1.20 default"

    links = hrefs(page)
    assert f"{audio_src}?download=1" in links
    assert f"/o/acme/generate/?from={gid}" in links
    assert f"/o/acme/history/{gid}/delete" in links
    assert "/o/acme/history/" in links
    assert "/o/acme/voices/?q=Studio+Narrator" in links
    assert "/static/js/player.js" in page and "/static/css/player.css" in page
    # The strict CSP allows no inline styles or scripts; this page needs none.
    assert " style=" not in page and "<script>" not in page

    # The player's source really plays: the audio endpoint answers with the WAV.
    audio = client.get(audio_src)
    assert audio.status_code == 200 and audio.mimetype == "audio/wav"
    assert audio.data[:4] == b"RIFF"


def test_the_creator_sees_themselves(client, world):
    login(client, world["olive"])
    assert fact(get_page(client, url(world["done"])), "Created by") == "Olive Owner (you)"


def test_a_renamed_voice_keeps_the_snapshot_name_and_says_the_new_one(app, client, world):
    with app.app_context(), operator_access("test setup"):
        db.session.get(Voice, world["narrator"]).name = "House Narrator"
        db.session.commit()
    login(client, world["max"])
    page = get_page(client, url(world["done"]))
    assert fact(page, "Voice") == "Studio Narrator now “House Narrator”"
    assert "/o/acme/voices/?q=House+Narrator" in hrefs(page)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_deleted_voice_shows_the_snapshot_name_without_a_library_link(app, client, world):
    with app.app_context(), operator_access("test setup"):
        db.session.delete(db.session.get(Voice, world["narrator"]))
        db.session.commit()
        assert db.session.get(Generation, world["done"]).voice_id is None
    login(client, world["max"])
    page = get_page(client, url(world["done"]))
    assert fact(page, "Voice") == "Studio Narrator (voice deleted)"
    assert not any("/voices/" in h for h in hrefs(page) - {"/o/acme/voices/"})
    assert 'src="/o/acme/generations/' in page  # the audio outlives its voice


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_deleted_creator_reads_a_former_member(app, client, world):
    with app.app_context(), operator_access("test setup"):
        db.session.delete(db.session.get(User, world["olive"].id))
        db.session.commit()
    login(client, world["max"])
    assert fact(get_page(client, url(world["done"])), "Created by") == "a former member"


def test_old_rows_without_peaks_draw_a_flat_waveform(app, client, world):
    with app.app_context(), operator_access("test setup"):
        db.session.get(Generation, world["done"]).peaks = None
        db.session.commit()
    login(client, world["max"])
    page = get_page(client, url(world["done"]))
    assert 'class="waveform-flat"' in page and "<audio controls" in page


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_failed_generation_shows_the_error_and_the_status_widget(app, client, world):
    gid = add_generation(
        app,
        world,
        text="This one broke.",
        status=GenerationStatus.FAILED,
        error="The speech engine timed out after 60 seconds.",
        attempts=3,
    )
    login(client, world["max"])
    page = get_page(client, url(gid))
    assert fact(page, "Error") == "The speech engine timed out after 60 seconds."
    assert fact(page, "Attempts") == "3"
    assert 'data-generation-status="failed"' in page
    assert f'action="/o/acme/generations/{gid}/retry"' in page
    assert "<audio" not in page and "download=1" not in page
    assert f"/o/acme/generate/?from={gid}" in hrefs(page)
    assert f"/o/acme/history/{gid}/delete" in hrefs(page)
    assert fact(page, "Created by") == "a former member"  # nobody recorded
    assert fact(page, "Engine") == "–" and fact(page, "Duration") == "–"


@pytest.mark.parametrize(
    "status", [GenerationStatus.QUEUED, GenerationStatus.RUNNING], ids=lambda s: s.value
)
def test_unfinished_generation_shows_the_polling_status_widget(app, client, world, status):
    gid = add_generation(app, world, text="Still\nworking.", status=status)
    login(client, world["max"])
    page = get_page(client, url(gid))
    assert f'data-generation-status="{status.value}"' in page
    assert f'hx-get="/o/acme/generations/{gid}/status"' in page
    assert 'hx-trigger="every 1s"' in page
    assert "<audio" not in page and "download=1" not in page
    assert '<p class="spoken-text">Still\nworking.</p>' in page
    assert fact(page, "Voice") == "Aaron"
    assert "/o/acme/voices/?q=Aaron" in hrefs(page)  # system voices are in the library too
    # When the widget reports the outcome, the page re-reads itself (Download, engine...).
    assert re.search(
        rf'class="generation-page"\s+hx-get="/o/acme/generations/{gid}"\s+'
        r'hx-trigger="generation-finished from:body" hx-select=".generation-page"',
        page,
    )


def test_htmx_requests_get_the_whole_page_and_vary(client, world):
    login(client, world["max"])
    response = client.get(url(world["done"]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" in response.get_data(as_text=True)
    assert "HX-Request" in response.headers["Vary"]


# ------------------------------------------------------------------------- tenancy


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_another_orgs_generation_is_404(client, world):
    login(client, world["max"])
    theirs = world["theirs"]
    assert client.get(url(theirs)).status_code == 404  # B's id under A's slug
    assert client.get(url(theirs, slug="rival")).status_code == 404  # B's slug: not a member
    assert client.get(url(uuid.uuid4())).status_code == 404
    assert client.get("/o/acme/generations/not-a-uuid").status_code == 404
    assert client.get(url(world["done"])).status_code == 200  # the control


def test_anonymous_callers_are_sent_to_log_in(client, world):
    response = client.get(url(world["done"]))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


# --------------------------------------------------------------------- query count


def statements_on(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if re.search(rf"\bFROM {table}\b", s)]


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_statements_per_page_are_constant(app, client, world, count_queries, backend):
    login(client, world["max"])

    def measure(generation_id) -> tuple[int, list[str]]:
        with count_queries() as seen:
            get_page(client, url(generation_id))
        return len(seen), seen

    total, seen = measure(world["done"])
    # The generation with its voice and its creator: one statement, joined.
    (page,) = statements_on(seen, "generations")
    assert re.search(r"\bJOIN voices\b", page) and re.search(r"\bJOIN users\b", page)
    assert not statements_on(seen, "voices")

    # A longer history doesn't change what one generation's page runs.
    with app.app_context(), operator_access("test setup"):
        acme = db.session.get(Organization, world["acme"])
        for n in range(30):
            factories.make_generation(acme, text=("Filler. " * n + f"Number {n}.").strip())
        db.session.commit()
    assert measure(world["done"])[0] == total
    # Nor does a generation without a voice or a creator: the joins find nothing.
    lone = add_generation(app, world, voice=None, text="Orphan.")
    assert measure(lone)[0] == total
    # The figure today: the caller with their memberships and orgs (one statement),
    # then the page's one; PostgreSQL adds the RLS settings twice (the user known as
    # the transaction starts, then the org).
    expected = {"sqlite": 2, "postgresql-app": 4}[backend]
    assert total == expected, "\n".join(s.split("\n")[0][:90] for s in seen)
