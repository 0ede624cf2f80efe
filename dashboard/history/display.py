"""How history shows times: "3 hours ago", with the exact UTC time on hover."""

from __future__ import annotations

import datetime as dt

from babel.dates import format_timedelta

from dashboard.models import utcnow

JUST_NOW = dt.timedelta(seconds=45)


def relative_time(when: dt.datetime, now: dt.datetime | None = None) -> str:
    """Say how long ago `when` was, e.g. "3 hours ago" ("just now" under a minute).

    Computed on the server when the page is rendered, so it needs no script; the
    absolute time is in the `<time>` element's title and datetime attributes.
    """
    delta = when - (now or utcnow())
    if abs(delta) < JUST_NOW:
        return "just now"
    return format_timedelta(delta, add_direction=True, locale="en")


def absolute_time(when: dt.datetime) -> str:
    """Return `when` as an unambiguous UTC time, e.g. "2025-03-04 14:05 UTC"."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso_time(when: dt.datetime) -> str:
    """Return `when` for a `<time datetime>` attribute (UTC, seconds)."""
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
