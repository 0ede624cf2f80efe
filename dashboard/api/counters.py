"""Per-day API request counters, added up in the process and written every few seconds.

Each API request adds one to its key's day (`api_key_days`: requests, errors,
characters submitted). Writing that row on every request would make every GET a
write transaction with a commit, and two workers would queue on the same row. So
each process adds requests up in memory and upserts each key's day at most every
`API_COUNTER_FLUSH_SECONDS` (default 5; 0 writes on every request, as the tests do),
from the request that finds the interval over. The trade-off: a worker that is
killed loses at most that many seconds of counts. These are traffic counters, not
billing: what is billed is the usage ledger, written in the submission's transaction.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass

from flask import current_app

from dashboard import tenancy
from dashboard.api import services

_lock = threading.Lock()
_pending: dict[tuple[uuid.UUID, uuid.UUID, dt.date], list[int]] = {}
_last_flush = time.monotonic()


@dataclass(frozen=True, slots=True)
class DayCount:
    """What one key did on one day, not yet written."""

    api_key_id: uuid.UUID
    org_id: uuid.UUID
    day: dt.date
    requests: int
    errors: int
    characters: int


def add(
    api_key_id: uuid.UUID, org_id: uuid.UUID, day: dt.date, *, failed: bool, characters: int
) -> None:
    """Count one request of the key on `day`."""
    with _lock:
        counts = _pending.setdefault((api_key_id, org_id, day), [0, 0, 0])
        counts[0] += 1
        counts[1] += 1 if failed else 0
        counts[2] += characters


def take_due(now: float | None = None) -> list[DayCount]:
    """Return (and forget) the pending counts when the flush interval is over; else []."""
    global _last_flush
    now = time.monotonic() if now is None else now
    interval = float(current_app.config.get("API_COUNTER_FLUSH_SECONDS", 5))
    with _lock:
        if not _pending or now - _last_flush < interval:
            return []
        taken = [DayCount(k, o, d, *counts) for (k, o, d), counts in _pending.items()]
        _pending.clear()
        _last_flush = now
    return taken


def put_back(counts: list[DayCount]) -> None:
    """Keep counts a failed write didn't store, for the next flush."""
    for c in counts:
        with _lock:
            pending = _pending.setdefault((c.api_key_id, c.org_id, c.day), [0, 0, 0])
            pending[0] += c.requests
            pending[1] += c.errors
            pending[2] += c.characters


def write(counts: list[DayCount]) -> None:
    """Upsert `counts` (flush only; the caller commits).

    The process may have served keys of several orgs since the last write: each org's
    rows are written in that org's scope, so row-level security checks them as usual.
    """
    for org_id in dict.fromkeys(c.org_id for c in counts):
        with tenancy.org_scope(org_id):
            for c in (c for c in counts if c.org_id == org_id):
                services.count_requests(
                    c.api_key_id, c.org_id, c.day, c.requests, c.errors, c.characters
                )
