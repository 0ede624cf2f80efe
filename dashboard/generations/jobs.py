"""What a worker does with a queued generation, and the reaper that rescues stuck ones.

A run, always inside its generation's organisation (`tenancy.org_scope`, so the
application filter and PostgreSQL row-level security both apply to the worker):

1. **Claim**: `UPDATE … SET status='running', attempts=attempts+1 WHERE id=… AND
   status='queued'`, committed. A duplicate or stale message finds nothing to claim.
2. **Speak** with no transaction open (synthesis can take minutes: no lock, no pooled
   connection is held meanwhile), then write the audio under a key unique to this run.
3. **Finish**: one UPDATE to `succeeded` with the key, size, hash, duration, engine and
   waveform peaks, guarded by the claim (same attempt, same `started_at`), committed.
   If it matches nothing (the row was deleted, or the reaper gave it to another run)
   or the commit fails, the object is deleted: no orphan, and never a `succeeded` row
   without its object.

An engine or storage error sends the row back to `queued` with a note and asks huey to
retry after `JOB_RETRY_DELAY_SECONDS × 2^(attempt-1)`, up to `JOB_MAX_RETRIES` times;
then (or at once, for errors the engine says retrying can't fix) it is `failed` with a
message a person understands, and the same transaction refunds its characters in the
usage ledger (`generations.ledger`): a failed generation is free.

The reaper (`flask generations reap`, and a periodic task in every worker) finds rows
left `running` past `JOB_RUNNING_TIMEOUT_SECONDS` (the worker died) or `queued` that
long (their message was lost): running ones go back to the queue while retries remain,
else fail (and are refunded the same way); queued ones are enqueued again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import secrets
import uuid
from dataclasses import dataclass, field

from flask import Flask, current_app
from huey import Huey, crontab
from huey.exceptions import RetryTask
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session, scoped_session

from dashboard import tenancy
from dashboard.audio import InvalidAudio, waveform_peaks
from dashboard.extensions import db
from dashboard.generations import ledger
from dashboard.models import Generation, GenerationStatus, Voice, WebhookEventType, utcnow
from dashboard.queue import get_huey
from dashboard.storage import StorageError, generation_key, get_storage
from dashboard.tenancy.operator import worker_session
from dashboard.tts import EngineError, SynthesisParams, VoiceRef, app_engine
from dashboard.webhooks import delivery as webhook_delivery
from dashboard.webhooks import events as webhook_events
from dashboard.webhooks import payloads as webhook_payloads

log = logging.getLogger(__name__)
GENERATION_SUCCEEDED = WebhookEventType.GENERATION_SUCCEEDED
GENERATION_FAILED = WebhookEventType.GENERATION_FAILED

REAP_BATCH = 500
# What members read; the storage or engine error itself goes to the worker's log (it
# names the endpoint, the bucket and the object key, which are operators' business).
STORAGE_FAILURE = "Storage is unavailable, so the audio could not be saved."
UNREADABLE_AUDIO = "The speech engine sent back audio that could not be read."
WORKER_LOST = "The worker stopped while speaking this (it may have been restarted)"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended; `retry_in` (seconds) is set when the job should run again."""

    status: str  # "succeeded", "failed", "retrying" or "skipped"
    retry_in: float | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """This run's hold on a row: only the holder may finish it."""

    generation_id: uuid.UUID
    attempt: int
    started_at: dt.datetime

    def matches(self):  # type: ignore[no-untyped-def]
        return and_(
            Generation.id == self.generation_id,
            Generation.status == GenerationStatus.RUNNING,
            Generation.attempts == self.attempt,
            Generation.started_at == self.started_at,
        )


def run_generation(generation_id: uuid.UUID, org_id: uuid.UUID) -> Outcome:
    """Claim, speak, store and finish one generation of `org_id` (see the module doc)."""
    with tenancy.org_scope(org_id):
        try:
            return _run(generation_id)
        finally:
            db.session.remove()


def _run(generation_id: uuid.UUID) -> Outcome:
    claim = _claim(generation_id)
    if claim is None:
        return Outcome("skipped")
    generation = tenancy.get_scoped(Generation, generation_id)
    if generation is None:  # deleted between the claim's commit and this read
        db.session.commit()
        return Outcome("skipped")
    voice = tenancy.get_scoped(Voice, generation.voice_id) if generation.voice_id else None
    if voice is None:
        return _finish_failed(
            claim,
            f"The voice “{generation.voice_name}” was deleted before this could be spoken. "
            "Choose another voice and generate again.",
        )
    text, org_id = generation.text, generation.org_id
    ref = VoiceRef(
        name=voice.name,
        language=voice.language,
        variant=voice.variant.value,
        audio_key=voice.audio_key,
    )
    params = SynthesisParams(
        temperature=generation.temperature,
        top_p=generation.top_p,
        top_k=generation.top_k,
        repetition_penalty=generation.repetition_penalty,
    )
    db.session.commit()  # hold no transaction while the engine works

    storage = get_storage()
    try:
        result = app_engine(current_app).synthesize(text, ref, params)
        peaks = waveform_peaks(result.wav)
    except EngineError as exc:
        log.warning("generation %s: speech engine failed: %s", generation_id, exc)
        return _attempt_failed(claim, exc.public_message, retryable=exc.retryable)
    except InvalidAudio as exc:
        log.warning("generation %s: unreadable audio from the engine: %s", generation_id, exc)
        return _attempt_failed(claim, UNREADABLE_AUDIO)
    key = generation_key(org_id, generation_id, secrets.token_hex(6))
    try:
        storage.put(key, io.BytesIO(result.wav), content_type="audio/wav")
    except StorageError as exc:
        log.warning("generation %s: storage failed: %s", generation_id, exc)
        return _attempt_failed(claim, STORAGE_FAILURE)

    try:
        finished = db.session.execute(
            update(Generation)
            .where(claim.matches())
            .values(
                status=GenerationStatus.SUCCEEDED,
                error=None,
                audio_key=key,
                audio_size=len(result.wav),
                audio_sha256=hashlib.sha256(result.wav).hexdigest(),
                duration_ms=result.duration_ms,
                engine=result.engine,
                peaks=peaks,
                finished_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if finished:
            _announce(GENERATION_SUCCEEDED, org_id, generation_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        _discard(storage, key)
        raise
    if not finished:
        # Deleted while we spoke, or the reaper handed it to another run: not ours.
        _discard(storage, key)
        return Outcome("skipped")
    return Outcome("succeeded")


def _claim(generation_id: uuid.UUID) -> Claim | None:
    started_at = utcnow()
    row = db.session.execute(
        update(Generation)
        .where(Generation.id == generation_id, Generation.status == GenerationStatus.QUEUED)
        .values(
            status=GenerationStatus.RUNNING,
            attempts=Generation.attempts + 1,
            started_at=started_at,
            finished_at=None,
        )
        .returning(Generation.attempts)
        .execution_options(synchronize_session=False)
    ).first()
    db.session.commit()
    if row is None:
        return None
    return Claim(generation_id, row[0], started_at)


def _attempt_failed(claim: Claim, message: str, *, retryable: bool = True) -> Outcome:
    """Queue the row for another try while the budget lasts; else fail it."""
    max_retries = int(current_app.config["JOB_MAX_RETRIES"])
    if not retryable or claim.attempt > max_retries:
        return _finish_failed(claim, message, tries=claim.attempt)
    delay = float(current_app.config["JOB_RETRY_DELAY_SECONDS"]) * 2 ** (claim.attempt - 1)
    if current_app.config.get("JOBS_IMMEDIATE"):
        # Immediate mode has no scheduler to wake a delayed retry: the row would sit in
        # "Trying again in 5 s" for ever. Retry in-process at once instead.
        delay = 0.0
    # Storage errors don't end with a full stop; engine errors do.
    sentence = message if message.endswith((".", "!", "?")) else f"{message}."
    note = f"Attempt {claim.attempt} failed: {sentence} Trying again"
    note += f" in {delay:g} s." if delay else "."
    updated = db.session.execute(
        update(Generation)
        .where(claim.matches())
        .values(status=GenerationStatus.QUEUED, error=note)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not updated:
        return Outcome("skipped")
    return Outcome("retrying", retry_in=delay, message=message)


def _finish_failed(claim: Claim, message: str, tries: int | None = None) -> Outcome:
    if tries and tries > 1:
        message = f"{message} (gave up after {tries} attempts)"
    failed = db.session.execute(
        update(Generation)
        .where(claim.matches())
        .values(status=GenerationStatus.FAILED, error=message[:2000], finished_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if failed:
        ledger.refund(db.session, claim.generation_id)
        org_id = tenancy.current_org_id()
        assert org_id is not None  # run_generation's scope
        _announce(GENERATION_FAILED, org_id, claim.generation_id)
    db.session.commit()
    return Outcome("failed", message=message)


def _announce(
    event_type: WebhookEventType,
    org_id: uuid.UUID,
    generation_id: uuid.UUID,
    session: Session | scoped_session[Session] | None = None,
) -> None:
    """Put the generation's final state in the webhook outbox, in the transaction that set it."""
    session = session or db.session

    def data() -> dict:
        # Read again: the UPDATE that just finished it bypassed the identity map.
        generation = session.scalars(
            select(Generation)
            .where(Generation.org_id == org_id, Generation.id == generation_id)
            .execution_options(populate_existing=True)
        ).one()
        return webhook_payloads.generation_data(generation)

    webhook_events.emit(org_id, event_type, data, session=session)


def _discard(storage, key: str) -> None:  # type: ignore[no-untyped-def]
    try:
        storage.delete(key)
    except StorageError:
        log.warning("could not remove unused object %s; `flask storage sweep` will", key)


# --------------------------------------------------------------------------- reaper


@dataclass(slots=True)
class ReapReport:
    """What a reaper pass did."""

    requeued: list[uuid.UUID] = field(default_factory=list)  # running → queued again
    failed: list[uuid.UUID] = field(default_factory=list)  # running, out of retries
    reenqueued: list[uuid.UUID] = field(default_factory=list)  # queued, message lost
    # (generation, org) to enqueue once the changes are committed.
    to_enqueue: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.requeued or self.failed or self.reenqueued)

    def summary(self) -> str:
        return (
            f"{len(self.requeued)} stuck running returned to the queue, "
            f"{len(self.failed)} failed, {len(self.reenqueued)} queued re-enqueued"
        )


def reap_stuck(
    session: Session,
    timeout: dt.timedelta,
    max_retries: int,
    now: dt.datetime | None = None,
) -> ReapReport:
    """Rescue generations unfinished for longer than `timeout`, in every organisation.

    Runs across organisations, inside `tenancy.all_tenants` on a session that may pass
    row-level security (the operator role). Each change is guarded by the state that
    was read, so a worker finishing at the same moment wins. Commits; the caller then
    enqueues `report.to_enqueue` outside the cross-org block, so each job runs scoped.
    """
    cutoff = (now or utcnow()) - timeout
    report = ReapReport()
    rows = session.execute(
        select(Generation.id, Generation.org_id, Generation.status, Generation.attempts)
        .where(
            Generation.status.in_([GenerationStatus.QUEUED, GenerationStatus.RUNNING]),
            Generation.updated_at < cutoff,
        )
        .order_by(Generation.updated_at)
        .limit(REAP_BATCH)
    ).all()
    for generation_id, org_id, status, attempts in rows:
        seen = and_(
            Generation.id == generation_id,
            Generation.status == status,
            Generation.attempts == attempts,
            Generation.updated_at < cutoff,
        )
        if status is GenerationStatus.QUEUED:
            values = {"updated_at": utcnow()}
            target = report.reenqueued
        elif attempts <= max_retries:
            values = {
                "status": GenerationStatus.QUEUED,
                "error": f"Attempt {attempts} did not finish: {WORKER_LOST}. Trying again.",
            }
            target = report.requeued
        else:
            values = {
                "status": GenerationStatus.FAILED,
                "error": f"{WORKER_LOST} (gave up after {attempts} attempts).",
                "finished_at": utcnow(),
            }
            target = report.failed
        changed = session.execute(
            update(Generation)
            .where(seen)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed:
            target.append(generation_id)
            if target is report.failed:
                ledger.refund(session, generation_id)
                _announce(GENERATION_FAILED, org_id, generation_id, session)
            else:
                report.to_enqueue.append((generation_id, org_id))
    session.commit()
    return report


def reap_from_worker() -> ReapReport:
    """Run the reaper inside a worker process (the periodic task), then enqueue.

    The operator role gets past row-level security through `worker_session`.
    """
    config = current_app.config
    timeout = dt.timedelta(seconds=int(config["JOB_RUNNING_TIMEOUT_SECONDS"]))
    retries = int(config["JOB_MAX_RETRIES"])
    with worker_session("reaper: unfinished generations of every organisation") as session:
        report = reap_stuck(session, timeout, retries)
    for generation_id, org_id in report.to_enqueue:
        enqueue_generation(generation_id, org_id)
    webhook_delivery.dispatch_committed()
    return report


def reset_for_retry(generation: Generation) -> None:
    """Put a failed generation back in the queue with a fresh retry budget; flush only.

    A retry is a new acceptance, so the ledger charges its characters again (the
    failure refunded them).
    """
    if generation.status is not GenerationStatus.FAILED:
        raise ValueError("only a failed generation can be retried")
    generation.status = GenerationStatus.QUEUED
    generation.error = None
    generation.attempts = 0
    generation.started_at = None
    generation.finished_at = None
    db.session.flush()
    ledger.charge(generation)


# ------------------------------------------------------------------------ the queue


def register_tasks(huey: Huey, app: Flask) -> None:
    """Register the speech task and the periodic reaper on `app`'s queue."""

    @huey.task(name="speak")
    def speak(generation_id: str, org_id: str) -> None:
        with app.app_context():
            outcome = run_generation(uuid.UUID(generation_id), uuid.UUID(org_id))
            webhook_delivery.dispatch_committed()
        if outcome.retry_in is not None:
            # delay=None retries right away: huey re-enqueues instead of scheduling,
            # which immediate mode (tests with no delay) runs at once too.
            raise RetryTask(delay=outcome.retry_in or None)

    @huey.periodic_task(crontab(minute="*"), name="reap")
    def reap() -> None:
        with app.app_context():
            report = reap_from_worker()
        if report.changed:
            log.warning("reaper: %s", report.summary())

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
