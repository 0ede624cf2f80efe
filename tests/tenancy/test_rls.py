"""Wall 2: PostgreSQL row-level security keeps organisations apart on its own.

The database tests run an app connected as the web role (TEST_APP_DATABASE_URL) and
switch the application filter off (`skip_tenant_scope`), so what comes back is what
the policies allow and nothing more. Test data is made by the owner (BYPASSRLS).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask_migrate import check, downgrade, upgrade
from sqlalchemy import create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.sql.dml import Insert

from dashboard import create_app, tenancy
from dashboard.config import ConfigError, settings_from_env
from dashboard.extensions import db
from dashboard.models import (
    Generation,
    Invitation,
    MemberRole,
    Membership,
    Organization,
    UsageEntry,
    User,
    Voice,
    VoiceCategory,
    VoiceVariant,
)
from dashboard.tenancy import rls
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import make_config, private_schema_app
from tests.http import login
from tests.pg_roles import app_role_name

# The application filter off: only row-level security stands between the orgs.
SKIP = {"skip_tenant_scope": True}
TenantModel = type[Voice] | type[Generation] | type[Membership] | type[Invitation]


@pytest.fixture
def backend() -> str:
    """The owner's app (`app`) runs on PostgreSQL here: SQLite has no row-level security."""
    return "postgresql"


@dataclass(frozen=True)
class World:
    """Two organisations' rows; U belongs to both, V to B only, X to none."""

    org_a: uuid.UUID
    org_b: uuid.UUID
    slug_a: str
    user_u: uuid.UUID
    user_v: uuid.UUID
    user_x: uuid.UUID
    system_voice: uuid.UUID
    voice_a: uuid.UUID
    voice_b: uuid.UUID
    gen_a: uuid.UUID
    gen_b: uuid.UUID
    inv_a: uuid.UUID
    inv_b: uuid.UUID
    u_in_a: uuid.UUID
    u_in_b: uuid.UUID
    v_in_b: uuid.UUID

    def row_of(self, name: str) -> uuid.UUID:
        return getattr(self, name)


def make_invitation(org: Organization) -> Invitation:
    invitation = Invitation(
        org_id=org.id,
        email=f"invitee-{secrets.token_hex(4)}@example.com",
        role=MemberRole.MEMBER,
        token_hash=secrets.token_hex(32),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )
    db.session.add(invitation)
    db.session.flush()
    return invitation


@pytest.fixture
def world(app: Flask) -> World:
    """Create both organisations' rows as the owner, which row-level security lets by."""
    with app.app_context(), tenancy.all_tenants("test data spans organisations"):
        org_a, org_b = factories.make_org(), factories.make_org()
        user_u, user_v, user_x = factories.make_user(), factories.make_user(), factories.make_user()
        voice_a, voice_b = factories.make_voice(org_a), factories.make_voice(org_b)
        built = World(
            org_a=org_a.id,
            org_b=org_b.id,
            slug_a=org_a.slug,
            user_u=user_u.id,
            user_v=user_v.id,
            user_x=user_x.id,
            system_voice=factories.make_voice().id,
            voice_a=voice_a.id,
            voice_b=voice_b.id,
            gen_a=factories.make_generation(org_a, voice_a).id,
            gen_b=factories.make_generation(org_b, voice_b).id,
            inv_a=make_invitation(org_a).id,
            inv_b=make_invitation(org_b).id,
            u_in_a=factories.make_membership(user_u, org_a, MemberRole.OWNER).id,
            u_in_b=factories.make_membership(user_u, org_b).id,
            v_in_b=factories.make_membership(user_v, org_b, MemberRole.OWNER).id,
        )
        db.session.commit()
    return built


@pytest.fixture
def web_app(app: Flask, pg_app_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app connected as the web role, on one pooled connection (so reuse is visible)."""
    config = make_config(
        pg_app_url, tmp_path, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0}
    )
    web = create_app(config)
    yield web
    with web.app_context():
        db.engine.dispose()


def ids(model: TenantModel) -> set[uuid.UUID]:
    """Return the ids of `model`'s rows the database lets the web role see."""
    return set(db.session.scalars(select(model.id), execution_options=SKIP))


def scope_statements(engine: Engine) -> list[tuple[str, Any]]:
    """Record every `set_config` statement `engine` sends from now on."""
    seen: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        if "set_config" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    return seen


# --------------------------------------------------------------------------- reads


@pytest.mark.postgres
def test_an_org_sees_its_own_rows_and_the_system_voices_only(web_app: Flask, world: World):
    with web_app.app_context():
        with tenancy.org_scope(world.org_a, world.user_u):
            assert ids(Voice) == {world.system_voice, world.voice_a}
            assert ids(Generation) == {world.gen_a}
            assert ids(Invitation) == {world.inv_a}
            assert ids(Membership) == {world.u_in_a, world.u_in_b}
        with tenancy.org_scope(world.org_b, world.user_v):
            assert ids(Voice) == {world.system_voice, world.voice_b}
            assert ids(Generation) == {world.gen_b}
            assert ids(Invitation) == {world.inv_b}
            assert ids(Membership) == {world.u_in_b, world.v_in_b}


@pytest.mark.postgres
def test_a_user_sees_their_own_memberships_elsewhere_but_nobody_elses(web_app: Flask, world: World):
    with web_app.app_context():
        # U in org A: their membership in B (for the org switcher), not V's there.
        with tenancy.org_scope(world.org_a, world.user_u):
            assert world.u_in_b in ids(Membership)
            assert world.v_in_b not in ids(Membership)
        # No org in scope (the org switcher's page): only the user's own.
        with tenancy.org_scope(None, world.user_u):
            assert ids(Membership) == {world.u_in_a, world.u_in_b}
        with tenancy.org_scope(None, world.user_x):
            assert ids(Membership) == set()
        # An org but no user: that org's memberships only.
        with tenancy.org_scope(world.org_a, None):
            assert ids(Membership) == {world.u_in_a}


@pytest.mark.postgres
def test_without_an_org_only_system_voices_are_visible(web_app: Flask, world: World):
    with web_app.app_context():
        assert tenancy.current_org_id() is None
        assert ids(Voice) == {world.system_voice}
        assert ids(Generation) == ids(Invitation) == ids(Membership) == set()
        # Lifting the application filter changes nothing in the database.
        with tenancy.all_tenants("prove all_tenants is no bypass for the web role"):
            assert db.session.scalar(select(func.count()).select_from(Generation)) == 0


@pytest.mark.postgres
def test_the_web_app_works_as_the_web_role(web_app: Flask, app: Flask, world: World):
    client = web_app.test_client()
    # `login` needs the app's one pooled connection, so not inside a context holding it.
    with web_app.app_context():
        user_u = factories.detach(db.session.get_one(User, world.user_u))
    login(client, user_u)
    assert client.get("/home").status_code == 302  # the org switcher's query
    assert client.get(f"/o/{world.slug_a}/").status_code == 200
    members = client.get(f"/o/{world.slug_a}/members/")
    assert members.status_code == 200 and user_u.email in members.text
    created = client.post("/orgs/new", data={"name": "Made by the web role"})
    assert created.status_code in (302, 303), created.text
    with web_app.app_context():
        user_x = factories.detach(db.session.get_one(User, world.user_x))
    login(client, user_x)
    assert client.get(f"/o/{world.slug_a}/").status_code == 404
    with app.app_context(), tenancy.all_tenants("check the new org's owner as the owner"):
        owner = (
            select(Membership.user_id)
            .join(Organization)
            .where(Organization.name == "Made by the web role", Membership.role == MemberRole.OWNER)
        )
        assert db.session.scalars(owner).all() == [world.user_u]


# -------------------------------------------------------------------------- writes

NewRow = Callable[[World, uuid.UUID | None], Insert]

NEW_ROWS: dict[str, NewRow] = {
    "generation": lambda w, org: insert(Generation).values(
        org_id=org, voice_name="Gone", text="Hi", character_count=2
    ),
    "custom voice": lambda w, org: insert(Voice).values(
        org_id=org,
        variant=VoiceVariant.CUSTOM,
        name=f"Sneaky {secrets.token_hex(3)}",
        category=VoiceCategory.GENERAL,
    ),
    "membership": lambda w, org: insert(Membership).values(
        user_id=w.user_x, org_id=org, role=MemberRole.OWNER
    ),
    "invitation": lambda w, org: insert(Invitation).values(
        org_id=org,
        email="sneaky@example.com",
        role=MemberRole.OWNER,
        token_hash=secrets.token_hex(32),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    ),
}


@pytest.mark.postgres
@pytest.mark.parametrize("kind", NEW_ROWS)
def test_inserting_a_row_for_another_org_is_refused(web_app: Flask, world: World, kind: str):
    new_row = NEW_ROWS[kind]
    with web_app.app_context(), tenancy.org_scope(world.org_a, world.user_u):
        with pytest.raises(ProgrammingError, match="violates row-level security policy"):
            db.session.execute(new_row(world, world.org_b))
        db.session.rollback()
        # The same row for the org in scope goes in: the policy, not the row, refused.
        db.session.execute(new_row(world, world.org_a))
        db.session.rollback()


@pytest.mark.postgres
def test_the_web_role_can_never_create_a_system_voice(web_app: Flask, world: World):
    system_voice = insert(Voice).values(
        org_id=None, variant=VoiceVariant.SYSTEM, name="Fake", category=VoiceCategory.GENERAL
    )
    with web_app.app_context(), tenancy.org_scope(world.org_a, world.user_u):
        with pytest.raises(ProgrammingError, match="violates row-level security policy"):
            db.session.execute(system_voice)


# Rows the web role in org A must not change: B's of every table, and a system voice.
FOREIGN_ROWS = [
    (Voice, "voice_b"),
    (Voice, "system_voice"),
    (Generation, "gen_b"),
    (Membership, "v_in_b"),
    (Membership, "u_in_b"),  # visible to U (own membership), still not writable from A
    (Invitation, "inv_b"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("model", "row"), FOREIGN_ROWS)
def test_updating_or_deleting_rows_outside_the_org_affects_nothing(
    web_app: Flask, app: Flask, world: World, model: TenantModel, row: str
):
    row_id = world.row_of(row)
    with web_app.app_context(), tenancy.org_scope(world.org_a, world.user_u):
        touched = update(model).where(model.id == row_id).values(updated_at=func.now())
        assert db.session.execute(touched, execution_options=SKIP).rowcount == 0
        removed = delete(model).where(model.id == row_id)
        assert db.session.execute(removed, execution_options=SKIP).rowcount == 0
        db.session.commit()
    with app.app_context(), tenancy.all_tenants("check as the owner that the row is intact"):
        assert db.session.scalar(select(func.count()).where(model.id == row_id)) == 1


@pytest.mark.postgres
def test_moving_a_row_into_another_org_is_refused(web_app: Flask, world: World):
    with web_app.app_context(), tenancy.org_scope(world.org_a, world.user_u):
        mine = update(Generation).where(Generation.id == world.gen_a)
        touched = mine.values(updated_at=func.now())
        assert db.session.execute(touched, execution_options=SKIP).rowcount == 1
        with pytest.raises(ProgrammingError, match="violates row-level security policy"):
            db.session.execute(mine.values(org_id=world.org_b), execution_options=SKIP)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "SET LOCAL row_security = off",
        "SET ROLE {owner}",
        "ALTER TABLE generations DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE generations NO FORCE ROW LEVEL SECURITY",
        "TRUNCATE generations",
        "DROP POLICY generations_org_rows ON generations",
    ],
)
def test_the_web_role_cannot_switch_row_level_security_off(
    web_app: Flask, world: World, pg_schema: str, statement: str
):
    owner = make_url(pg_schema).username
    with web_app.app_context(), tenancy.org_scope(world.org_a, world.user_u):
        with pytest.raises(ProgrammingError):
            db.session.execute(text(statement.format(owner=owner)))
            # `row_security = off` is accepted, but then any query RLS would filter fails.
            db.session.execute(select(Generation.id), execution_options=SKIP).all()


# ---------------------------------------------------------------- the settings hook


@pytest.mark.postgres
def test_the_scope_is_sent_as_bound_parameters(web_app: Flask):
    hostile = "x', true), set_config('app.current_user', 'y"
    with web_app.app_context():
        sent = scope_statements(db.engine)
        with tenancy.org_scope(hostile):  # type: ignore[arg-type]  # as an attacker would
            setting = db.session.connection().execute(
                text("SELECT current_setting('app.current_org')")
            )
            assert setting.scalar() == hostile
        statement, parameters = sent[0]
        assert hostile not in statement
        assert hostile in parameters.values()


@pytest.mark.postgres
def test_one_statement_per_transaction(web_app: Flask, world: World):
    with web_app.app_context(), tenancy.org_scope(world.org_a, world.user_u):
        sent = scope_statements(db.engine)
        for model in (Voice, Generation, Membership):
            ids(model)
        with db.session.begin_nested():  # a savepoint inherits the settings
            ids(Invitation)
        assert len(sent) == 1
        db.session.commit()
        ids(Voice)
        assert len(sent) == 2


@pytest.mark.postgres
def test_settings_do_not_outlive_their_transaction(web_app: Flask, world: World):
    with web_app.app_context():
        with tenancy.org_scope(world.org_a, world.user_u):
            assert ids(Generation) == {world.gen_a}
            pid = db.session.scalar(text("SELECT pg_backend_pid()"))
            db.session.commit()
        # The pool's only connection again, used without the session (so no hook runs).
        with db.engine.connect() as connection:
            assert connection.scalar(text("SELECT pg_backend_pid()")) == pid
            org = connection.scalar(text("SELECT current_setting('app.current_org', true)"))
            assert org in ("", None)
            assert connection.scalar(text("SELECT count(*) FROM generations")) == 0


@pytest.mark.postgres
def test_a_scope_change_mid_transaction_is_applied_at_once(web_app: Flask, world: World):
    with web_app.app_context():
        sent = scope_statements(db.engine)
        # A request's first query (loading the user) begins the transaction, no org yet:
        # unset settings already match nothing, so that begin sends no set_config.
        db.session.scalars(select(Organization.id)).all()
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
        assert ids(Generation) == set()
        with tenancy.org_scope(world.org_a, world.user_u):
            assert ids(Generation) == {world.gen_a}
            with tenancy.all_tenants("same org and user: nothing to send"):
                assert ids(Generation) == {world.gen_a}
        assert ids(Generation) == set()
        assert [p["org"] for _, p in sent] == [str(world.org_a), ""]
        assert db.session.scalar(text("SELECT pg_backend_pid()")) == pid
        assert db.session().in_transaction()


@pytest.mark.postgres
def test_a_rollback_to_a_savepoint_does_not_leave_another_orgs_settings(
    web_app: Flask, world: World
):
    with web_app.app_context(), tenancy.org_scope(world.org_a, world.user_u):
        assert ids(Generation) == {world.gen_a}
        org_b = tenancy.org_scope(world.org_b, world.user_v)
        org_b.__enter__()
        savepoint = db.session.begin_nested()
        assert ids(Generation) == {world.gen_b}
        org_b.__exit__(None, None, None)  # back to A: applied inside the savepoint...
        savepoint.rollback()  # ...whose rollback restores B's settings in the database
        assert ids(Generation) == {world.gen_a}


@pytest.mark.postgres
def test_a_failed_statement_is_not_hidden_by_leaving_the_scope(web_app: Flask, world: World):
    with web_app.app_context(), tenancy.org_scope(world.org_a, world.user_u):
        assert ids(Generation) == {world.gen_a}
        # Leaving org B re-applies org A, in a transaction the failure has aborted.
        with pytest.raises(ProgrammingError, match="violates row-level security policy"):
            with tenancy.org_scope(world.org_b, world.user_v):
                db.session.execute(NEW_ROWS["generation"](world, world.org_a))
        db.session.rollback()
        assert ids(Generation) == {world.gen_a}


def test_sqlite_transactions_get_no_settings(tmp_path: Path):
    app = create_app(make_config(f"sqlite:///{tmp_path / 'rls.db'}", tmp_path))
    with app.app_context():
        db.create_all()
        sent = scope_statements(db.engine)
        with tenancy.org_scope(uuid.uuid4()):
            db.session.scalars(select(Voice.id)).all()
        assert sent == []
        db.engine.dispose()


# ------------------------------------------------------------------------ operators


@pytest.mark.postgres
def test_operator_access_uses_the_operator_role(
    pg_app_url: str, pg_schema: str, world: World, tmp_path: Path
):
    web = create_app(make_config(pg_app_url, tmp_path, OPERATOR_DATABASE_URL=pg_schema))
    with web.app_context():
        with operator_access("test: an operator command"):
            assert ids(Generation) == {world.gen_a, world.gen_b}
            assert db.session.scalar(text("SELECT current_user")) == make_url(pg_schema).username
            db.session.commit()
        assert db.session.scalar(text("SELECT current_user")) == app_role_name()
        assert ids(Generation) == set()
        db.session.remove()
        db.engine.dispose()


@pytest.mark.postgres
def test_without_an_operator_url_operator_access_stays_the_web_role(web_app: Flask, world: World):
    with web_app.app_context():
        with operator_access("test: no operator URL configured"):
            assert ids(Generation) == set()


def test_operator_access_is_refused_in_requests(tmp_path: Path):
    app = create_app(make_config(f"sqlite:///{tmp_path / 'rls.db'}", tmp_path))
    with app.test_request_context("/"):
        with pytest.raises(RuntimeError, match="never for requests"):
            with operator_access("test"):
                pass


# ----------------------------------------------------------------- roles and guard


def required_app(url: str, tmp_path: Path) -> Flask:
    return create_app(make_config(url, tmp_path, RLS_REQUIRED=True))


@pytest.mark.postgres
def test_verify_web_role_accepts_the_web_role(pg_app_url: str, tmp_path: Path):
    rls.verify_web_role(required_app(pg_app_url, tmp_path))


@pytest.mark.postgres
def test_verify_web_role_refuses_the_owner(pg_schema: str, tmp_path: Path):
    owner = make_url(pg_schema).username
    with pytest.raises(ConfigError) as refused:
        rls.verify_web_role(required_app(pg_schema, tmp_path))
    message = str(refused.value)
    assert f'role "{owner}"' in message
    tables = ", ".join(sorted(rls.TENANT_TABLES))
    assert f"owns (or can become the owner of) {tables}" in message
    assert "analytics_snapshots, api_idempotency_keys, api_key_days, api_keys" in tables
    assert "has BYPASSRLS" in message  # the test owner bypasses, like an operator role
    assert "flask rls grant ROLE" in message and "RLS_REQUIRED=0" in message


@pytest.mark.postgres
def test_verify_web_role_refuses_a_superuser(pg_schema: str, tmp_path: Path):
    superuser_url = make_url(pg_schema).set(username="postgres", password=None)
    url = superuser_url.render_as_string(hide_password=False)
    probe = create_engine(url)
    try:
        probe.connect().close()
    except Exception as exc:  # noqa: BLE001  (any refusal means: no superuser login here)
        reason = f"can't log in as postgres to test the superuser case: {exc}"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    finally:
        probe.dispose()
    with pytest.raises(ConfigError, match='role "postgres", which is a superuser'):
        rls.verify_web_role(required_app(url, tmp_path))


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (rls.RoleFacts("web", False, False, (), ()), []),
        (rls.RoleFacts("root", True, True, ("x",), ("voices",)), ["is a superuser"]),
        (rls.RoleFacts("ops", False, True, (), ()), ["has BYPASSRLS"]),
        (rls.RoleFacts("web", False, False, ("ops",), ()), ["can SET ROLE to ops"]),
        (rls.RoleFacts("web", False, False, (), ("voices",)), ["owns (or can become"]),
    ],
)
def test_role_problems(facts: rls.RoleFacts, expected: list[str]):
    problems = rls.role_problems(facts)
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start)


def test_verify_web_role_does_nothing_unless_required(tmp_path: Path):
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    rls.verify_web_role(create_app(make_config(unreachable, tmp_path, RLS_REQUIRED=False)))


def test_verify_web_role_refuses_what_it_cannot_check(tmp_path: Path):
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    with pytest.raises(ConfigError, match="web role could not be checked: database unreachable"):
        rls.verify_web_role(required_app(unreachable, tmp_path))
    with pytest.raises(ConfigError, match="not PostgreSQL"):
        rls.verify_web_role(required_app(f"sqlite:///{tmp_path / 'x.db'}", tmp_path))


@pytest.mark.parametrize(
    ("env", "required"),
    [
        ({"DASHBOARD_ENV": "production", "DATABASE_URL": "postgresql://w@db/v"}, True),
        ({"DASHBOARD_ENV": "production"}, False),  # SQLite: nothing to check
        ({"DATABASE_URL": "postgresql://w@db/v"}, False),  # development
        ({"DASHBOARD_ENV": "production", "DATABASE_URL": "postgres://w@db/v"}, True),
        (
            {"DASHBOARD_ENV": "production", "DATABASE_URL": "postgresql://w@db/v"}
            | {"RLS_REQUIRED": "0"},
            False,
        ),
        ({"DATABASE_URL": "postgresql://w@db/v", "RLS_REQUIRED": "1"}, True),
    ],
)
def test_rls_required_setting(env: dict[str, str], required: bool, tmp_path: Path):
    # One declared worker: production refuses per-process login counters otherwise.
    base = {
        "SECRET_KEY": "k" * 64,
        "WEB_CONCURRENCY": "1",
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    settings = settings_from_env({**base, **env}, str(tmp_path))
    assert settings["RLS_REQUIRED"] is required


def test_operator_database_url_setting(tmp_path: Path):
    env = {"OPERATOR_DATABASE_URL": "postgres://ops@db/v"}
    settings = settings_from_env(env, str(tmp_path))
    assert settings["OPERATOR_DATABASE_URL"] == "postgresql+psycopg://ops@db/v"
    assert settings_from_env({}, str(tmp_path))["OPERATOR_DATABASE_URL"] is None


# -------------------------------------------------------------------- flask rls ...


def privileges(role: str, table: str) -> set[str]:
    kinds = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    return {
        kind
        for kind in kinds
        if db.session.scalar(
            text("SELECT has_table_privilege(:role, :table, :kind)"),
            {"role": role, "table": table, "kind": kind},
        )
    }


@pytest.mark.postgres
def test_grant_gives_the_web_role_dml_only_and_is_idempotent(app: Flask, pg_app_url: str):
    role = app_role_name()
    with app.app_context():
        db.session.execute(text(f'GRANT TRUNCATE ON generations TO "{role}"'))
        db.session.commit()
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["rls", "grant", role])
        assert result.exit_code == 0, result.output
        assert "SELECT, INSERT, UPDATE, DELETE on " in result.output
        assert "SELECT, INSERT on usage_ledger (append-only)" in result.output
    with app.app_context():
        dml = {"SELECT", "INSERT", "UPDATE", "DELETE"}
        for table in db.metadata.tables:
            expected = {"SELECT", "INSERT"} if table == "usage_ledger" else dml
            assert privileges(role, table) == expected, table
        assert privileges(role, "alembic_version") == set()


@pytest.mark.postgres
def test_the_web_role_can_add_to_the_usage_ledger_but_never_change_or_remove_a_line(
    web_app: Flask, world: World
):
    with web_app.app_context(), tenancy.org_scope(world.org_a):
        lines = db.session.scalars(select(UsageEntry)).all()
        assert [line.generation_id for line in lines] == [world.gen_a]  # its org's only
        db.session.rollback()
        for statement in (
            update(UsageEntry).values(characters=1),
            delete(UsageEntry),
        ):
            with pytest.raises(DBAPIError, match="permission denied"):
                db.session.execute(statement)
            db.session.rollback()


@pytest.mark.postgres
def test_grant_refuses_roles_rls_would_not_bind(app: Flask, pg_schema: str):
    runner = app.test_cli_runner()
    owner = make_url(pg_schema).username
    result = runner.invoke(args=["rls", "grant", owner])
    assert result.exit_code == 1
    assert f'role "{owner}" has BYPASSRLS' in result.output
    assert "must not be the web app's role" in result.output
    result = runner.invoke(args=["rls", "grant", "rlsdev_nobody"])
    assert result.exit_code == 1
    assert 'there is no database role "rlsdev_nobody"' in result.output


@pytest.mark.postgres
def test_check_passes_for_the_web_role_and_fails_for_the_owner(web_app: Flask, app: Flask):
    result = web_app.test_cli_runner().invoke(args=["rls", "check"])
    assert result.exit_code == 0, result.output
    assert "binds the web role" in result.output
    result = app.test_cli_runner().invoke(args=["rls", "check"])
    assert result.exit_code == 1
    assert "has BYPASSRLS" in result.output


# ---------------------------------------------------------------------- migrations


@pytest.fixture
def schema_app(pg_schema: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty private schema of the test database (dropped afterwards)."""
    with private_schema_app(pg_schema, tmp_path, "rls") as app:
        yield app


def policies() -> set[tuple[str, str]]:
    rows = db.session.execute(
        text("SELECT tablename, policyname FROM pg_policies WHERE schemaname = current_schema()")
    )
    return {(table, name) for table, name in rows}


def protected_tables() -> set[str]:
    with db.engine.connect() as connection:
        return set(rls.TENANT_TABLES) - set(rls.tables_without_rls(connection))


EXPECTED_POLICIES = {
    ("voices", "voices_org_rows"),
    ("voices", "voices_system_read"),
    ("generations", "generations_org_rows"),
    ("memberships", "memberships_org_rows"),
    ("memberships", "memberships_own_read"),
    ("invitations", "invitations_org_rows"),
    ("analytics_snapshots", "analytics_snapshots_org_rows"),
    ("usage_ledger", "usage_ledger_org_rows"),
    ("api_keys", "api_keys_org_rows"),
    ("api_keys", "api_keys_own_read"),
    ("api_key_days", "api_key_days_org_rows"),
    ("api_idempotency_keys", "api_idempotency_keys_org_rows"),
    ("webhook_endpoints", "webhook_endpoints_org_rows"),
    ("webhook_events", "webhook_events_org_rows"),
    ("webhook_deliveries", "webhook_deliveries_org_rows"),
    ("webhook_attempts", "webhook_attempts_org_rows"),
}


@pytest.mark.postgres
def test_migration_adds_and_removes_row_level_security(schema_app: Flask):
    with schema_app.app_context():
        upgrade()
        assert policies() == EXPECTED_POLICIES
        assert protected_tables() == set(rls.TENANT_TABLES)
        downgrade(revision="0002_accounts")
        db.session.rollback()
        assert policies() == set()
        assert protected_tables() == set()
        upgrade()
        downgrade(revision="base")
        upgrade()
        db.session.rollback()
        assert policies() == EXPECTED_POLICIES
        assert protected_tables() == set(rls.TENANT_TABLES)
        check()  # policies are invisible to autogenerate: no drift
