"""Real database faults, and the page a person sees when one happens.

No monkeypatched commits: the faults here happen in the database server or the driver.
A PostgreSQL backend is terminated (`pg_terminate_backend`) at a chosen statement or at
COMMIT, a statement outlives `statement_timeout` behind a real lock, a unique index is
lost to a concurrent transaction, and SQLite finds its file locked by another writer.
Each test checks the answer (a readable page with the right status, no traceback) and
that the database and the object storage hold nothing half-done.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from werkzeug.datastructures import FileStorage

from dashboard.extensions import db
from dashboard.models import (
    Generation,
    GenerationStatus,
    MemberRole,
    Organization,
    Voice,
    VoiceCategory,
    VoiceVariant,
)
from dashboard.storage import get_storage
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import make_config
from tests.db_faults import terminate_backend_when
from tests.http import login, post_multipart

POSTGRES = pytest.param("postgresql", marks=pytest.mark.postgres)
REFERENCE_TEXT = (
    "This is a reference recording for the fault tests. It has to run for more than ten "
    "seconds, so it goes on a little: the quick brown fox jumps over the lazy dog, and "
    "then the lazy dog, quite unbothered, goes back to sleep in the afternoon sun."
)


@dataclass
class World:
    org_id: uuid.UUID
    owner: object
    voice_id: uuid.UUID


@pytest.fixture
def world(app: Flask) -> World:
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="acme", name="Acme Audio")
        owner = factories.make_user(email="owner@acme.example", display_name="Olivia Owner")
        factories.make_membership(owner, org, MemberRole.OWNER)
        voice = factories.make_voice(org, name="Narrator")
        db.session.commit()
        db.session.refresh(owner)
        db.session.expunge(owner)
        return World(org.id, owner, voice.id)


@pytest.fixture
def owner(app: Flask, client, world: World):
    login(client, world.owner)
    return client


def count(app: Flask, model) -> int:
    with app.app_context(), operator_access("test check"):
        return db.session.scalar(select(func.count()).select_from(model))


def stored_keys(app: Flask) -> set[str]:
    with app.app_context():
        return set(get_storage().list_keys(""))


def page(response) -> str:
    return response.get_data(as_text=True)


# --------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def killer(database_url: str) -> Iterator[Engine]:
    """A second connection as the same role, which may terminate the app's backends."""
    engine = create_engine(database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def upload_voice(client, name: str = "Studio Host", url: str = "/o/acme/voices/new"):
    wav, duration_ms = factories.speech_sample(REFERENCE_TEXT)
    assert duration_ms >= 10_000  # a voice needs ten seconds of speech
    data = {
        "name": name,
        "category": "PODCAST",
        "language": "en-GB",
        "description": "Bright",
        "consent": "y",
        "audio": FileStorage(io.BytesIO(wav), filename="ref.wav"),
    }
    return post_multipart(client, url, data, headers={"Accept": "text/html"})


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_a_connection_killed_mid_request_is_a_503_page_and_saves_nothing(app, owner, killer, world):
    orgs = count(app, Organization)
    with terminate_backend_when(
        app, killer, statement=lambda sql: sql.startswith("INSERT INTO memberships")
    ) as fired:
        response = owner.post("/orgs/new", data={"name": "Second Studio"})
    assert fired, "the fault never happened"
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    html = page(response)
    assert "The database isn&#39;t answering right now" in html
    assert "Traceback" not in html and "psycopg" not in html and "terminat" not in html
    assert count(app, Organization) == orgs  # the org row went with the transaction
    # The pool replaces the dead connection: the next request just works.
    assert owner.get("/o/acme/").status_code == 200


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_a_connection_killed_at_commit_removes_the_uploaded_object(app, owner, killer, world):
    before_keys, voices = stored_keys(app), count(app, Voice)
    with terminate_backend_when(app, killer) as fired:
        response = upload_voice(owner)
    assert fired == ["COMMIT"]
    assert response.status_code == 503, page(response)
    assert "The database isn&#39;t answering right now" in page(response)
    assert count(app, Voice) == voices
    assert stored_keys(app) == before_keys  # the new reference audio was removed again


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_a_connection_killed_while_replacing_audio_keeps_the_old_object(app, owner, killer, world):
    created = upload_voice(owner, name="Host")
    assert created.status_code == 303, page(created)
    with app.app_context(), operator_access("test check"):
        voice = db.session.scalars(select(Voice).where(Voice.name == "Host")).one()
        voice_id, old_key = voice.id, voice.audio_key
    before = stored_keys(app)
    with terminate_backend_when(app, killer) as fired:
        response = upload_voice(owner, name="Host", url=f"/o/acme/voices/{voice_id}/edit")
    assert fired == ["COMMIT"] and response.status_code == 503
    assert stored_keys(app) == before and old_key in before
    with app.app_context(), operator_access("test check"):
        assert db.session.get(Voice, voice_id).audio_key == old_key
    assert owner.get(f"/voices/{voice_id}/audio").status_code in (200, 404)


def app_with_engine_options(database_url: str, tmp_path, **connect_args) -> Flask:
    """A second app on the same database whose connections carry `connect_args`."""
    from dashboard import create_app
    from dashboard.config import engine_options

    options = engine_options(database_url, pooled=False)
    options["connect_args"] = {**options.get("connect_args", {}), **connect_args}
    return create_app(
        make_config(database_url, tmp_path / "other", SQLALCHEMY_ENGINE_OPTIONS=options)
    )


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_a_statement_past_its_timeout_is_a_503_that_says_so(database_url, killer, world, tmp_path):
    """Another transaction holds a table the page reads; ours waits past its timeout."""
    slow = app_with_engine_options(database_url, tmp_path, options="-c statement_timeout=300")
    client = slow.test_client()
    login(client, world.owner)
    holder = killer.connect()
    transaction = holder.begin()
    try:
        holder.execute(text("LOCK TABLE organizations IN ACCESS EXCLUSIVE MODE"))
        response = client.get("/o/acme/", headers={"Accept": "text/html"})
    finally:
        transaction.rollback()
        holder.close()
    assert response.status_code == 503
    assert "The database took too long to answer" in page(response)
    assert client.get("/o/acme/").status_code == 200
    with slow.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_a_unique_index_lost_to_a_concurrent_transaction_is_a_409(app, owner, killer, world):
    """A real race: the other transaction inserts the same name and commits while ours waits."""
    other = killer.connect()
    transaction = other.begin()
    other.execute(
        insert(Voice).values(
            id=uuid.uuid4(),
            org_id=world.org_id,
            variant=VoiceVariant.CUSTOM,
            name="Racer",
            category=VoiceCategory.GENERAL,
            language="en-US",
        )
    )
    answer: list = []
    request = threading.Thread(target=lambda: answer.append(upload_voice(owner, name="Racer")))
    request.start()
    watcher = killer.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + 20
        # Ours passed the "name taken?" check (the racer hasn't committed) and now waits
        # on the unique index for the racer's outcome.
        while not watcher.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO voices%'"
            )
        ):
            assert time.monotonic() < deadline, "the request never waited on the racer"
            time.sleep(0.02)
    finally:
        watcher.close()
        transaction.commit()
        other.close()
        request.join(30)
    response = answer[0]
    # The voice form knows this race: the name's owner is named inline, as for any clash.
    assert response.status_code == 422, page(response)
    assert "already has a voice called “Racer”" in page(response)
    with app.app_context(), operator_access("test check"):
        racers = db.session.scalars(select(Voice).where(Voice.name == "Racer")).all()
        assert [v.audio_key for v in racers] == [None]  # only the racer's row, no audio
    assert not [k for k in stored_keys(app) if str(world.org_id) in k]


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_a_connection_killed_as_a_job_finishes_leaves_no_object_and_a_retryable_row(
    app, killer, world
):
    from dashboard.generations.jobs import reap_stuck, run_generation
    from dashboard.tenancy import all_tenants, org_scope
    from tests.factories import make_generation

    with app.app_context(), org_scope(world.org_id):
        voice = db.session.get(Voice, world.voice_id)
        generation = make_generation(
            db.session.get(Organization, world.org_id), voice, text="Killed at the finish."
        )
        db.session.commit()
        generation_id = generation.id
    with (
        terminate_backend_when(
            app,
            killer,
            statement=lambda sql: sql.startswith("UPDATE generations") and "audio_key" in sql,
        ) as fired,
        app.app_context(),
        pytest.raises(Exception) as caught,
    ):
        run_generation(generation_id, world.org_id)
    assert fired, "the fault never happened"
    assert "terminating connection" in str(caught.value)
    assert not [k for k in stored_keys(app) if k.startswith("generations/")]
    with app.app_context(), org_scope(world.org_id):
        row = db.session.get(Generation, generation_id)
        assert row.status is GenerationStatus.RUNNING and row.audio_key is None
    # The reaper hands it back to the queue; the next run finishes it.
    import datetime as dt

    with app.app_context(), all_tenants("test: reaper"):
        report = reap_stuck(db.session, dt.timedelta(0), max_retries=3)
    assert report.requeued == [generation_id]
    with app.app_context():
        assert run_generation(generation_id, world.org_id).status == "succeeded"
        with org_scope(world.org_id):
            row = db.session.get(Generation, generation_id)
            assert row.status is GenerationStatus.SUCCEEDED
            assert stored_keys(app) >= {row.audio_key}


# ------------------------------------------------------------------------- SQLite


def test_sqlite_locked_by_another_writer_is_a_503_and_saves_nothing(
    app, database_url, world, tmp_path
):
    import sqlite3

    locked = app_with_engine_options(database_url, tmp_path, timeout=0.2)
    client = locked.test_client()
    login(client, world.owner)
    orgs = count(app, Organization)
    writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")  # holds the write lock, as a long CLI import would
        response = client.post("/orgs/new", data={"name": "Second Studio"})
    finally:
        writer.rollback()
        writer.close()
    assert response.status_code == 503
    assert "The database took too long to answer" in page(response)
    assert "Traceback" not in page(response)
    assert count(app, Organization) == orgs
    with locked.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_a_race_no_view_expects_is_a_409_page_not_a_traceback(app, owner, killer, world):
    """Two requests create an organisation with the same name at once: one slug wins."""
    other = killer.connect()
    transaction = other.begin()
    other.execute(insert(Organization).values(id=uuid.uuid4(), slug="twins", name="Twins"))
    answer: list = []
    request = threading.Thread(
        target=lambda: answer.append(
            owner.post("/orgs/new", data={"name": "Twins"}, headers={"Accept": "text/html"})
        )
    )
    request.start()
    watcher = killer.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + 20
        while not watcher.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO organizations%'"
            )
        ):
            assert time.monotonic() < deadline, "the request never waited on the racer"
            time.sleep(0.02)
    finally:
        watcher.close()
        transaction.commit()
        other.close()
        request.join(30)
    response = answer[0]
    assert response.status_code == 409
    assert "Someone else changed the same thing at the same moment" in page(response)
    with app.app_context(), operator_access("test check"):
        assert (
            db.session.scalar(
                select(func.count()).select_from(Organization).where(Organization.slug == "twins")
            )
            == 1
        )


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_a_connection_killed_while_deleting_a_voice_keeps_row_and_object(app, owner, killer, world):
    created = upload_voice(owner, name="Doomed")
    assert created.status_code == 303, page(created)
    with app.app_context(), operator_access("test check"):
        voice = db.session.scalars(select(Voice).where(Voice.name == "Doomed")).one()
        voice_id, key = voice.id, voice.audio_key
    with terminate_backend_when(app, killer) as fired:
        response = owner.post(f"/o/acme/voices/{voice_id}/delete", headers={"Accept": "text/html"})
    assert fired == ["COMMIT"] and response.status_code == 503
    with app.app_context(), operator_access("test check"):
        assert db.session.get(Voice, voice_id) is not None  # the delete didn't happen...
    assert key in stored_keys(app)  # ...so its audio must still be there
