"""Generating speech end to end in a real browser, as a person would.

Sign up, generate with a system voice and watch the status turn into a player, play
it, find it in History by text search, download it, regenerate it from its detail
page, then tick two rows and delete them. The live app runs jobs in the request
(immediate mode), so the status is settled when the answer arrives; the widget's
polling from queued to player is covered by test_generation_player.py.
"""

from __future__ import annotations

import io
import uuid
import wave

from playwright.sync_api import expect

from tests.e2e.conftest import watch_console
from tests.e2e.test_accounts import sign_up
from tests.e2e.test_home import ARTIFACTS

SCRIPT = "Good morning from the lighthouse. The ferry leaves at nine, rain or shine."


def test_generate_play_find_download_regenerate_and_bulk_delete(live_server: str, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:6]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = watch_console(context.new_page())
    page.goto(live_server + "/signup")
    sign_up(page, live_server, "Gina Generator", f"gina-{run}@example.com", f"Harbour {run}")
    slug = f"harbour-{run}"

    # Generate with a system voice; the status widget becomes a player.
    page.click("nav >> text=Generate")
    expect(page.locator("h1")).to_have_text("Generate speech")
    page.fill("#text", f"{SCRIPT} Run {run}.")
    expect(page.locator("[data-char-count]")).to_have_text(str(len(f"{SCRIPT} Run {run}.")))
    page.fill("[data-voice-filter]", "abig")
    page.select_option("#voice", label="Abigail · Conversational · en-GB")
    page.fill("#temperature", "1.1")
    page.click("form[data-generate-form] button[type=submit]")
    widget = page.locator("[data-generation-status=succeeded]")
    expect(widget).to_be_visible(timeout=20_000)
    assert page.url.endswith(f"/o/{slug}/generate/")  # htmx kept us on the page

    # Play it: the audio advances.
    widget.locator("[data-player-toggle]").click()
    played = 0.0
    for _ in range(50):  # wait_for_function evals a string, which the CSP forbids
        played = page.evaluate("document.querySelector('[data-player-audio]').currentTime")
        if played > 0.3:
            break
        page.wait_for_timeout(200)
    assert played > 0.3, "the generated audio did not play"
    page.screenshot(path=str(ARTIFACTS / "generate-flow-done.png"), full_page=True)

    # A second one with another voice, so History has something to tell apart.
    page.fill("#text", f"Second take, number {run}, with a different voice.")
    page.select_option("#voice", label="Walter · Narrative · en-US")
    page.click("form[data-generate-form] button[type=submit]")
    expect(page.locator("[data-generation-status=succeeded]")).to_contain_text("Walter")

    # Find the first one in History by text search (debounced htmx, URL kept).
    page.click("nav >> text=History")
    rows = page.locator("tbody[data-history-rows] tr[id]")
    expect(rows).to_have_count(2)
    page.fill("#history-q", "lighthouse")
    expect(rows).to_have_count(1)
    assert "q=lighthouse" in page.url
    expect(rows.first).to_contain_text("Abigail")

    # Download it from the row: a real WAV named after its text.
    with page.expect_download() as download_info:
        rows.first.locator("a", has_text="Download").click()
    download = download_info.value
    assert download.suggested_filename.startswith("good-morning-from-the-lighthouse")
    data = download.path().read_bytes()
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnframes() / wav.getframerate() > 1.5

    # Regenerate from the detail page: the form comes back prefilled; a new row results.
    rows.first.locator("a").first.click()
    expect(page.locator("h1")).to_contain_text("Good morning from the lighthouse")
    page.click("text=Regenerate")
    expect(page.locator("#text")).to_have_value(f"{SCRIPT} Run {run}.")
    expect(page.locator("#temperature")).to_have_value("1.1")
    assert page.locator("#voice option:checked").inner_text().startswith("Abigail")
    page.click("form[data-generate-form] button[type=submit]")
    expect(page.locator("[data-generation-status=succeeded]")).to_be_visible(timeout=20_000)

    # History now has three; tick the two lighthouse ones and delete them (confirmed).
    page.goto(f"{live_server}/o/{slug}/history/?q=lighthouse")
    expect(rows).to_have_count(2)
    for checkbox in rows.locator("input[data-row-select]").all():
        checkbox.check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[data-bulk-delete]")
    expect(page.locator("tbody[data-history-rows] tr[id]")).to_have_count(0, timeout=10_000)
    page.goto(f"{live_server}/o/{slug}/history/")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Walter")
    page.screenshot(path=str(ARTIFACTS / "generate-flow-history.png"), full_page=True)

    # The same pages at phone width stay inside the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("generate/", "history/"):
        page.goto(f"{live_server}/o/{slug}/{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways at 390 px ({width})"
        page.screenshot(
            path=str(ARTIFACTS / f"generate-flow-{path.strip('/')}-phone.png"), full_page=True
        )
    assert page.console_errors == []
    context.close()
