"""The speech job in-process: claim, speak, store, finish; retries, the reaper, retry.

Jobs run on real parts: eSpeak (or the loopback Chatterbox-compatible server of
`tests/tts_server.py` where a failure must be scripted), local storage under
tmp_path, SQLite and PostgreSQL (also as the RLS-bound web role), and huey, in
immediate mode (each job runs inside the `enqueue` that queues it) unless a test
needs to hold messages in a real queue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, select, text

from dashboard import tenancy
from dashboard.audio import PEAK_COUNT
from dashboard.extensions import db
from dashboard.generations.jobs import (
    STORAGE_FAILURE,
    WORKER_LOST,
    enqueue_generation,
    reap_from_worker,
    reap_stuck,
    run_generation,
)
from dashboard.models import (
    Generation,
    GenerationStatus,
    MemberRole,
    Organization,
    UsageEntry,
    UsageKind,
    Voice,
    utcnow,
)
from dashboard.queue import get_huey
from dashboard.storage import custom_voice_key, get_storage
from dashboard.tenancy.operator import operator_access
from dashboard.tts import ENGINE_EXTENSION_KEY as TTS_EXTENSION_KEY
from dashboard.tts import ChatterboxEngine
from tests import factories
from tests.databases import BACKENDS, WEB_ROLE_BACKENDS
from tests.http import login
from tests.tts_server import TTSServer, tts_server
from tests.workers import close_queue

API_KEY = "job-test-key"
TEXT = "Hello from the speech job."
LONG_AGO = dt.timedelta(hours=1)
SUCCEEDED, FAILED = GenerationStatus.SUCCEEDED, GenerationStatus.FAILED
QUEUED, RUNNING = GenerationStatus.QUEUED, GenerationStatus.RUNNING


# ------------------------------------------------------------------------ fixtures


@dataclass
class Tenant:
    slug: str
    org_id: uuid.UUID
    voice_id: uuid.UUID
    owner: Any  # a detached User


@dataclass
class World:
    acme: Tenant
    globex: Tenant


@pytest.fixture
def world(app: Flask) -> World:
    """Two orgs, each with an owner and a custom voice that has reference audio."""
    tenants = {}
    with app.app_context(), operator_access("test setup spans two orgs"):
        for slug in ("acme", "globex"):
            org = factories.make_org(slug=slug, name=slug.title())
            owner = factories.make_user(email=f"owner@{slug}.example")
            factories.make_membership(owner, org, MemberRole.OWNER)
            voice = factories.make_voice(org, name=f"{slug.title()} Narrator", language="en-US")
            # The speech service reads the reference audio itself; only the key travels.
            voice.audio_key = custom_voice_key(org.id, voice.id)
            tenants[slug] = Tenant(slug, org.id, voice.id, owner)
        db.session.commit()
        for tenant in tenants.values():
            tenant.owner = factories.detach(tenant.owner)
    return World(**tenants)


@pytest.fixture
def speech_service(app: Flask) -> Iterator[TTSServer]:
    """Speak through the loopback Chatterbox-compatible server (TTS_ENGINE=chatterbox).

    The engine's own retries are off (ChatterboxEngine.from_config has no setting for
    them), so each job attempt is exactly one request and failures are counted per try.
    """
    with tts_server(api_key=API_KEY) as server:
        app.config.update(TTS_ENGINE="chatterbox", TTS_URL=server.url, TTS_API_KEY=API_KEY)
        engine = ChatterboxEngine(server.url, API_KEY, timeout=30, retries=0, backoff=0)
        app.extensions[TTS_EXTENSION_KEY] = engine
        try:
            yield server
        finally:
            close_engine(app)


def close_engine(app: Flask) -> None:
    engine = app.extensions.pop(TTS_EXTENSION_KEY, None)
    if engine is not None and hasattr(engine, "close"):
        engine.close()


@pytest.fixture
def queue(app: Flask, tmp_path: Path) -> Iterator[Any]:
    """Hold messages in a real SQLite queue instead of running them at once."""
    app.config.update(JOBS_IMMEDIATE=False, JOBS_URL=f"sqlite:///{tmp_path / 'jobs.db'}")
    huey = get_huey(app)
    try:
        yield huey
    finally:
        close_queue(huey)


def generate(client, tenant: Tenant, text: str = TEXT, **headers: str):
    """Submit the generation form as the page does."""
    return client.post(
        f"/o/{tenant.slug}/generate/",
        data={
            "text": text,
            "voice": str(tenant.voice_id),
            "temperature": "0.8",
            "top_p": "0.95",
            "top_k": "1000",
            "repetition_penalty": "1.2",
        },
        headers=headers,
    )


def only_generation(app: Flask, tenant: Tenant) -> Generation:
    """Return the org's one generation, detached."""
    with app.app_context(), tenancy.org_scope(tenant.org_id):
        rows = db.session.scalars(select(Generation)).all()
        assert len(rows) == 1, rows
        return factories.detach(rows[0])


def load(app: Flask, generation_id: uuid.UUID) -> Generation:
    """Read one row fresh, whatever its org (past row-level security too)."""
    with app.app_context(), operator_access("test reads rows of any org"):
        row = db.session.scalars(select(Generation).where(Generation.id == generation_id)).one()
        return factories.detach(row)


def stored_generation_keys(app: Flask) -> list[str]:
    """Every generation object in storage, whatever its org."""
    with app.app_context():
        return sorted(get_storage().list_keys("generations/"))


def add_generation(app: Flask, tenant: Tenant, **kw: Any) -> uuid.UUID:
    """Insert a generation of `tenant` with its voice (queued unless told)."""
    with app.app_context(), operator_access("test setup"):
        org = db.session.get(Organization, tenant.org_id)
        voice = db.session.get(Voice, tenant.voice_id)
        generation_id = factories.make_generation(org, voice, text=kw.pop("text", TEXT), **kw).id
        db.session.commit()
        return generation_id


def run(app: Flask, generation_id: uuid.UUID, tenant: Tenant):
    """Run the job body directly, as the huey task does (without huey)."""
    with app.app_context():
        return run_generation(generation_id, tenant.org_id)


# ------------------------------------------------------------------------ success


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_generate_speaks_stores_and_finishes(app, client, world, backend):
    if backend == "postgresql-app":
        with app.app_context():
            bypass = db.session.scalar(
                text("SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user")
            )
        assert bypass is False, "the job must run as the RLS-bound web role"
    login(client, world.acme.owner)

    response = generate(client, world.acme)

    generation = only_generation(app, world.acme)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/o/acme/generations/{generation.id}")
    assert generation.status is SUCCEEDED
    assert generation.error is None
    assert generation.attempts == 1
    assert generation.finished_at is not None and generation.started_at is not None
    assert generation.finished_at >= generation.started_at
    assert generation.engine and "espeak" in generation.engine
    assert generation.duration_ms and generation.duration_ms > 0
    assert isinstance(generation.peaks, list) and len(generation.peaks) == PEAK_COUNT
    assert all(0 <= p <= 100 for p in generation.peaks) and max(generation.peaks) > 0
    assert generation.audio_key.startswith(f"generations/orgs/{world.acme.org_id}/{generation.id}.")
    assert stored_generation_keys(app) == [generation.audio_key]
    with app.app_context():
        stored = b"".join(get_storage().open_range(generation.audio_key))
    assert len(stored) == generation.audio_size
    assert hashlib.sha256(stored).hexdigest() == generation.audio_sha256

    audio = client.get(f"/o/acme/generations/{generation.id}/audio")
    assert audio.status_code == 200
    assert audio.mimetype == "audio/wav"
    assert audio.data == stored
    assert audio.data[:4] == b"RIFF"


def test_htmx_generate_answers_with_the_generator_and_a_trigger(app, client, world):
    login(client, world.acme.owner)

    response = generate(client, world.acme, **{"HX-Request": "true"})

    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "generation-queued"
    assert "HX-Request" in response.headers["Vary"]
    assert "<html" not in response.get_data(as_text=True)
    assert only_generation(app, world.acme).status is SUCCEEDED


def test_the_speech_service_gets_the_text_voice_key_and_parameters(
    app, client, world, speech_service
):
    login(client, world.acme.owner)

    generate(client, world.acme)

    generation = only_generation(app, world.acme)
    assert generation.status is SUCCEEDED
    assert generation.engine == f"chatterbox {speech_service.url.removeprefix('http://')}"
    (request,) = speech_service.requests
    assert request.headers["x-api-key"] == API_KEY
    assert request.json == {
        "prompt": TEXT,
        "voice_key": custom_voice_key(world.acme.org_id, world.acme.voice_id),
        "temperature": 0.8,
        "top_p": 0.95,
        "top_k": 1000,
        "repetition_penalty": 1.2,
        "norm_loudness": True,
    }


# ------------------------------------------------------------------------ engine failures


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_engine_outage_is_retried_then_fails(app, client, world, speech_service, caplog):
    app.config["JOB_MAX_RETRIES"] = 3
    speech_service.script(["503"] * 10)
    login(client, world.acme.owner)

    with caplog.at_level("WARNING", logger="dashboard.generations.jobs"):
        generate(client, world.acme)

    generation = only_generation(app, world.acme)
    assert generation.status is FAILED
    assert generation.attempts == 4
    assert len(speech_service.requests) == 4
    # Members read a plain sentence; the service's address and answer go to the log.
    assert generation.error == (
        "The speech service is unavailable right now. (gave up after 4 attempts)"
    )
    assert f"The speech service at {speech_service.url} answered 503" in caplog.text
    assert generation.finished_at is not None
    assert generation.audio_key is None
    assert stored_generation_keys(app) == []


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_engine_that_recovers_succeeds_on_the_third_attempt(app, client, world, speech_service):
    app.config["JOB_MAX_RETRIES"] = 3
    speech_service.script(["503", "503"])
    login(client, world.acme.owner)

    generate(client, world.acme)

    generation = only_generation(app, world.acme)
    assert generation.status is SUCCEEDED
    assert generation.attempts == 3
    assert len(speech_service.requests) == 3
    assert generation.error is None  # the retry notes are gone once it succeeds
    assert stored_generation_keys(app) == [generation.audio_key]


def test_refused_request_fails_after_one_attempt(app, client, world, caplog):
    """A 4xx can't be fixed by trying again; the engine here is built from the settings."""
    with tts_server(api_key=API_KEY) as server:
        app.config.update(TTS_ENGINE="chatterbox", TTS_URL=server.url, TTS_API_KEY=API_KEY)
        server.script(["422:Text is too long for this voice"])
        login(client, world.acme.owner)
        try:
            with caplog.at_level("WARNING", logger="dashboard.generations.jobs"):
                generate(client, world.acme)
        finally:
            close_engine(app)
        assert len(server.requests) == 1
        assert server.url.removeprefix("http://") not in only_generation(app, world.acme).error

    generation = only_generation(app, world.acme)
    assert generation.status is FAILED
    assert generation.attempts == 1
    assert generation.error == "The speech service refused to speak this (HTTP 422)."
    assert "Text is too long for this voice" in caplog.text  # the service's words: the log
    assert "gave up" not in generation.error
    assert stored_generation_keys(app) == []
    # Submitting charged it; failing for good refunded it in the same transaction.
    with app.app_context(), operator_access("test check"):
        lines = db.session.execute(
            select(UsageEntry.kind, UsageEntry.characters).where(
                UsageEntry.generation_id == generation.id
            )
        ).all()
    count = generation.character_count
    assert sorted(lines) == [(UsageKind.CHARGE, count), (UsageKind.REFUND, -count)]


# ------------------------------------------------------------------------ storage failures


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_storage_failure_is_retried_then_fails(app, client, world, tmp_path, caplog):
    not_a_folder = tmp_path / "objects-is-a-file"
    not_a_folder.write_text("storage can't put anything under a file")
    app.config.update(STORAGE_LOCAL_ROOT=str(not_a_folder), JOB_MAX_RETRIES=2)
    app.extensions["voxboard.storage"] = None
    login(client, world.acme.owner)

    with caplog.at_level("WARNING", logger="dashboard.generations.jobs"):
        generate(client, world.acme)

    generation = only_generation(app, world.acme)
    assert generation.status is FAILED
    assert generation.attempts == 3
    assert generation.error.startswith(f"{STORAGE_FAILURE} ")
    assert "is not a usable folder" not in generation.error
    assert "is not a usable folder" in caplog.text
    assert generation.error.endswith("(gave up after 3 attempts)")
    assert generation.audio_key is None
    assert not_a_folder.read_text().startswith("storage can't")


def test_a_retry_note_reads_as_sentences(app, world, queue, tmp_path):
    """The note shown while a job waits to retry ends each sentence, whatever the error."""
    not_a_folder = tmp_path / "objects-is-a-file"
    not_a_folder.write_text("")
    app.config.update(STORAGE_LOCAL_ROOT=str(not_a_folder))
    app.extensions["voxboard.storage"] = None
    generation_id = add_generation(app, world.acme)
    with app.app_context():
        assert enqueue_generation(generation_id, world.acme.org_id)

    queue.execute(queue.dequeue())

    generation = load(app, generation_id)
    assert generation.status is QUEUED
    assert generation.error == f"Attempt 1 failed: {STORAGE_FAILURE} Trying again."
    assert queue.pending_count() == 1  # huey holds the retry


def test_unreachable_object_storage_fails_with_the_storage_message(
    app, client, world, storage_down, caplog
):
    app.config["JOB_MAX_RETRIES"] = 1
    login(client, world.acme.owner)

    with caplog.at_level("WARNING", logger="dashboard.generations.jobs"):
        generate(client, world.acme)

    generation = only_generation(app, world.acme)
    assert generation.status is FAILED
    assert generation.attempts == 2
    assert generation.error == f"{STORAGE_FAILURE} (gave up after 2 attempts)"
    # Endpoint, bucket and object key (with the org's id) are operators' business.
    for internal in (storage_down.removeprefix("http://"), "'voices'", str(world.acme.org_id)):
        assert internal not in generation.error
    assert storage_down.removeprefix("http://") in caplog.text
    assert generation.audio_key is None and generation.audio_sha256 is None


# ------------------------------------------------------------------------ races


def run_in_thread(app: Flask, generation_id: uuid.UUID, tenant: Tenant):
    """Start `run_generation` in a thread of its own; return (thread, outcomes list)."""
    outcomes: list[Any] = []

    def target() -> None:
        outcomes.append(run(app, generation_id, tenant))

    thread = threading.Thread(target=target, name="speech-job")
    thread.start()
    return thread, outcomes


def wait_for_requests(server: TTSServer, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.requests) < count:
        assert time.monotonic() < deadline, f"the engine sent {len(server.requests)} requests"
        time.sleep(0.01)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_row_deleted_while_speaking_leaves_no_object(app, world, speech_service):
    generation_id = add_generation(app, world.acme)
    gate = speech_service.hold()  # the engine answers only once the row is gone

    thread, outcomes = run_in_thread(app, generation_id, world.acme)
    try:
        wait_for_requests(speech_service, 1)  # claimed, and speaking now
        assert load(app, generation_id).status is RUNNING
        with app.app_context(), tenancy.org_scope(world.acme.org_id):
            db.session.execute(delete(Generation).where(Generation.id == generation_id))
            db.session.commit()
    finally:
        gate.set()
        thread.join(timeout=30)
    assert not thread.is_alive()

    assert [o.status for o in outcomes] == ["skipped"]
    assert stored_generation_keys(app) == []


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_stale_run_cannot_finish_the_row_or_leave_an_object(app, world, speech_service):
    """The reaper hands a slow run's row to a new run; the slow one finishing loses."""
    generation_id = add_generation(app, world.acme)
    gate = speech_service.hold()  # the first run speaks until the second has finished

    thread, outcomes = run_in_thread(app, generation_id, world.acme)
    try:
        wait_for_requests(speech_service, 1)
        speech_service.stop_holding()  # the first request stays held; the next is quick
        with app.app_context(), tenancy.all_tenants("test: the reaper spans orgs"):
            report = reap_stuck(db.session, dt.timedelta(0), max_retries=3)
        assert report.requeued == [generation_id]
        with app.app_context():
            for gid, org_id in report.to_enqueue:
                enqueue_generation(gid, org_id)  # immediate: the second run finishes now
        assert load(app, generation_id).status is SUCCEEDED
    finally:
        gate.set()
        thread.join(timeout=30)
    assert not thread.is_alive()

    assert [o.status for o in outcomes] == ["skipped"]
    generation = load(app, generation_id)
    assert generation.status is SUCCEEDED
    assert generation.attempts == 2
    assert len(speech_service.requests) == 2
    assert stored_generation_keys(app) == [generation.audio_key]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_duplicate_message_runs_once(app, world, queue):
    generation_id = add_generation(app, world.acme)
    with app.app_context():
        assert enqueue_generation(generation_id, world.acme.org_id)
        assert enqueue_generation(generation_id, world.acme.org_id)
    assert queue.pending_count() == 2

    for _ in range(2):
        queue.execute(queue.dequeue())

    assert queue.pending_count() == 0 and queue.scheduled_count() == 0
    generation = load(app, generation_id)
    assert generation.status is SUCCEEDED
    assert generation.attempts == 1
    assert stored_generation_keys(app) == [generation.audio_key]


def test_a_second_run_of_a_finished_row_is_skipped(app, world):
    generation_id = add_generation(app, world.acme)

    first = run(app, generation_id, world.acme)
    second = run(app, generation_id, world.acme)

    assert (first.status, second.status) == ("succeeded", "skipped")
    assert load(app, generation_id).attempts == 1


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_voice_deleted_before_the_job_ran_fails_it(app, world):
    generation_id = add_generation(app, world.acme)
    with app.app_context(), tenancy.org_scope(world.acme.org_id):
        db.session.execute(delete(Voice).where(Voice.id == world.acme.voice_id))
        db.session.commit()

    outcome = run(app, generation_id, world.acme)

    generation = load(app, generation_id)
    assert outcome.status == "failed"
    assert generation.status is FAILED
    assert generation.attempts == 1
    assert generation.error == (
        "The voice “Acme Narrator” was deleted before this could be spoken. "
        "Choose another voice and generate again."
    )
    assert stored_generation_keys(app) == []


def test_a_job_for_another_org_finds_nothing(app, world):
    """The job runs in the org it was given: a wrong org can't claim the row."""
    generation_id = add_generation(app, world.acme)

    outcome = run(app, generation_id, world.globex)

    assert outcome.status == "skipped"
    assert load(app, generation_id).status is QUEUED


# ------------------------------------------------------------------------ reaper


def stuck_rows(app: Flask, world: World) -> dict[str, uuid.UUID]:
    """Rows in every state the reaper distinguishes, in both orgs."""
    old = utcnow() - LONG_AGO
    return {
        "running": add_generation(
            app, world.acme, status=RUNNING, attempts=1, started_at=old, updated_at=old
        ),
        "exhausted": add_generation(
            app, world.acme, status=RUNNING, attempts=4, started_at=old, updated_at=old
        ),
        "queued": add_generation(app, world.acme, status=QUEUED, updated_at=old),
        "other_org": add_generation(
            app, world.globex, status=RUNNING, attempts=1, started_at=old, updated_at=old
        ),
        "fresh_running": add_generation(
            app, world.acme, status=RUNNING, attempts=1, started_at=utcnow()
        ),
        "fresh_queued": add_generation(app, world.acme, status=QUEUED),
    }


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_reaper_rescues_stuck_rows_of_every_org(app, world):
    app.config.update(JOB_MAX_RETRIES=3, JOB_RUNNING_TIMEOUT_SECONDS=600)
    rows = stuck_rows(app, world)
    fresh = {name: load(app, rows[name]) for name in ("fresh_running", "fresh_queued")}

    with app.app_context():
        report = reap_from_worker()  # as the worker's periodic task does; immediate mode

    assert sorted(report.requeued) == sorted([rows["running"], rows["other_org"]])
    assert report.failed == [rows["exhausted"]]
    assert report.reenqueued == [rows["queued"]]
    assert report.summary() == (
        "2 stuck running returned to the queue, 1 failed, 1 queued re-enqueued"
    )
    for name, attempts in (("running", 2), ("other_org", 2), ("queued", 1)):
        generation = load(app, rows[name])
        assert (name, generation.status, generation.attempts) == (name, SUCCEEDED, attempts)
        assert generation.error is None
    # Each re-enqueued job ran in its own org: the object sits under that org's prefix.
    other = load(app, rows["other_org"])
    assert other.audio_key.startswith(f"generations/orgs/{world.globex.org_id}/{other.id}.")
    exhausted = load(app, rows["exhausted"])
    assert exhausted.status is FAILED
    assert exhausted.error == f"{WORKER_LOST} (gave up after 4 attempts)."
    assert exhausted.finished_at is not None
    for name, before in fresh.items():
        after = load(app, rows[name])
        assert (after.status, after.attempts, after.updated_at) == (
            before.status,
            before.attempts,
            before.updated_at,
        ), name
    assert len(stored_generation_keys(app)) == 3
    with app.app_context():
        if operator := app.extensions.get("voxboard.operator_engine"):
            operator.dispose()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_reaper_says_what_it_would_return_before_the_jobs_run(app, world, queue):
    """With a real queue: stuck rows go back to queued and get one message each."""
    rows = stuck_rows(app, world)

    with app.app_context(), tenancy.all_tenants("test: the reaper spans orgs"):
        report = reap_stuck(db.session, dt.timedelta(minutes=10), max_retries=3)
    with app.app_context():
        for generation_id, org_id in report.to_enqueue:
            assert enqueue_generation(generation_id, org_id)

    assert queue.pending_count() == 3
    running = load(app, rows["running"])
    assert running.status is QUEUED and running.attempts == 1
    assert running.error == f"Attempt 1 did not finish: {WORKER_LOST}. Trying again."
    assert load(app, rows["queued"]).status is QUEUED
    assert load(app, rows["fresh_running"]).status is RUNNING
    while queue.pending_count():
        queue.execute(queue.dequeue())
    assert [load(app, rows[n]).status for n in ("running", "queued", "other_org")] == [
        SUCCEEDED
    ] * 3
    assert load(app, rows["fresh_queued"]).status is QUEUED  # no message was sent for it


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_reap_command_prints_the_summary_and_the_jobs_run(app, runner, world):
    app.config["JOB_MAX_RETRIES"] = 3
    running = add_generation(app, world.acme, status=RUNNING, attempts=1, started_at=utcnow())
    queued = add_generation(app, world.globex, status=QUEUED)

    result = runner.invoke(args=["generations", "reap", "--older-than", "0"])

    assert result.exit_code == 0, result.output
    assert result.output == (
        "Reaped jobs unfinished for over 0 s: 1 stuck running returned to the queue, "
        "0 failed, 1 queued re-enqueued.\n"
    )
    assert (load(app, running).status, load(app, running).attempts) == (SUCCEEDED, 2)
    assert (load(app, queued).status, load(app, queued).attempts) == (SUCCEEDED, 1)
    assert load(app, queued).audio_key.startswith(f"generations/orgs/{world.globex.org_id}/")


def test_reap_command_fails_when_the_queue_refuses_the_jobs(app, runner, world, tmp_path):
    """An operator (or cron) must learn that nothing was enqueued; the rows stay queued."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    app.config.update(JOBS_IMMEDIATE=False, JOBS_URL=f"sqlite:///{blocker}/jobs.db")
    queued = add_generation(app, world.acme)

    result = runner.invoke(args=["generations", "reap", "--older-than", "0"])

    assert result.exit_code == 1
    assert result.output.startswith(
        "Reaped jobs unfinished for over 0 s: 0 stuck running returned to the queue, "
        "0 failed, 1 queued re-enqueued.\n"
    )
    assert f"Error: could not enqueue 1 of 1 jobs on sqlite:///{blocker}/jobs.db" in result.output
    assert "the next reap tries again" in result.output
    assert load(app, queued).status is QUEUED


def test_reap_command_with_the_default_timeout_leaves_fresh_rows(app, runner, world):
    app.config["JOB_RUNNING_TIMEOUT_SECONDS"] = 600
    running = add_generation(app, world.acme, status=RUNNING, attempts=1, started_at=utcnow())

    result = runner.invoke(args=["generations", "reap"])

    assert result.exit_code == 0, result.output
    assert result.output == (
        "Reaped jobs unfinished for over 600 s: 0 stuck running returned to the queue, "
        "0 failed, 0 queued re-enqueued.\n"
    )
    assert load(app, running).status is RUNNING


# ------------------------------------------------------------------------ retry route


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_retry_queues_a_failed_generation_which_then_succeeds(app, client, world, queue):
    generation_id = add_generation(
        app, world.acme, status=FAILED, attempts=4, error="Gave up.", finished_at=utcnow()
    )
    login(client, world.acme.owner)

    response = client.post(f"/o/acme/generations/{generation_id}/retry")

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/o/acme/generations/{generation_id}")
    queued = load(app, generation_id)
    assert (queued.status, queued.attempts, queued.error) == (QUEUED, 0, None)
    assert queued.finished_at is None
    assert queue.pending_count() == 1
    queue.execute(queue.dequeue())
    done = load(app, generation_id)
    assert (done.status, done.attempts, done.error) == (SUCCEEDED, 1, None)
    assert stored_generation_keys(app) == [done.audio_key]


def test_htmx_retry_answers_with_the_status_widget(app, client, world):
    generation_id = add_generation(app, world.acme, status=FAILED, attempts=1, error="No.")
    login(client, world.acme.owner)

    response = client.post(
        f"/o/acme/generations/{generation_id}/retry", headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "<html" not in response.get_data(as_text=True)
    assert load(app, generation_id).status is SUCCEEDED


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_retry_of_a_generation_that_did_not_fail_is_409(app, client, world):
    generation_id = add_generation(app, world.acme)
    run(app, generation_id, world.acme)
    login(client, world.acme.owner)

    response = client.post(f"/o/acme/generations/{generation_id}/retry")

    assert response.status_code == 409
    assert "this one is succeeded" in response.get_data(as_text=True)
    assert load(app, generation_id).attempts == 1


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_retry_of_another_orgs_generation_is_404(app, client, world):
    generation_id = add_generation(app, world.globex, status=FAILED, attempts=1, error="No.")
    login(client, world.acme.owner)

    assert client.post(f"/o/acme/generations/{generation_id}/retry").status_code == 404
    assert client.post(f"/o/globex/generations/{generation_id}/retry").status_code == 404
    assert load(app, generation_id).status is FAILED


def test_immediate_mode_retries_in_process_and_ends_failed(app, client, world, tmp_path):
    """JOBS_IMMEDIATE has no scheduler: a delayed retry would leave the row "queued"."""
    not_a_folder = tmp_path / "objects-is-a-file"
    not_a_folder.write_text("")
    app.config.update(
        STORAGE_LOCAL_ROOT=str(not_a_folder), JOB_MAX_RETRIES=2, JOB_RETRY_DELAY_SECONDS=5
    )
    app.extensions["voxboard.storage"] = None
    login(client, world.acme.owner)

    generate(client, world.acme)

    generation = only_generation(app, world.acme)
    assert generation.status is FAILED
    assert generation.attempts == 3
    assert "Trying again" not in generation.error
