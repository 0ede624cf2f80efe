"""The past days of an analytics view: one read of the snapshots, added up per bucket.

`past_figures` answers from `cache` when it can; on a miss `add_up_past` reads the
snapshots of the period *and* the previous period of equal length (the KPI comparison)
in one statement and adds them up into `PastFigures`. A past day without a snapshot
row counts as zeros (the page says how many there were).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from itertools import chain, compress
from operator import methodcaller
from typing import Any

from sqlalchemy import select

from dashboard.analytics import cache
from dashboard.analytics.figures import PastFigures, Sums, key_mask
from dashboard.analytics.periods import Period
from dashboard.analytics.snapshots import DELETED_PREFIX, FIGURE_FIELDS, FORMER_MEMBER, DayFigures
from dashboard.extensions import db
from dashboard.models import AnalyticsSnapshot

# A breakdown tally's counts, in the order `PastFigures.by_voice` & co. hold them.
TALLY_FIELDS = ("generations", "failed", "characters", "audio_ms")
_GENERATIONS_OF = methodcaller("get", "generations")
_COUNTS = tuple(methodcaller("get", name) for name in TALLY_FIELDS)


def past_figures(org_id: uuid.UUID, revision: int, period: Period, today: dt.date) -> PastFigures:
    """Return the view's past days added up, from the in-process cache when seen before.

    The key holds the org's `analytics_revision`, so what a snapshot write changed is
    never served from before it (`cache` says how).
    """
    key = cache.past_key(org_id, revision, period, today)
    found = cache.cached_past(key)
    if found is None:
        found = add_up_past(org_id, period, period.last_past_day(today))
        cache.remember_past(key, found)
    return found


def add_up_past(org_id: uuid.UUID, period: Period, last: dt.date) -> PastFigures:
    """Read the snapshots from the previous period's start to `last` and add them up (one query)."""
    previous_start, _ = period.previous
    ordered = sorted(snapshot_days(org_id, previous_start, last).items())
    voice_keys = _voice_bits(ordered)
    previous_days, bucket_days = _split_into_buckets(ordered, period)
    bucket_sums, used_in_period = _add_up_buckets(bucket_days, voice_keys)
    previous, _ = _add_up_days(previous_days, voice_keys)
    in_period = list(chain.from_iterable(bucket_days))
    gone_names = _latest_voice_names(ordered)
    return PastFigures(
        days=frozenset(day for day, _ in ordered),
        voice_keys=voice_keys,
        voice_ids=_ids(gone_names),
        member_ids=_ids(key for key in _member_keys(ordered) if key != FORMER_MEMBER),
        gone_names=gone_names,
        buckets=tuple(bucket_sums),
        current=_sum_of_buckets(bucket_sums, key_mask(used_in_period, voice_keys)),
        previous=previous,
        by_voice=_sum_tallies(f.by_voice or {} for f in in_period),
        by_category=_sum_tallies(f.by_category or {} for f in in_period),
        by_member=_sum_tallies(f.by_member or {} for f in in_period),
        by_source=_sum_sources(in_period),
        source_names=_latest_source_names(in_period),
    )


def snapshot_days(org_id: uuid.UUID, first: dt.date, last: dt.date) -> dict[dt.date, DayFigures]:
    """Return the org's stored figures for the days from `first` to `last` (one query)."""
    if last < first:
        return {}
    columns = [getattr(AnalyticsSnapshot, name) for name in FIGURE_FIELDS]
    rows = db.session.execute(
        select(AnalyticsSnapshot.day, *columns).where(
            AnalyticsSnapshot.org_id == org_id,
            AnalyticsSnapshot.day >= first,
            AnalyticsSnapshot.day <= last,
        )
    )
    return {day: DayFigures(*values) for day, *values in rows}


def _ids(keys: Iterable[str]) -> dict[uuid.UUID, str]:
    found = {}
    for key in keys:
        try:
            found[uuid.UUID(key)] = key
        except ValueError:
            continue  # "deleted:<name>", "former", or something no row can match
    return found


# ------------------------------------------------------------------ adding up days

SnapshotDays = list[tuple[dt.date, DayFigures]]  # ascending


def _voice_bits(ordered: SnapshotDays) -> dict[str, int]:
    """Give each voice key a bit, in the order first seen (days ascending)."""
    return {
        key: bit
        for bit, key in enumerate(
            dict.fromkeys(chain.from_iterable(f.by_voice or {} for _, f in ordered))
        )
    }


def _split_into_buckets(
    ordered: SnapshotDays, period: Period
) -> tuple[list[DayFigures], list[list[DayFigures]]]:
    """Return the previous period's days, and the period's days bucket by bucket."""
    buckets = period.buckets()
    bucket_days: list[list[DayFigures]] = [[] for _ in buckets]
    previous_days: list[DayFigures] = []
    slot = 0
    for day, figures in ordered:
        if day < period.start:
            previous_days.append(figures)
            continue
        while buckets[slot].end < day:
            slot += 1
        bucket_days[slot].append(figures)
    return previous_days, bucket_days


def _add_up_days(days: list[DayFigures], voice_keys: Mapping[str, int]) -> tuple[Sums, set[str]]:
    """Add up some days' totals; also return the voice keys with a success among them."""
    used: set[str] = set()
    for figures in days:
        breakdown = figures.by_voice or {}
        used.update(compress(breakdown, map(_GENERATIONS_OF, breakdown.values())))
    return Sums(
        sum(f.generations_succeeded for f in days),
        sum(f.generations_failed for f in days),
        sum(f.characters for f in days),
        sum(f.audio_ms for f in days),
        key_mask(used, voice_keys),
        sum(f.characters_billed or 0 for f in days),
    ), used


def _add_up_buckets(
    bucket_days: list[list[DayFigures]], voice_keys: Mapping[str, int]
) -> tuple[list[Sums], set[str]]:
    """Add up each bucket's days; also return the voice keys with a success in any of them."""
    bucket_sums = []
    used_in_period: set[str] = set()
    for days in bucket_days:
        found, used = _add_up_days(days, voice_keys)
        bucket_sums.append(found)
        used_in_period |= used
    return bucket_sums, used_in_period


def _sum_of_buckets(bucket_sums: list[Sums], voices: int) -> Sums:
    return Sums(
        sum(b.succeeded for b in bucket_sums),
        sum(b.failed for b in bucket_sums),
        sum(b.characters for b in bucket_sums),
        sum(b.audio_ms for b in bucket_sums),
        voices,
        sum(b.billed for b in bucket_sums),
    )


def _latest_voice_names(ordered: SnapshotDays) -> dict[str, str]:
    """Return each voice id's latest recorded name, for when the voice has been deleted since.

    The days are walked newest first, and each key is looked at once.
    """
    gone_names: dict[str, str] = {}
    seen: set[str] = set()
    for _, figures in reversed(ordered):
        breakdown = figures.by_voice or {}
        for key in breakdown.keys() - seen:
            if not key.startswith(DELETED_PREFIX):
                gone_names[key] = breakdown[key].get("name") or "Unknown voice"
        seen.update(breakdown)
    return gone_names


def _sum_sources(days: Iterable[DayFigures]) -> dict[str, list[int]]:
    """Add up the days' billed characters by source: key → [submissions, characters]."""
    sums: dict[str, list[int]] = {}
    for figures in days:
        for key, tally in (figures.by_source or {}).items():
            row = sums.get(key)
            if row is None:
                row = sums[key] = [0, 0]
            row[0] += int(tally.get("submissions") or 0)
            row[1] += int(tally.get("characters") or 0)
    return sums


def _latest_source_names(days: list[DayFigures]) -> dict[str, tuple[str, str]]:
    """Return each source's (name, kind) as the latest day that names it recorded them."""
    names: dict[str, tuple[str, str]] = {}
    for figures in days:  # ascending: later days overwrite
        for key, tally in (figures.by_source or {}).items():
            names[key] = (str(tally.get("name") or key), str(tally.get("kind") or "api"))
    return names


def _member_keys(ordered: SnapshotDays) -> Iterable[str]:
    return dict.fromkeys(chain.from_iterable(f.by_member or {} for _, f in ordered))


# --------------------------------------------------------- adding up breakdowns


def _sum_tallies(
    breakdowns: Iterable[Mapping[str, Mapping[str, Any]]],
    known: Mapping[str, Any] | None = None,
    merge: Callable[[str, Mapping[str, Any]], str] | None = None,
) -> dict[str, list[int]]:
    """Add up breakdowns key by key: [generations, failed, characters, audio_ms].

    A key not in `known` is replaced by `merge(key, tally)` first. Keys keep the order
    they are first seen in (ties in the ranking keep it too). The hot loop of a long
    period, so the counts are picked and added up column by column in C (a missing or
    null count adds nothing); a key whose sums are not whole ints (today's Decimals on
    PostgreSQL) is added up again through `int`, and anything that can't be added at
    all takes the exact slow path.
    """
    breakdowns = list(breakdowns)
    try:
        return _sum_whole_numbers(breakdowns, known, merge)
    except (KeyError, TypeError):
        return _sum_exactly(breakdowns, known, merge)


def _merged_keys(
    breakdown: Mapping[str, Mapping[str, Any]],
    known: Mapping[str, Any] | None,
    merge: Callable[[str, Mapping[str, Any]], str] | None,
) -> Iterable[str]:
    if merge is None:
        return breakdown.keys()
    if known is None:
        return map(merge, breakdown, breakdown.values())
    strays = breakdown.keys() - known.keys()
    if not strays:
        return breakdown.keys()
    renamed = {key: merge(key, breakdown[key]) for key in strays}
    return map(renamed.get, breakdown, breakdown)  # renamed.get(key, key), in C


def _sum_whole_numbers(
    breakdowns: list[Mapping[str, Mapping[str, Any]]],
    known: Mapping[str, Any] | None,
    merge: Callable[[str, Mapping[str, Any]], str] | None,
) -> dict[str, list[int]]:
    keys_of = [list(_merged_keys(breakdown, known, merge)) for breakdown in breakdowns]
    # Every key in the order first seen, each with the list of its days' counts.
    columns: dict[str, list[tuple[Any, ...]]] = {
        key: [] for key in dict.fromkeys(chain.from_iterable(keys_of))
    }
    for keys, breakdown in zip(keys_of, breakdowns, strict=True):
        tallies = breakdown.values()
        rows = zip(*[map(count, tallies) for count in _COUNTS], strict=True)
        # columns[key].append(row) for each key and row, without a Python-level loop.
        deque(map(list.append, map(columns.__getitem__, keys), rows), maxlen=0)
    sums: dict[str, list[int]] = {}
    for key, found in columns.items():
        # filter(None, …): a missing (None) or zero count adds nothing, as in `or 0`.
        row = [sum(filter(None, column)) for column in zip(*found, strict=True)]
        if not all(type(value) is int for value in row):
            # E.g. today's Decimal sums from PostgreSQL: each count through `int` first.
            row = [sum(int(v or 0) for v in column) for column in zip(*found, strict=True)]
        sums[key] = row
    return sums


def _sum_exactly(
    breakdowns: list[Mapping[str, Mapping[str, Any]]],
    known: Mapping[str, Any] | None,
    merge: Callable[[str, Mapping[str, Any]], str] | None,
) -> dict[str, list[int]]:
    sums: dict[str, list[int]] = {}
    for breakdown in breakdowns:
        keys = _merged_keys(breakdown, known, merge)
        for key, tally in zip(keys, breakdown.values(), strict=True):
            row = sums.get(key)
            if row is None:
                row = sums[key] = [0, 0, 0, 0]
            row[0] += int(tally.get("generations") or 0)
            row[1] += int(tally.get("failed") or 0)
            row[2] += int(tally.get("characters") or 0)
            row[3] += int(tally.get("audio_ms") or 0)
    return sums
