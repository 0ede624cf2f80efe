"""The job consumer as it runs in production: a separate `flask worker` process.

The test process plays the web app (same database, storage and queue settings, jobs
not immediate) and submits or enqueues; a real worker speaks with eSpeak, or with the
loopback Chatterbox-compatible server when a job has to hang. Queues: a SQLite file,
Redis (127.0.0.1:6379) and PostgreSQL (TEST_DATABASE_URL).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text

from dashboard.extensions import db
from dashboard.generations.jobs import WORKER_LOST, enqueue_generation
from dashboard.models import Generation, GenerationStatus, MemberRole, Organization, Voice
from dashboard.queue import get_huey
from dashboard.storage import custom_voice_key, get_storage
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import pg_url
from tests.http import login
from tests.tts_server import tts_server
from tests.workers import close_queue, process_env, run_flask, running_worker, wait_until

API_KEY = "worker-test-key"
TEXT = "Spoken by a real worker."
# Concurrent test runs on one machine share the Redis server, and the queue name is
# fixed, so each run takes a database of its own (15 is the rate-limit test's).
REDIS_URL = os.environ.get("TEST_REDIS_URL") or f"redis://127.0.0.1:6379/{1 + os.getpid() % 14}"
REDIS_SKIP_REASON = (
    f"Redis queue test skipped: no Redis answers at {REDIS_URL} (start redis-server, or set "
    "TEST_REDIS_URL; .ci/run starts one, and REQUIRE_REDIS=1 turns this skip into a failure)"
)


@dataclass
class World:
    slug: str
    org_id: uuid.UUID
    voice_id: uuid.UUID
    owner: Any  # a detached User


@pytest.fixture
def world(app: Flask) -> World:
    """One org with an owner and a custom voice with reference audio (for Chatterbox)."""
    with app.app_context(), operator_access("test setup"):
        org = factories.make_org(slug="acme", name="Acme")
        owner = factories.make_user(email="owner@acme.example")
        factories.make_membership(owner, org, MemberRole.OWNER)
        voice = factories.make_voice(org, name="Narrator", language="en-US")
        voice.audio_key = custom_voice_key(org.id, voice.id)
        db.session.commit()
        return World(org.slug, org.id, voice.id, factories.detach(owner))


def use_queue(app: Flask, jobs_url: str, **settings: Any) -> Any:
    """Make `app` the web side of a deployment with a real queue at `jobs_url`."""
    app.config.update(
        JOBS_IMMEDIATE=False,
        JOBS_URL=jobs_url,
        JOB_RETRY_DELAY_SECONDS=0.2,
        # The worker's own reaper (every minute) must not race the test's.
        JOB_RUNNING_TIMEOUT_SECONDS=600,
        **settings,
    )
    return get_huey(app)


@pytest.fixture
def sqlite_queue(app: Flask, tmp_path: Path) -> Iterator[Any]:
    huey = use_queue(app, f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        yield huey
    finally:
        close_queue(huey)


def queue_generation(app: Flask, world: World) -> uuid.UUID:
    """Commit a queued generation and enqueue its job, as the generation page does."""
    with app.app_context(), operator_access("test setup"):
        org = db.session.get(Organization, world.org_id)
        generation_id = factories.make_generation(
            org, db.session.get(Voice, world.voice_id), text=TEXT
        ).id
        db.session.commit()
    with app.app_context():
        assert enqueue_generation(generation_id, world.org_id)
    return generation_id


def load(app: Flask, generation_id: uuid.UUID) -> Generation:
    """Read the row fresh (the worker changes it from another process)."""
    with app.app_context(), operator_access("test reads the row"):
        row = db.session.scalars(select(Generation).where(Generation.id == generation_id)).one()
        return factories.detach(row)


def status_is(app: Flask, generation_id: uuid.UUID, status: GenerationStatus):
    return lambda: load(app, generation_id).status is status


def stored_keys(app: Flask) -> list[str]:
    with app.app_context():
        return sorted(get_storage().list_keys())


def assert_no_errors(worker: Any) -> None:
    """Nothing went wrong in the worker that the row wouldn't show (its reaper, huey)."""
    log = worker.output()
    assert "Traceback" not in log and "ERROR" not in log, log


def speech_jobs(huey: Any) -> list[str]:
    """The generation ids of the speech messages waiting in the queue.

    A starting worker enqueues its periodic reaper too, so the queue's length alone
    doesn't say how many speech jobs wait.
    """
    tasks = (huey.deserialize_task(data) for data in huey.storage.enqueued_items())
    return [task.args[0] for task in tasks if task.name == "speak"]


def assert_stored(app: Flask, generation: Generation) -> None:
    """The row's object exists, and is exactly what the row says."""
    with app.app_context():
        data = b"".join(get_storage().open_range(generation.audio_key))
    assert data[:4] == b"RIFF"
    assert len(data) == generation.audio_size
    assert hashlib.sha256(data).hexdigest() == generation.audio_sha256


# ------------------------------------------------------------------------ SQLite queue


def test_worker_speaks_what_the_web_app_queued(app, client, world, sqlite_queue, tmp_path):
    login(client, world.owner)
    response = client.post(
        "/o/acme/generate/",
        data={"text": TEXT, "voice": str(world.voice_id), "temperature": "0.8"},
    )
    assert response.status_code == 303
    generation_id = uuid.UUID(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    assert load(app, generation_id).status is GenerationStatus.QUEUED
    assert speech_jobs(sqlite_queue) == [str(generation_id)]

    with running_worker(process_env(app), tmp_path / "worker.log") as worker:
        wait_until(status_is(app, generation_id, GenerationStatus.SUCCEEDED), "success", worker)
        assert_no_errors(worker)

    assert worker.process.returncode == 0, worker.output()  # SIGTERM stops it cleanly
    generation = load(app, generation_id)
    assert generation.attempts == 1 and generation.error is None
    assert generation.engine and "espeak" in generation.engine
    assert generation.duration_ms > 0 and len(generation.peaks) == 160
    assert_stored(app, generation)
    assert stored_keys(app) == [generation.audio_key]
    assert speech_jobs(sqlite_queue) == []


@pytest.mark.parametrize(
    ("backend", "queue_kind"),
    [
        ("sqlite", "sqlite"),
        # The web role's database and a PostgreSQL queue, as a production deployment.
        pytest.param("postgresql-app", "postgres", marks=pytest.mark.postgres),
    ],
    indirect=["backend"],
)
def test_worker_killed_mid_job_is_reaped_and_a_new_worker_finishes(
    app, world, queue_kind, request, tmp_path
):
    queue = request.getfixturevalue(f"{queue_kind}_queue")
    with tts_server(api_key=API_KEY) as server:
        app.config.update(TTS_ENGINE="chatterbox", TTS_URL=server.url, TTS_API_KEY=API_KEY)
        env = process_env(app)
        generation_id = queue_generation(app, world)
        gate = server.hold()  # the first worker's request hangs: the job stays running

        with running_worker(env, tmp_path / "worker-1.log") as worker:
            wait_until(lambda: server.requests, "the worker asked for speech", worker)
            assert_no_errors(worker)
            worker.kill()
            assert worker.process.returncode == -9
        killed = load(app, generation_id)
        assert (killed.status, killed.attempts) == (GenerationStatus.RUNNING, 1)

        reaped = run_flask(env, "generations", "reap", "--older-than", "0")
        assert reaped.returncode == 0, reaped.stderr
        assert reaped.stdout == (
            "Reaped jobs unfinished for over 0 s: 1 stuck running returned to the queue, "
            "0 failed, 0 queued re-enqueued.\n"
        )
        requeued = load(app, generation_id)
        assert requeued.status is GenerationStatus.QUEUED
        assert requeued.error == f"Attempt 1 did not finish: {WORKER_LOST}. Trying again."
        assert speech_jobs(queue) == [str(generation_id)]

        server.stop_holding()
        gate.set()  # the killed worker's request has no one left to answer
        with running_worker(env, tmp_path / "worker-2.log") as worker:
            wait_until(status_is(app, generation_id, GenerationStatus.SUCCEEDED), "success", worker)
            assert_no_errors(worker)
        assert len(server.requests) == 2

    generation = load(app, generation_id)
    assert generation.attempts == 2 and generation.error is None
    assert generation.engine.startswith("chatterbox ")
    assert_stored(app, generation)
    # The killed run stored nothing: the one object is the finished run's, no temp files.
    assert stored_keys(app) == [generation.audio_key]
    leftovers = [p.name for p in Path(app.config["STORAGE_LOCAL_ROOT"]).rglob(".tmp-*")]
    assert leftovers == []


def test_worker_retries_an_engine_outage_on_its_schedule(app, world, sqlite_queue, tmp_path):
    """RetryTask with a delay goes through huey's schedule in a real consumer."""
    with tts_server(api_key=API_KEY) as server:
        app.config.update(TTS_ENGINE="chatterbox", TTS_URL=server.url, TTS_API_KEY=API_KEY)
        # Three requests per attempt (the engine retries twice itself), then success.
        server.script(["503"] * 3)
        generation_id = queue_generation(app, world)

        with running_worker(process_env(app), tmp_path / "worker.log") as worker:
            wait_until(status_is(app, generation_id, GenerationStatus.SUCCEEDED), "success", worker)
            assert_no_errors(worker)
        assert len(server.requests) == 4

    generation = load(app, generation_id)
    assert generation.attempts == 2 and generation.error is None
    assert stored_keys(app) == [generation.audio_key]


def test_worker_refuses_to_start_in_immediate_mode(app, runner):
    result = runner.invoke(args=["worker"])

    assert result.exit_code == 1
    assert "JOBS_IMMEDIATE is on: jobs run inside requests, no worker" in result.output


# ------------------------------------------------------------------------ Redis queue


def redis_reachable(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture
def redis_queue(app: Flask) -> Iterator[Any]:
    if not redis_reachable(REDIS_URL):
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"REQUIRE_REDIS=1 but {REDIS_SKIP_REASON}", pytrace=False)
        pytest.skip(REDIS_SKIP_REASON)
    huey = use_queue(app, REDIS_URL)
    huey.flush()  # a queue left over from an interrupted run of this database
    try:
        yield huey
    finally:
        huey.flush()
        close_queue(huey)


def test_redis_down_when_queueing_loses_nothing_and_the_reaper_enqueues_it(
    app, client, world, redis_queue, tmp_path
):
    """The broker refuses the message (a real refused connection): the row waits for it."""
    app.extensions["voxboard.jobs"] = None
    down = use_queue(app, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    login(client, world.owner)
    response = client.post(
        f"/o/{world.slug}/generate/", data={"text": TEXT, "voice": str(world.voice_id)}
    )
    close_queue(down)
    assert response.status_code in (302, 303), response.get_data(as_text=True)
    with app.app_context(), operator_access("test reads the row"):
        row = db.session.scalars(select(Generation)).one()
        generation_id = row.id
    assert row.status is GenerationStatus.QUEUED  # kept, not lost with the message
    detail = client.get(f"/o/{world.slug}/generations/{generation_id}")
    assert detail.status_code == 200

    # Redis is back: the reaper (here the CLI, in production the worker's periodic task)
    # finds the row queued past its timeout and enqueues it again.
    app.extensions["voxboard.jobs"] = redis_queue
    app.config["JOBS_URL"] = REDIS_URL
    reaped = run_flask(process_env(app), "generations", "reap", "--older-than", "0")
    assert reaped.returncode == 0, reaped.stderr
    assert "1 queued re-enqueued" in reaped.stdout
    assert speech_jobs(redis_queue) == [str(generation_id)]


def test_worker_on_a_redis_queue(app, world, redis_queue, tmp_path):
    generation_id = queue_generation(app, world)
    assert speech_jobs(redis_queue) == [str(generation_id)]

    with running_worker(process_env(app), tmp_path / "worker.log") as worker:
        wait_until(status_is(app, generation_id, GenerationStatus.SUCCEEDED), "success", worker)
        assert_no_errors(worker)
        assert "redis://127.0.0.1:6379" in worker.output()

    generation = load(app, generation_id)
    assert generation.attempts == 1
    assert_stored(app, generation)
    assert speech_jobs(redis_queue) == []


# ------------------------------------------------------------------------ PostgreSQL queue


@pytest.fixture
def postgres_queue(app: Flask) -> Iterator[Any]:
    """A PostgreSQL queue in a schema of its own (dropped afterwards), as the owner."""
    owner_url = pg_url()
    schema = f"jobs_{uuid.uuid4().hex[:12]}"
    owner = create_engine(owner_url)
    with owner.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in owner_url else "?"
    huey = use_queue(app, f"{owner_url}{separator}options=-csearch_path%3D{schema}")
    try:
        yield huey
    finally:
        close_queue(huey)
        with owner.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        owner.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql-app"], indirect=True)
def test_worker_on_a_postgresql_queue_as_the_web_role(app, world, postgres_queue, tmp_path):
    """The worker connects as the RLS-bound web role; each job runs in its org's scope."""
    generation_id = queue_generation(app, world)
    assert speech_jobs(postgres_queue) == [str(generation_id)]
    with app.app_context():
        bypass = db.session.scalar(
            text("SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user")
        )
    assert bypass is False, "the worker must connect as the RLS-bound web role"
    env = process_env(app)

    with running_worker(env, tmp_path / "worker.log") as worker:
        wait_until(status_is(app, generation_id, GenerationStatus.SUCCEEDED), "success", worker)
        assert_no_errors(worker)

    generation = load(app, generation_id)
    assert generation.attempts == 1
    assert_stored(app, generation)
    assert speech_jobs(postgres_queue) == []
