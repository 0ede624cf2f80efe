"""The background queue on huey: where it lives and how it is built.

The queue is chosen by `JOBS_URL`: a SQLite file under `instance/` by default (one
machine), `redis://…` or `postgresql://…` so workers can run on other machines.
`JOBS_IMMEDIATE` (tests) runs each task inside `enqueue`, in-process, on memory.

The huey instance is built on first use, never in the factory (SqliteHuey creates its
file, Redis/PostgreSQL storage connect), and once per app: tasks are registered on it
with the app captured, so a worker thread pushes that app's context itself. The
queue knows no task: each area that has one (`generations.jobs`, `analytics.snapshots`,
`auth.login_sessions`) exports `register_tasks(huey, app)`, and the app factory hands
those to `init_app`.

The generation row is the source of truth, not the queue: a task only carries ids, a
lost or duplicated message is harmless (`generations.jobs` claims a row with a
conditional UPDATE), and the reaper re-enqueues rows whose job went missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from huey import Huey, MemoryHuey, PostgresHuey, RedisHuey, SqliteHuey

from dashboard.config import ConfigError

TaskRegistrar = Callable[[Huey, Flask], None]
EXTENSION_KEY = "voxboard.jobs"
TASKS_KEY = "voxboard.jobs.tasks"
QUEUE_NAME = "voxboard"


def init_app(app: Flask, tasks: Sequence[TaskRegistrar] = ()) -> None:
    """Reserve the app's queue slot and keep who registers tasks; `get_huey` builds it."""
    app.extensions.setdefault(EXTENSION_KEY, None)
    app.extensions[TASKS_KEY] = tuple(tasks)


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
    """Return the app's queue with the areas' tasks registered on it (built once)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    huey = app.extensions.get(EXTENSION_KEY)
    if huey is None:
        huey = huey_from_config(app.config)
        for register in app.extensions.get(TASKS_KEY, ()):
            register(huey, app)
        app.extensions[EXTENSION_KEY] = huey
    return huey
