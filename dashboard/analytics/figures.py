"""The analytics figures: past days added up (what the cache holds) and the page's view.

Values only, no reads: `past` and `live` fill them in, `assembly` turns them into the
`Analytics` a page, its charts and its CSV files show.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dashboard.analytics.periods import Bucket, Period
from dashboard.generations.queries import Usage

# ------------------------------------------------------------------- past days, added up


@dataclass(frozen=True, slots=True)
class Sums:
    """Counts added up over some days; bit i of `voices`: voice key i had a success."""

    succeeded: int = 0
    failed: int = 0
    characters: int = 0
    audio_ms: int = 0
    voices: int = 0
    billed: int = 0


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
    # The period's past days by source: key → [submissions, characters billed], and
    # each key's (name, kind) as its latest day recorded them.
    by_source: dict[str, list[int]]
    source_names: dict[str, tuple[str, str]]

    @property
    def weight(self) -> int:
        """Return roughly how much this entry holds (breakdown keys and buckets)."""
        return (
            len(self.voice_keys)
            + len(self.by_source)
            + len(self.by_voice)
            + len(self.by_member)
            + len(self.by_category)
            + len(self.buckets)
        )


def key_mask(keys: Iterable[str], bits: Mapping[str, int]) -> int:
    """Return the bit mask of `keys` (each key once: the sum is the OR)."""
    return sum(map((1).__lshift__, map(bits.__getitem__, keys)))


# ------------------------------------------------------------------------ the view


@dataclass(slots=True)
class Totals:
    """Figures added up over some days; `active_voices`: distinct voices with a success.

    `characters` are those of succeeded generations; `billed` what the usage ledger
    counted (every accepted submission less final failures, deleted or not).
    """

    succeeded: int = 0
    failed: int = 0
    characters: int = 0
    audio_ms: int = 0
    active_voices: int = 0
    billed: int = 0

    @property
    def audio_minutes(self) -> float:
        return self.audio_ms / 60_000

    @property
    def empty(self) -> bool:
        return not (self.succeeded or self.failed or self.billed)


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


@dataclass(slots=True)
class SourceShare:
    """Where billed characters came from: the dashboard, or one API key."""

    key: str
    name: str
    kind: str  # "web" or "api"
    submissions: int = 0
    characters: int = 0

    @property
    def label(self) -> str:
        return self.name if self.kind == "web" else f"API key “{self.name}”"


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
    sources: list[SourceShare]
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
                f"{now.billed:,}",
                Change(now.billed, before.billed),
                f"{before.billed:,}",
                note=_generated_note(now),
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


def _generated_note(totals: Totals) -> str:
    """Say how the billed characters differ from the succeeded generations', if they do."""
    if totals.characters == totals.billed:
        return ""
    return f"{totals.characters:,} in succeeded generations"


def minutes(audio_ms: int) -> str:
    """Return audio length in minutes with one decimal ("12.5")."""
    return f"{audio_ms / 60_000:,.1f}"
