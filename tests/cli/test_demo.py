"""`flask seed --demo` gives the demo organisation a realistic, playable history.

Seeded through the real command on SQLite and PostgreSQL, with real eSpeak audio in
local storage; the objects are read back, never assumed.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import io
import uuid

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from dashboard.audio import probe_audio
from dashboard.cli.demo import (
    DELETED_VOICE,
    DEMO_ACCOUNTS,
    DEMO_LINES,
    DEMO_ORG_SLUG,
    DEMO_VOICES,
    HISTORY_DAYS,
    HISTORY_SIZE,
    RUSSIAN_LINES,
    Speaker,
    excerpt,
    history_ids,
    plan_history,
)
from dashboard.extensions import db
from dashboard.models import (
    Generation,
    GenerationStatus,
    Organization,
    User,
    Voice,
    VoiceCategory,
    VoiceVariant,
    utcnow,
)
from dashboard.models.generations import REPETITION_PENALTY, TEMPERATURE, TOP_K, TOP_P
from dashboard.storage import get_storage
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import WEB_ROLE_BACKENDS, both_databases
from tests.http import login

HISTORY_LINE = (
    "Demo history: 300 generations over the last 90 days (288 succeeded, 12 failed); "
    "audio: 12 spoken in full, 276 opening excerpts, "
)
ALREADY_THERE = "Demo history: already there (300 generations); nothing added."


def seed(runner):
    result = runner.invoke(args=["seed", "--demo"])
    assert result.exit_code == 0, result.output
    return result


def demo_history() -> list[Generation]:
    """The demo org's generations, oldest first (call inside an app context)."""
    return list(
        db.session.scalars(
            select(Generation)
            .join(Organization, Organization.id == Generation.org_id)
            .where(Organization.slug == DEMO_ORG_SLUG)
            .order_by(Generation.created_at, Generation.id)
        )
    )


def object_keys(prefix: str = "generations/") -> set[str]:
    return set(get_storage().list_keys(prefix))


@pytest.fixture
def seeded(app, runner):
    """Seed once; return the command's output."""
    return seed(runner).output


# ------------------------------------------------------------------------- contents


@both_databases
def test_the_history_has_300_generations_with_a_realistic_status_mix(app, seeded):
    assert HISTORY_LINE in seeded
    with app.app_context(), operator_access("test check"):
        rows = demo_history()
        statuses = collections.Counter(row.status for row in rows)
        assert len(rows) == HISTORY_SIZE
        assert statuses == {GenerationStatus.SUCCEEDED: 288, GenerationStatus.FAILED: 12}
        for row in rows:
            if row.status is GenerationStatus.FAILED:
                assert row.error and row.audio_key is None and row.attempts >= 1
                assert row.error[0].isupper() and len(row.error) > 40
            else:
                assert row.error is None and row.attempts == 1
            assert row.started_at >= row.created_at and row.finished_at > row.started_at
            assert row.updated_at == row.finished_at
        assert rows[-1].status is GenerationStatus.SUCCEEDED  # the newest one plays
        assert len({row.error for row in rows if row.error}) >= 3


@both_databases
def test_the_history_spreads_over_90_days_busier_recently(app, seeded):
    now = utcnow()
    with app.app_context(), operator_access("test check"):
        created = [row.created_at for row in demo_history()]
    ages = [(now - t) / dt.timedelta(days=1) for t in created]
    assert all(0 < age < HISTORY_DAYS for age in ages)
    assert len({t.date() for t in created}) >= 70
    recent = sum(age < 30 for age in ages)
    oldest = sum(age >= 60 for age in ages)
    assert recent > 1.5 * oldest, (recent, oldest)
    weekdays = sum(t.weekday() < 5 for t in created)
    assert weekdays / len(created) > 5 / 7  # quieter at weekends
    assert sum(6 <= t.hour < 23 for t in created) >= 0.95 * len(created)


@both_databases
def test_voices_snapshots_creators_and_parameters_are_varied_and_valid(app, seeded):
    with app.app_context(), operator_access("test check"):
        rows = demo_history()
        voices = {v.id: v for v in db.session.scalars(select(Voice))}
        demo_users = {
            u.id
            for u in db.session.scalars(select(User))
            if u.email.endswith("@demo.voxboard.test")
        }
    used = collections.Counter(row.voice_name for row in rows)
    assert {v.name for v in DEMO_VOICES} <= used.keys()
    system_names = {v.name for v in voices.values() if v.variant is VoiceVariant.SYSTEM}
    assert len(system_names & used.keys()) >= 15
    for row in rows:
        if row.voice_id is not None:
            assert row.voice_name == voices[row.voice_id].name
    assert {row.created_by for row in rows} == demo_users and len(demo_users) == 3
    for column, (low, high, default) in {
        "temperature": TEMPERATURE,
        "top_p": TOP_P,
        "top_k": TOP_K,
        "repetition_penalty": REPETITION_PENALTY,
    }.items():
        values = [getattr(row, column) for row in rows]
        assert all(low <= v <= high for v in values), column
        assert len(set(values)) >= 4, column
        assert 0.3 < values.count(default) / len(values) < 0.9, column
    assert all(isinstance(row.top_k, int) for row in rows)


@both_databases
def test_texts_are_realistic_trimmed_and_counted(app, seeded):
    with app.app_context(), operator_access("test check"):
        rows = demo_history()
    for row in rows:
        assert 50 <= len(row.text) <= 5000
        assert row.text == row.text.strip() and row.character_count == len(row.text)
    assert len({row.text for row in rows}) >= 150
    lines = [line for kind in DEMO_LINES.values() for line in kind]
    assert len(lines) >= 40 and all(50 <= len(line) <= 500 for line in lines)
    assert all(50 <= len(line) <= 500 for line in RUSSIAN_LINES)
    assert any(len(row.text) > 400 for row in rows)
    assert any("\n\n" in row.text for row in rows)  # paragraphs, as people paste them
    ivan = [row for row in rows if row.voice_name == "Ivan"]
    assert all(row.text in RUSSIAN_LINES for row in ivan)


@both_databases
def test_one_deleted_voice_survives_as_a_snapshot_name(app, seeded):
    with app.app_context(), operator_access("test check"):
        rows = demo_history()
        assert (
            db.session.scalar(
                select(func.count()).select_from(Voice).where(Voice.name == DELETED_VOICE.name)
            )
            == 0
        )
    orphans = [row for row in rows if row.voice_id is None]
    assert len(orphans) == 6
    assert {row.voice_name for row in orphans} == {DELETED_VOICE.name}
    assert all(utcnow() - row.created_at > dt.timedelta(days=50) for row in orphans)
    assert all(row.status is GenerationStatus.SUCCEEDED for row in orphans)


@both_databases
def test_every_succeeded_row_has_a_real_playable_object(app, seeded):
    with app.app_context(), operator_access("test check"):
        rows = [r for r in demo_history() if r.status is GenerationStatus.SUCCEEDED]
        storage = get_storage()
        stored = {r.id: b"".join(storage.open_range(r.audio_key)) for r in rows}
        assert object_keys() == {r.audio_key for r in rows}  # one object each, no strays
    for row in rows:
        audio = stored[row.id]
        assert row.audio_key == f"generations/orgs/{row.org_id}/{row.id}.demo"
        assert len(audio) == row.audio_size
        assert hashlib.sha256(audio).hexdigest() == row.audio_sha256
        info = probe_audio(io.BytesIO(audio))
        assert info.format == "WAV" and abs(info.duration_ms - row.duration_ms) <= 1
        assert len(row.peaks) > 10 and max(row.peaks) > 20
    newest = rows[-12:]
    assert all("demo excerpt" not in row.engine for row in newest)
    assert all(row.duration_ms >= 25 * len(row.text) for row in newest)  # the whole text
    older = rows[:-12]
    assert all(row.engine.endswith("(demo excerpt)") for row in older)
    assert all(500 < row.duration_ms < 6_000 for row in older)


def test_an_excerpt_is_the_first_sentences_opening_words():
    assert excerpt("Breathe in. Breathe out.") == "Breathe in."
    assert excerpt("One two three four five six seven eight.\n\nNine.") == (
        "One two three four five six"
    )


# ---------------------------------------------------------------------- idempotency


@both_databases
def test_a_second_seed_adds_nothing(app, runner, seeded):
    with app.app_context(), operator_access("test check"):
        before = {row.id: (row.audio_key, row.updated_at) for row in demo_history()}
        keys = object_keys()
    again = seed(runner).output
    assert ALREADY_THERE in again
    assert "Demo: nothing to do; Demo Studio (demo) and its logins are there." in again
    with app.app_context(), operator_access("test check"):
        assert {row.id: (row.audio_key, row.updated_at) for row in demo_history()} == before
        assert object_keys() == keys


def test_a_pruned_history_stays_pruned_and_an_emptied_one_comes_back(app, runner, seeded):
    with app.app_context(), operator_access("test: someone deletes from the history"):
        rows = demo_history()
        for row in rows[:-1]:
            db.session.delete(row)
        db.session.commit()
    assert "Demo history: already there (1 generations); nothing added." in seed(runner).output
    with app.app_context(), operator_access("test: the last one goes too"):
        db.session.delete(demo_history()[0])
        db.session.commit()
    assert HISTORY_LINE in seed(runner).output
    with app.app_context(), operator_access("test check"):
        assert len(demo_history()) == HISTORY_SIZE


def test_the_plan_is_the_same_on_every_run():
    org = uuid.UUID(int=7)
    voices = [
        Speaker(uuid.UUID(int=n), name, "en-US", VoiceCategory.GENERAL, VoiceVariant.SYSTEM)
        for n, name in enumerate(["Aaron", "Madison", "Gavin", "Help Desk"], start=1)
    ]
    users = [uuid.UUID(int=100), uuid.UUID(int=101), uuid.UUID(int=102)]
    now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    first, second = (plan_history(org, voices, users, now) for _ in range(2))
    assert first == second
    assert [p.id for p in first] == history_ids(org)  # oldest first, stable ids
    assert len(set(history_ids(org)) & set(history_ids(uuid.UUID(int=8)))) == 0
    assert [p.created_at for p in first] == sorted(p.created_at for p in first)


# ------------------------------------------------------------------------- isolation


@both_databases
def test_the_history_is_only_in_the_demo_org(app, runner):
    with app.app_context(), operator_access("test setup"):
        acme = factories.make_org(slug="acme", name="Acme Audio")
        factories.make_membership(factories.make_user(email="ada@example.com"), acme)
        factories.make_generation(acme, None, voice_name="Aaron", text="Acme's own words.")
        db.session.commit()
    seed(runner)
    with app.app_context(), operator_access("test check"):
        per_org = dict(
            db.session.execute(
                select(Organization.slug, func.count(Generation.id))
                .join(Generation, Generation.org_id == Organization.id)
                .group_by(Organization.slug)
            ).all()
        )
        assert per_org == {"acme": 1, DEMO_ORG_SLUG: HISTORY_SIZE}
        demo = db.session.scalars(
            select(Organization).where(Organization.slug == DEMO_ORG_SLUG)
        ).one()
        assert object_keys() == object_keys(f"generations/orgs/{demo.id}/")


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_the_demo_member_plays_seeded_audio_as_the_web_role(app, runner, client, seeded):
    with app.app_context(), operator_access("test check"):
        rows = [r for r in demo_history() if r.status is GenerationStatus.SUCCEEDED]
        member = factories.detach(
            db.session.scalars(select(User).where(User.email == DEMO_ACCOUNTS[2].email)).one()
        )
        picks = [
            (r.id, b"".join(get_storage().open_range(r.audio_key))) for r in (rows[0], rows[-1])
        ]
    login(client, member)
    for generation_id, audio in picks:
        response = client.get(f"/o/demo/generations/{generation_id}/audio")
        assert response.status_code == 200 and response.data == audio


# -------------------------------------------------------------------------- failure


@both_databases
def test_a_database_fault_mid_seed_leaves_no_history_and_no_objects(
    app, runner, backend, database_url
):
    """A real fault as the demo history is written: PostgreSQL's backend is terminated
    at that COMMIT; SQLite's file is full (max_page_count) when the history is flushed."""
    from contextlib import ExitStack

    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from tests.db_faults import terminate_backend_when

    seed_result = runner.invoke(args=["seed"])  # system voices first, committed
    assert seed_result.exit_code == 0, seed_result.output
    flushed: list[bool] = []

    def remember(session, _context, _instances):
        if any(isinstance(obj, Generation) for obj in session.new):
            flushed.append(True)
            if backend == "sqlite":
                # The file may not grow any more: the history's INSERTs fail in SQLite.
                connection = session.connection()
                pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
                connection.exec_driver_sql(f"PRAGMA max_page_count = {pages}")

    with ExitStack() as stack:
        event.listen(Session, "before_flush", remember)
        stack.callback(event.remove, Session, "before_flush", remember)
        if backend != "sqlite":
            killer = create_engine(database_url, poolclass=NullPool)
            stack.callback(killer.dispose)
            fired = stack.enter_context(
                terminate_backend_when(app, killer, commit=lambda: bool(flushed))
            )
        result = runner.invoke(args=["seed", "--demo"])
    assert flushed, "the history was never written"
    if backend != "sqlite":
        assert fired == ["COMMIT"]
    assert result.exit_code == 1, result.output
    assert "seed failed:" in result.output and "Traceback" not in result.output
    if backend == "sqlite":
        with app.app_context():
            db.session.connection().exec_driver_sql("PRAGMA max_page_count = 1073741823")
            db.engine.dispose()  # max_page_count is per connection: start afresh
    with app.app_context(), operator_access("test check"):
        assert db.session.scalar(select(func.count()).select_from(Generation)) == 0
        assert object_keys() == set()
        assert object_keys("voices/orgs/") == set()  # the demo voices' audio went too
    assert HISTORY_LINE in seed(runner).output  # and a later run does it all
