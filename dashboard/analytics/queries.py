"""Read the analytics page's figures: past days from snapshots (cached), today live.

A page costs at most two statements whatever the period and the number of
generations. Past days (before today) change only when their snapshots are written,
so they are added up once per process and org revision (`past_figures`: one read of
`analytics_snapshots` covering the period *and* the previous period of equal length,
the KPI comparison) and kept as sums in an LRU cache. Every request then runs one
statement (`read_live`): today's generations grouped as the snapshots group them, the
current names of the voices and members the past days name (voices deleted since are
"(deleted)", people no longer members count as "Former members") and, for the quota
bar, the month's characters.

A past day without a snapshot row counts as zeros, and the page says how many there
were — `flask analytics snapshot` may not have run yet. Days before the organisation
existed are zeros for real and don't count as missing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import chain, compress
from operator import methodcaller
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Select,
    String,
    Uuid,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)

from dashboard.analytics.snapshots import (
    DELETED_CATEGORY,
    DELETED_PREFIX,
    FIGURE_FIELDS,
    FORMER_MEMBER,
    Builder,
    DayFigures,
    day_bounds,
    generation_groups,
)
from dashboard.extensions import db
from dashboard.formatting import date_span, long_date, short_date
from dashboard.generations.queries import Usage, month_start, next_month
from dashboard.models import (
    AnalyticsSnapshot,
    Generation,
    GenerationStatus,
    Membership,
    Organization,
    User,
    Voice,
    VoiceCategory,
    VoiceVariant,
)

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
GROUPINGS = ("day", "week", "month")
FORMER_MEMBERS = "Former members"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class InvalidPeriod(ValueError):
    """A period or grouping in the query string that can't be shown (the message says why)."""


# ------------------------------------------------------------------------- periods


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bar of a chart: whole UTC days from `start` to `end`, both inclusive."""

    start: dt.date
    end: dt.date

    def label(self, grouping: str) -> str:
        """Return the short axis label ("4 Mar", "Mar 2026")."""
        if grouping == "month":
            return f"{self.start:%b %Y}"
        return short_date(self.start)

    def describe(self, grouping: str) -> str:
        """Return the bucket in words, for tables and tooltips."""
        if grouping == "day":
            return f"{self.start:%a} {short_date(self.start)}"
        if grouping == "month" and self.start.day == 1 and _month_end(self.start) == self.end:
            return f"{self.start:%B %Y}"
        return date_span(self.start, self.end)


@dataclass(frozen=True, slots=True)
class Period:
    """The days the page shows (UTC, ending on `end` inclusive) and how they are grouped.

    `preset` is the `?days=` value for a rolling period that ends today, None for a
    custom `?from=…&to=…`. `grouping_chosen` tells whether `?by=` was in the URL; when
    it isn't, the grouping follows the length (days, then weeks, then months), and
    links to other periods keep following it.
    """

    start: dt.date
    end: dt.date
    grouping: str = "day"
    preset: int | None = DEFAULT_DAYS
    grouping_chosen: bool = False

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> tuple[dt.date, dt.date]:
        """Return the period of equal length just before this one."""
        return self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1)

    def days_in(self) -> Iterable[dt.date]:
        return (self.start + dt.timedelta(days=n) for n in range(self.days))

    def buckets(self) -> list[Bucket]:
        """Split the period into days, ISO weeks (Monday first) or months, clipped to it."""
        found: list[Bucket] = []
        day = self.start
        while day <= self.end:
            if self.grouping == "week":
                last = day + dt.timedelta(days=6 - day.weekday())
            elif self.grouping == "month":
                last = _month_end(day)
            else:
                last = day
            last = min(last, self.end)
            found.append(Bucket(day, last))
            day = last + dt.timedelta(days=1)
        return found

    def args(self) -> dict[str, str]:
        """Return the query string that reproduces this view."""
        found = (
            {"days": str(self.preset)}
            if self.preset is not None
            else {"from": self.start.isoformat(), "to": self.end.isoformat()}
        )
        if self.grouping_chosen:
            found["by"] = self.grouping
        return found

    def with_days(self, days: int, today: dt.date) -> Period:
        """Return the rolling period of `days` ending today, grouped as chosen (or by length)."""
        grouping = self.grouping if self.grouping_chosen else default_grouping(days)
        start = today - dt.timedelta(days=days - 1)
        return replace(self, start=start, end=today, preset=days, grouping=grouping)

    def with_grouping(self, grouping: str) -> Period:
        return replace(self, grouping=grouping, grouping_chosen=True)

    def describe(self) -> str:
        """Return the period in words, e.g. "Last 30 days (4 Mar – 2 Apr 2026)"."""
        if self.preset is not None:
            return f"Last {self.days} days ({date_span(self.start, self.end)})"
        return f"{date_span(self.start, self.end)} ({self.days} day{'' if self.days == 1 else 's'})"


def default_grouping(days: int) -> str:
    """Group a period of `days` so a chart has a readable number of bars."""
    if days <= 31:
        return "day"
    return "week" if days <= 120 else "month"


def parse_period(args: Mapping[str, str], today: dt.date) -> Period:
    """Read `?days=` or `?from=&to=`, and `?by=`; raise InvalidPeriod with a readable reason.

    A custom range wins over `days` when both are given; it may not end after today
    or span more than MAX_DAYS days.
    """
    by = args.get("by", "").strip().lower()
    if by and by not in GROUPINGS:
        raise InvalidPeriod(f"“{by[:20]}” isn't a grouping. Group by day, week or month.")
    raw_from, raw_to = args.get("from", "").strip(), args.get("to", "").strip()
    if raw_from or raw_to:
        start = _date(raw_from, "start")
        end = _date(raw_to, "end")
        if start > end:
            raise InvalidPeriod(
                f"The start date ({long_date(start)}) is after the end date "
                f"({long_date(end)}). Swap them."
            )
        if end > today:
            raise InvalidPeriod(
                f"The end date ({long_date(end)}) is in the future; "
                f"the latest day there are figures for is today, {long_date(today)} (UTC)."
            )
        days = (end - start).days + 1
        if days > MAX_DAYS:
            raise InvalidPeriod(
                f"That range is {days:,} days long; choose at most {MAX_DAYS} days."
            )
        preset = None
    else:
        raw_days = args.get("days", "").strip()
        days = DEFAULT_DAYS
        if raw_days:
            if not raw_days.isdigit() or not 1 <= int(raw_days) <= MAX_DAYS:
                raise InvalidPeriod(
                    f"“{raw_days[:20]}” isn't a number of days. "
                    f"Choose 7, 30 or 90, or any whole number from 1 to {MAX_DAYS}."
                )
            days = int(raw_days)
        start, end, preset = today - dt.timedelta(days=days - 1), today, days
    return Period(
        start=start,
        end=end,
        grouping=by or default_grouping(days),
        preset=preset,
        grouping_chosen=bool(by),
    )


def _date(raw: str, which: str) -> dt.date:
    if not raw:
        raise InvalidPeriod(f"A custom range needs a {which} date as well.")
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidPeriod(
            f"The {which} date “{raw[:20]}” isn't a date. Pick one, or type it as YYYY-MM-DD."
        ) from None


def _month_end(day: dt.date) -> dt.date:
    following = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return following - dt.timedelta(days=1)


# ------------------------------------------------------------------------- figures


@dataclass(slots=True)
class Totals:
    """Figures added up over some days; `active_voices`: distinct voices with a success."""

    succeeded: int = 0
    failed: int = 0
    characters: int = 0
    audio_ms: int = 0
    active_voices: int = 0

    @property
    def audio_minutes(self) -> float:
        return self.audio_ms / 60_000

    @property
    def empty(self) -> bool:
        return not (self.succeeded or self.failed)


@dataclass(frozen=True, slots=True)
class BucketFigures:
    bucket: Bucket
    totals: Totals


@dataclass(slots=True)
class Share:
    """One voice, category or member's part of the period."""

    key: str
    name: str
    kind: str = ""  # voices: "System", "Custom" or "Deleted"
    generations: int = 0
    failed: int = 0
    characters: int = 0
    audio_ms: int = 0

    @property
    def deleted(self) -> bool:
        return self.kind == "Deleted"

    @property
    def label(self) -> str:
        return f"{self.name} (deleted)" if self.deleted else self.name

    def add(self, tally: Mapping[str, Any]) -> None:
        self.generations += int(tally.get("generations") or 0)
        self.failed += int(tally.get("failed") or 0)
        self.characters += int(tally.get("characters") or 0)
        self.audio_ms += int(tally.get("audio_ms") or 0)


@dataclass(frozen=True, slots=True)
class Change:
    """A figure against the previous period: how to say the difference."""

    current: float
    previous: float

    @property
    def kind(self) -> str:
        """Return "up", "down", "same" or "new" (nothing to compare with)."""
        if self.current == self.previous:
            return "same"
        if not self.previous:
            return "new"
        return "up" if self.current > self.previous else "down"

    @property
    def percent(self) -> str:
        ratio = abs(self.current - self.previous) / self.previous * 100 if self.previous else 0
        rounded = round(ratio)
        return "<1" if rounded == 0 and ratio else f"{rounded:,}"

    @property
    def text(self) -> str:
        """Return the badge: "▲ 12 %", "▼ 3 %", "new" or "no change"."""
        if self.kind == "same":
            return "no change"
        if self.kind == "new":
            return "new"
        return f"{'▲' if self.kind == 'up' else '▼'} {self.percent} %"

    @property
    def words(self) -> str:
        """Return the badge for screen readers (the arrow alone is only a shape)."""
        if self.kind == "same":
            return "no change from the previous period"
        if self.kind == "new":
            return "none in the previous period"
        return f"{self.kind} {self.percent} % from the previous period"


@dataclass(frozen=True, slots=True)
class Kpi:
    label: str
    value: str
    change: Change
    previous: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Analytics:
    """Everything the page, its charts and its CSV files show for one period."""

    period: Period
    previous_period: tuple[dt.date, dt.date]
    buckets: list[BucketFigures]
    current: Totals
    previous: Totals
    voices: list[Share]
    categories: list[Share]
    members: list[Share]
    missing_days: int
    missing_previous_days: int
    live: bool = False  # the period includes today, whose figures are still growing
    usage: Usage | None = None  # this month's characters, when asked for (the quota bar)

    @property
    def empty(self) -> bool:
        return self.current.empty

    @property
    def kpis(self) -> list[Kpi]:
        now, before = self.current, self.previous
        return [
            Kpi(
                "Generations",
                f"{now.succeeded:,}",
                Change(now.succeeded, before.succeeded),
                f"{before.succeeded:,}",
                note=f"{now.failed:,} failed",
            ),
            Kpi(
                "Characters",
                f"{now.characters:,}",
                Change(now.characters, before.characters),
                f"{before.characters:,}",
            ),
            Kpi(
                "Audio minutes",
                minutes(now.audio_ms),
                Change(now.audio_ms, before.audio_ms),
                minutes(before.audio_ms),
            ),
            Kpi(
                "Active voices",
                f"{now.active_voices:,}",
                Change(now.active_voices, before.active_voices),
                f"{before.active_voices:,}",
            ),
        ]


def minutes(audio_ms: int) -> str:
    """Return audio length in minutes with one decimal ("12.5")."""
    return f"{audio_ms / 60_000:,.1f}"


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
    view_key = (org.id, revision, period, today)
    if not with_usage:
        held = _views.get(view_key)
        # Checked only while the past is cached too, so a request never pays for the
        # check, the snapshots and the live statement (three statements).
        if held is not None and past_is_cached(org.id, revision, period, today):
            if read_fingerprint(org.id, today) == held[0]:
                return held[1]
    past = past_figures(org.id, revision, period, today)
    live_day = today if period.end >= today else None
    live = read_live(
        org.id,
        live_day,
        voice_ids=past.voice_ids,
        member_ids=past.member_ids,
        usage_since=month_start() if with_usage else None,
        fingerprint_day=None if with_usage else today,
    )
    found = _assemble(org, period, today, past, live)
    if live.fingerprint is not None:
        _views.put(view_key, (live.fingerprint, found))
    return found


class _Views:
    """The last views assembled, each with the fingerprint of what it was made from (LRU).

    A view is past days (cached by revision) plus what `read_fingerprint` summarises:
    today's generations, the org's voices and its members' names. When the fingerprint
    read in one small statement is unchanged, the assembled view is served as it was,
    without reading today's generations, the names or ranking the voices again.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], Analytics]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[tuple[Any, ...], Analytics] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], entry: tuple[tuple[Any, ...], Analytics]) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


VIEW_ENTRIES = 32  # assembled views kept per process
_views = _Views(VIEW_ENTRIES)


def _fingerprint(org_id: uuid.UUID, day: dt.date) -> Select[Any]:
    """Return a one-row SELECT whose values change whenever a live view of `day` would.

    Today's generations (how many, latest change), the org's and the system voices
    (renamed, added, deleted) and its members (joined or left, renamed): each an
    aggregate over one index range of the org, each table read once (count and latest
    change from the same scan). Every one names the org; timestamps travel as text (one
    layout for every database).
    """
    start, end = day_bounds(day)
    today = (
        select(func.count().label("n"), func.max(Generation.updated_at).label("at"))
        .where(
            Generation.org_id == org_id,
            Generation.created_at >= start,
            Generation.created_at < end,
        )
        .subquery("fp_generations")
    )
    voices = (
        select(func.count().label("n"), func.max(Voice.updated_at).label("at"))
        .where(or_(Voice.org_id == org_id, Voice.org_id.is_(None)))
        .subquery("fp_voices")
    )
    members = (
        select(func.count().label("n"), func.max(User.updated_at).label("at"))
        .select_from(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id)
        .subquery("fp_members")
    )
    columns = {
        "generations": today.c.n,
        "current_voice_name": cast(today.c.at, String()),
        "characters": voices.c.n,
        "voice_name": cast(voices.c.at, String()),
        "audio_ms": members.c.n,
        "display_name": cast(members.c.at, String()),
    }
    # One row each: joined on nothing but TRUE (a cartesian product of single rows).
    return select(*_branch("fingerprint", **columns)).select_from(
        today.join(voices, true()).join(members, true())
    )


_FINGERPRINT = tuple(
    ("generations", "current_voice_name", "characters", "voice_name", "audio_ms", "display_name")
)


def read_fingerprint(org_id: uuid.UUID, day: dt.date) -> tuple[Any, ...]:
    """Read what `_fingerprint` summarises, in one statement."""
    row = db.session.execute(
        _fingerprint(org_id, day).execution_options(skip_tenant_scope=True)
    ).one()
    return tuple(row._mapping[name] for name in _FINGERPRINT)


# ---------------------------------------------------------------- the past, cached

CACHE_ENTRIES = 64  # views kept per process (LRU)
CACHE_WEIGHT = 400_000  # and at most this many breakdown keys and buckets in all of them


@dataclass(frozen=True, slots=True)
class Sums:
    """Counts added up over some days; bit i of `voices`: voice key i had a success."""

    succeeded: int = 0
    failed: int = 0
    characters: int = 0
    audio_ms: int = 0
    voices: int = 0


@dataclass(frozen=True, slots=True)
class PastFigures:
    """The snapshot days of a view (the period and the one before, up to yesterday), added up.

    What the cache holds: sums and key sets, never the days' decoded breakdowns. Keys
    are the snapshots' own (voice id or `deleted:<name>`, user id or "former"); which
    voices and members are gone *now* is decided per request from current names, so
    a cached entry stays right when a voice is deleted or a member leaves. Voices used
    are bit masks over `voice_keys` (a few hundred bytes per bucket, not a set each).
    """

    days: frozenset[dt.date]  # days with a snapshot row
    voice_keys: dict[str, int]  # key → its bit, in the order first seen (days ascending)
    voice_ids: dict[uuid.UUID, str]  # the keys that are voice ids, parsed once
    member_ids: dict[uuid.UUID, str]  # by_member keys that are user ids
    gone_names: dict[str, str]  # id key → the name its latest snapshot recorded
    buckets: tuple[Sums, ...]  # past days only, one per bucket of the period
    current: Sums
    previous: Sums
    by_voice: dict[str, list[int]]  # the period's past days: [generations, failed, …]
    by_category: dict[str, list[int]]
    by_member: dict[str, list[int]]

    @property
    def weight(self) -> int:
        """Return roughly how much this entry holds (breakdown keys and buckets)."""
        return (
            len(self.voice_keys)
            + len(self.by_voice)
            + len(self.by_member)
            + len(self.by_category)
            + len(self.buckets)
        )


_past_cache: OrderedDict[tuple[Any, ...], PastFigures] = OrderedDict()
_past_weight = 0
_past_lock = threading.Lock()


def past_figures(org_id: uuid.UUID, revision: int, period: Period, today: dt.date) -> PastFigures:
    """Return the view's past days added up, from the in-process cache when seen before.

    Past days change only when their snapshots are written, which bumps the org's
    `analytics_revision` in the same transaction: the revision is part of the key, so
    an entry made before a write can't be served after it (it ages out of the LRU).
    A request that read the old revision but the new rows caches them under the old
    key, which no request after the write asks for again.
    """
    key = _past_key(org_id, revision, period, today)
    last = key[-1]
    with _past_lock:
        found = _past_cache.get(key)
        if found is not None:
            _past_cache.move_to_end(key)
            return found
    found = add_up_past(org_id, period, last)
    _remember(key, found)
    return found


def _remember(key: tuple[Any, ...], entry: PastFigures) -> None:
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


def past_is_cached(org_id: uuid.UUID, revision: int, period: Period, today: dt.date) -> bool:
    """Tell whether `past_figures` would answer from the cache."""
    key = _past_key(org_id, revision, period, today)
    with _past_lock:
        return key in _past_cache


def _past_key(org_id: uuid.UUID, revision: int, period: Period, today: dt.date) -> tuple[Any, ...]:
    last = min(period.end, today - dt.timedelta(days=1))
    return (org_id, revision, period.start, period.end, period.grouping, last)


def clear_cache() -> None:
    """Forget every cached past period and view (tests, and measuring a cold page)."""
    global _past_weight
    with _past_lock:
        _past_cache.clear()
        _past_weight = 0
    _views.clear()


_GENERATIONS_OF = methodcaller("get", "generations")
_TALLY_FIELDS = ("generations", "failed", "characters", "audio_ms")


def add_up_past(org_id: uuid.UUID, period: Period, last: dt.date) -> PastFigures:
    """Read the snapshots from the previous period's start to `last` and add them up (one query)."""
    previous_start, previous_end = period.previous
    ordered = sorted(snapshot_days(org_id, previous_start, last).items())
    voice_keys = {
        key: bit
        for bit, key in enumerate(
            dict.fromkeys(chain.from_iterable(f.by_voice or {} for _, f in ordered))
        )
    }
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
    in_period = list(chain.from_iterable(bucket_days))

    def sums(days: list[DayFigures]) -> tuple[Sums, set[str]]:
        used: set[str] = set()
        for figures in days:
            breakdown = figures.by_voice or {}
            used.update(compress(breakdown, map(_GENERATIONS_OF, breakdown.values())))
        return Sums(
            sum(f.generations_succeeded for f in days),
            sum(f.generations_failed for f in days),
            sum(f.characters for f in days),
            sum(f.audio_ms for f in days),
            _mask(used, voice_keys),
        ), used

    bucket_sums = []
    used_in_period: set[str] = set()
    for days in bucket_days:
        found, used = sums(days)
        bucket_sums.append(found)
        used_in_period |= used
    previous, _ = sums(previous_days)
    current = Sums(
        sum(b.succeeded for b in bucket_sums),
        sum(b.failed for b in bucket_sums),
        sum(b.characters for b in bucket_sums),
        sum(b.audio_ms for b in bucket_sums),
        _mask(used_in_period, voice_keys),
    )

    # Each voice id's latest recorded name, for when the voice has been deleted since:
    # the days are walked newest first, and each key is looked at once.
    gone_names: dict[str, str] = {}
    seen: set[str] = set()
    for _, figures in reversed(ordered):
        breakdown = figures.by_voice or {}
        for key in breakdown.keys() - seen:
            if not key.startswith(DELETED_PREFIX):
                gone_names[key] = breakdown[key].get("name") or "Unknown voice"
        seen.update(breakdown)
    member_keys = dict.fromkeys(chain.from_iterable(f.by_member or {} for _, f in ordered))
    return PastFigures(
        days=frozenset(day for day, _ in ordered),
        voice_keys=voice_keys,
        voice_ids=_ids(gone_names),
        member_ids=_ids(key for key in member_keys if key != FORMER_MEMBER),
        gone_names=gone_names,
        buckets=tuple(bucket_sums),
        current=current,
        previous=previous,
        by_voice=_sum_tallies(f.by_voice or {} for f in in_period),
        by_category=_sum_tallies(f.by_category or {} for f in in_period),
        by_member=_sum_tallies(f.by_member or {} for f in in_period),
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


def _mask(keys: Iterable[str], bits: Mapping[str, int]) -> int:
    """Return the bit mask of `keys` (each key once: the sum is the OR)."""
    return sum(map((1).__lshift__, map(bits.__getitem__, keys)))


def _ids(keys: Iterable[str]) -> dict[uuid.UUID, str]:
    found = {}
    for key in keys:
        try:
            found[uuid.UUID(key)] = key
        except ValueError:
            continue  # "deleted:<name>", "former", or something no row can match
    return found


# ------------------------------------------------------------------ today, live


@dataclass(frozen=True, slots=True)
class Live:
    """What `read_live` found: today's figures and the current names of what is shown.

    `today` is exactly `figures_for_day(today)` for the org except `custom_voices` and
    `members`, which the page doesn't show (left at 0).
    """

    today: DayFigures | None
    voices: dict[str, tuple[str, str]]  # voice key → (current name, "System" | "Custom")
    members: dict[str, str]  # user id key → display name, for current members only
    characters_this_month: int | None = None
    # `read_fingerprint`'s figures, read in the same statement (when asked for).
    fingerprint: tuple[Any, ...] | None = None


# The live statement's columns: one layout for every branch of its UNION ALL.
_LIVE_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("voice_id", Uuid()),
    ("voice_name", String()),
    ("current_voice_name", String()),
    ("category", Voice.__table__.c.category.type),
    ("variant", Voice.__table__.c.variant.type),
    ("created_by", Uuid()),
    ("display_name", String()),
    ("member_id", Uuid()),
    ("status", Generation.__table__.c.status.type),
    ("generations", BigInteger()),
    ("characters", BigInteger()),
    ("audio_ms", BigInteger()),
)


def _branch(kind: str, **columns: Any) -> list[Any]:
    """Return a SELECT list in `_LIVE_COLUMNS`' layout; columns not given are typed NULLs."""
    unknown = columns.keys() - {name for name, _ in _LIVE_COLUMNS}
    assert not unknown, unknown
    return [
        literal_column(f"'{kind}'", String()).label("kind"),
        *(columns.get(name, cast(null(), type_)).label(name) for name, type_ in _LIVE_COLUMNS),
    ]


def read_live(
    org_id: uuid.UUID,
    day: dt.date | None,
    *,
    voice_ids: Mapping[uuid.UUID, str] | None = None,
    member_ids: Mapping[uuid.UUID, str] | None = None,
    usage_since: dt.datetime | None = None,
    fingerprint_day: dt.date | None = None,
) -> Live:
    """Read everything the page needs besides the snapshots in one statement (UNION ALL).

    - `day`'s (today's) generations grouped as `figures_for_day` groups them (the same
      `snapshots.generation_groups` query, on one range of the org's history index),
      each group with its creator's membership;
    - the current name and variant of each voice in `voice_ids`, and the display name
      of each user in `member_ids` who is still a member (both map an id to the key
      the snapshots name it by);
    - with `usage_since`, the characters of the org's generations since then that
      didn't fail: `generations.queries.usage`'s definition, saving its statement.

    Each branch states the org itself (the tenant filter is skipped, see below);
    row-level security applies on top.
    """
    dialect = db.session.get_bind().dialect.name
    branches = []
    if day is not None:
        start, end = day_bounds(day)
        groups = generation_groups(select().where(Generation.org_id == org_id), start, end)
        groups = groups.subquery("today_groups")
        branches.append(
            select(
                *_branch(
                    "today",
                    **{name: groups.c[name] for name, _ in _LIVE_COLUMNS if name != "member_id"},
                    member_id=Membership.user_id,
                )
            ).outerjoin(
                Membership,
                and_(Membership.user_id == groups.c.created_by, Membership.org_id == org_id),
            )
        )
    if voice_ids:
        # One row: a JSON array of [id, name, variant] (a busy org's past names
        # hundreds of voices; one row each costs more in the driver than in the database).
        json_agg, json_array = (
            (func.json_agg, func.json_build_array)
            if dialect == "postgresql"
            else (func.json_group_array, func.json_array)
        )
        names = json_agg(json_array(Voice.id, Voice.name, Voice.variant))
        branches.append(
            select(*_branch("voices", current_voice_name=cast(names, String()))).where(
                _among(Voice.id, voice_ids, dialect),
                or_(Voice.org_id == org_id, Voice.org_id.is_(None)),
            )
        )
    if member_ids:
        branches.append(
            select(
                *_branch(
                    "member",
                    created_by=Membership.user_id,
                    display_name=User.display_name,
                    member_id=Membership.user_id,
                )
            )
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.org_id == org_id,
                _among(Membership.user_id, member_ids, dialect),
            )
        )
    if usage_since is not None:
        branches.append(
            select(
                *_branch("usage", characters=func.coalesce(func.sum(Generation.character_count), 0))
            ).where(
                Generation.org_id == org_id,
                Generation.created_at >= usage_since,
                Generation.status != GenerationStatus.FAILED,
            )
        )
    if fingerprint_day is not None and branches:  # nothing live: nothing to check later
        branches.append(_fingerprint(org_id, fingerprint_day))
    # Every branch names the org itself (the tests prove it on SQLite, where nothing
    # else would), so the tenant filter's loader criteria, which cost more to attach
    # to this compound statement than the statement costs to run, are left out;
    # row-level security still applies on PostgreSQL.
    statement = union_all(*branches).execution_options(skip_tenant_scope=True)
    rows = db.session.execute(statement).all() if branches else []

    builder = Builder() if day is not None else None
    voices: dict[str, tuple[str, str]] = {}
    members: dict[str, str] = {}
    today_members: set[uuid.UUID] = set()
    used = None
    fingerprint = None
    # Positions in `_branch`'s layout: kind first, then `_LIVE_COLUMNS` in order.
    for row in rows:
        kind = row[0]
        if kind == "today":
            assert builder is not None
            builder.add(row)
            if row[8] is not None:  # member_id: the creator is still a member
                today_members.add(row[8])
        elif kind == "voices":
            assert voice_ids is not None
            by_text = {key.replace("-", ""): key for key in voice_ids.values()}
            for voice_id, name, variant in json.loads(row[3] or "[]"):
                voices[by_text[voice_id.replace("-", "")]] = (name, _KINDS[variant])
        elif kind == "member":
            assert member_ids is not None
            members[member_ids[row[6]]] = row[7]
        elif kind == "fingerprint":
            fingerprint = tuple(row._mapping[name] for name in _FINGERPRINT)
        else:
            used = int(row[11] or 0)
    today = None
    if builder is not None:
        today = builder.figures(custom_voices=0, members=0)
        for key, tally in today.by_voice.items():
            if tally["variant"] is not None:  # a voice that still exists
                voices[key] = (tally["name"], _KINDS[tally["variant"]])
        for user_id in today_members:
            members[str(user_id)] = today.by_member[str(user_id)]["name"]
    return Live(today, voices, members, used, fingerprint)


_KINDS = {str(VoiceVariant.SYSTEM): "System", str(VoiceVariant.CUSTOM): "Custom"}


def _among(column: Any, values: Iterable[uuid.UUID], dialect: str) -> Any:
    """Return "column is one of `values`", as one parameter on PostgreSQL.

    `IN (…)` would send one parameter per id (hundreds for a busy org), which costs
    more to bind than the look-up itself.
    """
    if dialect == "postgresql":
        # One text parameter, split by the server: binding a uuid[] of hundreds of
        # elements costs more in the driver than the look-up costs in the database.
        joined = bindparam(None, ",".join(map(str, values)), type_=String())
        return column == any_(cast(func.string_to_array(joined, ","), ARRAY(Uuid())))
    return column.in_(list(values))


# --------------------------------------------------------------- past + today


def _assemble(
    org: Organization, period: Period, today: dt.date, past: PastFigures, live: Live
) -> Analytics:
    """Merge today's live figures onto the cached past, with current names."""
    voices = live.voices
    figures = live.today

    def voice_key(key: str) -> str:
        """Return one key per voice: its id while it exists, else `deleted:<name>`.

        Days snapshotted before a voice was deleted name it by id, later ones by
        `deleted:<name>`; both end up under the latter (the name its latest snapshot
        recorded).
        """
        if key in voices or key.startswith(DELETED_PREFIX):
            return key
        return f"{DELETED_PREFIX}{past.gone_names.get(key, 'Unknown voice')}"

    # Voices used: bit masks over the past's keys, today's new keys after them.
    bits = past.voice_keys
    extra: dict[str, int] = {}
    today_mask = 0
    if figures is not None:
        for key, tally in figures.by_voice.items():
            if tally["generations"]:
                bit = bits.get(key)
                if bit is None:
                    bit = extra.setdefault(key, len(bits) + len(extra))
                today_mask |= 1 << bit
    # Keys whose voice is gone since their days were snapshotted merge under a name,
    # possibly with another key: only masks holding one need counting key by key.
    strays = _mask((k for k in past.gone_names if k not in voices), bits)
    every_key: list[str] = []

    def active(mask: int) -> int:
        if not mask & strays:
            return mask.bit_count()
        if not every_key:
            every_key.extend([*bits, *extra])
        return len({voice_key(every_key[i]) for i in range(mask.bit_length()) if mask >> i & 1})

    def totals(sums: Sums, add_today: bool = False) -> Totals:
        found = Totals(sums.succeeded, sums.failed, sums.characters, sums.audio_ms)
        mask = sums.voices
        if add_today and figures is not None:
            found.succeeded += figures.generations_succeeded
            found.failed += figures.generations_failed
            found.characters += figures.characters
            found.audio_ms += figures.audio_ms
            mask |= today_mask
        found.active_voices = active(mask)
        return found

    buckets = [
        BucketFigures(bucket, totals(sums, add_today=bucket.start <= today <= bucket.end))
        for bucket, sums in zip(period.buckets(), past.buckets, strict=True)
    ]

    def shares(
        stored: Mapping[str, list[int]],
        live_tallies: Mapping[str, Mapping[str, Any]] | None,
        merge: Callable[[str], str],
    ) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for key, row in stored.items():
            merged = merge(key)
            into = found.get(merged)
            if into is None:
                found[merged] = list(row)
            else:
                for n, value in enumerate(row):
                    into[n] += value
        for key, tally in (live_tallies or {}).items():
            row = [int(tally[name] or 0) for name in _TALLY_FIELDS]
            merged = merge(key)
            into = found.get(merged)
            if into is None:
                found[merged] = row
            else:
                for n, value in enumerate(row):
                    into[n] += value
        return found

    voice_shares = []
    for key, row in shares(past.by_voice, figures and figures.by_voice, voice_key).items():
        if key in voices:
            name, kind = voices[key]
        else:
            name, kind = key.removeprefix(DELETED_PREFIX), "Deleted"
        voice_shares.append(Share(key, name, kind, *row))
    members = live.members
    member_sums = shares(
        past.by_member,
        figures and figures.by_member,
        lambda key: key if key in members else FORMER_MEMBER,
    )
    category_sums = shares(past.by_category, figures and figures.by_category, lambda key: key)

    previous_start, previous_end = period.previous
    since = org.created_at.astimezone(dt.UTC).date() if org.created_at else dt.date.min

    def missing(first: dt.date, last: dt.date) -> int:
        first = max(first, since)
        last = min(last, today - dt.timedelta(days=1))
        span_days = (last - first).days + 1
        present = sum(1 for day in past.days if first <= day <= last)
        return max(0, span_days - present)

    usage = None
    if live.characters_this_month is not None:
        start = month_start()
        usage = Usage(live.characters_this_month, org.monthly_character_limit, next_month(start))
    return Analytics(
        period=period,
        previous_period=(previous_start, previous_end),
        buckets=buckets,
        current=totals(past.current, add_today=period.end >= today),
        previous=totals(past.previous),
        voices=_ranked(voice_shares, "generations"),
        categories=_ranked(
            (Share(k, category_label(k), "", *row) for k, row in category_sums.items()),
            "generations",
        ),
        members=_ranked(
            (Share(k, members.get(k, FORMER_MEMBERS), "", *row) for k, row in member_sums.items()),
            "characters",
        ),
        missing_days=missing(period.start, period.end),
        missing_previous_days=missing(previous_start, previous_end),
        live=period.end >= today,
        usage=usage,
    )


_COUNTS = tuple(
    methodcaller("get", name) for name in ("generations", "failed", "characters", "audio_ms")
)


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


def category_label(key: str) -> str:
    """Return the name people read for a `by_category` key."""
    if key == DELETED_CATEGORY:
        return "Deleted voices"
    try:
        return VoiceCategory(key).label
    except ValueError:
        return key.replace("_", " ").capitalize()


def _ranked(shares: Iterable[Share], by: str) -> list[Share]:
    """Return the shares with something to show, largest first (then by name)."""
    kept = [s for s in shares if s.generations or s.failed]
    return sorted(kept, key=lambda s: (-getattr(s, by), -s.generations, s.name.casefold()))
