"""The generation page: form bounds, text, voice, quota, submit, prefill, limits, status.

Jobs run inside the request that enqueues them (JOBS_IMMEDIATE), so a plain submit has
finished speaking by the time it answers; tests that only care about the form and the
row use `queue_only`, a real SQLite queue no worker reads.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dashboard.edge import field_refusal, first_unholdable
from dashboard.extensions import db, limiter
from dashboard.generations.forms import PARAMETER_BY_NAME
from dashboard.generations.queries import month_start, next_month
from dashboard.models import (
    Generation,
    GenerationStatus,
    MemberRole,
    Organization,
    User,
    Voice,
    utcnow,
)
from dashboard.storage import get_storage
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import both_databases, web_role
from tests.http import HX, login

URL = "/o/acme/generate/"
TEXT = "Hello from Voxboard."

MESSAGES = {
    "temperature": "Creativity must be a number from 0 to 2.",
    "top_p": "Voice variety must be a number from 0 to 1.",
    "top_k": "Expression range must be a whole number from 1 to 10,000.",
    "repetition_penalty": "Natural flow must be a number from 1 to 2.",
}
DEFAULTS = {"temperature": 0.8, "top_p": 0.95, "top_k": 1000, "repetition_penalty": 1.2}
# (low, high) of each column's CHECK constraint.
DB_RANGES = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "top_k": (1, 10000),
    "repetition_penalty": (1, 2),
}


# ------------------------------------------------------------------------ fixtures


@dataclass
class World:
    owner: User
    member: User
    outsider: User
    acme: uuid.UUID
    system_voice: uuid.UUID  # "Aaron", shared by every org
    custom_voice: uuid.UUID  # acme's "Narrator"
    other_voice: uuid.UUID  # the other org's custom voice
    other_generation: uuid.UUID  # the other org's generation


@pytest.fixture
def world(app) -> World:
    with app.app_context(), operator_access("test setup spans two orgs"):
        acme = factories.make_org(slug="acme", name="Acme Audio")
        other = factories.make_org(slug="other", name="Other Org")
        owner, member, outsider = (
            factories.make_user(),
            factories.make_user(),
            factories.make_user(),
        )
        factories.make_membership(owner, acme, MemberRole.OWNER)
        factories.make_membership(member, acme, MemberRole.MEMBER)
        factories.make_membership(outsider, other, MemberRole.OWNER)
        aaron = factories.make_voice(None, name="Aaron")
        narrator = factories.make_voice(acme, name="Narrator", language="en-GB")
        outsider_voice = factories.make_voice(other, name="Outsider")
        theirs = factories.make_generation(other, outsider_voice, text="Their words, not yours.")
        db.session.commit()
        return World(
            owner=factories.detach(owner),
            member=factories.detach(member),
            outsider=factories.detach(outsider),
            acme=acme.id,
            system_voice=aaron.id,
            custom_voice=narrator.id,
            other_voice=outsider_voice.id,
            other_generation=theirs.id,
        )


@pytest.fixture
def owner(client, world) -> Any:
    """The test client, logged in as acme's owner."""
    login(client, world.owner)
    return client


@pytest.fixture
def queue_only(app, tmp_path):
    """Queue jobs on a real SQLite queue that no worker reads: rows stay `queued`."""
    app.config.update(JOBS_IMMEDIATE=False, JOBS_URL=f"sqlite:///{tmp_path / 'jobs.db'}")


@pytest.fixture
def limited(app):
    app.config.update(RATELIMIT_ENABLED=True, GENERATION_RATE_LIMIT="2 per minute")
    limiter.init_app(app)
    yield
    limiter.reset()


def submit(client, world: World, headers=None, **fields: Any):
    """POST the form with a short text and the system voice; None drops a field."""
    data: dict[str, Any] = {"text": TEXT, "voice": str(world.system_voice)}
    data.update(fields)
    return client.post(
        URL, data={k: v for k, v in data.items() if v is not None}, headers=headers or {}
    )


def generations(app) -> list[Generation]:
    """Every generation of every org, oldest first (detached)."""
    with app.app_context(), operator_access("test check spans orgs"):
        rows = db.session.scalars(select(Generation).order_by(Generation.created_at))
        return [factories.detach(g) for g in rows.all()]


def acme_rows(app, world: World) -> list[Generation]:
    return [g for g in generations(app) if g.org_id == world.acme]


def page(response) -> str:
    """The response body with entities decoded, as a person reads it."""
    return html.unescape(response.get_data(as_text=True))


def field_error(response, name: str) -> str:
    match = re.search(rf'id="{name}-error"[^>]*>(.*?)</small>', page(response), re.S)
    assert match, f"no inline error for {name}"
    return match.group(1).strip()


def input_value(response, name: str) -> str:
    match = re.search(
        rf'<input type="number" id="{name}" name="{name}" value="([^"]*)"', page(response)
    )
    assert match, f"no number box for {name}"
    return match.group(1)


def set_quota(app, limit: int | None) -> None:
    with app.app_context(), operator_access("test setup"):
        acme = db.session.scalars(select(Organization).where(Organization.slug == "acme")).one()
        acme.monthly_character_limit = limit
        db.session.commit()


def add_usage(app, world: World, characters: int, **kw: Any) -> None:
    """Record an earlier generation of acme with `characters` characters."""
    with app.app_context(), operator_access("test setup"):
        acme = db.session.get(Organization, world.acme)
        factories.make_generation(acme, None, voice_name="Aaron", text="x" * characters, **kw)
        db.session.commit()


# ------------------------------------------------------------- sampling parameters


IN_BOUNDS = [
    ("temperature", "0", 0.0),
    ("temperature", "0.01", 0.01),
    ("temperature", "1.99", 1.99),
    ("temperature", "2", 2.0),
    ("top_p", "0", 0.0),
    ("top_p", "0.01", 0.01),
    ("top_p", "0.99", 0.99),
    ("top_p", "1", 1.0),
    ("top_k", "1", 1),
    ("top_k", "2", 2),
    ("top_k", "9999", 9999),
    ("top_k", "10000", 10000),
    ("top_k", "10000.0", 10000),
    ("top_k", "1e3", 1000),
    ("repetition_penalty", "1", 1.0),
    ("repetition_penalty", "1.01", 1.01),
    ("repetition_penalty", "1.99", 1.99),
    ("repetition_penalty", "2", 2.0),
    ("temperature", " 1.5 ", 1.5),
    ("temperature", "", 0.8),  # blank: the default
    ("top_p", "", 0.95),
    ("top_k", "", 1000),
    ("repetition_penalty", "", 1.2),
]
OUT_OF_BOUNDS = [
    ("temperature", "-0.01"),
    ("temperature", "2.01"),
    ("top_p", "-0.01"),
    ("top_p", "1.01"),
    ("top_k", "0"),
    ("top_k", "10001"),
    ("top_k", "1.5"),
    ("repetition_penalty", "0.99"),
    ("repetition_penalty", "2.01"),
]
NOT_NUMBERS = [
    (name, raw)
    for name in MESSAGES
    for raw in ("abc", "nan", "NaN", "inf", "-inf", "1e400", "1,5", "0x1", "½")
]


@both_databases
@pytest.mark.parametrize(("name", "raw", "stored"), IN_BOUNDS)
def test_a_parameter_at_or_inside_its_bounds_is_stored(app, owner, world, name, raw, stored):
    response = submit(owner, world, **{name: raw})
    assert response.status_code == 303, field_error(response, name)
    (row,) = acme_rows(app, world)
    assert getattr(row, name) == stored
    assert type(getattr(row, name)) is type(stored)
    for other, default in DEFAULTS.items():
        if other != name:
            assert getattr(row, other) == default


@pytest.mark.parametrize(("name", "raw"), OUT_OF_BOUNDS + NOT_NUMBERS)
def test_a_bad_parameter_is_refused_inline_in_its_labels_words(app, owner, world, name, raw):
    response = submit(owner, world, **{name: raw})
    assert response.status_code == 422
    assert field_error(response, name) == MESSAGES[name]
    assert f'id="{name}" name="{name}" value="{raw}"' in page(response)  # kept as typed
    assert 'aria-invalid="true"' in page(response)
    assert acme_rows(app, world) == []


def test_every_bad_parameter_is_reported_at_once(app, owner, world):
    response = submit(
        owner, world, temperature="3", top_p="x", top_k="0.5", repetition_penalty="-1"
    )
    assert response.status_code == 422
    for name, message in MESSAGES.items():
        assert field_error(response, name) == message
    assert acme_rows(app, world) == []


numberish = st.one_of(
    st.text(max_size=30),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.floats(min_value=-1, max_value=10001).map(lambda f: f"{f:.3f}"),
    st.integers(min_value=-5, max_value=20000).map(str),
    st.sampled_from(["", " ", "1e-400", "-0", "+1", "1_0", "１", "0.0000001", "2.0000000001"]),
)


@settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=st.fixed_dictionaries({name: numberish for name in MESSAGES}))
def test_fuzzed_parameters_never_error_and_only_store_in_range(app, owner, world, values):
    before = len(acme_rows(app, world))
    response = submit(owner, world, **values)
    assert response.status_code in {303, 422}, response.status_code
    rows = acme_rows(app, world)
    # A character no database stores is refused before the value is read (dashboard.edge).
    refusals = [
        field_refusal(PARAMETER_BY_NAME[name].label, char)
        for name, value in values.items()
        if (char := first_unholdable(value))
    ]
    if refusals:
        assert response.status_code == 422
    if response.status_code == 422:
        assert len(rows) == before
        assert any(message in page(response) for message in [*MESSAGES.values(), *refusals])
        return
    assert len(rows) == before + 1
    row = rows[-1]
    for name, (low, high) in DB_RANGES.items():
        value = getattr(row, name)
        assert math.isfinite(value) and low <= value <= high, (name, values[name], value)
        raw = values[name].strip()
        assert value == (float(raw) if raw else DEFAULTS[name])
    assert isinstance(row.top_k, int)


# ------------------------------------------------------------------------------ text


@pytest.mark.parametrize("text", ["", "   ", " \r\n\t \n "])
def test_empty_text_is_refused(app, owner, world, text):
    response = submit(owner, world, text=text)
    assert response.status_code == 422
    assert field_error(response, "text") == "Type the text you want to hear."
    assert acme_rows(app, world) == []


def test_missing_text_is_refused(app, owner, world):
    response = submit(owner, world, text=None)
    assert response.status_code == 422
    assert field_error(response, "text") == "Type the text you want to hear."


def speech(length: int) -> str:
    """Return `length` characters of ordinary words (no leading or trailing space)."""
    words = ("Voxboard reads scripts aloud. " * (length // 20 + 2))[:length]
    return words[:-1] + "x" if words.endswith(" ") else words


@both_databases
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(speech(5000), id="exactly-5000"),
        pytest.param("   " + speech(5000) + " \n ", id="5000-after-trimming"),
        pytest.param("ab\r\n" * 1666 + "ab", id="crlf-counts-as-one"),
        pytest.param("é🎙" * 2500, id="5000-code-points"),
    ],
)
def test_text_of_5000_characters_is_accepted(app, owner, world, queue_only, raw):
    response = submit(owner, world, text=raw)
    assert response.status_code == 303, field_error(response, "text")
    (row,) = acme_rows(app, world)
    assert len(row.text) == 5000 == row.character_count
    assert "\r" not in row.text and row.text == row.text.strip()
    assert row.status is GenerationStatus.QUEUED  # nobody works this queue


@pytest.mark.parametrize(
    "raw",
    [speech(5001), "ab\r\n" * 1666 + "abc", "  " + speech(5001) + "  "],
    ids=["5001", "crlf-5001", "5001-after-trimming"],
)
def test_text_over_5000_characters_is_refused(app, owner, world, raw):
    response = submit(owner, world, text=raw)
    assert response.status_code == 422
    assert field_error(response, "text").startswith(
        "Keep the text to 5,000 characters or fewer; split longer scripts"
    )
    assert acme_rows(app, world) == []


@both_databases
def test_stored_text_is_trimmed_counted_and_names_the_voice(app, owner, world, queue_only):
    response = submit(
        owner, world, text="  \n Good morning,\r\nlisteners.  \t", voice=str(world.custom_voice)
    )
    assert response.status_code == 303
    (row,) = acme_rows(app, world)
    assert row.text == "Good morning,\nlisteners."
    assert row.character_count == len(row.text) == 24
    assert (row.voice_id, row.voice_name) == (world.custom_voice, "Narrator")
    assert row.created_by == world.owner.id


@both_databases
def test_text_with_a_nul_character_is_refused_not_a_server_error(app, owner, world):
    response = submit(owner, world, text="Hello\x00 world")
    assert response.status_code == 422
    assert field_error(response, "text") == field_refusal("Text", "\x00")
    assert acme_rows(app, world) == []


@both_databases
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=st.text(max_size=80))
def test_fuzzed_text_is_stored_trimmed_or_refused_never_an_error(
    app, owner, world, queue_only, text
):
    before = len(acme_rows(app, world))
    response = submit(owner, world, text=text)
    expected = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not expected or first_unholdable(text):  # NUL, other controls: dashboard.edge
        assert response.status_code == 422
        assert len(acme_rows(app, world)) == before
        return
    assert response.status_code == 303, field_error(response, "text")
    row = acme_rows(app, world)[-1]
    assert row.text == expected and row.character_count == len(expected)


# ----------------------------------------------------------------------------- voice


@pytest.mark.parametrize(
    ("voice", "message"),
    [
        (None, "Choose a voice."),
        ("", "Choose a voice."),
        ("   ", "Choose a voice."),
        ("not-a-uuid", "Choose a voice from the list."),
        ("1234", "Choose a voice from the list."),
    ],
)
def test_a_missing_or_malformed_voice_is_refused_inline(app, owner, world, voice, message):
    response = submit(owner, world, voice=voice)
    assert response.status_code == 422
    assert field_error(response, "voice") == message
    assert acme_rows(app, world) == []


@web_role
@pytest.mark.parametrize("which", ["unknown", "other org's"])
def test_a_voice_the_org_cant_see_is_404_and_creates_nothing(app, owner, world, which):
    voice = uuid.uuid4() if which == "unknown" else world.other_voice
    response = submit(owner, world, voice=str(voice))
    assert response.status_code == 404
    assert "voice doesn't exist or isn't available" in page(response)
    assert acme_rows(app, world) == []
    assert len(generations(app)) == 1  # only the other org's own generation


@web_role
@pytest.mark.parametrize("which", ["system", "custom"])
def test_a_system_voice_or_the_orgs_own_voice_generates_speech(app, client, world, which):
    """Submit and job as the web role: the row and its audio are written under RLS."""
    login(client, world.member)
    voice, name = {
        "system": (world.system_voice, "Aaron"),
        "custom": (world.custom_voice, "Narrator"),
    }[which]
    response = submit(client, world, voice=str(voice))
    assert response.status_code == 303
    (row,) = acme_rows(app, world)
    assert response.headers["Location"] == f"/o/acme/generations/{row.id}"
    assert (row.voice_id, row.voice_name, row.created_by) == (voice, name, world.member.id)
    assert row.status is GenerationStatus.SUCCEEDED, row.error
    assert row.audio_key.startswith(f"generations/orgs/{world.acme}/{row.id}.")
    with app.app_context():
        audio = b"".join(get_storage().open_range(row.audio_key))
    assert audio[:4] == b"RIFF" and len(audio) == row.audio_size
    assert row.duration_ms > 500 and len(row.peaks) > 0


# ----------------------------------------------------------------------------- quota


def test_set_quota_command_sets_and_clears_the_limit(app, runner, world):
    result = runner.invoke(args=["orgs", "set-quota", "acme", "10,000"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Acme Audio (acme) may generate 10,000 characters per calendar month (UTC).\n"
    )
    assert quota_of(app) == 10_000
    for word in ("none", "NONE", "unlimited"):
        result = runner.invoke(args=["orgs", "set-quota", "acme", word])
        assert result.exit_code == 0, result.output
        assert result.output == "Acme Audio (acme) has no monthly character limit now.\n"
        assert quota_of(app) is None
    assert runner.invoke(args=["orgs", "set-quota", "acme", "0"]).exit_code == 0
    assert quota_of(app) == 0


def quota_of(app) -> int | None:
    with app.app_context(), operator_access("test check"):
        return db.session.scalars(
            select(Organization.monthly_character_limit).where(Organization.slug == "acme")
        ).one()


@both_databases
@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("ten", "'ten' is not a whole number of characters (or 'none')"),
        ("1.5", "'1.5' is not a whole number of characters (or 'none')"),
        ("", "'' is not a whole number of characters (or 'none')"),
        ("-5", "a limit can't be negative"),  # after "--", as click needs for a minus
        ("3000000000", "at most 2,147,483,647"),
        ("1" + "0" * 30, "at most 2,147,483,647"),
    ],
)
def test_set_quota_command_refuses_bad_values_and_changes_nothing(
    app, runner, world, limit, message
):
    set_quota(app, 500)
    result = runner.invoke(args=["orgs", "set-quota", "acme", "--", limit])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert quota_of(app) == 500


def test_set_quota_command_refuses_an_unknown_org(runner, world):
    result = runner.invoke(args=["orgs", "set-quota", "nope", "100"])
    assert result.exit_code == 1
    assert "no organisation with slug 'nope'" in result.output


def test_the_largest_quota_fits_the_column(app, runner, world):
    result = runner.invoke(args=["orgs", "set-quota", "acme", "2147483647"])
    assert result.exit_code == 0, result.output
    assert quota_of(app) == 2_147_483_647


def resets_on() -> str:
    return f"{next_month(month_start()):%-d %B}"


@web_role
def test_a_submission_over_the_quota_is_refused_with_used_left_limit_and_reset(app, owner, world):
    set_quota(app, 30)
    add_usage(app, world, 25)
    response = submit(owner, world, text="Ten chars!")
    assert response.status_code == 422
    assert field_error(response, "text") == (
        "This text has 10 characters, but only 5 of Acme Audio's 30 monthly characters "
        f"are left (25 used). Shorten the text, or wait until the limit resets on {resets_on()}."
    )
    assert len(acme_rows(app, world)) == 1  # only the earlier one
    assert "Ten chars!" in page(response)  # the text is kept for editing


@web_role
def test_a_submission_that_exactly_fills_the_quota_is_accepted(app, owner, world):
    set_quota(app, 30)
    add_usage(app, world, 20)
    assert submit(owner, world, text="Ten chars!").status_code == 303
    assert submit(owner, world, text="A").status_code == 422
    assert len(acme_rows(app, world)) == 2


@both_databases
def test_failed_and_last_months_generations_dont_count(app, owner, world):
    set_quota(app, 30)
    add_usage(app, world, 25, status=GenerationStatus.FAILED, error="The engine timed out.")
    last_month = month_start() - dt.timedelta(days=3)
    add_usage(app, world, 25, created_at=last_month, updated_at=last_month)
    response = submit(owner, world, text="Ten chars!")
    assert response.status_code == 303
    assert "10 of 30 characters used this month" in page(owner.get(URL))


@web_role
def test_deleting_a_generation_gives_no_quota_back(app, owner, world, queue_only):
    """The billing bug a new user found: generate 250 of 300 characters, delete it from
    the history, and the page said "0 of 300 used" and took more. It was generated, so
    it is billed (the usage ledger keeps the charge)."""
    set_quota(app, 300)
    text = speech(250)
    assert submit(owner, world, text=text).status_code == 303
    (generation,) = acme_rows(app, world)
    assert owner.post(f"/o/acme/history/{generation.id}/delete").status_code == 303
    assert acme_rows(app, world) == []
    assert "250 of 300 characters used this month" in page(owner.get(URL))
    response = submit(owner, world, text=speech(100))
    assert response.status_code == 422
    assert "only 50 of Acme Audio's 300 monthly characters are left (250 used)" in page(response)


def test_the_page_shows_the_usage_bar_and_whats_left(app, owner, world):
    set_quota(app, 1_000)
    add_usage(app, world, 250)
    text = page(owner.get(URL))
    assert '<progress value="250" max="1000"></progress>' in text
    assert f"250 of 1,000 characters used this month · resets {resets_on()}" in text
    assert "750 of 1,000 left this month" in text


def test_without_a_limit_usage_is_shown_and_nothing_is_refused(app, owner, world, queue_only):
    add_usage(app, world, 4_000)
    text = page(owner.get(URL))
    assert "4,000 characters generated this month." in text
    assert "<progress" not in text and "left this month" not in text
    assert submit(owner, world, text=speech(5000)).status_code == 303
    assert "9,000 characters generated this month." in page(owner.get(URL))


def test_retrying_a_failed_generation_over_the_quota_is_refused_readably(app, owner, world):
    set_quota(app, 30)
    add_usage(app, world, 25)
    with app.app_context(), operator_access("test setup"):
        acme = db.session.get(Organization, world.acme)
        failed = factories.make_generation(
            acme, None, voice_name="Aaron", text="Ten chars!",
            status=GenerationStatus.FAILED, error="The engine timed out.",
        )  # fmt: skip
        db.session.commit()
        failed_id = failed.id
    response = owner.post(f"/o/acme/generations/{failed_id}/retry")
    assert response.status_code == 422
    assert "only 5 of Acme Audio's 30 monthly characters are left" in page(response)
    (row,) = [g for g in acme_rows(app, world) if g.id == failed_id]
    assert row.status is GenerationStatus.FAILED  # left as it was


# ---------------------------------------------------------------- htmx, plain, prefill


@web_role
def test_htmx_submit_answers_the_generator_fragment_with_the_status_widget(app, owner, world):
    response = submit(owner, world, headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "generation-queued"
    assert "HX-Request" in response.headers["Vary"]
    body = page(response)
    assert body.lstrip().startswith('<div id="generator"')
    assert "<html" not in body and "<h1>" not in body
    (row,) = acme_rows(app, world)
    # The job ran in the request (JOBS_IMMEDIATE): the widget already has the player.
    assert f'data-generation-status="{row.status.value}"' in body
    assert row.status is GenerationStatus.SUCCEEDED
    assert f"/o/acme/generations/{row.id}/audio" in body


def test_htmx_submit_while_queued_shows_a_polling_widget(app, owner, world, queue_only):
    response = submit(owner, world, headers=HX)
    assert response.status_code == 200
    (row,) = acme_rows(app, world)
    body = page(response)
    assert 'data-generation-status="queued"' in body
    assert f'hx-get="/o/acme/generations/{row.id}/status" hx-trigger="every 1s"' in body


def test_htmx_submit_with_errors_answers_the_fragment_with_422(app, owner, world):
    response = submit(owner, world, headers=HX, text="", temperature="9")
    assert response.status_code == 422
    body = page(response)
    assert body.lstrip().startswith('<div id="generator"') and "<html" not in body
    assert "HX-Trigger" not in response.headers
    assert field_error(response, "temperature") == MESSAGES["temperature"]


def test_plain_submit_redirects_to_the_detail_page(app, owner, world, queue_only):
    response = submit(owner, world)
    assert response.status_code == 303
    (row,) = acme_rows(app, world)
    assert response.headers["Location"] == f"/o/acme/generations/{row.id}"


def test_get_prefills_from_the_query_string(app, owner, world):
    response = owner.get(f"{URL}?voice={world.custom_voice}&text=hi&temperature=1.5")
    assert response.status_code == 200
    body = page(response)
    assert re.search(r"<textarea[^>]*>hi</textarea>", body)
    assert re.search(rf'<option value="{world.custom_voice}"[^>]* selected>Narrator', body)
    assert input_value(response, "temperature") == "1.5"
    assert input_value(response, "top_p") == "0.95"
    assert 'id="temperature-error"' not in body


def test_get_ignores_bad_prefill_values(app, owner, world):
    response = owner.get(f"{URL}?temperature=9&top_k=abc&voice=nope")
    assert response.status_code == 200
    assert input_value(response, "temperature") == "0.8"
    assert input_value(response, "top_k") == "1000"
    assert "field-error" not in page(response)


@web_role
def test_get_from_a_generation_prefills_text_voice_and_parameters(app, owner, world):
    with app.app_context(), operator_access("test setup"):
        acme = db.session.get(Organization, world.acme)
        source = factories.make_generation(
            acme, db.session.get(Voice, world.custom_voice), text="Once upon a time.",
            temperature=1.5, top_p=0.5, top_k=42, repetition_penalty=1.7,
        )  # fmt: skip
        db.session.commit()
        source_id = source.id
    response = owner.get(f"{URL}?from={source_id}")
    assert response.status_code == 200
    body = page(response)
    assert re.search(r"<textarea[^>]*>Once upon a time.</textarea>", body)
    assert re.search(rf'<option value="{world.custom_voice}"[^>]* selected>', body)
    got = {name: input_value(response, name) for name in MESSAGES}
    assert got == {"temperature": "1.5", "top_p": "0.5", "top_k": "42", "repetition_penalty": "1.7"}
    # An explicit argument wins over the source.
    assert input_value(owner.get(f"{URL}?from={source_id}&top_k=7"), "top_k") == "7"


@web_role
@pytest.mark.parametrize("which", ["other org's", "unknown", "malformed"])
def test_get_from_a_generation_the_org_cant_see_is_404(app, owner, world, which):
    source = {
        "other org's": str(world.other_generation),
        "unknown": str(uuid.uuid4()),
        "malformed": "123",
    }[which]
    response = owner.get(f"{URL}?from={source}")
    assert response.status_code == 404
    assert "Their words" not in page(response)


# ------------------------------------------------------------------- limits and CSRF


def test_the_third_submission_in_a_minute_is_429_with_a_readable_text(
    app, client, world, limited, queue_only
):
    login(client, world.owner)
    assert [submit(client, world).status_code for _ in range(2)] == [303, 303]
    third = submit(client, world)
    assert third.status_code == 429
    assert "You have started too many generations in a short time. Wait a minute" in page(third)
    assert "per 1 minute" not in page(third)  # not the limiter's own wording
    assert int(third.headers["Retry-After"]) > 0
    assert len(acme_rows(app, world)) == 2
    assert client.get(URL).status_code == 200  # looking at the page isn't limited
    login(client, world.member)  # the limit is per user
    assert submit(client, world).status_code == 303


def test_with_csrf_on_a_post_without_a_token_is_400(app, owner, world):
    app.config["WTF_CSRF_ENABLED"] = True
    response = submit(owner, world)
    assert response.status_code == 400
    assert "expired or was sent from another site" in page(response)
    assert acme_rows(app, world) == []
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page(owner.get(URL)))
    assert token, "the form carries no CSRF token"
    assert submit(owner, world, csrf_token=token.group(1)).status_code == 303
    header = {**HX, "X-CSRFToken": token.group(1)}
    assert submit(owner, world, headers=header).status_code == 200


# -------------------------------------------------------------------- status widget


def status_url(generation_id) -> str:
    return f"/o/acme/generations/{generation_id}/status"


def acme_generation(app, world: World, **kw: Any) -> Generation:
    with app.app_context(), operator_access("test setup"):
        acme = db.session.get(Organization, world.acme)
        aaron = db.session.get(Voice, world.system_voice)
        succeeded = kw.get("status") is GenerationStatus.SUCCEEDED
        if succeeded:
            kw["status"] = GenerationStatus.QUEUED  # factories.finish_generation stores its audio
        generation = factories.make_generation(acme, aaron, text=TEXT, **kw)
        if succeeded:
            factories.finish_generation(generation, get_storage())
        db.session.commit()
        return factories.detach(generation)


@both_databases
@pytest.mark.parametrize("status", [GenerationStatus.QUEUED, GenerationStatus.RUNNING])
def test_status_of_an_unfinished_generation_polls(app, owner, world, status):
    generation = acme_generation(app, world, status=status, started_at=utcnow())
    response = owner.get(status_url(generation.id), headers=HX)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = page(response)
    assert body.lstrip().startswith("<section") and "<html" not in body
    assert f'data-generation-status="{status.value}"' in body
    assert f'hx-get="{status_url(generation.id)}" hx-trigger="every 1s"' in body
    assert 'hx-target="this"' in body
    assert "HX-Trigger" not in response.headers  # nothing to refresh around it yet


@both_databases
def test_status_of_a_succeeded_generation_stops_polling_and_plays(app, owner, world):
    generation = acme_generation(app, world, status=GenerationStatus.SUCCEEDED)
    response = owner.get(status_url(generation.id), headers=HX)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = page(response)
    assert 'data-generation-status="succeeded"' in body
    assert "hx-trigger" not in body
    assert f"/o/acme/generations/{generation.id}/audio" in body
    assert f"/o/acme/generations/{generation.id}/audio?download=1" in body
    # The detail page around the widget re-reads itself on this event.
    assert response.headers["HX-Trigger"] == "generation-finished"


@both_databases
def test_status_of_a_failed_generation_shows_the_error_and_try_again(app, owner, world):
    generation = acme_generation(
        app, world, status=GenerationStatus.FAILED, error="The speech engine timed out."
    )
    response = owner.get(status_url(generation.id), headers=HX)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = page(response)
    assert 'data-generation-status="failed"' in body and "hx-trigger" not in body
    assert "The speech engine timed out." in body
    retry = f"/o/acme/generations/{generation.id}/retry"
    assert re.search(rf'<form method="post" action="{retry}"', body)
    assert "Try again</button>" in body
    assert response.headers["HX-Trigger"] == "generation-finished"


def test_status_without_htmx_is_a_whole_page(app, owner, world):
    generation = acme_generation(app, world, status=GenerationStatus.QUEUED)
    response = owner.get(status_url(generation.id))
    assert response.status_code == 200
    assert "<html" in page(response) and 'data-generation-status="queued"' in page(response)
    assert response.headers["Cache-Control"] == "no-store"


@web_role
def test_status_of_another_orgs_generation_is_404(app, owner, world):
    assert owner.get(status_url(world.other_generation)).status_code == 404
    assert owner.get(f"/o/other/generations/{world.other_generation}/status").status_code == 404
