"""`flask worker` (the job consumer) and `flask generations reap` (rescue stuck jobs)."""

from __future__ import annotations

import datetime as dt
import logging

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from dashboard.cli.helpers import operator_transaction
from dashboard.config import redacted_url
from dashboard.extensions import db
from dashboard.generations.jobs import enqueue_generation, reap_stuck
from dashboard.queue import get_huey

generations_group = AppGroup("generations", help="Speech generation jobs.")


@click.command("worker")
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Jobs run at once (threads).",
)
@click.option("--verbose", "-v", is_flag=True, help="Log every job, not only problems.")
@with_appcontext
def worker_command(workers: int, verbose: bool) -> None:
    """Run the job consumer: speak queued generations, reap stuck ones every minute."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config.get("JOBS_IMMEDIATE"):
        raise click.ClickException("JOBS_IMMEDIATE is on: jobs run inside requests, no worker")
    huey = get_huey(app)
    if (
        app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
        and not app.config.get("OPERATOR_DATABASE_URL")
        and app.config.get("RLS_REQUIRED")
    ):
        click.echo(
            "Warning: OPERATOR_DATABASE_URL is not set, so the reaper can't see other "
            "organisations' stuck jobs past row-level security.",
            err=True,
        )
    click.echo(
        f"Voxboard worker: {workers} thread(s) on {redacted_url(app.config['JOBS_URL'])}, "
        f"engine {app.config['TTS_ENGINE']}. Ctrl+C stops it."
    )
    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=True)
    consumer.run()


@generations_group.command("reap")
@click.option(
    "--older-than",
    type=click.IntRange(min=0),
    default=None,
    help="Seconds unfinished before a job counts as stuck (default JOB_RUNNING_TIMEOUT_SECONDS).",
)
def reap_command(older_than: int | None) -> None:
    """Return jobs stuck in running to the queue (or fail them), re-enqueue lost ones."""
    config = current_app.config
    seconds = older_than if older_than is not None else int(config["JOB_RUNNING_TIMEOUT_SECONDS"])
    with operator_transaction("generations reap"):
        report = reap_stuck(db.session, dt.timedelta(seconds=seconds), config["JOB_MAX_RETRIES"])
    refused = sum(not enqueue_generation(gid, org_id) for gid, org_id in report.to_enqueue)
    click.echo(f"Reaped jobs unfinished for over {seconds} s: {report.summary()}.")
    if refused:
        # The rows are queued again either way; exit non-zero so cron and operators notice.
        raise click.ClickException(
            f"could not enqueue {refused} of {len(report.to_enqueue)} jobs on "
            f"{redacted_url(config['JOBS_URL'])}; they stay queued and the next reap "
            "tries again"
        )
