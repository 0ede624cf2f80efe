"""The voice library (browse half): roles, search and filters on both databases, keyset
"load more", htmx fragments, query counts, the preview audio endpoint and its headers."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import io
import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import select, text

from dashboard import create_app, keyset
from dashboard.extensions import db
from dashboard.models import MemberRole, Voice, VoiceCategory, VoiceVariant
from dashboard.storage import custom_voice_key, get_storage, system_voice_key
from dashboard.tenancy.operator import operator_access
from dashboard.voices import queries
from tests import factories
from tests.databases import BACKENDS, PG_ONLY, WEB_ROLE_BACKENDS, make_config
from tests.http import HX, login

MEMBER = MemberRole.MEMBER
ROLES = [MemberRole.OWNER, MemberRole.ADMIN, MEMBER]
AUDIO = bytes(range(256)) * 40  # 10,240 bytes, each offset distinguishable

SYSTEM_VOICES = [
    (
        "Aaron",
        VoiceCategory.AUDIOBOOK,
        "en-US",
        "Soothing and calm, like a self-help audiobook narrator",
    ),
    (
        "Abigail",
        VoiceCategory.CONVERSATIONAL,
        "en-GB",
        "Friendly and conversational with a warm, approachable tone",
    ),
    ("Ivan", VoiceCategory.CHARACTERS, "ru-RU", "Deep and cinematic"),
    ("Meera", VoiceCategory.CUSTOMER_SERVICE, "en-IN", "Friendly and helpful"),
]
CUSTOM_VOICES = [
    ("Studio Narrator", VoiceCategory.NARRATIVE, "en-GB", "Our house narrator for long-form audio"),
    ("Podcast Host", VoiceCategory.PODCAST, "en-US", "Upbeat and chatty"),
    ("100% Real", VoiceCategory.GENERAL, "fr-FR", "Sounds exactly like the CEO"),
]
ALL_CUSTOM = ["100% Real", "Podcast Host", "Studio Narrator"]


# ------------------------------------------------------------------------ fixtures


def put_audio(key: str) -> dict:
    """Store AUDIO under `key`; return the columns a voice row describes it with."""
    get_storage().put(key, io.BytesIO(AUDIO), content_type="audio/wav")
    return {
        "audio_key": key,
        "audio_size": len(AUDIO),
        "audio_sha256": hashlib.sha256(AUDIO).hexdigest(),
        "audio_content_type": "audio/wav",
        "audio_duration_ms": 12_000,
    }


@pytest.fixture
def world(app: Flask) -> dict:
    """Org "acme" (owner, admin, member; three custom voices), org "rival" (one custom
    voice) and four system voices; the first of each kind has audio in storage."""
    ids: dict = {}
    with app.app_context(), operator_access("test setup"):
        for n, (name, category, language, description) in enumerate(SYSTEM_VOICES):
            voice = factories.make_voice(
                name=name, category=category, language=language, description=description
            )
            if n == 0:
                for column, value in put_audio(system_voice_key(voice.id)).items():
                    setattr(voice, column, value)
            ids[name] = voice.id
        acme = factories.make_org(slug="acme", name="Acme Audio")
        rival = factories.make_org(slug="rival", name="Rival Sound")
        users = {role: factories.make_user(email=f"{role.value}@acme.example") for role in ROLES}
        for role, user in users.items():
            factories.make_membership(user, acme, role)
        for n, (name, category, language, description) in enumerate(CUSTOM_VOICES):
            voice = factories.make_voice(
                acme, name=name, category=category, language=language, description=description
            )
            if n == 0:
                for column, value in put_audio(custom_voice_key(acme.id, voice.id)).items():
                    setattr(voice, column, value)
            ids[name] = voice.id
        rival_voice = factories.make_voice(rival, name="Rival Secret", description="Not for Acme")
        for column, value in put_audio(custom_voice_key(rival.id, rival_voice.id)).items():
            setattr(rival_voice, column, value)
        ids["Rival Secret"], ids["acme"] = rival_voice.id, acme.id
        db.session.commit()
        ids["users"] = {role: factories.detach(user) for role, user in users.items()}
    return ids


@pytest.fixture
def as_member(client, world):
    login(client, world["users"][MEMBER])
    return client


def stub_manage_endpoints(app: Flask) -> None:
    """Give the app `library.edit`/`library.delete` if the manage half hasn't landed."""
    for endpoint, path in [("library.edit", "edit"), ("library.delete", "delete")]:
        if endpoint not in app.view_functions:
            app.add_url_rule(
                f"/o/<org_slug>/voices/<uuid:voice_id>/{path}",
                endpoint=endpoint,
                view_func=lambda voice_id: "stub",
            )


# ------------------------------------------------------------------------- helpers


def library_url(slug: str = "acme", **params: str) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"/o/{slug}/voices/" + (f"?{query}" if query else "")


def sections(page: str) -> tuple[str, str]:
    """Split a library page into its "Your voices" and "System voices" parts."""
    custom, _, system = page.partition('id="system-voices-heading"')
    return custom, system


def names(fragment: str) -> list[str]:
    return [html.unescape(n) for n in re.findall(r"<h3>(.*?)</h3>", fragment)]


def card_ids(fragment: str) -> list[str]:
    return re.findall(r'<article class="voice-card" id="voice-([0-9a-f-]{36})"', fragment)


def load_more_href(fragment: str) -> str | None:
    match = re.search(r'<a href="([^"]+)"[^>]*\bdata-load-more', fragment)
    return html.unescape(match.group(1)) if match else None


def get_page(client, url: str, **headers: str) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


# ------------------------------------------------------------------------- browse


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_every_role_browses_both_sections(app, client, world, role):
    stub_manage_endpoints(app)
    login(client, world["users"][role])
    response = client.get(library_url())
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    custom, system = sections(response.get_data(as_text=True))
    assert names(custom) == ["100% Real", "Podcast Host", "Studio Narrator"]
    assert names(system) == ["Aaron", "Abigail", "Ivan", "Meera"]
    assert "Rival Secret" not in custom + system
    # Category label, language with its region, description, a no-JS player.
    assert "Narrative" in custom and "English (United Kingdom)" in custom
    assert "French (France)" in custom and "Russian (Russia)" in system
    assert "Our house narrator for long-form audio" in custom
    studio = world["Studio Narrator"]
    assert f'<audio controls preload="none" src="/o/acme/voices/{studio}/audio"' in custom
    assert f'src="/o/acme/voices/{world["Aaron"]}/audio"' in system
    assert "No preview audio yet." in custom  # the voices without audio say so
    # Every voice can be used on the generation page, whatever the caller's role.
    assert "Use this voice" in custom and "Use this voice" in system

    edits = re.findall(r'href="/o/acme/voices/([0-9a-f-]+)/edit"', custom + system)
    deletes = re.findall(r'href="/o/acme/voices/([0-9a-f-]+)/delete"', custom + system)
    if role is MEMBER:
        assert edits == [] and deletes == []
        assert "Admins and owners" not in custom  # only shown when the library is empty
    else:
        custom_ids = {str(world[name]) for name, *_ in CUSTOM_VOICES}
        assert set(edits) == set(deletes) == custom_ids  # never on system voices
        assert len(edits) == 3


def test_use_this_voice_links_to_the_generation_page(app, client, world):
    login(client, world["users"][MEMBER])
    page = get_page(client, library_url())
    assert f'href="/o/acme/generate/?voice={world["Abigail"]}"' in page
    assert f'href="/o/acme/generate/?voice={world["Podcast Host"]}"' in page


def test_empty_library_explains_who_can_add_voices(app, client):
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="quiet", name="Quiet Co")
        member = factories.make_user()
        factories.make_membership(member, org, MEMBER)
        db.session.commit()
        member = factories.detach(member)
    login(client, member)
    page = get_page(client, library_url("quiet"))
    assert "No voices of your own yet" in page
    assert "Admins and owners of Quiet Co can add custom voices" in page
    assert "No system voices match." in page


def test_other_orgs_library_is_404(client, world):
    login(client, world["users"][MEMBER])
    assert client.get(library_url("rival")).status_code == 404
    assert client.get(library_url("nobody")).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, world):
    response = client.get(library_url())
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# ------------------------------------------------------------- search and filters


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize(
    ("params", "custom_names", "system_names"),
    [
        ({"q": "abig"}, [], ["Abigail"]),
        ({"q": "ABIGAIL"}, [], ["Abigail"]),  # case-insensitive
        ({"q": "narrator"}, ["Studio Narrator"], ["Aaron"]),  # name or description
        ({"q": "friendly"}, [], ["Abigail", "Meera"]),
        ({"q": "%"}, ["100% Real"], []),  # LIKE wildcards are literal
        ({"q": "_"}, [], []),
        ({"category": "CONVERSATIONAL"}, [], ["Abigail"]),
        ({"category": "PODCAST"}, ["Podcast Host"], []),
        ({"language": "en-GB"}, ["Studio Narrator"], ["Abigail"]),
        ({"language": "en-GB", "category": "NARRATIVE"}, ["Studio Narrator"], []),
        ({"q": "friendly", "language": "en-IN"}, [], ["Meera"]),
        ({"category": "NOT-A-CATEGORY"}, ["100% Real", "Podcast Host", "Studio Narrator"], None),
        # Newest first (created in CUSTOM_VOICES order); blank and unknown values ignored.
        (
            {"sort": "newest", "language": ""},
            ["100% Real", "Podcast Host", "Studio Narrator"],
            None,
        ),
    ],
)
def test_search_and_filters(as_member, params, custom_names, system_names):
    custom, system = sections(get_page(as_member, library_url(**params)))
    assert names(custom) == custom_names
    if system_names is not None:
        assert names(system) == system_names
    if custom_names == [] and (params.get("q") or params.get("category")):
        assert "None of your voices match." in custom


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_filters_keep_their_values_and_offer_only_languages_in_use(as_member):
    page = get_page(as_member, library_url(q="narr", category="NARRATIVE", language="en-GB"))
    assert 'name="q" value="narr"' in page
    assert '<option value="NARRATIVE" selected>Narrative</option>' in page
    assert '<option value="en-GB" selected>English (United Kingdom)</option>' in page
    offered = re.findall(r'<option value="([a-z]{2}-[A-Z]{2})"', page)
    # Only languages in use, by label: English (India), (United Kingdom), (United States)…
    assert offered == ["en-IN", "en-GB", "en-US", "fr-FR", "ru-RU"]
    assert len(re.findall(r'<option value="[A-Z_]+"', page)) == 12  # every category
    assert "match “narr” in Narrative in English (United Kingdom)." in page
    assert '<a href="/o/acme/voices/">Clear filters</a>' in page


@pytest.mark.parametrize("backend", PG_ONLY, indirect=True)
@pytest.mark.parametrize(
    ("q", "first_system", "custom_names"),
    [
        ("abigal", "Abigail", []),
        ("narator", "Aaron", ["Studio Narrator"]),
        ("podcst", None, ["Podcast Host"]),
        ("meeera", "Meera", []),
    ],
)
def test_postgresql_search_tolerates_typos(as_member, q, first_system, custom_names):
    custom, system = sections(get_page(as_member, library_url(q=q)))
    assert names(custom) == custom_names
    assert (names(system) or [None])[0] == first_system


@pytest.mark.parametrize("backend", PG_ONLY, indirect=True)
def test_postgresql_ranks_the_best_match_first(app, as_member, world):
    with app.app_context(), operator_access("test setup"):
        for name, description in [
            ("Anna", "Calm narration"),  # weaker: only the description is similar
            ("Narrator Two", None),
            ("Narrator", None),
        ]:
            db.session.add(
                Voice(
                    org_id=world["acme"],
                    variant=VoiceVariant.CUSTOM,
                    name=name,
                    description=description,
                )
            )
        db.session.commit()
    custom, _ = sections(get_page(as_member, library_url(q="narrator")))
    # Whole-word matches (score 1) by name; "narration" is only similar, so it comes last.
    assert names(custom) == ["Narrator", "Narrator Two", "Studio Narrator", "Anna"]


def test_sqlite_falls_back_to_substring_search(as_member):
    """Documented trade-off: without pg_trgm a typo finds nothing."""
    custom, system = sections(get_page(as_member, library_url(q="abigal")))
    assert names(custom) == names(system) == []


@pytest.mark.parametrize("backend", PG_ONLY, indirect=True)
def test_trigram_indexes_serve_the_search(app):
    with app.app_context():
        definitions = dict(
            db.session.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'voices'")
            ).all()
        )
        for column in ("name", "description"):
            assert "USING gin" in definitions[f"ix_voices_{column}_trgm"]
            assert "gin_trgm_ops" in definitions[f"ix_voices_{column}_trgm"]
        with db.engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            compiled = select(Voice.id).where(queries._matches("narator")).compile(conn)
            rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars()
            plan = "\n".join(rows)
    assert "ix_voices_name_trgm" in plan and "ix_voices_description_trgm" in plan, plan


# ----------------------------------------------------------------------- load more


def add_custom_voices(
    app: Flask, org_id: uuid.UUID, count: int, shared: dt.datetime | None, start: int = 0
) -> None:
    """Insert `count` custom voices; with `shared`, two thirds share that created_at."""
    with app.app_context(), operator_access("test setup"):
        base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        for n in range(start, start + count):
            created = shared if shared and n % 3 else base + dt.timedelta(minutes=n)
            # Names out of creation order, so the two sorts page differently.
            name = f"Bulk {(n * 37) % 1000:03d}"
            db.session.add(
                Voice(
                    org_id=org_id,
                    variant=VoiceVariant.CUSTOM,
                    name=name,
                    category=VoiceCategory.GENERAL,
                    created_at=created,
                    updated_at=created,
                )
            )
        db.session.commit()


def expected_order(app: Flask, org_id: uuid.UUID, sort: str) -> list[str]:
    order = (Voice.name, Voice.id) if sort == "name" else (Voice.created_at.desc(), Voice.id.desc())
    with app.app_context(), operator_access("test check"):
        return [
            str(i)
            for i in db.session.scalars(
                select(Voice.id).where(Voice.org_id == org_id).order_by(*order)
            )
        ]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("sort", ["name", "newest"])
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "no-js"])
def test_load_more_walks_every_voice_once_despite_equal_timestamps(
    app, as_member, world, sort, htmx
):
    shared = dt.datetime(2026, 2, 2, 12, 0, 0, 123456, tzinfo=dt.UTC)
    add_custom_voices(app, world["acme"], 57, shared)  # + 3 = 60 custom voices
    first = get_page(as_member, library_url(sort=sort))
    custom, _ = sections(first)
    assert 'Your voices <span class="count">60</span>' in custom
    seen = card_ids(custom)
    href = load_more_href(custom)
    pages = 1
    while href:
        assert "after=" in href and f"sort={sort}" in href
        if htmx:
            fragment = get_page(as_member, href, **HX)
            assert "<html" not in fragment and "System voices" not in fragment
            assert fragment.count('data-page-start tabindex="-1"') == 1
        else:
            fragment, _ = sections(get_page(as_member, href))
            assert "Back to the first page" in fragment and "<html" in fragment
        seen += card_ids(fragment)
        href = load_more_href(fragment)
        pages += 1
    assert pages == 3  # 24 + 24 + 12
    assert len(seen) == len(set(seen)) == 60
    assert seen == expected_order(app, world["acme"], sort)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_load_more_keeps_the_filters(app, as_member, world):
    add_custom_voices(app, world["acme"], 40, None)
    first, _ = sections(get_page(as_member, library_url(q="bulk", sort="name")))
    assert len(card_ids(first)) == 24
    href = load_more_href(first)
    assert "q=bulk" in href and "sort=name" in href
    second = get_page(as_member, href, **HX)
    assert all(n.startswith("Bulk") for n in names(second)) and len(names(second)) == 16
    assert load_more_href(second) is None


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_best_match_order_shows_the_top_matches_without_paging(app, as_member, world):
    add_custom_voices(app, world["acme"], queries.BEST_MATCHES + 5, None)
    custom, _ = sections(get_page(as_member, library_url(q="bulk")))
    assert len(card_ids(custom)) == queries.BEST_MATCHES
    assert load_more_href(custom) is None
    assert "These are the best matches. Sort by name or newest" in custom
    assert f'<span class="count">{queries.BEST_MATCHES + 5}</span>' in custom


def cursor(payload: object) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


GOOD_ID = uuid.UUID(int=1).hex


@pytest.mark.parametrize(
    ("sort", "after"),
    [
        ("name", "not base64 at all!"),
        ("name", cursor(b"\xff\xfe not json")),
        ("name", cursor(["a", "list"])),
        ("name", cursor({"o": "name"})),
        ("name", cursor({"o": "name", "k": ["Voice", "not-a-uuid"]})),
        ("name", cursor({"o": "name", "k": ["Voice", 42]})),
        ("name", cursor({"o": "name", "k": ["", GOOD_ID]})),
        ("name", cursor({"o": "name", "k": ["Voice", GOOD_ID, "extra"]})),
        ("newest", cursor({"o": "newest", "k": ["2026-01-01T00:00:00", GOOD_ID]})),  # naive
        ("newest", cursor({"o": "newest", "k": ["yesterday", GOOD_ID]})),
        ("newest", cursor({"o": "name", "k": ["Voice", GOOD_ID]})),  # another order's
        ("", cursor({"o": "best", "k": ["Voice", GOOD_ID]})),
    ],
)
def test_tampered_cursor_is_400_with_a_message(as_member, sort, after):
    response = as_member.get(library_url(sort=sort, after=after))
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "“Load more” link" in body and "Start again from the first page" in body
    fragment = as_member.get(library_url(sort=sort, after=after), headers=HX)
    assert fragment.status_code == 400 and "<html" not in fragment.get_data(as_text=True)


NAME_CURSOR = cursor({"o": "name", "k": ["Voice", GOOD_ID]})


# Tokens the library used to follow (or answer 500 to, the nesting) and the history page
# refused: both read cursors through dashboard.keyset now, so both refuse them alike.
@pytest.mark.parametrize(
    "after",
    [
        pytest.param(NAME_CURSOR + "A" * keyset.CURSOR_MAX, id="too long"),
        pytest.param(cursor(b"[" * 5000), id="deep nesting"),
        pytest.param(cursor({"o": "name", "k": ["Voice", GOOD_ID], "x": 1}), id="extra field"),
        pytest.param(cursor({"o": "name", "k": ["Voice", str(uuid.UUID(GOOD_ID))]}), id="hyphens"),
        pytest.param(cursor({"o": "name", "k": ["Voice", "{" + GOOD_ID + "}"]}), id="braces"),
        pytest.param(NAME_CURSOR + "=", id="padding"),
        pytest.param(NAME_CURSOR.replace("-", "+").replace("_", "/") + "+", id="not url-safe"),
    ],
)
def test_library_refuses_a_tampered_cursor_as_history_does(as_member, after):
    page = as_member.get(library_url(sort="name", after=after))
    assert page.status_code == 400
    assert (
        "This “Load more” link is damaged. Start again from the first page of the voice library."
        in page.get_data(as_text=True)
    )
    fragment = as_member.get(library_url(sort="name", after=after), headers=HX)
    assert fragment.status_code == 400 and "<html" not in fragment.get_data(as_text=True)
    assert "This “Load more” link is damaged." in fragment.get_data(as_text=True)


def test_cursor_round_trips_names_and_aware_timestamps():
    voice = Voice(
        id=uuid.uuid4(),
        name="Zoë “quoted” / ünïcode",
        created_at=dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC),
    )
    for order, key in [
        (queries.Order.NAME, voice.name),
        (queries.Order.NEWEST, voice.created_at),
    ]:
        token = queries.encode_cursor(order, voice)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
        assert queries.decode_cursor(token, order) == queries.Cursor(order, (key, voice.id))


# ------------------------------------------------------------ htmx and query count


def test_htmx_search_returns_only_the_results_block(as_member):
    response = as_member.get(library_url(q="abig"), headers=HX)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    body = response.get_data(as_text=True)
    assert "<html" not in body and "<form" not in body
    assert body.lstrip().startswith('<div id="voice-results"')
    assert names(body) == ["Abigail"]
    # A history restore gets the whole page.
    restore = as_member.get(
        library_url(q="abig"), headers={**HX, "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.get_data(as_text=True)


def test_page_wires_htmx_to_a_plain_get_form(as_member):
    page = get_page(as_member, library_url())
    form = re.search(r"<form method=\"get\" action=\"/o/acme/voices/\".*?</form>", page, re.S)
    assert form, "the filters must be a real GET form"
    form_html = form.group(0)
    assert 'hx-trigger="input changed delay:300ms, search"' in form_html
    assert 'hx-push-url="true"' in form_html and 'hx-target="#voice-results"' in form_html
    assert '<button type="submit"' in form_html
    assert 'src="/static/js/voices.js"' in page
    assert "<script>" not in page and "style=" not in page  # the CSP allows neither


def voice_statements(seen: list[str]) -> list[str]:
    return [s for s in seen if re.search(r"\bFROM voices\b", s)]


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_query_count_does_not_grow_with_the_library(app, as_member, world, count_queries):
    urls = [library_url(), library_url(sort="newest"), library_url(q="bulk")]

    def measure() -> dict[str, tuple[int, int]]:
        counts = {}
        for url in urls:
            with count_queries() as seen:
                get_page(as_member, url)
            counts[url] = (len(voice_statements(seen)), len(seen))
        return counts

    add_custom_voices(app, world["acme"], 2, None)  # 5 custom voices
    few = measure()
    add_custom_voices(app, world["acme"], 55, dt.datetime(2026, 5, 5, tzinfo=dt.UTC), start=2)
    many = measure()  # 60 custom voices: a next page, so the capped count runs too
    for url in urls:
        assert few[url][0] <= 2 and many[url][0] <= 2, (url, few[url], many[url])
        # Everything else (user with memberships and orgs, RLS settings) is constant.
        assert few[url][1] - few[url][0] == many[url][1] - many[url][0], url
        assert many[url][1] <= 5, (url, many[url])
    # The custom page with the system voices; the languages with the capped count.
    assert many[library_url()][0] == 2

    # "Load more" with htmx: one query on voices, nothing else about the library.
    custom, _ = sections(get_page(as_member, library_url()))
    with count_queries() as seen:
        get_page(as_member, load_more_href(custom), **HX)
    assert len(voice_statements(seen)) == 1


# --------------------------------------------------------------------- preview audio


def audio_url(voice_id, slug: str = "acme") -> str:
    return f"/o/{slug}/voices/{voice_id}/audio"


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_custom_voice_audio_streams_with_range_and_etag(as_member, world):
    url = audio_url(world["Studio Narrator"])
    whole = as_member.get(url)
    assert whole.status_code == 200 and whole.data == AUDIO
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Cache-Control"] == "private, no-cache"  # may be replaced
    etag = whole.headers["ETag"]
    assert etag == f'"{hashlib.sha256(AUDIO).hexdigest()}"'

    part = as_member.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == AUDIO[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(AUDIO)}"
    assert part.headers["Content-Length"] == "100"
    tail = as_member.get(url, headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.data == AUDIO[-16:]

    beyond = as_member.get(url, headers={"Range": f"bytes={len(AUDIO)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(AUDIO)}"

    cached = as_member.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.data == b""


def test_system_voice_audio_may_be_cached_privately(app, as_member, world):
    response = as_member.get(audio_url(world["Aaron"]), headers={"Range": "bytes=0-3"})
    assert response.status_code == 206 and response.data == AUDIO[:4]
    max_age = app.config["SYSTEM_AUDIO_MAX_AGE"]
    assert response.headers["Cache-Control"] == f"private, max-age={max_age}"


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_other_orgs_voice_audio_is_404(as_member, world):
    response = as_member.get(audio_url(world["Rival Secret"]))
    assert response.status_code == 404 and AUDIO[:64] not in response.data
    assert as_member.get(audio_url(world["Rival Secret"], "rival")).status_code == 404
    assert as_member.get(audio_url(uuid.uuid4())).status_code == 404


def test_voice_without_audio_is_409_with_a_message(as_member, world):
    response = as_member.get(audio_url(world["Podcast Host"]))
    assert response.status_code == 409
    assert "no preview audio yet" in response.get_data(as_text=True)


def test_storage_down_is_502_with_a_message(as_member, world, storage_down):
    response = as_member.get(audio_url(world["Studio Narrator"]))
    assert response.status_code == 502
    assert "storage is unavailable" in response.get_data(as_text=True)


@pytest.fixture
def presigning_app(s3_endpoint, tmp_path, monkeypatch) -> Iterator[Flask]:
    from tests.s3server import FAKE_KEY_ID, FAKE_SECRET, REGION, isolate_aws_env, make_bucket

    isolate_aws_env(monkeypatch, tmp_path)
    app = create_app(
        make_config(
            f"sqlite:///{tmp_path / 'presign.db'}",
            tmp_path,
            STORAGE_BACKEND="s3",
            S3_BUCKET=make_bucket(s3_endpoint),
            S3_ENDPOINT_URL=s3_endpoint,
            S3_REGION=REGION,
            S3_ACCESS_KEY_ID=FAKE_KEY_ID,
            S3_SECRET_ACCESS_KEY=FAKE_SECRET,
            S3_ADDRESSING_STYLE="path",
            S3_PRESIGNED_REDIRECTS=True,
        )
    )
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_presigned_redirect_when_storage_is_s3_and_asked_for(presigning_app, s3_endpoint):
    with presigning_app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="cloud")
        user = factories.make_user()
        factories.make_membership(user, org, MEMBER)
        voice = factories.make_voice(org, name="Cloudy")
        for column, value in put_audio(custom_voice_key(org.id, voice.id)).items():
            setattr(voice, column, value)
        db.session.commit()
        user, voice_id = factories.detach(user), voice.id
    client = presigning_app.test_client()
    login(client, user)
    response = client.get(audio_url(voice_id, "cloud"))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{s3_endpoint}/") and "X-Amz-Expires=300" in location
    assert response.headers["Cache-Control"] == "private, no-store"
    with urllib.request.urlopen(location, timeout=10) as fetched:  # noqa: S310 (loopback)
        assert fetched.read() == AUDIO
    # The browser may follow it: the bucket's origin is allowed for media only.
    csp = client.get("/o/cloud/voices/").headers["Content-Security-Policy"]
    media = next(d for d in csp.split(";") if d.strip().startswith("media-src"))
    assert s3_endpoint in media
    assert s3_endpoint not in csp.replace(media, "")


def test_no_presigned_redirect_on_local_storage(app, as_member, world):
    app.config["S3_PRESIGNED_REDIRECTS"] = True
    response = as_member.get(audio_url(world["Studio Narrator"]))
    assert response.status_code == 200 and response.data == AUDIO
    csp = as_member.get(library_url()).headers["Content-Security-Policy"]
    assert "media-src 'self' blob:" in csp


def test_presigned_redirects_setting_is_read_from_the_environment(tmp_path):
    from dashboard.config import settings_from_env

    assert settings_from_env({}, str(tmp_path))["S3_PRESIGNED_REDIRECTS"] is False
    on = settings_from_env({"S3_PRESIGNED_REDIRECTS": "1"}, str(tmp_path))
    assert on["S3_PRESIGNED_REDIRECTS"] is True


@pytest.mark.parametrize(
    ("settings", "origins"),
    [
        ({"S3_ENDPOINT_URL": "http://127.0.0.1:9000/"}, ["http://127.0.0.1:9000"]),
        (
            {"S3_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com"},
            ["https://acc.r2.cloudflarestorage.com"],
        ),
        (
            {"S3_ENDPOINT_URL": "https://s3.example.com", "S3_ADDRESSING_STYLE": "virtual"},
            ["https://audio.s3.example.com"],
        ),
        (
            {"S3_REGION": "eu-west-1"},
            ["https://audio.s3.amazonaws.com", "https://audio.s3.eu-west-1.amazonaws.com"],
        ),
        (
            {"S3_REGION": "eu-west-1", "S3_ADDRESSING_STYLE": "path"},
            ["https://s3.amazonaws.com", "https://s3.eu-west-1.amazonaws.com"],
        ),
    ],
)
def test_csp_allows_the_buckets_origin_for_media_only(settings, origins):
    from dashboard import CONTENT_SECURITY_POLICY, content_security_policy

    config = {"S3_PRESIGNED_REDIRECTS": True, "STORAGE_BACKEND": "s3", "S3_BUCKET": "audio"}
    policy = content_security_policy({**config, **settings})
    assert policy["media-src"] == ["'self'", "blob:", *origins]
    assert {k: v for k, v in policy.items() if k != "media-src"} == {
        k: v for k, v in CONTENT_SECURITY_POLICY.items() if k != "media-src"
    }
    assert content_security_policy({**config, "S3_PRESIGNED_REDIRECTS": False}) == (
        CONTENT_SECURITY_POLICY
    )
