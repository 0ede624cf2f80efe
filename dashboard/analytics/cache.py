"""The analytics page's in-process caches, and the one way a write drops them.

Two LRUs, both keyed by the org's `organizations.analytics_revision`: past days added
up (`PastFigures`: sums and key sets, never decoded breakdowns) and whole assembled
views, each held with the fingerprint of the live data it was made from.

Invalidation. A write that changes an org's snapshots calls `invalidate_cached_figures`
in its own transaction: it bumps the revision, so once the write commits no request
asks for the old keys in any process (the entries age out of the LRUs), and a page
that sees the new revision also sees the new rows. A request that read the old
revision but the new rows caches them under the old key, which nobody asks for again.
Today's generations and the current names change no snapshot: a held view is served
only while its fingerprint still matches (`queries.analytics` reads and compares it),
and the past entries hold no names at all.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from dashboard.analytics.figures import Analytics, PastFigures
from dashboard.analytics.periods import Period
from dashboard.extensions import db
from dashboard.models import Organization

CACHE_ENTRIES = 64  # past periods kept per process (LRU)
CACHE_WEIGHT = 400_000  # and at most this many breakdown keys and buckets in all of them
VIEW_ENTRIES = 32  # assembled views kept per process


def invalidate_cached_figures(
    org_ids: Collection[uuid.UUID], *, session: Session | None = None
) -> None:
    """Drop these orgs' cached past days and views in every process (execute only).

    Bumps their `analytics_revision`, which is part of every key; the caller commits
    the bump together with the snapshots it wrote.
    """
    session = session or db.session
    session.execute(
        update(Organization)
        .where(Organization.id.in_(sorted(org_ids)))
        .values(analytics_revision=Organization.analytics_revision + 1)
    )


def clear_cache() -> None:
    """Forget every cached past period and view in this process only.

    For tests and for measuring a cold page; data changes never need it, they call
    `invalidate_cached_figures`, which reaches every process.
    """
    global _past_weight
    with _past_lock:
        _past_cache.clear()
        _past_weight = 0
    _views.clear()


# ------------------------------------------------------------------------ past days

_past_cache: OrderedDict[tuple[Any, ...], PastFigures] = OrderedDict()
_past_weight = 0
_past_lock = threading.Lock()


def past_key(org_id: uuid.UUID, revision: int, period: Period, today: dt.date) -> tuple[Any, ...]:
    """Return the key of a view's past days; its last part is the last day they cover."""
    return (
        org_id,
        revision,
        period.start,
        period.end,
        period.grouping,
        period.last_past_day(today),
    )


def cached_past(key: tuple[Any, ...]) -> PastFigures | None:
    """Return the past days held under `key` (and mark them recently used), or None."""
    with _past_lock:
        found = _past_cache.get(key)
        if found is not None:
            _past_cache.move_to_end(key)
        return found


def past_is_cached(key: tuple[Any, ...]) -> bool:
    """Tell whether `cached_past(key)` would find an entry (without touching its age)."""
    with _past_lock:
        return key in _past_cache


def remember_past(key: tuple[Any, ...], entry: PastFigures) -> None:
    """Hold `entry`, evicting the oldest until the count and the weight fit (the newest stays)."""
    global _past_weight
    with _past_lock:
        replaced = _past_cache.pop(key, None)
        if replaced is not None:
            _past_weight -= replaced.weight
        _past_cache[key] = entry
        _past_weight += entry.weight
        while len(_past_cache) > 1 and (
            len(_past_cache) > CACHE_ENTRIES or _past_weight > CACHE_WEIGHT
        ):
            _, evicted = _past_cache.popitem(last=False)
            _past_weight -= evicted.weight


# ---------------------------------------------------------------- assembled views


@dataclass(frozen=True, slots=True)
class HeldView:
    """An assembled view and the fingerprint of the live data it was made from."""

    fingerprint: tuple[Any, ...]
    view: Analytics


class _Views:
    """The last views assembled, each with the fingerprint of what it was made from (LRU).

    A view is past days (cached by revision) plus what `live.read_fingerprint`
    summarises: today's generations, the org's voices and its members' names. When the
    fingerprint read in one small statement is unchanged, the assembled view is served
    as it was, without reading today's generations, the names or ranking the voices again.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], HeldView] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> HeldView | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], entry: HeldView) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_views = _Views(VIEW_ENTRIES)


def view_key(org_id: uuid.UUID, revision: int, period: Period, today: dt.date) -> tuple[Any, ...]:
    return (org_id, revision, period, today)


def held_view(key: tuple[Any, ...]) -> HeldView | None:
    """Return the view assembled under `key` with its fingerprint, or None."""
    return _views.get(key)


def remember_view(key: tuple[Any, ...], fingerprint: tuple[Any, ...], view: Analytics) -> None:
    _views.put(key, HeldView(fingerprint, view))
