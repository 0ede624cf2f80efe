"""`flask storage sweep`: find (and optionally delete) objects no row points at."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup

from dashboard.storage import StorageError, get_storage, sweep
from dashboard.tenancy.operator import operator_access

storage_group = AppGroup("storage", help="Object-storage maintenance.")


@storage_group.command("sweep")
@click.option(
    "--older-than",
    type=click.IntRange(min=0),
    default=60,
    show_default=True,
    help="Minutes an orphan must have existed (its row may just not be committed yet).",
)
@click.option("--delete", is_flag=True, help="Delete the orphans (default: only list them).")
def sweep_command(older_than: int, delete: bool) -> None:
    """List objects under voices/ and generations/ that no row points at."""
    storage = get_storage()
    try:
        with operator_access("storage sweep: checks every organisation's objects"):
            report = sweep.find_orphans(storage, dt.timedelta(minutes=older_than))
            if delete:
                sweep.delete_orphans(storage, report)
    except StorageError as exc:
        raise click.ClickException(f"sweep failed: {exc}") from exc
    for key in report.orphans:
        click.echo(f"  {'deleted' if key in report.deleted else 'orphan '} {key}")
    for key in report.unrecognised:
        click.echo(f"  skipped {key} (not a key Voxboard makes)")
    click.echo(
        f"Scanned {report.scanned} objects: {report.referenced} in use, "
        f"{len(report.orphans)} orphaned, {len(report.too_new)} too new to judge, "
        f"{len(report.unrecognised)} not Voxboard's."
    )
    if report.orphans and not delete:
        click.echo("Nothing was deleted; run again with --delete to remove the orphans.")
    elif delete:
        click.echo(f"Deleted {len(report.deleted)} orphaned objects.")
