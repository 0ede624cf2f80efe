"""The API keys page in a real browser (CSRF on): a refused form swaps in place, a new
key is shown once with a working copy button, it calls the API, and revoking stops it;
without JavaScript the key is a readonly field and the form still works."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from tests.e2e.conftest import watch_console
from tests.e2e.test_voice_manage import no_horizontal_scroll, shoot, signed_up_owner, unexpected

SECRET = re.compile(r"vxb_[A-Za-z0-9_-]{43}")


def api_status(base: str, secret: str) -> int:
    request = urllib.request.Request(
        base + "/api/v1/voices?limit=1", headers={"Authorization": f"Bearer {secret}"}
    )
    try:
        with urllib.request.urlopen(request) as response:  # noqa: S310 — our live server
            json.load(response)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_create_copy_use_and_revoke_a_key(live_server: str, page, browser) -> None:
    slug = signed_up_owner(page, live_server)
    page.click("header a:has-text('API keys')")
    assert page.url.endswith(f"/o/{slug}/settings/api-keys/")

    # Refused in place (htmx swaps the 422 block), nothing lost.
    page.fill("#name", "Website narration")
    page.fill("#monthly_character_limit", "lots")
    page.click("button:has-text('Create key')")
    page.wait_for_selector("#scopes-error")
    assert "a whole number" in page.inner_text("#monthly_character_limit-error")
    assert page.input_value("#name") == "Website narration"

    page.fill("#monthly_character_limit", "250,000")
    page.check("input[name=scopes][value='voices:read']")
    page.click("button:has-text('Create key')")
    page.wait_for_selector("#new-key-secret")
    secret = page.input_value("#new-key-secret")
    assert SECRET.fullmatch(secret)
    assert page.evaluate("document.activeElement.id") == "new-key-secret"
    assert "of 250,000" in page.inner_text(".keys-table")
    shoot(page, "api-keys-created.png", 1366)

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("button[data-copy='new-key-secret']")
    page.wait_for_selector("button[data-copy]:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    assert api_status(live_server, secret) == 200
    page.reload()  # a GET: the secret is gone for good
    assert secret not in page.content() and not page.is_visible("#new-key-secret")
    shoot(page, "api-keys-phone.png", 390)
    assert no_horizontal_scroll(page)
    page.set_viewport_size({"width": 1366, "height": 900})

    page.once("dialog", lambda dialog: dialog.accept())  # hx-confirm
    page.click("tr:has-text('Website narration') >> text=Revoke")
    page.wait_for_selector(".flash-success")
    assert "was revoked" in page.inner_text(".flash-success")
    assert "Revoked" in page.inner_text("tr:has-text('Website narration')")
    assert api_status(live_server, secret) == 401
    assert unexpected(page.console_errors, 422) == []


def test_the_page_works_without_javascript(live_server: str, browser) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1366, "height": 900}
    )
    page = context.new_page()
    watch_console(page)
    slug = signed_up_owner(page, live_server)
    page.goto(f"{live_server}/o/{slug}/settings/api-keys/")
    page.fill("#name", "Nightly batch")
    page.check("input[name=scopes][value='generations:read']")
    page.click("button:has-text('Create key')")
    page.wait_for_selector("#new-key-secret")
    assert page.url.endswith("/settings/api-keys/#create-key")
    assert page.get_attribute("#new-key-secret", "readonly") is not None
    assert not page.is_visible("button[data-copy]")  # needs JavaScript, so stays hidden
    secret = page.input_value("#new-key-secret")

    page.click("tr:has-text('Nightly batch') >> text=Revoke")  # the confirmation page
    assert "Revoke the key “Nightly batch”?" in page.inner_text("h1")
    page.click("button:has-text('Revoke')")
    assert "was revoked" in page.inner_text(".flash-success")
    assert api_status(live_server, secret) == 401
    context.close()
