"""Browser tests: Playwright drives Debian's Chromium against a live server on loopback.

Skipped (with the reason) when /usr/bin/chromium is missing; REQUIRE_BROWSER=1, as CI
sets, turns that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from dashboard import create_app
from dashboard.extensions import db
from tests.databases import make_config

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pytest hands this hook every item of the session, not only this folder's: mark and
    # skip the browser tests alone, or a machine without Chromium skips everything.
    browser_items = [item for item in items if item.path.resolve().is_relative_to(E2E_DIR)]
    for item in browser_items:
        item.add_marker(pytest.mark.e2e)
    if not browser_items or shutil.which(CHROMIUM):
        return
    if os.environ.get("REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"REQUIRE_BROWSER=1 but {CHROMIUM} is missing")
    skip = pytest.mark.skip(
        reason=f"browser tests skipped: {CHROMIUM} not found (apt-get install chromium)"
    )
    for item in browser_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The seeded app the live server serves (tests may arrange data through it)."""
    tmp: Path = tmp_path_factory.mktemp("live")
    # CSRF on, as in production: the browser must carry tokens through every flow.
    app = create_app(make_config(f"sqlite:///{tmp / 'live.db'}", tmp, WTF_CSRF_ENABLED=True))
    with app.app_context():
        db.create_all()
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_app: Flask) -> Iterator[str]:
    """Serve `live_app` on a free loopback port for the whole session."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def watch_console(page):
    """Collect the page's console errors in `page.console_errors` (CSP violations land there)."""
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    return page


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh page that records console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield watch_console(context.new_page())
    context.close()
