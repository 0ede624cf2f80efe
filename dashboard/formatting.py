"""How Voxboard writes times, durations, sizes and date spans for people.

Every page, message and CLI table formats through these functions; `templating`
registers the ones templates use as filters. Pure functions: no app, no request.
"""

from __future__ import annotations

import datetime as dt

from babel.dates import format_timedelta

from dashboard.models import utcnow

# Under this, "just now": a minute's rounding would only say "0 minutes ago".
JUST_NOW = dt.timedelta(seconds=45)


# ------------------------------------------------------------------------ moments


def relative_time(when: dt.datetime, now: dt.datetime | None = None) -> str:
    """Say how long ago `when` was, e.g. "3 hours ago" ("just now" under a minute).

    Computed on the server when the page is rendered, so it needs no script; pages put
    the absolute time in the `<time>` element's title and datetime attributes. A time
    slightly in the future (a clock running ahead) is also "just now".
    """
    elapsed = (now or utcnow()) - when
    if elapsed < JUST_NOW:
        return "just now"
    return format_timedelta(-elapsed, locale="en", add_direction=True)


def time_until(when: dt.datetime, now: dt.datetime | None = None) -> str:
    """Say how long until `when`, e.g. "3 days" (an invitation's expiry)."""
    return format_timedelta(when - (now or utcnow()), locale="en", threshold=1.5)


def utc_time(when: dt.datetime) -> str:
    """Return `when` as an unambiguous UTC time, e.g. "2025-03-04 14:05 UTC"."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso_time(when: dt.datetime) -> str:
    """Return `when` for a `<time datetime>` attribute (UTC, seconds)."""
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def table_time(when: dt.datetime) -> str:
    """Return an aware UTC timestamp for a CLI table cell, e.g. "2025-03-04 14:05"."""
    return when.strftime("%Y-%m-%d %H:%M")


# ------------------------------------------------------------------------ amounts


def duration(ms: int | None) -> str:
    """Format milliseconds as m:ss ("–" when unknown)."""
    if ms is None:
        return "–"
    seconds = round(ms / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"


def megabytes(size: int) -> str:
    """Say a size the way the upload form's hint does: "20 MB", "20.4 MB" (binary MB)."""
    value = size / (1024 * 1024)
    return f"{value:.0f} MB" if value == int(value) else f"{value:.1f} MB"


def plural(count: int, noun: str) -> str:
    """Return "1 voice", "2 voices" (regular plurals only)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# ------------------------------------------------------------------------ days


def short_date(day: dt.date) -> str:
    """Return "4 Mar"."""
    return f"{day.day} {day:%b}"


def long_date(day: dt.date) -> str:
    """Return "4 Mar 2026"."""
    return f"{day.day} {day:%b %Y}"


def date_span(start: dt.date, end: dt.date) -> str:
    """Return "4 – 10 Mar 2026", "28 Feb – 6 Mar 2026" or "28 Dec 2025 – 3 Jan 2026"."""
    if start == end:
        return long_date(start)
    if start.year != end.year:
        return f"{long_date(start)} – {long_date(end)}"
    if start.month != end.month:
        return f"{short_date(start)} – {long_date(end)}"
    return f"{start.day} – {long_date(end)}"


def iso_date_span(days: list[dt.date]) -> str:
    """Return "2026-03-04" or "2026-03-04 to 2026-03-10" for a CLI summary."""
    return str(days[0]) if len(days) == 1 else f"{days[0]} to {days[-1]}"
