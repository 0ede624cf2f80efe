"""`flask analytics snapshot`: store the daily analytics snapshots (cron, backfills)."""

from __future__ import annotations

import datetime as dt
import time
from contextlib import nullcontext

import click
from flask.cli import AppGroup

from dashboard.analytics.snapshots import UpsertReport, snapshot_day
from dashboard.cli.helpers import operator_transaction, require_org
from dashboard.extensions import db
from dashboard.formatting import iso_date_span, plural
from dashboard.models import utcnow

analytics_group = AppGroup("analytics", help="Analytics snapshots.")


@analytics_group.command("snapshot")
@click.option(
    "--date", "on", metavar="YYYY-MM-DD", help="Snapshot this UTC day (default: yesterday)."
)
@click.option("--since", metavar="YYYY-MM-DD", help="First day of a backfill (UTC, inclusive).")
@click.option(
    "--until", metavar="YYYY-MM-DD", help="Last day of a backfill (inclusive; default: yesterday)."
)
@click.option("--org", "slug", help="Only this organisation (its slug); default: every one.")
@click.option(
    "--include-today",
    is_flag=True,
    help="Allow today (UTC), which isn't over: its snapshot is partial until re-run.",
)
def snapshot_command(
    on: str | None,
    since: str | None,
    until: str | None,
    slug: str | None,
    include_today: bool,
) -> None:
    """Compute and store each organisation's figures for a UTC day (or a range of days).

    Idempotent: re-running a day rewrites only rows whose figures changed. Each day is
    committed on its own, so an interrupted backfill keeps the days it finished.
    """
    days = requested_days(on, since, until, include_today=include_today, today=_today())
    started = time.perf_counter()
    report, orgs = UpsertReport(), set()
    with operator_transaction("analytics snapshot"):
        org_ids = [require_org(slug).id] if slug else None
        # A bar only for backfills: cron's daily run prints its summary line alone.
        progress = (
            click.progressbar(days, label="Snapshotting", show_pos=True, item_show_func=_show_day)
            if len(days) > 1
            else nullcontext(days)
        )
        with progress as steps:
            for day in steps:
                figures, done = snapshot_day(day, org_ids)
                db.session.commit()
                report += done
                orgs |= figures.keys()
    seconds = time.perf_counter() - started
    click.echo(
        f"Snapshotted {plural(len(days), 'day')} × {plural(len(orgs), 'org')} "
        f"({iso_date_span(days)}): {report.summary()} in {seconds:.1f} s."
    )


def requested_days(
    on: str | None,
    since: str | None,
    until: str | None,
    *,
    include_today: bool,
    today: dt.date,
) -> list[dt.date]:
    """Return the days the options name, oldest first; refuse what can't be snapshotted.

    Refusals are `ClickException`s: one `Error: ...` line and exit status 1.
    """
    if on is not None and (since is not None or until is not None):
        raise click.ClickException("give either --date or --since/--until, not both")
    if until is not None and since is None:
        raise click.ClickException("--until needs --since")
    last_complete = today - dt.timedelta(days=1)
    if on is not None:
        first = last = parse_day("--date", on)
    elif since is not None:
        first = parse_day("--since", since)
        default_last = today if include_today else last_complete
        last = parse_day("--until", until) if until is not None else default_last
    else:
        first = last = last_complete
    future = first if first > today else last if last > today else None
    if future is not None:
        raise click.ClickException(f"{future} is in the future (today is {today}, UTC)")
    if today in (first, last) and not include_today:
        raise click.ClickException(
            f"{today} is today (UTC) and not over yet; pass --include-today to snapshot it "
            "anyway (a later run replaces the partial figures)"
        )
    if first > last:
        raise click.ClickException(f"the range is reversed: --since {first} is after {last}")
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def parse_day(option: str, value: str) -> dt.date:
    """Return the date `value` names (YYYY-MM-DD), or stop with what's wrong with it."""
    try:
        return dt.datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise click.ClickException(
            f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. 2026-03-01"
        ) from None


def _today() -> dt.date:
    return utcnow().date()


def _show_day(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None
