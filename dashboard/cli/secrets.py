"""`flask secrets rotate` and `flask secrets check`: the stored secrets and ENCRYPTION_KEYS.

Both walk every encrypted column (`encryption.encrypted_columns`) of every
organisation's rows, batch by batch in primary-key order, as an operator command
(past the tenant filter and, with `OPERATOR_DATABASE_URL`, row-level security).
`rotate` commits each batch: an interrupted run keeps the batches it finished, and a
re-run leaves the rows already under the first key alone. It replaces a token only
if it is still the one read, so a secret changed meanwhile is never overwritten.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import MetaData, func, select, update

from dashboard.cli.helpers import echo_table, operator_transaction
from dashboard.encryption import (
    EncryptedColumn,
    SecretUnreadable,
    encrypted_columns,
    needs_rotation,
    rotate,
)
from dashboard.extensions import db
from dashboard.formatting import plural
from dashboard.models import Base

CHECK_BATCH_SIZE = 500
NO_SECRETS = "No table has an encrypted column, so there are no stored secrets."

# The count columns each command prints: (header, outcome).
ROTATE_COUNTS = (("ROTATED", "rotated"), ("CURRENT", "current"), ("UNREADABLE", "unreadable"))
CHECK_COUNTS = (("CURRENT", "current"), ("OLDER KEY", "older"), ("UNREADABLE", "unreadable"))

Row = tuple[Any, str]  # (primary key, token)


def make_secrets_group(metadata: MetaData) -> AppGroup:
    """Return the `secrets` commands over the encrypted columns of `metadata`'s tables."""
    group = AppGroup("secrets", help="Check and re-encrypt stored secrets (ENCRYPTION_KEYS).")

    @group.command("rotate")
    @click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=500,
        show_default=True,
        help="Rows re-encrypted and committed together.",
    )
    def rotate_command(batch_size: int) -> None:
        """Re-encrypt stored secrets with the first key.

        Every stored secret not under the first key of ENCRYPTION_KEYS is re-encrypted
        with it. Safe to interrupt and run again: each batch is committed on its own, and
        rows already under the first key are left alone. Exits 1 when a secret is
        unreadable (it is listed and left as it is).
        """
        columns = encrypted_columns(metadata)
        if not columns:
            click.echo(NO_SECRETS)
            return
        warn_without_operator_role()
        tallies: dict[EncryptedColumn, Counter[str]] = {}
        unreadable: list[tuple[EncryptedColumn, Any]] = []
        with operator_transaction("secrets rotate"):
            total = sum(count_tokens(column) for column in columns)
            with click.progressbar(length=total, label="Re-encrypting secrets") as bar:
                for column in columns:
                    tally = tallies[column] = Counter()
                    for batch in token_batches(column, batch_size):
                        for row_id, token in batch:
                            outcome = rotate_token(column, row_id, token)
                            tally[outcome] += 1
                            if outcome == "unreadable":
                                unreadable.append((column, row_id))
                        db.session.commit()
                        bar.update(len(batch))
        echo_counts(ROTATE_COUNTS, tallies)
        done = sum(t["rotated"] for t in tallies.values())
        current = sum(t["current"] for t in tallies.values())
        click.echo(
            f"Re-encrypted {plural(done, 'stored secret')} with the first key; "
            f"{current} already under it."
        )
        changed = sum(t["changed"] for t in tallies.values())
        if changed:
            click.echo(
                f"Left {plural(changed, 'secret')} alone that changed while this ran; "
                "run `flask secrets rotate` again to check them."
            )
        refuse_unreadable(unreadable, rotating=True)

    @group.command("check")
    def check_command() -> None:
        """Report unreadable and old-key stored secrets.

        Lists the stored secrets no key of ENCRYPTION_KEYS opens and counts those that
        open only with an older key. Exits 1 when any secret is unreadable, 0 otherwise.
        """
        columns = encrypted_columns(metadata)
        if not columns:
            click.echo(NO_SECRETS)
            return
        warn_without_operator_role()
        tallies: dict[EncryptedColumn, Counter[str]] = {}
        unreadable: list[tuple[EncryptedColumn, Any]] = []
        with operator_transaction("secrets check"):
            for column in columns:
                tally = tallies[column] = Counter()
                for batch in token_batches(column, CHECK_BATCH_SIZE):
                    for row_id, token in batch:
                        try:
                            tally["older" if needs_rotation(token) else "current"] += 1
                        except SecretUnreadable:
                            tally["unreadable"] += 1
                            unreadable.append((column, row_id))
        echo_counts(CHECK_COUNTS, tallies)
        checked = sum(sum(t.values()) for t in tallies.values())
        older = sum(t["older"] for t in tallies.values())
        summary = f"Checked {plural(checked, 'stored secret')}"
        if older:
            click.echo(
                f"{summary}: {older} still open only with an older key; run "
                "`flask secrets rotate` before removing any key from ENCRYPTION_KEYS."
            )
        elif not unreadable:
            click.echo(f"{summary}: all open with the first key of ENCRYPTION_KEYS.")
        refuse_unreadable(unreadable, rotating=False)

    return group


secrets_group = make_secrets_group(Base.metadata)


def warn_without_operator_role() -> None:
    """Warn when row-level security may hide other organisations' rows from the command."""
    config = current_app.config
    if (
        config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
        and not config.get("OPERATOR_DATABASE_URL")
        and config.get("RLS_REQUIRED")
    ):
        click.echo(
            "Warning: OPERATOR_DATABASE_URL is not set, so row-level security may hide "
            "other organisations' secrets from this command.",
            err=True,
        )


def count_tokens(column: EncryptedColumn) -> int:
    """Return how many rows hold a token in `column` (for the progress bar)."""
    stmt = select(func.count()).select_from(column.table).where(column.column.is_not(None))
    return db.session.scalar(stmt) or 0


def token_batches(column: EncryptedColumn, batch_size: int) -> Iterator[Sequence[Row]]:
    """Yield the (id, token) rows of `column` in primary-key order, `batch_size` at a time.

    Keyset, not OFFSET: each batch starts after the last id seen, so rows committed in
    between are neither skipped nor read twice. NULLs hold no secret and are skipped.
    """
    last = None
    while True:
        stmt = (
            select(column.key, column.column)
            .where(column.column.is_not(None))
            .order_by(column.key)
            .limit(batch_size)
        )
        if last is not None:
            stmt = stmt.where(column.key > last)
        batch = [(row_id, token) for row_id, token in db.session.execute(stmt)]
        if not batch:
            return
        yield batch
        last = batch[-1][0]


def rotate_token(column: EncryptedColumn, row_id: Any, token: str) -> str:
    """Re-encrypt one row's token unless it is current; say what happened.

    The outcome is "rotated", "current", "unreadable" (left as it is) or "changed" (the
    row no longer holds `token`: someone set a new secret meanwhile).
    """
    try:
        if not needs_rotation(token):
            return "current"
        fresh = rotate(token)
    except SecretUnreadable:
        return "unreadable"
    # Re-encrypting changes no secret: columns with an `onupdate` (updated_at) keep theirs.
    unchanged = {
        c.name: c for c in column.table.columns if c.onupdate is not None and c is not column.column
    }
    stmt = (
        update(column.table)
        .where(column.key == row_id, column.column == token)
        .values({column.column.name: fresh, **unchanged})
    )
    return "rotated" if db.session.execute(stmt).rowcount == 1 else "changed"


def echo_counts(
    counts: Sequence[tuple[str, str]], tallies: dict[EncryptedColumn, Counter[str]]
) -> None:
    """Print one line per encrypted column with its counts of each outcome."""
    rows = [
        (column.table.name, column.column.name, *(tally[outcome] for _, outcome in counts))
        for column, tally in tallies.items()
    ]
    echo_table(("TABLE", "COLUMN", *(header for header, _ in counts)), rows)


def refuse_unreadable(unreadable: list[tuple[EncryptedColumn, Any]], *, rotating: bool) -> None:
    """List the rows no key opens and exit 1, or return when there are none."""
    if not unreadable:
        return
    click.echo("No key in ENCRYPTION_KEYS opens these:")
    echo_table(
        ("TABLE", "COLUMN", "ID"),
        [(c.table.name, c.column.name, row_id) for c, row_id in unreadable],
        indent="  ",
    )
    state = " (left unchanged)" if rotating else ""
    raise click.ClickException(
        f"{plural(len(unreadable), 'stored secret')} can't be decrypted with ENCRYPTION_KEYS"
        f"{state}: put the old key back at the end of ENCRYPTION_KEYS, or set the secret "
        "again; then run `flask secrets check`."
    )
