"""Liveness and readiness probes for load balancers and orchestrators.

`/healthz` checks nothing: it answers while the process serves requests. `/readyz`
proves the app can do its work: one statement on the database, and a small probe
object written, read back and deleted under each prefix the app writes (`voices/`,
`generations/`), so a prefix that became unwritable (a file where a folder should be,
a bucket policy that denies one prefix) fails readiness, not the next upload.

The storage probe is bounded twice: the backend is asked with readiness's own short
timeouts and no retries (`Storage.for_probe`), and the whole probe runs in a helper
thread that readiness waits on for at most `STORAGE_READY_TIMEOUT` seconds. Its result
is kept for `READY_CACHE_SECONDS`, and concurrent checks share one probe, so a load
balancer polling every second costs one probe per few seconds per process.

Both answer over plain HTTP even with `FORCE_HTTPS` on: a load balancer's health check
talks to the process directly, before TLS.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from dataclasses import dataclass

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text

from dashboard.database import describe_database_error
from dashboard.extensions import db, talisman
from dashboard.storage import Storage, StorageError, get_storage, probe_key
from dashboard.storage.keys import TOP_LEVEL_FOLDERS

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

READY_CACHE_SECONDS = 5.0
_STATE_KEY = "voxboard.readiness"


@bp.get("/healthz")
@talisman(force_https=False)
def healthz():
    """Answer 200 while the process can serve requests; checks nothing else on purpose."""
    return jsonify(status="ok")


@bp.get("/readyz")
@talisman(force_https=False)
def readyz():
    """Answer 200 when the database and storage work, else 503 naming what failed."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        db.session.rollback()
        checks["database"] = describe_database_error(exc, str(db.engine.url))
    checks["storage"] = storage_readiness(current_app._get_current_object())  # type: ignore[attr-defined]
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503


def probe_storage(storage: Storage) -> None:
    """Write, read back and delete a small object under each prefix; raise StorageError."""
    payload = uuid.uuid4().bytes
    for folder in TOP_LEVEL_FOLDERS:
        key = probe_key(folder)
        storage.put(key, io.BytesIO(payload), content_type="application/octet-stream")
        try:
            with storage.open_range(key) as chunks:  # type: ignore[attr-defined]
                data = b"".join(chunks)
            if data != payload:
                raise StorageError(f"the probe object under {folder}/ read back different bytes")
        finally:
            storage.delete(key)


@dataclass(slots=True)
class _Readiness:
    """One process's latest storage verdict and the probe in flight, if any."""

    lock: threading.Lock
    storage: Storage | None = None  # the backend the verdict is about
    verdict: str | None = None
    checked_at: float = 0.0
    running: threading.Event | None = None


def storage_readiness(app: Flask) -> str:
    """Return "ok" or why storage isn't usable, probing at most every few seconds."""
    state: _Readiness = app.extensions.setdefault(_STATE_KEY, _Readiness(threading.Lock()))
    deadline = float(app.config.get("STORAGE_READY_TIMEOUT", 2.0))
    storage = get_storage()
    with state.lock:
        if state.storage is not storage:  # reconfigured (tests do): forget the old verdict
            state.storage, state.verdict = storage, None
        fresh = state.verdict is not None and time.monotonic() - state.checked_at < (
            READY_CACHE_SECONDS
        )
        if fresh:
            return state.verdict  # type: ignore[return-value]
        done = state.running
        if done is None:
            done = state.running = threading.Event()
            threading.Thread(
                target=_run_probe,
                args=(state, storage.for_probe(deadline), done),
                name="readiness-probe",
                daemon=True,
            ).start()
    if not done.wait(deadline):
        # The probe goes on in its thread (its own timeouts end it); readiness doesn't wait.
        return f"storage did not answer within {deadline:g} s"
    with state.lock:
        return state.verdict or "storage probe gave no answer"


def _run_probe(state: _Readiness, storage: Storage, done: threading.Event) -> None:
    try:
        probe_storage(storage)
        verdict = "ok"
    except StorageError as exc:
        verdict = str(exc)
    except Exception as exc:  # noqa: BLE001  (readiness must answer, whatever broke)
        log.exception("storage readiness probe failed unexpectedly")
        verdict = f"storage probe failed: {type(exc).__name__}"
    with state.lock:
        state.verdict, state.checked_at, state.running = verdict, time.monotonic(), None
    done.set()
