"""Assemble an analytics view: today's live figures merged onto the past, with current names.

No reads: `past.past_figures` and `live.read_live` have read everything. Keys are the
snapshots' own; which voices and members are gone is decided here, from the current
names `read_live` found, so a cached past stays right when a voice is deleted or a
member leaves (voices deleted since are "(deleted)", people no longer members count
as "Former members"). Days before the organisation existed are zeros for real and
don't count as missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dashboard.analytics.figures import (
    Analytics,
    BucketFigures,
    PastFigures,
    Share,
    SourceShare,
    Sums,
    Totals,
    key_mask,
)
from dashboard.analytics.live import Live
from dashboard.analytics.past import TALLY_FIELDS
from dashboard.analytics.periods import Period
from dashboard.analytics.snapshots import (
    DELETED_CATEGORY,
    DELETED_PREFIX,
    FORMER_MEMBER,
    DayFigures,
)
from dashboard.generations.queries import Usage, month_start, next_month
from dashboard.models import Organization, VoiceCategory

FORMER_MEMBERS = "Former members"


def assemble(
    org: Organization, period: Period, today: dt.date, past: PastFigures, live: Live
) -> Analytics:
    """Merge today's live figures onto the cached past, with current names."""
    voice_keys = _VoiceKeys(past, live)
    includes_today = period.end >= today
    previous_period = period.previous
    return Analytics(
        period=period,
        previous_period=previous_period,
        buckets=_bucket_figures(period, today, past, live.today, voice_keys),
        current=_totals(past.current, voice_keys, live.today if includes_today else None),
        previous=_totals(past.previous, voice_keys, None),
        voices=_ranked(_voice_shares(past, live, voice_keys), "generations"),
        categories=_ranked(_category_shares(past, live.today), "generations"),
        members=_ranked(_member_shares(past, live), "characters"),
        sources=_source_shares(past, live.today if includes_today else None),
        missing_days=_missing_days(org, past, today, period.start, period.end),
        missing_previous_days=_missing_days(org, past, today, *previous_period),
        live=includes_today,
        usage=_usage(org, live),
    )


# ------------------------------------------------------------------------ voices


class _VoiceKeys:
    """One key per voice, and voices used counted over bit masks of keys.

    The masks are over the past's keys, today's new keys after them. Keys whose voice is
    gone since their days were snapshotted merge under a name, possibly with another
    key: only masks holding one need counting key by key.
    """

    def __init__(self, past: PastFigures, live: Live) -> None:
        self.current = live.voices
        self.gone_names = past.gone_names
        self.bits = past.voice_keys
        self.extra: dict[str, int] = {}
        self.today_mask = 0
        if live.today is not None:
            for key, tally in live.today.by_voice.items():
                if tally["generations"]:
                    bit = self.bits.get(key)
                    if bit is None:
                        bit = self.extra.setdefault(key, len(self.bits) + len(self.extra))
                    self.today_mask |= 1 << bit
        self.strays = key_mask((k for k in past.gone_names if k not in self.current), self.bits)
        self._every_key: list[str] = []

    def merged(self, key: str) -> str:
        """Return one key per voice: its id while it exists, else `deleted:<name>`.

        Days snapshotted before a voice was deleted name it by id, later ones by
        `deleted:<name>`; both end up under the latter (the name its latest snapshot
        recorded).
        """
        if key in self.current or key.startswith(DELETED_PREFIX):
            return key
        return f"{DELETED_PREFIX}{self.gone_names.get(key, 'Unknown voice')}"

    def active(self, mask: int) -> int:
        """Return how many voices the keys in `mask` name, once merged."""
        if not mask & self.strays:
            return mask.bit_count()
        if not self._every_key:
            self._every_key.extend([*self.bits, *self.extra])
        every_key = self._every_key
        return len({self.merged(every_key[i]) for i in range(mask.bit_length()) if mask >> i & 1})


# ------------------------------------------------------------------------ totals


def _totals(sums: Sums, voice_keys: _VoiceKeys, today: DayFigures | None) -> Totals:
    """Return past sums as totals, with today's figures added when given."""
    found = Totals(sums.succeeded, sums.failed, sums.characters, sums.audio_ms, billed=sums.billed)
    mask = sums.voices
    if today is not None:
        found.succeeded += today.generations_succeeded
        found.failed += today.generations_failed
        found.characters += today.characters
        found.audio_ms += today.audio_ms
        found.billed += today.characters_billed
        mask |= voice_keys.today_mask
    found.active_voices = voice_keys.active(mask)
    return found


def _bucket_figures(
    period: Period,
    today: dt.date,
    past: PastFigures,
    today_figures: DayFigures | None,
    voice_keys: _VoiceKeys,
) -> list[BucketFigures]:
    """Return each bucket's totals; the bucket holding today gets today's figures too."""
    return [
        BucketFigures(
            bucket,
            _totals(
                sums, voice_keys, today_figures if bucket.start <= today <= bucket.end else None
            ),
        )
        for bucket, sums in zip(period.buckets(), past.buckets, strict=True)
    ]


def _missing_days(
    org: Organization, past: PastFigures, today: dt.date, first: dt.date, last: dt.date
) -> int:
    """Count the past days from `first` to `last` the org existed on but has no snapshot of."""
    since = org.created_at.astimezone(dt.UTC).date() if org.created_at else dt.date.min
    first = max(first, since)
    last = min(last, today - dt.timedelta(days=1))
    span_days = (last - first).days + 1
    present = sum(1 for day in past.days if first <= day <= last)
    return max(0, span_days - present)


def _usage(org: Organization, live: Live) -> Usage | None:
    """Return this month's quota usage, when the live statement read it."""
    if live.characters_this_month is None:
        return None
    start = month_start()
    return Usage(live.characters_this_month, org.monthly_character_limit, next_month(start))


# ------------------------------------------------------------------------ shares


def _voice_shares(past: PastFigures, live: Live, voice_keys: _VoiceKeys) -> list[Share]:
    """Return one share per voice, by its current name and kind ("Deleted" once gone)."""
    today_tallies = live.today and live.today.by_voice
    found = []
    for key, row in _merged_shares(past.by_voice, today_tallies, voice_keys.merged).items():
        if key in live.voices:
            name, kind = live.voices[key]
        else:
            name, kind = key.removeprefix(DELETED_PREFIX), "Deleted"
        found.append(Share(key, name, kind, *row))
    return found


def _member_shares(past: PastFigures, live: Live) -> Iterable[Share]:
    """Return one share per current member, and one for everybody who has left."""
    members = live.members
    sums = _merged_shares(
        past.by_member,
        live.today and live.today.by_member,
        lambda key: key if key in members else FORMER_MEMBER,
    )
    return (Share(k, members.get(k, FORMER_MEMBERS), "", *row) for k, row in sums.items())


def _category_shares(past: PastFigures, today: DayFigures | None) -> Iterable[Share]:
    sums = _merged_shares(past.by_category, today and today.by_category, lambda key: key)
    return (Share(k, category_label(k), "", *row) for k, row in sums.items())


def _merged_shares(
    stored: Mapping[str, list[int]],
    live_tallies: Mapping[str, Mapping[str, Any]] | None,
    merge: Callable[[str], str],
) -> dict[str, list[int]]:
    """Add the past's sums and today's tallies up under `merge(key)`: [generations, …]."""
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
        row = [int(tally[name] or 0) for name in TALLY_FIELDS]
        merged = merge(key)
        into = found.get(merged)
        if into is None:
            found[merged] = row
        else:
            for n, value in enumerate(row):
                into[n] += value
    return found


def _source_shares(past: PastFigures, today: DayFigures | None) -> list[SourceShare]:
    """Return the period's billed characters by source, most first (today's names win)."""
    names = dict(past.source_names)
    sums = {key: list(row) for key, row in past.by_source.items()}
    for key, tally in (today.by_source if today else {}).items():
        names[key] = (tally["name"], tally["kind"])
        row = sums.setdefault(key, [0, 0])
        row[0] += int(tally["submissions"] or 0)
        row[1] += int(tally["characters"] or 0)
    shares = [SourceShare(key, *names[key], *row) for key, row in sums.items() if any(row)]
    return sorted(shares, key=lambda s: (-s.characters, s.kind != "web", s.name.casefold()))


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
