"""Tenant walls, part two: PostgreSQL row-level security.

The policies (migration `0003_rls`) admit only rows of the organisation named by the
transaction-local settings `app.current_org` and `app.current_user` (and the API key
whose hash is `app.api_key_hash`, migration `0011_api_keys`). This module keeps those
settings equal to `tenancy.current_org_id()` / `current_user_id()` /
`presented_key_hash()`:

- `after_begin` sets them in one statement as each transaction starts;
- a `tenancy.scope_listeners` entry re-applies them when the scope changes while a
  transaction is in progress (a request's org is resolved after its first query);
- `set_config(..., true)` is transaction-local, so nothing survives into the next
  transaction on a pooled connection (or a pgbouncer server connection).

It also checks the roles: `verify_web_role` (refuse to serve as a role that row-level
security doesn't bind) and `grant_app_role` (what the web role may do). Crossing the
walls on purpose is `tenancy.operator`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask
from psycopg.pq import TransactionStatus
from sqlalchemy import Table, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import NullPool

from dashboard import tenancy
from dashboard.config import ConfigError
from dashboard.database import describe_database_error
from dashboard.extensions import db

# One round trip sets them all; the values are bound parameters, never spliced into SQL.
SET_SCOPE = text(
    "SELECT set_config('app.current_org', :org, true), "
    "set_config('app.current_user', :user, true), "
    "set_config('app.api_key_hash', :key, true)"
)
Scope = tuple[str, str, str]
TENANT_TABLES: tuple[str, ...] = tuple(m.__tablename__ for m in tenancy.SCOPED_MODELS)
# No org, no user and no key in scope: what the policies see when nothing was ever set.
UNSCOPED: Scope = ("", "", "")
ROLES_DOC = 'docs/operations.md, "Database roles and row-level security"'

_STATE_KEY = "voxboard.rls"


@dataclass(slots=True)
class _Applied:
    """What one connection of a session's transaction has in its settings."""

    connection: Connection
    # None: unknown. Settings made inside a savepoint revert when it is rolled back,
    # so values applied in one that has ended are re-applied before they're trusted.
    values: Scope | None
    # The savepoint the values were applied in (None: the transaction itself).
    within: SessionTransaction | None


def init_app(app: Flask) -> None:
    """Copy the tenant scope into every PostgreSQL transaction of `db.session` (idempotent).

    The listeners live on Flask-SQLAlchemy's session class, so they serve every app;
    they do nothing on SQLite, which has no row-level security.
    """
    if not event.contains(db.session, "after_begin", _set_scope_on_begin):
        event.listen(db.session, "after_begin", _set_scope_on_begin)
        event.listen(db.session, "after_transaction_end", _forget_ended_transaction)
        event.listen(db.session, "after_soft_rollback", _restore_after_savepoint)
    if reapply_scope not in tenancy.scope_listeners:
        tenancy.scope_listeners.append(reapply_scope)


def scope_values() -> Scope:
    """Return the (org, user, key hash) settings for the scope in force; '' matches no row."""
    org, user = tenancy.current_org_id(), tenancy.current_user_id()
    return (
        "" if org is None else str(org),
        "" if user is None else str(user),
        tenancy.presented_key_hash() or "",
    )


def apply_scope(connection: Connection, values: Scope) -> None:
    """Set `app.current_org`, `app.current_user` and `app.api_key_hash` for the transaction."""
    connection.execute(SET_SCOPE, {"org": values[0], "user": values[1], "key": values[2]})


def _set_scope_on_begin(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    if connection.dialect.name != "postgresql":
        return
    values = scope_values()
    state: dict[Engine, _Applied] = session.info.setdefault(_STATE_KEY, {})
    applied = state.get(connection.engine)
    # A savepoint inherits its transaction's settings; only a root transaction (or a
    # savepoint after the values became unknown or stale) needs the round trip.
    if transaction.nested and applied is not None and applied.values == values:
        return
    if not transaction.nested and values == UNSCOPED:
        # A new transaction starts with the settings unset (set_config(..., true) never
        # outlives one), which the policies read exactly like '': nothing to send.
        state[connection.engine] = _Applied(connection, values, None)
        return
    apply_scope(connection, values)
    within = transaction if transaction.nested else None
    state[connection.engine] = _Applied(connection, values, within)


def _forget_ended_transaction(session: Session, transaction: SessionTransaction) -> None:
    state: dict[Engine, _Applied] | None = session.info.get(_STATE_KEY)
    if not state:
        return
    if transaction.parent is None:
        # The database transaction is over and its settings with it.
        del session.info[_STATE_KEY]
        return
    if transaction.nested:
        for applied in state.values():
            if applied.within is transaction:
                applied.values, applied.within = None, None


def _restore_after_savepoint(session: Session, previous_transaction: SessionTransaction) -> None:
    # A rollback to a savepoint the values were changed in put back older ones, which
    # may name another org than the one in scope now: set them again right away.
    if previous_transaction.nested:
        reapply_scope(session)


def reapply_scope(session: Session) -> None:
    """Bring a transaction in progress up to the current scope (a `tenancy` scope listener).

    Costs nothing when no transaction holds a connection (the next `after_begin` sets
    the values) or when the values haven't changed.
    """
    state: dict[Engine, _Applied] | None = session.info.get(_STATE_KEY)
    if not state:
        return
    innermost = session.get_nested_transaction() or session.get_transaction()
    if innermost is None or not innermost.is_active:
        # Rolled back after an error: no statement can run until the rollback, and
        # the transaction after it starts with fresh settings.
        return
    values = scope_values()
    for applied in state.values():
        if applied.values == values:
            continue
        if _transaction_failed(applied.connection):
            # Same as above, one level down (a failed statement the session doesn't
            # know about); raising here would hide the error that caused it.
            applied.values = None
            continue
        apply_scope(applied.connection, values)
        applied.values, applied.within = values, session.get_nested_transaction()


def _transaction_failed(connection: Connection) -> bool:
    if connection.closed or connection.invalidated:
        return True
    dbapi_connection = connection.connection.dbapi_connection
    info = getattr(dbapi_connection, "info", None)
    return info is not None and info.transaction_status == TransactionStatus.INERROR


# --------------------------------------------------------------------------- roles


@dataclass(frozen=True, slots=True)
class RoleFacts:
    """What decides whether row-level security binds a database role."""

    name: str
    superuser: bool
    bypassrls: bool
    # Roles with SUPERUSER or BYPASSRLS this role can become with SET ROLE.
    bypass_roles: tuple[str, ...]
    # Tenant tables it owns, or whose owner it can become: an owner can switch RLS off.
    owned_tables: tuple[str, ...]


_ROLE_FACTS = text(
    """
    SELECT r.rolname, r.rolsuper, r.rolbypassrls,
           ARRAY(SELECT b.rolname::text FROM pg_roles b
                 WHERE b.oid <> r.oid AND (b.rolsuper OR b.rolbypassrls)
                   AND pg_has_role(r.oid, b.oid, 'MEMBER')
                 ORDER BY 1) AS bypass_roles,
           ARRAY(SELECT c.relname::text FROM pg_class c
                 WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(CAST(:tables AS text[])) t)
                   AND pg_has_role(r.oid, c.relowner, 'MEMBER')
                 ORDER BY 1) AS owned_tables
    FROM pg_roles r
    WHERE r.rolname = COALESCE(CAST(:role AS name), current_user)
    """
)


def role_facts(connection: Connection, role: str | None = None) -> RoleFacts | None:
    """Look up `role` (default: the connection's own role); None when it doesn't exist."""
    row = connection.execute(_ROLE_FACTS, {"tables": list(TENANT_TABLES), "role": role}).first()
    if row is None:
        return None
    return RoleFacts(row[0], row[1], row[2], tuple(row[3]), tuple(row[4]))


def role_problems(facts: RoleFacts) -> list[str]:
    """Say why row-level security wouldn't bind `facts`' role; empty when it would."""
    if facts.superuser:
        # A superuser is everything below as well; one reason is enough.
        return ["is a superuser (row-level security never applies to superusers)"]
    problems = []
    if facts.bypassrls:
        problems.append("has BYPASSRLS")
    if facts.bypass_roles:
        problems.append(
            f"can SET ROLE to {', '.join(facts.bypass_roles)}, which bypass row-level security"
        )
    if facts.owned_tables:
        problems.append(
            f"owns (or can become the owner of) {', '.join(facts.owned_tables)}, "
            "so it could switch row-level security off"
        )
    return problems


def web_role_problem(url: str, engine_options: Mapping[str, Any] | None = None) -> str | None:
    """Connect once as `url`'s role; return why it must not serve the web app, or None."""
    connect_args = dict((engine_options or {}).get("connect_args", {}))
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            facts = role_facts(connection)
    finally:
        engine.dispose()
    assert facts is not None  # the connection's own role always exists
    problems = role_problems(facts)
    if not problems:
        return None
    return (
        f'DATABASE_URL connects as role "{facts.name}", which {"; ".join(problems)}. '
        "Row-level security would not keep organisations apart for it. Connect the web "
        "app as a LOGIN NOSUPERUSER NOBYPASSRLS role that owns nothing, given its "
        f"privileges with `flask rls grant ROLE` (see {ROLES_DOC}); or set RLS_REQUIRED=0 "
        "to start without this check."
    )


def verify_web_role(app: Flask) -> None:
    """Refuse to start when RLS is required and the web role could get past it.

    Called once at process start-up (`wsgi.py`), not in the factory, which must not
    connect anywhere. Raises `ConfigError`, whose message says what to do.
    """
    if not app.config.get("RLS_REQUIRED"):
        return
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if make_url(url).get_backend_name() != "postgresql":
        raise ConfigError(
            "RLS_REQUIRED is on but DATABASE_URL is not PostgreSQL, which is the only "
            "database with row-level security. Use PostgreSQL, or set RLS_REQUIRED=0."
        )
    try:
        problem = web_role_problem(url, app.config.get("SQLALCHEMY_ENGINE_OPTIONS"))
    except DBAPIError as exc:
        raise ConfigError(
            "RLS_REQUIRED is on but the web role could not be checked: "
            f"{describe_database_error(exc, url)}"
        ) from exc
    if problem:
        raise ConfigError(problem)


class GrantError(RuntimeError):
    """The web role can't be given its privileges; the message says why."""


# What the web role may do to a table. Append-only tables (`info={"append_only": True}`
# on the model, e.g. the usage ledger) keep their past: no UPDATE, no DELETE.
FULL_DML: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE", "DELETE")
APPEND_ONLY: tuple[str, ...] = ("SELECT", "INSERT")


def web_privileges(table: Table) -> tuple[str, ...]:
    """Return the privileges the web role holds on `table`."""
    return APPEND_ONLY if table.info.get("append_only") else FULL_DML


def grant_app_role(connection: Connection, role: str) -> dict[tuple[str, ...], list[str]]:
    """Give `role` exactly the web app's privileges on the app's tables.

    Returns the tables by the privileges they got. Idempotent. Runs as the tables'
    owner (`DIRECT_URL`): everything else is revoked first, so a role that once had
    more (TRUNCATE ignores row-level security) ends up with DML only (SELECT and INSERT
    on append-only tables), and no access to `alembic_version`.
    """
    facts = role_facts(connection, role)
    if facts is None:
        raise GrantError(
            f'there is no database role "{role}"; create it first: '
            f"CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '...'"
        )
    if problems := role_problems(facts):
        raise GrantError(
            f'role "{role}" {"; ".join(problems)}: row-level security would not bind it, '
            f"so it must not be the web app's role (see {ROLES_DOC})"
        )
    preparer = connection.dialect.identifier_preparer
    grantee = preparer.quote(role)
    schema_name = connection.execute(text("SELECT current_schema()")).scalar_one()
    schema = preparer.quote_schema(schema_name)
    groups: dict[tuple[str, ...], list[str]] = {}
    for table in db.metadata.sorted_tables:
        groups.setdefault(web_privileges(table), []).append(table.name)

    def qualified(names: Sequence[str]) -> list[str]:
        return [f"{schema}.{preparer.quote(name)}" for name in names]

    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {grantee}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {grantee}",
        *(
            f"GRANT {', '.join(privileges)} ON TABLE {', '.join(qualified(names))} TO {grantee}"
            for privileges, names in groups.items()
        ),
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {grantee}",
    ]
    for statement in statements:
        connection.execute(text(statement))
    # A GRANT by a role that isn't the owner only warns ("no privileges were granted").
    missing = [
        problem
        for privileges, names in groups.items()
        for problem in _missing_privileges(
            connection, role, schema_name, qualified(names), privileges
        )
    ]
    if missing:
        raise GrantError(
            f"the grant left {role} without {', '.join(dict.fromkeys(missing))}: run this "
            "command as the owner of the schema and its tables (set DIRECT_URL to the "
            "owner's URL)"
        )
    return groups


def _missing_privileges(
    connection: Connection,
    role: str,
    schema_name: str,
    qualified_tables: Sequence[str],
    privileges: Sequence[str],
) -> list[str]:
    # has_table_privilege with a list answers "any of them"; each must be held. The
    # privilege names are this module's constants, never input.
    held = " AND ".join(f"has_table_privilege(:role, t, '{p}')" for p in privileges)
    rows = connection.execute(
        text(
            f"SELECT '{', '.join(privileges)} on ' || t "
            f"FROM unnest(CAST(:tables AS text[])) t WHERE NOT ({held}) "
            "UNION ALL SELECT 'USAGE on schema ' || :schema "
            "WHERE NOT has_schema_privilege(:role, :schema, 'USAGE')"
        ),
        {"tables": list(qualified_tables), "role": role, "schema": schema_name},
    )
    return [row[0] for row in rows]


def tables_without_rls(connection: Connection) -> list[str]:
    """Return the tenant tables whose row-level security is missing, off or not forced."""
    rows = connection.execute(
        text(
            "SELECT t FROM unnest(CAST(:tables AS text[])) t "
            "LEFT JOIN pg_class c ON c.oid = to_regclass(t) "
            "WHERE c.oid IS NULL OR NOT (c.relrowsecurity AND c.relforcerowsecurity) "
            "ORDER BY t"
        ),
        {"tables": list(TENANT_TABLES)},
    )
    return [row[0] for row in rows]
