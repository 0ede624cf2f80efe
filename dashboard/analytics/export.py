"""CSV files of the analytics page's current view: one row per bucket, or per voice.

Built from the already-aggregated figures (a few hundred rows at most), so they are
written whole rather than streamed. UTF-8 with a byte-order mark: Excel reads a CSV
without one in the machine's legacy code page and garbles names like "Zoë"; Google
Sheets, Numbers, LibreOffice and Python's "utf-8-sig" all accept it.

A text cell starting with = + - @ (or a tab or carriage return) would run as a
formula when the file is opened in a spreadsheet, so it gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from dashboard.analytics.figures import Analytics

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

BUCKET_HEADERS = (
    "Bucket start",
    "Bucket end",
    "Generations succeeded",
    "Generations failed",
    "Characters",
    "Audio seconds",
    "Active voices",
    "Characters billed",
)
VOICE_HEADERS = ("Voice", "Type", "Generations", "Failed", "Characters", "Audio seconds")
SOURCE_HEADERS = ("Source", "Kind", "API key id", "Submissions", "Characters billed")


def safe_cell(value: object) -> object:
    """Return `value`, with text that a spreadsheet would run as a formula defused."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def seconds(audio_ms: int) -> str:
    """Return milliseconds as seconds with three decimals (exact)."""
    return f"{audio_ms / 1000:.3f}"


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return BOM + out.getvalue()


def buckets_csv(data: Analytics) -> str:
    """Return one row per bucket of the period (days, weeks or months)."""
    return to_csv(
        BUCKET_HEADERS,
        (
            (
                b.bucket.start.isoformat(),
                b.bucket.end.isoformat(),
                b.totals.succeeded,
                b.totals.failed,
                b.totals.characters,
                seconds(b.totals.audio_ms),
                b.totals.active_voices,
                b.totals.billed,
            )
            for b in data.buckets
        ),
    )


def voices_csv(data: Analytics) -> str:
    """Return one row per voice used in the period, most generations first."""
    return to_csv(
        VOICE_HEADERS,
        (
            (s.name, s.kind, s.generations, s.failed, s.characters, seconds(s.audio_ms))
            for s in data.voices
        ),
    )


def sources_csv(data: Analytics) -> str:
    """Return one row per source of billed characters (the dashboard, each API key)."""
    return to_csv(
        SOURCE_HEADERS,
        (
            (
                s.name,
                "Dashboard" if s.kind == "web" else "API",
                "" if s.kind == "web" else s.key,
                s.submissions,
                s.characters,
            )
            for s in data.sources
        ),
    )


def filename(slug: str, kind: str, data: Analytics) -> str:
    """Return e.g. "acme-analytics-2026-03-04-to-2026-04-02.csv"."""
    period = data.period
    return f"{slug}-{kind}-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
