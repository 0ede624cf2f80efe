"""The analytics page's periods: which UTC days a view shows and how it groups them.

Parsed from `?days=N` or `?from=&to=`, and `?by=`; a period that can't be shown is an
`InvalidPeriod` whose message says why, in words the page shows as they are.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from dashboard.formatting import date_span, long_date, short_date

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
GROUPINGS = ("day", "week", "month")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class InvalidPeriod(ValueError):
    """A period or grouping in the query string that can't be shown (the message says why)."""


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

    def last_past_day(self, today: dt.date) -> dt.date:
        """Return the period's last day before `today`: the last one a snapshot can hold."""
        return min(self.end, today - dt.timedelta(days=1))

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
