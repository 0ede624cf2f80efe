"""Managing custom voices in a real browser: upload, edit, delete; the recorder.

An owner signs up through the UI (the live server has CSRF on). The recorder is tested
twice: its WAV encoder on a synthetic signal, and a whole recording from Chromium's
fake microphone (a second browser launched with the fake-media flags).
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, watch_console
from tests.e2e.test_accounts import sign_up
from tests.e2e.test_home import ARTIFACTS

FAKE_MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def wav_file(path: Path, seconds: float, rate: int = 16_000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32"), rate)
    return path


def signed_up_owner(page, base: str) -> str:
    """Sign up through the UI and return the new organisation's slug."""
    run = uuid.uuid4().hex[:6]
    page.goto(base + "/signup")
    sign_up(page, base, "Olive Owner", f"olive-{run}@example.com", f"Sound Desk {run}")
    slug = f"sound-desk-{run}"
    assert page.url.endswith(f"/o/{slug}/"), page.url
    return slug


def shoot(page, name: str, width: int) -> None:
    """Screenshot the whole page at `width` into instance/e2e/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 900 if width > 600 else 844})
    page.screenshot(path=str(ARTIFACTS / name), full_page=True, caret="initial")


def unexpected(errors: list[str], *statuses: int) -> list[str]:
    """Drop Chromium's network log line for refusals the test provoked on purpose."""
    expected = tuple(f"the server responded with a status of {s} " for s in statuses)
    return [e for e in errors if not any(x in e for x in expected)]


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_upload_edit_and_delete_a_voice(live_server: str, page, tmp_path) -> None:
    slug = signed_up_owner(page, live_server)
    library = f"{live_server}/o/{slug}/voices/"

    # From the library to the form; the recorder shows itself (JavaScript, mic API).
    page.goto(library)
    page.click("a.new-voice")
    page.wait_for_url(f"{library}new")
    assert page.locator("h1").inner_text() == "New voice"
    assert page.locator("[data-recorder]").is_visible()

    # A refusal comes back inline, with the chosen file still chosen (hx-preserve).
    page.set_input_files("#audio", str(wav_file(tmp_path / "take-one.wav", 12)))
    page.fill("#name", "Morning Host")
    page.select_option("#category", "PODCAST")
    page.fill("#language", "en-GB")
    page.fill("#description", "Bright and friendly, for the breakfast show.")
    page.click("button:has-text('Create voice')")
    error = page.locator("#consent-error")
    error.wait_for()
    assert error.inner_text() == "Confirm that you have the right to use this voice."
    assert page.locator("#name").input_value() == "Morning Host"
    assert page.evaluate("() => document.querySelector('#audio').files.length") == 1
    assert page.locator("#language").get_attribute("list") == "language-options"
    shoot(page, "voice-new-error-desktop.png", 1280)
    shoot(page, "voice-new-error-phone.png", 390)
    assert no_horizontal_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Confirm and create: the library lists it, with its preview.
    page.check("#consent")
    page.click("button:has-text('Create voice')")
    page.wait_for_url(library)
    assert "Morning Host was added to your voices." in page.content()
    card = page.locator("article.voice-card", has_text="Morning Host")
    assert card.count() == 1
    assert "Bright and friendly" in card.inner_text()

    # Edit its name and description from the card.
    card.get_by_role("link", name="Edit Morning Host").click()
    page.wait_for_selector("h1:has-text('Edit Morning Host')")
    assert "0:12 · WAV" in page.inner_text(".current-audio")
    shoot(page, "voice-edit-desktop.png", 1280)
    page.fill("#name", "Evening Host")
    page.fill("#description", "Calm and warm, for the late show.")
    page.click("button:has-text('Save changes')")
    page.wait_for_url(library)
    card = page.locator("article.voice-card", has_text="Evening Host")
    assert card.count() == 1 and "Calm and warm" in card.inner_text()
    assert page.locator("article.voice-card", has_text="Morning Host").count() == 0

    # Delete it through the confirmation page (no JavaScript needed there).
    card.get_by_role("link", name="Delete Evening Host").click()
    page.wait_for_selector("h1:has-text('Delete Evening Host?')")
    assert "No generations have used this voice yet." in page.content()
    shoot(page, "voice-delete-desktop.png", 1280)
    shoot(page, "voice-delete-phone.png", 390)
    assert no_horizontal_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("button:has-text('Delete Evening Host')")
    page.wait_for_url(library)
    assert "Evening Host was deleted." in page.content()
    assert page.locator("article.voice-card", has_text="Evening Host").count() == 0

    assert unexpected(page.console_errors, 422) == []


def test_a_file_over_the_limit_is_refused_before_uploading(live_server: str, page, tmp_path):
    slug = signed_up_owner(page, live_server)
    page.goto(f"{live_server}/o/{slug}/voices/new")
    big = tmp_path / "huge.wav"
    big.write_bytes(b"\0" * (21 * 1024 * 1024))
    requests: list[str] = []
    page.on("request", lambda r: r.method == "POST" and requests.append(r.url))
    page.set_input_files("#audio", str(big))
    message = page.locator("#audio-error")
    message.wait_for()
    assert "This file is 21.0 MB; the limit is 20 MB." in message.inner_text()
    page.fill("#name", "Too Big")
    page.check("#consent")
    page.click("button:has-text('Create voice')")
    # The refusal happens in htmx:beforeRequest, which then moves focus to the file
    # input: once it has, the request was either sent or cancelled; no clock needed.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'audio'")
    assert requests == []  # never sent: the server would have said 413
    assert page.console_errors == []


def test_recorder_encodes_a_valid_wav(live_server: str, page) -> None:
    slug = signed_up_owner(page, live_server)
    page.goto(f"{live_server}/o/{slug}/voices/new")
    header = page.evaluate(
        """async () => {
            const rate = 24000;
            const samples = new Float32Array(rate * 2);
            for (let i = 0; i < samples.length; i++) samples[i] = Math.sin(i / 10) * 1.5;
            const blob = window.VoxboardRecorder.encodeWav(samples, rate);
            const bytes = new Uint8Array(await blob.arrayBuffer());
            return {type: blob.type, size: blob.size, bytes: Array.from(bytes)};
        }"""
    )
    data = bytes(header["bytes"])
    assert header["type"] == "audio/wav" and header["size"] == 44 + 2 * 48_000
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and data[36:40] == b"data"
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    assert int.from_bytes(data[24:28], "little") == 24_000
    samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    assert rate == 24_000 and len(samples) == 48_000
    assert samples.max() == 32767 and samples.min() == -32768  # clipped, not wrapped
    assert page.console_errors == []


@pytest.fixture
def fake_mic_page(browser):
    """A page in a second Chromium whose microphone is Chromium's fake beeping device."""
    fake = browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *FAKE_MEDIA_ARGS]
    )
    context = fake.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch_console(page)
    yield page
    context.close()
    fake.close()


def test_record_in_the_browser_and_create_the_voice(live_server: str, fake_mic_page) -> None:
    page = fake_mic_page
    slug = signed_up_owner(page, live_server)
    page.goto(f"{live_server}/o/{slug}/voices/new")

    page.click("button:has-text('Start recording')")
    page.locator("[data-record-stop]").wait_for(state="visible")
    page.wait_for_function(
        "() => document.querySelector('[data-record-level]').value > 0.01", timeout=5_000
    )
    page.wait_for_function(
        "() => document.querySelector('[data-record-elapsed]').textContent === '0:11'",
        timeout=20_000,
    )
    page.click("button:has-text('Stop')")
    preview = page.locator("[data-record-preview]")
    preview.wait_for(state="visible")
    assert "Recorded 0:11" in page.inner_text("[data-record-status]")
    assert page.locator("button:has-text('Record again')").is_visible()
    shoot(page, "voice-recorded-phone.png", 390)
    chosen = page.evaluate(
        "() => { const f = document.querySelector('#audio').files[0];"
        " return f && {name: f.name, type: f.type, size: f.size}; }"
    )
    assert chosen["type"] == "audio/wav" and chosen["name"].endswith(".wav")
    assert 500_000 < chosen["size"] < 600_000  # 11 s at 24 kHz, 16-bit mono
    preview.evaluate("a => a.play()")
    page.wait_for_function(
        "() => document.querySelector('[data-record-preview]').currentTime > 0.2",
        timeout=5_000,
    )

    page.fill("#name", "Recorded Voice")
    page.check("#consent")
    page.click("button:has-text('Create voice')")
    page.wait_for_url(f"{live_server}/o/{slug}/voices/")
    card = page.locator("article.voice-card", has_text="Recorded Voice")
    assert card.count() == 1
    assert "0:11" in card.inner_text()
    assert page.console_errors == []
