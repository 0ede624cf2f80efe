"""How times, durations, sizes and spans read: one module formats for pages and the CLI."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard import formatting

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("offset", "said"),
    [
        (dt.timedelta(seconds=-10), "just now"),
        (dt.timedelta(seconds=3), "just now"),  # a clock running ahead
        (dt.timedelta(minutes=-3), "3 minutes ago"),
        (dt.timedelta(hours=-3), "3 hours ago"),
        (dt.timedelta(days=-2), "2 days ago"),
    ],
)
def test_relative_time_reads_like_a_person(offset, said):
    assert formatting.relative_time(NOW + offset, NOW) == said


def test_exact_times_are_utc_and_unambiguous():
    later = NOW.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert formatting.utc_time(later) == "2026-03-10 12:00 UTC"
    assert formatting.iso_time(later) == "2026-03-10T12:00:00Z"
    assert formatting.table_time(NOW) == "2026-03-10 12:00"
    assert formatting.time_until(NOW + dt.timedelta(days=3), NOW) == "3 days"


def test_amounts():
    assert formatting.duration(None) == "–"
    assert formatting.duration(61_400) == "1:01"
    assert formatting.megabytes(20 * 1024 * 1024) == "20 MB"
    assert formatting.megabytes(int(20.4 * 1024 * 1024)) == "20.4 MB"
    assert formatting.plural(1, "voice") == "1 voice"
    assert formatting.plural(2, "voice") == "2 voices"


@pytest.mark.parametrize(
    ("start", "end", "said"),
    [
        (dt.date(2026, 3, 4), dt.date(2026, 3, 4), "4 Mar 2026"),
        (dt.date(2026, 3, 4), dt.date(2026, 3, 10), "4 – 10 Mar 2026"),
        (dt.date(2026, 2, 28), dt.date(2026, 3, 6), "28 Feb – 6 Mar 2026"),
        (dt.date(2025, 12, 28), dt.date(2026, 1, 3), "28 Dec 2025 – 3 Jan 2026"),
    ],
)
def test_date_spans_say_each_part_once(start, end, said):
    assert formatting.date_span(start, end) == said


def test_cli_spans():
    days = [dt.date(2026, 3, 4), dt.date(2026, 3, 5)]
    assert formatting.iso_date_span(days[:1]) == "2026-03-04"
    assert formatting.iso_date_span(days) == "2026-03-04 to 2026-03-05"


def test_every_formatter_templates_use_is_registered_by_the_factory(app):
    for name in ["relative_time", "utc_time", "iso_time", "time_until", "duration", "date_span"]:
        assert app.jinja_env.filters[name] is getattr(formatting, name)
    assert "waveform_svg" in app.jinja_env.globals
