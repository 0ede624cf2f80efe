"""The system-voice page in a real browser: renders, plays audio, obeys the CSP."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "instance" / "e2e"


def test_system_voices_render_and_play(live_server: str, page) -> None:
    page.goto(live_server + "/")
    cards = page.locator("article.voice-card")
    assert cards.count() == 20
    assert page.locator("h1").inner_text() == "System voices"

    aaron = page.locator("article.voice-card", has_text="Aaron").locator("audio")
    aaron.evaluate("a => a.play()")
    page.wait_for_function(
        "() => document.querySelector('article.voice-card audio').currentTime > 0.3",
        timeout=10_000,
    )
    assert aaron.evaluate("a => a.duration") > 5

    # Starting another preview pauses the first (static/js/app.js).
    walter = page.locator("article.voice-card", has_text="Walter").locator("audio")
    walter.evaluate("a => a.play()")
    page.wait_for_function(
        "() => [...document.querySelectorAll('audio')].filter(a => !a.paused).length === 1",
        timeout=5_000,
    )
    assert aaron.evaluate("a => a.paused") is True

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=False, caret="initial")
    assert page.console_errors == []


def test_phone_width_has_no_horizontal_scroll(live_server: str, browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(live_server + "/")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    context.close()
