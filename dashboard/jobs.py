"""Background jobs on huey: where the queue lives, and the tasks workers run.

The queue is chosen by `JOBS_URL`: a SQLite file under `instance/` by default (one
machine), `redis://…` or `postgresql://…` so workers can run on other machines.
`JOBS_IMMEDIATE` (tests) runs each task inside `enqueue`, in-process, on memory.

The huey instance is built on first use, never in the factory (SqliteHuey creates its
file, Redis/PostgreSQL storage connect), and once per app: tasks are registered on it
with the app captured, so a worker thread pushes that app's context itself.

The generation row is the source of truth, not the queue: a task only carries ids, a
lost or duplicated message is harmless (`generations.jobs` claims a row with a
conditional UPDATE), and the reaper re-enqueues rows whose job went missing.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from huey import Huey, MemoryHuey, PostgresHuey, RedisHuey, SqliteHuey, crontab
from huey.exceptions import RetryTask

from dashboard.config import ConfigError

log = logging.getLogger(__name__)

EXTENSION_KEY = "voxboard.jobs"
QUEUE_NAME = "voxboard"


def init_app(app: Flask) -> None:
    """Reserve the app's queue slot; the queue itself is built by `get_huey`."""
    app.extensions.setdefault(EXTENSION_KEY, None)


def huey_from_config(config: Mapping[str, Any]) -> Huey:
    """Build the huey instance `JOBS_URL` names (results off: the row holds outcomes)."""
    if config.get("JOBS_IMMEDIATE"):
        return MemoryHuey(QUEUE_NAME, immediate=True, results=False, utc=True)
    url = str(config.get("JOBS_URL") or "")
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative/jobs.db or sqlite:////absolute/jobs.db, as for DATABASE_URL.
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise ConfigError("JOBS_URL must name a SQLite file: sqlite:////abs/path/jobs.db")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return SqliteHuey(QUEUE_NAME, filename=path, results=False, utc=True)
    if scheme in {"redis", "rediss", "unix"}:
        return RedisHuey(QUEUE_NAME, url=url, results=False, utc=True)
    if scheme.startswith("postgres"):
        # huey talks libpq itself (psycopg 3): drop SQLAlchemy's "+psycopg" driver suffix.
        dsn = "postgresql://" + url.split("://", 1)[1]
        return PostgresHuey(QUEUE_NAME, dsn=dsn, results=False, utc=True)
    raise ConfigError(
        f"JOBS_URL {url!r} is not a queue Voxboard knows: use sqlite:///path, "
        "redis://host:6379/0 or postgresql://user@host/db."
    )


def get_huey(app: Flask | None = None) -> Huey:
    """Return the app's queue with Voxboard's tasks registered on it (built once)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    huey = app.extensions.get(EXTENSION_KEY)
    if huey is None:
        huey = huey_from_config(app.config)
        register_tasks(huey, app)
        app.extensions[EXTENSION_KEY] = huey
    return huey


def register_tasks(huey: Huey, app: Flask) -> None:
    """Register the speech task and the periodic ones (reaper, snapshot, sessions) for `app`."""
    from dashboard import login_sessions
    from dashboard.analytics import snapshots as analytics_snapshots
    from dashboard.generations import jobs as generation_jobs

    @huey.task(name="speak")
    def speak(generation_id: str, org_id: str) -> None:
        with app.app_context():
            outcome = generation_jobs.run_generation(uuid.UUID(generation_id), uuid.UUID(org_id))
        if outcome.retry_in is not None:
            # delay=None retries right away: huey re-enqueues instead of scheduling,
            # which immediate mode (tests with no delay) runs at once too.
            raise RetryTask(delay=outcome.retry_in or None)

    @huey.periodic_task(crontab(minute="*"), name="reap")
    def reap() -> None:
        with app.app_context():
            report = generation_jobs.reap_from_worker()
        if report.changed:
            log.warning("reaper: %s", report.summary())

    # Yesterday's analytics for every org, shortly after midnight UTC (huey runs in UTC).
    @huey.periodic_task(crontab(hour="0", minute="15"), name="snapshot")
    def snapshot() -> None:
        with app.app_context():
            analytics_snapshots.snapshot_from_worker()

    # Login sessions past their idle timeout or lifetime act for nobody; drop their rows.
    @huey.periodic_task(crontab(minute="37"), name="purge-sessions")
    def purge_sessions() -> None:
        with app.app_context():
            removed = login_sessions.purge_from_worker()
        if removed:
            log.info("purged %d expired login session(s)", removed)

    huey.voxboard_speak = speak  # type: ignore[attr-defined]


def enqueue_generation(generation_id: uuid.UUID, org_id: uuid.UUID) -> bool:
    """Queue the speech job for a committed generation; False if the queue refused.

    Call after the commit: a worker must find the row. When the queue is down the row
    stays `queued` and the reaper enqueues it again later, so nothing is lost.
    """
    try:
        get_huey().voxboard_speak(str(generation_id), str(org_id))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001  (any broker failure: the reaper retries it)
        log.exception("could not enqueue generation %s; the reaper will retry", generation_id)
        return False
    return True
