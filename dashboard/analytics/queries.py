"""Read the analytics page's figures: past days from snapshots (cached), today live.

A page costs at most two statements whatever the period and the number of
generations. Past days (before today) change only when their snapshots are written,
so they are added up once per process and org revision (`past.past_figures`: one read
of `analytics_snapshots` covering the period *and* the previous period of equal
length, the KPI comparison) and kept as sums in an LRU cache (`cache`). Every request
then runs one statement (`live.read_live`): today's generations grouped as the
snapshots group them, the current names of the voices and members the past days name
and, for the quota bar, the month's characters; `assembly.assemble` merges the two.
A view assembled before is served again after one small statement, its fingerprint.

A past day without a snapshot row counts as zeros, and the page says how many there
were — `flask analytics snapshot` may not have run yet.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from dashboard.analytics import cache
from dashboard.analytics.assembly import assemble
from dashboard.analytics.figures import Analytics
from dashboard.analytics.live import read_fingerprint, read_live
from dashboard.analytics.past import past_figures
from dashboard.analytics.periods import Period
from dashboard.generations.queries import month_start
from dashboard.models import Organization


def analytics(
    org: Organization, period: Period, today: dt.date, *, with_usage: bool = False
) -> Analytics:
    """Return the org's figures for `period` and the period before it.

    Past days come from `past_figures` (cached per process, keyed by the org's
    `analytics_revision`; one snapshot read on a miss); today, the current names of
    what the past days name and, with `with_usage`, the month's quota usage from
    one more statement (`read_live`). At most two statements whatever the period.
    """
    revision = org.analytics_revision
    view_key = cache.view_key(org.id, revision, period, today)
    if not with_usage:
        unchanged = _unchanged_view(view_key, org.id, revision, period, today)
        if unchanged is not None:
            return unchanged
    past = past_figures(org.id, revision, period, today)
    live = read_live(
        org.id,
        today if period.end >= today else None,
        voice_ids=past.voice_ids,
        member_ids=past.member_ids,
        usage_since=month_start() if with_usage else None,
        fingerprint_day=None if with_usage else today,
    )
    found = assemble(org, period, today, past, live)
    if live.fingerprint is not None:
        cache.remember_view(view_key, live.fingerprint, found)
    return found


def _unchanged_view(
    view_key: tuple[Any, ...], org_id: uuid.UUID, revision: int, period: Period, today: dt.date
) -> Analytics | None:
    """Return the view held under `view_key` if nothing it was made from has changed.

    Checked only while the past is cached too, so a request never pays for the check,
    the snapshots and the live statement (three statements).
    """
    held = cache.held_view(view_key)
    if held is None or not cache.past_is_cached(cache.past_key(org_id, revision, period, today)):
        return None
    if read_fingerprint(org_id, today) != held.fingerprint:
        return None  # today's generations, a voice or a member changed: assemble again
    return held.view
