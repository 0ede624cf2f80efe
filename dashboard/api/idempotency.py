"""`Idempotency-Key` on `POST /api/v1/generations`: a retried request gets the first result.

A key is remembered for RETENTION with the request's fingerprint (SHA-256 of the
method, the path and the body as canonical JSON, so whitespace and field order don't
matter) and the generation it created, in the same transaction as that generation.
The same key again within RETENTION: the same body answers with that generation (as
it is now), another body is refused (422). After RETENTION the key is free again.
Two identical requests racing each other: one commits, the other's insert hits the
unique constraint and answers 409, and its retry gets the first one's generation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from typing import Any

from flask import Flask
from huey import Huey, crontab
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, scoped_session

from dashboard.extensions import db
from dashboard.models import ApiKey, IdempotentRequest, utcnow
from dashboard.tenancy.operator import worker_session

log = logging.getLogger(__name__)
AnySession = Session | scoped_session[Session]
RETENTION = dt.timedelta(hours=24)


def fingerprint(method: str, path: str, body: Any) -> str:
    """Return the request's fingerprint."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def recall(
    key: ApiKey, idempotency_key: str, now: dt.datetime | None = None
) -> IdempotentRequest | None:
    """Return what `idempotency_key` was used for within RETENTION, or None.

    A use older than that (the hourly purge hasn't removed it yet) is deleted here,
    making room for the new one: one statement in the usual case, two only then.
    """
    found = db.session.scalars(
        select(IdempotentRequest).where(
            IdempotentRequest.api_key_id == key.id,
            IdempotentRequest.key == idempotency_key,
        )
    ).one_or_none()
    if found is None or found.created_at >= (now or utcnow()) - RETENTION:
        return found
    db.session.execute(
        delete(IdempotentRequest)
        .where(IdempotentRequest.id == found.id)
        .execution_options(synchronize_session=False)
    )
    db.session.expunge(found)
    return None


def remember(
    key: ApiKey, idempotency_key: str, request_fingerprint: str, generation_id: uuid.UUID
) -> None:
    """Remember the key's use (flush); `recall` has made room if an old use was there."""
    db.session.add(
        IdempotentRequest(
            org_id=key.org_id,
            api_key_id=key.id,
            key=idempotency_key,
            fingerprint=request_fingerprint,
            generation_id=generation_id,
        )
    )
    db.session.flush()


def purge_expired(session: AnySession, now: dt.datetime | None = None) -> int:
    """Delete uses older than RETENTION in every org (`session` spans organisations)."""
    result = session.execute(
        delete(IdempotentRequest)
        .where(IdempotentRequest.created_at < (now or utcnow()) - RETENTION)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def register_tasks(huey: Huey, app: Flask) -> None:
    """Purge expired Idempotency-Key uses every hour, in every organisation."""

    @huey.periodic_task(crontab(minute="41"), name="purge-idempotency-keys")
    def purge_idempotency_keys() -> None:
        with app.app_context():
            with worker_session("expired idempotency keys of every organisation") as session:
                removed = purge_expired(session)
        if removed:
            log.info("purged %d expired idempotency key(s)", removed)
