"""History (list half): rows, filters on both databases, keyset pages across equal
timestamps, htmx fragments, query counts, the PostgreSQL plan, and deleting one row."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
import uuid
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, insert, select, text

from dashboard import keyset, tenancy
from dashboard.extensions import db
from dashboard.history import queries
from dashboard.models import Generation, GenerationStatus, MemberRole, Organization, new_id
from dashboard.storage import get_storage
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import BACKENDS, PG_ONLY, WEB_ROLE_BACKENDS
from tests.history.helpers import get_page, history_url, row_ids
from tests.http import HX, login

ROLES = [MemberRole.OWNER, MemberRole.ADMIN, MemberRole.MEMBER]
DAY = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)

# ------------------------------------------------------------------------ fixtures


@pytest.fixture
def world(app: Flask) -> dict:
    """Org "acme" (owner, admin, member; voices Narrator and system Aaron; five
    generations) and org "rival" (one member, one generation)."""
    ids: dict = {}
    with app.app_context(), operator_access("test setup"):
        storage = get_storage()
        acme = factories.make_org(slug="acme", name="Acme Audio")
        rival = factories.make_org(slug="rival", name="Rival Sound")
        users = {role: factories.make_user(email=f"{role.value}@acme.example") for role in ROLES}
        for role, user in users.items():
            factories.make_membership(user, acme, role)
        rival_user = factories.make_user(email="member@rival.example")
        factories.make_membership(rival_user, rival)
        narrator = factories.make_voice(acme, name="Narrator")
        aaron = factories.make_voice(name="Aaron")
        factories.make_voice(rival, name="Rival Secret")
        rows = [
            ("Welcome to the quarterly results call.", narrator, GenerationStatus.SUCCEEDED),
            (("A chapter about the sea " + "and the waves " * 20).strip(), aaron, "failed"),
            ("Still waiting in the queue.", aaron, GenerationStatus.QUEUED),
            ("Speaking right now.", narrator, GenerationStatus.RUNNING),
            ("Made with a voice that was deleted.", None, GenerationStatus.SUCCEEDED),
        ]
        for n, (words, voice, status) in enumerate(rows):
            generation = factories.make_generation(
                acme,
                voice,
                text=words,
                voice_name=voice.name if voice else "Old Studio",
                created_at=DAY - dt.timedelta(hours=n),
                temperature=0.5,
                top_p=0.9,
                top_k=250,
                repetition_penalty=1.3,
            )
            status = GenerationStatus(status)
            if status is GenerationStatus.SUCCEEDED:
                factories.finish_generation(generation, storage)
            elif status is GenerationStatus.FAILED:
                generation.status, generation.error = status, "The engine ran out of memory."
            else:
                generation.status = status
            ids[words[:12]] = generation.id
        ids["rival generation"] = factories.make_generation(rival, text="Rival's secret script.").id
        db.session.commit()
        ids["users"] = {role: factories.detach(user) for role, user in users.items()}
        ids["rival user"] = factories.detach(rival_user)
        ids["acme"], ids["rival"] = acme.id, rival.id
        ids["Narrator"], ids["Aaron"] = narrator.id, aaron.id
    return ids


@pytest.fixture
def as_member(client, world):
    login(client, world["users"][MemberRole.MEMBER])
    return client


# ------------------------------------------------------------------------- helpers


def older_href(fragment: str) -> str | None:
    match = re.search(r'<tr class="history-more" hx-get="([^"]+)"', fragment)
    return html.unescape(match.group(1)) if match else None


def add_generations(
    app: Flask, org_id: uuid.UUID, count: int, shared: dt.datetime | None = None
) -> None:
    """Insert `count` generations in one statement; with `shared`, every other row
    (and then some) shares that created_at."""
    rows = []
    for n in range(count):
        created = shared if shared and (n % 2 or n < 20) else DAY - dt.timedelta(minutes=n)
        words = f"Bulk line {n:04d}"
        rows.append(
            {
                "id": new_id(),
                "org_id": org_id,
                "voice_name": "Bulk Voice",
                "text": words,
                "character_count": len(words),
                "created_at": created,
                "updated_at": created,
            }
        )
    with app.app_context(), operator_access("test setup"):
        db.session.execute(insert(Generation), rows)
        db.session.commit()


def expected_order(app: Flask, org_id: uuid.UUID) -> list[str]:
    with app.app_context(), operator_access("test check"):
        stmt = (
            select(Generation.id)
            .where(Generation.org_id == org_id)
            .order_by(Generation.created_at.desc(), Generation.id.desc())
        )
        return [str(i) for i in db.session.scalars(stmt)]


def generation_exists(app: Flask, generation_id: uuid.UUID) -> bool:
    with app.app_context(), operator_access("test check"):
        found = db.session.scalar(select(Generation.id).where(Generation.id == generation_id))
        return found is not None


def audio_key_of(app: Flask, generation_id: uuid.UUID) -> str:
    with app.app_context(), operator_access("test check"):
        return db.session.scalar(select(Generation.audio_key).where(Generation.id == generation_id))


# ---------------------------------------------------------------------------- list


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_every_role_sees_the_orgs_history_newest_first(client, world, role):
    login(client, world["users"][role])
    response = client.get(history_url())
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    page = response.get_data(as_text=True)
    assert row_ids(page) == [
        str(world[k])
        for k in ("Welcome to t", "A chapter ab", "Still waitin", "Speaking rig", "Made with a ")
    ]
    assert "Rival" not in page
    assert 'href="/static/css/history.css"' in page and "js/history.js" in page

    welcome, failed = world["Welcome to t"], world["A chapter ab"]
    # Text links to the detail page; long text is cut to an excerpt.
    assert f'href="/o/acme/generations/{welcome}" class="excerpt">Welcome to the' in page
    assert "and the waves " * 8 in page and "and the waves " * 12 not in page
    # Player and download only for finished audio.
    assert page.count('<audio controls preload="none"') == 2
    assert f'src="/o/acme/generations/{welcome}/audio"' in page
    assert f'href="/o/acme/generations/{welcome}/audio?download=1"' in page
    assert f"/o/acme/generations/{failed}/audio" not in page
    # Badges; a failure says why on hover and in a folding area.
    for status in ("succeeded", "failed", "queued", "running"):
        assert f'status-badge status-{status}"' in page
    assert 'title="The engine ran out of memory."' in page
    assert "<summary>Why</summary>" in page
    # Voice snapshot, a deleted voice marked; parameters under their product names.
    assert 'Old Studio</span> <small class="muted">(deleted)</small>' in page
    for label, value in [
        ("Creativity", "0.5"),
        ("Voice variety", "0.9"),
        ("Expression range", "250"),
        ("Natural flow", "1.3"),
    ]:
        assert f"<dt>{label}</dt><dd>{value}</dd>" in page
    # Relative time computed on the server, with the exact time on hover.
    assert '<time datetime="2026-03-10T00:00:00Z" title="2026-03-10 00:00 UTC">' in page
    # Delete: a confirmation page without JavaScript, hx-post with a question with it.
    assert f'href="/o/acme/history/{welcome}/delete"' in page
    assert f'hx-post="/o/acme/history/{welcome}/delete"' in page and "hx-confirm=" in page
    # Bulk form: one checkbox per row, CSRF, actions.
    assert page.count('name="ids" value=') == 5
    assert 'name="csrf_token"' in page and 'value="download"' in page
    assert 'name="all_matching" value="1"' in page


def test_empty_history_links_to_the_generation_page(app, client):
    with app.app_context(), operator_access("test setup"):
        user = factories.make_user()
        factories.make_membership(user, factories.make_org(slug="quiet"))
        db.session.commit()
        user = factories.detach(user)
    login(client, user)
    page = get_page(client, history_url("quiet"))
    assert "No generations yet" in page
    assert 'href="/o/quiet/generate/" role="button">Generate speech' in page
    assert "history-bulk" not in page


def test_other_orgs_history_is_404_and_anonymous_visitors_log_in(client, world):
    assert client.get(history_url()).status_code == 302
    assert "/login" in client.get(history_url()).headers["Location"]
    login(client, world["rival user"])
    assert client.get(history_url("acme")).status_code == 404


# ------------------------------------------------------------------------- filters


@pytest.fixture
def filter_world(app: Flask, world: dict) -> dict:
    """Add rows at UTC day boundaries (voice Plain) and with % and _ in their text
    (the last two made with a voice since deleted: "Gone")."""
    with app.app_context(), operator_access("test setup"):
        org = SimpleNamespace(id=world["acme"])
        plain = factories.make_voice(org, name="Plain")
        cases = {
            "start of 1 Feb": dt.datetime(2026, 2, 1, 0, 0, 0, tzinfo=dt.UTC),
            "end of 2 Feb": dt.datetime(2026, 2, 2, 23, 59, 59, 999999, tzinfo=dt.UTC),
            "start of 3 Feb": dt.datetime(2026, 2, 3, 0, 0, 0, tzinfo=dt.UTC),
            "end of 31 Jan": dt.datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        }
        for label, when in cases.items():
            world[label] = factories.make_generation(
                org, plain, text=f"Boundary {label}.", created_at=when
            ).id
        for n, (label, words, voice) in enumerate(
            [
                ("100%", "Sales rose 100% this year.", plain),
                ("1000", "Sales rose 1000 units.", plain),
                ("snake", "Call get_user now.", None),
                ("getXuser", "Call getXuser now.", None),
            ]
        ):
            created = DAY - dt.timedelta(days=40 + n)
            world[label] = factories.make_generation(org, voice, text=words, created_at=created).id
        db.session.commit()
        world["Plain"] = plain.id
    return world


FILTER_CASES = [
    ({"voice": "Narrator"}, ["Welcome to t", "Speaking rig"]),
    ({"voice": "deleted:Old Studio"}, ["Made with a "]),
    ({"voice": "deleted:Gone"}, ["snake", "getXuser"]),
    ({"voice": "deleted:Narrator"}, []),  # a live voice's name: its rows aren't "deleted"
    ({"voice": "deleted:Old Studio", "status": "succeeded"}, ["Made with a "]),
    ({"status": "failed"}, ["A chapter ab"]),
    ({"status": "running"}, ["Speaking rig"]),
    ({"from": "2026-02-01", "to": "2026-02-02"}, ["end of 2 Feb", "start of 1 Feb"]),
    ({"from": "2026-02-03", "to": "2026-02-03"}, ["start of 3 Feb"]),
    ({"to": "2026-01-31"}, ["end of 31 Jan", "100%", "1000", "snake", "getXuser"]),
    ({"from": "2026-03-10"}, ["Welcome to t"]),
    ({"q": "100%"}, ["100%"]),
    ({"q": "get_user"}, ["snake"]),
    ({"q": "  WELCOME to  "}, ["Welcome to t"]),
    ({"q": "sales rose"}, ["100%", "1000"]),
    ({"q": "waves", "status": "failed", "voice": "Aaron"}, ["A chapter ab"]),
    ({"q": "waves", "status": "succeeded"}, []),
    ({"voice": "Aaron", "from": "2026-03-09"}, ["A chapter ab", "Still waitin"]),
    (
        {"voice": "Plain", "q": "boundary", "to": "2026-02-02"},
        ["end of 2 Feb", "start of 1 Feb", "end of 31 Jan"],
    ),
]


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
@pytest.mark.parametrize(("params", "expected"), FILTER_CASES, ids=lambda v: repr(v))
def test_filters(as_member, filter_world, params, expected):
    params = dict(params)
    if params.get("voice") in ("Narrator", "Aaron", "Plain"):
        params["voice"] = str(filter_world[params["voice"]])
    page = get_page(as_member, history_url(**params))
    assert row_ids(page) == [str(filter_world[k]) for k in expected]  # newest first
    if expected:
        assert "Clear filters" in page
    else:
        assert "Nothing matches these filters" in page
        assert (
            'href="/o/acme/history/" role="button" class="secondary outline">Clear filters' in page
        )


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_filters_keep_their_values_and_offer_every_voice(app, as_member, filter_world):
    with app.app_context(), operator_access("test setup"):
        org = SimpleNamespace(id=filter_world["acme"])
        factories.make_generation(org, text="Another one.", voice_name="Zed <script>")
        db.session.commit()
    params = {"q": "sea", "status": "failed", "from": "2026-01-01", "to": "2026-12-31"}
    page = get_page(as_member, history_url(voice=str(filter_world["Aaron"]), **params))
    assert 'name="q" value="sea"' in page
    assert '<option value="failed" selected>Failed</option>' in page
    assert 'name="from" value="2026-01-01"' in page and 'name="to" value="2026-12-31"' in page
    assert f'<option value="{filter_world["Aaron"]}" selected>Aaron</option>' in page
    custom, _, rest = page.partition('<optgroup label="System voices">')
    assert "Narrator" in custom and "Rival Secret" not in page
    system, _, deleted = rest.partition('<optgroup label="Deleted voices">')
    assert "Aaron" in system
    # Snapshot names of generations whose voice is gone, once each, escaped.
    assert deleted.count('value="deleted:Gone"') == 1
    assert 'value="deleted:Old Studio"' in deleted
    assert 'value="deleted:Zed &lt;script&gt;"' in deleted
    # The bulk form carries the filters, so "all matching" means these.
    assert '<input type="hidden" name="status" value="failed">' in page


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_deleted_voice_names_are_listed_once_by_name_up_to_the_cap(app, monkeypatch, backend):
    """The names come from a loose index scan: one step per name, however many rows."""
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="names")
        for name in ["Zed", "Alpha", "Mid", "Alpha", "Zed", "Alpha", "Beta"]:
            factories.make_generation(org, voice_name=name)
        factories.make_generation(
            org, factories.make_voice(org, name="Alive")
        )  # a live voice: not a deleted name
        db.session.commit()
        org_id = org.id
    with app.app_context(), tenancy.org_scope(org_id):
        options = queries.voice_options(org_id)
        assert list(options.deleted) == ["Alpha", "Beta", "Mid", "Zed"]
        assert not options.deleted_capped
        assert [name for _, name in options.custom] == ["Alive"]
        monkeypatch.setattr(queries, "DELETED_VOICES_CAP", 2)
        capped = queries.voice_options(org_id)
        assert list(capped.deleted) == ["Alpha", "Beta"] and capped.deleted_capped


def test_values_the_form_never_sends_are_ignored(as_member, world):
    everything = row_ids(get_page(as_member, history_url()))
    for params in [
        {"status": "exploded"},
        {"voice": "not-a-uuid"},
        {"voice": "deleted:"},
        {"q": "   "},
    ]:
        assert row_ids(get_page(as_member, history_url(**params))) == everything, params


def test_a_voice_that_no_longer_exists_shows_nothing_and_says_so(as_member, world):
    page = get_page(as_member, history_url(voice=str(uuid.uuid4())))
    assert row_ids(page) == [] and "Nothing matches these filters" in page
    assert "selected>A voice that no longer exists</option>" in page


def test_long_search_is_cut_to_200_characters(as_member, world):
    page = get_page(as_member, history_url(q="x" * 300))
    assert f'name="q" value="{"x" * 200}"' in page


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-13-01"}, "The start date “2026-13-01” isn't a date."),
        ({"to": "yesterday"}, "The end date “yesterday” isn't a date."),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "The start date (5 Mar 2026) is after"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_bad_dates_are_400_with_a_readable_message(as_member, world, params, message, htmx):
    response = as_member.get(history_url(status="failed", **params), headers=HX if htmx else {})
    assert response.status_code == 400
    body = html.unescape(response.get_data(as_text=True))
    assert message in body
    assert row_ids(body) == []
    assert ("<html" in body) is not htmx
    assert 'href="/o/acme/history/?status=failed">Clear the dates' in body


# ------------------------------------------------------------------ keyset paging


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "no-js"])
def test_pages_walk_every_row_once_despite_equal_timestamps(app, as_member, world, htmx):
    shared = dt.datetime(2026, 2, 2, 12, 0, 0, 123456, tzinfo=dt.UTC)
    add_generations(app, world["acme"], 125, shared)  # + 5 = 130 rows; 72 share `shared`
    with app.app_context(), operator_access("test check"):
        assert (
            db.session.scalar(
                select(text("count(*)"))
                .select_from(Generation)
                .where(Generation.created_at == shared)
            )
            >= 60
        )
    page = get_page(as_member, history_url())
    seen = row_ids(page)
    assert len(seen) == 50 and "← Newest" not in page
    href, pages = older_href(page), 1
    while href:
        assert "after=" in href
        if htmx:
            fragment = get_page(as_member, href, **HX)
            assert "<html" not in fragment and "<table" not in fragment
            assert fragment.lstrip().startswith("<tr")
        else:
            fragment = get_page(as_member, href)
            assert "<html" in fragment and "← Newest" in fragment
        # A real link for the no-JS path, next to the infinite-scroll trigger.
        if older_href(fragment):
            assert 'hx-trigger="revealed"' in fragment and "Older generations</a>" in fragment
        seen += row_ids(fragment)
        href = older_href(fragment)
        pages += 1
    assert pages == 3  # 50 + 50 + 30
    assert "That's the oldest generation" in fragment
    assert len(seen) == len(set(seen)) == 130
    assert seen == expected_order(app, world["acme"])


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_voice_filter_lists_the_first_custom_voices_and_always_the_selected_one(
    app, as_member, world, monkeypatch
):
    monkeypatch.setattr(queries, "VOICE_OPTIONS_CAP", 2)
    with app.app_context(), operator_access("test setup"):
        org = db.session.get(Organization, world["acme"])
        extra = [factories.make_voice(org, name=f"Zz Voice {n}") for n in range(3)]
        db.session.commit()
        last = extra[-1].id
    page = get_page(as_member, history_url())
    listed = re.findall(r'<optgroup label="Your voices[^"]*">(.*?)</optgroup>', page, re.S)[0]
    assert len(re.findall(r"<option ", listed)) == 2
    assert "Your voices (the first 2 by name)" in page
    assert "Zz Voice 2" not in listed
    selected = get_page(as_member, history_url(voice=str(last)))
    assert re.search(rf'<option value="{last}" selected>Zz Voice 2</option>', selected)
    assert "A voice that no longer exists" not in selected


def empty_search_href(page: str) -> str | None:
    match = re.search(r'href="([^"]+)" role="button" class="secondary outline">Search older', page)
    return html.unescape(match.group(1)) if match else None


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_text_search_walks_bounded_windows_and_finds_every_match_once(
    app, as_member, world, monkeypatch
):
    """A search reads SEARCH_WINDOW rows per request, and "Older" goes on from there."""
    monkeypatch.setattr(queries, "SEARCH_WINDOW", 7)
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    add_generations(app, world["acme"], 40)  # "Bulk line 0000" … "Bulk line 0039"
    newest_first = expected_order(app, world["acme"])  # "Bulk line 0000" is the newest
    with app.app_context(), operator_access("test check"):
        texts = {str(i): t for i, t in db.session.execute(select(Generation.id, Generation.text))}
    matches = [i for i in newest_first if "3" in texts[i]]
    assert len(matches) >= 13  # 0003, 0013, 0023, 0030-0039 (and any of world's with a 3)
    href: str | None = history_url(q="3")
    seen: list[str] = []
    requests = 0
    while href and requests < 30:
        page = get_page(as_member, href, **HX) if requests else get_page(as_member, href)
        seen += row_ids(page)
        href = older_href(page) or empty_search_href(page)
        requests += 1
    assert seen == matches  # every match, once, newest first, across windows
    assert requests >= 40 // 7  # it really went window by window

    # The oldest row only: the newest window has none, and says how far it looked.
    page = get_page(as_member, history_url(q="0039"))
    assert row_ids(page) == [] and "No matches since" in page
    for _ in range(10):
        if row_ids(page):
            break
        page = get_page(as_member, empty_search_href(page) or older_href(page))
    assert row_ids(page) == [i for i in newest_first if texts[i] == "Bulk line 0039"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_pages_keep_the_filters(app, as_member, world):
    add_generations(app, world["acme"], 120)
    page = get_page(as_member, history_url(q="bulk line"))
    href = older_href(page)
    assert "q=bulk+line" in href
    rest = get_page(as_member, href, **HX)
    assert len(row_ids(page)) == 50 and len(row_ids(rest)) == 50
    assert all(f"/{i}/delete?q=bulk+line" in page for i in row_ids(page)[:3])


def cursor(payload) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "after",
    [
        "not base64!",
        cursor(b"\xff\xfe"),
        cursor({"k": ["2026-01-01T00:00:00+00:00"]}),
        cursor({"k": ["2026-01-01T00:00:00", uuid.uuid4().hex]}),  # naive
        cursor({"k": ["soon", uuid.uuid4().hex]}),
        cursor({"k": ["2026-01-01T00:00:00+00:00", "xyz"]}),
        cursor({"k": ["2026-01-01T00:00:00+00:00", uuid.uuid4().hex], "x": 1}),
        cursor([1, 2]),
        "A" * 500,
    ],
)
def test_a_damaged_cursor_is_400_with_a_message(as_member, world, after):
    for headers in ({}, HX):
        response = as_member.get(history_url(after=after), headers=headers)
        assert response.status_code == 400
        assert "This “Older” link is damaged." in response.get_data(as_text=True)


OLDER_CURSOR = cursor({"k": ["2026-01-01T00:00:00+00:00", uuid.UUID(int=1).hex]})


# What dashboard.keyset refuses besides the cases above (the voice library refuses them
# alike): forms of the id and of base64 that this code never writes.
@pytest.mark.parametrize(
    "after",
    [
        pytest.param(OLDER_CURSOR + "A" * keyset.CURSOR_MAX, id="too long"),
        pytest.param(cursor({"k": ["2026-01-01T00:00:00+00:00", "0000_000" + "1" * 24]}), id="_"),
        pytest.param(OLDER_CURSOR + "=", id="padding"),
        pytest.param(OLDER_CURSOR.replace("-", "+").replace("_", "/") + "+", id="not url-safe"),
    ],
)
def test_history_refuses_cursors_it_never_writes(as_member, world, after):
    for headers in ({}, HX):
        response = as_member.get(history_url(after=after), headers=headers)
        assert response.status_code == 400
        assert (
            "This “Older” link is damaged. Start again from the newest generations."
            in response.get_data(as_text=True)
        )


def test_cursor_round_trips_aware_timestamps(app, world):
    with app.app_context(), operator_access("test check"):
        generation = db.session.scalars(select(Generation).limit(1)).one()
        decoded = queries.decode_cursor(queries.encode_cursor(generation))
    assert decoded == queries.Cursor(generation.created_at, generation.id)
    assert queries.decode_cursor("") is None


# -------------------------------------------------------------------- htmx answers


def test_htmx_filter_change_gets_only_the_results_block(as_member, world):
    response = as_member.get(history_url(status="failed"), headers=HX)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="history-results"')
    assert "<html" not in fragment and "<search>" not in fragment
    assert row_ids(fragment) == [str(world["A chapter ab"])]
    # A history restore (back button) gets the whole page.
    restore = as_member.get(
        history_url(status="failed"), headers={**HX, "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.get_data(as_text=True)


def test_page_wires_htmx_to_a_plain_get_form(as_member, world):
    page = get_page(as_member, history_url())
    form = re.search(r"<form method=\"get\"[^>]*>", page).group(0)
    assert 'action="/o/acme/history/"' in form and 'hx-target="#history-results"' in form
    assert 'hx-push-url="true"' in form
    assert 'hx-trigger="input changed delay:300ms, search"' in page
    assert "<script>" not in page and " hx-on" not in page and "onclick" not in page


# ------------------------------------------------------------------ query counts


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_statements_per_page_do_not_grow_with_the_history(app, as_member, world, count_queries):
    def measure(url: str, **headers: str) -> tuple[int, int, int]:
        """Return (all statements, without RLS settings, on generations) for one view."""
        get_page(as_member, url, **headers)  # warm: the login's own queries are done
        with count_queries() as seen:
            get_page(as_member, url, **headers)
        app_side = [s for s in seen if "set_config(" not in s]
        return len(seen), len(app_side), sum("FROM generations" in s for s in app_side)

    urls = (history_url(), history_url(q="line"), history_url(status="queued"))
    add_generations(app, world["acme"], 5)  # 10 rows
    few = {url: measure(url) for url in urls}
    add_generations(app, world["acme"], 190)  # 200 rows
    many = {url: measure(url) for url in urls}
    assert few == many
    for total, app_side, on_generations in many.values():
        # user with memberships and orgs; the page; the voice filter's options (one
        # statement). PostgreSQL adds the row-level-security settings twice: as the
        # transaction starts (the user) and when the org is known.
        assert app_side == 3 and on_generations == 2
        assert total <= 5
    print(f"\nstatements per history page (all, app, generations): {many}")
    href = older_href(get_page(as_member, history_url()))
    total, app_side, on_generations = measure(href, **HX)
    assert (app_side, on_generations) == (2, 1) and total <= 4  # the rows only


# --------------------------------------------------------------- PostgreSQL plans


def record_statements(app: Flask):
    """Collect (statement, parameters) of what the app's engine runs."""
    with app.app_context():
        engine = db.engine
    seen: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, *_rest) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    return engine, record, seen


@pytest.mark.parametrize("backend", PG_ONLY, indirect=True)
def test_postgresql_pages_walk_the_org_created_index(app, as_member, world, database_url):
    add_generations(app, world["acme"], 5000)
    add_generations(app, world["rival"], 800)
    owner = create_engine(database_url)
    with owner.begin() as conn:
        conn.exec_driver_sql("ANALYZE generations")
    first = get_page(as_member, history_url())
    older = older_href(first)
    engine, record, seen = record_statements(app)
    try:
        get_page(as_member, history_url())
        get_page(as_member, older, **HX)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    pages = [(s, p) for s, p in seen if "FROM generations" in s and "LIMIT" in s]
    assert len(pages) == 3  # deleted-voice names, first page, older page
    page_sql = [(s, p) for s, p in pages if "ORDER BY generations.created_at DESC" in s]
    assert not any("OFFSET" in s or "count(" in s.lower() for s, _ in seen)
    assert len(page_sql) == 2 and "generations.created_at, generations.id) <" in page_sql[1][0]
    try:
        # No enable_seqscan tricks: with 5,800 rows analysed, the planner must choose
        # the index on its own, or the page would sort the org's whole history.
        with owner.connect() as conn:
            for statement, parameters in page_sql:
                plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
                assert "Index Scan using ix_generations_org_created" in plan, plan
                assert "Sort" not in plan and "Filter" not in plan, plan
            # The older page seeks: the row comparison is part of the index condition.
            assert "Index Cond: ((org_id = " in plan and "AND (ROW(created_at, id) <" in plan
    finally:
        owner.dispose()


# ------------------------------------------------------------------- delete one


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_delete_asks_first_then_removes_row_and_audio(app, as_member, world):
    welcome = world["Welcome to t"]
    key = audio_key_of(app, welcome)
    with app.app_context():
        assert get_storage().exists(key)
    confirm = get_page(as_member, f"/o/acme/history/{welcome}/delete?status=succeeded")
    assert "Delete this generation?" in confirm and "Welcome to the quarterly" in confirm
    assert f'action="/o/acme/history/{welcome}/delete?status=succeeded"' in confirm
    assert 'href="/o/acme/history/?status=succeeded" role="button"' in confirm  # cancel

    response = as_member.post(f"/o/acme/history/{welcome}/delete?status=succeeded")
    assert response.status_code == 303
    assert response.headers["Location"] == "/o/acme/history/?status=succeeded"
    assert not generation_exists(app, welcome)
    with app.app_context():
        assert not get_storage().exists(key)
    page = get_page(as_member, history_url())
    assert "The generation was deleted." in page and str(welcome) not in page
    # Another organisation's generation, and one already gone: 404.
    for target in (world["rival generation"], welcome):
        assert as_member.get(f"/o/acme/history/{target}/delete").status_code == 404
        assert as_member.post(f"/o/acme/history/{target}/delete").status_code == 404
    assert generation_exists(app, world["rival generation"])


def test_htmx_delete_removes_the_row_and_says_so(app, as_member, world):
    failed = world["A chapter ab"]
    response = as_member.post(f"/o/acme/history/{failed}/delete", headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "generation-deleted"
    assert response.get_data(as_text=True) == ""  # nothing takes the row's place
    assert not generation_exists(app, failed)


def test_delete_with_storage_down_keeps_the_delete_and_leaves_the_object(
    app, as_member, world, storage_down, caplog
):
    welcome = world["Welcome to t"]
    key = audio_key_of(app, welcome)
    response = as_member.post(f"/o/acme/history/{welcome}/delete")
    assert response.status_code == 303
    assert not generation_exists(app, welcome)
    assert "left for a sweep" in caplog.text
    # The object is still in the (local) store the row used: the sweep's to remove.
    from dashboard.storage import LocalStorage

    assert LocalStorage(app.config["STORAGE_LOCAL_ROOT"]).exists(key)


def test_csrf_token_from_the_page_works_for_htmx_deletes(app, client, world):
    app.config["WTF_CSRF_ENABLED"] = True
    login(client, world["users"][MemberRole.MEMBER])
    page = get_page(client, history_url())
    token = html.unescape(re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1))
    target = world["Still waitin"]
    refused = client.post(f"/o/acme/history/{target}/delete", headers=HX)
    assert refused.status_code == 400 and generation_exists(app, target)
    response = client.post(f"/o/acme/history/{target}/delete", headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200 and not generation_exists(app, target)
