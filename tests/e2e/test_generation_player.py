"""The generation player in a real browser: play, skip, seek by click and keyboard, CSP.

A user, an organisation and its generations are written straight into the live
server's database with the factories (the audio is real eSpeak speech in storage);
the user then logs in through /login like anybody else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from dashboard import tenancy
from dashboard.auth.passwords import hash_password
from dashboard.extensions import db
from dashboard.models import Generation, GenerationStatus, MemberRole, Voice
from dashboard.storage import get_storage
from tests import factories
from tests.e2e.conftest import watch_console
from tests.e2e.test_home import ARTIFACTS

PASSWORD = "correct horse battery"
# Long enough (about 25 s of eSpeak) that ±10 s and a seek to the middle mean something.
TEXT = (
    "Welcome to the Voxboard player test.\n"
    "This paragraph is long enough to give the player something to seek through: "
    "ten seconds back, ten seconds forward, and a click in the middle of the waveform "
    "should each land where the listener expects.\n\n"
    "A second paragraph keeps talking for a while longer, so that skipping forward "
    "from the start never reaches the end, and the last words arrive well after "
    "twenty seconds of speech."
)


@dataclass(frozen=True)
class PlayerWorld:
    slug: str
    email: str
    finished: uuid.UUID
    duration_ms: int

    def url(self, base: str, generation_id: uuid.UUID | None = None) -> str:
        return f"{base}/o/{self.slug}/generations/{generation_id or self.finished}"


@pytest.fixture(scope="session")
def player_world(live_app) -> PlayerWorld:
    run = uuid.uuid4().hex[:6]
    wav, duration_ms = factories.speech_sample(TEXT)
    with live_app.app_context(), tenancy.all_tenants("e2e setup: the live server's org"):
        org = factories.make_org(slug=f"player-{run}", name=f"Player Lab {run}")
        user = factories.make_user(
            email=f"paula-{run}@example.com",
            display_name="Paula Player",
            password_hash=hash_password(PASSWORD),
        )
        factories.make_membership(user, org, MemberRole.OWNER)
        aaron = db.session.scalars(select(Voice).where(Voice.name == "Aaron")).one()  # seeded
        generation = factories.make_generation(
            org,
            aaron,
            text=TEXT,
            created_by=user.id,
            temperature=1.1,
            top_k=400,
        )
        factories.finish_generation(generation, get_storage(), wav=wav)
        db.session.commit()
        world = PlayerWorld(org.slug, user.email, generation.id, duration_ms)
    assert duration_ms > 22_000, duration_ms
    return world


def log_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


@pytest.fixture
def player_page(browser, live_server, player_world, request) -> Iterator[object]:
    """A logged-in page at desktop width (or the (width, height) `indirect` gives)."""
    width, height = getattr(request, "param", (1280, 900))
    context = browser.new_context(viewport={"width": width, "height": height})
    page = watch_console(context.new_page())
    log_in(page, live_server, player_world.email)
    yield page
    context.close()


def open_player(page, url: str) -> None:
    page.goto(url)
    # player.js has taken over and the browser knows the audio's length.
    page.wait_for_function(
        "() => { const p = document.querySelector('[data-player]');"
        " return p && p.dataset.playerReady && p.querySelector('audio').readyState >= 1; }"
    )


def audio_state(page) -> dict:
    return page.locator("[data-player-audio]").evaluate(
        "a => ({t: a.currentTime, d: a.duration, paused: a.paused})"
    )


def readout(page) -> str:
    return page.locator(".player-time").inner_text().strip()


def test_play_skip_and_seek(live_server, player_world, player_page):
    page = player_page
    open_player(page, player_world.url(live_server))
    audio = page.locator("[data-player-audio]")
    assert audio.evaluate("a => a.controls") is False  # the native controls hand over
    assert audio.is_hidden()
    duration = audio_state(page)["d"]
    assert duration == pytest.approx(player_world.duration_ms / 1000, abs=0.1)
    total = f"{round(duration) // 60}:{round(duration) % 60:02d}"
    assert readout(page) == f"0:00 / {total}"

    # Play: time runs, the button says so, the readout and the waveform follow.
    play = page.get_by_role("button", name="Play")
    assert play.get_attribute("aria-pressed") == "false"
    play.click()
    page.wait_for_function("() => document.querySelector('audio').currentTime > 1.2")
    expect(play).to_have_attribute("aria-pressed", "true")
    assert readout(page) != f"0:00 / {total}"
    assert float(page.locator("[data-waveform-progress]").get_attribute("width")) > 0
    page.screenshot(path=str(ARTIFACTS / "generation-playing.png"), caret="initial")
    play.click()
    page.wait_for_function("() => document.querySelector('audio').paused")
    # The "pause" event (which updates the button) comes after `paused` turns true.
    expect(play).to_have_attribute("aria-pressed", "false")

    # −10 s from the first seconds stops at the start; +10 s moves ten seconds on.
    page.get_by_role("button", name="Back 10 seconds").click()
    assert audio_state(page)["t"] == 0
    assert readout(page) == f"0:00 / {total}"
    page.get_by_role("button", name="Forward 10 seconds").click()
    assert audio_state(page)["t"] == pytest.approx(10, abs=0.01)
    assert readout(page) == f"0:10 / {total}"
    for _ in range(3):  # …and never past the end
        page.get_by_role("button", name="Forward 10 seconds").click()
    assert audio_state(page)["t"] == pytest.approx(duration, abs=0.05)
    assert readout(page) == f"{total} / {total}"

    # A click in the middle of the waveform seeks to the middle of the audio.
    wave = page.locator("[data-player-wave]")
    box = wave.bounding_box()
    wave.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    assert audio_state(page)["t"] == pytest.approx(duration / 2, abs=0.3)
    half = int(duration / 2)
    assert readout(page) == f"0:{half:02d} / {total}"
    played = float(page.locator("[data-waveform-progress]").get_attribute("width"))
    assert played == pytest.approx(320, abs=5)  # half of the 640-unit viewBox
    page.screenshot(path=str(ARTIFACTS / "generation-seeked.png"), caret="initial")
    assert page.console_errors == []


def test_the_waveform_is_a_keyboard_slider(live_server, player_world, player_page):
    page = player_page
    open_player(page, player_world.url(live_server))
    slider = page.get_by_role("slider", name="Seek")
    slider.focus()
    duration = audio_state(page)["d"]
    assert slider.get_attribute("aria-valuemin") == "0"
    assert slider.get_attribute("aria-valuemax") == str(round(duration))

    slider.press("ArrowRight")
    assert audio_state(page)["t"] == pytest.approx(5, abs=0.01)
    assert slider.get_attribute("aria-valuenow") == "5"
    assert slider.get_attribute("aria-valuetext").startswith("0:05 of ")
    slider.press("ArrowLeft")
    slider.press("ArrowLeft")  # clamped at the start
    assert audio_state(page)["t"] == 0
    slider.press("End")
    assert audio_state(page)["t"] == pytest.approx(duration, abs=0.05)
    slider.press("Home")
    assert audio_state(page)["t"] == 0
    slider.press(" ")  # space plays and pauses from the slider too
    page.wait_for_function("() => !document.querySelector('audio').paused")
    slider.press(" ")
    page.wait_for_function("() => document.querySelector('audio').paused")
    assert page.console_errors == []


def test_desktop_page_screenshot(live_server, player_world, player_page):
    page = player_page
    open_player(page, player_world.url(live_server))
    assert page.locator("h1").inner_text().startswith("Welcome to the Voxboard player test.")
    download = page.locator(".generation-actions a", has_text="Download")
    assert download.get_attribute("href").endswith("/audio?download=1")
    page.screenshot(path=str(ARTIFACTS / "generation-desktop.png"), full_page=True, caret="initial")
    assert page.console_errors == []


@pytest.mark.parametrize("player_page", [(390, 844)], indirect=True)
def test_phone_width_fits_without_horizontal_scroll(live_server, player_world, player_page):
    page = player_page
    open_player(page, player_world.url(live_server))
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    box = page.locator("[data-player-wave]").bounding_box()
    assert box["width"] > 250  # the waveform takes the card's width on a phone
    page.screenshot(path=str(ARTIFACTS / "generation-phone.png"), full_page=True, caret="initial")
    assert page.console_errors == []


def test_the_status_widget_turns_into_a_working_player(
    live_app, live_server, player_world, player_page
):
    """htmx swaps the player in when the generation finishes; player.js wires it there."""
    page = player_page
    with live_app.app_context(), tenancy.all_tenants("e2e setup: the live server's org"):
        finished = db.session.get(Generation, player_world.finished)
        queued = Generation(
            org_id=finished.org_id,
            voice_name="Aaron",
            text="Short and sweet.",
            character_count=len("Short and sweet."),
            created_by=finished.created_by,
        )
        db.session.add(queued)
        db.session.commit()
        queued_id = queued.id
    page.goto(player_world.url(live_server, queued_id))
    assert page.locator("[data-generation-status=queued]").is_visible()
    assert page.locator("[data-player]").count() == 0
    page.screenshot(path=str(ARTIFACTS / "generation-queued.png"), caret="initial")

    with live_app.app_context(), tenancy.all_tenants("e2e setup: the job finishing"):
        generation = db.session.get(Generation, queued_id)
        factories.finish_generation(generation, get_storage())
        db.session.commit()
    page.wait_for_selector("[data-player][data-player-ready]", timeout=10_000)
    # The widget reported the outcome, so the page re-read itself: the finished page's
    # player, its Download button and the engine are there without a reload.
    page.wait_for_selector(".generation-actions a:has-text('Download')", timeout=10_000)
    page.wait_for_selector("[data-player][data-player-ready]", timeout=10_000)
    assert "espeak" in page.locator(".generation-page").inner_text()
    page.screenshot(path=str(ARTIFACTS / "generation-swapped.png"), caret="initial")
    assert page.locator("[data-player-audio]").evaluate("a => a.controls") is False
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => document.querySelector('[data-player-audio]').currentTime > 0.3")
    assert page.locator("[data-player-toggle]").get_attribute("aria-pressed") == "true"
    assert page.console_errors == []


def test_failed_generation_shows_the_error(live_app, live_server, player_world, player_page):
    page = player_page
    with live_app.app_context(), tenancy.all_tenants("e2e setup: the live server's org"):
        finished = db.session.get(Generation, player_world.finished)
        failed = Generation(
            org_id=finished.org_id,
            voice_name="Aaron",
            text="This one could not be spoken.",
            character_count=len("This one could not be spoken."),
            status=GenerationStatus.FAILED,
            error="The speech engine did not answer within 60 seconds.",
            attempts=3,
        )
        db.session.add(failed)
        db.session.commit()
        failed_id = failed.id
    page.goto(player_world.url(live_server, failed_id))
    assert page.locator(".fact-error dd").inner_text().startswith("The speech engine did not")
    assert page.get_by_role("button", name="Try again").is_visible()
    assert page.locator(".generation-actions a", has_text="Download").count() == 0
    page.screenshot(path=str(ARTIFACTS / "generation-failed.png"), full_page=True, caret="initial")
    assert page.console_errors == []


def test_works_without_javascript(live_server, player_world, browser):
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    log_in(page, live_server, player_world.email)
    page.goto(player_world.url(live_server))
    audio = page.locator("audio[controls]")
    assert audio.is_visible()
    assert page.locator("svg.waveform").is_visible()
    assert page.locator("[data-player-toggle]").is_hidden()
    assert page.locator("[data-player-controls]").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "generation-no-js.png"), caret="initial")
    context.close()
