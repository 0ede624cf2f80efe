"""Read the analytics page's figures: past days from snapshots, today live.

A page costs a constant number of statements whatever the period and the number of
generations: one read of `analytics_snapshots` covering the period *and* the previous
period of equal length (the KPI comparison), `snapshots.figures_for_day` for today
when the period reaches today (generations are only read for that one day), one look-up
of the voices the breakdowns name (current names; voices deleted since are "(deleted)")
and one of the members they name (people who left count as "Former members").

A past day without a snapshot row counts as zeros, and the page says how many there
were — `flask analytics snapshot` may not have run yet. Days before the organisation
existed are zeros for real and don't count as missing.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import chain
from operator import itemgetter, methodcaller
from typing import Any

from sqlalchemy import select

from dashboard.analytics.snapshots import (
    DELETED_CATEGORY,
    DELETED_PREFIX,
    FIGURE_FIELDS,
    FORMER_MEMBER,
    DayFigures,
    figures_for_day,
)
from dashboard.extensions import db
from dashboard.models import (
    AnalyticsSnapshot,
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
        return _short(self.start)

    def describe(self, grouping: str) -> str:
        """Return the bucket in words, for tables and tooltips."""
        if grouping == "day":
            return f"{self.start:%a} {_short(self.start)}"
        if grouping == "month" and self.start.day == 1 and _month_end(self.start) == self.end:
            return f"{self.start:%B %Y}"
        return span(self.start, self.end)


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
            return f"Last {self.days} days ({span(self.start, self.end)})"
        return f"{span(self.start, self.end)} ({self.days} day{'' if self.days == 1 else 's'})"


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
                f"The start date ({_long(start)}) is after the end date ({_long(end)}). Swap them."
            )
        if end > today:
            raise InvalidPeriod(
                f"The end date ({_long(end)}) is in the future; "
                f"the latest day there are figures for is today, {_long(today)} (UTC)."
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


def _short(day: dt.date) -> str:
    return f"{day.day} {day:%b}"


def _long(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def span(start: dt.date, end: dt.date) -> str:
    """Return "4 – 10 Mar 2026", "28 Feb – 6 Mar 2026" or "28 Dec 2025 – 3 Jan 2026"."""
    if start == end:
        return _long(start)
    if start.year != end.year:
        return f"{_long(start)} – {_long(end)}"
    if start.month != end.month:
        return f"{_short(start)} – {_long(end)}"
    return f"{start.day} – {_long(end)}"


# ------------------------------------------------------------------------- figures


@dataclass(slots=True)
class Totals:
    """Figures added up over some days; `voices` holds the keys of voices used."""

    succeeded: int = 0
    failed: int = 0
    characters: int = 0
    audio_ms: int = 0
    voices: set[str] = field(default_factory=set)

    @property
    def active_voices(self) -> int:
        return len(self.voices)

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


def analytics(org: Organization, period: Period, today: dt.date) -> Analytics:
    """Return the org's figures for `period` and the period before it.

    Past days come from one read of the snapshots; today, when in the period, from
    `figures_for_day` (the request is in the org's scope already).
    """
    previous_start, previous_end = period.previous
    last_stored = min(period.end, today - dt.timedelta(days=1))
    days = snapshot_days(org.id, previous_start, last_stored)
    if period.end >= today:
        days[today] = figures_for_day(today, [org.id]).get(org.id, DayFigures())
    names = _Names.look_up(org.id, days.values())
    # Each day's voices used, merged once: buckets, current and previous share them.
    used = {day: names.voices_used(figures) for day, figures in days.items()}

    buckets = [
        BucketFigures(bucket, _totals(days, used, bucket.start, bucket.end))
        for bucket in period.buckets()
    ]
    current = _totals(days, used, period.start, period.end)
    previous = _totals(days, used, previous_start, previous_end)
    in_period = [figures for day, figures in days.items() if period.start <= day <= period.end]

    since = org.created_at.astimezone(dt.UTC).date() if org.created_at else dt.date.min

    def missing(first: dt.date, last: dt.date) -> int:
        first = max(first, since)
        last = min(last, today - dt.timedelta(days=1))
        span_days = (last - first).days + 1
        present = sum(1 for day in days if first <= day <= last)
        return max(0, span_days - present)

    return Analytics(
        period=period,
        previous_period=(previous_start, previous_end),
        buckets=buckets,
        current=current,
        previous=previous,
        voices=names.voice_shares(in_period),
        categories=_category_shares(in_period),
        members=names.member_shares(in_period),
        missing_days=missing(period.start, period.end),
        missing_previous_days=missing(previous_start, previous_end),
        live=period.end >= today,
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


def _totals(
    days: Mapping[dt.date, DayFigures],
    used: Mapping[dt.date, set[str]],
    first: dt.date,
    last: dt.date,
) -> Totals:
    totals = Totals()
    for day, figures in days.items():
        if not first <= day <= last:
            continue
        totals.succeeded += figures.generations_succeeded
        totals.failed += figures.generations_failed
        totals.characters += figures.characters
        totals.audio_ms += figures.audio_ms
        totals.voices |= used[day]
    return totals


_COUNTS = tuple(
    methodcaller("get", name) for name in ("generations", "failed", "characters", "audio_ms")
)
_GENERATIONS = itemgetter("generations")


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


def _category_shares(days: Iterable[DayFigures]) -> list[Share]:
    sums = _sum_tallies(figures.by_category or {} for figures in days)
    shares = [Share(key, category_label(key), "", *row) for key, row in sums.items()]
    return _ranked(shares, "generations")


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


@dataclass(frozen=True, slots=True)
class _Names:
    """What the breakdowns' keys name now: voices that still exist, people still members."""

    voices: dict[str, tuple[str, str]]  # voice id → (name, "System" | "Custom")
    members: dict[str, str]  # user id → display name

    @classmethod
    def look_up(cls, org_id: uuid.UUID, days: Iterable[DayFigures]) -> _Names:
        """Look up every voice and member the days name: at most two queries."""
        # Keys stay strings while they are gathered: each distinct one is parsed once,
        # not once per day that names it.
        voice_keys: set[str] = set()
        member_keys: set[str] = set()
        for figures in days:
            voice_keys.update(figures.by_voice or {})
            member_keys.update(figures.by_member or {})
        member_keys.discard(FORMER_MEMBER)
        voice_ids = _uuids(voice_keys)
        user_ids = _uuids(member_keys)
        voices: dict[str, tuple[str, str]] = {}
        if voice_ids:
            rows = db.session.execute(
                select(Voice.id, Voice.name, Voice.variant).where(Voice.id.in_(voice_ids))
            )
            voices = {
                str(voice_id): (name, "System" if variant is VoiceVariant.SYSTEM else "Custom")
                for voice_id, name, variant in rows
            }
        members: dict[str, str] = {}
        if user_ids:
            rows = db.session.execute(
                select(Membership.user_id, User.display_name)
                .join(User, User.id == Membership.user_id)
                .where(Membership.org_id == org_id, Membership.user_id.in_(user_ids))
            )
            members = {str(user_id): name for user_id, name in rows}
        return cls(voices, members)

    def voice_key(self, key: str, tally: Mapping[str, Any]) -> str:
        """Return one key per voice: its id while it exists, else its snapshot name.

        Days snapshotted before a voice was deleted name it by id, later ones by
        `deleted:<name>`; both end up under the latter.
        """
        if key in self.voices or key.startswith(DELETED_PREFIX):
            return key
        return f"{DELETED_PREFIX}{tally.get('name') or 'Unknown voice'}"

    def voices_used(self, figures: DayFigures) -> set[str]:
        """Return the merged keys (`voice_key`) of the voices with generations that day."""
        breakdown = figures.by_voice or {}
        try:
            counts = map(_GENERATIONS, breakdown.values())
            used = {key for key, count in zip(breakdown, counts, strict=True) if count}
        except KeyError:
            used = {key for key, tally in breakdown.items() if tally.get("generations")}
        strays = [k for k in used - self.voices.keys() if not k.startswith(DELETED_PREFIX)]
        for key in strays:  # merged keys all start with DELETED_PREFIX: never a stray
            used.discard(key)
            used.add(self.voice_key(key, breakdown[key]))
        return used

    def voice_shares(self, days: Iterable[DayFigures]) -> list[Share]:
        voices = self.voices
        sums = _sum_tallies((f.by_voice or {} for f in days), voices, self.voice_key)
        shares = []
        for merged, row in sums.items():
            if merged in voices:
                name, kind = voices[merged]
            else:
                name, kind = merged.removeprefix(DELETED_PREFIX), "Deleted"
            shares.append(Share(merged, name, kind, *row))
        return _ranked(shares, "generations")

    def member_shares(self, days: Iterable[DayFigures]) -> list[Share]:
        """Return each current member's share; everyone else is one "Former members" share."""
        members = self.members
        sums = _sum_tallies((f.by_member or {} for f in days), members, _former)
        shares = [
            Share(merged, members.get(merged, FORMER_MEMBERS), "", *row)
            for merged, row in sums.items()
        ]
        return _ranked(shares, "characters")


def _former(key: str, tally: Mapping[str, Any]) -> str:
    return FORMER_MEMBER


def _uuids(keys: Iterable[str]) -> set[uuid.UUID]:
    found = set()
    for key in keys:
        try:
            found.add(uuid.UUID(key))
        except ValueError:
            continue  # "deleted:<name>", "former"
    return found
