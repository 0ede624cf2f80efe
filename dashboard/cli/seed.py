"""`flask seed`: create or update the system voices and their reference audio."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from dashboard.consistency import new_objects_removed_on_error
from dashboard.database import describe_database_error
from dashboard.extensions import db
from dashboard.storage import StorageError, get_storage
from dashboard.tts import EngineError, get_engine
from dashboard.voices import services
from dashboard.voices.catalog import SYSTEM_VOICES


@click.command("seed")
@click.option(
    "--audio-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with {Name}.wav reference files to use instead of synthesised samples.",
)
@with_appcontext
def seed_command(audio_dir: Path | None) -> None:
    """Create or update the 20 system voices and upload their reference audio."""
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    storage = get_storage()
    try:
        check_database(url)
        storage.check()
        with click.progressbar(
            length=len(SYSTEM_VOICES), label="Preparing reference audio", show_pos=True
        ) as bar:
            audio = services.prepare_reference_audio(
                SYSTEM_VOICES,
                get_engine("espeak"),
                audio_dir=audio_dir,
                progress=lambda _spec: bar.update(1),
            )
        report = run_seed(storage, audio)
    except (services.SeedError, StorageError, EngineError) as exc:
        raise click.ClickException(f"seed failed: {exc}") from exc
    except (OperationalError, ProgrammingError) as exc:
        raise click.ClickException(f"seed failed: {describe_database_error(exc, url)}") from exc

    if not report.changed:
        click.echo(f"Nothing to do: all {len(report.unchanged)} system voices are up to date.")
        return
    click.echo(
        f"System voices: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged; {len(report.uploaded)} audio files uploaded."
    )


def check_database(url: str) -> None:
    """Fail early, with advice, when the database is unreachable or not migrated."""
    from sqlalchemy import inspect

    try:
        tables = set(inspect(db.engine).get_table_names())
    except OperationalError as exc:
        raise click.ClickException(f"seed failed: {describe_database_error(exc, url)}") from exc
    if "voices" not in tables:
        raise click.ClickException(
            "seed failed: the database has no voices table; run `flask db upgrade` first."
        )


def run_seed(storage, audio) -> services.SeedReport:
    """Apply the seed in one transaction, retrying once if a concurrent seeder won a race."""
    for attempt in (1, 2):
        try:
            with new_objects_removed_on_error(storage) as new_keys:
                report = services.seed_system_voices(
                    storage, audio, new_keys, progress=echo_outcome
                )
                db.session.commit()
            return report
        except IntegrityError:
            # SQLite has no advisory lock: another seeder inserted the same names
            # first. Its rows are complete, so a second pass finds and keeps them.
            db.session.rollback()
            if attempt == 2:
                raise
        except BaseException:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")


def echo_outcome(name: str, outcome: str) -> None:
    """Print one line per voice that changed; stay quiet about unchanged ones."""
    if outcome != "unchanged":
        click.echo(f"  {outcome:<9} {name}")
