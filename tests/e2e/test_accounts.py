"""Accounts in a real browser: sign up, invite, accept in another browser, switch, log out."""

from __future__ import annotations

import uuid

from tests.e2e.test_home import ARTIFACTS

PASSWORD = "correct horse battery"


def sign_up(page, base: str, name: str, email: str, org: str) -> None:
    page.fill("#display_name", name)
    page.fill("#email", email)
    page.fill("#org_name", org)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_sign_up_invite_accept_switch_and_log_out(live_server: str, browser) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:6]
    ada_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    grace_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    for ctx in (ada_ctx, grace_ctx):
        ctx.on("console", lambda m: m.type == "error" and errors.append(m.text))

    # Ada signs up and lands on her organisation's home.
    ada = ada_ctx.new_page()
    ada.goto(live_server + "/signup")
    sign_up(ada, live_server, "Ada Lovelace", f"ada-{run}@example.com", f"Engines {run}")
    assert ada.locator("h1").inner_text() == f"Engines {run}"
    assert "You are an owner" in ada.content()

    # She invites Grace and copies the link the page shows once.
    ada.click("nav >> text=Members")
    ada.fill("#email", f"grace-{run}@example.com")
    ada.click("button:has-text('Create invitation')")
    link = ada.locator("#invite-link")
    link.wait_for()
    invite_url = link.input_value()
    assert f"/join/engines-{run}/" in invite_url
    ada.screenshot(path=str(ARTIFACTS / "members.png"), caret="initial")

    # Grace, logged out in another browser, follows it, signs up and joins.
    grace = grace_ctx.new_page()
    grace.goto(invite_url)
    assert "/login" in grace.url
    grace.click("a:has-text('Create an account')")
    sign_up(grace, live_server, "Grace Hopper", f"grace-{run}@example.com", f"Compilers {run}")
    assert "/join/" in grace.url
    grace.click(f"button:has-text('Join Engines {run}')")
    grace.wait_for_load_state()
    assert grace.locator("h1").inner_text() == f"Engines {run}"
    assert "You are a member" in grace.content()

    # She switches to her own organisation with the header's switcher.
    grace.click(".org-switcher summary")
    grace.click(f".org-switcher >> text=Compilers {run}")
    grace.wait_for_load_state()
    assert grace.locator("h1").inner_text() == f"Compilers {run}"

    # Ada now sees Grace among the members.
    ada.goto(live_server + f"/o/engines-{run}/members/")
    assert f"grace-{run}@example.com" in ada.content()

    # Grace logs out from the user menu and is asked to log in again for org pages.
    grace.click(".user-menu summary")
    grace.click("button:has-text('Log out')")
    grace.wait_for_load_state()
    assert grace.url.endswith("/login")
    grace.goto(live_server + f"/o/compilers-{run}/")
    assert "/login" in grace.url

    assert errors == []
    ada_ctx.close()
    grace_ctx.close()
