"""The voice library in a real browser: debounced search, filters, load more, previews.

An owner signs up through the UI once per session; their organisation's custom voices
are then written straight into the live server's database (and storage), as the
factories do elsewhere — uploading them is the manage half's browser test.
"""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from dashboard import tenancy
from dashboard.extensions import db
from dashboard.models import Organization, Voice, VoiceCategory, VoiceVariant
from dashboard.storage import custom_voice_key, get_storage
from tests.e2e.conftest import watch_console
from tests.e2e.test_accounts import sign_up
from tests.e2e.test_home import ARTIFACTS

CUSTOM_COUNT = 30  # more than one page (24)
FIRST_NAMES = ["Ava", "Ben", "Clara", "Dev", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas"]
ROLES = [
    ("brand narrator", VoiceCategory.NARRATIVE, "Our long-form narrator for brand films"),
    ("support line", VoiceCategory.CUSTOMER_SERVICE, "Patient and clear for the help desk"),
    ("podcast host", VoiceCategory.PODCAST, "Upbeat co-host for the weekly show"),
]
LANGUAGES = ["en-GB", "en-US", "fr-FR", "de-DE", "es-ES"]


@dataclass(frozen=True)
class LibraryOrg:
    slug: str
    storage_state: dict

    def url(self, base: str, query: str = "") -> str:
        return f"{base}/o/{self.slug}/voices/{query}"


@pytest.fixture(scope="session")
def library_org(live_server: str, live_app, browser) -> Iterator[LibraryOrg]:
    """An owner signed up through the UI, with CUSTOM_COUNT voices in their library."""
    run = uuid.uuid4().hex[:6]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(live_server + "/signup")
    sign_up(page, live_server, "Vera Voice", f"vera-{run}@example.com", f"Voice Lab {run}")
    slug = f"voice-lab-{run}"
    assert page.url.endswith(f"/o/{slug}/"), page.url
    state = context.storage_state()
    context.close()

    with live_app.app_context(), tenancy.all_tenants("e2e setup: the live server's org"):
        org = db.session.scalars(select(Organization).where(Organization.slug == slug)).one()
        aaron = db.session.scalars(select(Voice).where(Voice.name == "Aaron")).one()
        sample = b"".join(get_storage().open_range(aaron.audio_key))
        names = itertools.product(FIRST_NAMES, ROLES)
        for n, (first, (role, category, description)) in enumerate(names):
            if n == CUSTOM_COUNT:
                break
            voice = Voice(
                id=uuid.uuid4(),
                org_id=org.id,
                variant=VoiceVariant.CUSTOM,
                name=f"{first} {role}",
                category=category,
                language=LANGUAGES[n % len(LANGUAGES)],
                description=description,
                audio_size=len(sample),
                audio_sha256=aaron.audio_sha256,
                audio_content_type=aaron.audio_content_type,
                audio_duration_ms=aaron.audio_duration_ms,
            )
            voice.audio_key = custom_voice_key(org.id, voice.id)
            get_storage().put(voice.audio_key, io.BytesIO(sample), content_type="audio/wav")
            db.session.add(voice)
        db.session.commit()
    yield LibraryOrg(slug, state)


@pytest.fixture
def owner_page(browser, library_org: LibraryOrg, request) -> Iterator[object]:
    """A logged-in page at desktop width (or the width `indirect` parametrisation gives)."""
    width, height = getattr(request, "param", (1280, 900))
    context = browser.new_context(
        viewport={"width": width, "height": height}, storage_state=library_org.storage_state
    )
    page = context.new_page()
    watch_console(page)
    yield page
    context.close()


def card_names(page, section: str) -> list[str]:
    cards = page.locator(f"section[aria-labelledby='{section}-voices-heading'] .voice-card h3")
    return cards.all_inner_texts()


def wait_until_settled(page) -> None:
    """Wait for the results to fade back in after an htmx swap (for screenshots)."""
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('#voice-results')).opacity === '1'"
    )


def wait_for_results(page, *names: str) -> None:
    """Wait until the results show exactly the voices `names`, in that order."""
    page.wait_for_function(
        "names => [...document.querySelectorAll('#voice-results .voice-card h3')]"
        ".map(h => h.textContent).join('|') === names.join('|')",
        arg=list(names),
    )


def test_search_is_debounced_and_kept_in_the_url(live_server, library_org, owner_page):
    page = owner_page
    page.goto(library_org.url(live_server))
    assert page.locator("h1").inner_text() == "Voice library"
    assert len(card_names(page, "system")) == 20
    assert len(card_names(page, "custom")) == 24
    # With htmx loaded the submit button hides; results follow the typing.
    assert page.locator("button.filter-submit").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "library-top.png"), caret="initial")

    requests: list[str] = []
    page.on("request", lambda r: "/voices/?" in r.url and requests.append(r.url))
    page.locator("#voice-search").press_sequentially("narrator", delay=40)
    page.wait_for_url("**/voices/?q=narrator")
    page.wait_for_function(
        "() => document.querySelectorAll('#voice-results .voice-card').length === 11"
    )
    assert requests == [library_org.url(live_server, "?q=narrator")]  # one, after the pause
    assert card_names(page, "system") == ["Aaron"]
    assert all("brand narrator" in n for n in card_names(page, "custom"))
    assert "match “narrator”" in page.locator(".results-summary").inner_text()
    wait_until_settled(page)
    page.screenshot(path=str(ARTIFACTS / "library-search.png"), caret="initial")

    # Back restores the unfiltered library (history restore gets the full page).
    page.go_back()
    page.wait_for_function(
        "() => document.querySelectorAll('#voice-results .voice-card').length === 44"
    )
    assert page.locator("#voice-search").input_value() == ""
    assert page.console_errors == []


def test_filter_by_category_and_language(live_server, library_org, owner_page):
    page = owner_page
    page.goto(library_org.url(live_server))
    page.select_option("#voice-category", "MEDITATION")
    page.wait_for_url("**/voices/?category=MEDITATION")
    wait_for_results(page, "Gavin")
    assert "None of your voices match" in page.locator("#voice-results").inner_text()

    page.select_option("#voice-category", "")
    page.select_option("#voice-language", "ru-RU")
    page.wait_for_url("**/voices/?language=ru-RU")
    wait_for_results(page, "Ivan")
    # Only languages somebody uses are offered.
    offered = page.locator("#voice-language option").all_inner_texts()
    assert "French (France)" in offered and "Japanese (Japan)" not in offered
    assert page.console_errors == []


def test_load_more_appends_the_next_page(live_server, library_org, owner_page):
    page = owner_page
    page.goto(library_org.url(live_server, "?sort=newest"))
    url = page.url
    assert len(card_names(page, "custom")) == 24
    page.click("text=Load more voices")
    page.wait_for_function(
        f"() => document.querySelectorAll('#voice-results .voice-grid')[0]"
        f".querySelectorAll('.voice-card').length === {CUSTOM_COUNT}"
    )
    assert page.url == url  # appending doesn't change the address
    assert page.locator(".load-more").count() == 0
    names = card_names(page, "custom")
    assert len(set(names)) == CUSTOM_COUNT
    # Keyboard focus continues at the first new card.
    assert page.evaluate("document.activeElement.querySelector('h3').textContent") == names[24]
    assert page.console_errors == []


def test_preview_plays_and_pauses_the_others(live_server, library_org, owner_page):
    page = owner_page
    page.goto(library_org.url(live_server))
    aaron = page.locator(".voice-card", has_text="Aaron")
    aaron.get_by_role("button", name="Play Aaron").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.voice-card')]"
        ".find(c => c.querySelector('h3').textContent === 'Aaron')"
        ".querySelector('audio').currentTime > 0.3",
        timeout=10_000,
    )
    assert aaron.get_by_role("button", name="Pause Aaron").is_visible()
    page.wait_for_function("() => document.querySelector('.preview.is-playing progress').value > 0")
    page.screenshot(path=str(ARTIFACTS / "library-desktop.png"), caret="initial")

    walter = page.locator(".voice-card", has_text="Walter")
    walter.get_by_role("button", name="Play Walter").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('audio')].filter(a => !a.paused).length === 1"
    )
    assert aaron.get_by_role("button", name="Play Aaron").is_visible()  # paused again
    assert aaron.locator("audio").evaluate("a => a.paused") is True
    walter.get_by_role("button", name="Pause Walter").click()
    assert page.console_errors == []


@pytest.mark.parametrize("owner_page", [(390, 844)], indirect=True)
def test_phone_width_fits_without_horizontal_scroll(live_server, library_org, owner_page):
    page = owner_page
    page.goto(library_org.url(live_server, "?q=calm"))
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.screenshot(path=str(ARTIFACTS / "library-phone.png"), full_page=True, caret="initial")
    page.goto(library_org.url(live_server))
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.screenshot(path=str(ARTIFACTS / "library-phone-top.png"), caret="initial")
    assert page.console_errors == []


def test_works_without_javascript(live_server, library_org, browser):
    context = browser.new_context(
        java_script_enabled=False,
        viewport={"width": 1280, "height": 900},
        storage_state=library_org.storage_state,
    )
    page = context.new_page()
    page.goto(library_org.url(live_server))
    assert page.locator("button.filter-submit").is_visible()
    assert page.locator(".voice-card audio[controls]").count() == 44
    page.fill("#voice-search", "support")
    page.select_option("#voice-language", "en-GB")
    page.click("button.filter-submit")
    page.wait_for_load_state()
    assert "q=support" in page.url and "language=en-GB" in page.url
    names = card_names(page, "custom")
    assert names and all("support line" in n for n in names)
    # "Load more" is a real link to the next page.
    page.goto(library_org.url(live_server, "?sort=name"))
    page.click("text=Load more voices")
    page.wait_for_load_state()
    assert "after=" in page.url and len(card_names(page, "custom")) == CUSTOM_COUNT - 24
    assert page.locator("text=Back to the first page").is_visible()
    page.screenshot(path=str(ARTIFACTS / "library-nojs.png"), caret="initial")
    context.close()
