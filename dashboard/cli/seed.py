"""`flask seed`: the system voices and their reference audio; `--demo` adds the demo org."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from flask import current_app, url_for
from flask.cli import with_appcontext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from dashboard.auth.services import AccountError
from dashboard.cli.demo import HISTORY_DAYS, DemoReport, HistoryReport, seed_demo
from dashboard.cli.helpers import echo_table
from dashboard.database import describe_database_error
from dashboard.extensions import db
from dashboard.storage import StorageError, get_storage
from dashboard.storage.consistency import new_objects_removed_on_error
from dashboard.tenancy.operator import operator_access
from dashboard.tts import EngineError, get_engine
from dashboard.tts.catalog import SYSTEM_VOICES
from dashboard.voices import seeding


@click.command("seed")
@click.option(
    "--audio-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with {Name}.wav reference files to use instead of synthesised samples.",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Also create the demo organisation and three logins, and print them (not in production).",
)
@click.option(
    "--base-url",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="Where the server listens, for the login link --demo prints.",
)
@with_appcontext
def seed_command(audio_dir: Path | None, demo: bool, base_url: str) -> None:
    """Create or update the 20 system voices and upload their reference audio."""
    if demo and current_app.config["ENV_NAME"] == "production":
        raise click.ClickException(
            "--demo is refused in production (DASHBOARD_ENV=production): "
            "its logins have published passwords"
        )
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    storage = get_storage()
    try:
        check_database(url)
        storage.check()
        with click.progressbar(
            length=len(SYSTEM_VOICES), label="Preparing reference audio", show_pos=True
        ) as bar:
            audio = seeding.prepare_reference_audio(
                SYSTEM_VOICES,
                get_engine("espeak"),
                audio_dir=audio_dir,
                progress=lambda _spec: bar.update(1),
            )
        # System voices belong to no organisation: on PostgreSQL only the operator
        # role may write them (row-level security).
        with operator_access("seed: system voices are shared by every organisation"):
            report = run_seed(storage, audio)
        echo_voices_report(report)
        if demo:
            echo_demo_report(run_demo_seed(), login_url(base_url))
    except (seeding.SeedError, StorageError, EngineError, AccountError) as exc:
        raise click.ClickException(f"seed failed: {exc}") from exc
    except (OperationalError, ProgrammingError) as exc:
        raise click.ClickException(f"seed failed: {describe_database_error(exc, url)}") from exc


def echo_voices_report(report: seeding.SeedReport) -> None:
    """Summarise the system-voice seed in one line."""
    if not report.changed:
        click.echo(f"Nothing to do: all {len(report.unchanged)} system voices are up to date.")
        return
    click.echo(
        f"System voices: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged; {len(report.uploaded)} audio files uploaded."
    )


def check_database(url: str) -> None:
    """Fail early, with advice, when the database is unreachable or not migrated."""
    try:
        tables = set(inspect(db.engine).get_table_names())
    except OperationalError as exc:
        raise click.ClickException(f"seed failed: {describe_database_error(exc, url)}") from exc
    if "voices" not in tables:
        raise click.ClickException(
            "seed failed: the database has no voices table; run `flask db upgrade` first."
        )


T = TypeVar("T")


def retry_once_on_race(attempt: Callable[[], T]) -> T:
    """Run `attempt` (which commits); if a concurrent seeder won a unique-key race, rerun it.

    SQLite has no advisory lock, so two seeders can insert the same names at once. The
    winner's rows are complete, so a second pass finds them and leaves them alone.
    """
    for round_ in (1, 2):
        try:
            return attempt()
        except IntegrityError:
            db.session.rollback()
            if round_ == 2:
                raise
        except BaseException:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")


def run_seed(storage, audio) -> seeding.SeedReport:
    """Apply the system-voice seed in one transaction; objects of failed commits go."""

    def attempt() -> seeding.SeedReport:
        with new_objects_removed_on_error(storage) as new_keys:
            report = seeding.seed_system_voices(storage, audio, new_keys, progress=echo_outcome)
            db.session.commit()
        return report

    return retry_once_on_race(attempt)


def echo_outcome(name: str, outcome: str) -> None:
    """Print one line per voice that changed; stay quiet about unchanged ones."""
    if outcome != "unchanged":
        click.echo(f"  {outcome:<9} {name}")


def run_demo_seed() -> DemoReport:
    """Seed the demo organisation (logins, voices, history) in its own transaction."""

    storage = get_storage()

    def attempt() -> DemoReport:
        with (
            operator_access("seed: the demo organisation, its members, voices and history"),
            new_objects_removed_on_error(storage) as new_keys,
        ):
            report = seed_demo(storage=storage, new_keys=new_keys)
            db.session.commit()
        return report

    return retry_once_on_race(attempt)


def login_url(base_url: str) -> str:
    """Return the login page's address on the server at `base_url`."""
    with current_app.test_request_context(base_url=base_url):
        return url_for("auth.login", _external=True)


def echo_demo_report(report: DemoReport, url: str) -> None:
    """Say what the demo seed did, then print the demo logins."""
    org = f"{report.org_name} ({report.org_slug})"
    if report.org_created:
        click.echo(f"Demo: created the organisation {org} and its logins.")
    elif report.changed:
        restored = sum(login.created or login.joined for login in report.logins)
        click.echo(
            f"Demo: {org} was there; restored {restored} missing login(s) and "
            f"{len(report.voices_created)} missing voice(s)."
        )
    else:
        click.echo(f"Demo: nothing to do; {org} and its logins are there.")
    echo_history_report(report.history)
    click.echo(
        f"Demo analytics: {report.snapshots.total} daily snapshots ({report.snapshots.summary()})."
    )
    click.echo(f"Log in at {url} as:")
    rows = [
        (
            login.role
            if login.role is login.account.role
            else f"{login.role} (seeded as {login.account.role})",
            login.account.email,
            login.account.password if login.password_works else "(changed since seeded; not reset)",
        )
        for login in report.logins
    ]
    echo_table(("ROLE", "EMAIL", "PASSWORD"), rows, indent="  ")
    for login in report.logins:
        if not login.password_works:
            click.echo(
                f"{login.account.email}'s password was changed after seeding and was left "
                f"alone; reset it with `flask users set-password {login.account.email}`."
            )


def echo_history_report(history: HistoryReport) -> None:
    """Say what the demo history seed added, or that an earlier run had added it."""
    if not history.created:
        click.echo(f"Demo history: already there ({history.existing} generations); nothing added.")
        return
    click.echo(
        f"Demo history: {history.created} generations over the last {HISTORY_DAYS} days "
        f"({history.succeeded} succeeded, {history.failed} failed); audio: "
        f"{history.spoken_in_full} spoken in full, {history.excerpts} opening excerpts, "
        f"{history.audio_bytes / 1_000_000:.1f} MB."
    )
