"""What the operator commands share: a transaction across organisations, passwords, tables."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from dashboard.auth.passwords import password_problem
from dashboard.auth.queries import find_user
from dashboard.auth.services import AccountError
from dashboard.database import describe_database_error
from dashboard.extensions import db
from dashboard.members.services import MemberError
from dashboard.models import MemberRole, Organization, User, normalise_email
from dashboard.orgs.queries import find_org
from dashboard.tenancy.operator import operator_access

ROLE_CHOICE = click.Choice([role.value for role in MemberRole])


@contextmanager
def operator_transaction(command: str) -> Iterator[None]:
    """Run a command's database work across organisations; commit once, or roll back.

    `operator_access` lifts the tenant filter and, on PostgreSQL with
    `OPERATOR_DATABASE_URL`, runs past row-level security as the operator role.
    Service refusals and database failures become one `Error: ...` line.
    """
    try:
        with operator_access(f"operator command: {command}"):
            yield
            db.session.commit()
    except (AccountError, MemberError) as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    except IntegrityError as exc:
        db.session.rollback()
        raise click.ClickException(
            "a concurrent change took that slug or email first; nothing was saved"
        ) from exc
    except (OperationalError, ProgrammingError) as exc:
        db.session.rollback()
        raise click.ClickException(describe_failure(exc)) from exc
    except BaseException:
        db.session.rollback()
        raise


def describe_failure(exc: OperationalError | ProgrammingError) -> str:
    """Say in one line why the database refused: not migrated, or unreachable."""
    cause = str(getattr(exc, "orig", None) or exc)
    if "no such table" in cause or ("relation" in cause and "does not exist" in cause):
        return "the database has no accounts tables; run `flask db upgrade` first"
    if "row-level security" in cause:
        return (
            "row-level security refused the change; set OPERATOR_DATABASE_URL to a "
            "BYPASSRLS role for operator commands (see docs/operations.md)"
        )
    return describe_database_error(exc, current_app.config["SQLALCHEMY_DATABASE_URI"])


def require_org(slug: str) -> Organization:
    """Return the organisation with `slug`, or stop with an error."""
    org = find_org(slug)
    if org is None:
        raise click.ClickException(f"no organisation with slug {slug!r} (see `flask orgs list`)")
    return org


def require_user(email: str) -> User:
    """Return the user with `email`, or stop with an error."""
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user with email {email!r} (see `flask users list`)")
    return user


def valid_email(email: str) -> str:
    """Return `email` as it is stored (lower-case), or stop with why it isn't an address."""
    try:
        # test_environment: operators may create accounts on the reserved `.test` domain,
        # like the demo logins; deliverability isn't checked (no DNS from a CLI).
        result = validate_email(email.strip(), check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise click.ClickException(f"{email!r} is not an email address: {exc}") from exc
    return normalise_email(result.normalized)


def read_new_password(from_stdin: bool) -> str:
    """Return a new password from the first line of stdin, or a hidden, confirmed prompt.

    Never from an argument: arguments end up in shell history and in `ps` output.
    """
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("--password-stdin: stdin has no password on its first line")
        if problem := password_problem(password):
            raise click.ClickException(f"password refused: {problem}")
        return password
    while True:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat password")
        problem = password_problem(password)
        if problem is None:
            return password
        click.echo(f"Password refused: {problem} Try again.", err=True)


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> None:
    """Print `rows` under `headers` in aligned columns."""
    cells = [[str(c) for c in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo(
            indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )


password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin instead of prompting for it.",
)
