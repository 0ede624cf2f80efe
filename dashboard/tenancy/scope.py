"""Tenant walls, part one: the organisation in scope and the application filter.

Every ORM SELECT, UPDATE and DELETE that touches a tenant table gets the current
organisation's criteria added by a `do_orm_execute` hook, so a forgotten `where` can't
leak another org's rows. With no organisation in scope, a query on a tenant table is
refused (fail closed) unless the code says, visibly, that it spans organisations:

    with tenancy.all_tenants("seed: system voices are shared"):
        ...

PostgreSQL row-level security (`tenancy.rls`) is the second wall and reads the same
context: the org is copied into `app.current_org` at the start of every transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from flask import abort, g, has_app_context, session
from sqlalchemy import event, false, or_, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from dashboard.extensions import db
from dashboard.models import Base, Voice

# Tables with an `org_id` that are shared on purpose: a row with no org is everyone's.
# Voices: the 20 system voices have no org; they get their own criteria below.
SHARED_MODELS: tuple[type, ...] = (Voice,)
# Tables with an `org_id` that neither wall should bind, each with its reason. Empty:
# adding one here is a decision a reviewer must see, not a default.
EXEMPT_MODELS: dict[type, str] = {}


def models_with_org_id(registry: Any = Base.registry) -> tuple[type, ...]:
    """Every mapped class whose table has an `org_id` column, in table-name order."""
    found = [mapper.class_ for mapper in registry.mappers if "org_id" in mapper.local_table.columns]
    return tuple(sorted(found, key=lambda model: model.__tablename__))


# Rows that belong to exactly one organisation: derived from the models, so a new
# table with an `org_id` gets both walls (this filter and, through `dashboard.tenancy.rls`,
# the PostgreSQL policies `flask rls check` verifies) without anyone listing it.
TENANT_MODELS: tuple[type, ...] = tuple(
    model
    for model in models_with_org_id()
    if model not in SHARED_MODELS and model not in EXEMPT_MODELS
)
SCOPED_MODELS: tuple[type, ...] = (*TENANT_MODELS, *SHARED_MODELS)

_current_org: ContextVar[uuid.UUID | None] = ContextVar("voxboard_current_org", default=None)
_current_user: ContextVar[uuid.UUID | None] = ContextVar("voxboard_current_user", default=None)
_all_tenants: ContextVar[str | None] = ContextVar("voxboard_all_tenants", default=None)
# The keyed hash of the API key a request presents (`dashboard.api.auth`): on PostgreSQL
# it lets the request read that one key's row before any org is in scope.
_presented_key: ContextVar[str | None] = ContextVar("voxboard_presented_key", default=None)

# Called with the session whenever the org in scope changes mid-transaction, so the
# database-side wall (RLS settings) follows; `dashboard.tenancy.rls` registers itself here.
scope_listeners: list[Callable[[Session], None]] = []

M = TypeVar("M")


class TenantScopeError(RuntimeError):
    """A tenant table was queried with no organisation in scope and no explicit bypass."""


def current_org_id() -> uuid.UUID | None:
    """Return the id of the organisation in scope, if any."""
    return _current_org.get()


def current_user_id() -> uuid.UUID | None:
    """Return the id of the user the request acts for, if any."""
    return _current_user.get()


def presented_key_hash() -> str | None:
    """Return the keyed hash of the API key the request presents, if any."""
    return _presented_key.get()


def all_tenants_reason() -> str | None:
    """Return why the current code spans organisations, or None when it doesn't."""
    return _all_tenants.get()


def _notify() -> None:
    """Let listeners (the RLS wall) re-apply the scope to a transaction in progress."""
    if not scope_listeners or not has_app_context():
        return
    session = db.session()
    for listener in scope_listeners:
        listener(session)


@contextmanager
def org_scope(org_id: uuid.UUID | None, user_id: uuid.UUID | None = None) -> Iterator[None]:
    """Scope everything inside the block to one organisation (jobs, CLI, tests)."""
    tokens = (_current_org.set(org_id), _current_user.set(user_id))
    _notify()
    try:
        yield
    finally:
        _current_org.reset(tokens[0])
        _current_user.reset(tokens[1])
        _notify()


@contextmanager
def all_tenants(reason: str) -> Iterator[None]:
    """Let the block read and write every organisation's rows; say why.

    The one visible way to span organisations (seeding, snapshots, operator commands).
    On PostgreSQL the connection must also be allowed past row-level security.
    """
    if not reason.strip():
        raise ValueError("all_tenants() needs a reason")
    token = _all_tenants.set(reason)
    _notify()
    try:
        yield
    finally:
        _all_tenants.reset(token)
        _notify()


def _add_tenant_criteria(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.execution_options.get("skip_tenant_scope") or _all_tenants.get() is not None:
        return
    # Relationship and column lazy loads inherit the criteria of the statement that
    # loaded their parent; re-adding them is harmless but wasteful.
    if state.is_column_load or state.is_relationship_load:
        return
    org_id = _current_org.get()
    if org_id is None:
        touched = {m.class_ for m in state.all_mappers}
        unscoped = touched & set(TENANT_MODELS)
        if unscoped:
            names = ", ".join(sorted(m.__tablename__ for m in unscoped))
            raise TenantScopeError(
                f"query on {names} with no organisation in scope; "
                "use tenancy.org_scope(org_id) or tenancy.all_tenants(reason)"
            )
        state.statement = state.statement.options(
            with_loader_criteria(Voice, Voice.org_id.is_(None), include_aliases=True),
            *(
                with_loader_criteria(model, false(), include_aliases=True)
                for model in TENANT_MODELS
            ),
        )
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            Voice,
            lambda cls: or_(cls.org_id == org_id, cls.org_id.is_(None)),
            include_aliases=True,
        ),
        *(
            with_loader_criteria(model, lambda cls: cls.org_id == org_id, include_aliases=True)
            for model in TENANT_MODELS
        ),
    )


def install_tenant_filter() -> None:
    """Attach the application filter to every ORM session (idempotent)."""
    if not event.contains(Session, "do_orm_execute", _add_tenant_criteria):
        event.listen(Session, "do_orm_execute", _add_tenant_criteria)


def get_scoped(model: type[M], object_id: Any) -> M | None:
    """Return the row of `model` with `object_id` if the org in scope may see it.

    Use this instead of `session.get`, whose identity-map shortcut skips the filter.
    """
    try:
        object_id = uuid.UUID(str(object_id))
    except ValueError:
        return None
    return db.session.scalars(select(model).where(model.id == object_id)).one_or_none()


def get_scoped_or_404(model: type[M], object_id: Any) -> M:
    """Return the row like `get_scoped`, or answer 404 (never 403) when it isn't visible."""
    found = get_scoped(model, object_id)
    if found is None:
        abort(404)
    return found


# ------------------------------------------------------------ a request's scope


def enter_org(org_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
    """Put the request in `org_id`'s scope until it ends (see `leave_org`)."""
    g._tenant_tokens = (_current_org.set(org_id), _current_user.set(user_id))
    _notify()


def claim_session_user() -> None:
    """Put the user the signed session names in scope before the request's first statement.

    Row-level security lets a user read their own memberships (`app.current_user`);
    knowing the user before anything is read means the request's first transaction
    starts with the right settings in one round trip, and the user, their memberships
    and orgs load in one statement (`login_sessions.load_user`). The cookie is signed, so only
    this server can have named that user; `load_user` still checks the session token
    and calls `forget_session_user` when the session was revoked.
    """
    if g.get("cookieless"):
        return  # the public API: a bearer key, never a cookie (`dashboard.api.auth`)
    raw = session.get("_user_id")
    if not raw or "_user_token" in g:
        return
    try:
        user_id = uuid.UUID(str(raw).partition(":")[0])
    except ValueError:
        return
    g._user_token = _current_user.set(user_id)
    _notify()


def forget_session_user() -> None:
    """Take back `claim_session_user`: the session turned out not to be valid."""
    token = g.pop("_user_token", None)
    if token is not None:
        _current_user.reset(token)
        _notify()


def present_api_key(key_hash: str) -> None:
    """Name the API key the request presents, before its first statement (until it ends)."""
    g._key_token = _presented_key.set(key_hash)
    _notify()


def leave_org(_exc: BaseException | None = None) -> None:
    """Drop the request's org scope (registered as a teardown handler)."""
    key_token = g.pop("_key_token", None)
    if key_token is not None:
        _presented_key.reset(key_token)
    tokens = g.pop("_tenant_tokens", None)
    if tokens:
        _current_org.reset(tokens[0])
        _current_user.reset(tokens[1])
    user_token = g.pop("_user_token", None)
    if user_token:
        _current_user.reset(user_token)
