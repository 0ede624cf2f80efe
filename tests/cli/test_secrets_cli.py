"""`flask secrets rotate` and `flask secrets check` over a table of stored secrets.

The commands run over a test-only table in a `MetaData` of its own (the models'
metadata stays as the migrations describe it); on PostgreSQL as the web role, that
table has row-level security like every tenant table, so the commands only see every
organisation's rows through the operator role.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet, InvalidToken
from flask import Flask
from sqlalchemy import (
    Boolean,
    Column,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Engine

from dashboard.cli.secrets import make_secrets_group
from dashboard.extensions import db
from tests import pg_roles
from tests.databases import both_databases, web_role

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
VAULT = MetaData()
vault = Table(
    "test_secret_vault",
    VAULT,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("secret", Text, nullable=False, info={"encrypted": True}),
    Column("previous_secret", Text, info={"encrypted": True}),
    Column("label", String(40), nullable=False),
    # Set by any UPDATE that doesn't name it: re-encrypting must leave it alone.
    Column("touched", Boolean, nullable=False, default=False, onupdate=True),
)
secrets_cli = make_secrets_group(VAULT)


@pytest.fixture
def owner(app: Flask, backend: str, database_url: str) -> Iterator[Engine]:
    """Create the vault table (as the owner, who gets past row-level security); drop it after."""
    engine = create_engine(database_url)
    VAULT.create_all(engine)
    if backend == "postgresql-app":
        role = pg_roles.app_role_name()
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE test_secret_vault ENABLE ROW LEVEL SECURITY"))
            conn.execute(text("ALTER TABLE test_secret_vault FORCE ROW LEVEL SECURITY"))
            conn.execute(
                text(
                    "CREATE POLICY test_secret_vault_org_rows ON test_secret_vault FOR ALL "
                    "USING (org_id = NULLIF(current_setting('app.current_org', true), '')::uuid) "
                    "WITH CHECK "
                    "(org_id = NULLIF(current_setting('app.current_org', true), '')::uuid)"
                )
            )
            conn.execute(text(f"GRANT SELECT, UPDATE ON test_secret_vault TO {role}"))
    app.config["ENCRYPTION_KEYS"] = [NEW, OLD]
    yield engine
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    VAULT.drop_all(engine)
    engine.dispose()


def store(owner: Engine, *rows: tuple[str, bytes | None, bytes | None]) -> dict[str, uuid.UUID]:
    """Insert (label, secret, previous secret) rows in two orgs; return their ids by label."""
    orgs = [uuid.uuid4(), uuid.uuid4()]
    ids = {}
    with owner.begin() as conn:
        for n, (label, secret, previous) in enumerate(rows):
            ids[label] = uuid.UUID(int=n + 1)  # walked in this order
            conn.execute(
                insert(vault).values(
                    id=ids[label],
                    org_id=orgs[n % 2],
                    label=label,
                    secret=secret.decode() if secret else None,
                    previous_secret=previous.decode() if previous else None,
                )
            )
    return ids


def under(key: str, plaintext: str) -> bytes:
    return Fernet(key).encrypt(plaintext.encode())


def stored(owner: Engine) -> dict[str, dict[str, object]]:
    """Return every row by label, as the owner sees it."""
    with owner.connect() as conn:
        return {row.label: row._asdict() for row in conn.execute(select(vault))}


def opens_with(key: str, token: str) -> bool:
    try:
        Fernet(key).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def counts(output: str) -> dict[str, tuple[int, int, int]]:
    """Return the command's table, `{column: (three counts)}`."""
    found = {}
    for line in output.splitlines():
        cells = line.split()
        if cells[:1] == ["test_secret_vault"] and len(cells) == 5:
            found[cells[1]] = tuple(int(c) for c in cells[2:])
    return found


def three_rows(owner: Engine) -> dict[str, uuid.UUID]:
    return store(
        owner,
        ("alpha", under(OLD, "a"), under(OLD, "a-before")),
        ("bravo", under(OLD, "b"), None),
        ("charlie", under(NEW, "c"), None),
    )


@both_databases
def test_rotate_re_encrypts_old_key_rows_and_a_re_run_finds_them_current(app, runner, owner):
    three_rows(owner)
    result = runner.invoke(secrets_cli, ["rotate"])
    assert result.exit_code == 0, result.output
    # (rotated, already current, unreadable) per column
    assert counts(result.output) == {"previous_secret": (1, 0, 0), "secret": (2, 1, 0)}
    assert "Re-encrypted 3 stored secrets with the first key; 1 already under it." in (
        result.output
    )
    rows = stored(owner)
    for label, plaintext in (("alpha", "a"), ("bravo", "b"), ("charlie", "c")):
        assert Fernet(NEW).decrypt(rows[label]["secret"].encode()) == plaintext.encode()
        assert not rows[label]["touched"]
    assert Fernet(NEW).decrypt(rows["alpha"]["previous_secret"].encode()) == b"a-before"
    assert rows["bravo"]["previous_secret"] is None

    again = runner.invoke(secrets_cli, ["rotate"])
    assert again.exit_code == 0, again.output
    assert counts(again.output) == {"previous_secret": (0, 1, 0), "secret": (0, 3, 0)}
    assert stored(owner) == rows


@both_databases
def test_an_interrupted_rotation_leaves_readable_rows_and_a_re_run_finishes(app, runner, owner):
    store(owner, *((f"row-{n}", under(OLD, f"s{n}"), None) for n in range(4)))
    updates: list[str] = []

    def interrupt_second_batch(_conn, _cursor, statement, *_rest) -> None:
        if statement.startswith("UPDATE test_secret_vault"):
            updates.append(statement)
            if len(updates) == 2:
                raise KeyboardInterrupt  # Ctrl+C in the middle of the second batch

    event.listen(Engine, "before_cursor_execute", interrupt_second_batch)
    try:
        result = runner.invoke(secrets_cli, ["rotate", "--batch-size", "1"])
    finally:
        event.remove(Engine, "before_cursor_execute", interrupt_second_batch)
    assert result.exit_code != 0 and len(updates) == 2
    rows = stored(owner)
    # The first batch is committed, the second rolled back: a mix every key list opens.
    assert [opens_with(NEW, rows[f"row-{n}"]["secret"]) for n in range(4)] == [
        True,
        False,
        False,
        False,
    ]
    assert all(opens_with(OLD, rows[f"row-{n}"]["secret"]) for n in range(1, 4))

    check = runner.invoke(secrets_cli, ["check"])
    assert check.exit_code == 0, check.output
    assert counts(check.output)["secret"] == (1, 3, 0)  # current, older key, unreadable
    assert "3 still open only with an older key" in check.output

    again = runner.invoke(secrets_cli, ["rotate", "--batch-size", "1"])
    assert again.exit_code == 0, again.output
    assert counts(again.output)["secret"] == (3, 1, 0)
    rows = stored(owner)
    assert [Fernet(NEW).decrypt(rows[f"row-{n}"]["secret"].encode()) for n in range(4)] == [
        b"s0",
        b"s1",
        b"s2",
        b"s3",
    ]


@both_databases
def test_a_secret_set_while_rotating_is_not_overwritten(app, runner, owner):
    ids = store(owner, ("busy", under(OLD, "before"), None))
    replaced = under(NEW, "set meanwhile").decode()

    def set_it_first(_conn, _cursor, statement, *_rest) -> None:
        if statement.startswith("UPDATE test_secret_vault") and not set_it_first.done:
            set_it_first.done = True  # an admin gives the row a new secret just now
            with owner.begin() as conn:
                conn.execute(vault.update().where(vault.c.id == ids["busy"]), {"secret": replaced})

    set_it_first.done = False
    event.listen(Engine, "before_cursor_execute", set_it_first)
    try:
        result = runner.invoke(secrets_cli, ["rotate"])
    finally:
        event.remove(Engine, "before_cursor_execute", set_it_first)
    assert result.exit_code == 0, result.output
    assert counts(result.output)["secret"] == (0, 0, 0)
    assert "Left 1 secret alone that changed while this ran" in result.output
    assert stored(owner)["busy"]["secret"] == replaced


@both_databases
def test_unreadable_rows_are_reported_left_alone_and_fail_the_rotation(app, runner, owner):
    lost = Fernet.generate_key().decode()  # a key nobody listed any more
    ids = store(
        owner,
        ("fine", under(OLD, "ok"), None),
        ("lost", under(lost, "gone"), None),
        ("damaged", b"gAAAAAB-not-really-a-token", under(OLD, "old-ok")),
    )
    before = stored(owner)
    result = runner.invoke(secrets_cli, ["rotate", "--batch-size", "2"])
    assert result.exit_code == 1
    assert counts(result.output) == {"previous_secret": (1, 0, 0), "secret": (1, 0, 2)}
    listed = re.findall(r"^\s+test_secret_vault\s+(\w+)\s+(\S+)$", result.output, re.M)
    assert sorted(listed) == sorted([("secret", str(ids["lost"])), ("secret", str(ids["damaged"]))])
    assert "Error: 2 stored secrets can't be decrypted with ENCRYPTION_KEYS" in result.output
    assert "flask secrets check" in result.output
    rows = stored(owner)
    assert rows["lost"] == before["lost"]
    assert rows["damaged"]["secret"] == before["damaged"]["secret"]
    assert opens_with(NEW, rows["fine"]["secret"])
    assert opens_with(NEW, rows["damaged"]["previous_secret"])


@both_databases
def test_check_exits_1_only_while_a_secret_is_unreadable(app, runner, owner):
    ids = store(
        owner,
        ("current", under(NEW, "x"), None),
        ("older", under(OLD, "y"), under(OLD, "z")),
    )
    clean = runner.invoke(secrets_cli, ["check"])
    assert clean.exit_code == 0, clean.output
    assert counts(clean.output) == {"previous_secret": (0, 1, 0), "secret": (1, 1, 0)}
    assert "Checked 3 stored secrets: 2 still open only with an older key" in clean.output

    app.config["ENCRYPTION_KEYS"] = [NEW]  # the old key removed too early
    broken = runner.invoke(secrets_cli, ["check"])
    assert broken.exit_code == 1
    assert counts(broken.output) == {"previous_secret": (0, 0, 1), "secret": (1, 0, 1)}
    assert f"test_secret_vault  previous_secret  {ids['older']}" in broken.output
    assert f"test_secret_vault  secret           {ids['older']}" in broken.output
    assert "Error: 2 stored secrets can't be decrypted" in broken.output

    app.config["ENCRYPTION_KEYS"] = [NEW, OLD]
    assert runner.invoke(secrets_cli, ["rotate"]).exit_code == 0
    app.config["ENCRYPTION_KEYS"] = [NEW]
    done = runner.invoke(secrets_cli, ["check"])
    assert done.exit_code == 0, done.output
    assert "Checked 3 stored secrets: all open with the first key of ENCRYPTION_KEYS." in (
        done.output
    )


@web_role
def test_the_commands_see_every_organisations_rows(app, runner, owner):
    store(owner, *((f"org-row-{n}", under(OLD, "s"), None) for n in range(4)))  # two orgs
    check = runner.invoke(secrets_cli, ["check"])
    assert check.exit_code == 0, check.output
    assert counts(check.output) == {"previous_secret": (0, 0, 0), "secret": (0, 4, 0)}
    result = runner.invoke(secrets_cli, ["rotate"])
    assert result.exit_code == 0, result.output
    assert counts(result.output) == {"previous_secret": (0, 0, 0), "secret": (4, 0, 0)}
    assert all(opens_with(NEW, row["secret"]) for row in stored(owner).values())


@web_role
def test_the_registered_commands_walk_the_models(app, runner):
    for command in ("check", "rotate"):
        result = runner.invoke(args=["secrets", command])
        assert result.exit_code == 0, result.output
        assert "Error" not in result.output
