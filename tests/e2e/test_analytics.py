"""The analytics page in a real browser: periods and grouping swap the results block
(URL kept, no reload), the CSV downloads, the CSP holds, phones don't scroll sideways.

Four months of snapshots, a deleted voice, a member who left and live generations
today are written straight into the live server's database; the owner logs in
through /login.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import uuid
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from dashboard import tenancy
from dashboard.auth.passwords import hash_password
from dashboard.extensions import db
from dashboard.models import (
    AnalyticsSnapshot,
    GenerationStatus,
    MemberRole,
    Voice,
    VoiceCategory,
    VoiceVariant,
    utcnow,
)
from tests import factories
from tests.e2e.conftest import watch_console
from tests.e2e.test_home import ARTIFACTS

PASSWORD = "correct horse battery"
DAYS = 125


@dataclass(frozen=True)
class AnalyticsWorld:
    slug: str
    email: str


@pytest.fixture(scope="session")
def analytics_world(live_app) -> AnalyticsWorld:
    run = uuid.uuid4().hex[:6]
    rng = random.Random(7)
    today = utcnow().date()
    with live_app.app_context(), tenancy.all_tenants("e2e setup: the live server's org"):
        org = factories.make_org(slug=f"charts-{run}", name=f"Chart Studio {run}")
        org.created_at = utcnow() - dt.timedelta(days=DAYS + 10)
        org.monthly_character_limit = 200_000
        owner = factories.make_user(
            email=f"olga-{run}@example.com",
            display_name="Olga Owner",
            password_hash=hash_password(PASSWORD),
        )
        factories.make_membership(owner, org, MemberRole.OWNER)
        people = [owner] + [
            factories.make_user(email=f"{name.lower()}-{run}@example.com", display_name=name)
            for name in ("Zoë Ångström", "Marcus Lee")
        ]
        for person in people[1:]:
            factories.make_membership(person, org, MemberRole.MEMBER)
        custom = [
            factories.make_voice(org, name="Zoë's Narrator", category=VoiceCategory.AUDIOBOOK),
            factories.make_voice(org, name="=Promo Voice", category=VoiceCategory.ADVERTISING),
        ]
        system = db.session.scalars(
            select(Voice).where(Voice.variant == VoiceVariant.SYSTEM).order_by(Voice.name)
        ).all()[:9]
        voices = [(str(v.id), v.name, str(v.variant), str(v.category)) for v in [*custom, *system]]
        voices.append(("deleted:Old Studio", "Old Studio", None, "DELETED"))
        members = [(str(p.id), p.display_name) for p in people] + [("former", "Former member")]
        for days in range(1, DAYS + 1):
            if days in (17, 18):
                continue  # the snapshot job missed two days
            day = today - dt.timedelta(days=days)
            by_voice, by_category, by_member = {}, {}, {}
            for n, (key, name, variant, category) in enumerate(voices):
                count = max(0, round(rng.gauss(6 - n * 0.5, 2)))
                if not count:
                    continue
                failed = rng.random() < 0.2
                chars, audio = count * rng.randint(80, 400), count * rng.randint(5_000, 30_000)
                tally = {
                    "generations": count,
                    "failed": int(failed),
                    "characters": chars,
                    "audio_ms": audio,
                }
                by_voice[key] = {"name": name, "variant": variant, **tally}
                for breakdown, k, extra in (
                    (by_category, category, {}),
                    (by_member, *_pick(rng, members)),
                ):
                    entry = breakdown.setdefault(
                        k, {**extra, "generations": 0, "failed": 0, "characters": 0, "audio_ms": 0}
                    )
                    for field, value in tally.items():
                        entry[field] += value
            db.session.add(
                AnalyticsSnapshot(
                    org_id=org.id,
                    day=day,
                    generations_succeeded=sum(v["generations"] for v in by_voice.values()),
                    generations_failed=sum(v["failed"] for v in by_voice.values()),
                    characters=sum(v["characters"] for v in by_voice.values()),
                    audio_ms=sum(v["audio_ms"] for v in by_voice.values()),
                    voices_used=len(by_voice),
                    custom_voices=2,
                    members=3,
                    by_voice=by_voice,
                    by_category=by_category,
                    by_member=by_member,
                )
            )
        for n in range(6):
            factories.make_generation(
                org,
                custom[0],
                text=f"Live line number {n} for today's chart.",
                created_by=owner.id,
                status=GenerationStatus.SUCCEEDED,
                audio_key="x",
                duration_ms=4_000,
            )
        db.session.commit()
        return AnalyticsWorld(org.slug, owner.email)


def _pick(rng: random.Random, members: list[tuple[str, str]]):
    key, name = rng.choice(members)
    return key, {"name": name}


def log_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def test_periods_swap_the_charts_csv_downloads_and_phones_fit(
    live_server: str, browser, analytics_world: AnalyticsWorld
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = watch_console(context.new_page())
    log_in(page, live_server, analytics_world.email)
    base = f"{live_server}/o/{analytics_world.slug}/analytics/"
    page.goto(base)
    expect(page.locator("h1")).to_have_text("Analytics")
    expect(page.locator(".analytics-kpi")).to_have_count(4)
    buckets = page.locator("[data-chart=generations] tbody tr")
    expect(buckets).to_have_count(30)
    generations = page.locator("[data-chart=generations]")
    expect(generations.locator("svg.chart-full")).to_be_visible()
    expect(generations.locator("svg.chart-wide")).to_be_hidden()
    expect(page.locator("[data-chart=voices] svg.chart-wide")).to_be_visible()
    expect(page.locator("svg.chart-phone").first).to_be_hidden()
    expect(page.locator(".analytics-missing")).to_contain_text("No snapshot yet for 2 of these")
    expect(page.locator(".quota-card")).to_contain_text("of 200,000 used")
    page.screenshot(path=str(ARTIFACTS / "analytics-30-days.png"), full_page=True)

    # A mark on the document survives every switch: htmx swaps a block, never reloads.
    page.evaluate("document.body.dataset.kept = 'yes'")
    before = generations.locator("svg.chart-full").inner_html()
    page.click("#period-7")
    expect(buckets).to_have_count(7)
    assert page.url.endswith("?days=7")
    assert generations.locator("svg.chart-full").inner_html() != before
    expect(page.locator("#period-7")).to_have_attribute("aria-current", "true")
    page.click("#period-90")
    expect(buckets).to_have_count(len(_weeks(90)))  # by week (the default for 90 days)
    assert page.url.endswith("?days=90")
    settle(page)
    page.screenshot(path=str(ARTIFACTS / "analytics-90-days.png"), full_page=True)
    page.click("#by-month")
    expect(buckets).to_have_count(len(_months(90)))
    assert page.url.endswith("?days=90&by=month")
    page.click("#period-30")
    expect(buckets).to_have_count(len(_months(30)))  # the month grouping is kept
    page.click("#by-day")
    expect(buckets).to_have_count(30)
    assert page.evaluate("document.body.dataset.kept") == "yes"

    # A custom range through the form; then the browser's Back goes to the last view.
    today = utcnow().date()
    page.fill("#analytics-from", (today - dt.timedelta(days=20)).isoformat())
    page.fill("#analytics-to", (today - dt.timedelta(days=10)).isoformat())
    page.click("#analytics-apply")
    expect(buckets).to_have_count(11)
    assert "from=" in page.url and "to=" in page.url
    assert page.evaluate("document.body.dataset.kept") == "yes"
    page.go_back()
    expect(buckets).to_have_count(30)

    # The CSVs of the view: a byte-order mark, a header, one row per day; voices by name.
    with page.expect_download() as info:
        page.click("text=figures per day (CSV)")
    download = info.value
    assert download.suggested_filename.startswith(f"{analytics_world.slug}-analytics-")
    text = download.path().read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][:3] == ["Bucket start", "Bucket end", "Generations succeeded"]
    assert len(rows) == 31
    with page.expect_download() as info:
        page.click("text=figures per voice (CSV)")
    voices = list(csv.reader(io.StringIO(info.value.path().read_bytes().decode("utf-8-sig"))))
    names = [row[0] for row in voices[1:]]
    assert "Zoë's Narrator" in names and "'=Promo Voice" in names and "Old Studio" in names

    # Phone width: the narrow renderings, nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "?days=30")
    expect(generations.locator("svg.chart-phone")).to_be_visible()
    expect(generations.locator("svg.chart-full")).to_be_hidden()
    expect(page.locator("[data-chart=voices] svg.chart-wide")).to_be_hidden()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"analytics scrolls sideways at 390 px ({width})"
    page.locator("[data-chart=voices] details summary").click()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the voices table scrolls the page sideways ({width})"
    page.screenshot(path=str(ARTIFACTS / "analytics-phone.png"), full_page=True)
    assert page.console_errors == []
    context.close()


def settle(page) -> None:
    """Let the swapped block fade back in (0.15 s) before a screenshot."""
    expect(page.locator(".htmx-request")).to_have_count(0)
    page.wait_for_timeout(300)


def _weeks(days: int) -> set[tuple[int, int]]:
    today = utcnow().date()
    return {(today - dt.timedelta(days=n)).isocalendar()[:2] for n in range(days)}


def _months(days: int) -> set[tuple[int, int]]:
    today = utcnow().date()
    return {((d := today - dt.timedelta(days=n)).year, d.month) for n in range(days)}
